"""The cpu style preset with global context: the photo's pooled features steer the norms (a one-off experiment).

benchmarks/style_per_photo_fit.py finds that setting the residual net's instance norms' scales and
shifts per photo brings it much nearer Gatys. This trains a net that predicts them: the mean and
standard deviation of each channel of the encoder's output (the photo seen at a quarter of its
size, as a whole) go through a small MLP (48 x 2 -> 64 -> one scale and one shift offset per
channel of every norm after the encoder), its last layer zeroed so that training starts from the
plain net's behaviour. Each norm's output y becomes y * (1 + a) + b. Trained like the preset, then
scored on the first 3 content-test photos like benchmarks/style_per_photo_fit.py.

    python benchmarks/style_global_context.py night-cafe runs/fit/night-cafe-800-context
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

from texnet.generator_config import GeneratorConfig
from texnet.generators import ResidualGenerator, sigmoid_with_gradient_floor

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
HIDDEN = 64


def modulate(norm: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
    """A norm's forward hook: its output scaled and shifted by the offsets its net set for this call."""
    scale, shift = norm.offsets
    return output * (1 + scale[..., None, None]) + shift[..., None, None]


class ContextResidualGenerator(ResidualGenerator):
    """The residual net whose norms after the encoder are steered by the encoder's pooled output."""

    def __init__(self, config: GeneratorConfig):
        super().__init__(config)
        self.steered = [m for part in (self.residuals, self.decoder) for m in part.modules()
                        if isinstance(m, nn.InstanceNorm2d)]
        for norm in self.steered:
            norm.register_forward_hook(modulate)
        self.widths = [norm.num_features for norm in self.steered]
        encoder_width = self.encoder[-3].out_channels
        self.context = nn.Sequential(nn.Linear(2 * encoder_width, HIDDEN), nn.ReLU(),
                                     nn.Linear(HIDDEN, 2 * sum(self.widths)))
        nn.init.zeros_(self.context[-1].weight)
        nn.init.zeros_(self.context[-1].bias)

    def forward(self, noise, content=None, style=None) -> torch.Tensor:
        height, width = content.shape[-2:]
        encoded = self.encoder(content)
        flat = encoded.flatten(2).float()
        stats = torch.cat([flat.mean(dim=2), flat.std(dim=2)], dim=1).to(self.context[0].weight.dtype)
        offsets = self.context(stats).to(encoded.dtype)
        for norm, chunk in zip(self.steered, offsets.split([2 * w for w in self.widths], dim=1)):
            norm.offsets = chunk.chunk(2, dim=1)
        rgb = self.to_rgb(self.decoder(self.residuals(encoded)))[..., :height, :width]
        for norm in self.steered:
            norm.offsets = None  # a copy of the net (for checkpoints) cannot hold this call's tensors
        return sigmoid_with_gradient_floor(rgb)


def trained_net(painting_name: str, output: Path, iters: int) -> nn.Module:
    """The context net in `output`, trained there first unless it is already."""
    import texnet.training
    from safetensors.torch import load_file

    from texnet.image_io import load_image
    from texnet.model_files import read_config
    from texnet.style_training import style_preset, train_style
    from texnet.training import scaled_to

    if not (output / "model.safetensors").exists():
        texnet.training.build_generator = ContextResidualGenerator
        painting = load_image(DATA / "styles" / f"{painting_name}.jpg")
        train_style({painting_name: painting}, DATA / "content-train", output, scaled_to(style_preset("cpu"), iters))
    net = ContextResidualGenerator(GeneratorConfig.from_dict(read_config(output)["generator"]))
    net.load_state_dict(load_file(output / "model.safetensors"))
    return net


@torch.no_grad()
def context_spread(net: ContextResidualGenerator) -> tuple[float, float]:
    """The mean size of the context's offsets over the content-test photos at 256 px, and their
    mean standard deviation across those photos: how much the context tells photos apart."""
    from texnet.image_io import image_files, image_to_tensor, load_image, resize_to_fit

    offsets = []
    for path in image_files(DATA / "content-test"):
        flat = net.encoder(image_to_tensor(resize_to_fit(load_image(path), 256))).flatten(2)
        offsets.append(net.context(torch.cat([flat.mean(dim=2), flat.std(dim=2)], dim=1))[0])
    stacked = torch.stack(offsets)
    return float(stacked.abs().mean()), float(stacked.std(dim=0).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("painting", help="a painting of ../shared/data/styles, by name")
    parser.add_argument("output", type=Path, help="model folder to create (or score, if it holds a trained net)")
    parser.add_argument("--iters", type=int, default=800)
    parser.add_argument("--photos", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from style_per_photo_fit import net_result, score_against_gatys

    net = trained_net(args.painting, args.output, args.iters)
    # The folder's weights include the context's, which build_generator's net cannot load: score this net.
    report = f"style_global_context-{args.output.name}.md"
    score_against_gatys(str(args.output), args.photos, report, lambda _model, photo, *_: {"context": (net_result(net, photo), None)})
    size, spread = context_spread(net)
    line = f"Context offsets over the content-test photos: mean size {size:.3g}, spread across photos {spread:.3g}.\n"
    print(line, end="")
    with open(HERE / "out" / report, "a") as file:
        file.write("\n" + line)


if __name__ == "__main__":
    main()
