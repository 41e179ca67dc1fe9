"""The bad-input audit of issue 14, one test per finding: no data loss, no wasted work, no
traceback, no silently ignored value, and a Python API that takes what PIL/NumPy/PyTorch users pass."""

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import SHARED_DATA, TEXTURES
from texnet.cli import main
from texnet.errors import TexnetError
from texnet.generators import GeneratorConfig, PyramidGenerator
from texnet.image_io import load_image
from texnet.sampling import TextureGenerator
from texnet.stylizer import VARIANTS, Stylizer

PHOTOS = SHARED_DATA / "content-test"


def cli(capsys, *args) -> tuple[int, str, str]:
    """Run `texnet ARGS` in this process: (exit status, stdout, stderr)."""
    try:
        status = main([str(arg) for arg in args])
    except SystemExit as exit:
        status = exit.code
    out, err = capsys.readouterr()
    return status, out, err


def refused(capsys, *args, expect: str = "") -> str:
    """The command fails with exactly one line on stderr (containing `expect`) and no traceback."""
    status, _, err = cli(capsys, *args)
    lines = err.strip().splitlines()
    assert status not in (0, None), err
    assert len(lines) == 1 and "Traceback" not in err and "internal error" not in err, err
    assert expect in lines[0], lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict:
    return {path: path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def style_model(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("style") / "model"
    Stylizer(PyramidGenerator(GeneratorConfig(**{**VARIANTS["improved"].to_dict(), "scales": 3,
                                                 "channels": 4}))).save_pretrained(folder)
    return folder


@pytest.fixture
def photo_copy(tmp_path):
    path = tmp_path / "photo.jpg"
    load_image(PHOTOS / "coffee.jpg").resize((60, 40)).save(path)
    return path


# -- data loss ------------------------------------------------------------------------------------
def test_stylize_never_overwrites_its_photo_unless_told_to(capsys, style_model, photo_copy):
    before = photo_copy.read_bytes()
    refused(capsys, "stylize", style_model, photo_copy, "-o", photo_copy, expect="is one of the inputs")
    assert photo_copy.read_bytes() == before
    status, _, err = cli(capsys, "stylize", style_model, photo_copy, "-o", photo_copy, "--overwrite")
    assert status == 0, err
    assert photo_copy.read_bytes() != before


def test_stylize_into_the_folder_of_the_photos_is_refused(capsys, style_model, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(2):
        load_image(PHOTOS / "coffee.jpg").resize((40 + index, 30)).save(folder / f"p{index}.png")
    before = snapshot(folder)
    refused(capsys, "stylize", style_model, folder, "-o", folder, expect="is one of the inputs")
    refused(capsys, "stylize", style_model, folder / "p0.png", folder / "p1.png", "-o", folder,
            expect="is one of the inputs")
    assert snapshot(folder) == before


@pytest.mark.real_weights
def test_synthesize_never_overwrites_its_example(capsys, tmp_path):
    example = tmp_path / "tex.png"
    example.write_bytes((TEXTURES / "burlap.png").read_bytes())
    refused(capsys, "synthesize", example, "-o", example, "--iters", "1", expect="is one of the inputs")
    assert example.read_bytes() == (TEXTURES / "burlap.png").read_bytes()
    refused(capsys, "transfer", example, TEXTURES / "brick.png", "-o", example, expect="is one of the inputs")


def test_train_refuses_a_folder_that_is_not_a_texnet_model(capsys, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.json").write_text('{"my": "settings"}')
    (mine / "notes.txt").write_text("important")
    before = snapshot(mine)
    refused(capsys, "train", TEXTURES / "burlap.png", "-o", mine, "--iters", "1",
            expect="is not empty and not a texnet model folder (it holds a config.json that is not texnet's and more)")
    refused(capsys, "train-style", SHARED_DATA / "styles" / "great-wave.jpg", "--content", PHOTOS, "-o", mine,
            expect="not a texnet model folder")
    (mine / "notes.txt").unlink()  # a config.json of the user's alone is not a texnet model either
    before = snapshot(mine)
    for resume in ([], ["--resume"]):
        refused(capsys, "train", TEXTURES / "burlap.png", "-o", mine, "--iters", "1", *resume,
                expect="not a texnet model folder (it holds a config.json that is not texnet's)")
    assert snapshot(mine) == before


def test_train_refuses_a_finished_model_without_resume(capsys, tmp_path):
    model = tmp_path / "model"
    TextureGenerator(PyramidGenerator(GeneratorConfig(scales=3, channels=4))).save_pretrained(model)
    before = snapshot(model)
    refused(capsys, "train", TEXTURES / "burlap.png", "-o", model, expect="holds a model already")
    assert snapshot(model) == before


@pytest.mark.parametrize("name,expect", [("out.xyz", "cannot write '.xyz' images"), ("out", "give the output file an extension")])
def test_stylize_to_an_unknown_extension_is_refused_and_creates_nothing(capsys, style_model, photo_copy, name, expect):
    refused(capsys, "stylize", style_model, photo_copy, "-o", photo_copy.parent / name, expect=expect)
    assert not (photo_copy.parent / name).exists()


def test_stylize_to_a_format_pillow_writes_is_a_file_not_a_folder(capsys, style_model, photo_copy):
    status, _, err = cli(capsys, "stylize", style_model, photo_copy, "-o", photo_copy.parent / "out.ppm")
    assert status == 0, err
    assert (photo_copy.parent / "out.ppm").is_file()
    with Image.open(photo_copy.parent / "out.ppm") as image:
        assert image.size == (60, 40)


def test_several_photos_into_an_image_file_name_is_refused(capsys, style_model, photo_copy, tmp_path):
    refused(capsys, "stylize", style_model, photo_copy, PHOTOS / "coffee.jpg", "-o", tmp_path / "both.png",
            expect="need an output folder, not an image file name")
    assert not (tmp_path / "both.png").exists()


# -- wasted work ----------------------------------------------------------------------------------
def test_outputs_that_cannot_be_written_are_refused_before_any_work(capsys, tmp_path):
    (tmp_path / "afile").write_text("x")
    refused(capsys, "train", TEXTURES / "burlap.png", "-o", tmp_path / "afile" / "model", expect="is a file")
    # XBM holds only 1-bit images: the save would fail after the whole optimisation.
    refused(capsys, "synthesize", TEXTURES / "burlap.png", "-o", tmp_path / "x.xbm", expect="cannot write RGB images")
    refused(capsys, "sample", "brick", "-o", tmp_path / "x.xbm", expect="cannot write RGB images")


def test_a_read_only_output_folder_is_found_before_training(capsys, tmp_path, monkeypatch):
    # Tests run as root here, where chmod stops no write: the refusal is simulated where the
    # probe file is made, which is what a read-only folder or mount refuses.
    import texnet.outputs

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(texnet.outputs.tempfile, "TemporaryFile", refuse)
    refused(capsys, "train", TEXTURES / "burlap.png", "-o", tmp_path / "model", expect="not writable")
    refused(capsys, "synthesize", TEXTURES / "burlap.png", "-o", tmp_path / "x.png", expect="not writable")


def test_a_corrupt_preview_photo_is_skipped_and_training_finishes(tmp_path, tiny_descriptor):
    from dataclasses import replace

    from texnet.style_training import StyleTrainConfig, train_style

    photos = tmp_path / "photos"
    photos.mkdir()
    for index, name in enumerate(sorted(p.name for p in PHOTOS.iterdir())):
        load_image(PHOTOS / name).resize((64, 48)).save(photos / f"{index:02d}.png")
    (photos / "00.png").write_bytes(b"\x89PNG broken")  # among the first four: held out for previews
    for index in range(10, 40):  # enough photos that four are held out
        (photos / f"{index:02d}.png").write_bytes((photos / "05.png").read_bytes())
    config = StyleTrainConfig(size=32, batch=1, iters=2, style_size=64, bf16=False,
                              generator=replace(VARIANTS["improved"], scales=3, channels=4))
    model = train_style(load_image(SHARED_DATA / "styles" / "great-wave.jpg"), photos, tmp_path / "m", config,
                        descriptor=tiny_descriptor, progress=False)
    assert (tmp_path / "m" / "model.safetensors").exists() and model.info["iterations"] == 2
    with Image.open(tmp_path / "m" / "before-after.png") as grid:
        assert grid.width < 4 * 64 + 3 * 8  # three previews, not four


def test_work_too_large_for_memory_is_refused_up_front(capsys, tmp_path):
    refused(capsys, "synthesize", TEXTURES / "burlap.png", "-o", tmp_path / "x.png", "--size", "16384",
            expect="needs about")
    refused(capsys, "train", TEXTURES / "burlap.png", "-o", tmp_path / "m", "--size", "4096", "--batch", "256",
            expect="needs about")
    refused(capsys, "train", TEXTURES / "burlap.png", "-o", tmp_path / "m2", "--size", "100000",
            expect="out of range")
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def test_sampling_over_the_memory_limit_is_made_in_strips(capsys, tmp_path):
    status, _, err = cli(capsys, "sample", "brick", "-o", tmp_path / "big.png", "--size", "300x200",
                         "--memory-limit", "16")
    assert status == 0, err
    with Image.open(tmp_path / "big.png") as image:
        assert image.size == (300, 200)


# -- trust in bytes from outside ------------------------------------------------------------------
def checkpoint_run(tmp_path, tiny_descriptor, iters=2):
    from texnet.training import TrainConfig, train_texture

    config = TrainConfig(size=32, batch=1, iters=iters, lr=0.05, example_size=64, checkpoint_every=1, bf16=False,
                         generator=GeneratorConfig(scales=3, channels=4, norm="instance"))
    train_texture(load_image(TEXTURES / "pebbles.png"), tmp_path / "m", config, descriptor=tiny_descriptor,
                  progress=False)
    return config


@pytest.mark.parametrize("damage", ["json", "json-key", "tensors", "tensor-key", "history"])
def test_resume_from_a_corrupt_checkpoint_is_one_clear_error(tmp_path, tiny_descriptor, damage):
    from dataclasses import replace

    from safetensors.torch import load_file, save_file

    from texnet.training import train_texture

    config = checkpoint_run(tmp_path, tiny_descriptor)
    folder = tmp_path / "m" / "checkpoint"
    state = json.loads((folder / "state.json").read_text())
    if damage == "json":
        (folder / "state.json").write_text("{truncated")
    elif damage == "json-key":
        del state["history"]
        (folder / "state.json").write_text(json.dumps(state))
    elif damage == "history":
        state["iteration"] = "two"
        (folder / "state.json").write_text(json.dumps(state))
    elif damage == "tensors":
        (folder / "state.safetensors").write_bytes((folder / "state.safetensors").read_bytes()[:100])
    else:
        tensors = load_file(folder / "state.safetensors")
        del tensors["rng"]
        save_file(tensors, folder / "state.safetensors")
    with pytest.raises(TexnetError, match="checkpoint is corrupt or incomplete"):
        train_texture(load_image(TEXTURES / "pebbles.png"), tmp_path / "m", replace(config, iters=4), resume=True,
                      descriptor=tiny_descriptor, progress=False)


# -- tracebacks and wrong messages ----------------------------------------------------------------
@pytest.mark.parametrize("option,value,expect", [
    ("--checkpoint-every", "0", "out of range"), ("--lr", "-1", "out of range"), ("--lr", "nan", "out of range"),
    ("--seed", "1234567890123456789012", "out of range"), ("--device", "mps", "not a device"),
    ("--device", "meta", "not a device"), ("--iters", "0", "out of range"), ("--batch", "x", "not a whole number"),
])
def test_impossible_training_options_are_usage_errors(capsys, tmp_path, option, value, expect):
    refused(capsys, "train", TEXTURES / "burlap.png", "-o", tmp_path / "m", option, value, expect=expect)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("command", ["train-style", "transfer"])
@pytest.mark.parametrize("option,value", [("--style-weight", "nan"), ("--style-size", "0"), ("--content-weight", "-1")])
def test_impossible_style_options_are_usage_errors(capsys, tmp_path, command, option, value):
    painting = SHARED_DATA / "styles" / "great-wave.jpg"
    args = ([painting, "--content", PHOTOS, "-o", tmp_path / "m"] if command == "train-style" else
            [PHOTOS / "coffee.jpg", painting, "-o", tmp_path / "t.png"])
    refused(capsys, command, *args, option, value, expect="out of range")


def test_a_cuda_device_without_cuda_is_one_line(capsys, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    refused(capsys, "sample", "brick", "-o", tmp_path / "x.png", "--device", "cuda", expect="no CUDA GPU")


def test_content_that_is_a_file_says_so(capsys, tmp_path):
    refused(capsys, "train-style", SHARED_DATA / "styles" / "great-wave.jpg", "--content", PHOTOS / "coffee.jpg",
            "-o", tmp_path / "m", expect="takes a folder of photos, and this is a file")


def test_a_thin_example_says_what_it_was_shrunk_to(capsys, tmp_path):
    thin = tmp_path / "thin.png"
    Image.new("RGB", (2000, 40), (90, 60, 30)).save(thin)
    refused(capsys, "train", thin, "-o", tmp_path / "m", expect="is 2000x40 (shrunk to 256x5 to fit 256 px), too small")


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that claims width x height: enough for Pillow to open it lazily."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


def test_a_huge_image_is_one_line_without_pillows_warnings(capsys, tmp_path, style_model):
    huge = png_header_only(tmp_path / "huge.png", 9000, 9000)
    refused(capsys, "stylize", style_model, huge, "-o", tmp_path / "o.png", expect="over the limit")


def test_a_seed_for_a_model_without_noise_is_refused(capsys, style_model, photo_copy, tmp_path):
    refused(capsys, "stylize", style_model, photo_copy, "-o", tmp_path / "o.png", "--seed", "3",
            expect="no noise input, so a seed changes nothing")
    refused(capsys, "stylize", style_model, photo_copy, "-o", tmp_path / "o.png", "--max-size", "0",
            expect="out of range")


def test_help_and_version_need_no_pytorch():
    import subprocess
    import sys

    code = ("import sys; from texnet.cli import main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "try: main(['--version'])\nexcept SystemExit: pass\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "texnet " in result.stdout and "sample" in result.stdout


def test_sampling_a_builtin_with_onnxruntime_needs_no_pytorch(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from texnet.cli import main\n"
            f"assert main(['sample', 'brick', '-o', r'{tmp_path / 'b.png'}', '--size', '64']) == 0\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- the Python API -------------------------------------------------------------------------------
def test_sample_takes_a_single_number_as_size():
    model = TextureGenerator.from_pretrained("brick")
    assert model.sample(size=64)[0].size == (64, 64)
    assert model.sample(size=(40, 70))[0].size == (70, 40)  # (height, width)
    for bad in (0, -3, (64,), "64", 64.0, (True, 3)):
        with pytest.raises(TexnetError, match="size"):
            model.sample(size=bad)
    for bad in (-1, 2 ** 63, 1.5):
        with pytest.raises(TexnetError, match="seed"):
            model.sample(seed=bad)


def test_stylize_takes_pil_numpy_and_torch_images(style_model):
    model = Stylizer.from_pretrained(style_model)
    picture = load_image(PHOTOS / "coffee.jpg").resize((45, 30))
    expected = np.asarray(model.stylize(picture))
    as_uint8 = np.asarray(picture)
    assert np.array_equal(np.asarray(model.stylize(as_uint8)), expected)
    assert np.array_equal(np.asarray(model.stylize(as_uint8 / 255.0)), expected)
    assert np.array_equal(np.asarray(model.stylize(torch.from_numpy(as_uint8 / 255.0).permute(2, 0, 1))), expected)
    assert model.stylize(as_uint8[..., 0]).size == (45, 30)  # grayscale
    with pytest.raises(TexnetError, match="empty"):
        model.stylize(np.zeros((0, 0, 3), np.uint8))
    with pytest.raises(TexnetError, match="not finite"):
        model.stylize(np.full((8, 8, 3), np.nan))
    with pytest.raises(TexnetError, match="expected a PIL image"):
        model.stylize("photo.jpg")


def test_load_image_takes_bytes_and_file_objects(tmp_path):
    data = (PHOTOS / "coffee.jpg").read_bytes()
    assert load_image(data).size == load_image(PHOTOS / "coffee.jpg").size
    with open(PHOTOS / "coffee.jpg", "rb") as stream:
        assert load_image(stream).size == (600, 400)
    assert load_image(io.BytesIO(data)).mode == "RGB"
    with pytest.raises(TexnetError, match="not a readable image"):
        load_image(b"not an image")
    with pytest.raises(TexnetError, match="takes a path, bytes or a file object"):
        load_image(42)


def test_a_zero_sized_image_file_is_refused(tmp_path):
    empty = png_header_only(tmp_path / "empty.png", 0, 0)
    with pytest.raises(TexnetError, match="empty|not a readable image|cannot read"):
        load_image(empty)
