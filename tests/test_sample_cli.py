"""`texnet sample`, `texnet models` and `texnet train` from the command line."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TEXTURES
from test_cli import assert_one_line_error, texnet
from texnet.generators import GeneratorConfig, PyramidGenerator
from texnet.model_files import builtin_models
from texnet.sampling import TextureGenerator

BUILTIN = ("autumn-leaves", "brick", "burlap", "lava", "pebbles", "pink-marble")


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models") / "tiny"
    TextureGenerator(PyramidGenerator(GeneratorConfig(scales=3, channels=4, norm="instance"))).save_pretrained(folder)
    return folder


def test_count_size_and_tile_preview(tmp_path, model_folder):
    result = texnet("sample", model_folder, "-o", tmp_path / "t.png", "--size", "70x50", "--count", "3",
                    "--tile-preview", "--seed", "4")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["t-0-tiled.png", "t-0.png", "t-1-tiled.png", "t-1.png", "t-2-tiled.png", "t-2.png"]
    with Image.open(tmp_path / "t-1.png") as one, Image.open(tmp_path / "t-1-tiled.png") as tiled:
        assert one.size == (70, 50) and tiled.size == (140, 100)
        assert tiled.crop((70, 50, 140, 100)).tobytes() == one.tobytes()


def test_bad_models_give_one_line(tmp_path, model_folder):
    out = tmp_path / "o.png"
    assert_one_line_error(texnet("sample", tmp_path / "nothing", "-o", out), "no such model")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"format_version": 1, "kind": "style"}))
    assert_one_line_error(texnet("sample", broken, "-o", out), "style model, not a texture model")
    assert_one_line_error(texnet("sample", model_folder, "-o", out, "--size", "0"), "size")
    assert_one_line_error(texnet("sample", model_folder, "-o", out, "--count", "0"), "count")
    assert not out.exists()


def test_train_refuses_bad_input_before_working(tmp_path):
    assert_one_line_error(texnet("train", tmp_path / "none.png", "-o", tmp_path / "m"), "no such file")
    assert_one_line_error(texnet("train", TEXTURES / "burlap.png", "-o", tmp_path / "m", "--resume"), "no checkpoint")
    assert_one_line_error(texnet("train", TEXTURES / "burlap.png", "-o", tmp_path / "m", "--size", "20"), "--size")
    assert_one_line_error(texnet("train", TEXTURES / "burlap.png", "-o", tmp_path / "warm", "--init-from", "nosuch"),
                          "no such model")
    assert_one_line_error(texnet("train", TEXTURES / "burlap.png", "-o", tmp_path / "warm", "--init-from",
                                 "starry-night"), "this is a style model")
    assert not (tmp_path / "warm").exists()  # refused before the output folder was made


def test_a_listing_cut_short_by_its_reader_prints_no_error():
    import subprocess
    import sys

    listing = subprocess.Popen([sys.executable, "-m", "texnet.cli", "models"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    listing.stdout.close()  # before texnet writes (its start takes far longer), as a reader that quits at once does
    assert listing.wait(timeout=60) == 1
    assert listing.stderr.read() == b""


def test_builtin_models_are_listed_and_sample_by_name(tmp_path):
    assert set(BUILTIN) <= set(builtin_models())
    listed = texnet("models")
    assert listed.returncode == 0 and all(name in listed.stdout for name in BUILTIN)
    for name in BUILTIN:
        folder = builtin_models()[name]
        assert (folder / "model.safetensors").stat().st_size < 1_000_000
        assert json.loads((folder / "config.json").read_text())["kind"] == "texture"
    result = texnet("sample", "brick", "-o", tmp_path / "brick.png", "--size", "96")
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "brick.png") as image:
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32).reshape(-1, 3))
    # A brick texture: reddish on average, and not a flat colour.
    assert pixels[:, 0].mean() > pixels[:, 2].mean() and pixels.std(dim=0).min() > 10


def test_interrupted_training_says_how_to_resume(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    model = tmp_path / "m"
    # A suite started in the background (`nohup make test &`) ignores SIGINT, and children inherit that.
    process = subprocess.Popen([sys.executable, "-m", "texnet.cli", "train", str(TEXTURES / "burlap.png"), "-o",
                                str(model), "--preset", "cpu", "--size", "48", "--checkpoint-every", "2"],
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not (model / "checkpoint" / "state.json").exists() and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    last_line = stderr.strip().splitlines()[-1]
    assert "--resume" in last_line and "Traceback" not in stderr
    assert json.loads((model / "checkpoint" / "state.json").read_text())["iteration"] >= 2
