"""Reading and writing images: any common format in, RGB tensors in [0, 1] out."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .atomic_write import write_atomically
from .errors import TexnetError
from .outputs import IMAGE_SUFFIXES, image_format

# Larger inputs are refused before decoding: a 10 kB file can claim billions of pixels.
MAX_INPUT_PIXELS = 64_000_000
# Output sizes are bounded too, so a typo like 100000x100000 fails fast instead of swapping.
MAX_OUTPUT_SIDE = 16384

Image.MAX_IMAGE_PIXELS = MAX_INPUT_PIXELS


def load_image(source, max_pixels: int = MAX_INPUT_PIXELS) -> Image.Image:
    """Open any Pillow-readable image as 8-bit RGB, with its EXIF orientation applied.

    `source` is a path, the file's bytes, or a binary file object.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        name, opened = "image bytes", io.BytesIO(bytes(source))
    elif hasattr(source, "read"):
        name, opened = getattr(source, "name", "image file object"), source
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise TexnetError(f"{path}: no such file")
        if path.is_dir():
            raise TexnetError(f"{path}: is a folder, not an image")
        name, opened = str(path), path
    else:
        raise TexnetError(f"load_image takes a path, bytes or a file object, not {type(source).__name__}")
    try:
        # Pillow warns above its own limit; ours is checked below, with one clear message instead.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(opened) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise TexnetError(f"{name}: {width}x{height} is over the limit of {max_pixels:,} pixels")
                if width * height == 0:
                    raise TexnetError(f"{name}: the image is empty ({width}x{height})")
                image.load()
                return to_rgb(ImageOps.exif_transpose(image))
    except TexnetError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise TexnetError(f"{name}: not a readable image ({error.__class__.__name__})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise TexnetError(f"{name}: cannot read image: {error}") from None


def megapixels(path: Path) -> float:
    """An image's size from its header, without decoding it (0 for a file that cannot be read:
    it fails later, on its own)."""
    try:
        with Image.open(path) as image:
            return image.width * image.height / 1e6
    except (OSError, ValueError, Image.DecompressionBombError):
        return 0.0


def as_rgb_image(image) -> Image.Image:
    """What API users pass as an image, as an RGB PIL image: a PIL image of any mode; a NumPy
    array (H, W) or (H, W, 3|4), uint8 or float in [0, 1]; a PyTorch tensor (3, H, W) or
    (1, 3, H, W) in [0, 1]."""
    if isinstance(image, Image.Image):
        rgb = to_rgb(image)
    elif type(image).__module__.startswith("torch"):
        tensor = image.detach().float().cpu()
        if tensor.dim() == 4 and tensor.shape[0] == 1:
            tensor = tensor[0]
        if tensor.dim() != 3 or tensor.shape[0] not in (1, 3):
            raise TexnetError(f"an image tensor must be (3, H, W) or (1, 3, H, W), not {tuple(image.shape)}")
        rgb = array_to_image(tensor.expand(3, -1, -1).numpy())
    elif isinstance(image, np.ndarray):
        rgb = numpy_image(image)
    else:
        raise TexnetError(f"expected a PIL image, a NumPy array or a tensor, not {type(image).__name__}")
    if rgb.width * rgb.height == 0:
        raise TexnetError(f"the image is empty ({rgb.width}x{rgb.height})")
    return rgb


def numpy_image(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        array = array[..., :3]
    elif array.ndim != 2:
        raise TexnetError(f"an image array must be (H, W), (H, W, 3) or (H, W, 4), not {array.shape}")
    if array.dtype == np.uint8:
        pixels = array
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise TexnetError("the image array holds values that are not finite")
        pixels = np.rint(np.clip(array, 0, 1) * 255).astype(np.uint8)
    else:
        raise TexnetError(f"an image array must be uint8 or float in [0, 1], not {array.dtype}")
    return Image.fromarray(np.ascontiguousarray(pixels)).convert("RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB: alpha is composited on white, 16-bit is rescaled."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # Pillow's own convert("L") clips 16-bit values at 255 instead of rescaling.
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if values.max(initial=0) > 255 else 255.0
        gray = np.clip(values / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def image_to_array(image: Image.Image) -> np.ndarray:
    """PIL RGB image -> float32 array (1, 3, H, W) in [0, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return np.ascontiguousarray(array.transpose(2, 0, 1)[None])


def array_to_image(array: np.ndarray) -> Image.Image:
    """Float array (3, H, W) in [0, 1] -> PIL RGB image (rounded, clipped)."""
    return Image.fromarray(to_uint8(array).transpose(1, 2, 0), "RGB")


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Float values in [0, 1] -> the 8-bit values an image file holds (rounded half to even, as
    PyTorch's round, so both paths give the same bytes)."""
    return np.rint(np.clip(array, 0, 1) * 255).astype(np.uint8)


def image_to_tensor(image: Image.Image):
    """PIL RGB image -> float tensor (1, 3, H, W) in [0, 1]."""
    import torch

    return torch.from_numpy(image_to_array(image))


def tensor_to_image(tensor) -> Image.Image:
    """Float tensor (3, H, W) or (1, 3, H, W) in [0, 1] -> PIL RGB image (rounded, clipped)."""
    if tensor.dim() == 4:
        if tensor.shape[0] != 1:
            raise ValueError("tensor_to_image takes one image; index the batch first")
        tensor = tensor[0]
    return array_to_image(tensor.detach().float().cpu().numpy())


def quantize(tensor):
    """Round to the 8-bit values an image file will hold, so losses describe the saved file."""
    return tensor.clamp(0, 1).mul(255).round().div(255)


def resize_to_fit(image: Image.Image, max_side: int) -> Image.Image:
    """Shrink (never enlarge) so that the longer side is at most max_side."""
    if max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def save_image(image: Image.Image, path: str | os.PathLike) -> Path:
    """Write atomically, in the format the extension names."""
    path = Path(path)
    format_name = image_format(path)
    if not path.parent.exists():
        raise TexnetError(f"{path.parent}: output folder does not exist")
    try:
        write_atomically(path, lambda temporary: image.save(temporary, format=format_name))
    except OSError as error:
        raise TexnetError(f"{path}: cannot write image: {error.strerror or error}") from None
    return path


def parse_size(text: str) -> tuple[int, int]:
    """'256' -> (256, 256); '640x480' -> (height 480, width 640). Returns (height, width)."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        raise TexnetError(f"size '{text}': expected N or WxH, for example 256 or 640x480") from None
    if len(numbers) == 1:
        numbers = numbers * 2
    if len(numbers) != 2:
        raise TexnetError(f"size '{text}': expected N or WxH, for example 256 or 640x480")
    width, height = numbers
    check_size(height, width)
    return height, width


def check_size(height: int, width: int, minimum: int = 1) -> None:
    """Refuse sizes that are non-positive, below `minimum` or absurdly large."""
    for side in (height, width):
        if side < minimum:
            raise TexnetError(f"size {width}x{height}: each side must be at least {minimum} px")
        if side > MAX_OUTPUT_SIDE:
            raise TexnetError(f"size {width}x{height}: each side must be at most {MAX_OUTPUT_SIDE} px")


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The image files directly inside `folder` (by extension), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TexnetError(f"{folder}: no such folder")
    return sorted(path for path in folder.iterdir() if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)
