import torch

from texnet.losses import TextureTarget
from texnet.optimize import OptimizeConfig, optimize_image, synthesize


def test_optimisation_cuts_the_loss_and_stays_in_range(tiny_descriptor):
    example = torch.rand(1, 3, 64, 64) * torch.linspace(0, 1, 64)  # a gradient-ish texture
    config = OptimizeConfig(iters=30, progress=False)
    target = TextureTarget.from_image(tiny_descriptor, example)
    result = optimize_image(lambda image: target.loss(tiny_descriptor(image)).sum(),
                            torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(0)), config)
    assert result.image.shape == (1, 3, 48, 64)
    assert 0 <= result.image.min() and result.image.max() <= 1
    assert result.loss < result.history[0] / 10
    # The reported loss is that of the returned (8-bit) image.
    assert abs(target.loss(tiny_descriptor(result.image)).item() - result.loss) <= 1e-6 * result.loss
    # Pixels are exactly 8-bit values.
    assert torch.equal(result.image * 255, (result.image * 255).round())


def test_same_seed_same_result_and_adam_also_descends(tiny_descriptor):
    example = torch.rand(1, 3, 48, 48)
    config = OptimizeConfig(iters=5, progress=False, seed=3)
    first = synthesize(tiny_descriptor, example, (32, 32), config)
    second = synthesize(tiny_descriptor, example, (32, 32), config)
    assert torch.equal(first.image, second.image)
    other = synthesize(tiny_descriptor, example, (32, 32), OptimizeConfig(iters=5, progress=False, seed=4))
    assert not torch.equal(first.image, other.image)
    adam = synthesize(tiny_descriptor, example, (32, 32), OptimizeConfig(iters=20, optimizer="adam", progress=False))
    assert adam.history[-1] < adam.history[0]
