"""Does averaging the generator's weights over the last steps make better texture networks (issue 10)?

One training run of the built-ins' recipe (the cpu preset stretched to 1,500 steps, seed 0, so the
raw weights retrace the built-in model's run) keeps exponential moving averages of its weights at
several decays beside it (torch.optim.swa_utils, as `--ema` does). With one 256 px sample per step
the last steps' weights still jump: an average of them is the better model if it scores better.
The raw weights and each average are saved as runs/recipes/RECIPE/TEXTURE and scored by
texture_recipes.py's held-out measures (4 samples at 256 px):

    python benchmarks/weight_averaging.py --textures lava water
Writes benchmarks/out/recipes.md and benchmarks/out/recipes.jpg.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time

from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from texture_recipes import RUNS, TEXTURES, evaluate, report

BASE = "gram+histogram+3x-steps"  # the recipe of the built-ins
DECAYS = (0.99, 0.995, 0.998)


def names() -> list[str]:
    return [f"{BASE}+raw"] + [f"{BASE}+ema-{decay}" for decay in DECAYS]


def train(texture: str) -> None:
    """One run; the raw weights and every average saved as a model folder of its own."""
    from texnet.image_io import load_image
    from texnet.sampling import TextureGenerator
    from texnet.training import PRESETS, TextureTrainer, scaled_to

    folders = [RUNS / name / texture for name in names()]
    if all((folder / "timing.json").exists() for folder in folders):
        return
    config = scaled_to(PRESETS["cpu"], 1500)
    run = RUNS / "averaging-runs" / texture
    shutil.rmtree(run, ignore_errors=True)  # the averages are not checkpointed: an interrupted run starts again
    run.parent.mkdir(parents=True, exist_ok=True)
    trainer = TextureTrainer(load_image(TEXTURES / f"{texture}.png"), run, config, progress=False)
    averages = [AveragedModel(trainer.net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
                for decay in DECAYS]
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
    args = parser.parse_args()
    from texnet.quality import evaluation_descriptor

    scoring = evaluation_descriptor()
    for texture in args.textures:
        train(texture)
        for name in names():
            print(name, texture, json.dumps(evaluate(name, texture, scoring)), flush=True)
    report(names(), args.textures)


if __name__ == "__main__":
    main()
