"""Stylizing photos in one forward pass: `Stylizer.from_pretrained("starry-night").stylize(photo)`.

A stylization network is the texture generator with the photo, downsampled to every scale,
as extra input channels (Ulyanov et al. 2016, section 4). Two variants:
- "paper": 3 noise channels beside the photo and batch normalisation (ICML 2016);
- "improved": instance normalisation and no noise (Improved Texture Networks, CVPR 2017).
Reflection padding keeps the photo's borders free of the dark frame zero padding leaves.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .errors import TexnetError
from .generator_config import GeneratorConfig
from .image_io import as_rgb_image, resize_to_fit, to_uint8
from .model_files import PretrainedGenerator
from .noise import batch_noise, noise_rows
from .runtime import BYTES_PER_PIXEL, memory_budget
from .sampling import check_seed

VARIANTS = {
    "improved": GeneratorConfig(noise_channels=0, content_channels=3, norm="instance", padding="reflect"),
    "paper": GeneratorConfig(noise_channels=3, content_channels=3, norm="batch", padding="reflect"),
}


class Stylizer(PretrainedGenerator):
    """A trained stylization network plus what it was trained on."""

    kind = "style"

    def check_config(self, config: GeneratorConfig) -> None:
        if config.content_channels != 3:
            raise TexnetError("a stylization network takes a photo; this one is a texture network")

    def seed_for(self, seed: int | None) -> int:
        """The noise seed; a seed for a net without noise would silently change nothing, so it is refused."""
        if seed is None:
            return 0
        if not self.config.noise_channels:
            raise TexnetError("this style model has no noise input, so a seed changes nothing; leave it out")
        return check_seed(seed)

    def stylize(self, image, strength: float = 1.0, preserve_colors: bool = False, max_size: int | None = None,
                seed: int | None = None, bf16: bool | None = None, backend: str = "auto",
                memory_limit_mb: float | None = None) -> Image.Image:
        """The photo in this style, the same size as the photo (after `max_size`, if given).

        `image` is a PIL image, a NumPy array or a tensor (see image_io.as_rgb_image).
        `strength` in [0, 1] blends the result with the photo (0 gives the photo back);
        `preserve_colors` keeps the photo's colours and takes only the luminance of the result;
        `backend`, `bf16` and `memory_limit_mb` as for TextureGenerator.sample: photos over the
        memory limit are stylized in exact strips.
        """
        if not isinstance(strength, (int, float)) or not 0 <= strength <= 1:
            raise TexnetError(f"strength must be between 0 and 1, not {strength!r}")
        photo = as_rgb_image(image)
        if max_size is not None:
            if not isinstance(max_size, int) or max_size < 1:
                raise TexnetError(f"max size must be a whole number of pixels, at least 1, not {max_size!r}")
            photo = resize_to_fit(photo, max_size)
        seed = self.seed_for(seed)
        if strength == 0:
            return photo.copy()
        result = Image.fromarray(self.stylize_pixels(np.asarray(photo), seed, bf16, backend, memory_limit_mb))
        if preserve_colors:
            result = keep_colors(result, photo)
        return result if strength == 1 else Image.blend(photo, result, strength)

    def stylize_tensor(self, content, seed: int | None = None, bf16: bool | None = None, backend: str = "auto"):
        """(B, 3, H, W) in [0, 1] -> the stylized batch as a float tensor, exactly (B, 3, H, W), in one pass."""
        import torch

        height, width = content.shape[-2:]
        padded = edge_pad(content.detach().float().cpu().numpy(), self.config.min_side)
        chosen = self.backend(backend, padded.shape[-2] * padded.shape[-1] * len(padded), bf16=bf16)
        output = self.run(self.inputs(padded, self.seed_for(seed), len(padded)), chosen, bf16)
        return torch.from_numpy(np.ascontiguousarray(output[..., :height, :width]))

    def inputs(self, content: np.ndarray, seed: int, batch: int) -> list[np.ndarray]:
        if not self.config.noise_channels:
            return [content]
        sizes = self.config.scale_sizes(*content.shape[-2:])
        return [content] + batch_noise([seed + index for index in range(batch)], sizes, self.config.noise_channels)

    def stylize_pixels(self, photo: np.ndarray, seed: int, bf16: bool | None, backend: str,
                       memory_limit_mb: float | None) -> np.ndarray:
        """(H, W, 3) uint8 -> the stylized (H, W, 3) uint8: in one pass, or in exact strips (PyTorch)
        where one pass would not fit in the memory limit. Photos smaller than the coarsest scale
        allows are edge-padded, then cropped."""
        height, width = photo.shape[:2]
        padded = edge_pad(photo.transpose(2, 0, 1)[None], self.config.min_side)[0]
        pixels = padded.shape[-2] * padded.shape[-1]
        chosen = self.backend(backend, pixels, memory_limit_mb, bf16)
        budget = memory_budget(memory_limit_mb)
        bytes_per_pixel = BYTES_PER_PIXEL["onnx"]
        if chosen == "torch":
            precision = "bfloat16" if self.runner("torch").use_bf16(bf16) else "float32"
            bytes_per_pixel = BYTES_PER_PIXEL[f"torch-{precision}"]
        if pixels * bytes_per_pixel <= budget:
            content = padded[None].astype(np.float32) / 255
            output = self.run(self.inputs(content, seed, 1), chosen, bf16)[0]
            return to_uint8(output[:, :height, :width]).transpose(1, 2, 0)
        if chosen == "onnx":
            raise TexnetError(f"a {width}x{height} photo needs about {pixels * bytes_per_pixel / 1e9:.1f} GB in one "
                              "onnxruntime pass, over the memory limit; --backend torch stylizes it in strips")
        return self.stylize_in_strips(padded, seed, budget, bf16)[:height, :width]

    def stylize_in_strips(self, photo: np.ndarray, seed: int, budget: int, bf16: bool | None) -> np.ndarray:
        import torch

        from .strips import content_rows

        channels, height, width = photo.shape
        sizes = self.config.scale_sizes(height, width)
        photo_rows = torch.from_numpy(np.ascontiguousarray(photo))[None]
        out = np.empty((height, width, 3), np.uint8)

        def inputs(scale: int, start: int, stop: int):
            rows = content_rows(photo_rows, scale, start, stop)
            if not self.config.noise_channels:
                return rows
            noise = noise_rows(seed, scale, self.config.noise_channels, sizes[scale][1], start, stop)
            return torch.cat([rows, torch.from_numpy(noise)[None]], dim=1)

        def write(start: int, stop: int, rgb) -> None:
            out[start:stop] = to_uint8(rgb.numpy()).transpose(1, 2, 0)

        self.runner("torch").run_in_strips(inputs, height, width, budget, write, bf16)
        return out


def edge_pad(images: np.ndarray, min_side: int) -> np.ndarray:
    """(B, C, H, W) with each side grown to at least `min_side` by repeating the edge pixels."""
    height, width = images.shape[-2:]
    extra = ((0, 0), (0, 0), (0, max(0, min_side - height)), (0, max(0, min_side - width)))
    return np.pad(images, extra, mode="edge") if any(pad for _, pad in extra) else images


def keep_colors(stylized: Image.Image, photo: Image.Image) -> Image.Image:
    """The luminance of `stylized` with the chroma of `photo` (Gatys et al. 2016, "Preserving
    colour in neural artistic style transfer", luminance-only transfer)."""
    luminance = stylized.convert("YCbCr").getchannel("Y")
    _, blue, red = photo.convert("YCbCr").split()
    return Image.merge("YCbCr", (luminance, blue, red)).convert("RGB")
