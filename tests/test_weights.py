import hashlib

import h5py
import numpy as np
import pytest
import torch

from texnet import weights
from texnet.descriptor import VGG19Descriptor
from texnet.errors import TexnetError


def write_fake_vgg_h5(path, seed=0):
    """An h5 laid out like Keras' VGG-19 file, with random values (and only 1/1 the real size)."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as h5:
        in_channels = 3
        for (block, count), width in zip(weights.VGG19_BLOCKS, weights.VGG19_WIDTHS):
            for conv in range(1, count + 1):
                name = f"block{block}_conv{conv}"
                group = h5.create_group(name)
                group[f"{name}_W_1:0"] = rng.standard_normal((3, 3, in_channels, width), dtype=np.float32) * 0.01
                group[f"{name}_b_1:0"] = rng.standard_normal(width, dtype=np.float32)
                in_channels = width
    return path


@pytest.fixture(scope="module")
def fake_h5(tmp_path_factory):
    return write_fake_vgg_h5(tmp_path_factory.mktemp("h5") / weights.H5_NAME)


@pytest.fixture
def accept_fake(monkeypatch, fake_h5):
    """Make the fake file's checksum the expected one."""
    monkeypatch.setattr(weights, "H5_MD5", hashlib.md5(fake_h5.read_bytes()).hexdigest())
    return fake_h5


def test_conversion_transposes_kernels_without_flipping(tmp_path, fake_h5):
    out = weights.convert_h5(fake_h5, tmp_path / "vgg.safetensors")
    converted = weights.load_safetensors(out)
    with h5py.File(fake_h5) as h5:
        kernel = h5["block3_conv2"]["block3_conv2_W_1:0"][()]  # (kh, kw, in, out)
        bias = h5["block3_conv2"]["block3_conv2_b_1:0"][()]
    torch_kernel = converted["block3_conv2.weight"]  # (out, in, kh, kw)
    assert torch_kernel.shape == (256, 256, 3, 3)
    # Element (out=5, in=7, row=0, col=2) must come from kernel[0, 2, 7, 5]: no spatial flip.
    assert torch_kernel[5, 7, 0, 2].item() == pytest.approx(float(kernel[0, 2, 7, 5]))
    assert torch.allclose(converted["block3_conv2.bias"], torch.from_numpy(bias))


def test_converted_weights_drive_the_descriptor_like_a_keras_conv(tmp_path, fake_h5):
    tensors = weights.load_safetensors(weights.convert_h5(fake_h5, tmp_path / "vgg.safetensors"))
    descriptor = VGG19Descriptor(layers=("relu1_1",), weights=tensors)
    image = torch.rand(1, 3, 20, 20)
    x = descriptor.preprocess(image)[0].numpy()  # (3, H, W), BGR caffe space
    with h5py.File(fake_h5) as h5:
        kernel = h5["block1_conv1"]["block1_conv1_W_1:0"][()]
        bias = h5["block1_conv1"]["block1_conv1_b_1:0"][()]
    # Keras' conv (cross-correlation) at pixel (10, 10), by hand.
    patch = x[:, 9:12, 9:12]  # (in, 3, 3)
    expected = np.maximum(np.einsum("ihw,hwio->o", patch, kernel) + bias, 0)
    actual = descriptor(image)["relu1_1"][0, :, 10, 10].numpy()
    assert np.allclose(actual, expected, atol=1e-4)


def test_resolution_order_explicit_then_env_then_cache_then_fetch(isolated_cache, accept_fake, tmp_path, monkeypatch):
    tried = []

    def fake_fetch(workdir):
        tried.append("fetch")
        target = workdir / weights.H5_NAME
        target.write_bytes(accept_fake.read_bytes())
        return target

    monkeypatch.setattr(weights, "FETCHERS", (("fake", fake_fetch),))
    # Nothing given, empty cache: fetched, checked, converted into the cache.
    assert weights.resolve_vgg_weights() == weights.cached_weights_path()
    assert tried == ["fetch"]
    # Now cached: no second fetch.
    assert weights.resolve_vgg_weights() == weights.cached_weights_path()
    assert tried == ["fetch"]
    # $TEXNET_VGG19 wins over the cache, an explicit path wins over $TEXNET_VGG19.
    env_file = tmp_path / "env.safetensors"
    env_file.write_bytes(weights.cached_weights_path().read_bytes())
    monkeypatch.setenv("TEXNET_VGG19", str(env_file))
    assert weights.resolve_vgg_weights() == env_file
    explicit = tmp_path / "explicit.safetensors"
    explicit.write_bytes(env_file.read_bytes())
    assert weights.resolve_vgg_weights(explicit) == explicit
    # A wrong explicit path is an error, not a silent fall-back to the cache.
    with pytest.raises(TexnetError, match="not found"):
        weights.resolve_vgg_weights(tmp_path / "missing.h5")


def test_checksum_mismatch_is_refused(isolated_cache, fake_h5):
    with pytest.raises(TexnetError, match="checksum mismatch"):
        weights.resolve_vgg_weights(fake_h5)
    assert not weights.cached_weights_path().exists()


def test_fetched_file_with_wrong_checksum_is_refused_and_all_sources_are_listed(isolated_cache, fake_h5, monkeypatch):
    def wrong_file(workdir):
        return fake_h5

    def offline(workdir):
        raise TexnetError("network unreachable")

    monkeypatch.setattr(weights, "FETCHERS", (("mirror A", wrong_file), ("mirror B", offline)))
    with pytest.raises(TexnetError) as error:
        weights.resolve_vgg_weights()
    message = str(error.value)
    assert "mirror A" in message and "checksum mismatch" in message
    assert "mirror B" in message and "network unreachable" in message
    assert "--vgg-weights" in message and weights.H5_MD5 in message


@pytest.mark.parametrize("content", [b"not weights at all", b"\x89HDF\r\n\x1a\ntruncated"])
def test_corrupt_weights_file_is_refused(isolated_cache, tmp_path, content):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(content)
    with pytest.raises(TexnetError):
        weights.resolve_vgg_weights(bad)


def test_safetensors_with_wrong_shapes_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"block1_conv1.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(TexnetError, match="not VGG-19 weights"):
        weights.resolve_vgg_weights(path)
