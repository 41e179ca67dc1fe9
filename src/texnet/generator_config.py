"""The shape of a generator, as stored in a model's config.json (no PyTorch needed to read it)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from .errors import TexnetError

ARCHITECTURES = ("pyramid", "residual")
PADDINGS = ("circular", "reflect", "zeros")
LATER_KEYS = {"architecture", "styles", "blocks", "edge_kernel", "full_resolution_layers", "negative_slope"}
NORMS = ("batch", "instance", "robust")
# Bounds for every shape field: a config.json is read from outside, and "channels": 1e9 would
# otherwise ask for 100 GB before anything could say no.
LIMITS = {"scales": (1, 10), "channels": (1, 256), "noise_channels": (0, 64), "content_channels": (0, 3),
          "styles": (1, 1024), "blocks": (0, 32), "edge_kernel": (1, 9)}


@dataclass
class GeneratorConfig:
    scales: int = 6  # the pyramid's noise scales
    channels: int = 8  # pyramid: per scale (the finest join is scales * channels wide); residual: at full resolution
    noise_channels: int = 3
    content_channels: int = 0  # 3 for a stylization generator, which also sees the photo
    padding: str = "circular"  # "circular" makes samples tile seamlessly; "reflect" suits photos; or "zeros"
    norm: str = "batch"  # "batch" (paper), "instance" (Improved Texture Networks), "robust" (RobustInstanceNorm)
    architecture: str = "pyramid"  # or "residual" (Johnson et al.)
    styles: int = 1  # styles in one net (conditional instance norm rows); instance norm only
    blocks: int = 5  # the residual net's residual blocks
    edge_kernel: int = 9  # the residual net's first and last convolutions, k x k
    # The residual net's c-channel layers at full resolution (Johnson et al.). Without them the first
    # convolution strides straight to half resolution and the decoder's last map is upsampled into
    # the RGB convolution: the widest maps are a quarter the size, which is what costs time on CPUs.
    full_resolution_layers: bool = True
    # The pyramid's LeakyReLU slope below zero: the reference code's 0.01, which every model written before this
    # field has. 0.05 was tried against bark's smooth ovals and is an option, not the default (README, "Smooth ovals").
    negative_slope: float = 0.01

    def validate(self) -> "GeneratorConfig":
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if type(value) is not int or not low <= value <= high:
                raise TexnetError(f"generator '{name}' must be a whole number from {low} to {high}, not {value!r}")
        if type(self.full_resolution_layers) is not bool:
            raise TexnetError("generator 'full_resolution_layers' must be true or false, "
                              f"not {self.full_resolution_layers!r}")
        if type(self.negative_slope) not in (int, float) or not 0 <= self.negative_slope < 1:
            raise TexnetError(f"generator 'negative_slope' must be a number from 0 to below 1, not {self.negative_slope!r}")
        if self.content_channels not in (0, 3):
            raise TexnetError(f"generator 'content_channels' must be 0 or 3, not {self.content_channels}")
        if self.padding not in PADDINGS:
            raise TexnetError(f"padding must be one of {', '.join(PADDINGS)}, not {self.padding!r}")
        if self.norm not in NORMS:
            raise TexnetError(f"norm must be one of {', '.join(NORMS)}, not {self.norm!r}")
        if self.noise_channels + self.content_channels < 1:
            raise TexnetError("a generator needs noise or content input")
        if self.architecture not in ARCHITECTURES:
            raise TexnetError(f"architecture must be one of {', '.join(ARCHITECTURES)}, not {self.architecture!r}")
        if self.architecture == "residual" and self.content_channels != 3:
            raise TexnetError("the residual architecture stylizes photos: it needs content_channels 3")
        if self.edge_kernel % 2 == 0:
            raise TexnetError(f"edge_kernel must be odd, not {self.edge_kernel}")
        if self.styles > 1 and self.norm != "instance":
            raise TexnetError("several styles in one net need instance norm (conditional instance norm)")
        return self

    @classmethod
    def from_dict(cls, values) -> "GeneratorConfig":
        """From a config.json section, refusing unknown or missing keys and wrong types. Keys
        added after the first format (architecture onwards) may be missing: they take their
        defaults, which describe every model written before them."""
        if not isinstance(values, dict):
            raise TexnetError(f"the 'generator' section must be an object, not {type(values).__name__}")
        names = {field.name for field in fields(cls)}
        unknown, missing = sorted(set(values) - names), sorted(names - set(values) - LATER_KEYS)
        if unknown or missing:
            raise TexnetError(f"the 'generator' section has unknown keys {unknown} or lacks {missing}")
        return cls(**values).validate()

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def noise_scales(self) -> int:
        """How many scales take noise: every one of the pyramid's; the residual net's full resolution only."""
        return self.scales if self.architecture == "pyramid" else 1

    @property
    def tile_multiple(self) -> int:
        """Sizes divisible by this keep every scale whole, so circular samples tile exactly."""
        return 2 ** (self.scales - 1) if self.architecture == "pyramid" else 4

    @property
    def min_side(self) -> int:
        """Smallest side the net runs at: the coarsest map needs 2 px for its normalisation (and
        reflection padding needs more pixels than it pads)."""
        if self.architecture == "residual":
            return max(5, self.edge_kernel // 2 + 1)
        return 2 ** (self.scales - 1) + 1

    def input_names(self) -> list[str]:
        """The net's inputs, in order (also those of its ONNX graph): the photo, each scale's noise,
        and for multi-style nets the style weights."""
        photo = ["content"] if self.content_channels else []
        noise = [f"noise_{scale}" for scale in range(self.noise_scales)] if self.noise_channels else []
        return photo + noise + (["style"] if self.styles > 1 else [])

    def scale_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """(H, W) of each noise scale, finest first; odd sizes round up and are cropped after upsampling."""
        sizes = [(height, width)]
        for _ in range(self.noise_scales - 1):
            sizes.append((math.ceil(sizes[-1][0] / 2), math.ceil(sizes[-1][1] / 2)))
        return sizes
