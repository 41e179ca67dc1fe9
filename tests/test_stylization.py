"""Stylization networks: the Stylizer API, style training and the `stylize` / `train-style` commands."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import SHARED_DATA
from test_cli import assert_one_line_error, texnet
from texnet.errors import TexnetError
from texnet.generators import GeneratorConfig, PyramidGenerator
from texnet.image_io import image_to_tensor, load_image
from texnet.sampling import TextureGenerator
from texnet.style_training import (SW_STYLE_WEIGHT, ContentCrops, StyleTrainConfig, StyleTrainer, next_frame,
                                   split_photos, style_preset, train_style)
from texnet.stylizer import VARIANTS, Stylizer

STYLES, PHOTOS = SHARED_DATA / "styles", SHARED_DATA / "content-test"
TINY = StyleTrainConfig(size=32, batch=2, iters=6, lr=0.02, style_size=64, checkpoint_every=3,
                        generator=replace(VARIANTS["improved"], scales=3, channels=4))


def tiny_stylizer(variant="improved", scales=3):
    torch.manual_seed(0)
    return Stylizer(PyramidGenerator(replace(VARIANTS[variant], scales=scales, channels=4)))


def photo(width=61, height=37, seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.mark.parametrize("variant", ["improved", "paper"])
@pytest.mark.parametrize("size", [(61, 37), (37, 61), (129, 5), (1, 1), (300, 33)])
def test_output_has_the_input_size(variant, size):
    assert tiny_stylizer(variant, scales=6).stylize(photo(*size)).size == size


@pytest.mark.parametrize("variant", ["improved", "paper"])
def test_both_variants_see_the_photo(variant):
    # Train mode: an untrained batch-norm net in eval mode has identity statistics and damps everything.
    net = tiny_stylizer(variant).net.train()
    noise = net.make_noise(2, 37, 61, torch.Generator().manual_seed(0))
    first, second = net(noise, torch.rand(2, 3, 37, 61)), net(noise, torch.rand(2, 3, 37, 61))
    assert (first - second).abs().mean() > 0.01
    assert (net.config.noise_channels, net.config.norm) == ((0, "instance") if variant == "improved" else (3, "batch"))


@pytest.mark.parametrize("preset", ["paper", "cpu"])
def test_presets_train_the_residual_net_and_another_variant_at_its_own_learning_rate(preset):
    default, pyramid = style_preset(preset), style_preset(preset, "improved")
    assert default.generator == VARIANTS["residual"] == style_preset(preset, "residual").generator
    assert pyramid.generator == VARIANTS["improved"]
    # The residual net collapses to flat colour at the pyramid's rates: a tenth of them or less.
    assert default.lr <= pyramid.lr / 10
    assert (default.iters, default.size) == (pyramid.iters, pyramid.size)


def test_train_style_width_depth_and_noise_options_reach_the_network():
    from texnet.cli import build_parser, style_train_config
    from texnet.generators import build_generator, parameter_count

    def config(*options):
        return style_train_config(build_parser().parse_args(["train-style", "p.jpg", "--content", "photos", "-o", "m",
                                                             "--preset", "cpu", *options]))

    default, wider = config(), config("--channels", "24", "--blocks", "7", "--lr", "0.001")
    assert default.generator == VARIANTS["residual"]
    assert wider.generator == replace(VARIANTS["residual"], channels=24, blocks=7) and wider.lr == 0.001
    # the residual blocks at a quarter resolution hold most weights: 2x the width, about 4x the parameters
    assert 3.5 < parameter_count(build_generator(replace(wider.generator, blocks=5))) / \
        parameter_count(build_generator(default.generator)) < 4.1
    assert config("--variant", "improved", "--channels", "6").generator == replace(VARIANTS["improved"], channels=6)
    noisy = config("--noise-channels", "3").generator
    assert noisy == replace(VARIANTS["residual"], noise_channels=3)
    photos = torch.rand(1, 3, 20, 28)
    net = build_generator(noisy)
    first, second = (net(net.make_noise(1, 20, 28, torch.Generator().manual_seed(seed)), photos) for seed in (0, 1))
    assert first.shape == photos.shape and not torch.equal(first, second)  # the noise reaches the output


def test_the_sliced_wasserstein_loss_has_its_own_weight_unless_one_is_given():
    from texnet.cli import build_parser, style_train_config

    def config(*options):
        return style_train_config(build_parser().parse_args(["train-style", "p.jpg", "--content", "photos", "-o", "m",
                                                             "--preset", "cpu", *options]))

    assert (config().loss, config().style_weight) == ("gram", 1e-4)
    assert (config("--loss", "sw").loss, config("--loss", "sw").style_weight) == ("sw", SW_STYLE_WEIGHT)
    assert config("--loss", "sw", "--style-weight", "3").style_weight == 3
    assert config("--loss", "sw", "--variant", "improved").generator == VARIANTS["improved"]


def test_the_sliced_wasserstein_style_loss_compares_each_crop_with_its_own_painting(tmp_path, tiny_descriptor):
    paintings = {name: load_image(STYLES / f"{name}.jpg") for name in ("great-wave", "starry-night")}
    trainer = StyleTrainer(paintings, PHOTOS, tmp_path / "m", replace(TINY, loss="sw"), tiny_descriptor,
                           progress=False)
    first = image_to_tensor(trainer.paintings[0])  # exactly what the first style's target was made from
    features = trainer.descriptor(torch.cat([first, first]))
    for which in ([0, 1], [1, 0]):
        losses = trainer.style_loss(features, torch.tensor(which))
        own, other = losses[which.index(0)], losses[which.index(1)]
        assert own < 1e-3 * other
    with pytest.raises(TexnetError, match="loss must be 'gram' or 'sw', not 'l1'"):
        StyleTrainer(paintings, PHOTOS, tmp_path / "l1", replace(TINY, loss="l1"), tiny_descriptor, progress=False)


def test_the_histogram_term_scores_each_crops_colours_against_its_own_painting(tmp_path, tiny_descriptor):
    from texnet.cli import build_parser, style_train_config
    from texnet.style_training import per_style_loss

    paintings = {name: load_image(STYLES / f"{name}.jpg") for name in ("great-wave", "starry-night")}
    trainer = StyleTrainer(paintings, PHOTOS, tmp_path / "m", replace(TINY, histogram=1e3), tiny_descriptor,
                           progress=False)
    first = image_to_tensor(trainer.paintings[0])
    for which in ([0, 1], [1, 0]):
        losses = per_style_loss(trainer.colours, {"pixels": torch.cat([first, first])}, torch.tensor(which),
                                trainer.rng)
        assert losses[which.index(0)] < 1e-3 * losses[which.index(1)]
    # The term is part of each step's loss: the same step (same crops, same net) scores lower without it.
    with_term = trainer.loss()
    trainer.iteration, trainer.batches = 0, None
    trainer.colours, trainer.rng = None, torch.Generator().manual_seed(0)
    assert trainer.loss() < with_term
    parsed = build_parser().parse_args(["train-style", "p.jpg", "--content", "c", "-o", "m", "--histogram", "5e7"])
    assert style_train_config(parsed).histogram == 5e7
    assert style_train_config(build_parser().parse_args(["train-style", "p.jpg", "--content", "c", "-o", "m"])
                              ).histogram == 0


def test_strength_zero_returns_the_photo_and_one_half_lies_between():
    model, picture = tiny_stylizer(), photo()
    assert model.stylize(picture, strength=0).tobytes() == picture.tobytes()
    full = np.asarray(model.stylize(picture), dtype=float)
    half = np.asarray(model.stylize(picture, strength=0.5), dtype=float)
    assert np.abs(half - (full + np.asarray(picture, dtype=float)) / 2).max() <= 1
    with pytest.raises(TexnetError, match="strength"):
        model.stylize(picture, strength=1.5)


def test_preserve_colors_keeps_the_photos_chroma():
    model, picture = tiny_stylizer(), load_image(PHOTOS / "coffee.jpg").resize((96, 64))
    kept = model.stylize(picture, preserve_colors=True)
    chroma = lambda image: np.asarray(image.convert("YCbCr"), dtype=int)[..., 1:]
    assert np.abs(chroma(kept) - chroma(picture)).mean() < 1.0
    plain = model.stylize(picture)
    assert np.abs(chroma(plain) - chroma(picture)).mean() > 3 * np.abs(chroma(kept) - chroma(picture)).mean()
    # Luminance comes from the stylized result, not the photo.
    luma = lambda image: np.asarray(image.convert("L"), dtype=int)
    assert np.abs(luma(kept) - luma(plain)).mean() < np.abs(luma(kept) - luma(picture)).mean()


def test_max_size_shrinks_the_photo():
    assert tiny_stylizer().stylize(photo(200, 100), max_size=50).size == (50, 25)


def test_model_round_trip_and_kind_checks(tmp_path):
    model = tiny_stylizer()
    model.save_pretrained(tmp_path / "style")
    loaded = Stylizer.from_pretrained(tmp_path / "style")
    exact = model.stylize(photo(), bf16=False)
    assert loaded.stylize(photo(), backend="torch", bf16=False).tobytes() == exact.tobytes()
    onnx = np.asarray(loaded.stylize(photo(), backend="onnx"), dtype=int)
    assert np.abs(onnx - np.asarray(exact, dtype=int)).max() <= 1
    TextureGenerator(PyramidGenerator(GeneratorConfig(scales=3, channels=4))).save_pretrained(tmp_path / "texture")
    with pytest.raises(TexnetError, match="texture model, not a style model.*texnet sample"):
        Stylizer.from_pretrained(tmp_path / "texture")
    with pytest.raises(TexnetError, match="style model, not a texture model.*texnet stylize"):
        TextureGenerator.from_pretrained(tmp_path / "style")


def test_content_crops_depend_on_their_index_alone_and_bad_photos_are_skipped(tmp_path):
    for index in range(3):
        photo(80, 50, seed=index).save(tmp_path / f"p{index}.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    crops = ContentCrops(sorted(tmp_path.iterdir()), 32, seed=7)
    batch = torch.stack([crops[index] for index in range(12)])
    assert batch.shape == (12, 3, 32, 32) and 0 <= batch.min() and batch.max() <= 1
    assert crops.unreadable == {tmp_path / "broken.jpg"}
    # Any order, any process: crop i is crop i (what lets several processes share a run).
    fresh = ContentCrops(sorted(tmp_path.iterdir()), 32, seed=7)
    assert torch.equal(fresh[11], batch[11]) and torch.equal(fresh[3], batch[3])
    assert not torch.equal(ContentCrops(sorted(tmp_path.iterdir()), 32, seed=8)[3], batch[3])
    with pytest.raises(TexnetError, match="none of the photos"):
        ContentCrops([tmp_path / "broken.jpg"], 32, seed=0)[0]


def test_preview_photos_are_held_out():
    train, held_out = split_photos(SHARED_DATA / "content-train")
    assert len(held_out) == 4 and not set(held_out) & set(train) and len(train) + 4 == len(list(
        (SHARED_DATA / "content-train").iterdir()))


@pytest.mark.parametrize("loss", ["gram", "sw"])
def test_style_training_lowers_the_loss_and_writes_previews(tmp_path, tiny_descriptor, loss):
    config = replace(TINY, iters=40, checkpoint_every=100, loss=loss,
                     style_weight=style_preset("paper", loss=loss).style_weight)
    trainer = StyleTrainer(load_image(STYLES / "starry-night.jpg"), PHOTOS, tmp_path / "m", config,
                           tiny_descriptor, progress=False)
    model = trainer.train()
    history = trainer.history
    assert np.mean(history[-5:]) < 0.5 * np.mean(history[:5])
    names = {p.name for p in (tmp_path / "m").iterdir()}
    assert {"config.json", "model.safetensors", "checkpoint", "loss.png", "before-after.png"} <= names
    assert Stylizer.from_pretrained(tmp_path / "m").info["iterations"] == 40
    assert model.info["final_style_loss"] > 0 and model.info["final_content_loss"] > 0


def test_the_frame_difference_term_makes_outputs_follow_their_inputs_changes(tmp_path, tiny_descriptor):
    photos = torch.stack([ContentCrops(sorted(PHOTOS.iterdir()), 32, seed=3)[index] for index in range(4)])
    frames = next_frame(photos, torch.Generator().manual_seed(5))

    def frame_error(weight: float) -> float:
        config = replace(TINY, iters=30, checkpoint_every=100, temporal_weight=weight)
        trainer = StyleTrainer(load_image(STYLES / "starry-night.jpg"), PHOTOS, tmp_path / f"w{weight}", config,
                               tiny_descriptor, progress=False)
        trainer.train()
        with torch.no_grad():
            results, moved = trainer.net(None, torch.cat([photos, frames]), None).chunk(2)
        return float(((moved - results) - (frames - photos)).pow(2).mean())

    assert frame_error(1e4) < 0.5 * frame_error(0.0)


@pytest.mark.parametrize("loss", ["gram", "sw"])  # sw draws its projections from the checkpointed generator
def test_interrupted_style_training_resumes_exactly(tmp_path, tiny_descriptor, monkeypatch, loss):
    # the weights' average resumes too
    style, config = load_image(STYLES / "great-wave.jpg"), replace(TINY, ema=0.5, loss=loss)
    straight = train_style(style, PHOTOS, tmp_path / "straight", config, descriptor=tiny_descriptor, progress=False)
    original_step = StyleTrainer.step

    def crash_at_iteration_5(self):
        if self.iteration == 5:
            raise KeyboardInterrupt
        return original_step(self)

    monkeypatch.setattr(StyleTrainer, "step", crash_at_iteration_5)
    with pytest.raises(KeyboardInterrupt):
        train_style(style, PHOTOS, tmp_path / "resumed", config, descriptor=tiny_descriptor, progress=False)
    monkeypatch.setattr(StyleTrainer, "step", original_step)
    resumed = train_style(style, PHOTOS, tmp_path / "resumed", config, resume=True, descriptor=tiny_descriptor,
                          progress=False)
    for (name, a), b in zip(straight.net.state_dict().items(), resumed.net.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
    with pytest.raises(TexnetError, match="different images"):
        train_style(load_image(STYLES / "starry-night.jpg"), PHOTOS, tmp_path / "resumed", config, resume=True,
                    descriptor=tiny_descriptor, progress=False)


@pytest.fixture(scope="module")
def style_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "style"
    tiny_stylizer().save_pretrained(folder)
    return folder


def test_stylize_one_photo_and_a_folder_with_a_corrupt_file(tmp_path, style_folder):
    result = texnet("stylize", style_folder, PHOTOS / "cat-chelsea.jpg", "-o", tmp_path / "cat.png",
                    "--max-size", "100", "--preserve-colors", "--strength", "0.8")
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "cat.png") as image:
        assert image.size == (100, 67)
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(2):
        photo(40 + index, 30, seed=index).save(photos / f"good{index}.png")
    (photos / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    result = texnet("stylize", style_folder, photos, "-o", tmp_path / "out")
    assert result.returncode == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good0.png", "good1.png"]
    last = result.stderr.strip().splitlines()[-1]
    assert "1 of 3 images failed" in last and "bad.jpg" in last and "Traceback" not in result.stderr


def test_stylize_bad_inputs_give_one_line(tmp_path, style_folder):
    out = tmp_path / "o.png"
    assert_one_line_error(texnet("stylize", style_folder, tmp_path / "none.jpg", "-o", out), "none.jpg")
    assert_one_line_error(texnet("stylize", tmp_path / "nomodel", PHOTOS / "coffee.jpg", "-o", out), "no such model")
    assert_one_line_error(texnet("stylize", "brick", PHOTOS / "coffee.jpg", "-o", out),
                          "texture model", "texnet sample")
    assert_one_line_error(texnet("stylize", style_folder, PHOTOS / "coffee.jpg", "-o", out, "--strength", "2"),
                          "--strength")
    junk = tmp_path / "junk.png"
    junk.write_text("hello")
    assert_one_line_error(texnet("stylize", style_folder, junk, "-o", out), "junk.png")
    assert_one_line_error(texnet("sample", style_folder, "-o", out), "style model", "texnet stylize")
    assert not out.exists()


def test_train_style_cli_refuses_bad_input(tmp_path):
    out = tmp_path / "m"
    assert_one_line_error(texnet("train-style", tmp_path / "no.jpg", "--content", PHOTOS, "-o", out), "no.jpg")
    assert_one_line_error(texnet("train-style", STYLES / "great-wave.jpg", "--content", tmp_path / "none",
                                 "-o", out, "--iters", "1"), "none")
    assert_one_line_error(texnet("train-style", STYLES / "great-wave.jpg", "--content", PHOTOS, "-o", out,
                                 "--size", "8"), "--size")


@pytest.mark.parametrize("variant", ["improved", "paper"])
def test_photos_too_large_for_one_pass_are_stylized_in_exact_strips(variant):
    model = tiny_stylizer(variant, scales=4)
    if variant == "paper":  # batch norm with running statistics of its own, not the identity
        model.net.train()
        with torch.no_grad():
            model.net([torch.rand(1, 3, h, w) for h, w in model.config.scale_sizes(64, 64)], torch.rand(1, 3, 64, 64))
        model.net.eval()
    picture = photo(157, 203, seed=3)
    whole = np.asarray(model.stylize(picture, bf16=False), dtype=int)
    # 16 MB allows about 15,000 pixels in one pass: this photo is made in several strips.
    strips = np.asarray(model.stylize(picture, memory_limit_mb=16, bf16=False), dtype=int)
    assert np.abs(strips - whole).max() <= 1 and (strips != whole).mean() < 0.001
