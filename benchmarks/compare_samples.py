"""A figure to look at two training recipes side by side: one row per model, the example it imitates
then its first samples (seed 0, the seed `texnet evaluate` scores), so that a row before and a row
after a change show the same noise through both networks.

    python benchmarks/compare_samples.py docs/batch-two.jpg \
        --row "water, 1 sample per step" ../shared/data/textures/water.png water \
        --row "water, 2 samples per step" ../shared/data/textures/water.png runs/batch/water-b2
"""

from __future__ import annotations

import argparse
from pathlib import Path

from measure import save_figure


def sample_row(example: Path, model: str, count: int, size: int) -> list:
    """The example as training saw it (shrunk to the example size), then `count` samples of the model."""
    from texnet.image_io import image_to_tensor, load_image, resize_to_fit
    from texnet.sampling import TextureGenerator
    from texnet.training import TrainConfig

    seen = resize_to_fit(load_image(example), TrainConfig().example_size)
    samples = TextureGenerator.from_pretrained(model).sample_tensor(count, size, seed=0)
    return [image_to_tensor(seen)] + list(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path, help="the figure (.jpg)")
    parser.add_argument("--row", nargs=3, action="append", required=True, metavar=("LABEL", "EXAMPLE", "MODEL"),
                        help="a row: its label, the example texture, a model folder or built-in name")
    parser.add_argument("--count", type=int, default=3, help="samples per row (default 3)")
    parser.add_argument("--size", type=int, default=256, help="sample size in px (default 256)")
    args = parser.parse_args()
    rows = [(label, sample_row(Path(example), model, args.count, args.size)) for label, example, model in args.row]
    columns = ["example"] + [f"sample {index + 1}" for index in range(args.count)]
    save_figure(columns, rows, args.output, tile=args.size, same_scale=args.size)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
