"""Where the saturated ovals in some samples come from, and how often they appear.

For each model given (built-in name or folder), on 8 samples at 256 px (float32):
- texture loss (real VGG-19) against the model's own example, and the share of pixels in
  near-black ovals (all channels below 0.06; the pebbles example itself has 0.01%);
- for each scale k, how much resampling that scale's noise alone changes the pixels inside the
  ovals and elsewhere: the scale that moves the ovals is the one that makes them.
Writes benchmarks/out/ovals.md.

    python benchmarks/ovals.py pebbles runs/pebbles-k4 [--texture pebbles]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
SIZE, COUNT, DARK = 256, 8, 0.06


def oval_mask(images: torch.Tensor) -> torch.Tensor:
    return (images < DARK).all(dim=1, keepdim=True).expand_as(images)


def scale_influence(net, noise, base) -> list[str]:
    """Mean pixel change inside / outside the ovals when one scale's noise is drawn again."""
    inside = oval_mask(base)
    cells = []
    for scale in range(net.config.scales):
        changed = list(noise)
        changed[scale] = torch.rand(noise[scale].shape, generator=torch.Generator().manual_seed(99))
        difference = (net(changed) - base).abs()
        ovals = f"{difference[inside].mean():.2f}" if inside.any() else "-"
        cells.append(f"{ovals} / {difference[~inside].mean():.2f}")
    return cells


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="+")
    parser.add_argument("--texture", default="pebbles", help="example the models were trained on")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from measure import machine_description, markdown_table, write_report
    from texnet.descriptor import VGG19Descriptor
    from texnet.image_io import image_to_tensor, load_image, quantize, resize_to_fit
    from texnet.losses import TextureTarget
    from texnet.sampling import TextureGenerator

    descriptor = VGG19Descriptor.pretrained()
    example = image_to_tensor(resize_to_fit(load_image(DATA / "textures" / f"{args.texture}.png"), SIZE))
    target = TextureTarget.from_image(descriptor, example)
    rows, widest = [], 0
    for name in args.models:
        net = TextureGenerator.from_pretrained(name).net
        widest = max(widest, net.config.scales)
        with torch.no_grad():
            noise = net.make_noise(COUNT, SIZE, SIZE, torch.Generator().manual_seed(0))
            base = net(noise)
            loss = float(target.loss(descriptor(quantize(base))).mean())
            share = float(oval_mask(base)[:, 0].float().mean())
            rows.append([name, str(net.config.scales), f"{loss:.3g}", f"{share:.2%}", *scale_influence(net, noise, base)])
    rows = [row + [""] * (4 + widest - len(row)) for row in rows]
    headers = ["model", "scales", "texture loss", "pixels in dark ovals",
               *(f"resample scale {k} ({SIZE >> k} px): change in ovals / elsewhere" for k in range(widest))]
    report = (f"Machine: {machine_description()}. {COUNT} samples of {SIZE} px, float32, example "
              f"{args.texture} (dark ovals in the example itself: {float(oval_mask(example)[:, 0].float().mean()):.2%}).\n\n"
              f"{markdown_table(headers, rows)}\n")
    write_report("ovals.md", report)


if __name__ == "__main__":
    main()
