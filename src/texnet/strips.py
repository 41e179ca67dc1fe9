"""Exact strip-wise inference: a pyramid generator's output of any size in bounded memory.

The output is made in horizontal strips, each computed from the rows of every scale it depends
on, with halos as wide as the convolutions' reach. Circular padding becomes wrapped row indices
(a circular convolution is a plain one over the periodically extended map); reflection and zero
padding are applied only where a strip touches the map's real border.

Instance normalisation needs each channel's mean and variance over the whole map. They are
gathered norm by norm, in the order the network uses them: one pass over strips per norm, with
every earlier norm's statistics already known, so the result equals whole-image inference up
to float rounding. Coarse scales whose whole map fits the memory budget are computed once and
kept, so that passes at finer scales do not recompute them. The price is more compute: about 4x
a whole-image pass for the default 6-scale net (README, "Any size in bounded memory").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .generators import PyramidGenerator

# Live tensors at once while a strip goes through a block, as a multiple of the block's widest map.
LIVE_COPIES = 6


@dataclass
class Strip:
    """Rows [start, start + height) of a map (rows may lie outside [0, H) where padding is circular)."""

    tensor: torch.Tensor
    start: int

    @property
    def stop(self) -> int:
        return self.start + self.tensor.shape[-2]

    def rows(self, start: int, stop: int) -> "Strip":
        return Strip(self.tensor[..., start - self.start: stop - self.start, :], start)


class Reached(Exception):
    """Raised at the norm whose statistics are being gathered, carrying its input strip."""

    def __init__(self, strip: Strip):
        super().__init__()
        self.strip = strip


class RunningMoments:
    """Per-channel count, mean and sum of squared deviations, merged strip by strip in float64
    (Chan et al.'s pairwise update, which stays exact where sum-of-squares would cancel)."""

    def __init__(self, channels: int):
        self.count = 0
        self.mean = torch.zeros(channels, dtype=torch.float64)
        self.m2 = torch.zeros(channels, dtype=torch.float64)

    def add(self, values: torch.Tensor) -> None:
        flat = values.detach().double().transpose(0, 1).reshape(values.shape[1], -1)
        count = flat.shape[1]
        if count == 0:
            return
        mean = flat.mean(dim=1)
        m2 = ((flat - mean[:, None]) ** 2).sum(dim=1)
        delta, total = mean - self.mean, self.count + count
        self.mean = self.mean + delta * count / total
        self.m2 = self.m2 + m2 + delta ** 2 * self.count * count / total
        self.count = total

    def scale_and_shift(self, norm: nn.InstanceNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, b) with norm(x) == a * x + b for this map (biased variance, as instance norm uses)."""
        inverse_std = 1.0 / torch.sqrt(self.m2 / self.count + norm.eps)
        weight = norm.weight.double() if norm.affine else 1.0
        bias = norm.bias.double() if norm.affine else 0.0
        scale = inverse_std * weight
        return scale.float().view(1, -1, 1, 1), (bias - self.mean * scale).float().view(1, -1, 1, 1)


ScaleInputs = Callable[[int, int, int], torch.Tensor]  # (scale, first row, stop row) -> (1, C, rows, W)


class StripGenerator:
    """One sample of `net` at (height, width), made strip by strip within `budget` bytes.

    `inputs(scale, start, stop)` gives the net's input rows of a scale (noise, and the photo for
    stylization nets) for actual rows 0 <= start < stop <= that scale's height.
    """

    def __init__(self, net: PyramidGenerator, inputs: ScaleInputs, height: int, width: int, budget: int):
        self.net, self.inputs = net, inputs
        self.config = net.config
        self.sizes = self.config.scale_sizes(height, width)
        self.circular = self.config.padding == "circular"
        self.budget = budget
        self.affine: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id(norm) -> (scale, shift)
        self.kept: dict[int, torch.Tensor] = {}  # scale -> its whole output map
        self.dtype = next(net.parameters()).dtype

    # -- the public entry point -------------------------------------------------------------
    @torch.no_grad()
    def generate(self, write: Callable[[int, int, torch.Tensor], None]) -> None:
        """Calls write(first row, stop row, (3, rows, W) float32 in [0, 1]) strip by strip, top to bottom."""
        if self.config.norm == "instance":
            self.gather_statistics()
        height, width = self.sizes[0]
        step = self.strip_rows(0)
        for start in range(0, height, step):
            stop = min(start + step, height)
            features = self.scale_output(0, start, stop).tensor
            rgb = torch.sigmoid(self.net.to_rgb(features).float())
            write(start, stop, rgb[0])

    # -- statistics ---------------------------------------------------------------------------
    def norms_in_order(self, scale: int) -> list[nn.Module]:
        """The instance norms of one scale in the order their statistics can be gathered."""
        def block_norms(block):
            return [layer for layer in block if isinstance(layer, nn.InstanceNorm2d)]

        own = block_norms(self.net.scale_blocks[scale])
        if scale == self.config.scales - 1:
            return own
        join = self.join_index(scale)
        return ([self.net.coarse_norms[join]] + own + [self.net.fine_norms[join]]
                + block_norms(self.net.join_blocks[join]))

    def gather_statistics(self) -> None:
        for scale in range(self.config.scales - 1, -1, -1):  # coarse to fine
            for norm in self.norms_in_order(scale):
                moments = RunningMoments(norm.num_features)
                height = self.sizes[scale][0]
                step = self.strip_rows(scale)
                for start in range(0, height, step):
                    stop = min(start + step, height)
                    try:
                        self.scale_output(scale, start, stop, stop_at=norm)
                    except Reached as reached:
                        moments.add(reached.strip.rows(start, stop).tensor)
                self.affine[id(norm)] = moments.scale_and_shift(norm)
            self.keep_if_it_fits(scale)

    def keep_if_it_fits(self, scale: int) -> None:
        """Keep a scale's whole output map when it fits in half the budget with those already kept."""
        if scale == 0:
            return
        height, width = self.sizes[scale]
        size = self.scale_channels(scale) * height * width * 4
        if size + sum(t.numel() * 4 for t in self.kept.values()) > self.budget // 2:
            return
        whole = torch.empty(1, self.scale_channels(scale), height, width, dtype=self.dtype)
        step = self.strip_rows(scale)
        for start in range(0, height, step):
            stop = min(start + step, height)
            whole[..., start:stop, :] = self.scale_output(scale, start, stop).tensor
        self.kept[scale] = whole

    # -- maps, strip by strip ------------------------------------------------------------------
    def join_index(self, scale: int) -> int:
        return self.config.scales - 2 - scale

    def scale_channels(self, scale: int) -> int:
        return self.config.channels * (self.config.scales - scale)

    def strip_rows(self, scale: int) -> int:
        width = self.sizes[scale][1]
        return max(8, self.budget // 2 // (LIVE_COPIES * self.scale_channels(scale) * width * 4))

    def scale_output(self, scale: int, start: int, stop: int, stop_at: nn.Module | None = None) -> Strip:
        """Rows [start, stop) of the map a scale hands to the next finer one (the joined features)."""
        if scale in self.kept:
            return Strip(self.wrapped_rows(self.kept[scale], scale, start, stop), start)
        if scale == self.config.scales - 1:
            return self.block(self.net.scale_blocks[scale], scale, start, stop,
                              lambda a, b: self.input_rows(scale, a, b), stop_at)
        return self.block(self.net.join_blocks[self.join_index(scale)], scale, start, stop,
                          lambda a, b: self.joined(scale, a, b, stop_at), stop_at)

    def joined(self, scale: int, start: int, stop: int, stop_at) -> Strip:
        join = self.join_index(scale)
        coarse = self.norm(self.net.coarse_norms[join], self.upsampled(scale, start, stop, stop_at), stop_at)
        fine = self.block(self.net.scale_blocks[scale], scale, start, stop,
                          lambda a, b: self.input_rows(scale, a, b), stop_at)
        fine = self.norm(self.net.fine_norms[join], fine, stop_at)
        return Strip(torch.cat([coarse.tensor, fine.tensor], dim=1), start)

    def upsampled(self, scale: int, start: int, stop: int, stop_at) -> Strip:
        """Rows of the next coarser scale's output, upsampled x2 (nearest) and cropped to this scale."""
        height, width = self.sizes[scale]
        coarse_height = self.sizes[scale + 1][0]

        def coarse_row(row: int) -> int:  # the coarse (possibly wrapped) row that row `row` repeats
            laps, actual = divmod(row, height)
            return laps * coarse_height + actual // 2

        first, last = coarse_row(start), coarse_row(stop - 1)
        coarse = self.scale_output(scale + 1, first, last + 1, stop_at).tensor
        rows = torch.tensor([coarse_row(row) - first for row in range(start, stop)])
        columns = torch.arange(width) // 2
        return Strip(coarse[:, :, rows][..., columns], start)

    def block(self, layers: nn.Sequential, scale: int, start: int, stop: int,
              source: Callable[[int, int], Strip], stop_at) -> Strip:
        """Rows [start, stop) of `layers` applied to the map `source` gives rows of."""
        height = self.sizes[scale][0]
        first, last = start, stop
        for layer in reversed(layers):
            if isinstance(layer, nn.Conv2d):
                first, last = self.input_range(first, last, height, layer.kernel_size[0] // 2)
        strip = source(first, last)
        for layer in layers:
            if isinstance(layer, nn.Conv2d):
                strip = self.conv(layer, strip, height)
            elif isinstance(layer, (nn.InstanceNorm2d, nn.BatchNorm2d)):
                strip = self.norm(layer, strip, stop_at)
            else:
                strip = Strip(layer(strip.tensor), strip.start)
        return strip.rows(start, stop)

    def input_range(self, start: int, stop: int, height: int, reach: int) -> tuple[int, int]:
        if self.circular:
            return start - reach, stop + reach
        return max(start - reach, 0), min(stop + reach, height)

    def conv(self, layer: nn.Conv2d, strip: Strip, height: int) -> Strip:
        reach = layer.kernel_size[0] // 2
        x = strip.tensor
        if reach == 0:
            return Strip(F.conv2d(x, layer.weight, layer.bias), strip.start)
        mode = {"zeros": "constant", "circular": "circular", "reflect": "reflect"}[layer.padding_mode]
        x = F.pad(x, (reach, reach, 0, 0), mode=mode)  # strips span whole rows: pad the sides as the layer does
        top = reach if not self.circular and strip.start == 0 else 0  # and the top and bottom only at the map's edge
        bottom = reach if not self.circular and strip.stop == height else 0
        if top or bottom:
            x = F.pad(x, (0, 0, top, bottom), mode=mode)
        return Strip(F.conv2d(x, layer.weight, layer.bias), strip.start + reach - top)

    def norm(self, layer: nn.Module, strip: Strip, stop_at) -> Strip:
        if layer is stop_at:
            raise Reached(strip)
        if isinstance(layer, nn.BatchNorm2d):  # in eval mode: a fixed per-channel affine map
            return Strip(layer(strip.tensor), strip.start)
        scale, shift = self.affine[id(layer)]
        return Strip((strip.tensor.float() * scale + shift).to(strip.tensor.dtype), strip.start)

    # -- inputs ---------------------------------------------------------------------------------
    def input_rows(self, scale: int, start: int, stop: int) -> Strip:
        height = self.sizes[scale][0]
        return Strip(self.gather_wrapped(lambda a, b: self.inputs(scale, a, b), start, stop, height), start)

    def wrapped_rows(self, whole: torch.Tensor, scale: int, start: int, stop: int) -> torch.Tensor:
        return self.gather_wrapped(lambda a, b: whole[..., a:b, :], start, stop, self.sizes[scale][0])

    def gather_wrapped(self, rows: Callable[[int, int], torch.Tensor], start: int, stop: int,
                       height: int) -> torch.Tensor:
        """Rows [start, stop) where rows outside [0, height) wrap around (circular padding only)."""
        pieces, row = [], start
        while row < stop:
            actual = row % height
            count = min(stop - row, height - actual)
            pieces.append(rows(actual, actual + count))
            row += count
        joined = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=-2)
        return joined.to(self.dtype)


def content_rows(photo: torch.Tensor, scale: int, start: int, stop: int) -> torch.Tensor:
    """Rows [start, stop) of the photo (uint8, or float in [0, 1]) box-filtered down `scale` times,
    as PyramidGenerator does: 2x2 average pooling with ceil mode, so odd edges average only real pixels."""
    if scale == 0:
        rows = photo[..., start:stop, :]
        return rows.float() / 255 if rows.dtype == torch.uint8 else rows
    finer = content_rows(photo, scale - 1, 2 * start, min(2 * stop, finer_height(photo, scale - 1)))
    return F.avg_pool2d(finer, 2, ceil_mode=True)


def finer_height(photo: torch.Tensor, scale: int) -> int:
    height = photo.shape[-2]
    for _ in range(scale):
        height = (height + 1) // 2
    return height
