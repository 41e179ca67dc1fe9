"""Which stylization network to ship (issue 12): the paper's pyramid or Johnson et al.'s residual
net, each trained for the same wall-clock time on one painting, then scored on the 10 held-out
photos of content-test with texnet.quality's fair measures, timed with onnxruntime at 512 px.

Each candidate's iteration count is what a 20-iteration timing probe says fits the budget (the
schedule scales with it). Runs are cached in runs/architectures/NAME/.

    python benchmarks/style_architectures.py --minutes 12 --painting starry-night
Writes benchmarks/out/architectures.md and benchmarks/out/architectures.jpg.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
RUNS = HERE.parent / "runs" / "architectures"
# Each candidate: a stylizer.VARIANTS network, changes to it, its Adam learning rate (default:
# style_training.LEARNING_RATES, whose cpu row these runs chose) and its style weight (default: the
# cpu preset's).
CANDIDATES = {
    "pyramid": {"variant": "improved"},
    # The pyramid's lr 0.05 collapsed the 8-channel residual net to flat colour.
    "residual-c8-k9-lr0.05": {"variant": "residual", "channels": 8, "lr": 0.05},
    "residual-c8-k9-lr0.01": {"variant": "residual", "channels": 8, "lr": 0.01},
    # Half of Johnson et al.'s width (16-32-64 channels, the issue's "about 0.4M parameters"), at
    # that lr and at one nearer the 1e-3 of the authors' train.lua.
    "residual-c16-k9-lr0.01": {"variant": "residual", "lr": 0.01},
    "residual-c16-k9-lr0.003": {"variant": "residual", "lr": 0.003},
    # 12-24-48 channels: 25,300 multiply-adds per pixel against 42,300, for the speed target.
    "residual-c12-k9": {"variant": "residual", "channels": 12},
    # 3x3 convolutions in and out instead of 9x9: 35,400 multiply-adds per pixel.
    "residual-c16-k3": {"variant": "residual", "edge_kernel": 3},
    # Without the full-resolution layers, 12-24-48 channels and 3x3 edges: 17,000 multiply-adds
    # per pixel, and the widest maps a quarter the size, for the speed target.
    "residual-c12-half-k3": {"variant": "residual", "channels": 12, "edge_kernel": 3,
                             "full_resolution_layers": False},
    # The default above at twice the style weight: does it buy back the held-out Gram loss?
    "residual-c12-half-k3-sw2e-4": {"variant": "residual", "channels": 12, "edge_kernel": 3,
                                    "full_resolution_layers": False, "style_weight": 2e-4},
}


def candidate_config(name: str, iters: int):
    from texnet.style_training import style_preset
    from texnet.training import scaled_to

    options = dict(CANDIDATES[name])
    preset = style_preset("cpu", options.pop("variant"))
    lr = options.pop("lr", preset.lr)
    style_weight = options.pop("style_weight", preset.style_weight)
    return replace(scaled_to(preset, iters), generator=replace(preset.generator, **options), lr=lr,
                   style_weight=style_weight)


def seconds_per_iteration(name: str, painting, descriptor) -> float:
    from texnet.style_training import StyleTrainer

    probe = RUNS / f"{name}-probe"
    trainer = StyleTrainer(painting, DATA / "content-train", probe, candidate_config(name, 1000), descriptor,
                           progress=False)
    trainer.step()
    start = time.perf_counter()
    for _ in range(20):
        trainer.step()
    return (time.perf_counter() - start) / 20


def train(name: str, painting, minutes: float, descriptor) -> dict:
    from texnet.style_training import train_style

    folder = RUNS / name
    record = folder / "run.json"
    if record.exists():
        return json.loads(record.read_text())
    per_iteration = seconds_per_iteration(name, painting, descriptor)
    iters = int(minutes * 60 / per_iteration)
    start = time.perf_counter()
    train_style(painting, DATA / "content-train", folder, candidate_config(name, iters), descriptor=descriptor,
                progress=False)
    run = {"iters": iters, "probe_seconds_per_iteration": per_iteration, "minutes": (time.perf_counter() - start) / 60}
    record.write_text(json.dumps(run))
    return run


def score(name: str, painting_name: str) -> dict:
    from measure import best_time
    from PIL import Image

    from texnet.image_io import load_image, resize_to_fit
    from texnet.quality import evaluate_stylization, style_evaluation_descriptor
    from texnet.stylizer import Stylizer

    path = RUNS / name / "scores.json"
    if path.exists():
        return json.loads(path.read_text())
    model = Stylizer.from_pretrained(RUNS / name)
    painting = load_image(DATA / "styles" / f"{painting_name}.jpg")
    descriptor = style_evaluation_descriptor()
    reports = []
    for photo_path in sorted((DATA / "content-test").iterdir()):
        photo = resize_to_fit(load_image(photo_path), 256)
        result = model.stylize(photo)
        reports.append(evaluate_stylization(descriptor, np.asarray(result), np.asarray(photo), painting).as_dict())
    photo = Image.open(DATA / "content-test" / "astronaut.jpg").convert("RGB").resize((512, 512))
    scores = {key: float(np.median([report[key] for report in reports])) for key in reports[0]}
    scores["seconds_512"] = best_time(lambda: model.stylize(photo))
    scores["parameters"] = sum(p.numel() for p in model.net.parameters())
    path.write_text(json.dumps(scores))
    return scores


def main() -> None:
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=12)
    parser.add_argument("--painting", default="starry-night")
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from measure import machine_description, markdown_table, save_figure, write_report
    from texnet.descriptor import CONTENT_LAYER, TEXTURE_LAYERS, VGG19Descriptor
    from texnet.image_io import image_to_tensor, load_image, resize_to_fit
    from texnet.stylizer import Stylizer

    RUNS.mkdir(parents=True, exist_ok=True)
    painting = load_image(DATA / "styles" / f"{args.painting}.jpg")
    descriptor = VGG19Descriptor.pretrained((*TEXTURE_LAYERS, CONTENT_LAYER))
    rows = []
    for name in args.candidates:
        run = train(name, painting, args.minutes, descriptor)
        scores = score(name, args.painting)
        print(name, json.dumps(run), json.dumps(scores), flush=True)
        rows.append([name, f"{scores['parameters']:,}", run["iters"], f"{run['minutes']:.1f}",
                     f"{scores['held_out_gram']:.3g}", f"{scores['sliced_wasserstein']:.3g}",
                     f"{scores['content']:.3g}", f"{scores['content_held_out']:.3g}",
                     f"{scores['seconds_512'] * 1000:.0f} ms"])
    table = markdown_table(["network", "parameters", "iterations", "minutes", "held-out Gram (median)",
                            "SW (median)", "content relu4_2", "content relu3_2 (held out)", "512 px, onnxruntime"],
                           rows)
    write_report("architectures.md", f"Machine: {machine_description()}; painting {args.painting}, "
                                     f"{args.minutes:g} minutes each.\n\n{table}\n")
    photos = [resize_to_fit(load_image(DATA / "content-test" / f"{name}.jpg"), 256)
              for name in ("astronaut", "coffee", "great-wall", "kingfisher")]
    figure_rows = [("photo", [image_to_tensor(photo) for photo in photos])]
    for name in args.candidates:
        model = Stylizer.from_pretrained(RUNS / name)
        figure_rows.append((name, [image_to_tensor(model.stylize(photo)) for photo in photos]))
    save_figure(["", "", "", ""], figure_rows, HERE / "out" / "architectures.jpg", tile=200)


if __name__ == "__main__":
    main()
