"""Feed-forward texture networks against the Gatys baseline, on the built-in models' textures.

For each texture, on this machine, in one run:
- texture loss (real VGG-19, 256 px) of feed-forward samples and of the Gatys result, and the ratio;
- sampling time at 256 px, Gatys time to reach the feed-forward loss, and the ratio;
- peak resident memory of sampling and of Gatys at 256 and 1024 px (fresh process each);
- diversity: mean pairwise feature distance of 4 samples / the same for 4 random crops of the example;
- seam score: mean jump across the wrap-around seam / mean jump between interior neighbours.
Writes benchmarks/out/textures.md and benchmarks/out/textures.jpg (example | Gatys | samples).

    python benchmarks/texture_networks.py [--gatys-iters 150] [--textures brick lava]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
SIZE = 256


def load_example(name):
    from texnet.image_io import image_to_tensor, load_image, resize_to_fit

    # The built-in models were trained on the example shrunk to 256 px.
    return image_to_tensor(resize_to_fit(load_image(DATA / "textures" / f"{name}.png"), SIZE))


def memory_job(job: dict) -> dict:
    """Peak RSS of one sampling or one Gatys run at job['size'], measured in a fresh process."""
    from measure import peak_rss_mb
    from texnet.descriptor import VGG19Descriptor
    from texnet.optimize import OptimizeConfig, synthesize
    from texnet.sampling import TextureGenerator

    size = job["size"]
    if job["method"] == "sample":
        model = TextureGenerator.from_pretrained(job["texture"])
        baseline = peak_rss_mb()
        model.sample_tensor(1, (size, size))
    else:
        descriptor = VGG19Descriptor.pretrained()
        example = load_example(job["texture"])
        baseline = peak_rss_mb()
        synthesize(descriptor, example, (size, size), OptimizeConfig(iters=3, progress=False))
    return {"peak_mb": peak_rss_mb(), "added_mb": peak_rss_mb() - baseline}


def feature_vectors(descriptor, images):
    import torch

    features = descriptor(images)
    return torch.cat([features[name].flatten(1) / features[name][0].numel() ** 0.5
                                    for name in ("relu3_1", "relu4_1")], dim=1)


def mean_pairwise_distance(vectors) -> float:
    import torch

    distances = torch.cdist(vectors, vectors)
    count = len(vectors)
    return float(distances.sum() / (count * (count - 1)))


def random_crops(example, count, size, seed=0):
    import torch

    generator = torch.Generator().manual_seed(seed)
    height, width = example.shape[-2:]
    crops = []
    for _ in range(count):
        top = int(torch.randint(0, height - size + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - size + 1, (1,), generator=generator))
        crops.append(example[..., top:top + size, left:left + size])
    return torch.cat(crops)


def seam_score(image) -> float:
    """Wrap-around jump (last column to first, last row to first) over the mean interior jump."""
    interior = ((image[..., :, 1:] - image[..., :, :-1]).abs().mean()
                + (image[..., 1:, :] - image[..., :-1, :]).abs().mean()) / 2
    seam = ((image[..., :, 0] - image[..., :, -1]).abs().mean() + (image[..., 0, :] - image[..., -1, :]).abs().mean()) / 2
    return float(seam / interior)


def quality_and_speed(name: str, gatys_iters: int, descriptor) -> tuple[dict, list]:
    import torch

    from texnet.losses import TextureTarget
    from texnet.optimize import OptimizeConfig, synthesize
    from texnet.sampling import TextureGenerator

    example = load_example(name)
    target = TextureTarget.from_image(descriptor, example)
    model = TextureGenerator.from_pretrained(name)
    model.sample_tensor(1, (SIZE, SIZE))  # warm-up
    timings = []
    for seed in range(5):
        start = time.perf_counter()
        model.sample_tensor(1, (SIZE, SIZE), seed=seed)
        timings.append(time.perf_counter() - start)
    sample_seconds = sorted(timings)[len(timings) // 2]
    samples = model.sample_tensor(4, (SIZE, SIZE), seed=100)
    samples_8bit = samples.mul(255).round().div(255)
    with torch.no_grad():
        ff_loss = float(target.loss(descriptor(samples_8bit)).mean())
        crop = min(example.shape[-2:]) * 3 // 4
        diversity = (mean_pairwise_distance(feature_vectors(descriptor, samples_8bit[..., :crop, :crop]))
                     / mean_pairwise_distance(feature_vectors(descriptor, random_crops(example, 4, crop))))
    start = time.perf_counter()
    gatys = synthesize(descriptor, example, (SIZE, SIZE), OptimizeConfig(iters=gatys_iters, progress=False))
    gatys_seconds = time.perf_counter() - start
    per_iter = gatys_seconds / gatys_iters
    reached = next((i + 1 for i, loss in enumerate(gatys.history) if loss <= ff_loss), None)
    row = {"texture": name, "ff_loss": ff_loss, "gatys_loss": gatys.loss, "sample_s": sample_seconds,
           "gatys_to_ff_s": reached * per_iter if reached else None, "gatys_s": gatys_seconds,
           "diversity": diversity, "seam": sum(seam_score(s) for s in samples) / len(samples)}
    return row, [example, gatys.image, samples[:3]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--job")
    parser.add_argument("--gatys-iters", type=int, default=150)
    parser.add_argument("--textures", nargs="*")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    if args.job:
        print(json.dumps(memory_job(json.loads(args.job))))
        return
    import torch

    from measure import machine_description, markdown_table, run_isolated, save_figure
    from texnet.descriptor import VGG19Descriptor
    from texnet.generators import bf16_is_fast
    from texnet.model_files import builtin_models

    names = args.textures or list(builtin_models("texture"))
    descriptor = VGG19Descriptor.pretrained()
    rows, panels = [], {}
    for name in names:
        row, panels[name] = quality_and_speed(name, args.gatys_iters, descriptor)
        for size in (256, 1024):
            for method in ("sample", "gatys"):
                row[f"{method}_{size}_mb"] = run_isolated(Path(__file__), {"method": method, "texture": name, "size": size})
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    table = markdown_table(
        ["texture", "FF loss", "Gatys loss", "loss ratio", "sample 256 px", "Gatys to FF loss", "speed-up",
         "MB 256 FF / Gatys", "MB 1024 FF / Gatys", "memory ratio 1024 (peak / added)", "diversity", "seam"],
        [format_row(row, args.gatys_iters) for row in rows])
    precision = "bfloat16" if bf16_is_fast(torch.device("cpu")) else "float32"
    (out / "textures.md").write_text(f"Machine: {machine_description()}. Feed-forward sampling in {precision} "
                                     f"(the default on this machine).\n\n{table}\n")
    figure_rows = [(name, [example, gatys, *samples]) for name, (example, gatys, samples) in panels.items()]
    save_figure(["example", "Gatys", "sample 1", "sample 2", "sample 3"], figure_rows, out / "textures.jpg", tile=160)
    print(table)


def format_row(row: dict, gatys_iters: int) -> list[str]:
    to_ff = row["gatys_to_ff_s"]
    reach = f"{to_ff:.1f} s" if to_ff else f">{row['gatys_s']:.0f} s (not in {gatys_iters} it)"
    speedup = (to_ff or row["gatys_s"]) / row["sample_s"]
    memory = {key: row[key]["peak_mb"] for key in ("sample_256_mb", "gatys_256_mb", "sample_1024_mb", "gatys_1024_mb")}
    added_1024 = row["gatys_1024_mb"]["added_mb"] / row["sample_1024_mb"]["added_mb"]
    return [row["texture"], f"{row['ff_loss']:.3g}", f"{row['gatys_loss']:.3g}",
            f"{row['ff_loss'] / row['gatys_loss']:.2f}", f"{row['sample_s'] * 1000:.0f} ms", reach,
            f"{'>' if not to_ff else ''}{speedup:.0f}x",
            f"{memory['sample_256_mb']:.0f} / {memory['gatys_256_mb']:.0f}",
            f"{memory['sample_1024_mb']:.0f} / {memory['gatys_1024_mb']:.0f}",
            f"{memory['gatys_1024_mb'] / memory['sample_1024_mb']:.1f}x / {added_1024:.1f}x",
            f"{row['diversity']:.2f}", f"{row['seam']:.2f}"]


if __name__ == "__main__":
    main()
