"""Does `--refine` carry to larger photos? The net against its refined copies at several photo sizes.

benchmarks/style_per_photo_fit.py measures refining at 256 px, where a crop is the whole photo.
Larger photos are refined on random 256 px crops (texnet.refine) and then stylized whole. This
stylizes the first --photos content-test photos at each of --sizes (longer side; photos are never
enlarged) with the model as
it is and refined for each of --steps, scores every result with texnet.quality's fair style
measures at that size (held-out Gram loss and SW distance to the painting, relu4_2 content loss
to the photo), and times the whole call (refining and stylizing). No Gatys curve is run at these
sizes: the measure is each refined result against the net's own. Writes
benchmarks/out/refine_sizes.md (refine_sizes-float32-bfloat16.md and so on with --precisions).

    python benchmarks/refine_sizes.py --style night-cafe --photos 3 --sizes 256 512 --steps 10 20
    python benchmarks/refine_sizes.py --style night-cafe --photos 3 --sizes 256 512 --steps 10 \
        --precisions float32 bfloat16
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", required=True, help="a built-in style name or a model folder")
    parser.add_argument("--photos", type=int, default=3, help="the first N photos of content-test")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--precisions", nargs="+", choices=["float32", "bfloat16"], default=["float32"],
                        help="refine in these (bfloat16: autocast, as training does)")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from measure import machine_description, markdown_table, write_report
    from stylization import DATA

    from texnet.descriptor import CONTENT_LAYER, TEXTURE_LAYERS, VGG19Descriptor
    from texnet.image_io import image_files, load_image, resize_to_fit
    from texnet.quality import StylizationScorer, style_evaluation_descriptor
    from texnet.stylizer import Stylizer

    model = Stylizer.from_pretrained(args.style)
    painting = load_image(DATA / "styles" / f"{model.style_names()[0]}.jpg")
    descriptor = VGG19Descriptor.pretrained((*TEXTURE_LAYERS, CONTENT_LAYER))
    scorer = style_evaluation_descriptor()
    rows, changes = [], {}
    for size in args.sizes:
        for path in image_files(DATA / "content-test")[: args.photos]:
            photo = resize_to_fit(load_image(path), size)
            score = StylizationScorer(scorer, np.asarray(photo), painting, model.style_size())
            start = time.perf_counter()
            result = model.stylize(photo)
            plain_seconds = time.perf_counter() - start
            plain = score(np.asarray(result)).as_dict()
            rows.append([path.stem, f"{photo.width}x{photo.height}", "net", f"{plain_seconds:.2f} s",
                         f"{plain['held_out_gram']:.3g}", f"{plain['sliced_wasserstein']:.3g}", f"{plain['content']:.3g}"])
            for steps, precision in itertools.product(args.steps, args.precisions):
                start = time.perf_counter()
                result = model.refined(photo, steps, descriptor=descriptor, bf16=precision == "bfloat16").stylize(photo)
                seconds = time.perf_counter() - start
                refined = score(np.asarray(result)).as_dict()
                ratios = [refined[key] / plain[key] for key in ("held_out_gram", "sliced_wasserstein", "content")]
                changes.setdefault((size, steps, precision), []).append(ratios)
                rows.append([path.stem, f"{photo.width}x{photo.height}", f"refined, {steps} steps, {precision}",
                             f"{seconds:.1f} s",
                             *(f"{refined[key]:.3g} ({ratio:.2f}x)" for key, ratio in
                               zip(("held_out_gram", "sliced_wasserstein", "content"), ratios))])
                print(" | ".join(rows[-1]), flush=True)
    summary = "; ".join(f"{size} px, {steps} steps, {precision}: held-out Gram {statistics.median(r[0] for r in ratios):.2f}x, "
                        f"SW {statistics.median(r[1] for r in ratios):.2f}x, content {statistics.median(r[2] for r in ratios):.2f}x"
                        for (size, steps, precision), ratios in changes.items())
    header = ["photo", "size", "result", "time (whole call)", "held-out Gram (refined / net)", "SW", "content relu4_2"]
    name = "refine_sizes" + "".join(f"-{p}" for p in args.precisions if args.precisions != ["float32"])
    write_report(f"{name}.md", f"Machine: {machine_description()}. {args.style}.\n\n"
                                    f"{markdown_table(header, rows)}\n\nMedian refined / net: {summary}.\n")


if __name__ == "__main__":
    main()
