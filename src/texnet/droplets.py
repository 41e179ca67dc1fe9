"""Droplets: the smooth ovals a texture net draws where a few positions of its maps are extreme.

Instance norm divides each map by its own spread, so a net can turn a whole map down by drawing a
few positions far out in it: they inflate the spread. StyleGAN's generators learned this and drew
"droplets" there (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN").
Ours draw them as smooth ovals, pale cyan spots or cream stones whose colours lie inside the
example's range, so no measure of the images saw them (README, "Droplets"). Inside the net they
are plain: at an oval nearly every channel of the finest maps lies many standard deviations from
its mean, where elsewhere a handful of channels do.

`droplet_peak` scores that: for each sample, the peak over regions of 5x5 positions of the median
over channels of |z| (each channel's value in standard deviations from its mean over the map) at
the inputs of the norms of the finest join; averaged over samples, the largest over those norms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FIRST_SEED = 100  # the seeds the fair table's extra samples use
# Droplets are blobs; a texture's own small bright elements (wicker's highlights, burlap's thread
# crossings) also have every channel far out, over a few positions (README, "Droplets").
REGION = 5


def channel_median_z(maps: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H, W): at each position the median over channels of |z|."""
    return F.instance_norm(maps.float(), eps=1e-5).abs().median(dim=1).values


def channel_median_peak(maps: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B,): the peak of the median over channels of |z| over regions of at least
    REGION x REGION positions (the least value in each such window, then the largest of those)."""
    eroded = -F.max_pool2d(-channel_median_z(maps)[:, None], REGION, stride=1, padding=REGION // 2)
    return eroded.amax(dim=(1, 2, 3))


def finest_norms(net: nn.Module) -> list[nn.Module]:
    """The normalisations whose inputs are the net's finest maps: those of its last join block
    (of its only scale's block for a one-scale pyramid)."""
    block = net.join_blocks[-1] if len(net.join_blocks) else net.scale_blocks[0]
    return [layer for layer in block if isinstance(layer, (nn.InstanceNorm2d, nn.BatchNorm2d))]


@torch.no_grad()
def droplet_peak(model, count: int = 8, size: int = 256) -> float:
    """The droplet score of a texture model (a TextureGenerator) over `count` samples of `size`
    px (seeds FIRST_SEED onwards): models that draw smooth ovals or spots scored 8.8 to 18 in the
    README's runs, the others 2.3 to 7.4."""
    net = model.net.float().eval()
    norms = finest_norms(net)
    peaks: dict[nn.Module, list[float]] = {norm: [] for norm in norms}
    hooks = [norm.register_forward_hook(lambda norm, inputs, output: peaks[norm].append(
        float(channel_median_peak(inputs[0])[0]))) for norm in norms]
    try:
        for seed in range(FIRST_SEED, FIRST_SEED + count):  # one at a time: 32 samples at once take GBs
            net([torch.from_numpy(scale) for scale in model.sample_noise([seed], size)])
    finally:
        for hook in hooks:
            hook.remove()
    return max(sum(values) / count for values in peaks.values())
