"""Refining a style net for one photo: a few Adam steps of its weights on that photo first.

One net serves every photo with one set of weights. At a comparable content loss its style is
about 2.8x further from the painting than Gatys' on the held-out Gram measure (night-cafe), and
fitted to one photo the same net comes much nearer: 1.7x after 10 steps, 1.55x after 20 and 1.1x
after 200 (README, "Fitting each photo"). Its steps cost about what Gatys' do at 256 px; after 10
Gatys is at 2.2x, from 20 on it is as good or better. Each step fits one crop of at most
REFINE_CROP pixels a side of the photo as the net will see it, so a large photo costs no more per
step (Gatys' steps grow with its pixels) and its strokes keep their size.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .descriptor import CONTENT_LAYER, TEXTURE_LAYERS
from .errors import TexnetError
from .losses import TextureTarget, content_loss
from .optimize import TransferWeights
from .training import training_descriptor

REFINE_LR = 1e-3  # benchmarks/style_per_photo_fit.py fitted every weight at this rate
REFINE_CROP = 256  # the size the benchmark fitted and scored at
MIN_SIDE = 32  # the net halves a photo twice and VGG four times: smaller photos have too little to fit
MAX_STEPS = 1000


def refine_descriptor():
    """The VGG-19 refining needs: the Gram loss's layers and the content layer (real weights)."""
    from .descriptor import VGG19Descriptor

    return VGG19Descriptor.pretrained((*TEXTURE_LAYERS, CONTENT_LAYER))


def refine_net(net: nn.Module, photo: torch.Tensor, painting: torch.Tensor, weights: TransferWeights, steps: int,
               descriptor, style: torch.Tensor | None = None, *, seed: int = 0, device="cpu", lr: float | None = None,
               trainable: Callable[[nn.Module], list] = lambda net: net.parameters(),
               on_step: Callable[[int, nn.Module], None] | None = None, bf16: bool = False) -> nn.Module:
    """A float32 copy of `net` after `steps` Adam steps on its training's loss (`weights.style` x
    Gram loss to `painting` + `weights.content` x relu4_2 loss to the photo) on crops of `photo`,
    (1, 3, H, W) in [0, 1]; `style` holds the style weights of a multi-style net. It runs on
    `device`, and moves `descriptor` there. `trainable(copy)` picks what the steps change (default
    every weight, at `lr` or REFINE_LR); `on_step(step, copy)` runs after each step. `bf16` runs
    the net and VGG in bfloat16 autocast (the weights and Adam stay float32), as training does."""
    if not isinstance(steps, int) or not 0 <= steps <= MAX_STEPS:
        raise TexnetError(f"refine steps must be a whole number from 0 to {MAX_STEPS}, not {steps!r}")
    height, width = photo.shape[-2:]
    if min(height, width) < MIN_SIDE:
        raise TexnetError(f"a {width}x{height} photo is too small to refine for (at least {MIN_SIDE} px a side)")
    # In eval mode: a batch-norm net keeps its trained statistics (instance norm is the same in both).
    fitted = copy.deepcopy(net).float().to(device).eval()
    descriptor = training_descriptor(descriptor, descriptor.layers, bf16, device)
    target = TextureTarget.from_image(descriptor, painting.to(device), dict.fromkeys(TEXTURE_LAYERS, 1.0))
    parameters = list(trainable(fitted))
    for parameter in fitted.parameters():
        parameter.requires_grad_(False)
    for parameter in parameters:
        parameter.requires_grad_(True)
    optimizer = torch.optim.Adam(parameters, lr=REFINE_LR if lr is None else lr)
    crops = PhotoCrops(photo.to(device), descriptor, seed)
    style = None if style is None else style.to(device)
    noise_seed = torch.Generator().manual_seed(seed)
    for step in range(1, steps + 1):
        crop, content_target = crops.next()
        noise = fitted.make_noise(1, *crop.shape[-2:], noise_seed, device) if fitted.config.noise_channels else None
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            output = fitted(noise, crop, style)
        features = descriptor(output.float())
        loss = (weights.style * target.loss(features) +
                weights.content * content_loss(features[CONTENT_LAYER], content_target)).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if on_step is not None:
            on_step(step, fitted)
    return fitted


class PhotoCrops:
    """Crops of at most REFINE_CROP a side with their content targets. A photo that fits is its own
    only crop, and its target is computed once; a larger one is cut into the fewest crops of a grid
    that cover it, visited in a new random order each round, so every part of it is fitted as often."""

    def __init__(self, photo: torch.Tensor, descriptor, seed: int):
        self.photo, self.descriptor = photo, descriptor
        self.rng = np.random.default_rng(seed)
        self.whole = None if max(photo.shape[-2:]) > REFINE_CROP else (photo, self.content_target(photo))
        height, width = photo.shape[-2:]
        self.corners = [(top, left) for top in grid_starts(height) for left in grid_starts(width)]
        self.round = []

    def content_target(self, crop: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.descriptor(crop)[CONTENT_LAYER]

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.whole is not None:
            return self.whole
        if not self.round:
            self.round = [self.corners[i] for i in self.rng.permutation(len(self.corners))]
        top, left = self.round.pop()
        crop = self.photo[..., top:top + REFINE_CROP, left:left + REFINE_CROP]
        return crop, self.content_target(crop)


def grid_starts(length: int) -> list[int]:
    """Where the fewest crops of REFINE_CROP (or `length`, if shorter) start to cover `length`, evenly spaced."""
    count = math.ceil(length / REFINE_CROP)
    return sorted({round(start) for start in np.linspace(0, max(length - REFINE_CROP, 0), count)})
