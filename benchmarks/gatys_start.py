"""Which start image lets L-BFGS texture synthesis converge: three candidates, four textures.

Each texture at 256 px, 40 L-BFGS steps from each start (seed 0); reports the loss of the final
8-bit image and the loss after 8 steps. Writes benchmarks/out/gatys-start.md.

    python benchmarks/gatys_start.py [--iters 40] [--textures pebbles pink-marble burlap autumn-leaves]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
SIZE = 256


def uniform_noise(example: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(1, 3, SIZE, SIZE, generator=generator)


def faint_noise(example: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """+-0.05 around the example's mean colour."""
    return example.mean(dim=(2, 3), keepdim=True) + 0.1 * (torch.rand(1, 3, SIZE, SIZE, generator=generator) - 0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iters", type=int, default=40)
    parser.add_argument("--textures", nargs="*", default=["pebbles", "pink-marble", "burlap", "autumn-leaves"])
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from measure import machine_description, markdown_table, write_report
    from texnet.descriptor import VGG19Descriptor
    from texnet.image_io import image_to_tensor, load_image, resize_to_fit
    from texnet.losses import TextureTarget
    from texnet.optimize import OptimizeConfig, optimize_image, start_image

    starts = {"uniform noise": uniform_noise, "faint noise around the mean colour": faint_noise,
              "random pixels of the example (texnet)": lambda example, _: start_image(example, (SIZE, SIZE), 0)}
    descriptor = VGG19Descriptor.pretrained()
    rows = []
    for name in args.textures:
        example = image_to_tensor(resize_to_fit(load_image(DATA / "textures" / f"{name}.png"), SIZE))
        target = TextureTarget.from_image(descriptor, example)
        row = [name]
        for start in starts.values():
            init = start(example, torch.Generator().manual_seed(0))
            result = optimize_image(lambda image: target.loss(descriptor(image)).sum(), init,
                                    OptimizeConfig(iters=args.iters, progress=False))
            row.append(f"{result.loss:.3g} (step 8: {result.history[min(7, args.iters - 1)]:.2g})")
        rows.append(row)
        print(row, flush=True)
    report = (f"Machine: {machine_description()}. {SIZE} px, {args.iters} L-BFGS steps; loss of the final 8-bit "
              f"image (and after 8 steps).\n\n{markdown_table(['texture', *starts], rows)}\n")
    write_report("gatys-start.md", report)


if __name__ == "__main__":
    main()
