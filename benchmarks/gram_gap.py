"""Where the feed-forward samples lose to Gatys on the held-out Gram loss (issue 10).

For each texture whose Gatys result benchmarks/texture_networks.py has cached, the built-in
model's 4 samples (256 px, seed 0, as in that benchmark) are scored against the same held-out
targets, and their loss is split exactly in two, per VGG layer:
- offset: the loss of the samples' mean Gram matrix (what a generator whose samples all had
  that mean would score);
- spread: the samples' mean squared distance from that mean (sum_i |G_i - T|^2 / n =
  |mean G - T|^2 + sum_i |G_i - mean G|^2 / n).
Gatys' one image has no spread. Both parts are given over Gatys' loss, so offset + spread is the
table's held-out Gram ratio, and spread alone is what samples that vary this much would cost
even with the mean Gram of Gatys' image. Also the share of the loss in the largest layer.

    python benchmarks/gram_gap.py [--textures lava water]     # writes benchmarks/out/gram_gap.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from texture_networks import OUT, SIZE, example  # noqa: E402


def layer_losses(grams: dict[str, torch.Tensor], targets) -> dict[str, float]:
    """Mean over samples and held-out targets of each layer's squared Gram distance."""
    return {name: sum(float((gram - target.grams[name]).pow(2).sum(dim=(1, 2)).mean()) for target in targets)
            / len(targets) for name, gram in grams.items()}


def gap(name: str, descriptor) -> dict:
    from texnet.image_io import image_to_tensor, load_image
    from texnet.losses import TextureTarget, gram_matrix
    from texnet.quality import held_out_targets
    from texnet.sampling import TextureGenerator

    targets = [TextureTarget.from_image(descriptor, image_to_tensor(target))
               for target in held_out_targets(example(name), SIZE)]
    gatys = image_to_tensor(load_image(OUT / f"{name}-gatys.png"))
    samples = torch.cat([image_to_tensor(image) for image in TextureGenerator.from_pretrained(name).sample(4, SIZE, seed=0)])
    with torch.no_grad():
        gatys_grams = {layer: gram_matrix(f) for layer, f in descriptor(gatys).items()}
        sample_grams = {layer: gram_matrix(f) for layer, f in descriptor(samples).items()}
    mean_grams = {layer: gram.mean(dim=0, keepdim=True) for layer, gram in sample_grams.items()}
    gatys_loss = layer_losses(gatys_grams, targets)
    offset = sum(layer_losses(mean_grams, targets).values())
    spread = sum(float((gram - mean_grams[layer]).pow(2).sum(dim=(1, 2)).mean()) for layer, gram in sample_grams.items())
    largest = max(gatys_loss, key=gatys_loss.get)
    total = sum(gatys_loss.values())
    return {"texture": name, "offset": offset / total, "spread": spread / total, "largest": largest,
            "largest_share": gatys_loss[largest] / total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--textures", nargs="*")
    args = parser.parse_args()
    from measure import markdown_table, write_report
    from texnet.quality import evaluation_descriptor

    names = args.textures or sorted(path.name.removesuffix("-gatys.png") for path in OUT.glob("*-gatys.png"))
    descriptor = evaluation_descriptor()
    records = [gap(name, descriptor) for name in names]
    rows = [[r["texture"], f"{r['offset'] + r['spread']:.2f}", f"{r['offset']:.2f}", f"{r['spread']:.2f}",
             f"{r['largest']} {r['largest_share']:.0%}"] for r in records]
    header = ["texture", "held-out Gram FF / Gatys", "offset / Gatys", "spread / Gatys", "Gatys' loss in its largest layer"]
    write_report("gram_gap.md", markdown_table(header, rows) + "\n")


if __name__ == "__main__":
    main()
