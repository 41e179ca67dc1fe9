"""Stylizing photos in one forward pass: `Stylizer.from_pretrained("starry-night").stylize(photo)`.

A stylization network is the texture generator with the photo, downsampled to every scale,
as extra input channels (Ulyanov et al. 2016, section 4). Two variants:
- "paper": 3 noise channels beside the photo and batch normalisation (ICML 2016);
- "improved": instance normalisation and no noise (Improved Texture Networks, CVPR 2017).
Reflection padding keeps the photo's borders free of the dark frame zero padding leaves.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image

from .errors import TexnetError
from .generators import GeneratorConfig, PyramidGenerator
from .image_io import image_to_tensor, resize_to_fit, tensor_to_image, to_rgb
from .model_files import PretrainedGenerator

# Peak memory added per output pixel (measured: 11.7 GB for a 4000x3000 photo in float32; 2.9 GB
# for 2000x1500 in float32 and 1.6 GB in bfloat16; the finest scale's 48-channel maps dominate).
BYTES_PER_PIXEL = {False: 1000, True: 550}

VARIANTS = {
    "improved": GeneratorConfig(noise_channels=0, content_channels=3, norm="instance", padding="reflect"),
    "paper": GeneratorConfig(noise_channels=3, content_channels=3, norm="batch", padding="reflect"),
}


class Stylizer(PretrainedGenerator):
    """A trained stylization network plus what it was trained on."""

    kind = "style"

    def __init__(self, net: PyramidGenerator, info: dict | None = None):
        if net.config.content_channels != 3:
            raise TexnetError("a stylizer needs a generator with 3 content channels")
        super().__init__(net, info)

    @torch.no_grad()
    def stylize_tensor(self, content: torch.Tensor, seed: int = 0, bf16: bool | None = None) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> the stylized batch, exactly (B, 3, H, W).

        Any size works: the pyramid rounds odd sizes up at each scale and crops back, and
        photos smaller than the coarsest scale allows are edge-padded, then cropped.
        """
        device = self.device
        height, width = content.shape[-2:]
        short = self.net.config.min_side
        padded = F.pad(content.to(device), (0, max(0, short - width), 0, max(0, short - height)), mode="replicate")
        noise = self.net.make_noise(len(content), *padded.shape[-2:], torch.Generator().manual_seed(seed), device)
        return self.run(noise, padded, bf16)[..., :height, :width].cpu()

    def stylize(self, image: Image.Image, strength: float = 1.0, preserve_colors: bool = False,
                max_size: int | None = None, seed: int = 0, bf16: bool | None = None) -> Image.Image:
        """The photo in this style, the same size as the photo (after `max_size`, if given).

        `strength` in [0, 1] blends the result with the photo (0 gives the photo back);
        `preserve_colors` keeps the photo's colours and takes only the luminance of the result;
        `bf16` runs the net in bfloat16, by default where that is faster.
        """
        if not 0 <= strength <= 1:
            raise TexnetError(f"strength must be between 0 and 1, not {strength}")
        photo = to_rgb(image)
        if max_size is not None:
            if max_size < 1:
                raise TexnetError(f"max size must be at least 1 px, not {max_size}")
            photo = resize_to_fit(photo, max_size)
        if strength == 0:
            return photo.copy()
        bf16 = self.use_bf16(bf16)
        fitting = largest_side_in_memory(photo.size, bf16)
        if fitting < max(photo.size):
            raise TexnetError(f"a {photo.width}x{photo.height} photo needs about "
                              f"{photo.width * photo.height * BYTES_PER_PIXEL[bf16] / 1e9:.1f} GB, more than is free; "
                              f"shrink it to a longer side of {fitting} px (max_size / --max-size)")
        result = tensor_to_image(self.stylize_tensor(image_to_tensor(photo), seed, bf16))
        if preserve_colors:
            result = keep_colors(result, photo)
        return result if strength == 1 else Image.blend(photo, result, strength)


def largest_side_in_memory(size: tuple[int, int], bf16: bool = False) -> int:
    """The longest side a photo of this aspect ratio can have and still be stylized in the
    memory now free (80% of it, to leave room for the rest of the process)."""
    available = available_memory()
    if available is None:
        return max(size)
    budget = 0.8 * available / BYTES_PER_PIXEL[bf16]
    longer, shorter = max(size), min(size)
    side = min(longer, int(longer * (budget / (longer * shorter)) ** 0.5))
    while side > 1 and side * max(1, round(shorter * side / longer)) > budget:  # as resize_to_fit rounds
        side -= 1
    return side


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux's MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def keep_colors(stylized: Image.Image, photo: Image.Image) -> Image.Image:
    """The luminance of `stylized` with the chroma of `photo` (Gatys et al. 2016, "Preserving
    colour in neural artistic style transfer", luminance-only transfer)."""
    luminance = stylized.convert("YCbCr").getchannel("Y")
    _, blue, red = photo.convert("YCbCr").split()
    return Image.merge("YCbCr", (luminance, blue, red)).convert("RGB")
