"""Video: stylizing a clip with its sound and frame rate, and looping texture animations."""

import sys
from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO, SHARED_DATA
from test_reliability import cli, refused
from texnet.generators import build_generator
from texnet.stylizer import VARIANTS, Stylizer
from texnet.video import FlickerMeter, frames_of, video_megapixels

PHOTO = SHARED_DATA / "content-test" / "kingfisher.jpg"
sys.path.insert(0, str(REPO / "benchmarks"))
from measure import pan_clip  # noqa: E402  (benchmarks/video_flicker.py makes its clips the same way)


def stream_facts(path):
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        return {"fps": video.average_rate, "size": (video.width, video.height),
                "audio_seconds": float(audio.duration * audio.time_base) if audio is not None and audio.duration else None}


@pytest.fixture(scope="module")
def style_model(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("video") / "style"
    Stylizer(build_generator(VARIANTS["residual"]).eval()).save_pretrained(folder)
    return folder


def test_a_stylized_clip_keeps_its_frames_rate_size_and_sound(capsys, tmp_path, style_model):
    clip = pan_clip(PHOTO, tmp_path / "clip.mp4")
    status, out, err = cli(capsys, "stylize-video", clip, "-o", tmp_path / "styled.mp4", "--model", style_model)
    assert status == 0, err
    assert "24 frames at 12 fps, with its sound" in out and "flicker" in out
    source, result = stream_facts(clip), stream_facts(tmp_path / "styled.mp4")
    assert result["fps"] == Fraction(12) and result["size"] == source["size"] == (96, 64)
    assert result["audio_seconds"] == pytest.approx(source["audio_seconds"], abs=0.05)
    frames = frames_of(tmp_path / "styled.mp4")
    assert len(frames) == 24 and frames[0].shape == (64, 96, 3)
    assert video_megapixels(clip) == pytest.approx(24 * 64 * 96 / 1e6, rel=0.1)  # what picks the backend
    originals = frames_of(clip)
    assert np.abs(frames[5].astype(int) - originals[5]).mean() > 10  # stylized, not copied


def test_bad_video_input_is_one_line_and_writes_nothing(capsys, tmp_path, style_model):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    refused(capsys, "stylize-video", junk, "-o", tmp_path / "o.mp4", "--model", style_model, expect="not a readable video")
    refused(capsys, "stylize-video", junk, "-o", tmp_path / "o.avi", "--model", style_model, expect="write videos as")
    clip = pan_clip(PHOTO, tmp_path / "clip.mp4", frames=4, audio=False)
    refused(capsys, "stylize-video", clip, "-o", clip, "--model", style_model, expect="is one of the inputs")
    refused(capsys, "stylize-video", clip, "-o", tmp_path / "o.mp4", "--style", "no-such-style",
            expect="no style 'no-such-style'")
    still = tmp_path / "still.png"
    Image.open(PHOTO).resize((64, 48)).save(still)  # FFmpeg would read it as a one-frame video
    refused(capsys, "stylize-video", still, "-o", tmp_path / "o.mp4", "--model", style_model, expect="a still image")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "junk.mp4", "still.png"]


def test_flicker_is_the_output_change_over_the_input_change():
    meter = FlickerMeter()
    rng = np.random.default_rng(0)
    for _ in range(5):
        frame = rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)
        meter.add(frame, frame)
    assert meter.ratio() == pytest.approx(1.0)
    doubled = FlickerMeter()
    for value in (100, 110, 100, 110):
        doubled.add(np.full((4, 4, 3), value, np.uint8), np.full((4, 4, 3), 2 * value - 100, np.uint8))
    assert doubled.ratio() == pytest.approx(2.0)


def test_a_texture_animation_loops_seamlessly(capsys, tmp_path):
    status, _, err = cli(capsys, "sample", "pebbles", "-o", tmp_path / "loop.mp4", "--frames", "36", "--size", "64",
                         "--fps", "12")
    assert status == 0, err
    frames = [frame.astype(float) for frame in frames_of(tmp_path / "loop.mp4")]
    assert len(frames) == 36 and frames[0].shape == (64, 64, 3)
    steps = [np.abs(frames[i + 1] - frames[i]).mean() for i in range(35)]
    wrap = np.abs(frames[0] - frames[-1]).mean()
    # The jump from the last frame back to the first is one ordinary step, not a cut:
    assert wrap < 1.5 * np.mean(steps)
    # and the animation moves: frames half a loop apart differ far more than neighbours.
    assert np.abs(frames[18] - frames[0]).mean() > 2 * np.mean(steps)
    status, _, err = cli(capsys, "sample", "pebbles", "-o", tmp_path / "loop.gif", "--frames", "8", "--size", "48")
    assert status == 0, err
    with Image.open(tmp_path / "loop.gif") as gif:
        assert gif.n_frames == 8 and gif.size == (48, 48)
    refused(capsys, "sample", "pebbles", "-o", tmp_path / "loop.png", "--frames", "8", expect="writes an animation")
    # A GIF holds every frame at once: one too large for memory is refused before any frame is made.
    refused(capsys, "sample", "pebbles", "-o", tmp_path / "huge.gif", "--frames", "100000", "--size", "512",
            expect="write .mp4, which is streamed")
    assert not (tmp_path / "huge.gif").exists()
