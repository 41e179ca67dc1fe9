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
    """Gram matrices of an example texture (or a stack of several: one per style), computed once
    and reused for every step."""

    grams: dict[str, torch.Tensor]  # (C, C) per layer, or (S, C, C) for S examples
    weights: dict[str, float]

    @classmethod
    def from_image(cls, descriptor, example: torch.Tensor,
                   weights: Mapping[str, float] | None = None) -> "TextureTarget":
        """`example` is (1, 3, H, W) in [0, 1]; layers default to all of the descriptor's."""
        with torch.no_grad():
            features = descriptor(example)
        return cls.from_features(features, weights or dict.fromkeys(descriptor.layers, 1.0))

    @classmethod
    def from_features(cls, features: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> "TextureTarget":
        """One example's target from its descriptor features, (1, C, H, W) per layer, already computed."""
        return cls({name: gram_matrix(features[name])[0] for name in weights}, dict(weights))

    @classmethod
    def from_images(cls, descriptor, examples: list[torch.Tensor],
                    weights: Mapping[str, float] | None = None) -> "TextureTarget":
        """Stacked targets of several examples (of any sizes); `loss` picks one per sample."""
        weights = dict(weights) if weights else {name: 1.0 for name in descriptor.layers}
        with torch.no_grad():
            features = [descriptor(example) for example in examples]
        return cls({name: torch.cat([gram_matrix(f[name]) for f in features]) for name in weights}, weights)

    def loss(self, features: Mapping[str, torch.Tensor], which: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample texture loss, shape (B,): weighted sum of squared Frobenius distances; for
        stacked targets, `which` (B,) says which target each sample is compared with."""
        def target(name: str) -> torch.Tensor:
            return self.grams[name] if which is None else self.grams[name][which]

        return sum(weight * (gram_matrix(features[name]) - target(name)).pow(2).sum(dim=(1, 2))
                   for name, weight in self.weights.items())


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared error of activations, shape (B,)."""
    return (features.float() - target.float()).pow(2).flatten(1).mean(dim=1)


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared difference of neighbouring pixels, shape (B,)."""
    dx = (images[..., :, 1:] - images[..., :, :-1]).pow(2).flatten(1).mean(dim=1)
    dy = (images[..., 1:, :] - images[..., :-1, :]).pow(2).flatten(1).mean(dim=1)
    return dx + dy


# -- options for training texture generators (issue 10: each one measured in the README) --------
SW_LAYERS = ("relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2", "relu3_3", "relu3_4",
             "relu4_1", "relu4_2", "relu4_3", "relu4_4")  # Heitz et al. 2021's layers


class NormalizeGradient(torch.autograd.Function):
    """Identity forward; backward divides the gradient by its L1 norm. texture_nets'
    `normalize_gradients`: every layer's loss pushes with the same total force, whatever its scale."""

    @staticmethod
    def forward(ctx, features: torch.Tensor) -> torch.Tensor:
        return features.view_as(features)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad / (grad.abs().sum() + 1e-8)


def resample_sorted(values: torch.Tensor, count: int) -> torch.Tensor:
    """Sorted values (..., N) at `count` evenly spaced quantiles, linearly interpolated, so that
    distributions of different sample counts compare value by value."""
    if values.shape[-1] == count:
        return values
    positions = torch.linspace(0, values.shape[-1] - 1, count, device=values.device)
    low = positions.floor().long()
    high = positions.ceil().long()
    weight = positions - low
    return values[..., low] * (1 - weight) + values[..., high] * weight


@dataclass
class SlicedWassersteinTarget:
    """The sliced Wasserstein texture loss (Heitz et al., CVPR 2021): each layer's features are
    projected on as many random unit directions as the layer has channels, drawn anew at every
    call, and the sorted projections of sample and example are compared."""

    features: dict[str, torch.Tensor]  # the example's, (C, N) per layer

    @classmethod
    def from_image(cls, descriptor, example: torch.Tensor) -> "SlicedWassersteinTarget":
        with torch.no_grad():
            features = descriptor(example)
        return cls({name: value[0].flatten(1) for name, value in features.items()})

    def loss(self, features: Mapping[str, torch.Tensor], generator: torch.Generator) -> torch.Tensor:
        """Per-sample loss, shape (B,)."""
        total = 0
        for name, target in self.features.items():
            sample = features[name].flatten(2)  # (B, C, N)
            channels = sample.shape[1]
            directions = torch.nn.functional.normalize(
                torch.randn(channels, channels, generator=generator), dim=1).to(sample.device)
            mine = torch.sort(directions @ sample, dim=-1).values
            theirs = resample_sorted(torch.sort(directions @ target, dim=-1).values, mine.shape[-1])
            total = total + (mine - theirs).pow(2).mean(dim=(1, 2))
        return total


@dataclass
class SpectrumTarget:
    """The example's mean log power spectrum over crops of `size`, per colour channel (Liu et al.
    2016's Fourier constraint, made size-free with crops): large regular structure, such as
    brick courses and weave grids, is a few strong peaks in it."""

    log_power: torch.Tensor  # (3, size, size // 2 + 1)
    size: int

    @classmethod
    def from_image(cls, example: torch.Tensor, size: int) -> "SpectrumTarget":
        height, width = example.shape[-2:]
        size = min(size, height, width)
        crops = torch.cat([example[..., top: top + size, left: left + size]
                           for top in {0, (height - size) // 2, height - size}
                           for left in {0, (width - size) // 2, width - size}])
        return cls(log_power_spectrum(crops).mean(dim=0), size)

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        """Per-sample loss, shape (B,): mean squared difference of log power spectra."""
        crops = images[..., : self.size, : self.size]
        return (log_power_spectrum(crops) - self.log_power.to(images.device)).pow(2).mean(dim=(1, 2, 3))


def log_power_spectrum(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) -> (B, 3, S, S // 2 + 1): log(1 + |FFT|^2) of each mean-free, Hann-windowed channel."""
    size = images.shape[-1]
    window = torch.hann_window(size, periodic=False, device=images.device)
    window = window[:, None] * window[None, :]
    centred = images.float() - images.float().mean(dim=(-2, -1), keepdim=True)
    return torch.log1p(torch.fft.rfft2(centred * window).abs().pow(2))
