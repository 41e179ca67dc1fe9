"""Which training recipe makes the best texture networks within a CPU budget (issue 10).

Each recipe is the cpu preset with some options changed; each is trained on the same textures
for the same number of iterations, timed, and scored with texnet.quality's held-out measures
(4 samples at 256 px). Results are cached per run in runs/recipes/RECIPE/TEXTURE/, so the study
can be stopped and continued, and split over processes (--recipes a b, --threads 1).

    python benchmarks/texture_recipes.py --iters 500 --textures brick burlap pebbles
Writes benchmarks/out/recipes.md and benchmarks/out/recipes.jpg.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
RUNS = HERE.parent / "runs" / "recipes"
TEXTURES = HERE.parent.parent / "shared" / "data" / "textures"
DONORS = {"brick": "pebbles"}  # warm starts come from another texture's model (default: brick)

RECIPES = {
    "gram": {},
    "gram+norm": {"normalize_gradients": True},
    "sw": {"loss": "sw"},
    "sw+norm": {"loss": "sw", "normalize_gradients": True},
    "gram+multiscale": {"multiscale": 1.0},
    "gram+spectrum": {"spectrum": 3e7},
    "gram+valid-vgg": {"vgg_padding": "valid"},
    "gram+warm": {"init_from": "donor"},
    "gram+histogram": {"histogram": 1e10},  # pixel colour SW of the built-ins' samples is 3e-4 to 4e-3; Gram 1e7 to 3e8
    "gram+6-scales": {"scales": 6},  # the paper's K; the cpu preset has 5 (coarsest map 16x16 at 256 px, not 8x8)
    "gram+6-scales+early-decay": {"scales": 6, "decay_start": 150, "decay_every": 50},  # lr 0.0084 at the end
    "gram+histogram-1e9": {"histogram": 1e9},
    "gram+histogram-3e9": {"histogram": 3e9},
    "gram+histogram+3x-steps": {"histogram": 1e10, "iters_factor": 3},  # for built-ins, which have no 10-minute budget
}


def recipe_config(name: str, texture: str, iters: int):
    """The cpu preset, its schedule scaled to `iters`, with the recipe's options."""
    from texnet.training import PRESETS, scaled_to

    options = dict(RECIPES[name])
    # The study's base is the preset without its colour histogram term and weight average, so each recipe adds one
    # thing to the paper's loss.
    preset = replace(scaled_to(PRESETS["cpu"], iters * options.pop("iters_factor", 1)), histogram=0.0, ema=0.0)
    if "scales" in options:
        options["generator"] = replace(preset.generator, scales=options.pop("scales"))
    if options.get("init_from") == "donor":
        options["init_from"] = DONORS.get(texture, "brick")
    return replace(preset, **options)


def train(name: str, texture: str, iters: int, descriptor) -> dict | None:
    """Train one recipe on one texture (resuming a stopped run); None where the recipe cannot
    apply (VGG without padding needs examples of at least 156 px)."""
    from texnet.errors import TexnetError
    from texnet.image_io import load_image
    from texnet.training import TextureTrainer

    folder = RUNS / name / texture
    record = folder / "timing.json"
    if record.exists():
        return json.loads(record.read_text())
    resume = (folder / "checkpoint").is_dir()
    folder.parent.mkdir(parents=True, exist_ok=True)
    config = recipe_config(name, texture, iters)
    try:
        trainer = TextureTrainer(load_image(TEXTURES / f"{texture}.png"), folder, config, descriptor, progress=False)
    except TexnetError as error:
        print(name, texture, "not applicable:", error, flush=True)
        return None
    start = time.time()
    trainer.train(resume)
    timing = {"seconds": time.time() - start, "seconds_per_iteration": (time.time() - start) / config.iters,
              "iterations": config.iters, "resumed": resume, "threads": torch.get_num_threads()}
    record.write_text(json.dumps(timing))
    return timing


def evaluate(name: str, texture: str, descriptor) -> dict:
    from texnet.image_io import load_image
    from texnet.quality import evaluate_images
    from texnet.sampling import TextureGenerator

    path = RUNS / name / texture / "quality.json"
    if path.exists():
        return json.loads(path.read_text())
    model = TextureGenerator.from_pretrained(RUNS / name / texture)
    samples = [np.asarray(image) for image in model.sample(4, 256, backend="torch", bf16=False)]
    report = evaluate_images(descriptor, samples, load_image(TEXTURES / f"{texture}.png"),
                             tile_period=model.config.tile_multiple).as_dict()
    path.write_text(json.dumps(report))
    return report


def report(recipes: list[str], textures: list[str]) -> None:
    from measure import markdown_table, save_figure, write_report
    from texnet.image_io import image_to_tensor, load_image, resize_to_fit
    from texnet.sampling import TextureGenerator

    rows = []
    for texture in textures:
        for name in recipes:
            folder = RUNS / name / texture
            if not (folder / "quality.json").exists():
                continue
            quality = json.loads((folder / "quality.json").read_text())
            timing = json.loads((folder / "timing.json").read_text())
            rows.append([texture, name, f"{quality['held_out_gram']:.3g}", f"{quality['sliced_wasserstein']:.3g}",
                         f"{quality['structure']:.3f}", f"{quality['diversity']:.2f}", f"{quality['seam']:.2f}",
                         f"{quality['blobs']:.4f}", f"{timing['seconds_per_iteration']:.2f}"])
    write_report("recipes.md", markdown_table(["texture", "recipe", "held-out Gram", "SW", "structure", "diversity",
                                               "seam", "blobs", "s/it"], rows) + "\n")
    figure_rows = []
    for texture in textures:
        example = image_to_tensor(resize_to_fit(load_image(TEXTURES / f"{texture}.png"), 256))
        images = [example] + [TextureGenerator.from_pretrained(RUNS / name / texture).sample_tensor(
            1, 256, backend="torch", bf16=False) for name in recipes if (RUNS / name / texture / "model.onnx").exists()]
        figure_rows.append((texture, images))
    save_figure(["example"] + recipes, figure_rows, HERE / "out" / "recipes.jpg", tile=192, same_scale=256)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--textures", nargs="+", default=["brick", "burlap", "pebbles"])
    parser.add_argument("--iters", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.report_only:
        from texnet.descriptor import VGG19Descriptor
        from texnet.losses import SW_LAYERS
        from texnet.quality import evaluation_descriptor

        training = VGG19Descriptor.pretrained(SW_LAYERS + ("relu5_1",))
        scoring = evaluation_descriptor()
        for name in args.recipes:
            for texture in args.textures:
                timing = train(name, texture, args.iters, training)
                if timing is not None:
                    print(name, texture, json.dumps(timing), json.dumps(evaluate(name, texture, scoring)), flush=True)
    report(args.recipes, args.textures)


if __name__ == "__main__":
    main()
