"""Style at a comparable content loss: our nets against Gatys run at several style weights.

At the training's weights Gatys, starting from the photo, stays about 1.9x closer to it (relu4_2)
than our nets, so benchmarks/stylization.py compares style at unequal content. Here Gatys runs
once per photo at the style weight times each of --multipliers; its (content relu4_2, held-out
Gram) points form its trade-off curve, and its held-out Gram loss at *our* content loss is read
off that curve (linear in log-log between the two runs that bracket ours). Where our content
loss is beyond every Gatys run, the last run bounds the ratio from below (">=").
Writes benchmarks/out/style_tradeoff.md.

    python benchmarks/style_tradeoff.py --styles night-cafe starry-night [--photos 4] [--multipliers 1 2 4 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def gatys_at_content(points: list[tuple[float, float]], content: float) -> tuple[float, str]:
    """Gatys' held-out Gram loss at `content` from its (content, Gram) points, and "" for an
    interpolated value or ">=" where `content` lies past the last point (that point's Gram loss
    is then an upper bound on Gatys' and our ratio to it a lower bound), "<=" before the first."""
    points = sorted(points)
    contents = np.log([point[0] for point in points])
    grams = np.log([point[1] for point in points])
    bound = ">=" if content > points[-1][0] else "<=" if content < points[0][0] else ""
    return float(np.exp(np.interp(np.log(content), contents, grams))), bound


def tradeoff_row(style_name: str, photo_path: Path, multipliers: list[float], scorer, transfer_descriptor,
                 gatys_iters: int) -> dict:
    """Our scores on one photo, Gatys' at each style-weight multiplier, and the ratio at our content."""
    from stylization import gatys_run, scoring_setup

    model, painting_name, photo_image, score = scoring_setup(style_name, photo_path, scorer)
    training = model.info["config"]
    ours = score(np.asarray(model.stylize(photo_image)))
    gatys = {}
    for multiplier in multipliers:
        pixels, _, _ = gatys_run(photo_path, painting_name, training["style_weight"] * multiplier,
                                 training["content_weight"], training["style_size"], gatys_iters, transfer_descriptor)
        gatys[multiplier] = score(pixels)
    at_ours, bound = gatys_at_content([(g["content"], g["held_out_gram"]) for g in gatys.values()], ours["content"])
    return {"style": style_name, "photo": photo_path.stem, "ours": ours, "gatys": gatys,
            "gatys_gram_at_our_content": at_ours, "bound": bound}


def report(rows: list[dict], multipliers: list[float], machine: str, gatys_iters: int) -> str:
    from measure import markdown_table

    header = ["style", "photo", "ours: relu4_2 / held-out Gram"]
    header += [f"Gatys x{m:g}: relu4_2 / Gram" for m in multipliers]
    header += ["Gatys' Gram at our relu4_2", "ours / that"]
    table = []
    for row in rows:
        cells = [row["style"], row["photo"], f"{row['ours']['content']:.3g} / {row['ours']['held_out_gram']:.3g}"]
        cells += [f"{g['content']:.3g} / {g['held_out_gram']:.3g}" for g in row["gatys"].values()]
        ratio = row["ours"]["held_out_gram"] / row["gatys_gram_at_our_content"]
        cells += [f"{row['gatys_gram_at_our_content']:.3g}", f"{row['bound']}{ratio:.2f}"]
        table.append(cells)

    def median_ratio(these: list[dict]) -> float:
        return statistics.median(r["ours"]["held_out_gram"] / r["gatys_gram_at_our_content"] for r in these)

    styles = dict.fromkeys(row["style"] for row in rows)
    per_style = "; ".join(f"{s} {median_ratio([r for r in rows if r['style'] == s]):.2f}" for s in styles)
    bounded = sum(bool(row["bound"]) for row in rows)
    return (f"Machine: {machine}. Gatys: {gatys_iters} L-BFGS iterations from the photo, the style weight the "
            f"net was trained with times {', '.join(f'{m:g}' for m in multipliers)}.\n\n{markdown_table(header, table)}"
            f"\n\nMedian held-out Gram, ours / Gatys at our content loss: {median_ratio(rows):.2f} "
            f"({per_style}); {bounded} of {len(rows)} pairs outside Gatys' range (bounds).\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--styles", nargs="+", required=True, help="built-in style names or model folders")
    parser.add_argument("--photos", type=int, default=4, help="the first N photos of content-test")
    parser.add_argument("--multipliers", type=float, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--gatys-iters", type=int, default=100)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from measure import machine_description, write_report
    from stylization import DATA

    from texnet.descriptor import CONTENT_LAYER, TEXTURE_LAYERS, VGG19Descriptor
    from texnet.image_io import image_files
    from texnet.quality import style_evaluation_descriptor

    transfer_descriptor = VGG19Descriptor.pretrained((*TEXTURE_LAYERS, CONTENT_LAYER))
    scorer = style_evaluation_descriptor()
    rows = []
    for style_name in args.styles:
        for photo in image_files(DATA / "content-test")[: args.photos]:
            rows.append(tradeoff_row(style_name, photo, args.multipliers, scorer, transfer_descriptor,
                                     args.gatys_iters))
            print(json.dumps(rows[-1]), flush=True)
    write_report("style_tradeoff.md", report(rows, args.multipliers, machine_description(), args.gatys_iters))


if __name__ == "__main__":
    main()
