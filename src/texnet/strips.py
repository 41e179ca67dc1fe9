"""Exact strip-wise inference: a generator's output of any size in bounded memory.

The output is made in horizontal strips, each computed from the rows of every map it depends
on, with halos as wide as the convolutions' reach. Circular padding becomes wrapped row indices
(a circular convolution is a plain one over the periodically extended map); reflection and zero
padding are applied only where a strip touches the map's real border.

Instance normalisation needs each channel's mean and variance over the whole map. They are
gathered norm by norm, in the order the network uses them: one pass over strips per norm, with
every earlier norm's statistics already known, so the result equals whole-image inference up
to float rounding. Maps whose whole extent fits the memory budget are computed once and kept,
so that later passes do not recompute what feeds them. The price is more compute: about 4x a
whole-image pass for the default pyramid (README, "Any size in bounded memory").

Two executors share this: StripGenerator for the pyramid (its scales join coarse to fine) and
ChainStripGenerator for the residual net (a chain of layers with strided convolutions,
upsampling and residual blocks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .generators import ConditionalInstanceNorm, PyramidGenerator, ResidualBlock, ResidualGenerator, RobustInstanceNorm

# Live bytes while a strip goes through a block, as a multiple of the block's widest map: measured, not counted
# (allocator slack, the scales' inputs and the joins add up), so that the memory a 1024 px brick sample adds stays
# under the limit (100 MB limit: 98 MB added with 32, 160 MB with 16, 323 MB with 6; tests/test_onnx.py).
LIVE_COPIES = 32
NORMS = (nn.InstanceNorm2d, nn.BatchNorm2d, ConditionalInstanceNorm)
PADDING_MODES = {"zeros": "constant", "circular": "circular", "reflect": "reflect"}


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


def channel_rows(values: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (C, B * H * W) in float64: each channel's values in one row."""
    return values.detach().double().transpose(0, 1).reshape(values.shape[1], -1)


class RunningMoments:
    """Per-channel count, mean and sum of squared deviations, merged strip by strip in float64
    (Chan et al.'s pairwise update, which stays exact where sum-of-squares would cancel)."""

    def __init__(self, channels: int):
        self.count = 0
        self.mean = torch.zeros(channels, dtype=torch.float64)
        self.m2 = torch.zeros(channels, dtype=torch.float64)

    def add(self, values: torch.Tensor) -> None:
        flat = channel_rows(values)
        count = flat.shape[1]
        if count == 0:
            return
        mean = flat.mean(dim=1)
        m2 = ((flat - mean[:, None]) ** 2).sum(dim=1)
        delta, total = mean - self.mean, self.count + count
        self.mean = self.mean + delta * count / total
        self.m2 = self.m2 + m2 + delta ** 2 * self.count * count / total
        self.count = total

    def variance(self) -> torch.Tensor:
        return self.m2 / self.count

    def inverse_std(self, eps: float) -> torch.Tensor:
        return 1.0 / torch.sqrt(self.variance() + eps)

    def scale_and_shift(self, norm: nn.Module, divisor: torch.Tensor | float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, b) with norm(x) == a * x + b for this map (biased variance, as instance norm uses;
        the normalised map divided by `divisor` as well, for the robust norm); a conditional
        norm's affine rows are mixed by its current style weights."""
        inverse_std = self.inverse_std(norm.eps) / divisor
        if isinstance(norm, ConditionalInstanceNorm):
            weight, bias = (row.double().flatten() for row in norm.row_mix(1, torch.float64))
        else:
            weight = norm.weight.double() if norm.affine else 1.0
            bias = norm.bias.double() if norm.affine else 0.0
        scale = inverse_std * weight
        return scale.float().view(1, -1, 1, 1), (bias - self.mean * scale).float().view(1, -1, 1, 1)


class ClippedSpread:
    """RobustInstanceNorm's spread s, merged strip by strip once the moments are known: one pass
    over the map per iteration, each the mean of min(z^2, CLIP^2 s^2) with the previous s."""

    def __init__(self, moments: RunningMoments, norm: nn.Module):
        self.moments, self.clip, self.spread = moments, norm.CLIP, torch.ones_like(moments.mean)
        self.inverse_std = moments.inverse_std(norm.eps)
        self.total = torch.zeros_like(moments.mean)

    def add(self, values: torch.Tensor) -> None:
        flat = channel_rows(values)
        z = (flat - self.moments.mean[:, None]) * self.inverse_std[:, None]
        self.total += torch.minimum(z.square(), self.spread[:, None] * self.clip ** 2).sum(dim=1)

    def next_iteration(self) -> None:
        self.spread, self.total = self.total / self.moments.count, torch.zeros_like(self.total)

    def scale_and_shift(self, norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        eps_share = norm.eps / (self.moments.variance() + norm.eps)  # as RobustInstanceNorm keeps instance norm's eps
        return self.moments.scale_and_shift(norm, torch.sqrt(self.spread + eps_share))


ScaleInputs = Callable[[int, int, int], torch.Tensor]  # (scale, first row, stop row) -> (1, C, rows, W)
RowSource = Callable[[int, int], Strip]  # (first row, stop row) -> those rows of a map


class StripExecutor:
    """What both executors share: how each kind of layer turns input rows into output rows,
    norm statistics, and the memory budget."""

    def __init__(self, net: nn.Module, inputs: ScaleInputs, budget: int):
        self.net, self.inputs, self.budget = net, inputs, budget
        self.config = net.config
        self.circular = self.config.padding == "circular"
        self.affine: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id(norm) -> (scale, shift)
        self.dtype = next(net.parameters()).dtype

    def strip_rows(self, channels: int, width: int) -> int:
        """Rows per strip so that a block's live maps of this width fit in half the budget."""
        return max(8, self.budget // 2 // (LIVE_COPIES * channels * width * 4))

    def gather(self, norm: nn.Module, height: int, width: int, rows: Callable[[int, int, nn.Module], Strip]) -> None:
        """Passes over a map's strips for `norm`'s statistics (1 + ITERATIONS for a robust norm): rows(first,
        stop, norm) computes toward the norm, which raises Reached with its input."""
        moments = RunningMoments(norm.num_features)
        self.each_input_strip(norm, height, width, rows, moments.add)
        if isinstance(norm, RobustInstanceNorm):
            clipped = ClippedSpread(moments, norm)
            for _ in range(norm.ITERATIONS):
                self.each_input_strip(norm, height, width, rows, clipped.add)
                clipped.next_iteration()
            self.affine[id(norm)] = clipped.scale_and_shift(norm)
        else:
            self.affine[id(norm)] = moments.scale_and_shift(norm)

    def each_input_strip(self, norm: nn.Module, height: int, width: int, rows, add: Callable[[torch.Tensor], None]):
        step = self.strip_rows(norm.num_features, width)
        for start in range(0, height, step):
            stop = min(start + step, height)
            try:
                rows(start, stop, norm)
            except Reached as reached:
                add(reached.strip.rows(start, stop).tensor)

    # -- layers ---------------------------------------------------------------------------------
    def conv_input_range(self, layer: nn.Conv2d, start: int, stop: int, height: int) -> tuple[int, int]:
        """The input rows output rows [start, stop) read (clipped to the map, where not circular)."""
        kernel, stride = layer.kernel_size[0], layer.stride[0]
        first, last = stride * start - kernel // 2, stride * (stop - 1) - kernel // 2 + kernel
        return (first, last) if self.circular else (max(first, 0), min(last, height))

    def conv(self, layer: nn.Conv2d, strip: Strip, start: int, stop: int, height: int) -> Strip:
        """Output rows [start, stop) of `layer` from a strip of its input (a map `height` rows high)."""
        kernel, stride = layer.kernel_size[0], layer.stride[0]
        reach = kernel // 2
        first, last = stride * start - reach, stride * (stop - 1) - reach + kernel
        mode = PADDING_MODES[layer.padding_mode]
        x = strip.rows(*self.conv_input_range(layer, start, stop, height)).tensor
        if reach:  # strips span whole rows: the sides are padded as the layer pads them
            x = F.pad(x, (reach, reach, 0, 0), mode=mode)
        top, bottom = (0, 0) if self.circular else (max(0, -first), max(0, last - height))
        if top or bottom:  # and the top and bottom only at the map's real edge
            x = F.pad(x, (0, 0, top, bottom), mode=mode)
        return Strip(F.conv2d(x, layer.weight, layer.bias, stride=stride), start)

    def norm(self, layer: nn.Module, strip: Strip, stop_at) -> Strip:
        if layer is stop_at:
            raise Reached(strip)
        if isinstance(layer, nn.BatchNorm2d):  # in eval mode: a fixed per-channel affine map
            return Strip(layer(strip.tensor), strip.start)
        scale, shift = self.affine[id(layer)]
        return Strip((strip.tensor.float() * scale + shift).to(strip.tensor.dtype), strip.start)

    def run_layers(self, layers, height: int, start: int, stop: int, source: RowSource, stop_at) -> Strip:
        """Rows [start, stop) of `layers` (stride 1, all on one map `height` rows high) applied to
        the map `source` gives rows of."""
        ranges = [(start, stop)]
        for layer in reversed(layers):
            if isinstance(layer, nn.Conv2d):
                ranges.append(self.conv_input_range(layer, *ranges[-1], height))
        strip = source(*ranges.pop())
        for layer in layers:
            if isinstance(layer, nn.Conv2d):
                strip = self.conv(layer, strip, *ranges.pop(), height)
            elif isinstance(layer, NORMS):
                strip = self.norm(layer, strip, stop_at)
            else:
                strip = Strip(layer(strip.tensor), strip.start)
        return strip.rows(start, stop)

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


class StripGenerator(StripExecutor):
    """One sample of a pyramid generator at (height, width), strip by strip within `budget` bytes.

    `inputs(scale, start, stop)` gives the net's input rows of a scale (noise, and the photo for
    stylization nets) for actual rows 0 <= start < stop <= that scale's height.
    """

    def __init__(self, net: PyramidGenerator, inputs: ScaleInputs, height: int, width: int, budget: int):
        super().__init__(net, inputs, budget)
        self.sizes = self.config.scale_sizes(height, width)
        self.kept: dict[int, torch.Tensor] = {}  # scale -> its whole output map

    @torch.no_grad()
    def generate(self, write: Callable[[int, int, torch.Tensor], None]) -> None:
        """Calls write(first row, stop row, (3, rows, W) float32 in [0, 1]) strip by strip, top to bottom."""
        if self.config.norm in ("instance", "robust"):  # norms with map statistics
            for scale in range(self.config.scales - 1, -1, -1):  # coarse to fine
                for norm in self.norms_in_order(scale):
                    self.gather(norm, *self.sizes[scale],
                                lambda start, stop, norm, scale=scale: self.scale_output(scale, start, stop, norm))
                self.keep_if_it_fits(scale)
        height, width = self.sizes[0]
        step = self.strip_rows(self.scale_channels(0), width)
        for start in range(0, height, step):
            stop = min(start + step, height)
            features = self.scale_output(0, start, stop).tensor
            write(start, stop, torch.sigmoid(self.net.to_rgb(features).float())[0])

    def norms_in_order(self, scale: int) -> list[nn.Module]:
        """The instance norms of one scale in the order their statistics can be gathered."""
        def block_norms(block):
            return [layer for layer in block if isinstance(layer, NORMS)]

        own = block_norms(self.net.scale_blocks[scale])
        if scale == self.config.scales - 1:
            return own
        join = self.join_index(scale)
        return ([self.net.coarse_norms[join]] + own + [self.net.fine_norms[join]]
                + block_norms(self.net.join_blocks[join]))

    def keep_if_it_fits(self, scale: int) -> None:
        """Keep a scale's whole output map when it fits in half the budget with those already kept."""
        if scale == 0:
            return
        height, width = self.sizes[scale]
        size = self.scale_channels(scale) * height * width * 4
        if size + sum(t.numel() * 4 for t in self.kept.values()) > self.budget // 2:
            return
        whole = torch.empty(1, self.scale_channels(scale), height, width, dtype=self.dtype)
        step = self.strip_rows(self.scale_channels(scale), width)
        for start in range(0, height, step):
            stop = min(start + step, height)
            whole[..., start:stop, :] = self.scale_output(scale, start, stop).tensor
        self.kept[scale] = whole

    def join_index(self, scale: int) -> int:
        return self.config.scales - 2 - scale

    def scale_channels(self, scale: int) -> int:
        return self.config.channels * (self.config.scales - scale)

    def scale_output(self, scale: int, start: int, stop: int, stop_at: nn.Module | None = None) -> Strip:
        """Rows [start, stop) of the map a scale hands to the next finer one (the joined features)."""
        if scale in self.kept:
            return Strip(self.wrapped_rows(self.kept[scale], scale, start, stop), start)
        height = self.sizes[scale][0]
        if scale == self.config.scales - 1:
            return self.run_layers(self.net.scale_blocks[scale], height, start, stop,
                                   lambda a, b: self.input_rows(scale, a, b), stop_at)
        return self.run_layers(self.net.join_blocks[self.join_index(scale)], height, start, stop,
                               lambda a, b: self.joined(scale, a, b, stop_at), stop_at)

    def joined(self, scale: int, start: int, stop: int, stop_at) -> Strip:
        join = self.join_index(scale)
        coarse = self.norm(self.net.coarse_norms[join], self.upsampled(scale, start, stop, stop_at), stop_at)
        fine = self.run_layers(self.net.scale_blocks[scale], self.sizes[scale][0], start, stop,
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

    def input_rows(self, scale: int, start: int, stop: int) -> Strip:
        height = self.sizes[scale][0]
        return Strip(self.gather_wrapped(lambda a, b: self.inputs(scale, a, b), start, stop, height), start)

    def wrapped_rows(self, whole: torch.Tensor, scale: int, start: int, stop: int) -> torch.Tensor:
        return self.gather_wrapped(lambda a, b: whole[..., a:b, :], start, stop, self.sizes[scale][0])


@dataclass
class Step:
    """One layer of a chain and the size of the map it outputs."""

    layer: nn.Module | None  # None: the input, or the crop back to the photo's size
    height: int
    width: int
    channels: int


class ChainStripGenerator(StripExecutor):
    """One output of the residual net, strip by strip within `budget` bytes. The net is a chain:
    the input, the encoder's layers, the residual blocks and the decoder's layers, then the RGB
    convolution and the crop back to the input's size. After the statistics of a residual block's norms
    are known its whole output (a quarter of the resolution) is kept, replacing the last one kept,
    so that later passes start from it."""

    def __init__(self, net: ResidualGenerator, inputs: ScaleInputs, height: int, width: int, budget: int):
        super().__init__(net, inputs, budget)
        if self.circular:
            raise ValueError("strips of the residual net need non-circular padding")
        self.steps = [Step(None, height, width, net.config.content_channels + net.config.noise_channels)]
        for layer in [*net.encoder, *net.residuals, *net.decoder]:
            self.steps.append(self.next_step(layer))
        self.height, self.width = height, width
        self.kept: tuple[int, torch.Tensor] | None = None  # (step, its whole output)

    def next_step(self, layer: nn.Module) -> Step:
        last = self.steps[-1]
        if isinstance(layer, nn.Conv2d):
            stride = layer.stride[0]
            return Step(layer, -(-last.height // stride), -(-last.width // stride), layer.out_channels)
        if isinstance(layer, nn.Upsample):
            return Step(layer, 2 * last.height, 2 * last.width, last.channels)
        return Step(layer, last.height, last.width, last.channels)

    @torch.no_grad()
    def generate(self, write: Callable[[int, int, torch.Tensor], None]) -> None:
        if self.config.norm in ("instance", "robust"):  # norms with map statistics
            for index, step in enumerate(self.steps):
                for norm in self.norms_of(step.layer):
                    self.gather(norm, step.height, step.width,
                                lambda start, stop, norm, index=index: self.step_rows(index, start, stop, norm))
                if isinstance(step.layer, ResidualBlock):
                    self.keep(index)
        last = self.steps[-1]  # the decoder's output, rounded up from the input's size
        step = self.strip_rows(last.channels, last.width)
        to_rgb = self.net.to_rgb
        for start in range(0, self.height, step):
            stop = min(start + step, self.height)
            features = self.step_rows(len(self.steps) - 1, *self.conv_input_range(to_rgb, start, stop, last.height))
            rgb = self.conv(to_rgb, features, start, stop, last.height).tensor[..., : self.width]
            write(start, stop, torch.sigmoid(rgb.float())[0])

    @staticmethod
    def norms_of(layer: nn.Module | None) -> list[nn.Module]:
        if isinstance(layer, ResidualBlock):
            return [module for module in layer.body if isinstance(module, NORMS)]
        return [layer] if isinstance(layer, NORMS) else []

    def keep(self, index: int) -> None:
        step = self.steps[index]
        if step.channels * step.height * step.width * 4 > self.budget // 2:
            return
        whole = torch.empty(1, step.channels, step.height, step.width, dtype=self.dtype)
        rows = self.strip_rows(step.channels, step.width)
        for start in range(0, step.height, rows):
            stop = min(start + rows, step.height)
            whole[..., start:stop, :] = self.step_rows(index, start, stop).tensor
        self.kept = (index, whole)

    def step_rows(self, index: int, start: int, stop: int, stop_at: nn.Module | None = None) -> Strip:
        """Rows [start, stop) of step `index`'s output."""
        if self.kept is not None and self.kept[0] == index:
            return Strip(self.kept[1][..., start:stop, :], start)
        step = self.steps[index]
        if index == 0:
            return Strip(self.inputs(0, start, stop).to(self.dtype), start)
        previous = self.steps[index - 1]
        layer = step.layer
        if isinstance(layer, nn.Conv2d):
            source = self.step_rows(index - 1, *self.conv_input_range(layer, start, stop, previous.height), stop_at)
            return self.conv(layer, source, start, stop, previous.height)
        if isinstance(layer, nn.Upsample):
            source = self.step_rows(index - 1, start // 2, (stop - 1) // 2 + 1, stop_at)
            rows = torch.arange(start, stop) // 2 - start // 2
            return Strip(source.tensor[:, :, rows][..., torch.arange(step.width) // 2], start)
        if isinstance(layer, ResidualBlock):
            reach = 2  # two 3x3 convolutions
            source = self.step_rows(index - 1, max(start - reach, 0), min(stop + reach, step.height), stop_at)
            body = self.run_layers(layer.body, step.height, start, stop, source.rows, stop_at)
            return Strip(source.rows(start, stop).tensor + body.tensor, start)
        source = self.step_rows(index - 1, start, stop, stop_at)
        if isinstance(layer, NORMS):
            return self.norm(layer, source, stop_at)
        return Strip(layer(source.tensor), start)


def strip_generator(net: nn.Module, inputs: ScaleInputs, height: int, width: int, budget: int) -> StripExecutor:
    """The executor for this kind of net."""
    kind = ChainStripGenerator if isinstance(net, ResidualGenerator) else StripGenerator
    return kind(net, inputs, height, width, budget)


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
