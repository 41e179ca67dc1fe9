from pathlib import Path

import pytest
import torch

from texnet.descriptor import VGG19Descriptor

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TEXTURES = SHARED_DATA / "textures"


@pytest.fixture(scope="session")
def tiny_descriptor():
    """A randomly initialised VGG-19 with 1/16 of the channels: same topology, fast."""
    torch.manual_seed(0)
    return VGG19Descriptor(layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"),
                           width_divisor=16)


@pytest.fixture(scope="session")
def real_descriptor():
    """The real ImageNet VGG-19 (the README's test command fetches the weights first)."""
    return VGG19Descriptor.pretrained()


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """An empty weights cache and no $TEXNET_VGG19, so resolution starts from scratch."""
    monkeypatch.setenv("TEXNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TEXNET_VGG19", raising=False)
    return tmp_path / "cache"
