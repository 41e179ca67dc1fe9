"""Running a generator with PyTorch: the whole image in one pass, or in exact strips."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch

from .generators import StyledGenerator, bf16_is_fast, fold_upsampling
from .strips import strip_generator


class TorchRunner:
    """`net` on `device`, in float32 or (a cached copy of the weights) bfloat16."""

    def __init__(self, net: StyledGenerator, device: torch.device | str = "cpu"):
        # Denormal floats made sampling 2.3x slower on an AVX2 CPU (issue 11); they change no pixel.
        torch.set_flush_denormal(True)
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.nets: dict[tuple[bool, bool], StyledGenerator] = {}  # (bf16, whole image) -> the net to run

    def use_bf16(self, bf16: bool | None) -> bool:
        """`bf16`, or where it is None, whether bfloat16 is the faster choice on this device."""
        return bf16_is_fast(self.device) if bf16 is None else bf16

    def network(self, bf16: bool, whole_image: bool = True) -> StyledGenerator:
        """The net in the precision asked for; for whole images with its upsamplings folded into
        the convolutions after them (strips walk the unfolded layers). In bfloat16 the whole net
        runs in it: faster than autocast, which keeps the normalisations in float32."""
        key = (bf16, whole_image)
        if key not in self.nets:
            net = fold_upsampling(self.net) if whole_image else self.net
            self.nets[key] = copy.deepcopy(net).to(torch.bfloat16) if bf16 else net
        return self.nets[key]

    @torch.no_grad()
    def run(self, inputs: list[np.ndarray | torch.Tensor], bf16: bool | None = None) -> torch.Tensor:
        """The net's output (B, 3, H, W), float32 on the CPU; `inputs` in the order of
        GeneratorConfig.input_names (the photo, each scale's noise, the style weights)."""
        net = self.network(self.use_bf16(bf16))
        dtype = next(net.parameters()).dtype
        tensors = [torch.as_tensor(value).to(self.device, dtype) for value in inputs]
        content = tensors.pop(0) if net.config.content_channels else None
        style = tensors.pop() if net.config.styles > 1 else None
        return net(tensors or None, content, style).float().cpu()

    @torch.no_grad()
    def run_in_strips(self, inputs: Callable[[int, int, int], np.ndarray | torch.Tensor], height: int, width: int,
                      budget: int, write: Callable[[int, int, torch.Tensor], None], bf16: bool | None = None,
                      style: np.ndarray | None = None) -> None:
        """One sample in exact strips within `budget` bytes: inputs(scale, first row, stop row)
        gives a scale's input rows, (1, C, rows, W); write(first row, stop row, (3, rows, W)) takes
        the output; `style`, the style weights of a multi-style net."""
        net = self.network(self.use_bf16(bf16), whole_image=False)
        net.set_style(None if style is None else torch.as_tensor(style, dtype=torch.float32), 1)

        def scale_inputs(scale: int, start: int, stop: int) -> torch.Tensor:
            return torch.as_tensor(inputs(scale, start, stop)).to(self.device)

        strip_generator(net, scale_inputs, height, width, budget).generate(
            lambda start, stop, rgb: write(start, stop, rgb.cpu()))
