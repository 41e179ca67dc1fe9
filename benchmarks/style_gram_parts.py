"""Where a style net's held-out Gram loss lies: relu4_1, and in it the mean or the spread (issue 12).

A layer's Gram matrix G = X X^T / (C N) of its features X (C channels, N positions) is the sum of
the outer product of the channels' means, M = mu mu^T / C, and their centred covariance S = G - M.
For a net's result and for Gatys' at each style weight (the trade-off's cached runs), on the
first --photos content-test photos, against the painting's held-out targets (texnet.quality):
the held-out Gram loss, relu4_1's share of it, the distance of M and of S from the targets' at
relu4_1, and the result's relu4_1 mean vector against the painting's (length ratio and cosine).

    python benchmarks/style_gram_parts.py --style night-cafe --photos 3 --multipliers 1 10 30
    # writes benchmarks/out/style_gram_parts.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
LAYER = "relu4_1"


def mean_and_spread(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(channel means, M, S) of one image's (1, C, H, W) features; G = M + S."""
    from texnet.losses import gram_matrix

    flat = features[0].flatten(1).float()
    mean = flat.mean(dim=1)
    outer = torch.outer(mean, mean) / flat.shape[0]
    return mean, outer, gram_matrix(features)[0] - outer


def parts(pixels: np.ndarray, descriptor, targets: list[dict], painting_mean: torch.Tensor) -> dict:
    """The measures above for one result, averaged over the held-out targets."""
    from PIL import Image

    from texnet.image_io import image_to_tensor
    from texnet.losses import TextureTarget
    from texnet.quality import mean_gram_loss

    with torch.no_grad():
        features = descriptor(image_to_tensor(Image.fromarray(pixels)))
    mean, outer, spread = mean_and_spread(features[LAYER])
    layer_only = [TextureTarget({LAYER: target["gram"].grams[LAYER]}, {LAYER: 1.0}) for target in targets]
    total = mean_gram_loss([target["gram"] for target in targets], features)
    return {"held_out_gram": total,
            "layer_share": mean_gram_loss(layer_only, features) / total,
            "mean_part": statistics.mean(float((outer - t["outer"]).pow(2).sum()) for t in targets),
            "spread_part": statistics.mean(float((spread - t["spread"]).pow(2).sum()) for t in targets),
            "length": float(mean.norm() / painting_mean.norm()),
            "cosine": float(torch.nn.functional.cosine_similarity(mean, painting_mean, dim=0))}


def cells(p: dict) -> list[str]:
    return [f"{p['held_out_gram']:.3g}", f"{p['layer_share']:.0%}", f"{p['mean_part']:.3g}", f"{p['spread_part']:.3g}",
            f"{p['length']:.3f}", f"{p['cosine']:.4f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", required=True, help="a built-in style name or a model folder")
    parser.add_argument("--photos", type=int, default=3, help="the first N photos of content-test")
    parser.add_argument("--multipliers", type=float, nargs="+", default=[1, 10, 30],
                        help="Gatys' style weights, times the built-ins' (cached by style_tradeoff.py)")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from measure import machine_description, markdown_table, write_report
    from style_tradeoff import cached_gatys_pixels
    from stylization import DATA, SIZE

    from texnet.descriptor import CONTENT_LAYER, TEXTURE_LAYERS, VGG19Descriptor
    from texnet.image_io import image_files, image_to_tensor, load_image, resize_to_fit
    from texnet.losses import TextureTarget
    from texnet.quality import held_out_targets, style_evaluation_descriptor
    from texnet.style_training import StyleTrainConfig
    from texnet.stylizer import Stylizer

    model = Stylizer.from_pretrained(args.style)
    painting_name, style_size = model.style_names()[0], model.info["config"]["style_size"]
    descriptor = style_evaluation_descriptor()
    targets = []
    with torch.no_grad():
        for image in held_out_targets(load_image(DATA / "styles" / f"{painting_name}.jpg"), style_size):
            features = descriptor(image_to_tensor(image))
            mean, outer, spread = mean_and_spread(features[LAYER])
            targets.append({"gram": TextureTarget.from_features(features, dict.fromkeys(TEXTURE_LAYERS, 1.0)),
                            "outer": outer, "spread": spread, "mean": mean})
    painting_mean = torch.stack([target["mean"] for target in targets]).mean(dim=0)
    transfer_descriptor = VGG19Descriptor.pretrained((*TEXTURE_LAYERS, CONTENT_LAYER))
    # The painting the nets were trained on, against its own held-out versions: the measure's floor.
    floor = parts(np.asarray(resize_to_fit(load_image(DATA / "styles" / f"{painting_name}.jpg"), style_size)),
                  descriptor, targets, painting_mean)
    rows = [["-", "the painting itself", *cells(floor)]]
    for photo_path in image_files(DATA / "content-test")[: args.photos]:
        photo = resize_to_fit(load_image(photo_path), SIZE)
        results = {"ours": np.asarray(model.stylize(photo))}
        for multiplier in args.multipliers:
            weight = StyleTrainConfig.style_weight * multiplier
            results[f"Gatys x{multiplier:g}"] = cached_gatys_pixels(photo_path, painting_name, weight, 1.0, style_size,
                                                                    100, transfer_descriptor)
        for name, pixels in results.items():
            rows.append([photo_path.stem, name, *cells(parts(pixels, descriptor, targets, painting_mean))])
            print(rows[-1], flush=True)
    header = ["photo", "result", "held-out Gram", f"{LAYER}'s share", f"{LAYER} means: |M - M_t|^2",
              f"{LAYER} spread: |S - S_t|^2", "|mu| / painting's", "cos(mu, painting's)"]
    write_report("style_gram_parts.md", f"Machine: {machine_description()}. Style: {args.style}.\n\n"
                                        f"{markdown_table(header, rows)}\n")


if __name__ == "__main__":
    main()
