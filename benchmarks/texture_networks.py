"""Feed-forward texture networks against the Gatys baseline, on fair measures (issue 10).

For each texture of ../shared/data/textures with a built-in model, on this machine:
- the built-in model's 4 samples (256 px, seeds 0-3) and Gatys' result (256 px, L-BFGS, seed 0),
  both scored by texnet.quality on statistics neither optimised: held-out Gram loss, sliced
  Wasserstein distance, autocorrelation structure (and the example's own scores as the floor:
  the resized example scored against the held-out targets like a sample);
  diversity, phase-aware seam and saturated blobs for the samples, the last two also on 32 more
  samples (seeds 100-131): rare faults, such as one blob in eight samples, do not show in 4;
  the droplet score (texnet.droplets) of those 32;
- time: one sample (the default backend, best of 5) and one Gatys step (brick, mean of 30); the
  fair speed-up is the time Gatys needs to reach the samples' held-out Gram loss (its images at
  5, 10, 20, 40, 70, 100 and 150 steps are scored) over the time of one sample.
Gatys' part does not depend on the models: it is cached per texture in benchmarks/out/textures/
(delete a file to redo a texture) and can be computed alone (--gatys-only) while models train;
the timings are taken last, in one go, on a quiet machine.
Writes benchmarks/out/textures.md and benchmarks/out/textures.jpg (example | Gatys | 3 samples).

    python benchmarks/texture_networks.py [--textures brick lava] [--gatys-iters 150] [--gatys-only]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "textures"
OUT = HERE / "out" / "textures"
SIZE = 256
SNAPSHOTS = (5, 10, 20, 40, 70, 100, 150)
MORE_SAMPLES = range(100, 132)  # seeds of the samples that seams and blobs are also scored on


def example(name: str):
    from texnet.image_io import load_image

    return load_image(DATA / f"{name}.png")


def gatys_record(name: str, gatys_iters: int, descriptor) -> dict:
    """Gatys' result and its held-out Gram loss after each of SNAPSHOTS steps."""
    from PIL import Image

    from texnet.image_io import image_to_tensor, resize_to_fit, tensor_to_image
    from texnet.optimize import OptimizeConfig, synthesize
    from texnet.quality import evaluate_images, example_floor, held_out_gram_scorer

    original, snapshots = example(name), {}

    def snapshot(iteration: int, loss: float, image) -> None:
        if iteration in SNAPSHOTS:
            snapshots[iteration] = np.asarray(tensor_to_image(image.clamp(0, 1)))

    result = synthesize(descriptor, image_to_tensor(resize_to_fit(original, SIZE)), (SIZE, SIZE),
                        OptimizeConfig(iters=gatys_iters, progress=False), on_step=snapshot)
    gatys = np.asarray(tensor_to_image(result.image))
    Image.fromarray(gatys).save(OUT / f"{name}-gatys.png")
    score = held_out_gram_scorer(descriptor, original, SIZE)
    held_out = {step: score(image_to_tensor(Image.fromarray(image))) for step, image in snapshots.items()}
    return {"texture": name, "gatys_iters": gatys_iters, "snapshots": held_out,
            "gatys": evaluate_images(descriptor, [gatys], original, SIZE).as_dict(),
            "floor": example_floor(descriptor, original, SIZE).as_dict()}


def cached_gatys(name: str, gatys_iters: int, descriptor) -> dict:
    cached = OUT / f"{name}-gatys.json"
    if not cached.exists():
        cached.write_text(json.dumps(gatys_record(name, gatys_iters, descriptor)))
        print(cached.read_text(), flush=True)
    return json.loads(cached.read_text())


def sample_seconds(model) -> float:
    timings = []
    for seed in range(6):
        start = time.perf_counter()
        model.sample(1, SIZE, seed=seed)
        timings.append(time.perf_counter() - start)
    return min(timings[1:])  # the first includes the backend's warm-up


def gatys_seconds_per_step(descriptor, steps: int = 30) -> float:
    from texnet.image_io import image_to_tensor, resize_to_fit
    from texnet.optimize import OptimizeConfig, synthesize

    target = image_to_tensor(resize_to_fit(example("brick"), SIZE))
    start = time.perf_counter()
    synthesize(descriptor, target, (SIZE, SIZE), OptimizeConfig(iters=steps, progress=False))
    return (time.perf_counter() - start) / steps


def faults_of_more_samples(model, original) -> dict:
    """Seams, blobs and droplets on MORE_SAMPLES (droplet_peak draws the same seeds)."""
    from texnet.droplets import FIRST_SEED, droplet_peak
    from texnet.image_io import resize_to_fit
    from texnet.quality import excess_blob_share, seam_score

    samples = [np.asarray(model.sample(1, SIZE, seed=seed)[0]) for seed in MORE_SAMPLES]
    assert MORE_SAMPLES.start == FIRST_SEED
    return {"seam": seam_score(samples, model.config.tile_multiple),
            "blobs": excess_blob_share(samples, np.asarray(resize_to_fit(original, SIZE))),
            "droplets": droplet_peak(model, len(MORE_SAMPLES), SIZE)}


def ff_record(name: str, gatys: dict, descriptor, gatys_step: float) -> dict:
    from texnet.quality import evaluate_images
    from texnet.sampling import TextureGenerator

    model, original = TextureGenerator.from_pretrained(name), example(name)
    samples = [np.asarray(image) for image in model.sample(4, SIZE, seed=0)]
    ff = evaluate_images(descriptor, samples, original, SIZE, tile_period=model.config.tile_multiple)
    more = faults_of_more_samples(model, original)
    reached = next((int(step) for step, gram in sorted(gatys["snapshots"].items(), key=lambda item: int(item[0]))
                    if gram <= ff.held_out_gram), None)
    return {**gatys, "ff": ff.as_dict(), "more": more, "training_steps": model.info["iterations"],
            "sample_seconds": sample_seconds(model), "gatys_step_seconds": gatys_step,
            "gatys_seconds": gatys_step * gatys["gatys_iters"],
            "gatys_to_ff_seconds": reached * gatys_step if reached else None}


def row(record: dict) -> list[str]:
    ff, gatys, floor = record["ff"], record["gatys"], record["floor"]
    to_ff = record["gatys_to_ff_seconds"]
    speed = (to_ff or record["gatys_seconds"]) / record["sample_seconds"]
    return [record["texture"], f"{record['training_steps']:,}", f"{ff['held_out_gram'] / gatys['held_out_gram']:.2f}",
            f"{ff['sliced_wasserstein'] / gatys['sliced_wasserstein']:.2f}",
            f"{ff['structure']:.3f} / {gatys['structure']:.3f} / {floor['structure']:.3f}",
            f"{ff['diversity']:.2f}", f"{ff['seam']:.2f} / {record['more']['seam']:.2f}",
            f"{ff['blobs']:.2%} / {record['more']['blobs']:.3%}", f"{record['more']['droplets']:.1f}",
            f"{record['sample_seconds'] * 1000:.0f} ms", f"{record['gatys_seconds']:.0f} s",
            f"{to_ff:.1f} s" if to_ff else f"> {record['gatys_seconds']:.0f} s",
            f"{'>' if not to_ff else ''}{speed:.0f}x", f"{floor['held_out_gram'] / gatys['held_out_gram']:.2f}"]


def summary(records: list[dict]) -> str:
    gram = np.array([r["ff"]["held_out_gram"] / r["gatys"]["held_out_gram"] for r in records])
    sw = np.array([r["ff"]["sliced_wasserstein"] / r["gatys"]["sliced_wasserstein"] for r in records])
    speed = np.array([(r["gatys_to_ff_seconds"] or r["gatys_seconds"]) / r["sample_seconds"] for r in records])
    floor = np.array([r["floor"]["held_out_gram"] / r["gatys"]["held_out_gram"] for r in records])
    return (f"Median FF/Gatys: held-out Gram {np.median(gram):.2f} (max {gram.max():.2f}, "
            f"{(gram > 2.5).sum()} above 2.5), sliced Wasserstein {np.median(sw):.2f} (max {sw.max():.2f}, "
            f"{(sw > 2.5).sum()} above 2.5); diversity {min(r['ff']['diversity'] for r in records):.2f} to "
            f"{max(r['ff']['diversity'] for r in records):.2f}; seams {min(r['ff']['seam'] for r in records):.2f} to "
            f"{max(r['ff']['seam'] for r in records):.2f} ({min(r['more']['seam'] for r in records):.2f} to "
            f"{max(r['more']['seam'] for r in records):.2f} on 32 more); textures with saturated blobs: "
            f"{sum(r['ff']['blobs'] > 0 for r in records)} ({sum(r['more']['blobs'] > 0 for r in records)} on 32 more); "
            f"with droplets (score 8 or more): {', '.join(r['texture'] for r in records if r['more']['droplets'] >= 8) or 'none'}; "
            f"median speed-up {np.median(speed):.0f}x. The example itself scores {np.median(floor):.2f} of Gatys' "
            f"held-out Gram loss by median ({floor.min():.2f} to {floor.max():.2f}).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--textures", nargs="*")
    parser.add_argument("--gatys-iters", type=int, default=150)
    parser.add_argument("--gatys-only", action="store_true", help="only the cached, model-independent Gatys part")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from measure import machine_description, markdown_table, save_figure, write_report
    from texnet.image_io import image_to_tensor, load_image, resize_to_fit
    from texnet.model_files import builtin_models
    from texnet.quality import evaluation_descriptor
    from texnet.sampling import TextureGenerator

    OUT.mkdir(parents=True, exist_ok=True)
    textures = {path.stem for path in DATA.glob("*.png")}
    names = args.textures or sorted(textures if args.gatys_only else set(builtin_models("texture")) & textures)
    descriptor = evaluation_descriptor()
    gatys = {name: cached_gatys(name, args.gatys_iters, descriptor) for name in names}
    if args.gatys_only:
        return
    step = gatys_seconds_per_step(descriptor)
    records = [ff_record(name, gatys[name], descriptor, step) for name in names]
    header = ["texture", "training steps", "held-out Gram FF / Gatys", "SW FF / Gatys", "structure FF / Gatys / example",
              "diversity", "seam (4 / 32 more samples)", "blobs (4 / 32 more)", "droplets (32 more)", "one sample", f"Gatys {args.gatys_iters} steps", "Gatys to FF's held-out Gram",
              "speed-up", "held-out Gram: the example itself / Gatys"]
    table = markdown_table(header, [row(record) for record in records])
    write_report("textures.md", f"Machine: {machine_description()}\n\n{table}\n\n{summary(records)}\n")
    figure_rows = []
    for name in names:
        example = image_to_tensor(resize_to_fit(load_image(DATA / f"{name}.png"), 256))
        gatys = image_to_tensor(load_image(OUT / f"{name}-gatys.png"))
        samples = TextureGenerator.from_pretrained(name).sample_tensor(3, 256, seed=0)
        figure_rows.append((name, [example, gatys, *samples]))
    save_figure(["example", "Gatys", "sample 1", "sample 2", "sample 3"], figure_rows, HERE / "out" / "textures.jpg",
                tile=160, same_scale=SIZE)


if __name__ == "__main__":
    main()
