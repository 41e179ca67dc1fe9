"""Model folders: round trips, and every way a model folder can be wrong giving one clear error."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from texnet.errors import TexnetError
from texnet.generators import GeneratorConfig, PyramidGenerator
from texnet.sampling import TextureGenerator


@pytest.fixture
def saved_model(tmp_path):
    torch.manual_seed(0)
    model = TextureGenerator(PyramidGenerator(GeneratorConfig(scales=4, channels=4, norm="instance")),
                             {"example_sha256": "abc"})
    model.save_pretrained(tmp_path / "model")
    return model, tmp_path / "model"


def edit_config(folder, change):
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))


def test_round_trip_gives_identical_samples_on_both_backends(saved_model):
    model, folder = saved_model
    loaded = TextureGenerator.from_pretrained(folder)
    assert loaded.config == model.config
    assert loaded.info == {"example_sha256": "abc"}
    expected = model.sample_tensor(2, (33, 47), seed=5, bf16=False)
    assert torch.equal(loaded.sample_tensor(2, (33, 47), seed=5, backend="torch", bf16=False), expected)
    assert torch.allclose(loaded.sample_tensor(2, (33, 47), seed=5, backend="onnx"), expected, atol=1e-4)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.onnx", "model.safetensors"]


def test_models_written_before_the_negative_slope_field_keep_the_reference_slope(saved_model):
    model, folder = saved_model
    edit_config(folder, lambda config: config["generator"].pop("negative_slope"))
    loaded = TextureGenerator.from_pretrained(folder)
    assert loaded.config.negative_slope == 0.01
    slopes = {module.negative_slope for module in loaded.net.modules() if isinstance(module, torch.nn.LeakyReLU)}
    assert slopes == {0.01}
    assert torch.equal(loaded.sample_tensor(1, 32, seed=3, backend="torch", bf16=False),
                       model.sample_tensor(1, 32, seed=3, bf16=False))


def test_the_onnx_graph_reads_its_weights_from_the_safetensors_file(tmp_path):
    import onnx

    torch.manual_seed(1)
    net = PyramidGenerator(GeneratorConfig(scales=4, channels=4, norm="instance"))
    for parameter in net.parameters():  # distinct values, as trained weights have
        parameter.data.normal_()
    model = TextureGenerator(net)
    folder = model.save_pretrained(tmp_path / "model")
    graph = onnx.load(folder / "model.onnx", load_external_data=False).graph
    external = {init.name for init in graph.initializer if init.data_location == onnx.TensorProto.EXTERNAL}
    assert external == {f"net.{name}" for name, value in model.net.state_dict().items() if value.is_floating_point()}


def test_missing_model_folder_and_empty_name(tmp_path, monkeypatch):
    with pytest.raises(TexnetError, match="no such model"):
        TextureGenerator.from_pretrained(tmp_path / "absent")
    monkeypatch.chdir(tmp_path)  # '' used to read the current folder as a model
    with pytest.raises(TexnetError, match="no model given"):
        TextureGenerator.from_pretrained("")


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_truncated_weights(saved_model, backend):
    _, folder = saved_model
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:300])
    with pytest.raises(TexnetError, match="not the file this model was saved with.*corrupt, truncated or replaced"):
        TextureGenerator.from_pretrained(folder).sample(backend=backend)


def test_a_pickle_is_never_loaded(saved_model):
    _, folder = saved_model
    torch.save({"evil": torch.zeros(1)}, folder / "model.safetensors")  # a pickle in disguise
    (folder / "model.onnx").unlink()
    with pytest.raises(TexnetError, match="corrupt"):
        TextureGenerator.from_pretrained(folder).sample()


@pytest.mark.parametrize("change,message", [
    (lambda c: c.update(format_version=99), "format version 99"),
    (lambda c: c.update(format_version="1"), "format_version '1'; expected the number 1"),
    (lambda c: c.update(kind="style"), "style model, not a texture model"),
    (lambda c: c.update(kind=["texture"]), r"kind \['texture'\]; expected one of texture, style"),
    (lambda c: c.update(training=[1]), "'training' section must be an object"),
    (lambda c: c["generator"].update(colour="blue"), r"unknown keys \['colour'\]"),
    (lambda c: c["generator"].update(scales="6"), "'scales' must be a whole number from 1 to 10, not '6'"),
    (lambda c: c["generator"].update(channels=8.0), "'channels' must be a whole number from 1 to 256, not 8.0"),
    (lambda c: c["generator"].update(channels=10 ** 9), "'channels' must be a whole number from 1 to 256"),
    (lambda c: c["generator"].update(norm=None), "norm must be one of"),
    (lambda c: c["generator"].update(full_resolution_layers=1), "'full_resolution_layers' must be true or false, not 1"),
    (lambda c: c["generator"].update(negative_slope=1.5), "'negative_slope' must be a number from 0 to below 1"),
    (lambda c: c["generator"].update(negative_slope="0.2"), "'negative_slope' must be a number"),
    (lambda c: c.update(generator="pyramid"), "must be an object"),
])
def test_invalid_configs_are_refused_before_anything_is_built(saved_model, change, message):
    _, folder = saved_model
    edit_config(folder, change)
    with pytest.raises(TexnetError, match=message):
        TextureGenerator.from_pretrained(folder)


def test_weights_that_do_not_fit_the_architecture_name_the_tensor(saved_model):
    _, folder = saved_model
    edit_config(folder, lambda c: c["generator"].update(channels=8))
    (folder / "model.onnx").unlink()
    with pytest.raises(TexnetError, match=r"'scale_blocks.0.0.weight' has shape \(4, 3, 3, 3\), expected \(8, 3, 3, 3\)"):
        TextureGenerator.from_pretrained(folder).sample(backend="torch")


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_weights_that_are_not_finite_are_refused(saved_model, backend):
    # A model with NaN weights sampled an all-black image and exited 0.
    _, folder = saved_model
    tensors = {name: torch.full_like(value, float("nan")) if value.is_floating_point() else value
               for name, value in load_file(folder / "model.safetensors").items()}
    save_file(tensors, folder / "model.safetensors")
    # Recorded hashes only say the file is the one saved: made to match, NaN must still be refused.
    from texnet.onnx_export import export_onnx
    from texnet.runtime import weights_digest

    edit_config(folder, lambda c: c.update(weights_sha256=weights_digest(folder / "model.safetensors")))
    net = PyramidGenerator(GeneratorConfig(scales=4, channels=4, norm="instance"))
    net.load_state_dict(tensors)
    export_onnx(net, folder / "model.onnx", weights_file=folder / "model.safetensors")
    with pytest.raises(TexnetError, match="not finite"):
        TextureGenerator.from_pretrained(folder).sample(backend=backend)


def test_corrupt_or_missing_config(saved_model):
    _, folder = saved_model
    (folder / "config.json").write_text("{not json")
    with pytest.raises(TexnetError, match="not valid JSON"):
        TextureGenerator.from_pretrained(folder)
    (folder / "config.json").unlink()
    with pytest.raises(TexnetError, match="config.json is missing"):
        TextureGenerator.from_pretrained(folder)
    (folder / "config.json").mkdir()
    with pytest.raises(TexnetError, match="config.json is a folder"):
        TextureGenerator.from_pretrained(folder)


def test_a_local_folder_named_like_a_builtin_is_named_in_the_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "brick").mkdir()
    with pytest.raises(TexnetError, match="'brick' here is a folder that is not a texnet model, and it hides the "
                                          "built-in model 'brick'; write builtin:brick"):
        TextureGenerator.from_pretrained("brick")
    assert TextureGenerator.from_pretrained("builtin:brick").sample(count=1, size=32)[0].size == (32, 32)
    with pytest.raises(TexnetError, match="no built-in model 'nothing'"):
        TextureGenerator.from_pretrained("builtin:nothing")


def test_a_device_that_is_not_there_is_refused():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(TexnetError, match="no CUDA GPU"):
        TextureGenerator.from_pretrained("brick", device="cuda")
    for device in ("mps", "meta", "cuda:x"):
        with pytest.raises(TexnetError, match="expected cpu, cuda or cuda:N"):
            TextureGenerator.from_pretrained("brick", device=device)
