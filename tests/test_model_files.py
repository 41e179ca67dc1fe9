import json

import pytest
import torch

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


def test_round_trip_gives_identical_samples(saved_model):
    model, folder = saved_model
    loaded = TextureGenerator.from_pretrained(folder)
    assert loaded.config == model.config
    assert loaded.info == {"example_sha256": "abc"}
    assert torch.equal(loaded.sample_tensor(2, (33, 47), seed=5), model.sample_tensor(2, (33, 47), seed=5))
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]


def test_missing_model_folder(tmp_path):
    with pytest.raises(TexnetError, match="no such model"):
        TextureGenerator.from_pretrained(tmp_path / "absent")


def test_truncated_weights(saved_model):
    _, folder = saved_model
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:300])
    with pytest.raises(TexnetError, match="corrupt or truncated"):
        TextureGenerator.from_pretrained(folder)


def test_a_pickle_is_never_loaded(saved_model):
    _, folder = saved_model
    torch.save({"evil": torch.zeros(1)}, folder / "model.safetensors")  # a pickle in disguise
    with pytest.raises(TexnetError, match="corrupt"):
        TextureGenerator.from_pretrained(folder)


@pytest.mark.parametrize("change,message", [
    (lambda c: c.update(format_version=99), "format version 99"),
    (lambda c: c.update(kind="style"), "style model, not a texture model"),
    (lambda c: c["generator"].update(channels=8), "do not match the architecture"),
    (lambda c: c["generator"].update(colour="blue"), "no valid 'generator'"),
])
def test_incompatible_configs(saved_model, change, message):
    _, folder = saved_model
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(TexnetError, match=message):
        TextureGenerator.from_pretrained(folder)


def test_corrupt_config(saved_model):
    _, folder = saved_model
    (folder / "config.json").write_text("{not json")
    with pytest.raises(TexnetError, match="not valid JSON"):
        TextureGenerator.from_pretrained(folder)
    (folder / "config.json").unlink()
    with pytest.raises(TexnetError, match="config.json is missing"):
        TextureGenerator.from_pretrained(folder)
