"""Style at a comparable content loss: our nets against Gatys run at several style weights.

At the training's weights Gatys, starting from the photo, stays about 1.9x closer to it (relu4_2)
than our nets, so benchmarks/stylization.py compares style at unequal content. Here Gatys runs
once per photo at the built-ins' style weight times each of --multipliers (the same runs for every
net of a painting, whatever its own weights or loss); its (content relu4_2, held-out
Gram) and (content, SW distance) points form its trade-off curves, and its style distances at
*our* content loss are read off them (linear in log-log between the two runs that bracket ours).
Where our content loss is beyond every Gatys run, the last run bounds the ratio from below (">=").
Gatys' results are cached as PNGs in benchmarks/out/style_tradeoff/ (only their losses are used),
so scoring a new net against the same photos and weights costs no Gatys runs.
Writes benchmarks/out/style_tradeoff.md.

    python benchmarks/style_tradeoff.py --styles night-cafe starry-night [--photos 4] [--multipliers 1 2 4 8]
        [--stroke-scales 0.75 1 1.5] [--photo-folder ../shared/data/content-train --skip 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


MEASURES = {"held_out_gram": "held-out Gram", "sliced_wasserstein": "SW"}


def gatys_at_content(points: list[tuple[float, float]], content: float) -> tuple[float, str]:
    """Gatys' style distance at `content` from its (content, distance) points, and "" for an
    interpolated value or ">=" where `content` lies past the last point (that point's distance
    is then an upper bound on Gatys' and our ratio to it a lower bound), "<=" before the first."""
    points = sorted(points)
    contents = np.log([point[0] for point in points])
    distances = np.log([point[1] for point in points])
    bound = ">=" if content > points[-1][0] else "<=" if content < points[0][0] else ""
    return float(np.exp(np.interp(np.log(content), contents, distances))), bound


def cached_gatys_pixels(photo_path: Path, painting_name: str, style_weight: float, content_weight: float,
                        style_size: int, gatys_iters: int, transfer_descriptor) -> np.ndarray:
    """Gatys' result for these settings, from benchmarks/out/style_tradeoff/ or run and saved there."""
    from PIL import Image
    from stylization import OUT, gatys_run

    path = (OUT / "style_tradeoff" / f"{photo_path.stem}-{painting_name}-style{style_weight:g}"
            f"-content{content_weight:g}-size{style_size}-iters{gatys_iters}.png")
    if not path.exists():
        pixels, _, _ = gatys_run(photo_path, painting_name, style_weight, content_weight, style_size, gatys_iters,
                                 transfer_descriptor)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path)
    return np.asarray(Image.open(path))


def tradeoff_row(style_name: str, photo_path: Path, multipliers: list[float], scorer, transfer_descriptor,
                 gatys_iters: int, stroke_scale: float = 1.0) -> dict:
    """Our scores on one photo (stylized at `stroke_scale`), Gatys' at each style-weight
    multiplier, and its style distances (with their bounds) at our content loss."""
    from stylization import scoring_setup

    from texnet.style_training import StyleTrainConfig

    model, painting_name, photo_image, score = scoring_setup(style_name, photo_path, scorer)
    training = model.info["config"]
    ours = score(np.asarray(model.stylize(photo_image, stroke_scale=stroke_scale)))
    # One Gatys curve per painting, whatever weight or loss a net was trained with: its points are cached.
    base = StyleTrainConfig.style_weight
    gatys = {multiplier: score(cached_gatys_pixels(photo_path, painting_name, base * multiplier,
                                                   training["content_weight"], training["style_size"], gatys_iters,
                                                   transfer_descriptor))
             for multiplier in multipliers}
    at_ours = {measure: gatys_at_content([(g["content"], g[measure]) for g in gatys.values()], ours["content"])
               for measure in MEASURES}
    label = style_name if stroke_scale == 1 else f"{style_name}, stroke scale {stroke_scale:g}"
    return {"style": label, "photo": photo_path.stem, "ours": ours, "gatys": gatys, "gatys_at_our_content": at_ours}


def ratio(row: dict, measure: str) -> float:
    return row["ours"][measure] / row["gatys_at_our_content"][measure][0]


def report(rows: list[dict], multipliers: list[float], machine: str, gatys_iters: int) -> str:
    from measure import markdown_table

    from texnet.style_training import StyleTrainConfig

    header = ["style", "photo", "ours: relu4_2 / held-out Gram / SW"]
    header += [f"Gatys x{m:g}: relu4_2 / Gram / SW" for m in multipliers]
    header += [f"{label}: ours / Gatys at our relu4_2" for label in MEASURES.values()]
    table = []
    for row in rows:
        cells = [row["style"], row["photo"]]
        cells += [f"{r['content']:.3g} / {r['held_out_gram']:.3g} / {r['sliced_wasserstein']:.3g}"
                  for r in (row["ours"], *row["gatys"].values())]
        cells += [f"{row['gatys_at_our_content'][measure][1]}{ratio(row, measure):.2f}" for measure in MEASURES]
        table.append(cells)

    def medians(these: list[dict]) -> str:
        return " and ".join(f"{statistics.median(ratio(r, measure) for r in these):.2f}" for measure in MEASURES)

    styles = dict.fromkeys(row["style"] for row in rows)
    per_style = "; ".join(f"{s} {medians([r for r in rows if r['style'] == s])}" for s in styles)
    bounded = sum(bool(row["gatys_at_our_content"]["held_out_gram"][1]) for row in rows)
    return (f"Machine: {machine}. Gatys: {gatys_iters} L-BFGS iterations from the photo, the built-ins' style "
            f"weight ({StyleTrainConfig.style_weight:g}) times {', '.join(f'{m:g}' for m in multipliers)}."
            f"\n\n{markdown_table(header, table)}"
            f"\n\nMedian ours / Gatys at our content loss, held-out Gram and SW: {medians(rows)} "
            f"({per_style}); {bounded} of {len(rows)} pairs outside Gatys' range (bounds).\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--styles", nargs="+", required=True, help="built-in style names or model folders")
    parser.add_argument("--photos", type=int, default=4, help="the first N photos of the folder")
    parser.add_argument("--photo-folder", type=Path, help="score on these photos (default: content-test)")
    parser.add_argument("--skip", type=int, default=0, help="leave out the folder's first N photos (content-train's "
                        "first 4 are held out of training)")
    parser.add_argument("--multipliers", type=float, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--gatys-iters", type=int, default=100)
    parser.add_argument("--stroke-scales", type=float, nargs="+", default=[1.0],
                        help="score our nets at each of these stroke scales (texnet stylize --stroke-scale)")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from measure import machine_description, write_report
    from stylization import DATA

    from texnet.descriptor import CONTENT_LAYER, TEXTURE_LAYERS, VGG19Descriptor
    from texnet.image_io import image_files
    from texnet.quality import style_evaluation_descriptor

    transfer_descriptor = VGG19Descriptor.pretrained((*TEXTURE_LAYERS, CONTENT_LAYER))
    scorer = style_evaluation_descriptor()
    photos = image_files(args.photo_folder or DATA / "content-test")[args.skip:][: args.photos]
    rows = []
    for style_name in args.styles:
        for stroke_scale in args.stroke_scales:
            for photo in photos:
                rows.append(tradeoff_row(style_name, photo, args.multipliers, scorer, transfer_descriptor,
                                         args.gatys_iters, stroke_scale))
                print(json.dumps(rows[-1]), flush=True)
    write_report("style_tradeoff.md", report(rows, args.multipliers, machine_description(), args.gatys_iters))


if __name__ == "__main__":
    main()
