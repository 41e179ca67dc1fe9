"""Times the Gatys baseline (texnet synthesize / transfer) at 256 and 512 px on this machine.

For each job, in a fresh process: seconds per L-BFGS iteration, time to bring the loss down to
1% of its starting value, the loss after the last iteration, and peak resident memory (and how
much of it the optimisation added on top of the loaded model). Writes benchmarks/out/gatys.md.

    python benchmarks/gatys_baseline.py [--iters-256 200] [--iters-512 100]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
TARGET_FRACTION = 0.01


def run_job(job: dict) -> dict:
    import torch

    from measure import peak_rss_mb
    from texnet.descriptor import CONTENT_LAYER, TEXTURE_LAYERS, VGG19Descriptor
    from texnet.image_io import image_to_tensor, load_image, resize_to_fit
    from texnet.optimize import OptimizeConfig, synthesize, transfer

    size = job["size"]
    descriptor = VGG19Descriptor.pretrained(layers=(*TEXTURE_LAYERS, CONTENT_LAYER))
    baseline = peak_rss_mb()
    config = OptimizeConfig(iters=job["iters"], progress=False)
    start = time.perf_counter()
    if job["kind"] == "synthesize":
        example = image_to_tensor(resize_to_fit(load_image(DATA / "textures" / job["image"]), 256))
        result = synthesize(descriptor, example, (size, size), config)
    else:
        content = image_to_tensor(resize_to_fit(load_image(DATA / "content-test" / job["image"]), size))
        style = image_to_tensor(resize_to_fit(load_image(DATA / "styles" / job["style"]), size))
        result = transfer(descriptor, content, style, config=config, weights=job_weights())
    elapsed = time.perf_counter() - start
    history = result.history
    target = history[0] * TARGET_FRACTION
    reached = next((i + 1 for i, loss in enumerate(history) if loss <= target), None)
    per_iter = elapsed / len(history)
    return {"seconds_per_iter": per_iter, "iters": len(history), "final_loss": result.loss,
            "seconds_to_target": reached * per_iter if reached else None,
            "peak_mb": peak_rss_mb(), "added_mb": peak_rss_mb() - baseline,
            "torch_threads": torch.get_num_threads()}


def job_weights():
    from texnet.optimize import TransferWeights

    return TransferWeights()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--job")
    parser.add_argument("--iters-256", type=int, default=200)
    parser.add_argument("--iters-512", type=int, default=100)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    if args.job:
        print(json.dumps(run_job(json.loads(args.job))))
        return
    from measure import machine_description, markdown_table, run_isolated

    rows = []
    for kind, image, style in (("synthesize", "brick.png", None), ("transfer", "astronaut.jpg", "starry-night.jpg")):
        for size, iters in ((256, args.iters_256), (512, args.iters_512)):
            job = {"kind": kind, "image": image, "style": style, "size": size, "iters": iters}
            r = run_isolated(Path(__file__), job)
            to_target = f"{r['seconds_to_target']:.1f}" if r["seconds_to_target"] else f"not within {iters} it"
            rows.append([kind, image if not style else f"{image} + {style}", f"{size}", f"{r['seconds_per_iter']:.2f}",
                         to_target, f"{r['final_loss']:.3g} ({iters} it)", f"{r['peak_mb']:.0f}", f"{r['added_mb']:.0f}"])
            print(rows[-1], flush=True)
    table = markdown_table(["job", "input", "px", "s / iteration", f"s to {TARGET_FRACTION:.0%} of start loss",
                            "final loss", "peak RSS MB", "MB added by optimisation"], rows)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "gatys.md").write_text(f"Machine: {machine_description()}\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
