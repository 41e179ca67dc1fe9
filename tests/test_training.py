import json
from dataclasses import replace

import pytest
import torch
from PIL import Image

from conftest import TEXTURES
from texnet.errors import TexnetError
from texnet.generators import GeneratorConfig
from texnet.image_io import load_image
from texnet.sampling import TextureGenerator
import texnet.training
from texnet.training import PRESETS, TextureTrainer, TrainConfig, learning_rate, scaled_to, train_texture

TINY = TrainConfig(size=32, batch=2, iters=6, lr=0.05, example_size=64, checkpoint_every=3,
                   generator=GeneratorConfig(scales=3, channels=4, norm="instance"))


def example():
    return load_image(TEXTURES / "pebbles.png")


def test_learning_rate_schedule():
    config = TrainConfig(lr=0.1, lr_decay=0.5, decay_start=10, decay_every=5)
    assert [learning_rate(config, i) for i in (0, 9, 10, 14, 15)] == [0.1, 0.1, 0.05, 0.05, 0.025]


@pytest.mark.parametrize("command", ["train", "train-style"])
def test_iters_stretches_the_presets_schedule(command):
    from texnet.cli import build_parser, with_iterations
    from texnet.style_training import style_preset

    preset = PRESETS["cpu"] if command == "train" else style_preset("cpu")
    content = ["--content", "photos"] if command == "train-style" else []
    args = build_parser().parse_args([command, "in.png", *content, "-o", "m", "--preset", "cpu",
                                      "--iters", str(3 * preset.iters)])
    longer = with_iterations(preset, args)
    assert (longer.iters, longer.decay_start) == (3 * preset.iters, 3 * preset.decay_start)
    # the same share of the run has the preset's learning rate: three times as long ends where the preset ends
    assert learning_rate(longer, 3 * preset.iters - 1) == pytest.approx(learning_rate(preset, preset.iters - 1))
    assert learning_rate(longer, 3 * preset.iters - 1) < preset.lr / 2


@pytest.mark.parametrize("norm", ["instance", "robust"])
def test_training_writes_model_checkpoint_curve_and_grid(tmp_path, tiny_descriptor, norm):
    config = replace(TINY, generator=replace(TINY.generator, norm=norm))
    model = train_texture(example(), tmp_path / "m", config, descriptor=tiny_descriptor, progress=False)
    names = {p.name for p in (tmp_path / "m").iterdir()}
    assert {"config.json", "model.safetensors", "model.onnx", "checkpoint", "loss.png", "samples.png"} <= names
    loaded = TextureGenerator.from_pretrained(tmp_path / "m")
    exact = model.sample_tensor(1, (40, 40), bf16=False)
    assert torch.equal(loaded.sample_tensor(1, (40, 40), backend="torch", bf16=False), exact)
    assert torch.allclose(loaded.sample_tensor(1, (40, 40), backend="onnx"), exact, atol=1e-4)
    assert loaded.info["iterations"] == 6 and len(loaded.info["example_sha256"]) == 64
    with Image.open(tmp_path / "m" / "samples.png") as grid:
        assert grid.size[1] == 64


@pytest.mark.parametrize("ema", [0.0, 0.5])
def test_interrupted_training_resumes_exactly(tmp_path, tiny_descriptor, monkeypatch, ema):
    config = replace(TINY, iters=8, checkpoint_every=3, ema=ema)
    straight = train_texture(example(), tmp_path / "straight", config, descriptor=tiny_descriptor, progress=False)

    original_step = TextureTrainer.step

    def crash_at_iteration_5(self):
        if self.iteration == 5:
            raise KeyboardInterrupt
        return original_step(self)

    monkeypatch.setattr(TextureTrainer, "step", crash_at_iteration_5)
    with pytest.raises(KeyboardInterrupt):
        train_texture(example(), tmp_path / "resumed", config, descriptor=tiny_descriptor, progress=False)
    monkeypatch.setattr(TextureTrainer, "step", original_step)
    with pytest.raises(TexnetError, match="--resume"):
        train_texture(example(), tmp_path / "resumed", config, descriptor=tiny_descriptor, progress=False)
    trainer = TextureTrainer(example(), tmp_path / "resumed", config, tiny_descriptor, progress=False)
    assert trainer.load_checkpoint() and trainer.iteration == 3  # lost at most one interval
    resumed = train_texture(example(), tmp_path / "resumed", config, resume=True,
                            descriptor=tiny_descriptor, progress=False)
    for (name, a), b in zip(straight.net.state_dict().items(), resumed.net.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_the_model_keeps_the_moving_average_of_the_weights(tmp_path, tiny_descriptor):
    decay, trajectory = 0.6, []
    model = train_texture(example(), tmp_path / "m", replace(TINY, ema=decay), descriptor=tiny_descriptor,
                          progress=False, on_step=lambda run: trajectory.append(copy_of(run.net.state_dict())))
    expected = trajectory[0]  # the average starts at the first step's weights
    for weights in trajectory[1:]:
        expected = {name: decay * expected[name] + (1 - decay) * value for name, value in weights.items()}
    saved = TextureGenerator.from_pretrained(tmp_path / "m").net.state_dict()
    for name, value in expected.items():
        assert torch.allclose(saved[name], value, atol=1e-6), name
        assert torch.equal(model.net.state_dict()[name], saved[name])
    last = trajectory[-1]
    assert any(not torch.allclose(saved[name], last[name]) for name in last)  # not the last step's weights
    with pytest.raises(TexnetError, match="other training settings"):
        train_texture(example(), tmp_path / "m", replace(TINY, ema=0.9), resume=True,
                      descriptor=tiny_descriptor, progress=False)
    with pytest.raises(TexnetError, match="below 1"):
        train_texture(example(), tmp_path / "bad", replace(TINY, ema=1.0), descriptor=tiny_descriptor,
                      progress=False)


def copy_of(weights: dict) -> dict:
    return {name: value.detach().clone() for name, value in weights.items()}


def test_a_run_resumed_for_more_iterations_keeps_its_own_decay(tmp_path, tiny_descriptor):
    config = replace(TINY, iters=6, decay_start=2, decay_every=2, checkpoint_every=3, minutes_budget=1)
    train_texture(example(), tmp_path / "m", config, descriptor=tiny_descriptor, progress=False)
    longer = scaled_to(config, 12)  # what `--resume --iters 12` asks for: decay from 4 every 4, 2 minutes
    trainer = TextureTrainer(example(), tmp_path / "m", longer, tiny_descriptor, progress=False)
    assert trainer.load_checkpoint()
    assert (trainer.config.iters, trainer.config.decay_start, trainer.config.decay_every) == (12, 2, 2)
    assert trainer.config.minutes_budget == 2  # the budget is the new length's
    with pytest.raises(TexnetError, match="other training settings"):
        TextureTrainer(example(), tmp_path / "m", replace(longer, lr_decay=0.5), tiny_descriptor,
                       progress=False).load_checkpoint()


def test_the_start_up_estimate_warns_only_of_a_run_that_will_overrun_its_budget(tmp_path, tiny_descriptor):
    preset = replace(TINY, iters=500, minutes_budget=10)

    def estimate(config: TrainConfig, seconds: float) -> str:
        return TextureTrainer(example(), tmp_path, config, tiny_descriptor, progress=False).estimate(seconds)

    assert estimate(preset, 1.0) == "texnet: about 8 min to go on this machine (1.00 s per iteration)"
    assert estimate(preset, 1.6).startswith("texnet: about 13 min to go")
    assert "this recipe is meant to take 10 min, so this machine is slower" in estimate(preset, 1.6)
    # three times the iterations at the preset's speed is no overrun: the budget stretches with the run
    longer = scaled_to(preset, 1500)
    assert estimate(longer, 1.0) == "texnet: about 25 min to go on this machine (1.00 s per iteration)"
    assert "meant to take 30 min" in estimate(longer, 1.6)
    # a recipe with its own budget where bfloat16 is not used (the style preset: 15 min, 30 without)
    both = replace(preset, minutes_budget=5, float32_minutes_budget=10)
    assert estimate(both, 1.0) == "texnet: about 8 min to go on this machine (1.00 s per iteration)"
    assert estimate(both, 1.6).endswith("meant to take 10 min without bfloat16, so this machine is slower than the "
                                        "ones it was timed on")
    assert "meant to take 5 min, so" in estimate(replace(both, bf16=True), 1.0)
    assert scaled_to(both, 1500).float32_minutes_budget == 30


def test_resume_refuses_other_example_or_settings(tmp_path, tiny_descriptor):
    train_texture(example(), tmp_path / "m", TINY, descriptor=tiny_descriptor, progress=False)
    with pytest.raises(TexnetError, match="different images"):
        train_texture(load_image(TEXTURES / "brick.png"), tmp_path / "m", TINY, resume=True,
                      descriptor=tiny_descriptor, progress=False)
    with pytest.raises(TexnetError, match="other training settings"):
        train_texture(example(), tmp_path / "m", replace(TINY, lr=0.5), resume=True,
                      descriptor=tiny_descriptor, progress=False)
    with pytest.raises(TexnetError, match="no checkpoint"):
        train_texture(example(), tmp_path / "fresh", TINY, resume=True, descriptor=tiny_descriptor, progress=False)


@pytest.mark.parametrize("option", [{"multiscale": 1.0}, {"spectrum": 1e3}, {"histogram": 1e6}, {"loss": "sw"}])
def test_each_selectable_term_adds_to_the_training_loss_and_is_recorded(tmp_path, tiny_descriptor, option):
    def first_loss(config) -> float:
        trainer = TextureTrainer(example(), tmp_path / str(len(list(tmp_path.iterdir()))), config, tiny_descriptor,
                                 progress=False)
        with torch.no_grad():
            return float(trainer.loss())

    config = replace(TINY, **option)
    assert first_loss(config) != first_loss(TINY)
    model = train_texture(example(), tmp_path / "m", replace(config, iters=2), descriptor=tiny_descriptor, progress=False)
    assert all(model.info["config"][key] == value for key, value in option.items())


def test_a_warm_start_begins_from_the_donor_weights(tmp_path, tiny_descriptor):
    donor = train_texture(example(), tmp_path / "donor", TINY, descriptor=tiny_descriptor, progress=False)
    trainer = TextureTrainer(load_image(TEXTURES / "brick.png"), tmp_path / "warm",
                             replace(TINY, init_from=str(tmp_path / "donor")), tiny_descriptor, progress=False)
    for (name, a), b in zip(donor.net.state_dict().items(), trainer.net.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_checkpoint_from_before_a_new_setting_resumes_under_its_default(tmp_path, tiny_descriptor):
    train_texture(example(), tmp_path / "m", replace(TINY, iters=3), descriptor=tiny_descriptor, progress=False)
    state = tmp_path / "m" / "checkpoint" / "state.json"
    meta = json.loads(state.read_text())
    del meta["config"]["histogram"]  # written by a version without the colour histogram term
    state.write_text(json.dumps(meta))
    with pytest.raises(TexnetError, match="other training settings"):
        train_texture(example(), tmp_path / "m", replace(TINY, histogram=1.0), resume=True,
                      descriptor=tiny_descriptor, progress=False)
    model = train_texture(example(), tmp_path / "m", TINY, resume=True, descriptor=tiny_descriptor, progress=False)
    assert model.info["iterations"] == TINY.iters


def test_diversity_term_needs_a_batch(tmp_path, tiny_descriptor):
    with pytest.raises(TexnetError, match="batch 2"):
        train_texture(example(), tmp_path / "m", replace(TINY, batch=1, diversity=1.0),
                      descriptor=tiny_descriptor, progress=False)
    model = train_texture(example(), tmp_path / "d", replace(TINY, diversity=1.0),
                          descriptor=tiny_descriptor, progress=False)
    assert model.info["config"]["diversity"] == 1.0


@pytest.mark.parametrize("flags,native", [({"avx2", "fma"}, False), ({"avx512f", "avx512_bf16"}, True)])
def test_the_cpu_preset_trains_in_bfloat16_only_where_the_cpu_computes_it(monkeypatch, tiny_descriptor, tmp_path,
                                                                          flags, native):
    import texnet.generators
    import texnet.runtime

    monkeypatch.setattr(texnet.runtime, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(texnet.runtime.platform, "machine", lambda: "x86_64")
    for variable in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"):  # a run limited to AVX2 must not decide
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(texnet.generators, "native_bf16_cpu", texnet.runtime.native_bf16_cpu)
    assert PRESETS["cpu"].bf16 is None  # "where native", decided on the machine that trains
    trainer = TextureTrainer(example(), tmp_path / "m", replace(PRESETS["cpu"], size=64), tiny_descriptor,
                             progress=False)
    assert trainer.bf16 is native and trainer.descriptor.bf16 is native
    assert trainer.training_info()["bf16_used"] is native


@pytest.mark.real_weights
@pytest.mark.parametrize("loss", ["gram", "sw"])
def test_a_short_real_training_run_under_each_loss_lowers_the_held_out_measure(tmp_path, real_descriptor, loss):
    from texnet.quality import held_out_gram_scorer

    # bf16 only where native: forced bf16 is emulated, and 10-100x slower, on AVX2-only CPUs.
    config = replace(TINY, size=48, batch=2, iters=40, lr=0.05, checkpoint_every=100, bf16=None, loss=loss)
    trainer = TextureTrainer(example(), tmp_path / "m", config, real_descriptor, progress=False)
    score = held_out_gram_scorer(real_descriptor, example(), config.example_size)

    def held_out() -> float:
        with torch.no_grad():
            return score(trainer.net(trainer.net.make_noise(4, 64, 64, torch.Generator().manual_seed(1))))

    before = held_out()
    for _ in range(config.iters):
        trainer.step()
    assert held_out() < before / 3  # measured: 6.0x (gram) and 6.9x (sw) lower


def test_train_cli_options_reach_the_recipe(monkeypatch, tmp_path, tiny_descriptor):
    import texnet.descriptor
    from texnet.cli import main

    recipes = []
    monkeypatch.setattr(texnet.training, "train_texture", lambda example, output, config, **_: recipes.append(config))
    monkeypatch.setattr(texnet.descriptor.VGG19Descriptor, "pretrained", lambda *_, **__: tiny_descriptor)
    main(["train", str(TEXTURES / "pebbles.png"), "-o", str(tmp_path / "m"), "--preset", "cpu", "--iters", "1500",
          "--channels", "12", "--ema", "0.99", "--negative-slope", "0.05"])
    assert (recipes[0].generator.channels, recipes[0].ema, recipes[0].iters) == (12, 0.99, 1500)
    assert (recipes[0].generator.negative_slope, PRESETS["cpu"].generator.negative_slope) == (0.05, 0.01)
    assert recipes[0].generator.scales == PRESETS["cpu"].generator.scales
