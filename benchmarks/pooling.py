"""Average or max pooling in the descriptor? Synthesises with each and scores each result
under both descriptors (a loss is only comparable within one descriptor).

    python benchmarks/pooling.py [--textures brick pebbles] [--size 128] [--iters 150]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--textures", nargs="*", default=["brick", "pebbles"])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iters", type=int, default=150)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from measure import machine_description, markdown_table
    from texnet.descriptor import VGG19Descriptor
    from texnet.image_io import image_to_tensor, load_image, resize_to_fit, save_image, tensor_to_image
    from texnet.losses import TextureTarget
    from texnet.optimize import OptimizeConfig, synthesize
    from texnet.weights import load_vgg_weights

    weights = load_vgg_weights()
    descriptors = {pooling: VGG19Descriptor(pooling=pooling, weights=weights) for pooling in ("avg", "max")}
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    rows = []
    for name in args.textures:
        example = image_to_tensor(resize_to_fit(load_image(DATA / "textures" / f"{name}.png"), 256))
        targets = {pooling: TextureTarget.from_image(d, example) for pooling, d in descriptors.items()}
        for pooling, descriptor in descriptors.items():
            start = time.perf_counter()
            result = synthesize(descriptor, example, (args.size, args.size),
                                OptimizeConfig(iters=args.iters, progress=False))
            seconds = time.perf_counter() - start
            scores = {other: float(targets[other].loss(descriptors[other](result.image))) for other in descriptors}
            save_image(tensor_to_image(result.image), out / f"pooling-{name}-{pooling}.png")
            rows.append([name, pooling, f"{seconds:.0f}", f"{result.history[0]:.3g}", f"{scores['avg']:.3g}",
                         f"{scores['max']:.3g}"])
            print(rows[-1], flush=True)
    table = markdown_table(["texture", "synthesised with", "seconds", "start loss (own descriptor)",
                            "final loss under avg-pool VGG", "final loss under max-pool VGG"], rows)
    (out / "pooling.md").write_text(f"Machine: {machine_description()}\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
