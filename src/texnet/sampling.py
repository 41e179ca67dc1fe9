"""Sampling trained texture generators: `TextureGenerator.from_pretrained("brick").sample(...)`."""

from __future__ import annotations

import hashlib

import torch
from PIL import Image

from .errors import TexnetError
from .image_io import check_size, tensor_to_image
from .model_files import PretrainedGenerator


def image_digest(image: Image.Image) -> str:
    return hashlib.sha256(image.tobytes()).hexdigest()


class TextureGenerator(PretrainedGenerator):
    """A trained texture network plus what it was trained on."""

    kind = "texture"

    @torch.no_grad()
    def sample_tensor(self, count: int = 1, size: tuple[int, int] = (256, 256), seed: int = 0,
                      batch: int = 8, bf16: bool | None = None) -> torch.Tensor:
        """(count, 3, H, W) in [0, 1]. Sample i depends only on (seed, i): batching changes nothing.

        Sizes below the net's minimum are generated at the minimum and cropped. `bf16` runs the
        net in bfloat16 (by default where that is faster): pixels off by about 0.002 on average.
        """
        check_size(*size)
        if count < 1:
            raise TexnetError(f"count must be at least 1, not {count}")
        device = self.device
        height, width = (max(side, self.config.min_side) for side in size)
        samples = []
        for start in range(0, count, batch):
            noise = [torch.cat(parts) for parts in zip(*(
                self.net.make_noise(1, height, width, torch.Generator().manual_seed(seed + i), device)
                for i in range(start, min(count, start + batch))))]
            samples.append(self.run(noise, bf16=bf16)[..., : size[0], : size[1]].cpu())
        return torch.cat(samples)

    def sample(self, count: int = 1, size: tuple[int, int] = (256, 256), seed: int = 0,
               bf16: bool | None = None) -> list[Image.Image]:
        return [tensor_to_image(image) for image in self.sample_tensor(count, size, seed, bf16=bf16)]


def tile_preview(image: Image.Image, repeat: int = 2) -> Image.Image:
    """The image repeated repeat x repeat, so seams can be checked by eye."""
    tiled = Image.new("RGB", (image.width * repeat, image.height * repeat))
    for row in range(repeat):
        for column in range(repeat):
            tiled.paste(image, (column * image.width, row * image.height))
    return tiled
