"""Sampling trained texture generators: `TextureGenerator.from_pretrained("brick").sample(...)`.

Sample i of a call depends only on (seed + i) and the size: not on the backend, the batch, or
whether the output was made in one pass or in strips (texnet.noise).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
from PIL import Image

from .errors import TexnetError
from .generator_config import GeneratorConfig
from .image_io import check_size, to_uint8
from .model_files import PretrainedGenerator
from .noise import batch_noise, noise_rows

MAX_BATCH = 8
MAX_SEED = 2 ** 63 - 1


def image_digest(image: Image.Image) -> str:
    return hashlib.sha256(image.tobytes()).hexdigest()


def as_size(size) -> tuple[int, int]:
    """N or (height, width) -> (height, width), checked."""
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(side, int) and not isinstance(side, bool) for side in size)):
        raise TexnetError(f"size must be N or (height, width) in whole pixels, not {size!r}")
    check_size(*size)
    return int(size[0]), int(size[1])


def check_seed(seed) -> int:
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise TexnetError(f"seed must be a whole number from 0 to {MAX_SEED}, not {seed!r}")
    return seed


class TextureGenerator(PretrainedGenerator):
    """A trained texture network plus what it was trained on."""

    kind = "texture"

    def check_config(self, config: GeneratorConfig) -> None:
        if config.content_channels or not config.noise_channels:
            raise TexnetError("a texture network takes noise and no photo; this one is a stylization network")

    def sample_noise(self, seeds: list[int], size: int) -> list[np.ndarray]:
        """The noise, scale by scale, that the size x size samples of these seeds are made from."""
        return batch_noise(seeds, self.config.scale_sizes(size, size), self.config.noise_channels)

    def sample(self, count: int = 1, size=256, seed: int = 0, bf16: bool | None = None, backend: str = "auto",
               memory_limit_mb: float | None = None) -> list[Image.Image]:
        """`count` new textures of `size` (N or (height, width)) as PIL images.

        `backend` is "auto" (onnxruntime where the model has an ONNX graph and the output fits in
        memory, else PyTorch), "onnx" or "torch"; `bf16` runs PyTorch in bfloat16 (by default
        where the CPU computes it natively); outputs over the memory limit (`memory_limit_mb`,
        default 80% of the free memory) are made in exact strips by PyTorch.
        """
        return [Image.fromarray(pixels) for pixels in self.generate(count, size, seed, bf16, backend,
                                                                   memory_limit_mb, as_float=False)]

    def sample_tensor(self, count: int = 1, size=256, seed: int = 0, bf16: bool | None = None,
                      backend: str = "auto", memory_limit_mb: float | None = None):
        """The samples as one float tensor (count, 3, H, W) in [0, 1]."""
        import torch

        return torch.from_numpy(np.stack(list(self.generate(count, size, seed, bf16, backend, memory_limit_mb,
                                                             as_float=True))))

    def generate(self, count: int, size, seed: int, bf16: bool | None, backend: str,
                 memory_limit_mb: float | None, as_float: bool) -> Iterator[np.ndarray]:
        """Each sample in turn: (3, H, W) float32, or (H, W, 3) uint8 unless `as_float`."""
        height, width = as_size(size)
        check_seed(seed)
        if not isinstance(count, int) or count < 1:
            raise TexnetError(f"count must be at least 1, not {count!r}")
        check_seed(seed + count - 1)
        # Sizes below the net's minimum are generated at the minimum and cropped.
        run_height, run_width = max(height, self.config.min_side), max(width, self.config.min_side)
        pixels = run_height * run_width
        plan = self.plan(backend, pixels, memory_limit_mb, bf16, f"{width}x{height}")
        seeds = [seed + index for index in range(count)]
        if not plan.fits(pixels):
            for one in seeds:
                yield self.sample_in_strips(one, run_height, run_width, plan.budget, bf16, as_float)[
                    self.crop(height, width, as_float)]
            return
        batch = max(1, min(MAX_BATCH, plan.budget // (pixels * plan.bytes_per_pixel)))
        sizes = self.config.scale_sizes(run_height, run_width)
        for start in range(0, count, batch):
            noise = batch_noise(seeds[start: start + batch], sizes, self.config.noise_channels)
            for image in self.run(noise, plan.backend, bf16)[..., :height, :width]:
                yield image if as_float else to_uint8(image).transpose(1, 2, 0)

    @staticmethod
    def crop(height: int, width: int, as_float: bool) -> tuple[slice, ...]:
        return (slice(None), slice(0, height), slice(0, width)) if as_float else (slice(0, height), slice(0, width))

    def sample_in_strips(self, seed: int, height: int, width: int, budget: int, bf16: bool | None,
                         as_float: bool) -> np.ndarray:
        """One sample made strip by strip with PyTorch (texnet.strips), within `budget` bytes."""
        sizes = self.config.scale_sizes(height, width)
        channels = self.config.noise_channels
        out = np.empty((3, height, width), np.float32) if as_float else np.empty((height, width, 3), np.uint8)

        def write(start: int, stop: int, rgb) -> None:
            rows = rgb.numpy()
            if as_float:
                out[:, start:stop] = rows
            else:
                out[start:stop] = to_uint8(rows).transpose(1, 2, 0)

        self.runner("torch").run_in_strips(
            lambda scale, start, stop: noise_rows(seed, scale, channels, sizes[scale][1], start, stop)[None],
            height, width, budget, write, bf16)
        return out


def tile_preview(image: Image.Image, repeat: int = 2) -> Image.Image:
    """The image repeated repeat x repeat, so seams can be checked by eye."""
    tiled = Image.new("RGB", (image.width * repeat, image.height * repeat))
    for row in range(repeat):
        for column in range(repeat):
            tiled.paste(image, (column * image.width, row * image.height))
    return tiled
