"""Stroke scale at inference (issue 12): one photo stylized by built-in styles at stroke scales
0.5, 1 and 2, with the mean spatial frequency of each result (lower: larger strokes).

    python benchmarks/stroke_scale.py [--styles starry-night kandinsky-viii] [--photo kingfisher]
Writes benchmarks/out/stroke-scale.jpg and benchmarks/out/stroke-scale.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
SCALES = (0.5, 1.0, 2.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--styles", nargs="+", default=["starry-night", "kandinsky-viii"])
    parser.add_argument("--photo", default="kingfisher")
    parser.add_argument("--size", type=int, default=512, help="the photo's longer side")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from measure import markdown_table, save_figure, write_report
    from texnet.image_io import image_to_tensor, load_image, resize_to_fit
    from texnet.quality import spectral_centroid
    from texnet.stylizer import Stylizer

    photo = resize_to_fit(load_image(DATA / "content-test" / f"{args.photo}.jpg"), args.size)
    rows, figure_rows = [], [("photo", [image_to_tensor(photo)])]
    for style in args.styles:
        model = Stylizer.from_pretrained(style)
        results = [model.stylize(photo, stroke_scale=scale) for scale in SCALES]
        rows.append([style] + [f"{spectral_centroid(result):.3f}" for result in results])
        figure_rows.append((style, [image_to_tensor(result) for result in results]))
    write_report("stroke-scale.md", f"Photo {args.photo} at {photo.width}x{photo.height}; mean spatial frequency "
                                    "of the result's luminance (cycles per pixel):\n\n"
                 + markdown_table(["style"] + [f"--stroke-scale {scale:g}" for scale in SCALES], rows) + "\n")
    save_figure([f"stroke scale {scale:g}" for scale in SCALES], figure_rows, HERE / "out" / "stroke-scale.jpg",
                tile=320)


if __name__ == "__main__":
    main()
