"""The residual architecture, stroke scale, several styles in one model, and training under torchrun."""

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import SHARED_DATA
from test_reliability import cli, refused
from texnet.errors import TexnetError
from texnet.generators import build_generator, fold_upsampling
from texnet.image_io import load_image
from texnet.quality import spectral_centroid
from texnet.style_training import StyleTrainConfig, train_style
from texnet.stylizer import VARIANTS, Stylizer

STYLES, PHOTOS = SHARED_DATA / "styles", SHARED_DATA / "content-test"


def random_net(styles=1, **changes):
    torch.manual_seed(0)
    net = build_generator(replace(VARIANTS["residual"], styles=styles, **changes)).eval()
    for name, parameter in net.named_parameters():
        if parameter.dim() == 2:  # distinct rows per style, as training makes them
            parameter.data.normal_(1 if name.endswith("weight") else 0, 0.5)
    return net


def photo(width, height, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.mark.parametrize("full_resolution_layers", [True, False])
@pytest.mark.parametrize("size", [(61, 37), (37, 61), (129, 5), (1, 1), (300, 33), (256, 256)])
def test_the_residual_net_gives_back_the_photos_size(size, full_resolution_layers):
    net = random_net(full_resolution_layers=full_resolution_layers)
    assert Stylizer(net).stylize(photo(*size)).size == size


@pytest.mark.parametrize("changes", [{}, {"full_resolution_layers": True, "edge_kernel": 9}, {"padding": "zeros"},
                                     {"styles": 2}])
def test_folded_upsampling_gives_the_same_pixels_on_odd_sizes(changes):
    net = random_net(**changes)
    folded = fold_upsampling(net)
    assert sum(isinstance(module, nn.Upsample) for module in folded.modules()) == 0
    photo_tensor = torch.rand(2, 3, 37, 61)
    style = torch.tensor([[0.3, 0.7], [1.0, 0.0]]) if net.config.styles > 1 else None
    with torch.no_grad():
        assert (folded(None, photo_tensor, style) - net(None, photo_tensor, style)).abs().max() < 1e-5


def test_stroke_scale_moves_the_spectrum_and_keeps_the_size():
    model, picture = Stylizer(random_net()), load_image(PHOTOS / "coffee.jpg").resize((240, 160))
    results = {scale: model.stylize(picture, stroke_scale=scale) for scale in (0.5, 1, 2)}
    assert {result.size for result in results.values()} == {(240, 160)}
    centroids = {scale: spectral_centroid(result) for scale, result in results.items()}
    # Larger strokes, lower frequencies: measured 0.147, 0.119 and 0.064 cycles per pixel.
    assert centroids[0.5] > 1.1 * centroids[1] > 1.2 * centroids[2]
    with pytest.raises(TexnetError, match="stroke scale"):
        model.stylize(picture, stroke_scale=10)


def test_a_multi_style_model_round_trips_and_blends(tmp_path):
    net = random_net(styles=3)
    Stylizer(net, {"styles": ["a", "b", "c"]}).save_pretrained(tmp_path / "m")
    model = Stylizer.from_pretrained(tmp_path / "m")
    picture = photo(64, 48)
    alone = {name: np.asarray(model.stylize(picture, style=name, backend="torch", bf16=False), dtype=int)
             for name in "abc"}
    assert np.array_equal(np.asarray(model.stylize(picture, style="b:1", backend="torch", bf16=False)), alone["b"])
    assert np.array_equal(np.asarray(model.stylize(picture, style={"b": 2.0}, backend="torch", bf16=False)), alone["b"])
    assert np.abs(alone["a"] - alone["b"]).mean() > 5  # the rows make different styles
    half = np.asarray(model.stylize(picture, style="a:0.5,b:0.5", backend="torch", bf16=False), dtype=int)
    assert np.abs(half - alone["a"]).mean() > 2 and np.abs(half - alone["b"]).mean() > 2
    onnx = np.asarray(model.stylize(picture, style="a:0.5,b:0.5", backend="onnx"), dtype=int)
    assert np.abs(onnx - half).max() <= 1
    strips = np.asarray(model.stylize(picture, style="a:0.5,b:0.5", backend="torch", bf16=False,
                                      memory_limit_mb=16), dtype=int)
    assert np.abs(strips - half).max() <= 1
    # Each added style costs only its norm rows: 2 x channels per norm.
    one = sum(p.numel() for p in random_net(styles=1).parameters())
    assert sum(p.numel() for p in net.parameters()) - one == 2 * sum(
        m.num_features * 2 for m in net.modules() if type(m).__name__ == "ConditionalInstanceNorm")


@pytest.mark.parametrize("style,message", [
    ("d", "no style 'd' in this model; it holds a, b, c"), ("a:-1", "at least 0"), ("a:0,b:0", "more than 0"),
    ("a:x", "expected NAME or NAME:WEIGHT"), (None, "holds 3 styles: choose one or a blend of a, b, c"),
])
def test_bad_style_choices_are_one_clear_error(tmp_path, style, message):
    model = Stylizer(random_net(styles=3), {"styles": ["a", "b", "c"]})
    with pytest.raises(TexnetError, match=message):
        model.stylize(photo(32, 32), style=style)


def test_stylize_cli_takes_a_style_and_refuses_unknown_ones(capsys, tmp_path):
    Stylizer(random_net(styles=2), {"styles": ["wave", "night"]}).save_pretrained(tmp_path / "m")
    photo(50, 40).save(tmp_path / "p.png")
    status, _, err = cli(capsys, "stylize", tmp_path / "m", tmp_path / "p.png", "-o", tmp_path / "o.png",
                         "--style", "wave:0.3,night:0.7", "--stroke-scale", "1.5")
    assert status == 0, err
    refused(capsys, "stylize", tmp_path / "m", tmp_path / "p.png", "-o", tmp_path / "x.png", "--style", "moon",
            expect="no style 'moon'")
    refused(capsys, "stylize", tmp_path / "m", tmp_path / "p.png", "-o", tmp_path / "x.png", expect="holds 2 styles")
    assert not (tmp_path / "x.png").exists()


def test_training_several_paintings_makes_one_model_with_a_row_per_style(tmp_path, tiny_descriptor):
    config = StyleTrainConfig(size=32, batch=2, iters=3, style_size=64, bf16=False, workers=0,
                              generator=replace(VARIANTS["residual"], channels=4, blocks=1))
    paintings = {name: load_image(STYLES / f"{name}.jpg") for name in ("great-wave", "starry-night")}
    model = train_style(paintings, PHOTOS, tmp_path / "m", config, descriptor=tiny_descriptor, progress=False)
    loaded = Stylizer.from_pretrained(tmp_path / "m")
    assert loaded.config.styles == 2 and loaded.style_names() == ["great-wave", "starry-night"]
    assert model.info["styles"] == ["great-wave", "starry-night"]
    with Image.open(tmp_path / "m" / "before-after.png") as grid:  # photos, then a row per style
        assert grid.height > 2.5 * 64


DDP_SCRIPT = """
import json, sys, torch
from dataclasses import replace
from texnet.descriptor import VGG19Descriptor
from texnet.image_io import load_image
from texnet.quality import spectral_centroid
from texnet.style_training import StyleTrainConfig, StyleTrainer
from texnet.stylizer import VARIANTS
torch.set_num_threads(1)
torch.manual_seed(0)
descriptor = VGG19Descriptor(layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"), width_divisor=16)
config = StyleTrainConfig(size=32, batch=4, iters=6, lr=0.02, style_size=64, bf16=False, workers=1, checkpoint_every=3,
                          generator=replace(VARIANTS["residual"], channels=4, blocks=1))
trainer = StyleTrainer(load_image(sys.argv[1]), sys.argv[2], sys.argv[3], config, descriptor, progress=False)
trainer.train(resume=len(sys.argv) > 4)
if trainer.ranks.main:
    print(json.dumps(trainer.history))
"""


def run_training(tmp_path, processes: int, output, *extra) -> list[float]:
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"] \
        if processes > 1 else [sys.executable]
    result = subprocess.run([*launcher, str(script), str(STYLES / "great-wave.jpg"), str(PHOTOS), str(output), *extra],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_two_processes_under_torchrun_follow_the_loss_curve_of_one(tmp_path):
    one = run_training(tmp_path, 1, tmp_path / "one")
    two = run_training(tmp_path, 2, tmp_path / "two")
    assert len(one) == len(two) == 6
    # The same global batch (4 crops, 2 per process): the same curve up to float rounding
    # (measured: largest relative difference 1.6e-5).
    assert np.allclose(two, one, rtol=1e-4), (one, two)
    # Only rank 0 wrote; the model loads and matches.
    assert json.loads((tmp_path / "two" / "checkpoint" / "state.json").read_text())["iteration"] == 6
    stylized = [Stylizer.from_pretrained(tmp_path / name).stylize(photo(40, 30), backend="torch", bf16=False)
                for name in ("one", "two")]
    assert np.abs(np.asarray(stylized[0], dtype=int) - np.asarray(stylized[1], dtype=int)).max() <= 1


def test_a_distributed_run_resumes_from_its_checkpoint(tmp_path):
    straight = run_training(tmp_path, 2, tmp_path / "straight")
    # A run stopped at iteration 3 (trained to 3), then resumed to 6 in both processes.
    partial = DDP_SCRIPT.replace("iters=6", "iters=3")
    script = tmp_path / "partial.py"
    script.write_text(partial)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
                    str(STYLES / "great-wave.jpg"), str(PHOTOS), str(tmp_path / "resumed")],
                   capture_output=True, text=True, timeout=300, check=True)
    resumed = run_training(tmp_path, 2, tmp_path / "resumed", "--resume")
    assert np.allclose(resumed, straight, rtol=1e-4), (straight, resumed)
