"""Sampling time of a built-in texture model in float32 and bfloat16, and how far apart they are.

Best of 5 single samples at 256, 512 and 1024 px on this machine; prints one line per size.

    python benchmarks/sampling_precision.py [--model brick]
"""

from __future__ import annotations

import argparse
import time

from texnet import TextureGenerator


def best_of(repeats: int, function) -> float:
    times = []
    for seed in range(repeats):
        start = time.perf_counter()
        function(seed)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="brick")
    args = parser.parse_args()
    model = TextureGenerator.from_pretrained(args.model)
    for size in (256, 512, 1024):
        cells = [f"{size} px"]
        for bf16 in (False, True):
            model.sample_tensor(1, (size, size), bf16=bf16)  # warm-up
            seconds = best_of(5, lambda seed: model.sample_tensor(1, (size, size), seed=seed, bf16=bf16))
            cells.append(f"{'bfloat16' if bf16 else 'float32'} {seconds * 1000:.0f} ms")
        difference = (model.sample_tensor(1, (size, size), seed=3, bf16=False)
                      - model.sample_tensor(1, (size, size), seed=3, bf16=True)).abs()
        cells.append(f"pixel difference mean {difference.mean():.4f}, max {difference.max():.3f}")
        print(", ".join(cells))


if __name__ == "__main__":
    main()
