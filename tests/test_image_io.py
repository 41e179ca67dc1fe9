import numpy as np
import pytest
import torch
from PIL import Image

from texnet.errors import TexnetError
from texnet.image_io import (image_to_tensor, load_image, megapixels, parse_size, quantize, save_image,
                             tensor_to_image)


def saved(tmp_path, image, name, **kwargs):
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


@pytest.mark.parametrize("mode,color", [("L", 128), ("1", 1), ("CMYK", (0, 0, 0, 0))])
def test_modes_become_rgb(tmp_path, mode, color):
    path = saved(tmp_path, Image.new(mode, (8, 6), color), "in.tif")
    image = load_image(path)
    assert image.mode == "RGB" and image.size == (8, 6)


def test_palette_and_alpha_are_composited_on_white(tmp_path):
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    rgba.putpixel((0, 0), (0, 0, 255, 255))  # one opaque blue pixel
    image = load_image(saved(tmp_path, rgba, "a.png"))
    assert image.getpixel((1, 1)) == (255, 255, 255)
    assert image.getpixel((0, 0)) == (0, 0, 255)
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([10, 20, 30] + [0, 0, 0] * 255)
    assert load_image(saved(tmp_path, palette, "p.png")).getpixel((2, 2)) == (10, 20, 30)


def test_sixteen_bit_gray_is_rescaled_not_clipped(tmp_path):
    values = np.full((4, 4), 32768, dtype=np.uint16)  # mid-gray in 16 bits
    path = saved(tmp_path, Image.fromarray(values), "g16.png")
    assert load_image(path).getpixel((0, 0)) == (128, 128, 128)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (20, 10), (0, 255, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = saved(tmp_path, image, "rot.jpg", exif=exif.tobytes())
    assert load_image(path).size == (10, 20)


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(TexnetError, match="no such file"):
        load_image(tmp_path / "missing.png")
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(TexnetError, match="not a readable image"):
        load_image(text)
    truncated = tmp_path / "cut.png"
    full = saved(tmp_path, Image.effect_noise((64, 64), 50), "full.png")
    truncated.write_bytes(full.read_bytes()[:200])
    with pytest.raises(TexnetError, match="cut.png"):
        load_image(truncated)


def test_pixel_limit_refuses_before_decoding(tmp_path):
    path = saved(tmp_path, Image.new("RGB", (300, 300)), "big.png")
    with pytest.raises(TexnetError, match="over the limit"):
        load_image(path, max_pixels=300 * 299)


def test_tensor_round_trip_and_quantisation():
    image = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3), "RGB")
    tensor = image_to_tensor(image)
    assert tensor.shape == (1, 3, 4, 4)
    assert np.array_equal(np.asarray(tensor_to_image(tensor)), np.asarray(image))
    assert torch.equal(quantize(tensor), tensor)
    assert torch.allclose(quantize(torch.tensor([0.5011, 1.7, -0.2])) * 255, torch.tensor([128.0, 255.0, 0.0]))


def test_save_picks_format_from_extension_and_is_atomic(tmp_path):
    image = Image.new("RGB", (5, 5), (1, 2, 3))
    save_image(image, tmp_path / "x.jpg")
    with Image.open(tmp_path / "x.jpg") as written:
        assert written.format == "JPEG"
    with pytest.raises(TexnetError, match="cannot write"):
        save_image(image, tmp_path / "x.unknownext")
    with pytest.raises(TexnetError, match="does not exist"):
        save_image(image, tmp_path / "no" / "x.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jpg"]  # no temporary left


@pytest.mark.parametrize("text,expected", [("256", (256, 256)), ("640x480", (480, 640)), ("33X17", (17, 33))])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["0", "-5", "abc", "10x", "100000", "1x2x3"])
def test_parse_size_refuses_nonsense(text):
    with pytest.raises(TexnetError, match="size"):
        parse_size(text)


def test_megapixels_come_from_the_header_and_a_broken_file_counts_zero(tmp_path):
    Image.new("RGB", (300, 200)).save(tmp_path / "photo.png")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    assert megapixels(tmp_path / "photo.png") == 0.06
    assert megapixels(tmp_path / "broken.jpg") == 0.0
