"""The fair quality measures on cases with known answers."""

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TEXTURES
from texnet.image_io import load_image, resize_to_fit
from texnet.quality import (autocorrelation, blob_share, diversity, evaluate_images, excess_blob_share,
                            held_out_targets, seam_score, structure_distance)


def bricks(width=192, height=192, period=(24, 48), phase_per_row=None, seed=0):
    """A synthetic brick wall: mortar lines every period[0] rows, vertical joints every period[1]
    columns, shifted by half a brick every other course (or by a random phase per course)."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), (150, 70, 50), np.float64)
    image += rng.normal(0, 12, image.shape)
    course_height, brick_width = period
    for course, top in enumerate(range(0, height, course_height)):
        image[top: top + 2] = 200
        shift = (course % 2) * brick_width // 2 if phase_per_row is None else rng.integers(0, brick_width)
        for left in range(-brick_width + shift, width, brick_width):
            if 0 <= left < width:
                image[top: top + course_height, left: left + 2] = 200
    return np.clip(image, 0, 255).astype(np.uint8)


def test_a_shifted_copy_scores_like_the_original_and_noise_scores_far(tiny_descriptor):
    example = bricks()
    original = Image.fromarray(example)
    shifted = np.roll(example, (48, 96), axis=(0, 1))  # whole courses and bricks: the same wall
    noise = np.random.default_rng(1).integers(0, 256, example.shape, dtype=np.uint8)
    copy = evaluate_images(tiny_descriptor, [shifted], original)
    far = evaluate_images(tiny_descriptor, [noise], original)
    floor = evaluate_images(tiny_descriptor, [example], original)
    assert copy.held_out_gram < 1.2 * floor.held_out_gram and far.held_out_gram > 10 * floor.held_out_gram
    assert copy.sliced_wasserstein < 1.2 * floor.sliced_wasserstein
    assert far.sliced_wasserstein > 10 * floor.sliced_wasserstein
    assert copy.structure < 0.02 and far.structure > 5 * max(copy.structure, 0.01)


def test_the_structure_measure_sees_a_lost_period():
    example = bricks()
    jumbled = bricks(phase_per_row=True, seed=3)  # the same bricks, the courses out of step
    other_scale = bricks(period=(31, 62), seed=4)
    same = bricks(seed=5)  # another wall of the same pattern, other noise
    assert structure_distance([same], example) < 0.3 * structure_distance([jumbled], example)
    assert structure_distance([same], example) < 0.3 * structure_distance([other_scale], example)


def test_autocorrelation_is_one_at_lag_zero_and_finds_the_period():
    stripes = np.tile(np.sin(np.arange(64) * 2 * np.pi / 8)[None, :], (64, 1))
    correlation = autocorrelation(stripes, 16)
    centre = 16
    assert correlation[centre, centre] == pytest.approx(1)
    assert correlation[centre, centre + 8] > 0.8 and correlation[centre, centre + 4] < -0.8


def test_seam_is_one_for_a_tiling_sample_and_large_for_one_that_does_not_tile():
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    periodic = np.tile(tile, (4, 4, 1))  # 128 px, a tile of the 32 px period: every line the same
    assert seam_score([periodic], 32) == pytest.approx(1.0, abs=0.05)
    ramp = np.repeat(np.linspace(0, 255, 128)[:, None], 128, axis=1)
    smooth = np.stack([ramp, ramp.T, ramp], axis=-1).astype(np.uint8)
    assert seam_score([smooth], 32) > 20
    assert seam_score([smooth[:100, :100]], 32) is None  # no whole periods: no phase to compare


def test_blobs_beyond_the_range_are_counted_but_specks_and_thin_lines_are_not():
    image = np.full((64, 64, 3), 120, np.uint8)
    image[::7, ::5] = 255  # scattered specks: not blobs
    image[40, :] = 0  # a thin dark crack: not a blob
    assert blob_share(image, dark=60 / 255, light=200 / 255) == 0
    image[10:20, 30:40] = 40  # a 10x10 droplet, dark but not black
    assert blob_share(image, dark=60 / 255, light=200 / 255) == pytest.approx(100 / 64 ** 2)
    assert blob_share(image, dark=30 / 255, light=200 / 255) == 0  # within the range: an ordinary dark patch


def test_blob_share_counts_only_what_the_example_does_not_have_itself():
    rng = np.random.default_rng(0)
    example = rng.integers(60, 200, (64, 64, 3)).astype(np.uint8)
    clean, blobbed = example.copy(), example.copy()
    blobbed[10:20, 30:40] = 255  # a 10x10 white blob, far brighter than anything in the example
    assert excess_blob_share([clean, clean], example) == 0
    assert excess_blob_share([clean, blobbed], example) == pytest.approx(100 / 64 ** 2 / 2)
    assert excess_blob_share([blobbed], blobbed) == 0  # the example's own blobs are its texture


def test_diversity_is_zero_for_identical_samples_and_about_one_for_crops_of_the_example(tiny_descriptor):
    example = load_image(TEXTURES / "pebbles.png")
    pixels = torch.from_numpy(np.asarray(example, dtype=np.float32) / 255).permute(2, 0, 1)
    same = pixels[None, :, :96, :96].repeat(3, 1, 1, 1)
    assert diversity(tiny_descriptor, same, example) == pytest.approx(0, abs=1e-6)
    crops = torch.stack([pixels[:, :128, :128], pixels[:, 128:, 128:], pixels[:, :128, 128:], pixels[:, 128:, :128]])
    assert 0.5 < diversity(tiny_descriptor, crops, example) < 2


def test_held_out_targets_differ_from_the_training_example():
    original = load_image(TEXTURES / "brick.png")
    trained = np.asarray(resize_to_fit(original, 256), dtype=int)
    targets = held_out_targets(original)
    assert len(targets) == 7
    same_size = np.asarray(targets[0], dtype=int)  # another filter at the training size
    assert same_size.shape == trained.shape and 0 < np.abs(same_size - trained).mean() < 5
    assert {target.size for target in targets[1:3]} == {(238, 238), (274, 274)}
