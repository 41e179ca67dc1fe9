"""Video: stylizing a clip frame by frame, and looping texture animations.

Reading and writing go through PyAV, whose wheels carry FFmpeg: H.264 out, any common format
in. Frames stream one at a time (memory stays that of one frame, however long the clip), the
audio is copied across untouched, and frames keep their timestamps, so the frame rate and
sound stay in step. The file appears atomically when the clip is done.

Flicker is measured as the mean absolute change of the output between consecutive frames over
that of the input (1: the output changes exactly as much as the input does; frame-by-frame
stylization of a still scene under small camera moves scores well above 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from .atomic_write import write_atomically
from .errors import TexnetError
from .progress import progress_bar

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".m4v"}
STILL_IMAGE_FORMATS = {"image2", "gif", "webp", "apng"}  # FFmpeg demuxers of pictures (and "*_pipe")


@dataclass
class VideoReport:
    frames: int
    frame_rate: float
    audio: bool
    flicker: float  # output frame-to-frame change / input frame-to-frame change


class FlickerMeter:
    """Accumulates mean absolute frame-to-frame changes of input and output."""

    def __init__(self):
        self.previous: tuple[np.ndarray, np.ndarray] | None = None
        self.input_change = self.output_change = 0.0

    def add(self, source: np.ndarray, result: np.ndarray) -> None:
        source, result = source.astype(np.float32), result.astype(np.float32)
        if self.previous is not None:
            self.input_change += float(np.abs(source - self.previous[0]).mean())
            self.output_change += float(np.abs(result - self.previous[1]).mean())
        self.previous = (source, result)

    def ratio(self) -> float:
        return self.output_change / self.input_change if self.input_change > 0 else float("nan")


def check_video_output(path: Path) -> Path:
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise TexnetError(f"{path}: write videos as {', '.join(sorted(VIDEO_SUFFIXES))}")
    return path


def open_video(source: Path):
    import av

    if not source.is_file():
        raise TexnetError(f"{source}: no such file")
    try:
        container = av.open(str(source))
    except (av.error.FFmpegError, OSError, ValueError) as error:
        raise TexnetError(f"{source}: not a readable video ({error})") from None
    if not container.streams.video:
        container.close()
        raise TexnetError(f"{source}: holds no video stream")
    if container.format.name in STILL_IMAGE_FORMATS or container.format.name.endswith("_pipe"):
        container.close()  # FFmpeg reads a still image as a one-frame video
        raise TexnetError(f"{source}: a still image, not a video; stylize it with `texnet stylize`")
    return container


def video_megapixels(source: Path) -> float:
    """Frames x frame size of a video, from its header (the duration where the frame count is missing)."""
    with open_video(source) as container:
        video = container.streams.video[0]
        frames = video.frames or float((video.duration or 0) * video.time_base * (video.average_rate or 25))
        return frames * video.width * video.height / 1e6


def stylize_video(source: Path, target: Path, stylize_frame: Callable[[Image.Image], Image.Image],
                  progress: bool = True) -> VideoReport:
    """Stylize every frame of `source` into `target` (H.264, the audio copied as it is)."""
    import av

    check_video_output(target)
    meter = FlickerMeter()
    container = open_video(source)
    with container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        rate = video.average_rate or Fraction(25)
        total = video.frames or None

        def write(path: Path) -> int:
            frames = 0
            with av.open(str(path), "w", format="mp4") as output:
                encoder = None
                copied_audio = output.add_stream_from_template(audio) if audio is not None else None
                waiting = []  # audio before the first frame: held until the video stream exists (the
                # file's header is written at the first packet, and every stream must be in it)
                with progress_bar(total=total, unit="frame", enabled=progress) as bar:
                    for packet in container.demux(*(stream for stream in (video, audio) if stream is not None)):
                        if packet.stream is audio:
                            if packet.dts is not None:
                                packet.stream = copied_audio
                                waiting.append(packet)
                            if encoder is not None:
                                for held in waiting:
                                    output.mux(held)
                                waiting.clear()
                            continue
                        for frame in packet.decode():
                            picture = frame.to_image()
                            result = stylize_frame(picture)
                            meter.add(np.asarray(picture), np.asarray(result))
                            if encoder is None:
                                encoder = h264_stream(output, rate, video.time_base, *even_size(result.size))
                                for held in waiting:
                                    output.mux(held)
                                waiting.clear()
                            encoded = av.VideoFrame.from_image(result.crop((0, 0, encoder.width, encoder.height)))
                            encoded.pts, encoded.time_base = frame.pts, video.time_base
                            for out_packet in encoder.encode(encoded):
                                output.mux(out_packet)
                            frames += 1
                            bar.update(1)
                if encoder is None:
                    raise TexnetError(f"{source}: the video has no frames")
                for out_packet in [*encoder.encode(), *waiting]:
                    output.mux(out_packet)
            return frames

        try:
            frames = write_video_atomically(target, write)
        except av.error.FFmpegError as error:
            raise TexnetError(f"{source}: the video could not be read through ({error})") from None
    return VideoReport(frames, float(rate), audio is not None, meter.ratio())


def write_video_atomically(target: Path, write: Callable[[Path], int]) -> int:
    count = []
    write_atomically(target, lambda path: count.append(write(path)))
    return count[0]


def h264_stream(output, rate: Fraction, time_base: Fraction, width: int, height: int):
    stream = output.add_stream("libx264", rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.time_base = time_base
    stream.options = {"crf": "18", "preset": "medium"}
    return stream


def even_size(size: tuple[int, int]) -> tuple[int, int]:
    """H.264 in 4:2:0 needs even sides: an odd last row or column is dropped."""
    return max(2, size[0] // 2 * 2), max(2, size[1] // 2 * 2)


def looping_noise(model, size: tuple[int, int], frames: int, seed: int) -> Iterator[list[np.ndarray]]:
    """Noise for each frame of a seamless loop: every scale's uniform noise is Phi(cos t * a + sin t * b)
    for two Gaussian fields a and b and t going once round the circle, so each frame's noise is
    uniform, as the net was trained on, neighbouring frames differ little, and the last frame
    leads back into the first."""
    import torch

    from .noise import noise_pyramid

    sizes = model.config.scale_sizes(*size)
    channels = model.config.noise_channels
    fields = [torch.special.ndtri(torch.from_numpy(np.clip(u, 1e-7, 1 - 1e-7)).double())
              for u in noise_pyramid(seed, sizes, channels) + noise_pyramid(seed + 1, sizes, channels)]
    first, second = fields[: len(sizes)], fields[len(sizes):]
    for frame in range(frames):
        angle = 2 * math.pi * frame / frames
        yield [torch.special.ndtr(math.cos(angle) * a + math.sin(angle) * b).float().numpy()[None]
               for a, b in zip(first, second)]


def texture_frames(model, size: tuple[int, int], frames: int, seed: int, progress: bool = True) -> Iterator[Image.Image]:
    from .image_io import to_uint8

    height, width = size
    run = (max(height, model.config.min_side), max(width, model.config.min_side))
    backend = model.backend("auto", run[0] * run[1])
    with progress_bar(total=frames, unit="frame", enabled=progress) as bar:
        for noise in looping_noise(model, run, frames, seed):
            pixels = to_uint8(model.run(noise, backend)[0, :, :height, :width]).transpose(1, 2, 0)
            bar.update(1)
            yield Image.fromarray(pixels)


GIF_BYTES_PER_PIXEL = 4  # Pillow keeps every RGB frame, then a palette copy of each, to write a GIF


def check_gif_fits(size: tuple[int, int], frames: int) -> None:
    """A GIF is written from all its frames at once (an MP4 is streamed): refuse one that would
    not fit in the memory budget before any frame is made."""
    from .runtime import memory_budget

    needed = size[0] * size[1] * frames * GIF_BYTES_PER_PIXEL
    if needed > memory_budget():
        raise TexnetError(f"a GIF of {frames} frames of {size[1]}x{size[0]} needs about {needed / 1e9:.1f} GB of memory "
                          "(GIF frames are all held at once); write .mp4, which is streamed, or fewer or smaller frames")


def write_texture_animation(model, target: Path, size: tuple[int, int], frames: int, fps: float, seed: int,
                            progress: bool = True) -> None:
    """A seamless looping animation through the model's noise space, as MP4 (or GIF by extension)."""
    if target.suffix.lower() == ".gif":
        check_gif_fits(size, frames)
        images = list(texture_frames(model, size, frames, seed, progress))
        write_atomically(target, lambda path: images[0].save(path, format="GIF", save_all=True,
                                                             append_images=images[1:], duration=round(1000 / fps),
                                                             loop=0))
        return
    import av

    check_video_output(target)

    def write(path: Path) -> int:
        with av.open(str(path), "w", format="mp4") as output:
            stream = h264_stream(output, Fraction(fps).limit_denominator(1000), Fraction(1, 1000),
                                 *even_size((size[1], size[0])))
            for index, image in enumerate(texture_frames(model, size, frames, seed, progress)):
                frame = av.VideoFrame.from_image(image.crop((0, 0, stream.width, stream.height)))
                frame.pts, frame.time_base = round(index * 1000 / fps), Fraction(1, 1000)
                for packet in stream.encode(frame):
                    output.mux(packet)
            for packet in stream.encode():
                output.mux(packet)
        return frames

    write_video_atomically(target, write)


def frames_of(path: Path, limit: int | None = None) -> list[np.ndarray]:
    """The frames of a video as (H, W, 3) uint8 arrays (tests and benchmarks)."""
    with open_video(path) as container:
        out = []
        for frame in container.decode(video=0):
            out.append(np.asarray(frame.to_image()))
            if limit and len(out) >= limit:
                break
        return out

