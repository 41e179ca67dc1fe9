import pytest
import torch

from texnet.losses import SpectrumTarget, TextureTarget, content_loss, gram_matrix, total_variation
from texnet.training import colour_target


def test_gram_matrix_matches_hand_computation():
    # One sample, 2 channels, 1x2 positions: F = [[1, 2], [3, 4]].
    features = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 1, 2)
    expected = torch.tensor([[1 + 4, 3 + 8], [3 + 8, 9 + 16]]) / (2 * 1 * 2)
    assert torch.allclose(gram_matrix(features)[0], expected)


def test_gram_matrix_is_batched_and_size_normalised():
    features = torch.rand(3, 4, 5, 6)
    grams = gram_matrix(features)
    assert grams.shape == (3, 4, 4)
    assert torch.allclose(grams[1], gram_matrix(features[1:2])[0])
    # Tiling a feature map 2x2 keeps its Gram matrix: the normalisation is per position.
    tiled = features[:1].repeat(1, 1, 2, 2)
    assert torch.allclose(gram_matrix(tiled), grams[:1], atol=1e-6)


class FixedDescriptor:
    """Stands in for VGG: its 'features' are the input itself, so losses are hand-checkable."""
    layers = ("a", "b")

    def __call__(self, image):
        return {"a": image, "b": 2 * image}


def test_texture_loss_is_weighted_sum_of_squared_frobenius_distances():
    example = torch.zeros(1, 1, 1, 2)
    target = TextureTarget.from_image(FixedDescriptor(), example, {"a": 1.0, "b": 0.5})
    image = torch.tensor([[[[1.0, 1.0]]], [[[0.0, 0.0]]]])
    # Gram of [1, 1] with C*H*W = 2 is [[1]]; for layer b (features 2, 2) it is [[4]].
    loss = target.loss(FixedDescriptor()(image))
    assert loss.shape == (2,)
    assert loss[0].item() == pytest.approx(1.0 * 1 + 0.5 * 16)
    assert loss[1].item() == 0.0


def test_texture_target_is_computed_once_and_reusable(tiny_descriptor):
    example = torch.rand(1, 3, 64, 64)
    target = TextureTarget.from_image(tiny_descriptor, example)
    assert target.loss(tiny_descriptor(example)).item() == pytest.approx(0.0, abs=1e-8)
    other = torch.rand(2, 3, 48, 80)
    first = target.loss(tiny_descriptor(other))
    assert torch.equal(first, target.loss(tiny_descriptor(other)))
    assert (first > 0).all()


def test_content_loss_and_total_variation_values():
    a = torch.zeros(2, 1, 2, 2)
    b = torch.tensor([1.0, 3.0]).view(2, 1, 1, 1).expand(2, 1, 2, 2)
    assert content_loss(a, b).tolist() == [1.0, 9.0]
    stripes = torch.tensor([[0.0, 1.0], [0.0, 1.0]]).view(1, 1, 2, 2)
    # Horizontal differences are all 1, vertical ones 0.
    assert total_variation(stripes).item() == pytest.approx(1.0)
    assert total_variation(torch.ones(1, 3, 4, 4)).item() == 0.0


def test_colour_histogram_term_sees_a_pale_smudge_but_not_a_shuffle():
    example = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 0.5
    target = colour_target(example)
    shuffled = example.flatten(2)[..., torch.randperm(64 * 64)].view_as(example)  # same colours, other places
    smudged = example.clone()
    smudged[..., 20:40, 20:40] = 0.95  # a pale blob over a tenth of the image
    draws = torch.Generator().manual_seed(1)
    assert float(target.loss({"pixels": shuffled}, draws)) < 1e-12
    assert float(target.loss({"pixels": smudged}, draws)) > 1e-3


def test_spectrum_term_sees_a_lost_period_but_not_a_shift():
    rows = torch.arange(64.0)[:, None].expand(64, 64)
    stripes = (0.5 + 0.4 * torch.sin(2 * torch.pi * rows / 8)).expand(1, 3, 64, 64)
    target = SpectrumTarget.from_image(stripes, 64)
    noise = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    shifted = float(target.loss(stripes.roll(3, dims=-2)))
    assert shifted < 0.01 * float(target.loss(noise))
