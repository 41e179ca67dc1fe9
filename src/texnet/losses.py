"""Gram-matrix texture loss, content loss and total variation, all batched."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C), normalised by C*H*W so layers of any size are comparable."""
    batch, channels, height, width = features.shape
    flat = features.reshape(batch, channels, height * width).float()
    return flat @ flat.transpose(1, 2) / (channels * height * width)


@dataclass
class TextureTarget:
    """Gram matrices of an example texture, computed once and reused for every step."""

    grams: dict[str, torch.Tensor]
    weights: dict[str, float]

    @classmethod
    def from_image(cls, descriptor, example: torch.Tensor,
                   weights: Mapping[str, float] | None = None) -> "TextureTarget":
        """`example` is (1, 3, H, W) in [0, 1]; layers default to all of the descriptor's."""
        weights = dict(weights) if weights else {name: 1.0 for name in descriptor.layers}
        with torch.no_grad():
            features = descriptor(example)
        return cls({name: gram_matrix(features[name])[0] for name in weights}, weights)

    def loss(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Per-sample texture loss, shape (B,): weighted sum of squared Frobenius distances."""
        return sum(weight * (gram_matrix(features[name]) - self.grams[name]).pow(2).sum(dim=(1, 2))
                   for name, weight in self.weights.items())


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared error of activations, shape (B,)."""
    return (features.float() - target.float()).pow(2).flatten(1).mean(dim=1)


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared difference of neighbouring pixels, shape (B,)."""
    dx = (images[..., :, 1:] - images[..., :, :-1]).pow(2).flatten(1).mean(dim=1)
    dy = (images[..., 1:, :] - images[..., :-1, :]).pow(2).flatten(1).mean(dim=1)
    return dx + dy
