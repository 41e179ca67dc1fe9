"""Tests with the real ImageNet VGG-19 (fetched and verified by the set-up)."""

import pytest
import torch

from conftest import TEXTURES
from texnet.descriptor import VGG19Descriptor
from texnet.image_io import image_to_tensor, load_image, resize_to_fit
from texnet.optimize import OptimizeConfig, synthesize

pytestmark = pytest.mark.real_weights


def brick(size=64):
    return image_to_tensor(resize_to_fit(load_image(TEXTURES / "brick.png"), size))


def test_short_synthesis_at_64px_cuts_texture_loss_by_a_large_factor(real_descriptor):
    result = synthesize(real_descriptor, brick(128), (64, 64), OptimizeConfig(iters=40, progress=False))
    assert result.loss < result.history[0] / 20


def test_real_features_differ_clearly_from_a_random_network(real_descriptor):
    torch.manual_seed(0)
    random_net = VGG19Descriptor(layers=real_descriptor.layers)
    image = brick(64)
    real, rand = real_descriptor(image)["relu3_1"], random_net(image)["relu3_1"]
    correlation = torch.corrcoef(torch.stack([real.flatten(), rand.flatten()]))[0, 1]
    assert abs(correlation) < 0.5
    # ImageNet filters respond to edges: a flat gray image excites relu1_1 far less than bricks.
    flat = torch.full_like(image, 0.5)
    assert real_descriptor(flat)["relu1_1"].mean() < 0.5 * real_descriptor(image)["relu1_1"].mean()


def test_small_example_converges_everywhere_not_only_near_the_borders(real_descriptor):
    # pink-marble is 128 px; from full-range noise the centre of a larger output stayed grey.
    example = image_to_tensor(load_image(TEXTURES / "pink-marble.png"))
    result = synthesize(real_descriptor, example, (160, 160), OptimizeConfig(iters=40, progress=False))
    assert result.loss < result.history[0] / 50
    centre, whole = result.image[..., 40:120, 40:120], result.image
    # The marble's pink cast (red above green) holds in the centre as in the whole image.
    assert (centre[:, 0] - centre[:, 1]).mean() > 0.5 * (whole[:, 0] - whole[:, 1]).mean() > 0
