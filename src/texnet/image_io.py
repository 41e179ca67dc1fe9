"""Reading and writing images: any common format in, RGB tensors in [0, 1] out."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .atomic_write import write_atomically
from .errors import TexnetError

# Larger inputs are refused before decoding: a 10 kB file can claim billions of pixels.
MAX_INPUT_PIXELS = 64_000_000
# Output sizes are bounded too, so a typo like 100000x100000 fails fast instead of swapping.
MAX_OUTPUT_SIDE = 16384

Image.MAX_IMAGE_PIXELS = MAX_INPUT_PIXELS


def load_image(path: str | os.PathLike, max_pixels: int = MAX_INPUT_PIXELS) -> Image.Image:
    """Open any Pillow-readable image as 8-bit RGB, with its EXIF orientation applied."""
    path = Path(path)
    if not path.exists():
        raise TexnetError(f"{path}: no such file")
    if path.is_dir():
        raise TexnetError(f"{path}: is a folder, not an image")
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise TexnetError(
                    f"{path}: {width}x{height} is over the limit of {max_pixels:,} pixels"
                )
            image.load()
            return to_rgb(ImageOps.exif_transpose(image))
    except TexnetError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise TexnetError(f"{path}: not a readable image ({error.__class__.__name__})") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise TexnetError(f"{path}: cannot read image: {error}") from None


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


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB image -> float tensor (1, 3, H, W) in [0, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def tensor_to_image(tensor: torch.Tensor) -> Image.Image:
    """Float tensor (3, H, W) or (1, 3, H, W) in [0, 1] -> PIL RGB image (rounded, clipped)."""
    if tensor.dim() == 4:
        if tensor.shape[0] != 1:
            raise ValueError("tensor_to_image takes one image; index the batch first")
        tensor = tensor[0]
    array = tensor.detach().float().clamp(0, 1).mul(255).round().byte()
    return Image.fromarray(array.permute(1, 2, 0).cpu().numpy(), "RGB")


def quantize(tensor: torch.Tensor) -> torch.Tensor:
    """Round to the 8-bit values an image file will hold, so losses describe the saved file."""
    return tensor.clamp(0, 1).mul(255).round().div(255)


def resize_to_fit(image: Image.Image, max_side: int) -> Image.Image:
    """Shrink (never enlarge) so that the longer side is at most max_side."""
    if max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def output_format(path: str | os.PathLike) -> str:
    """The Pillow format for an output path, from its extension."""
    suffix = Path(path).suffix.lower()
    if not suffix:
        raise TexnetError(f"{path}: give the output file an extension such as .png or .jpg")
    format_name = Image.registered_extensions().get(suffix)
    if format_name is None or format_name not in Image.SAVE:
        raise TexnetError(f"{path}: cannot write '{suffix}' images; use .png, .jpg, .webp, ...")
    return format_name


def save_image(image: Image.Image, path: str | os.PathLike) -> Path:
    """Write atomically, in the format the extension names."""
    path = Path(path)
    format_name = output_format(path)
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


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The image files directly inside `folder` (by extension), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TexnetError(f"{folder}: no such folder")
    return sorted(path for path in folder.iterdir() if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)
