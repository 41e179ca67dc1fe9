"""The Gatys et al. baseline: synthesis and style transfer by optimising pixels.

Slow by design (one VGG forward and backward per step), it is the quality reference the
feed-forward generators are measured against.
"""

from __future__ import annotations

import math

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .descriptor import CONTENT_LAYER, TEXTURE_LAYERS, VGG19Descriptor
from .errors import TexnetError
from .image_io import quantize
from .losses import TextureTarget, content_loss, total_variation
from .progress import progress_bar


@dataclass
class OptimizeConfig:
    iters: int = 300
    optimizer: str = "lbfgs"  # or "adam"
    lr: float | None = None  # None: 1.0 for L-BFGS, 0.02 for Adam
    seed: int = 0
    progress: bool = True


@dataclass
class OptimizeResult:
    image: torch.Tensor  # (1, 3, H, W) in [0, 1], already quantised to 8 bits
    loss: float  # loss of `image` exactly as returned
    history: list[float]  # loss at each iteration


def make_optimizer(params, config: OptimizeConfig) -> torch.optim.Optimizer:
    if config.optimizer == "lbfgs":
        # No line search: with the projection onto [0, 1] the strong-Wolfe search stalled
        # at a zero step after ~10 iterations; plain L-BFGS steps kept converging.
        return torch.optim.LBFGS(params, lr=config.lr or 1.0, max_iter=1, history_size=50,
                                 tolerance_grad=0, tolerance_change=0)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr or 0.02)
    raise TexnetError(f"optimizer must be 'lbfgs' or 'adam', not '{config.optimizer}'")


StepCallback = Callable[[int, float, torch.Tensor], None]  # (iteration, loss, the image now)


def optimize_image(loss_fn: Callable[[torch.Tensor], torch.Tensor], init: torch.Tensor,
                   config: OptimizeConfig, on_step: StepCallback | None = None) -> OptimizeResult:
    """Minimise loss_fn(image) over images with pixels in [0, 1].

    The pixels are clamped to [0, 1] before every evaluation (projected optimisation), so
    every image the loss sees is a valid one and the returned loss is that of the returned
    8-bit image. (A sigmoid parametrisation saturated: L-BFGS drove pixels to 0 or 1.)
    """
    if config.iters < 1:
        raise TexnetError(f"--iters must be at least 1, not {config.iters}")
    image = init.detach().clone().clamp_(0, 1).requires_grad_(True)
    optimizer = make_optimizer([image], config)
    history: list[float] = []
    with torch.no_grad():
        # Optimise loss / initial loss: raw Gram losses reach 1e10, and L-BFGS's curvature
        # products of such gradients come close to float32's range at large sizes.
        scale = 1.0 / max(float(loss_fn(image)), 1e-30)

    best = {"loss": math.inf, "image": image.detach().clone()}

    def closure():
        with torch.no_grad():
            image.clamp_(0, 1)
        optimizer.zero_grad()
        loss = loss_fn(image) * scale
        loss.backward()
        # Without a line search L-BFGS can overshoot; keep the best image it evaluated.
        value = float(loss.detach())
        if value < best["loss"]:
            best.update(loss=value, image=image.detach().clone())
        return loss

    with progress_bar(range(config.iters), enabled=config.progress, unit="it") as bar:
        for _ in bar:
            loss = float(optimizer.step(closure).detach()) / scale
            if not math.isfinite(loss):
                raise TexnetError("the loss became NaN or infinite; try a lower --lr")
            history.append(loss)
            bar.set_postfix(loss=f"{loss:.4g}")
            if on_step is not None:  # live progress; an exception from it stops the optimisation
                on_step(len(history), loss, image.detach())
    result = quantize(best["image"])
    with torch.no_grad():
        final = float(loss_fn(result))
    return OptimizeResult(result, final, history)


def start_image(colour_source: torch.Tensor, size: tuple[int, int], seed: int) -> torch.Tensor:
    """Pixels drawn at random from `colour_source`: its colours, none of its structure.

    Measured at 256 px, 40 L-BFGS steps: full-range uniform noise left a grey unconverged centre
    on pink-marble (300 steps: loss 2.5e8); faint noise around the mean colour fixed that
    (7.0e6) but never left the start on pebbles (4.4e9); random pixels converge on both (8.1e6
    and 8.8e6) and stay within 15% of the faint start on burlap and autumn-leaves.
    """
    generator = torch.Generator().manual_seed(seed)
    pixels = colour_source[:1].flatten(2)
    picks = torch.randint(0, pixels.shape[-1], (size[0] * size[1],), generator=generator).to(pixels.device)
    return pixels[..., picks].reshape(1, 3, *size)


def synthesize(descriptor: VGG19Descriptor, example: torch.Tensor, size: tuple[int, int],
               config: OptimizeConfig = OptimizeConfig(), on_step: StepCallback | None = None) -> OptimizeResult:
    """Texture synthesis: an image of `size` (H, W) whose Gram matrices match the example's;
    `on_step(iteration, loss, image)` runs after every step."""
    target = TextureTarget.from_image(descriptor, example)
    init = start_image(example, size, config.seed)
    return optimize_image(lambda image: target.loss(descriptor(image)).sum(), init, config, on_step)


@dataclass
class TransferWeights:
    style: float = 1e-3  # balanced on astronaut + starry-night at 192 px (README)
    content: float = 1.0
    tv: float = 0.0


def transfer(descriptor: VGG19Descriptor, content: torch.Tensor, style: torch.Tensor,
             weights: TransferWeights = TransferWeights(), init: str = "content",
             config: OptimizeConfig = OptimizeConfig(), on_step: StepCallback | None = None) -> OptimizeResult:
    """Style transfer: keep `content`'s relu4_2 activations, take `style`'s Gram matrices.
    `on_step(iteration, loss, image)` runs after every step."""
    missing = {*TEXTURE_LAYERS, CONTENT_LAYER} - set(descriptor.layers)
    if missing:
        raise TexnetError(f"the descriptor lacks layers {sorted(missing)} needed for transfer")
    target = TextureTarget.from_image(descriptor, style, {name: 1.0 for name in TEXTURE_LAYERS})
    with torch.no_grad():
        content_target = descriptor(content)[CONTENT_LAYER]

    def loss_fn(image):
        features = descriptor(image)
        return (weights.style * target.loss(features) + weights.content * content_loss(
            features[CONTENT_LAYER], content_target) + weights.tv * total_variation(image)).sum()

    if init == "content":
        start = content
    elif init == "noise":
        start = start_image(content, tuple(content.shape[-2:]), config.seed)
    else:
        raise TexnetError(f"--init must be 'content' or 'noise', not '{init}'")
    return optimize_image(loss_fn, start, config, on_step)
