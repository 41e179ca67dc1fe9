"""The CLI's error handling: one line on stderr, non-zero exit, no traceback, no partial output."""

import subprocess
import sys

import pytest
from PIL import Image

from conftest import TEXTURES


def texnet(*args, env=None):
    return subprocess.run([sys.executable, "-m", "texnet.cli", *map(str, args)],
                          capture_output=True, text=True, env=env)


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_missing_and_unreadable_inputs(tmp_path):
    out = tmp_path / "out.png"
    assert_one_line_error(texnet("synthesize", tmp_path / "nope.png", "-o", out), "nope.png", "no such file")
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\x00" * 100)
    assert_one_line_error(texnet("synthesize", junk, "-o", out), "junk.jpg", "not a readable image")
    assert not out.exists()


@pytest.mark.parametrize("size", ["0", "-3", "99999", "abc", "16"])
def test_impossible_sizes(tmp_path, size):
    out = tmp_path / "out.png"
    assert_one_line_error(texnet("synthesize", TEXTURES / "burlap.png", "-o", out, "--size", size), "size")
    assert not out.exists()


def test_example_too_small_for_the_descriptor(tmp_path):
    small = tmp_path / "small.png"
    Image.new("RGB", (20, 20), (9, 9, 9)).save(small)
    assert_one_line_error(texnet("synthesize", small, "-o", tmp_path / "o.png"), "too small")


def test_wrong_weights_file(tmp_path):
    fake = tmp_path / "fake.h5"
    fake.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    assert_one_line_error(texnet("weights", "--vgg-weights", fake), "fake.h5", "checksum mismatch")
    assert_one_line_error(texnet("synthesize", TEXTURES / "burlap.png", "-o", tmp_path / "o.png",
                                 "--vgg-weights", tmp_path / "absent.h5"), "not found")


def test_bad_output_and_device_and_usage(tmp_path):
    example = TEXTURES / "burlap.png"
    assert_one_line_error(texnet("synthesize", example, "-o", tmp_path / "out.xyz"), "cannot write")
    assert_one_line_error(texnet("synthesize", example, "-o", tmp_path / "no" / "out.png"), "does not exist")
    assert_one_line_error(texnet("synthesize", example, "-o", tmp_path / "o.png", "--device", "cuda:0"), "cuda")
    assert_one_line_error(texnet("synthesize", example), "-o/--output")
    assert_one_line_error(texnet("synthesize", example, "-o", tmp_path / "o.png", "--iters", "0"), "iters")


@pytest.mark.real_weights
def test_synthesize_command_writes_an_image(tmp_path):
    out = tmp_path / "tex.png"
    result = texnet("synthesize", TEXTURES / "burlap.png", "-o", out, "--size", "48x40", "--iters", "3")
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image:
        assert image.size == (48, 40)
    assert "texture loss" in result.stdout


@pytest.mark.real_weights
def test_transfer_command_keeps_the_photo_aspect(tmp_path):
    photo = tmp_path / "photo.jpg"
    Image.effect_noise((90, 60), 40).convert("RGB").save(photo)
    out = tmp_path / "styled.png"
    result = texnet("transfer", photo, TEXTURES.parent / "styles" / "starry-night.jpg", "-o", out,
                    "--size", "64", "--iters", "2")
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image:
        assert image.size == (64, 43)
