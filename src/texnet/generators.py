"""The multi-scale generator of Texture Networks (Ulyanov et al. 2016, reference `pyramid.lua`).

Each of K scales gets its own noise (scale k is 1/2^k of the output size) through a block of
3x3, 3x3 and 1x1 convolutions; coarse to fine, the running result is upsampled x2 (nearest),
normalised, and concatenated with the next scale's block output, then passed through another
block at the joint width. A final 1x1 convolution maps to RGB. The stylization variant adds
the (downsampled) content image to every scale's input.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .generator_config import GeneratorConfig
from .runtime import native_bf16_cpu


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.InstanceNorm2d(channels, affine=True)


def conv_block(in_channels: int, out_channels: int, config: GeneratorConfig) -> nn.Sequential:
    """conv3x3, conv3x3, conv1x1, each followed by normalisation and LeakyReLU(0.01)."""
    layers = []
    for kernel, channels_in in ((3, in_channels), (3, out_channels), (1, out_channels)):
        layers += [nn.Conv2d(channels_in, out_channels, kernel, padding=kernel // 2, padding_mode=config.padding),
                   norm_layer(config.norm, out_channels), nn.LeakyReLU(0.01, inplace=True)]
    return nn.Sequential(*layers)


class PyramidGenerator(nn.Module):
    """Noise pyramid (and optionally a content image) -> RGB image in [0, 1]."""

    def __init__(self, config: GeneratorConfig = GeneratorConfig()):
        super().__init__()
        self.config = config.validate()
        in_channels = config.noise_channels + config.content_channels
        width = config.channels
        # Index 0 is the finest scale.
        self.scale_blocks = nn.ModuleList(conv_block(in_channels, width, config) for _ in range(config.scales))
        self.coarse_norms, self.fine_norms, self.join_blocks = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for joined in range(2, config.scales + 1):  # number of scales merged so far
            self.coarse_norms.append(norm_layer(config.norm, width * (joined - 1)))
            self.fine_norms.append(norm_layer(config.norm, width))
            self.join_blocks.append(conv_block(width * joined, width * joined, config))
        self.to_rgb = nn.Conv2d(width * config.scales, 3, 1)

    def make_noise(self, batch: int, height: int, width: int, generator: torch.Generator | None = None,
                   device=None) -> list[torch.Tensor]:
        """Training noise for every scale from a PyTorch generator (whose state checkpoints keep);
        sampling draws from texnet.noise instead, the same on every backend."""
        return [torch.rand(batch, self.config.noise_channels, h, w, generator=generator).to(device)
                for h, w in self.config.scale_sizes(height, width)]

    def forward(self, noise: list[torch.Tensor] | None, content: torch.Tensor | None = None) -> torch.Tensor:
        """Noise for each scale (finest first; None for nets without noise) and, for stylization
        nets, the photo -> RGB in [0, 1]."""
        inputs = self.scale_inputs(noise, content)
        x = self.scale_blocks[-1](inputs[-1])
        for level in range(self.config.scales - 2, -1, -1):  # coarse to fine
            fine = self.scale_blocks[level](inputs[level])
            x = F.interpolate(x, scale_factor=2, mode="nearest")[..., : fine.shape[-2], : fine.shape[-1]]
            join = self.config.scales - 2 - level
            x = torch.cat([self.coarse_norms[join](x), self.fine_norms[join](fine)], dim=1)
            x = self.join_blocks[join](x)
        return sigmoid_with_gradient_floor(self.to_rgb(x))

    def scale_inputs(self, noise: list[torch.Tensor] | None, content: torch.Tensor | None) -> list[torch.Tensor]:
        if self.config.noise_channels and (noise is None or len(noise) != self.config.scales):
            raise ValueError(f"expected {self.config.scales} noise tensors, got {0 if noise is None else len(noise)}")
        if self.config.content_channels == 0:
            return noise
        if content is None:
            raise ValueError("this generator stylizes: pass the content image")
        pyramid = [content]
        for _ in range(self.config.scales - 1):
            # A 2x2 box filter; ceil_mode gives the ceil(n / 2) sizes of scale_sizes and averages
            # only real pixels at odd edges. (Antialiased bilinear has no bfloat16 kernel.)
            pyramid.append(F.avg_pool2d(pyramid[-1], 2, ceil_mode=True))
        if not self.config.noise_channels:
            return pyramid
        return [torch.cat([image, z], dim=1) for image, z in zip(pyramid, noise)]


class SigmoidWithGradientFloor(torch.autograd.Function):
    """The sigmoid, whose slope in the backward pass never falls below `floor` where the gradient
    step moves a value back towards the middle. With the plain sigmoid, a region pushed far into
    saturation (pre-activations of -20 to -75 were measured) gets gradients of 1e-9 and stays
    black or white for good: the "ovals" of benchmarks/ovals.py. The floor is one-sided because a
    two-sided one keeps pushing pixels that want to be black further out, without end (measured:
    pre-activations of 5e4 and a diverged run on autumn-leaves)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, floor: float) -> torch.Tensor:
        output = torch.sigmoid(x)
        ctx.save_for_backward(x, output)
        ctx.floor = floor
        return output

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        x, output = ctx.saved_tensors
        slope = output * (1 - output)
        inward = grad_output * x > 0  # the descent step, -grad, points from x towards 0
        slope = torch.where(inward, slope.clamp(min=ctx.floor), slope)
        return grad_output * slope, None


def sigmoid_with_gradient_floor(x: torch.Tensor, floor: float = 0.01) -> torch.Tensor:
    """The plain sigmoid's values; in training, the gradient floor of SigmoidWithGradientFloor."""
    return SigmoidWithGradientFloor.apply(x, floor) if x.requires_grad else torch.sigmoid(x)


def bf16_is_fast(device: torch.device | str) -> bool:
    """Whether bfloat16 beats float32 here: CPUs that compute it in hardware (AVX-512 BF16 or AMX:
    2-3x faster, measured in benchmarks/stylization.py), CUDA GPUs that support it. Elsewhere
    bfloat16 is emulated, 10-100x slower. (PyTorch's own mkldnn check also says yes for AVX-512
    CPUs without BF16, which emulate it.)"""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and native_bf16_cpu()


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
