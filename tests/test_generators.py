import pytest
import torch
from torch import nn

from texnet.errors import TexnetError
from texnet.generators import (GeneratorConfig, PyramidGenerator, RobustInstanceNorm, bf16_is_fast, parameter_count,
                               sigmoid_with_gradient_floor)
from texnet.sampling import TextureGenerator


def test_default_generator_matches_the_reference_architecture():
    net = PyramidGenerator()
    assert parameter_count(net) == 116_915  # reference pyramid.lua with K = 6 (paper notes)
    assert parameter_count(PyramidGenerator(GeneratorConfig(scales=5))) == 71_659
    assert net.to_rgb.in_channels == 48
    assert [block[0].in_channels for block in net.join_blocks] == [16, 24, 32, 40, 48]


@pytest.mark.parametrize("size", [(64, 64), (37, 101), (17, 16), (300, 5)])
def test_samples_of_any_size(size):
    model = TextureGenerator(PyramidGenerator(GeneratorConfig(norm="instance")))
    images = model.sample_tensor(2, size, seed=1)
    assert images.shape == (2, 3, *size)
    assert 0 <= images.min() and images.max() <= 1


def test_saturated_outputs_keep_a_gradient_back_into_range_only():
    x = torch.tensor([-40.0, -40.0, 0.0, 40.0, 40.0], requires_grad=True)
    output = sigmoid_with_gradient_floor(x)
    (output * torch.tensor([-1.0, 1.0, 1.0, 1.0, -1.0])).sum().backward()  # brighter, darker, -, darker, brighter
    assert torch.equal(output.detach(), torch.sigmoid(x.detach()))  # the values are the plain sigmoid's
    # Back into range: the floor (torch.sigmoid's own slope is 4e-18 at +-40). Further out: the plain slope.
    assert x.grad.tolist() == pytest.approx([-0.01, 0.0, 0.25, 0.01, 0.0])


def periodic_noise(net, size, repeat):
    noise = net.make_noise(1, size, size, torch.Generator().manual_seed(0))
    return noise, [z.repeat(1, 1, repeat, repeat) for z in noise]


@pytest.mark.parametrize("norm", ["batch", "instance", "robust"])
def test_circular_generator_is_exactly_periodic(norm):
    torch.manual_seed(0)
    net = PyramidGenerator(GeneratorConfig(norm=norm)).eval()
    noise, tiled_noise = periodic_noise(net, 64, 2)
    with torch.no_grad():
        single, tiled = net(noise), net(tiled_noise)
    # Noise repeated 2x2 gives the sample repeated 2x2: the sample tiles without a seam.
    assert torch.allclose(tiled, single.repeat(1, 1, 2, 2), atol=1e-5)


def test_wrap_around_seam_is_no_worse_than_interior_columns():
    torch.manual_seed(0)
    model = TextureGenerator(PyramidGenerator(GeneratorConfig(norm="instance")))
    image = model.sample_tensor(1, (64, 96), seed=3)[0]
    interior = (image[:, :, 1:] - image[:, :, :-1]).abs().mean(dim=(0, 1))
    seam = (image[:, :, 0] - image[:, :, -1]).abs().mean()
    assert seam <= interior.max()
    rows = (image[:, 1:, :] - image[:, :-1, :]).abs().mean(dim=(0, 2))
    assert (image[:, 0, :] - image[:, -1, :]).abs().mean() <= rows.max()


def test_zero_padding_is_not_periodic():
    torch.manual_seed(0)
    net = PyramidGenerator(GeneratorConfig(padding="zeros", norm="instance")).eval()
    noise, tiled_noise = periodic_noise(net, 64, 2)
    with torch.no_grad():
        assert not torch.allclose(net(tiled_noise), net(noise).repeat(1, 1, 2, 2), atol=1e-3)


def test_sampling_is_deterministic_per_seed_and_independent_of_batching():
    torch.manual_seed(0)
    model = TextureGenerator(PyramidGenerator(GeneratorConfig(norm="instance")))
    first = model.sample_tensor(3, (40, 40), seed=7, bf16=False)
    assert torch.equal(first, model.sample_tensor(3, (40, 40), seed=7, bf16=False))
    # Far below one 8-bit step:
    assert torch.allclose(first[1:], model.sample_tensor(2, (40, 40), seed=8, bf16=False), atol=1e-4)
    assert torch.allclose(first[2:], model.sample_tensor(1, (40, 40), seed=9, bf16=False), atol=1e-4)
    assert (first[0] - first[1]).abs().mean() > 1e-3


def test_the_pyramid_uses_the_configured_negative_slope():
    net = PyramidGenerator(GeneratorConfig(scales=3, channels=2, negative_slope=0.2))
    assert {module.negative_slope for module in net.modules() if isinstance(module, torch.nn.LeakyReLU)} == {0.2}
    with pytest.raises(TexnetError, match="negative_slope"):
        GeneratorConfig(negative_slope=-0.1).validate()


def test_bad_configs_are_refused():
    with pytest.raises(TexnetError, match="padding"):
        PyramidGenerator(GeneratorConfig(padding="mirror"))
    with pytest.raises(TexnetError, match="norm"):
        PyramidGenerator(GeneratorConfig(norm="layer"))
    with pytest.raises(TexnetError, match="count"):
        TextureGenerator(PyramidGenerator()).sample_tensor(0)


@pytest.mark.parametrize("size", [(64, 64), (45, 77)])
def test_content_generator_sees_the_photo_at_every_scale(size):
    torch.manual_seed(0)
    net = PyramidGenerator(GeneratorConfig(content_channels=3, noise_channels=0, norm="instance")).eval()
    photo = torch.rand(1, 3, *size)
    noise = net.make_noise(1, *size)
    assert [z.shape[1] for z in noise] == [0] * 6
    with torch.no_grad():
        out = net(noise, photo)
        assert out.shape == (1, 3, *size)
        assert not torch.allclose(out, net(noise, photo.flip(-1)))
    with pytest.raises(ValueError, match="content image"):
        net(noise)


def test_bf16_sampling_stays_close_to_float32_and_is_the_default_where_fast():
    model = TextureGenerator.from_pretrained("pebbles")
    exact = model.sample_tensor(1, (96, 96), seed=2, bf16=False, backend="torch")  # "auto" would take onnxruntime
    fast = model.sample_tensor(1, (96, 96), seed=2, bf16=True)
    assert fast.dtype == torch.float32
    assert (fast - exact).abs().mean() < 0.01  # about half an 8-bit step in practice
    default = model.sample_tensor(1, (96, 96), seed=2, backend="torch")
    assert torch.equal(default, fast if bf16_is_fast(torch.device("cpu")) else exact)


@pytest.mark.parametrize("flags,native", [({"avx2", "avx512f", "avx512bw"}, False), ({"avx2"}, False),
                                          ({"avx512f", "avx512_bf16"}, True), ({"amx_bf16", "amx_tile"}, True)])
def test_bfloat16_is_chosen_only_where_the_cpu_computes_it_natively(monkeypatch, flags, native):
    # PyTorch's own mkldnn check says yes for AVX-512 CPUs without BF16, which emulate it slowly.
    import texnet.runtime

    monkeypatch.setattr(texnet.runtime, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(texnet.runtime.platform, "machine", lambda: "x86_64")
    for variable in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"):  # a run limited to AVX2 must not decide
        monkeypatch.delenv(variable, raising=False)
    import texnet.generators

    monkeypatch.setattr(texnet.generators, "native_bf16_cpu", texnet.runtime.native_bf16_cpu)
    assert bf16_is_fast("cpu") is native


@pytest.mark.parametrize("variable,value,native", [("ATEN_CPU_CAPABILITY", "avx2", False),
                                                   ("ONEDNN_MAX_CPU_ISA", "AVX2", False),
                                                   ("ONEDNN_MAX_CPU_ISA", "AVX512_CORE", False),
                                                   ("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16", True),
                                                   ("ATEN_CPU_CAPABILITY", "avx512", True)])
def test_pytorch_limited_to_avx2_counts_as_a_cpu_without_native_bfloat16(monkeypatch, variable, value, native):
    import texnet.runtime

    monkeypatch.setattr(texnet.runtime, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_bf16"}))
    monkeypatch.setattr(texnet.runtime.platform, "machine", lambda: "x86_64")
    for other in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"):
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(variable, value)
    assert texnet.runtime.native_bf16_cpu() is native


def test_robust_norm_is_instance_norm_without_outliers_and_a_few_extreme_positions_cannot_turn_the_map_down():
    torch.manual_seed(0)
    robust, plain = RobustInstanceNorm(8, affine=True), nn.InstanceNorm2d(8, affine=True)
    bounded = torch.rand(2, 8, 32, 32)  # uniform: no position is 3 standard deviations out
    assert torch.allclose(robust(bounded), plain(bounded), atol=1e-3)  # up to the eps inside instance norm
    spiked = bounded.clone()
    spiked[:, :, 10:12, 10:12] += 10  # a droplet: 4 of 1,024 positions far out in every channel
    away = (slice(None), slice(None), slice(20, None))

    def kept(norm):  # the rest of the map's spread after normalising, with the spike over without it
        return (norm(spiked)[away].std() / norm(bounded)[away].std()).item()

    assert kept(plain) < 0.5 and kept(robust) > 0.9  # measured 0.42 and 0.98
    flat = torch.full((1, 8, 16, 16), 3.0) + 1e-4 * torch.randn(1, 8, 16, 16)  # spread far below eps
    assert torch.allclose(robust(flat), plain(flat), atol=1e-6)  # keeps instance norm's eps: no blow-up
