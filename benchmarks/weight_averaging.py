"""Does averaging the generator's weights over the last steps make better texture networks (issue 10)?

One training run of the built-ins' recipe (the cpu preset stretched to 1,500 steps, seed 0, so the
raw weights retrace the built-in model's run), or of the cpu preset itself (--iters 500), keeps
exponential moving averages of its weights at several decays beside it (torch.optim.swa_utils, as
`--ema` does). With one 256 px sample per step
the last steps' weights still jump: an average of them is the better model if it scores better.
The raw weights and each average are saved as runs/recipes/RECIPE/TEXTURE and scored by
texture_recipes.py's held-out measures (4 samples at 256 px):

    python benchmarks/weight_averaging.py --textures lava water
    python benchmarks/weight_averaging.py --textures lava water --iters 500 --decays 0.95 0.97 0.98 0.99
Writes benchmarks/out/recipes.md and benchmarks/out/recipes.jpg.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import replace

from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from texture_recipes import RUNS, TEXTURES, evaluate, report

BASES = {500: "gram+histogram", 1500: "gram+histogram+3x-steps"}  # the cpu preset; the recipe of the built-ins


def names(iters: int, decays: list[float]) -> list[str]:
    base = BASES[iters]
    return [f"{base}+raw"] + [f"{base}+ema-{decay}" for decay in decays]


def train(texture: str, iters: int, decays: list[float]) -> None:
    """One run; the raw weights and every average saved as a model folder of its own."""
    from texnet.image_io import load_image
    from texnet.sampling import TextureGenerator
    from texnet.training import PRESETS, TextureTrainer, scaled_to

    folders = [RUNS / name / texture for name in names(iters, decays)]
    if all((folder / "timing.json").exists() for folder in folders):
        return
    config = replace(scaled_to(PRESETS["cpu"], iters), ema=0.0)  # the averages are kept here, beside the raw run
    run = RUNS / "averaging-runs" / f"{texture}-{iters}"
    shutil.rmtree(run, ignore_errors=True)  # the averages are not checkpointed: an interrupted run starts again
    run.parent.mkdir(parents=True, exist_ok=True)
    trainer = TextureTrainer(load_image(TEXTURES / f"{texture}.png"), run, config, progress=False)
    averages = [AveragedModel(trainer.net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
                for decay in decays]
    start = time.time()
    trainer.train(on_step=lambda run: [average.update_parameters(run.net) for average in averages])
    timing = {"seconds": time.time() - start, "seconds_per_iteration": (time.time() - start) / config.iters,
              "iterations": config.iters, "resumed": False}
    info = trainer.model().info
    for folder, net in zip(folders, [trainer.net] + [average.module for average in averages]):
        TextureGenerator(net, info).save_pretrained(folder)
        (folder / "timing.json").write_text(json.dumps(timing))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--textures", nargs="+", default=["lava", "water"])
    parser.add_argument("--iters", type=int, choices=sorted(BASES), default=1500)
    parser.add_argument("--decays", type=float, nargs="+", default=[0.99, 0.995, 0.998])
    args = parser.parse_args()
    from texnet.quality import evaluation_descriptor

    scoring = evaluation_descriptor()
    for texture in args.textures:
        train(texture, args.iters, args.decays)
        for name in names(args.iters, args.decays):
            print(name, texture, json.dumps(evaluate(name, texture, scoring)), flush=True)
    report(names(args.iters, args.decays), args.textures)


if __name__ == "__main__":
    main()
