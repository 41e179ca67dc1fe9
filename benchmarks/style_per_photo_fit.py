"""How near Gatys a style net gets when it may adapt to each photo (issue 12: is global context worth building?).

A net that serves every photo in one pass paints relu4_1's features in proportions about a percent
off the painting's (benchmarks/style_gram_parts.py); Gatys, fitting one image, does not. Any global
context a net could take from its photo (pooled features steering its norms: FiLM, AdaIN-like
conditioning) can at best set each instance norm's scale and shift per photo. This fits exactly
that, per photo, by Adam on the training's own loss (Gram to the painting + relu4_2 to the photo,
at the net's weights): the ceiling of any such context. For contrast it also fits every weight per
photo: the ceiling of the architecture itself. Gatys runs from the photo for the same numbers of
steps, timed, for results at the same time. Each result is scored like benchmarks/
style_tradeoff.py (held-out Gram and SW, read against Gatys' cached curve at the result's content
loss). The norms fitted to the first photo are also tried on the others: a shift every photo
wants (what longer training could learn) helps them too, a per-photo setting does not.
Writes benchmarks/out/style_per_photo_fit-STYLE-stepsSTEPS.md and each fitted result as a PNG beside it.
The fit of every weight is texnet.refine's, what `texnet stylize --refine` does.

    python benchmarks/style_per_photo_fit.py --style night-cafe --photos 3 --steps 5 10 20 50 200
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def norm_parameters(net: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The affine scale and shift of every instance norm: all a per-photo global context could set."""
    return [p for m in net.modules() if isinstance(m, torch.nn.InstanceNorm2d) for p in (m.weight, m.bias)]


def gatys_snapshots(photo: torch.Tensor, painting: torch.Tensor, weights, descriptor,
                    snapshots: list[int]) -> dict[str, tuple[np.ndarray, float]]:
    """Gatys from the photo at the net's weights: its image after each of `snapshots` L-BFGS steps
    and the seconds it took, for the same time budgets the fits get."""
    from texnet.image_io import tensor_to_image
    from texnet.optimize import OptimizeConfig, transfer

    images, start = {}, time.perf_counter()

    def snapshot(step: int, loss: float, image: torch.Tensor) -> None:
        if step in snapshots:
            images[f"Gatys, {step} steps"] = (np.asarray(tensor_to_image(image)), time.perf_counter() - start)

    transfer(descriptor, photo, painting, weights, config=OptimizeConfig(iters=max(snapshots), progress=False),
             on_step=snapshot)
    return images


def net_result(net: torch.nn.Module, photo: torch.Tensor) -> np.ndarray:
    """The net's result on a (1, 3, H, W) photo in PyTorch float32, uint8 (H, W, 3)."""
    from texnet.image_io import tensor_to_image

    with torch.no_grad():
        return np.asarray(tensor_to_image(copy.deepcopy(net).float().eval()(None, photo)))


def score_against_gatys(style: str, photos: int, report_name: str, results_for, multipliers=(1, 3, 10, 30, 100, 300)):
    """Scores `results_for(model, photo tensor, painting tensor, descriptor, photo name)`, which
    gives {name: (pixels, seconds it took or None)}, on the first `photos` content-test photos
    against Gatys' cached curve at each result's content loss (held-out Gram and SW), and writes
    benchmarks/out/`report_name`."""
    from measure import machine_description, markdown_table, write_report
    from style_tradeoff import MEASURES, cached_gatys_pixels, gatys_at_content
    from stylization import DATA, scoring_setup

    from texnet.descriptor import CONTENT_LAYER, TEXTURE_LAYERS, VGG19Descriptor
    from texnet.image_io import image_files, image_to_tensor, load_image, resize_to_fit
    from texnet.quality import style_evaluation_descriptor
    from texnet.style_training import StyleTrainConfig

    descriptor = VGG19Descriptor.pretrained((*TEXTURE_LAYERS, CONTENT_LAYER))
    scorer = style_evaluation_descriptor()
    rows, ratios = [], {}
    for photo_path in image_files(DATA / "content-test")[:photos]:
        model, painting_name, photo_image, score = scoring_setup(style, photo_path, scorer)
        training = model.info["config"]
        painting = image_to_tensor(resize_to_fit(load_image(DATA / "styles" / f"{painting_name}.jpg"),
                                                 training["style_size"]))
        gatys = [score(cached_gatys_pixels(photo_path, painting_name, StyleTrainConfig.style_weight * m,
                                           training["content_weight"], training["style_size"], 100, descriptor))
                 for m in multipliers]
        results = results_for(model, image_to_tensor(photo_image), painting, descriptor, photo_path.stem)
        for name, (pixels, seconds) in results.items():
            ours = score(pixels)
            cells = [photo_path.stem, name, "" if seconds is None else f"{seconds:.1f} s",
                     f"{ours['content']:.3g} / {ours['held_out_gram']:.3g} / {ours['sliced_wasserstein']:.3g}"]
            for measure in MEASURES:
                value, bound = gatys_at_content([(g["content"], g[measure]) for g in gatys], ours["content"])
                ratios.setdefault(name, {}).setdefault(measure, []).append(ours[measure] / value)
                cells.append(f"{bound}{ours[measure] / value:.2f}")
            rows.append(cells)
            print(" | ".join(cells), flush=True)
    header = ["photo", "result", "time", "relu4_2 / held-out Gram / SW",
              *(f"{label}: ours / Gatys at our relu4_2" for label in MEASURES.values())]
    medians = "; ".join(f"{name}: {' and '.join(f'{statistics.median(values):.2f}' for values in by.values())}"
                        for name, by in ratios.items())
    write_report(report_name, f"Machine: {machine_description()}. {style}.\n\n{markdown_table(header, rows)}"
                              f"\n\nMedian ratios (held-out Gram and SW): {medians}.\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", required=True, help="a built-in style name or a model folder")
    parser.add_argument("--photos", type=int, default=3, help="the first N photos of content-test")
    parser.add_argument("--steps", type=int, nargs="+", default=[200], help="score the fits after these many steps")
    parser.add_argument("--lr-norms", type=float, default=0.01)
    parser.add_argument("--lr-all", type=float, default=1e-3)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from PIL import Image

    from texnet.optimize import TransferWeights
    from texnet.refine import refine_net

    first_photo_norms = []  # the first photo's fitted norms (after the most steps), tried on the other photos

    def fitted_results(model, photo, painting, descriptor, photo_name: str) -> dict:
        results = {"net": (net_result(model.net, photo), None)}
        if first_photo_norms:
            results["norms fitted to the first photo"] = (net_result(first_photo_norms[0], photo), None)
        training = model.info["config"]
        weights = TransferWeights(style=training["style_weight"], content=training["content_weight"])
        for fit, lr in (("norms", args.lr_norms), ("all", args.lr_all)):
            clock = {"fit": 0.0, "mark": time.perf_counter()}  # the fit's time, without its snapshots'

            def snapshot(step: int, fitted: torch.nn.Module) -> None:
                if step in args.steps:
                    clock["fit"] += time.perf_counter() - clock["mark"]
                    results[f"{fit}, {step} steps"] = (net_result(fitted, photo), clock["fit"])
                    Image.fromarray(results[f"{fit}, {step} steps"][0]).save(
                        HERE / "out" / f"per-photo-fit-{args.style}-{photo_name}-{fit}-{step}.png")
                    clock["mark"] = time.perf_counter()

            chosen = {"trainable": norm_parameters} if fit == "norms" else {}
            fitted = refine_net(model.net, photo, painting, weights, max(args.steps), descriptor, lr=lr,
                                on_step=snapshot, **chosen)
            if fit == "norms" and not first_photo_norms:
                first_photo_norms.append(fitted)
        return {**results, **gatys_snapshots(photo, painting, weights, descriptor, args.steps)}

    steps = "-".join(map(str, args.steps))
    score_against_gatys(args.style, args.photos, f"style_per_photo_fit-{args.style}-steps{steps}.md", fitted_results)


if __name__ == "__main__":
    main()
