"""The droplet measure: positions where nearly every channel of the finest maps is extreme."""

import json

import numpy as np
import torch

from texnet.cli import main
from texnet.droplets import channel_median_peak, droplet_peak
from texnet.generator_config import GeneratorConfig
from texnet.generators import PyramidGenerator
from texnet.image_io import load_image
from texnet.quality import QualityReport, evaluate_images, format_report
from texnet.sampling import TextureGenerator
from conftest import TEXTURES


def maps_with_spike(channels_hit: int, side: int = 6, height: float = 20.0) -> torch.Tensor:
    """Gaussian maps (1, 16, 64, 64) with a side x side patch raised by `height` in the first `channels_hit` channels."""
    maps = torch.randn(1, 16, 64, 64, generator=torch.Generator().manual_seed(0))
    maps[:, :channels_hit, 20:20 + side, 20:20 + side] += height
    return maps


def test_a_blob_far_out_in_every_channel_scores_high_but_not_in_few_channels_or_over_a_few_positions():
    plain = channel_median_peak(maps_with_spike(0)).item()
    everywhere = channel_median_peak(maps_with_spike(16)).item()
    few = channel_median_peak(maps_with_spike(3)).item()
    speck = channel_median_peak(maps_with_spike(16, side=2)).item()  # a texture's own small bright element
    assert plain < 2 and few < 2 and speck < 2
    assert everywhere > 5


def test_builtin_models_that_draw_spots_score_higher_than_clean_ones():
    """water's built-in draws a small cyan spot in most samples (README, "Droplets"), bark's none."""
    water = droplet_peak(TextureGenerator.from_pretrained("water"), count=4)
    bark = droplet_peak(TextureGenerator.from_pretrained("bark"), count=4)
    assert water > 15 > 9 > bark


def test_evaluate_reports_droplets_for_models_only(tmp_path, capsys, tiny_descriptor):
    folder = tmp_path / "model"
    TextureGenerator(PyramidGenerator(GeneratorConfig(scales=3, channels=4, norm="instance"))).save_pretrained(folder)
    example = str(TEXTURES / "bark.png")
    assert main(["evaluate", str(folder), "--example", example, "--count", "2", "--size", "64",
                 "--example-size", "64", "--json"]) in (0, None)
    report = QualityReport(**json.loads(capsys.readouterr().out))
    assert report.droplets > 0
    assert "droplets" in format_report(report, report)
    pixels = np.asarray(load_image(example).resize((64, 64)))
    images = evaluate_images(tiny_descriptor, [pixels], load_image(example), 64)
    assert images.droplets is None and "droplets" not in format_report(images, images)
