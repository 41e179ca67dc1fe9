"""The VGG-19 descriptor: frozen ImageNet conv layers whose activations define the losses."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import torch
from torch import nn
import torch.nn.functional as F

from .errors import TexnetError
from .weights import VGG19_BLOCKS, VGG19_WIDTHS, load_vgg_weights

# The Caffe convention the weights were trained with: BGR, 0..255, minus the ImageNet mean.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
LAYER_NAMES = tuple(f"relu{b}_{c}" for b, count in VGG19_BLOCKS for c in range(1, count + 1))
TEXTURE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"
# Each pooling halves the size; relu5_1 sits after four of them.
MIN_INPUT_SIDE = 16


class VGG19Descriptor(nn.Module):
    """VGG-19 conv layers up to the deepest requested one, frozen.

    Takes RGB in [0, 1] of any size and returns {layer name: activation}. Average pooling
    is the default: Gatys et al. found it gives smoother gradients for synthesis, and our
    measurement in the README agrees (lower texture loss at the same iteration count).
    `bf16=True` runs the convolutions in bfloat16 (fast on CPUs with AVX-512 BF16); the
    returned activations are always float32. `padding="valid"` convolves without padding, so
    each layer's map shrinks by 2 px and the image's borders do not show in the statistics.
    """

    def __init__(self, layers: Iterable[str] = TEXTURE_LAYERS, pooling: str = "avg",
                 weights: dict[str, torch.Tensor] | None = None, width_divisor: int = 1,
                 bf16: bool = False, padding: str = "same"):
        super().__init__()
        self.layers = tuple(dict.fromkeys(layers))
        unknown = [name for name in self.layers if name not in LAYER_NAMES]
        if unknown or not self.layers:
            raise TexnetError(f"unknown VGG-19 layer(s) {unknown}; choose from {', '.join(LAYER_NAMES)}")
        if pooling not in ("avg", "max"):
            raise TexnetError(f"pooling must be 'avg' or 'max', not '{pooling}'")
        if padding not in ("same", "valid"):
            raise TexnetError(f"padding must be 'same' or 'valid', not '{padding}'")
        self.pooling = pooling
        self.bf16 = bf16
        # "valid" drops the zero padding, as the reference code's -vgg_no_pad: no border effects.
        self.padding = padding
        deepest = max(LAYER_NAMES.index(name) for name in self.layers)
        self.convs = nn.ModuleDict()
        in_channels = 3
        for (block, count), width in zip(VGG19_BLOCKS, VGG19_WIDTHS):
            for conv in range(1, count + 1):
                if len(self.convs) > deepest:
                    break
                out_channels = width // width_divisor
                self.convs[f"{block}_{conv}"] = nn.Conv2d(in_channels, out_channels, 3, padding=1)
                in_channels = out_channels
        if weights is not None:
            self.convs.load_state_dict(keras_to_module_keys(weights, self.convs.keys()))
        self.register_buffer("mean_bgr", torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def pretrained(cls, layers: Iterable[str] = TEXTURE_LAYERS, pooling: str = "avg",
                   weights_path=None, bf16: bool = False) -> "VGG19Descriptor":
        """The real ImageNet descriptor (weights resolved as in `texnet weights`)."""
        return cls(layers, pooling, weights=load_vgg_weights(weights_path), bf16=bf16)

    def preprocess(self, rgb: torch.Tensor) -> torch.Tensor:
        return rgb.flip(1) * 255.0 - self.mean_bgr

    def min_input_side(self) -> int:
        """Smallest image side that leaves the deepest layer a map of at least 1 px (2 px per conv
        are lost without padding, and each pooling halves)."""
        if self.padding == "same":
            return MIN_INPUT_SIDE
        side = 1
        for key in reversed(list(self.convs.keys())):
            side += 2
            block, index = key.split("_")
            if index == "1" and block != "1":
                side *= 2
        return side

    def forward(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        if min(rgb.shape[-2:]) < self.min_input_side():
            raise TexnetError(f"images must be at least {self.min_input_side()} px on each side for VGG-19"
                              + (" without padding" if self.padding == "valid" else ""))
        x = self.preprocess(rgb)
        features = {}
        pool = F.avg_pool2d if self.pooling == "avg" else F.max_pool2d
        autocast = torch.autocast(x.device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with autocast:
            for key, conv in self.convs.items():
                block, index = key.split("_")
                if index == "1" and block != "1":
                    x = pool(x, 2)
                x = F.relu(F.conv2d(x, conv.weight, conv.bias, padding=1 if self.padding == "same" else 0))
                name = f"relu{key}"
                if name in self.layers:
                    features[name] = x.float()
                if len(features) == len(self.layers):
                    break
        return features


def keras_to_module_keys(weights: dict[str, torch.Tensor], module_keys) -> dict[str, torch.Tensor]:
    """`block1_conv1.weight` -> `1_1.weight`, keeping only the convs this descriptor has."""
    state = {}
    for key in module_keys:
        block, conv = key.split("_")
        for kind in ("weight", "bias"):
            state[f"{key}.{kind}"] = weights[f"block{block}_conv{conv}.{kind}"]
    return state
