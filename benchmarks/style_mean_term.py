"""The cpu style preset plus a term on the style layers' channel means (a one-off experiment).

benchmarks/style_gram_parts.py finds most of a net's held-out Gram loss in relu4_1's channel
means. This trains a style net whose loss adds WEIGHT * sum over the Gram loss's layers of
|mean(features) - mean(painting's features)|^2, per crop; at 0.02 it pushes as hard as the Gram
loss (the norms of their gradients on the night-cafe built-in's results: 2.08e5 at weight 1
against 4,382). Score the result with benchmarks/style_tradeoff.py.

    python benchmarks/style_mean_term.py night-cafe 0.02 runs/sw/night-cafe-800-mean0.02
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("painting", help="a painting of ../shared/data/styles, by name")
    parser.add_argument("weight", type=float, help="the mean term's weight")
    parser.add_argument("output", help="model folder to create")
    parser.add_argument("--iters", type=int, default=800)
    args = parser.parse_args()

    from texnet.descriptor import TEXTURE_LAYERS
    from texnet.image_io import image_to_tensor, load_image
    from texnet.style_training import StyleTrainer, style_preset, train_style
    from texnet.training import scaled_to

    gram_loss = StyleTrainer.style_loss

    def style_loss(trainer: StyleTrainer, features: dict, which: torch.Tensor) -> torch.Tensor:
        if not hasattr(trainer, "painting_means"):
            with torch.no_grad():
                painting = trainer.descriptor(image_to_tensor(trainer.paintings[0]).to(trainer.device))
            trainer.painting_means = {name: painting[name][0].flatten(1).float().mean(dim=1) for name in TEXTURE_LAYERS}
        means = sum((features[name].flatten(2).float().mean(dim=2) - trainer.painting_means[name]).pow(2).sum(dim=1)
                    for name in TEXTURE_LAYERS)
        # style_loss is multiplied by the style weight: the term's own weight is divided by it here
        return gram_loss(trainer, features, which) + args.weight / trainer.config.style_weight * means

    StyleTrainer.style_loss = style_loss
    painting = load_image(DATA / "styles" / f"{args.painting}.jpg")
    train_style({args.painting: painting}, DATA / "content-train", args.output,
                scaled_to(style_preset("cpu"), args.iters))


if __name__ == "__main__":
    main()
