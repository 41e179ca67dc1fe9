"""The generators: Texture Networks' multi-scale pyramid and Johnson et al.'s residual net.

The pyramid (Ulyanov et al. 2016, reference `pyramid.lua`): each of K scales gets its own noise
(scale k is 1/2^k of the output size) through a block of 3x3, 3x3 and 1x1 convolutions; coarse
to fine, the running result is upsampled x2 (nearest), normalised, and concatenated with the next
scale's block output, then passed through another block at the joint width. A final 1x1
convolution maps to RGB. The stylization variant adds the (downsampled) photo to every scale.

The residual net (Johnson et al. 2016, the texture_nets authors' `-model johnson` for
stylization): a k x k convolution, two stride-2 convolutions, residual blocks at a quarter of
the resolution, two nearest x2 upsamplings each followed by a convolution, and a k x k
convolution to RGB. Most of its work happens at 1/16 of the pixels. For inference,
`fold_upsampling` computes each upsampling inside the convolution after it, exactly.

Both share the convolution-normalisation-activation unit, the norms (batch, instance, or
conditional instance norm with one scale and shift row per style, Dumoulin et al. 2017) and
the output sigmoid with its gradient floor.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
import torch.nn.functional as F

from .generator_config import GeneratorConfig
from .runtime import native_bf16_cpu


class ConditionalInstanceNorm(nn.Module):
    """Instance norm with one row of scale and shift per style (Dumoulin et al. 2017). The rows
    are mixed by the style weights the generator sets before each call (`style_weights`, (B, S)):
    one style at weight 1 picks its row; a blend mixes rows."""

    def __init__(self, channels: int, styles: int, eps: float = 1e-5):
        super().__init__()
        self.num_features, self.eps = channels, eps
        self.weight = nn.Parameter(torch.ones(styles, channels))
        self.bias = nn.Parameter(torch.zeros(styles, channels))
        self.style_weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale, shift = self.row_mix(x.shape[0], x.dtype)
        return F.instance_norm(x, eps=self.eps) * scale + shift

    def row_mix(self, batch: int, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, 1, 1) scale and shift for the current style weights."""
        if self.style_weights is None:
            raise ValueError("a multi-style generator needs style weights")
        mix = self.style_weights.to(self.weight.dtype).expand(batch, -1)
        return (mix @ self.weight).to(dtype)[..., None, None], (mix @ self.bias).to(dtype)[..., None, None]


class RobustInstanceNorm(nn.InstanceNorm2d):
    """Instance norm with a spread that a few extreme positions cannot inflate: the
    instance-normalised map z is divided again by s, the root of the mean of min(z^2, CLIP^2 s^2)
    (a winsorised second moment; ITERATIONS steps towards its fixed point from s = 1).

    With plain instance norm a few extreme positions inflate a map's spread and so turn the
    whole map down; texture nets learned to use that and drew those positions as smooth ovals
    ("droplets", as StyleGAN's generators did: Karras et al. 2020; README, "Droplets"). One
    step from s = 1 was not enough: a net drew spikes so high that the clip, set by the inflated
    spread, still let them through. Each further step shrinks a spike's share of the spread by
    about CLIP^2 times the share of positions it covers; the gradient goes through every step
    (without it through the first two, bark's ovals came back on one seed of two). Where no
    position is CLIP deviations out, this is instance norm."""

    CLIP = 3.0
    ITERATIONS = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.instance_norm(x, eps=self.eps)
        squares, spread = z.square(), torch.ones(1, dtype=torch.float32, device=x.device)
        for _ in range(self.ITERATIONS):
            spread = self.clipped_mean(squares, spread)
        # + eps / (variance + eps), instance norm's eps, kept so that a near-constant map is not
        # blown up (z ** 2 averages variance / (variance + eps))
        with torch.no_grad():
            eps_share = 1 - squares.mean(dim=(2, 3), keepdim=True, dtype=torch.float32)
        scale = torch.rsqrt(spread + eps_share).to(x.dtype) * self.weight[:, None, None].to(x.dtype)
        return z * scale + self.bias[:, None, None].to(x.dtype)

    def clipped_mean(self, squares: torch.Tensor, spread: torch.Tensor) -> torch.Tensor:
        limit = (spread * self.CLIP ** 2).to(squares.dtype)
        return torch.minimum(squares, limit).mean(dim=(2, 3), keepdim=True, dtype=torch.float32)


def norm_layer(kind: str, channels: int, styles: int = 1) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "robust":
        return RobustInstanceNorm(channels, affine=True)
    if styles > 1:
        return ConditionalInstanceNorm(channels, styles)
    return nn.InstanceNorm2d(channels, affine=True)


def conv_unit(in_channels: int, out_channels: int, kernel: int, config: GeneratorConfig, stride: int = 1,
              activation: nn.Module | None = None) -> list[nn.Module]:
    """A convolution (padded as the config says), its normalisation and an activation."""
    return [nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2,
                      padding_mode=config.padding),
            norm_layer(config.norm, out_channels, config.styles),
            activation or nn.LeakyReLU(config.negative_slope, inplace=True)]


def conv_block(in_channels: int, out_channels: int, config: GeneratorConfig) -> nn.Sequential:
    """The pyramid's block: conv3x3, conv3x3, conv1x1, each followed by normalisation and LeakyReLU."""
    return nn.Sequential(*conv_unit(in_channels, out_channels, 3, config),
                         *conv_unit(out_channels, out_channels, 3, config),
                         *conv_unit(out_channels, out_channels, 1, config))


class StyledGenerator(nn.Module):
    """What every generator shares: its config and, for multi-style nets, handing the style
    weights of a call to its conditional norms."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config.validate()

    def set_style(self, style: torch.Tensor | None, batch: int) -> None:
        """Style weights (B, S) or (S,) for the conditional norms; single-style nets take None."""
        norms = [module for module in self.modules() if isinstance(module, ConditionalInstanceNorm)]
        if not norms:
            return
        if style is None:
            raise ValueError(f"this generator holds {self.config.styles} styles: pass style weights")
        style = style.reshape(-1, self.config.styles)
        for norm in norms:
            norm.style_weights = style

    def make_noise(self, batch: int, height: int, width: int, generator: torch.Generator | None = None,
                   device=None) -> list[torch.Tensor]:
        """Training noise for every scale from a PyTorch generator (whose state checkpoints keep);
        sampling draws from texnet.noise instead, the same on every backend."""
        return [torch.rand(batch, self.config.noise_channels, h, w, generator=generator).to(device)
                for h, w in self.config.scale_sizes(height, width)]


class PyramidGenerator(StyledGenerator):
    """Noise pyramid (and optionally a content image) -> RGB image in [0, 1]."""

    def __init__(self, config: GeneratorConfig = GeneratorConfig()):
        super().__init__(config)
        in_channels = config.noise_channels + config.content_channels
        width = config.channels
        # Index 0 is the finest scale.
        self.scale_blocks = nn.ModuleList(conv_block(in_channels, width, config) for _ in range(config.scales))
        self.coarse_norms, self.fine_norms, self.join_blocks = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for joined in range(2, config.scales + 1):  # number of scales merged so far
            self.coarse_norms.append(norm_layer(config.norm, width * (joined - 1), config.styles))
            self.fine_norms.append(norm_layer(config.norm, width, config.styles))
            self.join_blocks.append(conv_block(width * joined, width * joined, config))
        self.to_rgb = nn.Conv2d(width * config.scales, 3, 1)

    def forward(self, noise: list[torch.Tensor] | None, content: torch.Tensor | None = None,
                style: torch.Tensor | None = None) -> torch.Tensor:
        """Noise for each scale (finest first; None for nets without noise), for stylization nets
        the photo, for multi-style nets the style weights -> RGB in [0, 1]."""
        inputs = self.scale_inputs(noise, content)
        self.set_style(style, len(inputs[0]))
        x = self.scale_blocks[-1](inputs[-1])
        for level in range(self.config.scales - 2, -1, -1):  # coarse to fine
            fine = self.scale_blocks[level](inputs[level])
            x = F.interpolate(x, scale_factor=2, mode="nearest")[..., : fine.shape[-2], : fine.shape[-1]]
            join = self.config.scales - 2 - level
            x = torch.cat([self.coarse_norms[join](x), self.fine_norms[join](fine)], dim=1)
            x = self.join_blocks[join](x)
        return sigmoid_with_gradient_floor(self.to_rgb(x))

    def scale_inputs(self, noise: list[torch.Tensor] | None, content: torch.Tensor | None) -> list[torch.Tensor]:
        """Each scale's input, finest first: its noise, its box-filtered photo, or both."""
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


class ResidualBlock(nn.Module):
    """x + (conv3x3, norm, ReLU, conv3x3, norm)(x), as in Johnson et al."""

    def __init__(self, channels: int, config: GeneratorConfig):
        super().__init__()
        self.body = nn.Sequential(*conv_unit(channels, channels, 3, config, activation=nn.ReLU(inplace=True)),
                                  *conv_unit(channels, channels, 3, config)[:2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualGenerator(StyledGenerator):
    """Photo (and optionally noise at full resolution) -> RGB in [0, 1], Johnson et al.'s layout
    with `channels` c at full resolution, 2c at half and 4c at a quarter (`blocks` residual
    blocks there), and `edge_kernel` x `edge_kernel` convolutions in and out; without
    `full_resolution_layers` the net starts and ends at half resolution."""

    def __init__(self, config: GeneratorConfig):
        super().__init__(config)
        c, k = config.channels, config.edge_kernel
        relu = nn.ReLU
        in_channels = config.content_channels + config.noise_channels
        full = config.full_resolution_layers
        stem = [*conv_unit(in_channels, c, k, config, activation=relu()),
                *conv_unit(c, 2 * c, 3, config, stride=2, activation=relu())] if full else \
            conv_unit(in_channels, 2 * c, k, config, stride=2, activation=relu())
        self.encoder = nn.Sequential(*stem, *conv_unit(2 * c, 4 * c, 3, config, stride=2, activation=relu()))
        self.residuals = nn.Sequential(*(ResidualBlock(4 * c, config) for _ in range(config.blocks)))
        self.decoder = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), *conv_unit(4 * c, 2 * c, 3, config, activation=relu()),
            nn.Upsample(scale_factor=2, mode="nearest"),
            *(conv_unit(2 * c, c, 3, config, activation=relu()) if full else []))
        self.to_rgb = nn.Conv2d(c if full else 2 * c, 3, k, padding=k // 2, padding_mode=config.padding)

    def forward(self, noise: list[torch.Tensor] | None, content: torch.Tensor | None = None,
                style: torch.Tensor | None = None) -> torch.Tensor:
        if content is None:
            raise ValueError("this generator stylizes: pass the content image")
        x = content if not self.config.noise_channels else torch.cat([content, noise[0]], dim=1)
        self.set_style(style, len(x))
        height, width = x.shape[-2:]
        # Cropped after the RGB convolution, where the map has 3 channels: a crop copies the map.
        rgb = self.to_rgb(self.decoder(self.residuals(self.encoder(x))))[..., :height, :width]
        return sigmoid_with_gradient_floor(rgb)


def build_generator(config: GeneratorConfig) -> StyledGenerator:
    """The network a config describes."""
    return (ResidualGenerator if config.architecture == "residual" else PyramidGenerator)(config)


# Padding a nearest-upsampled map by one pixel equals padding the small map by one, in this mode.
SMALL_MAP_PADDING = {"reflect": "replicate", "zeros": "constant", "circular": "circular"}
# Which rows of the small map (i-1, i, i+1) each tap of a 3x3 kernel (row -1, 0, +1) reads, for
# output rows 2i (phase 0) and 2i+1 (phase 1) of the upsampled map: FOLD[phase, small row, tap].
FOLD = torch.tensor([[[1., 0., 0.], [0., 1., 1.], [0., 0., 0.]],
                     [[0., 0., 0.], [1., 1., 0.], [0., 0., 1.]]])


class UpsampledConv(nn.Module):
    """`conv` (3x3) of a map upsampled x2 by nearest neighbours, computed on the small map: each of
    the four output phases reads a 3x3 window of it with its own folded kernel, and pixel shuffle
    interleaves them. Exact, without the upsampled map, its padding and its memory traffic: on 2
    CPU cores the residual net ran 1.3x faster in onnxruntime, 1.8x in PyTorch float32."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        weight = conv.weight.detach()
        folded = torch.einsum("pht,qsu,oitu->opqihs", FOLD.to(weight), FOLD.to(weight), weight)
        self.weight = nn.Parameter(folded.reshape(4 * weight.shape[0], *weight.shape[1:]), requires_grad=False)
        self.bias = nn.Parameter(conv.bias.detach().repeat_interleave(4), requires_grad=False)
        self.padding = SMALL_MAP_PADDING[conv.padding_mode]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(F.conv2d(F.pad(x, (1, 1, 1, 1), mode=self.padding), self.weight, self.bias), 2)


def foldable(upsample: nn.Module, conv: nn.Module) -> bool:
    return (isinstance(upsample, nn.Upsample) and upsample.mode == "nearest" and upsample.scale_factor == 2
            and isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and conv.padding == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1 and conv.bias is not None)


def fold_upsampling(net: StyledGenerator) -> StyledGenerator:
    """For inference: a copy of a residual net whose nearest upsamplings are computed inside the
    convolutions after them (UpsampledConv; the same output within float rounding). Other nets
    are returned as they are."""
    if not isinstance(net, ResidualGenerator):
        return net
    net = copy.deepcopy(net)
    chain = [*net.decoder, net.to_rgb]
    for index in range(len(chain) - 1):
        if foldable(chain[index], chain[index + 1]):
            # Identity keeps the other layers' names, so model.onnx can still read them from model.safetensors.
            chain[index], chain[index + 1] = nn.Identity(), UpsampledConv(chain[index + 1])
    net.decoder, net.to_rgb = nn.Sequential(*chain[:-1]), chain[-1]
    return net


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
