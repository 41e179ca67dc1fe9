"""Shared benchmark helpers: run a measurement in a fresh process (clean peak memory), write tables."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import torch


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, from /proc (Linux).

    Not getrusage's ru_maxrss: Linux carries the parent's peak into a forked child, so a
    child of a large process would report the parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_isolated(script: Path, job: dict) -> dict:
    """Run `script --job JSON` in a new interpreter; it prints one JSON line with its results."""
    output = subprocess.run([sys.executable, str(script), "--job", json.dumps(job)],
                            capture_output=True, text=True, check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def machine_description() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(name: str, text: str) -> None:
    """Write `text` to benchmarks/out/`name` and print it."""
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / name).write_text(text)
    print(text)


def save_figure(columns: list[str], rows: list[tuple[str, list]], path: Path, tile: int) -> None:
    """A grid of (1, 3, H, W) or (3, H, W) images: a title over each column, each row named in its
    first cell; every image scaled so its longer side is `tile` px."""
    from PIL import Image, ImageDraw

    from texnet.image_io import tensor_to_image

    gap, label = 6, 18
    figure = Image.new("RGB", (len(columns) * (tile + gap), label + len(rows) * (tile + gap)), "white")
    draw = ImageDraw.Draw(figure)
    for column, title in enumerate(columns):
        draw.text((column * (tile + gap) + 4, 3), title, fill="black")
    for row, (name, images) in enumerate(rows):
        for column, image in enumerate(images):
            picture = tensor_to_image(image)
            scale = tile / max(picture.size)
            picture = picture.resize((round(picture.width * scale), round(picture.height * scale)),
                                     Image.Resampling.LANCZOS)
            figure.paste(picture, (column * (tile + gap), label + row * (tile + gap)))
        draw.text((4, label + row * (tile + gap) + 4), name, fill="white")
    figure.save(path, quality=88)
