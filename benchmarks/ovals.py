"""Where the saturated ovals in some samples come from, and how often they appear.

For each model given (built-in name or folder), on 8 samples at 256 px (float32):
- texture loss (real VGG-19) against the model's own example;
- the share of pixels whose output is saturated so deep that its gradient is dead: every channel's
  pre-sigmoid value beyond +-10, where the sigmoid's slope is below 5e-5 (an 8-bit black or white
  pixel of the example needs only +-5.5);
- for each scale k, how much drawing that scale's noise again changes the pixels inside the
  saturated regions and elsewhere: the scale that moves them is the one that makes them.
Writes benchmarks/out/ovals.md.

    python benchmarks/ovals.py pebbles runs/pebbles-k4 [--texture pebbles]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
SIZE, COUNT, SATURATED = 256, 8, 10.0


def forward_with_logits(net, noise) -> tuple[torch.Tensor, torch.Tensor]:
    """The samples and their pre-sigmoid values."""
    captured = {}
    hook = net.to_rgb.register_forward_hook(lambda module, inputs, output: captured.update(logits=output))
    images = net(noise)
    hook.remove()
    return images, captured["logits"]


def saturated_mask(logits: torch.Tensor) -> torch.Tensor:
    return (logits.abs() > SATURATED).all(dim=1, keepdim=True).expand_as(logits)


def scale_influence(net, noise, base, inside) -> list[str]:
    """Mean pixel change inside / outside the saturated regions when one scale's noise is drawn again."""
    cells = []
    for scale in range(net.config.scales):
        changed = list(noise)
        changed[scale] = torch.rand(noise[scale].shape, generator=torch.Generator().manual_seed(99))
        difference = (net(changed) - base).abs()
        ovals = f"{difference[inside].mean():.2f}" if inside.any() else "-"
        cells.append(f"{ovals} / {difference[~inside].mean():.2f}")
    return cells


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="+")
    parser.add_argument("--texture", default="pebbles", help="example the models were trained on")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from measure import machine_description, markdown_table, write_report
    from texnet.descriptor import VGG19Descriptor
    from texnet.image_io import image_to_tensor, load_image, quantize, resize_to_fit
    from texnet.losses import TextureTarget
    from texnet.sampling import TextureGenerator

    descriptor = VGG19Descriptor.pretrained()
    example = image_to_tensor(resize_to_fit(load_image(DATA / "textures" / f"{args.texture}.png"), SIZE))
    target = TextureTarget.from_image(descriptor, example)
    rows, widest = [], 0
    for name in args.models:
        net = TextureGenerator.from_pretrained(name).net
        widest = max(widest, net.config.scales)
        with torch.no_grad():
            noise = net.make_noise(COUNT, SIZE, SIZE, torch.Generator().manual_seed(0))
            base, logits = forward_with_logits(net, noise)
            inside = saturated_mask(logits)
            loss = float(target.loss(descriptor(quantize(base))).mean())
            share = float(inside[:, 0].float().mean())
            rows.append([name, str(net.config.scales), f"{loss:.3g}", f"{share:.2%}",
                         f"{float(logits.abs().amax()):.0f}", *scale_influence(net, noise, base, inside)])
    rows = [row + [""] * (5 + widest - len(row)) for row in rows]
    headers = ["model", "scales", "texture loss", "saturated pixels", "largest pre-sigmoid value",
               *(f"resample scale {k} ({SIZE >> k} px): change inside / elsewhere" for k in range(widest))]
    report = (f"Machine: {machine_description()}. {COUNT} samples of {SIZE} px, float32, example "
              f"{args.texture}. Saturated: every channel's pre-sigmoid value beyond +-{SATURATED:g}.\n\n"
              f"{markdown_table(headers, rows)}\n")
    write_report("ovals.md", report)


if __name__ == "__main__":
    main()
