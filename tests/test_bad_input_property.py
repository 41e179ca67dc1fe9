"""A property over generated bad input: for every command, random bytes, truncated files, config
fields of the wrong type or range, and nonsense option values each give a non-zero exit status,
exactly one line on stderr, no traceback, and no new or changed file anywhere.

The cases come from a seeded generator, so a failure names its case and reproduces; set
TEXNET_FUZZ_CASES (default 160) and TEXNET_FUZZ_SEED to explore further.
"""

import json
import os
import random
import shutil
import signal
from pathlib import Path

import pytest
import torch

from conftest import SHARED_DATA, TEXTURES
from test_reliability import cli
from texnet.generator_config import LATER_KEYS
from texnet.generators import GeneratorConfig, PyramidGenerator
from texnet.sampling import TextureGenerator
from texnet.stylizer import VARIANTS, Stylizer

CASES = int(os.environ.get("TEXNET_FUZZ_CASES", "160"))
SEED = int(os.environ.get("TEXNET_FUZZ_SEED", "20261125"))
PHOTO = SHARED_DATA / "content-test" / "coffee.jpg"
PAINTING = SHARED_DATA / "styles" / "great-wave.jpg"
# Values no numeric option accepts (a value like " 7" or "٣" is a valid number to Python).
NONSENSE = ["", "-1", "-0.5", "nan", "inf", "-inf", "1e999", "0x10", "1.5.2", "abc", "None", "[]", "--", "x3", "0x0",
            "-5x5", "99999x2"]
SECONDS_PER_CASE = 30  # a case that starts real work is a bug: fail on it, do not hang
WRONG_VALUES = ["6", 6.0, 1e9, -3, None, [6], {"a": 1}, True, "", 10 ** 30]


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """A valid texture model, style model, example and photo to corrupt copies of."""
    root = tmp_path_factory.mktemp("originals")
    torch.manual_seed(0)
    TextureGenerator(PyramidGenerator(GeneratorConfig(scales=3, channels=4, norm="instance"))).save_pretrained(
        root / "texture")
    Stylizer(PyramidGenerator(GeneratorConfig(**{**VARIANTS["improved"].to_dict(), "scales": 3, "channels": 4}))
             ).save_pretrained(root / "style")
    shutil.copy(TEXTURES / "burlap.png", root / "example.png")
    shutil.copy(PHOTO, root / "photo.jpg")
    return root


def corrupt_file(rng: random.Random, path: Path) -> str:
    data = path.read_bytes()
    how = rng.choice(["random", "truncate", "empty", "flip", "text"])
    if how == "random":
        path.write_bytes(rng.randbytes(rng.randint(1, 3000)))
    elif how == "truncate":
        path.write_bytes(data[: rng.randint(1, max(1, len(data) // 2))])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "flip":  # a damaged header: a file that still starts like itself
        cut = bytearray(data[:64]) + bytearray(rng.randbytes(64)) + bytearray(data[128: len(data) // 3])
        path.write_bytes(bytes(cut))
    else:
        path.write_text("hello, this is not that kind of file\n")
    return how


def corrupt_config(rng: random.Random, folder: Path) -> str:
    config = json.loads((folder / "config.json").read_text())
    field = rng.choice(["format_version", "kind", "generator", "scales", "channels", "noise_channels",
                        "content_channels", "padding", "norm", "missing", "extra", "json"])
    if field == "json":
        (folder / "config.json").write_text(json.dumps(config)[: rng.randint(1, 40)])
        return "config.json cut short"
    if field == "missing":
        # Keys added after the first format may be missing (old models lack them): not those.
        del config["generator"][rng.choice(sorted(set(config["generator"]) - LATER_KEYS))]
    elif field == "extra":
        config["generator"]["layers"] = 3
    elif field in ("format_version", "kind", "generator"):
        config[field] = rng.choice([value for value in WRONG_VALUES if value != 6.0 or field != "format_version"])
    else:
        good = config["generator"][field]
        config["generator"][field] = rng.choice([value for value in WRONG_VALUES if value != good
                                                 and not (type(value) is int and field == "noise_channels"
                                                          and 0 <= value <= 64)])
    (folder / "config.json").write_text(json.dumps(config))
    return f"config {field}"


def bad_case(rng: random.Random, work: Path, originals: Path) -> tuple[list, str]:
    """One command line that must be refused, and what is wrong with it."""
    for name in ("texture", "style"):
        shutil.copytree(originals / name, work / name)
    for name in ("example.png", "photo.jpg"):
        shutil.copy(originals / name, work / name)
    out = work / "out.png"
    kind = rng.choice(["image", "model-file", "config", "option", "weights", "output"])
    if kind == "image":
        target = rng.choice(["example.png", "photo.jpg"])
        how = corrupt_file(rng, work / target)
        command = rng.choice([
            ["synthesize", work / target, "-o", out, "--iters", "1", "--size", "32"],
            ["train", work / target, "-o", work / "m", "--iters", "1", "--size", "32"],
            ["stylize", work / "style", work / target, "-o", out],
            ["transfer", work / target, PAINTING, "-o", out, "--iters", "1", "--size", "32"],
            ["train-style", work / target, "--content", work, "-o", work / "m", "--iters", "1", "--size", "32"],
        ])
        return command, f"{target} {how}"
    if kind == "model-file":
        model = rng.choice(["texture", "style"])
        part = rng.choice(["model.safetensors", "model.onnx", "config.json"])
        how = corrupt_file(rng, work / model / part)
        # A damaged graph matters only to onnxruntime; PyTorch reads model.safetensors.
        backend = "onnx" if part == "model.onnx" else rng.choice(["auto", "onnx", "torch"])
        command = (["sample", work / model, "-o", out, "--size", "40", "--backend", backend] if model == "texture" else
                   ["stylize", work / model, work / "photo.jpg", "-o", out, "--backend", backend])
        return command, f"{model}/{part} {how}"
    if kind == "config":
        model = rng.choice(["texture", "style"])
        what = corrupt_config(rng, work / model)
        command = rng.choice([["sample", work / model, "-o", out], ["export", work / model, "-o", work / "x.onnx"]]) \
            if model == "texture" else ["stylize", work / model, work / "photo.jpg", "-o", out]
        return command, f"{model} {what}"
    if kind == "option":
        value = rng.choice(NONSENSE)
        command, option = rng.choice([
            (["sample", "brick", "-o", out], rng.choice(["--size", "--count", "--seed", "--memory-limit"])),
            (["stylize", work / "style", work / "photo.jpg", "-o", out],
             rng.choice(["--strength", "--max-size", "--memory-limit"])),
            (["train", work / "example.png", "-o", work / "m"],
             rng.choice(["--size", "--batch", "--iters", "--lr", "--checkpoint-every", "--scales", "--channels",
                         "--diversity", "--ema", "--negative-slope"])),
            (["synthesize", work / "example.png", "-o", out], rng.choice(["--size", "--iters", "--lr",
                                                                          "--example-size"])),
            (["train-style", PAINTING, "--content", work, "-o", work / "m"],
             rng.choice(["--style-weight", "--style-size", "--lr", "--size"])),
        ])
        return command + [option, value], f"{option} {value!r}"
    if kind == "weights":
        bad = work / rng.choice(["w.h5", "w.safetensors", "w"])
        bad.write_bytes(rng.choice([b"\x89HDF\r\n\x1a\n", b"", b"{}"]) + rng.randbytes(rng.randint(0, 500)))
        command = rng.choice([["weights", "--vgg-weights", bad],
                              ["synthesize", work / "example.png", "-o", out, "--vgg-weights", bad, "--iters", "1"]])
        return command, f"weights file {bad.name}"
    sample = ["sample", "brick", "-o"]
    stylize = ["stylize", work / "style", work / "photo.jpg", "-o"]
    synthesize = ["synthesize", work / "example.png", "--iters", "1", "-o"]
    command, target = rng.choice([
        (stylize, work / "photo.jpg"), (synthesize, work / "example.png"), (sample, work / "texture"),
        (sample, work / "texture" / "model.onnx"), (sample, work / "texture" / "config.json"),
        *[(command, target) for command in (sample, stylize, synthesize)
          for target in (work / "nofolder" / "o.png", work / "o.xbm", work / "o.unknown", work / "o")],
    ])
    return command + [target], f"output {target.name}"


def tree_state(folder: Path) -> dict:
    return {path: (path.stat().st_size, path.stat().st_mtime_ns) for path in folder.rglob("*")}


class CaseTookTooLong(Exception):
    pass


def too_long(signum, frame):
    raise CaseTookTooLong


def test_generated_bad_input_is_always_one_clear_line_and_changes_nothing(tmp_path, originals, capsys, monkeypatch):
    from texnet.weights import cache_dir

    previous = signal.signal(signal.SIGALRM, too_long)
    rng = random.Random(SEED)
    cache_before = tree_state(cache_dir()) if cache_dir().is_dir() else {}
    for index in range(CASES):
        work = tmp_path / f"case{index}"
        work.mkdir()
        command, description = bad_case(rng, work, originals)
        before = tree_state(work)
        monkeypatch.chdir(work)
        where = f"case {index} ({description}): texnet {' '.join(map(str, command))}"
        signal.alarm(SECONDS_PER_CASE)
        try:
            status, _, err = cli(capsys, *command)
        except CaseTookTooLong:
            pytest.fail(f"{where}: started real work instead of refusing")
        finally:
            signal.alarm(0)
        lines = err.strip().splitlines()
        where += f"\n{err}"
        assert status not in (0, None), where
        assert len(lines) == 1 and "Traceback" not in err and "internal error" not in err, where
        assert tree_state(work) == before, where
        shutil.rmtree(work)
    signal.signal(signal.SIGALRM, previous)
    assert (tree_state(cache_dir()) if cache_dir().is_dir() else {}) == cache_before
