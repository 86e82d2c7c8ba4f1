"""The CPU fast path's Winograd F(4x4, 3x3) convolution (dnnlib/ops/winograd.py) against F.conv2d in float64."""

import gc

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dnnlib
from conftest import make_lpips_network, make_networks
from dnnlib.ops import upfirdn2d, winograd

pytestmark = pytest.mark.skipif(winograd._get_plugin() is None, reason="the Winograd plugin could not be built")


@pytest.fixture(autouse=True)
def small_layers_too(monkeypatch):
    """The tests' layers are far below MIN_FLOPS, the size from which the default path takes Winograd's method."""
    monkeypatch.setattr(winograd, "MIN_FLOPS", 0)

TOLERANCE = 5e-5  # of the output's largest value; measured 1e-5, the direct convolution's is 3e-6


def random_conv(batch, in_channels, out_channels, height, width, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, in_channels, height, width, generator=gen)
    w = torch.randn(out_channels, in_channels, 3, 3, generator=gen) / np.sqrt(in_channels * 9)
    return x, w


def relative_error(y, ref):
    return ((y.double() - ref).abs().max() / ref.abs().max()).item()


@pytest.mark.parametrize("shape", [(2, 32, 32, 16, 16), (3, 40, 48, 29, 7), (1, 96, 33, 9, 30), (5, 64, 64, 13, 18)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_conv3x3_matches_direct_convolution(shape, channels_last):
    x, w = random_conv(*shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        assert winograd.usable(x, w)
        y = winograd.conv3x3(x, w)
    ref = F.conv2d(x.double(), w.double(), padding=1)
    assert y.shape == ref.shape and y.dtype == torch.float32
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert relative_error(y, ref) < TOLERANCE


def test_images_do_not_depend_on_the_batch_size():
    x, w = random_conv(8, 64, 64, 16, 16, seed=4)
    with torch.inference_mode():
        batch = winograd.conv3x3(x, w)
        for size in (1, 3):
            assert torch.equal(batch, torch.cat([winograd.conv3x3(part, w) for part in x.split(size)]))


def test_input_gradient_matches_direct_convolution():
    """Projection differentiates through frozen convolutions: the input gradient is Winograd's too."""
    x, w = random_conv(2, 48, 32, 17, 14, seed=1)
    x.requires_grad_(True)
    upstream = torch.randn(2, 32, 17, 14, generator=torch.Generator().manual_seed(2))
    assert winograd.usable(x, w)
    (winograd.conv3x3(x, w, key=w) * upstream).sum().backward()
    xd = x.detach().double().requires_grad_(True)
    (F.conv2d(xd, w.double(), padding=1) * upstream.double()).sum().backward()
    assert relative_error(x.grad, xd.grad) < TOLERANCE


def test_usable_only_where_it_pays_and_is_exact_enough(monkeypatch):
    x, w = random_conv(2, 32, 32, 16, 16)
    with torch.no_grad():
        assert winograd.usable(x, w)
        with monkeypatch.context() as patch:
            patch.setattr(winograd, "MIN_FLOPS", 18 * 16 * 16 * 32 * 32 + 1)
            assert not winograd.usable(x, w)  # too small to pay
        assert not winograd.usable(x.double(), w.double())
        assert not winograd.usable(*random_conv(2, 16, 32, 16, 16))  # too few channels
        assert not winograd.usable(*random_conv(64, 32, 32, 12, 12))  # too few tiles per image, at any batch size
        with dnnlib.ops.reference_path():
            assert not winograd.usable(x, w)
        with winograd.disabled():
            assert not winograd.usable(x, w)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not winograd.usable(x, w)
    assert not winograd.usable(x, w.requires_grad_(True))  # training needs the weight gradient: F.conv2d
    with torch.no_grad():
        assert winograd.usable(x, w)


def test_cached_transform_follows_in_place_updates():
    x, w = random_conv(2, 32, 32, 16, 16, seed=3)
    param = torch.nn.Parameter(w.permute(2, 3, 1, 0).contiguous())  # TF layout, as the networks keep it
    with torch.no_grad():
        first = upfirdn2d.conv2d(x, param * 2, key=param)
        assert relative_error(first, F.conv2d(x.double(), 2 * w.double(), padding=1)) < TOLERANCE
        param.mul_(-0.5)  # an optimiser step or load_state_dict changes the parameter in place
        second = upfirdn2d.conv2d(x, param * 2, key=param)
    assert relative_error(second, F.conv2d(x.double(), -w.double(), padding=1)) < TOLERANCE
    key = id(param)
    assert key in winograd._cache._entries
    del param
    gc.collect()
    assert key not in winograd._cache._entries


def test_synthesis_default_path_uses_winograd_within_one_level_of_reference(monkeypatch):
    Gs = make_networks()[2]  # random noise strengths and biases too
    calls = []
    conv3x3 = winograd.conv3x3
    monkeypatch.setattr(winograd, "conv3x3", lambda *args, **kwargs: calls.append(args[1].shape) or
                        conv3x3(*args, **kwargs))
    z = np.random.RandomState(5).randn(8, *Gs.input_shape[1:])
    kwargs = dict(truncation_psi=0.5, randomize_noise=False,
                  output_transform=dict(func=dnnlib.tflib.convert_images_to_uint8, nchw_to_nhwc=True))
    fast = Gs.run(z, None, **kwargs)
    assert calls, "the test network's 3x3 convolutions should take the Winograd path"
    with dnnlib.ops.reference_path():
        reference = Gs.run(z, None, **kwargs)
    assert np.abs(fast.astype(int) - reference.astype(int)).max() <= 1


def test_lpips_distance_and_image_gradient_match_direct_convolutions(monkeypatch):
    """Projection's LPIPS: VGG16's frozen convolutions take Winograd's method forward and backward."""
    calls = []
    conv3x3 = winograd.conv3x3
    monkeypatch.setattr(winograd, "conv3x3", lambda *args, **kwargs: calls.append(1) or conv3x3(*args, **kwargs))
    lpips = make_lpips_network().module.requires_grad_(False)
    gen = torch.Generator().manual_seed(6)
    target = torch.rand(2, 3, 32, 32, generator=gen) * 255

    def distance_and_gradient():
        images = (torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(7)) * 255).requires_grad_(True)
        distance = lpips(images, target)
        distance.sum().backward()
        return distance.detach(), images.grad

    fast = distance_and_gradient()
    assert calls
    with winograd.disabled():
        direct = distance_and_gradient()
    assert torch.allclose(fast[0], direct[0], rtol=1e-4)
    assert relative_error(fast[1], direct[1].double()) < 1e-4


def test_without_plugin_falls_back_to_direct_convolution(monkeypatch):
    monkeypatch.setattr(winograd, "_get_plugin", lambda: None)
    x, w = random_conv(2, 32, 32, 16, 16)
    with torch.no_grad():
        assert not winograd.usable(x, w)
        y = upfirdn2d.conv2d(x, w.permute(2, 3, 1, 0))
    assert relative_error(y, F.conv2d(x.double(), w.double(), padding=1)) < 1e-5


def test_build_is_announced_only_before_the_first():
    from torch.utils import cpp_extension
    from dnnlib.ops import custom_ops
    assert custom_ops._built_before(cpp_extension, winograd._get_plugin().__name__)  # built for this module's tests
    assert not custom_ops._built_before(cpp_extension, "dnnlib_plugin_never_built")


def test_projection_steps_match_direct_convolutions(monkeypatch):
    """Projection differentiates through the generator's frozen convolutions: a few steps give the same latents."""
    from training import projector
    calls = []
    conv3x3 = winograd.conv3x3
    monkeypatch.setattr(winograd, "conv3x3", lambda *args, **kwargs: calls.append(1) or conv3x3(*args, **kwargs))
    Gs = make_networks()[2]
    targets = Gs.run(np.random.RandomState(8).randn(1, *Gs.input_shape[1:]), None, truncation_psi=0.5)

    def project():
        proj = projector.Projector(loss="mse")
        proj.num_steps, proj.dlatent_avg_samples = 3, 200
        proj.set_network(Gs)
        proj.start(targets)
        while proj.get_cur_step() < proj.num_steps:
            proj.step()
        return proj.get_dlatents()

    fast = project()
    assert calls
    with winograd.disabled():
        direct = project()
    assert np.abs(fast - direct).max() <= 1e-4 * np.abs(direct).max()
