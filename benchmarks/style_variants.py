"""Paper (batch norm + noise) against Improved (instance norm, no noise) stylization networks.

Trains both variants with the same budget (the cpu preset shortened to --iters) on one
painting, then scores each on the held-out test photos with the training objective's own
terms (style = Gram loss to the painting, content = relu4_2 loss to the photo). Writes
benchmarks/out/style-variants.md and a figure. Run: python benchmarks/style_variants.py
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
OUT = HERE / "out"


def score(model, photos, descriptor, target) -> tuple[float, float]:
    """Mean style and content loss of the stylized photos (each at its own size, longer side 256)."""
    from texnet.descriptor import CONTENT_LAYER
    from texnet.image_io import image_to_tensor
    from texnet.losses import content_loss

    styles, contents = [], []
    with torch.no_grad():
        for photo in photos:
            tensor = image_to_tensor(photo)
            features = descriptor(model.stylize_tensor(tensor))
            styles.append(float(target.loss(features)))
            contents.append(float(content_loss(features[CONTENT_LAYER], descriptor(tensor)[CONTENT_LAYER])))
    return sum(styles) / len(styles), sum(contents) / len(contents)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", default="starry-night")
    parser.add_argument("--iters", type=int, default=300)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from measure import machine_description, markdown_table
    from texnet.descriptor import CONTENT_LAYER, TEXTURE_LAYERS, VGG19Descriptor
    from texnet.image_io import image_files, image_to_tensor, load_image, resize_to_fit
    from texnet.losses import TextureTarget
    from texnet.style_training import StyleTrainer, style_preset
    from texnet.stylizer import VARIANTS

    OUT.mkdir(exist_ok=True)
    descriptor = VGG19Descriptor.pretrained((*TEXTURE_LAYERS, CONTENT_LAYER))
    style = load_image(DATA / "styles" / f"{args.style}.jpg")
    photos = [resize_to_fit(load_image(path), 256) for path in image_files(DATA / "content-test")]
    rows = []
    for variant, generator in VARIANTS.items():
        config = replace(style_preset("cpu", variant), iters=args.iters)
        trainer = StyleTrainer(style, DATA / "content-train", OUT / f"variant-{variant}", config, descriptor)
        start = time.perf_counter()
        model = trainer.train(resume=(trainer.output / "checkpoint").is_dir())
        minutes = (time.perf_counter() - start) / 60
        target = TextureTarget.from_image(descriptor, image_to_tensor(trainer.style), {n: 1.0 for n in TEXTURE_LAYERS})
        style_loss, content = score(model, photos, descriptor, target)
        total = config.style_weight * style_loss + config.content_weight * content
        rows.append([variant, generator.norm, generator.noise_channels, f"{minutes:.1f}",
                     f"{style_loss:.3g}", f"{content:.3g}", f"{total:.3g}"])
    table = markdown_table(["variant", "norm", "noise channels", "train min", "style loss", "content loss",
                            "weighted total"], rows)
    report = (f"Stylization variants, {args.style}, cpu preset cut to {args.iters} iterations, scored on the "
              f"{len(photos)} photos of content-test at 256 px (mean). {machine_description()}.\n\n{table}\n")
    (OUT / "style-variants.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
