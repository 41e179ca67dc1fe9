"""What the smooth ovals are: droplets inside the net (README, "Droplets").

For each model: a sample (seed 100, the first seed the droplet score draws), the median over
channels of |z| at the input of the finest join block's first norm (z: each channel in standard
deviations from its mean over the map; white = 6 or more), and the same sample with the droplet
positions (channel-median |z| over 4, widened by 2 px) set to each channel's mean at the inputs
of all the finest join's norms: if the rest of the sample then changes its tones, the droplets
were turning the maps down. Prints each model's droplet score (texnet.droplets.droplet_peak).

    python benchmarks/droplets.py docs/droplets.jpg --row "bark, cpu preset" runs/epyc/bark-preset ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from measure import save_figure

SEED = 100
WHITE_AT = 6.0
DROPLET_AT = 4.0


@torch.no_grad()
def droplet_row(model_name: str, size: int) -> tuple[list[torch.Tensor], float]:
    from texnet.droplets import channel_median_z, droplet_peak, finest_norms
    from texnet.sampling import TextureGenerator

    model = TextureGenerator.from_pretrained(model_name)
    net = model.net.float().eval()
    noise = [torch.from_numpy(scale) for scale in model.sample_noise([SEED], size)]
    norms = finest_norms(net)
    seen = {}

    def look(module, inputs):
        seen["z"] = channel_median_z(inputs[0])[:, None]

    def remove_droplets(module, inputs):
        maps = inputs[0]
        droplets = F.max_pool2d((channel_median_z(maps)[:, None] > DROPLET_AT).float(), 5, stride=1, padding=2)
        return (maps * (1 - droplets) + maps.mean(dim=(2, 3), keepdim=True) * droplets,)

    hook = norms[0].register_forward_pre_hook(look)
    sample = net(noise)[0]
    hook.remove()
    hooks = [norm.register_forward_pre_hook(remove_droplets) for norm in norms]
    without = net(noise)[0]
    for hook in hooks:
        hook.remove()
    heat = F.interpolate(seen["z"], size=sample.shape[-2:], mode="nearest")[0].div(WHITE_AT).clamp(0, 1)
    return [sample, heat.expand(3, -1, -1), without], droplet_peak(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path, help="the figure (.jpg)")
    parser.add_argument("--row", nargs=2, action="append", required=True, metavar=("LABEL", "MODEL"))
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    rows = []
    for label, model in args.row:
        images, score = droplet_row(model, args.size)
        print(f"{label}: droplet score {score:.1f}")
        rows.append((f"{label} ({score:.1f})", images))
    columns = ["sample (seed 100)", "channel-median |z|, finest join", "droplets set to the mean in its norms"]
    save_figure(columns, rows, args.output, tile=args.size)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
