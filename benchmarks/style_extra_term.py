"""The cpu style preset plus one more loss term (a one-off experiment).

`--term mean`: benchmarks/style_gram_parts.py finds most of a net's held-out Gram loss in
relu4_1's channel means, so this adds WEIGHT * sum over the Gram loss's layers of
|mean(features) - mean(painting's features)|^2, per crop; at 0.02 it pushes as hard as the Gram
loss (the norms of their gradients on the night-cafe built-in's results: 2.08e5 at weight 1
against 4,382).
`--term histogram`: the texture preset's colour histogram term (sliced Wasserstein distance of
the result's RGB pixels to the painting's, Risser et al. 2017), since this experiment also
`texnet train-style --histogram WEIGHT`, which this runs.
`--calibrate` prints the norms of the Gram loss's and the term's gradients on the built-in's
results, to choose a weight that pushes as hard.
Score the result with benchmarks/style_tradeoff.py.

    python benchmarks/style_extra_term.py night-cafe 0.02 runs/sw/night-cafe-800-mean0.02
    python benchmarks/style_extra_term.py --term histogram --calibrate night-cafe 1 -
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def mean_term(trainer, features: dict, results: torch.Tensor) -> torch.Tensor:
    from texnet.descriptor import TEXTURE_LAYERS
    from texnet.image_io import image_to_tensor

    if not hasattr(trainer, "painting_means"):
        with torch.no_grad():
            painting = trainer.descriptor(image_to_tensor(trainer.paintings[0]).to(trainer.device))
        trainer.painting_means = {name: painting[name][0].flatten(1).float().mean(dim=1) for name in TEXTURE_LAYERS}
    return sum((features[name].flatten(2).float().mean(dim=2) - trainer.painting_means[name]).pow(2).sum(dim=1)
               for name in TEXTURE_LAYERS)


def histogram_term(trainer, features: dict, results: torch.Tensor) -> torch.Tensor:
    """`train-style --histogram`'s term, on the one painting's colour target the trainer built."""
    return trainer.colours[0].loss({"pixels": results}, trainer.rng)


TERMS = {"mean": mean_term, "histogram": histogram_term}


def calibrate(term, name: str, painting) -> None:
    """Gradient norms, with respect to the built-in's results on 4 training crops, of the Gram
    loss at the preset's style weight and of the term at weight 1."""
    from texnet.style_training import StyleTrainer, style_preset
    from texnet.stylizer import Stylizer

    # The trainer supplies the preset's loss, VGG, training crops and (with any histogram weight) the
    # colour target; it never trains, so writes nothing.
    trainer = StyleTrainer({name: painting}, DATA / "content-train", Path("/tmp/unused"),
                           replace(style_preset("cpu"), histogram=1.0), progress=False)
    photos = torch.stack([trainer.crops[i] for i in range(4)])
    results = Stylizer.from_pretrained(name).stylize_tensor(photos).detach().requires_grad_(True)
    features = trainer.descriptor(results)
    which = torch.zeros(4, dtype=torch.long)
    gram = trainer.config.style_weight * trainer.style_loss(features, which).mean()
    gram_grad = torch.autograd.grad(gram, results, retain_graph=True)[0].norm()  # the term reuses the features
    extra = term(trainer, features, results).mean()
    extra_grad = torch.autograd.grad(extra, results)[0].norm()
    print(f"gradient norms: Gram loss at weight {trainer.config.style_weight:g} {gram_grad:.4g}, "
          f"the term at weight 1 {extra_grad:.4g}: equal push at weight {gram_grad / extra_grad:.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("painting", help="a painting of ../shared/data/styles, by name")
    parser.add_argument("weight", type=float, help="the term's weight")
    parser.add_argument("output", help="model folder to create")
    parser.add_argument("--term", choices=TERMS, default="mean")
    parser.add_argument("--iters", type=int, default=800)
    parser.add_argument("--calibrate", action="store_true", help="print gradient norms instead of training")
    args = parser.parse_args()

    from texnet.image_io import load_image
    from texnet.style_training import StyleTrainer, style_preset, train_style
    from texnet.training import scaled_to

    term = TERMS[args.term]
    painting = load_image(DATA / "styles" / f"{args.painting}.jpg")
    if args.calibrate:
        return calibrate(term, args.painting, painting)
    config = scaled_to(style_preset("cpu"), args.iters)
    if args.term == "histogram":
        return train_style({args.painting: painting}, DATA / "content-train", args.output,
                           replace(config, histogram=args.weight))
    generate, gram_loss = StyleTrainer.generate, StyleTrainer.style_loss

    def keep_results(trainer: StyleTrainer, *inputs) -> torch.Tensor:
        trainer.last_results = generate(trainer, *inputs)
        return trainer.last_results

    def style_loss(trainer: StyleTrainer, features: dict, which: torch.Tensor) -> torch.Tensor:
        # style_loss is multiplied by the style weight: the term's own weight is divided by it here
        extra = term(trainer, features, trainer.last_results)
        return gram_loss(trainer, features, which) + args.weight / trainer.config.style_weight * extra

    StyleTrainer.generate, StyleTrainer.style_loss = keep_results, style_loss
    train_style({args.painting: painting}, DATA / "content-train", args.output, config)


if __name__ == "__main__":
    main()
