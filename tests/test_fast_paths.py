"""The CPU fast default paths against the reference paths they stand in for.

- `dnnlib.ops.reference_path()` / `use_reference_path()`: the global switch back to the reference arithmetic.
- upfirdn2d without upsampling (impl='auto'): padding inside the depthwise convolution, memory format kept.
- upfirdn2d with large rank-one filters (ADA's warp): two 1-D passes on the batch folded into the channels.
- conv_downsample_2d with a 1x1 kernel: the filter computes only the pixels the convolution keeps.
- bias_act's reference path working in place on its own intermediates when autograd is off.
- the unfused modulated convolution (demodulation from one matrix product, channels-last on the CPU, in-place
  demodulation and noise under no_grad) and `choose_fused_modconv`.
- the synthesis network end to end, and Network.run under torch.inference_mode.
- the discriminator's blocks in channels-last on the CPU: scores and input gradients.
"""

import itertools

import numpy as np
import pytest
import torch

import dnnlib.ops
import dnnlib.tflib as tflib
from dnnlib.ops import bias_act as bias_act_module
from dnnlib.ops import upfirdn2d as upfirdn2d_module
from dnnlib.ops.bias_act import activation_funcs, bias_act
from dnnlib.ops.upfirdn2d import conv_downsample_2d, upfirdn2d
from training import networks_stylegan2
from training.networks_stylegan2 import ModulatedConv2dLayer, choose_fused_modconv, modulated_conv2d
from conftest import make_networks

pytestmark = pytest.mark.usefixtures('single_thread')

CL = torch.channels_last


@pytest.fixture(autouse=True)
def default_path():
    """Every test starts and ends on the default (fast) path; a test that leaves the switch on fails."""
    dnnlib.ops.use_reference_path(False)
    yield
    enabled = dnnlib.ops.reference_path_enabled()
    dnnlib.ops.use_reference_path(False)
    assert not enabled, 'test left the reference path switched on'


# ----------------------------------------------------------------------------
# The switch.

def test_use_reference_path_toggles():
    assert dnnlib.ops.reference_path_enabled() is False
    dnnlib.ops.use_reference_path(True)
    assert dnnlib.ops.reference_path_enabled() is True
    dnnlib.ops.use_reference_path()  # default: enable
    assert dnnlib.ops.reference_path_enabled() is True
    dnnlib.ops.use_reference_path(False)
    assert dnnlib.ops.reference_path_enabled() is False
    dnnlib.ops.use_reference_path(1)  # coerced to bool
    assert dnnlib.ops.reference_path_enabled() is True
    dnnlib.ops.use_reference_path(0)
    assert dnnlib.ops.reference_path_enabled() is False


def test_reference_path_context_restores_state():
    with dnnlib.ops.reference_path():
        assert dnnlib.ops.reference_path_enabled()
        with dnnlib.ops.reference_path(False):
            assert not dnnlib.ops.reference_path_enabled()
        assert dnnlib.ops.reference_path_enabled()
    assert not dnnlib.ops.reference_path_enabled()

    # Restores the previous state (not just False) ...
    dnnlib.ops.use_reference_path(True)
    with dnnlib.ops.reference_path(False):
        assert not dnnlib.ops.reference_path_enabled()
    assert dnnlib.ops.reference_path_enabled()
    dnnlib.ops.use_reference_path(False)

    # ... also when the block raises.
    with pytest.raises(ZeroDivisionError):
        with dnnlib.ops.reference_path():
            assert dnnlib.ops.reference_path_enabled()
            1 / 0
    assert not dnnlib.ops.reference_path_enabled()
    dnnlib.ops.use_reference_path(True)
    with pytest.raises(KeyError):
        with dnnlib.ops.reference_path(False):
            raise KeyError('x')
    assert dnnlib.ops.reference_path_enabled()
    dnnlib.ops.use_reference_path(False)


# ----------------------------------------------------------------------------
# upfirdn2d without upsampling.

def _filters():
    gen = torch.Generator().manual_seed(1)
    taps = torch.tensor([1., 3., 3., 1.])
    return {
        'sep4': torch.outer(taps, taps) / 64,
        'rand3x5': torch.randn([3, 5], generator=gen),
        '1x1': torch.tensor([[1.7]]),
    }


FILTERS = _filters()
SHAPES = [(2, 1, 9, 11), (1, 3, 8, 8), (3, 8, 7, 12)]
DOWNS = [1, 2, (1, 2)]
PADDINGS = [0, 2, (1, 2), (0, 1, 0, 1), (1, 2, 0, 3), (3, 1, 1, 3), (-1, -1, -1, -1), (2, -1, -2, 1), (-2, 0, 1, -1)]


def _upfirdn2d_cases(dtype, shape):
    gen = torch.Generator().manual_seed(2 * SHAPES.index(shape) + (dtype == torch.float64))  # deterministic
    x = torch.randn(shape, generator=gen, dtype=dtype)
    for (name, f), down, padding, flip in itertools.product(FILTERS.items(), DOWNS, PADDINGS, (False, True)):
        try:
            ref = upfirdn2d(x, f, down=down, padding=padding, flip_filter=flip, impl='ref')
        except AssertionError:  # empty output for this combination
            continue
        yield x, f, dict(down=down, padding=padding, flip_filter=flip), ref, name


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('shape', SHAPES)
def test_upfirdn2d_auto_equals_ref_exactly(dtype, shape):
    count = 0
    for x, f, kwargs, ref, name in _upfirdn2d_cases(dtype, shape):
        got = upfirdn2d(x, f, impl='auto', **kwargs)
        assert got.dtype == dtype and got.shape == ref.shape, (name, kwargs)
        assert torch.equal(got, ref), (name, kwargs, (got - ref).abs().max().item())
        assert got.is_contiguous(), (name, kwargs)  # NCHW in, NCHW out
        # gain goes through the same filter scaling on both paths.
        assert torch.equal(upfirdn2d(x, f, gain=3, impl='auto', **kwargs),
                           upfirdn2d(x, f, gain=3, impl='ref', **kwargs)), (name, kwargs)
        count += 1
    assert count >= 100


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('shape', SHAPES[1:])  # C > 1 and H, W > 1: channels-last is a distinct layout
def test_upfirdn2d_auto_keeps_channels_last(dtype, shape):
    for x, f, kwargs, ref, name in _upfirdn2d_cases(dtype, shape):
        xc = x.contiguous(memory_format=CL)
        got = upfirdn2d(xc, f, impl='auto', **kwargs)
        assert got.is_contiguous(memory_format=CL) and not got.is_contiguous(), (name, kwargs, got.stride())
        assert torch.equal(xc, x)  # input untouched
        if dtype == torch.float32:
            assert torch.equal(got, ref), (name, kwargs, (got - ref).abs().max().item())
        else:
            # NOT exact in float64: PyTorch's float64 depthwise conv2d on a channels-last tensor (oneDNN does not
            # take float64) sums the taps in another order than on NCHW: differences of a few ulp (~4e-15 for
            # values ~1) for multi-tap filters. Reported; NCHW float64 above is exact.
            torch.testing.assert_close(got, ref, rtol=1e-13, atol=1e-13, msg=lambda m: f'{name} {kwargs}: {m}')
            if name == '1x1':  # one tap: no summation order to differ
                assert torch.equal(got, ref), (name, kwargs)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('memory_format', [torch.contiguous_format, CL])
def test_upfirdn2d_auto_gradients_equal_ref(dtype, memory_format):
    gen = torch.Generator().manual_seed(3)
    x0 = torch.randn([2, 3, 8, 9], generator=gen, dtype=dtype).contiguous(memory_format=memory_format)
    for (name, f), down, padding, flip in itertools.product(FILTERS.items(), DOWNS, PADDINGS[::2], (False, True)):
        kwargs = dict(down=down, padding=padding, flip_filter=flip)
        grads = []
        for impl in ('auto', 'ref'):
            x = x0.detach().clone(memory_format=memory_format).requires_grad_(True)
            y = upfirdn2d(x, f, impl=impl, **kwargs)
            dy = torch.linspace(-1, 1, y.numel(), dtype=dtype).reshape(y.shape)
            (y * dy).sum().backward()
            grads.append(x.grad)
        torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-6, msg=lambda m: f'{name} {kwargs}: {m}')


def test_upfirdn2d_gradient_wrt_filter_equals_ref():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn([2, 3, 8, 8], generator=gen, dtype=torch.float64)
    grads = []
    for impl in ('auto', 'ref'):
        f = FILTERS['rand3x5'].double().clone().requires_grad_(True)
        upfirdn2d(x, f, down=2, padding=(1, 2, 0, 3), impl=impl).square().sum().backward()
        grads.append(f.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-12, atol=1e-12)


def _separable_filters():
    gen = torch.Generator().manual_seed(5)
    k12, k8, k10 = (torch.rand([n], generator=gen, dtype=torch.float64) + 0.1 for n in (12, 8, 10))
    return {'sym12': torch.outer(k12, k12) / k12.sum() ** 2, 'outer8x10': torch.outer(k8, k10)}


SEPARABLE = _separable_filters()


@pytest.mark.parametrize('dtype, tol', [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize('memory_format', [torch.contiguous_format, CL])
def test_upfirdn2d_separable_filters_match_ref(dtype, tol, memory_format):
    """Rank-one filters of 8 or more taps a side run as two 1-D passes: the reference's values up to rounding,
    its gradients, and the input's memory format, for up- and down-sampling, padding, cropping and flipping."""
    gen = torch.Generator().manual_seed(6)
    x0 = torch.randn([2, 3, 13, 11], generator=gen, dtype=dtype).contiguous(memory_format=memory_format)
    cases = itertools.product(SEPARABLE.items(), [1, 2, (2, 1)], [1, 2, (1, 2)],
                              [0, (11, 0), (6, 5), (5, 6, 2, 9), (-1, 12, 3, -2)], (False, True))
    count = 0
    for (name, f), up, down, padding, flip in cases:
        kwargs = dict(up=up, down=down, padding=padding, flip_filter=flip, gain=2)
        try:
            ref = upfirdn2d(x0, f.to(dtype), impl='ref', **kwargs)
        except AssertionError:  # empty output for this combination
            continue
        outputs, grads = [], []
        for impl in ('auto', 'ref'):
            x = x0.detach().clone(memory_format=memory_format).requires_grad_(True)
            y = upfirdn2d(x, f.to(dtype), impl=impl, **kwargs)
            (y * torch.linspace(-1, 1, y.numel(), dtype=dtype).reshape(y.shape)).sum().backward()
            outputs.append(y)
            grads.append(x.grad)
        got = outputs[0]
        assert got.shape == ref.shape and got.dtype == dtype, (name, kwargs)
        assert got.is_contiguous(memory_format=memory_format), (name, kwargs, got.stride())
        torch.testing.assert_close(got, ref, rtol=tol, atol=tol, msg=lambda m: f'{name} {kwargs}: {m}')
        torch.testing.assert_close(grads[0], grads[1], rtol=tol, atol=tol, msg=lambda m: f'{name} {kwargs}: {m}')
        count += 1
    assert count >= 100


def test_upfirdn2d_separable_only_for_large_rank_one_filters():
    factors = upfirdn2d_module._separable_factors
    column, row = factors(SEPARABLE['outer8x10'])
    assert column.shape == (8, 1) and row.shape == (1, 10)
    torch.testing.assert_close(column * row, SEPARABLE['outer8x10'])
    gen = torch.Generator().manual_seed(7)
    assert factors(torch.rand([12, 12], generator=gen)) is None  # not rank one
    assert factors(FILTERS['sep4']) is None  # rank one but small: the 2-D pass is as fast
    assert factors(SEPARABLE['sym12'].clone().requires_grad_(True)) is None  # gradient wrt the filter: reference
    x = torch.randn([1, 2, 16, 16])
    with dnnlib.ops.reference_path():  # the switch turns it off like every fast path
        assert torch.equal(upfirdn2d(x, SEPARABLE['sym12'], up=2), upfirdn2d(x, SEPARABLE['sym12'], up=2, impl='ref'))


@pytest.mark.parametrize('memory_format', [torch.contiguous_format, CL])
@pytest.mark.parametrize('groups', [1, 2])
def test_conv_downsample_2d_1x1_filters_only_the_kept_pixels(monkeypatch, memory_format, groups):
    """A 1x1 convolution with downsampling (the resnet D's skip) filters at stride 2 and convolves the smaller image:
    the reference's values and gradients (the full-resolution filter, then a stride-2 convolution)."""
    downs = []

    def recording_upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl='auto'):
        downs.append(down)
        return upfirdn2d(x, f, up, down, padding, flip_filter, gain, impl)

    monkeypatch.setattr(upfirdn2d_module, 'upfirdn2d', recording_upfirdn2d)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(3, 8, 16, 16, generator=gen).contiguous(memory_format=memory_format).requires_grad_(True)
    w = torch.randn(1, 1, 8 // groups, 6, generator=gen).requires_grad_(True)
    outputs = {}
    for impl in ('auto', 'ref'):
        y = conv_downsample_2d(x, w, k=[1, 3, 3, 1], impl=impl)
        outputs[impl] = (y, *torch.autograd.grad((y * torch.arange(y.numel()).reshape(y.shape).sin()).sum(), (x, w)))
    assert outputs['auto'][0].shape == (3, 6, 8, 8) and downs == [2, 1]  # auto: filter at stride 2; ref: at 1
    for fast, ref in zip(outputs['auto'], outputs['ref']):
        torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)
    with dnnlib.ops.reference_path():  # the switch restores the original order of operations
        assert torch.equal(conv_downsample_2d(x, w, k=[1, 3, 3, 1]), outputs['ref'][0])


def test_upfirdn2d_reference_path_dispatch(monkeypatch):
    calls = []

    def fast_path(*args, **kwargs):
        calls.append(args)
        raise RuntimeError('fast path called')

    monkeypatch.setattr(upfirdn2d_module, '_upfirdn2d_padded_in_conv', fast_path)
    x = torch.randn([1, 2, 6, 6])
    f = FILTERS['sep4']
    ref = upfirdn2d(x, f, down=2, padding=1, impl='ref')
    with dnnlib.ops.reference_path():
        assert torch.equal(upfirdn2d(x, f, down=2, padding=1), ref)  # impl='auto' by default
        assert torch.equal(upfirdn2d(x, f, down=2, padding=1, impl='auto'), ref)
    assert calls == []
    with pytest.raises(RuntimeError, match='fast path called'):
        upfirdn2d(x, f, down=2, padding=1, impl='auto')
    assert len(calls) == 1
    upfirdn2d(x, f, down=2, padding=1, impl='ref')  # 'ref' never takes it
    upfirdn2d(x, f, up=2, padding=1, impl='auto')  # nor does upsampling
    assert len(calls) == 1
    with dnnlib.ops.reference_path(False):
        with pytest.raises(RuntimeError, match='fast path called'):
            upfirdn2d(x, f, impl='auto')


# ----------------------------------------------------------------------------
# bias_act in place under no_grad / inference_mode.

BIAS_ACT_CASES = list(itertools.product(activation_funcs, (False, True), (None, 1, 0.7), (None, 0.5)))


@pytest.mark.parametrize('mode', ['no_grad', 'inference_mode'])
def test_bias_act_without_autograd_equals_out_of_place(mode):
    gen = torch.Generator().manual_seed(5)
    ctx = torch.no_grad if mode == 'no_grad' else torch.inference_mode
    for dtype in (torch.float32, torch.float64):
        for act, with_bias, gain, clamp in BIAS_ACT_CASES:
            for shape, dim in (([3, 4, 5, 6], 1), ([6, 4], 1), ([4, 5, 7], 2)):
                x = torch.randn(shape, generator=gen, dtype=dtype) * 2
                b = torch.randn([shape[dim]], generator=gen, dtype=dtype) if with_bias else None
                x_copy, b_copy = x.clone(), None if b is None else b.clone()
                assert torch.is_grad_enabled()
                expected = bias_act(x, b, dim=dim, act=act, gain=gain, clamp=clamp)
                with ctx():
                    got = bias_act(x, b, dim=dim, act=act, gain=gain, clamp=clamp)
                case = (mode, dtype, act, with_bias, gain, clamp, shape)
                assert torch.equal(got, expected), case
                assert torch.equal(x, x_copy), case  # the caller's x is never written
                assert b is None or torch.equal(b, b_copy), case
                # The ref path explicitly (what 'auto' takes on the CPU).
                with ctx():
                    got_ref = bias_act(x, b, dim=dim, act=act, gain=gain, clamp=clamp, impl='ref')
                assert torch.equal(got_ref, expected) and torch.equal(x, x_copy), case


def test_bias_act_without_autograd_never_writes_input_or_aliases_it():
    """The cases where no fresh tensor exists before the activation: linear without bias."""
    x = torch.randn([2, 3, 4, 4]) * 3
    x_copy = x.clone()
    for mode in (torch.no_grad, torch.inference_mode):
        with mode():
            y_gain = bias_act(x, None, act='linear', gain=2.5)
            y_clamp = bias_act(x, None, act='linear', clamp=0.5)
            y_both = bias_act(x, None, act='linear', gain=2.5, clamp=1.0)
            y_relu = bias_act(x, None, act='relu', gain=1)
            y_lrelu = bias_act(x, None, act='lrelu')
        assert torch.equal(x, x_copy)
        assert torch.equal(y_gain, x_copy * 2.5)
        assert torch.equal(y_clamp, x_copy.clamp(-0.5, 0.5))
        assert torch.equal(y_both, (x_copy * 2.5).clamp(-1, 1))
        assert torch.equal(y_relu, torch.relu(x_copy))
        assert torch.equal(y_lrelu, torch.nn.functional.leaky_relu(x_copy, 0.2) * np.sqrt(2))
        for y in (y_gain, y_clamp, y_both, y_relu, y_lrelu):
            assert y.data_ptr() != x.data_ptr()
    # The identity case may return x itself; then it must still equal x.
    with torch.no_grad():
        y = bias_act(x, None, act='linear', gain=1)
    assert torch.equal(y, x_copy) and torch.equal(x, x_copy)


def test_bias_act_with_autograd_still_differentiates():
    gen = torch.Generator().manual_seed(6)
    x = torch.randn([3, 4, 5], generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn([4], generator=gen, dtype=torch.float64, requires_grad=True)
    y = bias_act(x, b, act='lrelu', alpha=0.3, gain=1.5)
    assert y.requires_grad
    dy = torch.randn(y.shape, generator=gen, dtype=torch.float64)
    (y * dy).sum().backward()
    v = (x + b[:, None]).detach()
    slope = torch.where(v > 0, torch.ones_like(v), torch.full_like(v, 0.3))  # float64 slopes
    expected_dx = dy * 1.5 * slope
    torch.testing.assert_close(x.grad, expected_dx, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(b.grad, expected_dx.sum(dim=[0, 2]), rtol=1e-12, atol=1e-12)
    # Every activation, bias and clamp: backward runs and leaves x untouched.
    for act, with_bias, gain, clamp in BIAS_ACT_CASES:
        x = torch.randn([2, 3, 4], generator=gen, requires_grad=True)
        x_copy = x.detach().clone()
        b = torch.randn([3], generator=gen, requires_grad=True) if with_bias else None
        y = bias_act(x, b, act=act, gain=gain, clamp=clamp)
        y.sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all(), (act, with_bias, gain, clamp)
        assert torch.equal(x.detach(), x_copy)


# ----------------------------------------------------------------------------
# modulated_conv2d.

def _modconv_inputs(dtype, kernel, batch=3, in_c=4, out_c=5, size=6, seed=7):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn([batch, in_c, size, size], generator=gen, dtype=dtype)
    weight = torch.randn([kernel, kernel, in_c, out_c], generator=gen, dtype=dtype) / np.sqrt(kernel * kernel * in_c)
    styles = torch.rand([batch, in_c], generator=gen, dtype=dtype) * 2 + 0.1
    return x, weight, styles  # float64 weights and styles with float64 x, for a 1e-10 comparison


MODCONV_CASES = list(itertools.product((True, False), (False, True), (3, 1)))  # demodulate, up, kernel


@pytest.mark.parametrize('dtype, rtol', [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_modulated_conv2d_fused_and_unfused_agree(dtype, rtol):
    for demodulate, up, kernel in MODCONV_CASES:
        x, weight, styles = _modconv_inputs(dtype, kernel)
        kwargs = dict(demodulate=demodulate, up=up, resample_kernel=[1, 3, 3, 1])
        fused = modulated_conv2d(x, weight, styles, fused_modconv=True, **kwargs)
        unfused = modulated_conv2d(x, weight, styles, fused_modconv=False, **kwargs)
        assert fused.shape == unfused.shape == (3, 5) + ((12, 12) if up else (6, 6))
        assert fused.dtype == unfused.dtype == dtype
        scale = fused.abs().max().item()
        assert (fused - unfused).abs().max().item() <= rtol * scale, (demodulate, up, kernel)
        # The definition: per-sample weights w * s, normalised per output channel.
        for i in range(x.shape[0]):
            w = weight * styles[i][None, None, :, None]
            if demodulate:
                w = w / w.square().sum(dim=[0, 1, 2], keepdim=True).add(1e-8).sqrt()
            one = modulated_conv2d(x[i:i + 1], w, torch.ones_like(styles[i:i + 1]), demodulate=False,
                                   fused_modconv=True, **{k: v for k, v in kwargs.items() if k != 'demodulate'})
            assert (one[0] - unfused[i]).abs().max().item() <= rtol * scale, (demodulate, up, kernel, i)


def test_modulated_conv2d_unfused_demodulation_matches_original_formula():
    """d = rsqrt(s^2 @ sum_kk w^2 + 1e-8) equals the original's sum over [N, k, k, I, O] in float64."""
    x, weight, styles = _modconv_inputs(torch.float64, 3)
    ww = weight[None] * styles[:, None, None, :, None]
    d = torch.rsqrt(ww.square().sum(dim=[1, 2, 3]) + 1e-8)
    expected = modulated_conv2d(x, weight, styles, demodulate=False, fused_modconv=False) * d[:, :, None, None]
    got = modulated_conv2d(x, weight, styles, demodulate=True, fused_modconv=False)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('mode', ['no_grad', 'inference_mode'])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_modulated_conv2d_unfused_without_autograd_equals_with(mode, dtype):
    ctx = torch.no_grad if mode == 'no_grad' else torch.inference_mode
    for demodulate, up, kernel in MODCONV_CASES:
        for fused in (False, True):
            x, weight, styles = _modconv_inputs(dtype, kernel)
            x_copy = x.clone()
            kwargs = dict(demodulate=demodulate, up=up, resample_kernel=[1, 3, 3, 1], fused_modconv=fused)
            expected = modulated_conv2d(x, weight, styles, **kwargs)
            with ctx():
                got = modulated_conv2d(x, weight, styles, **kwargs)
            assert torch.equal(got, expected), (demodulate, up, kernel, fused)
            assert torch.equal(x, x_copy)


def test_modulated_conv2d_unfused_memory_format():
    for demodulate, up, kernel in MODCONV_CASES:
        x, weight, styles = _modconv_inputs(torch.float32, kernel)
        kwargs = dict(demodulate=demodulate, up=up, resample_kernel=[1, 3, 3, 1])
        for grad in (True, False):
            with torch.set_grad_enabled(grad):
                fast = modulated_conv2d(x, weight, styles, fused_modconv=False, **kwargs)
                with dnnlib.ops.reference_path():
                    ref = modulated_conv2d(x, weight, styles, fused_modconv=False, **kwargs)
            case = (demodulate, up, kernel, grad)
            # Outside the reference path on the CPU: channels-last; inside it: NCHW, as the original.
            assert fast.is_contiguous(memory_format=CL) and not fast.is_contiguous(), case
            assert ref.is_contiguous(), case
            torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())
            # The fused one is NCHW either way.
            assert modulated_conv2d(x, weight, styles, fused_modconv=True, **kwargs).is_contiguous(), case


def test_modulated_conv2d_layer_without_autograd_equals_with():
    """In-place demodulation and noise under no_grad: same values, inputs (x, noise) untouched."""
    torch.manual_seed(8)
    for up, fused in itertools.product((False, True), (False, True)):
        layer = ModulatedConv2dLayer(4, 5, 3, 8, up=up, fused_modconv=fused, conv_clamp=2.0)
        with torch.no_grad():
            for p in (layer.mod_bias, layer.noise_strength, layer.bias):
                p.normal_()
        x = torch.randn([2, 4, 6, 6])
        dlatent = torch.randn([2, 8])
        noise = torch.randn([2, 1, 12 if up else 6, 12 if up else 6])
        copies = [t.clone() for t in (x, dlatent, noise)]
        expected = layer(x, dlatent, noise)
        assert expected.requires_grad
        for ctx in (torch.no_grad, torch.inference_mode):
            with ctx():
                got = layer(x, dlatent, noise)
            assert torch.equal(got, expected.detach()), (up, fused, ctx)
            for t, c in zip((x, dlatent, noise), copies):
                assert torch.equal(t, c), (up, fused, ctx)
        # The noise matters (so the in-place add is exercised).
        with torch.no_grad():
            assert not torch.equal(layer(x, dlatent, noise), layer(x, dlatent, torch.zeros_like(noise)))


def test_choose_fused_modconv():
    cpu, cuda = torch.device('cpu'), torch.device('cuda')
    for device in (cpu, cuda):
        for default in (True, False):
            for ref in (False, True):
                with dnnlib.ops.reference_path(ref):
                    assert choose_fused_modconv(True, default, device) is True
                    assert choose_fused_modconv(False, default, device) is False
    for default in (True, False):
        assert choose_fused_modconv(None, default, cpu) is False
        assert choose_fused_modconv(None, default, torch.device('cpu', 0)) is False
        assert choose_fused_modconv(None, default, cuda) is default
        assert choose_fused_modconv(None, default, torch.device('cuda', 0)) is default
        with dnnlib.ops.reference_path():
            assert choose_fused_modconv(None, default, cpu) is default
            assert choose_fused_modconv(None, default, cuda) is default
    assert not dnnlib.ops.reference_path_enabled()


# ----------------------------------------------------------------------------
# The synthesis network end to end.

@pytest.fixture(scope='module')
def Gs():
    # make_networks fills every zero-initialised variable (noise strengths, biases) with random values.
    return make_networks(fmap_max=32, mapping_layers=2)[2]


UINT8 = dict(func=tflib.convert_images_to_uint8, nchw_to_nhwc=True)


def test_synthesis_default_path_matches_reference_path(Gs):
    z = np.random.RandomState(10).randn(4, 32)
    kwargs = dict(truncation_psi=0.7, randomize_noise=False)
    fast = Gs.run(z, None, **kwargs)
    fast_u8 = Gs.run(z, None, output_transform=UINT8, **kwargs)
    with dnnlib.ops.reference_path():
        ref = Gs.run(z, None, **kwargs)
        ref_u8 = Gs.run(z, None, output_transform=UINT8, **kwargs)
    assert not dnnlib.ops.reference_path_enabled()
    assert fast.shape == ref.shape == (4, 3, 32, 32) and fast.dtype == np.float32
    assert fast_u8.shape == ref_u8.shape == (4, 32, 32, 3) and fast_u8.dtype == np.uint8
    assert np.abs(fast - ref).max() <= 1e-4
    assert np.abs(fast_u8.astype(int) - ref_u8.astype(int)).max() <= 1
    assert fast.std() > 1e-3  # not a degenerate image
    # On the CPU the reference path is the fused original; the default path is the unfused one.
    assert np.array_equal(ref, Gs.run(z, None, fused_modconv=True, **kwargs))
    assert np.array_equal(fast, Gs.run(z, None, fused_modconv=False, **kwargs))


@pytest.mark.skipif(dnnlib.ops.compile_problem(torch.device('cpu')) is not None,
                    reason='torch.compile needs a C++ compiler')
def test_compiled_synthesis_matches_eager(Gs, monkeypatch):
    """--compile: the same images through torch.compile, for runs without autograd only."""
    import torch._dynamo.utils
    compiled_calls = []
    compile_fn = torch.compile
    monkeypatch.setattr(torch, 'compile', lambda fn, **kw: compiled_calls.append(fn) or compile_fn(fn, **kw))
    networks_stylegan2.compiled_run_blocks.cache_clear()
    z = np.random.RandomState(12).randn(4, 32)
    kwargs = dict(truncation_psi=0.7, randomize_noise=False)
    eager = Gs.run(z, None, **kwargs)
    graphs = torch._dynamo.utils.counters['stats']['unique_graphs']
    with dnnlib.ops.compiling():
        compiled = Gs.run(z, None, **kwargs)
        w = torch.as_tensor(Gs.components.mapping.run(z, None)).requires_grad_(True)
        Gs.components.synthesis.get_output_for(w, randomize_noise=False).sum().backward()  # with autograd: eager
    assert not dnnlib.ops.compiling_enabled()
    assert compiled_calls == [networks_stylegan2.SynthesisNetwork.run_blocks]
    assert torch._dynamo.utils.counters['stats']['unique_graphs'] == graphs + 1
    assert np.abs(compiled - eager).max() <= 1e-5 and w.grad is not None
    networks_stylegan2.compiled_run_blocks.cache_clear()


@pytest.mark.parametrize('architecture', ['skip', 'orig', 'resnet'])
def test_synthesis_default_path_outputs_nchw(Gs, architecture):
    if architecture != 'skip':  # 'orig' and 'resnet' output the last ToRGB directly (channels-last on the CPU)
        Gs = make_networks(fmap_max=32, mapping_layers=2, architecture=architecture)[2]
    z = np.random.RandomState(11).randn(2, 32)
    w = torch.as_tensor(Gs.components.mapping.run(z, None))
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            y = Gs.components.synthesis.get_output_for(w, randomize_noise=False)
            with dnnlib.ops.reference_path():
                y_ref = Gs.components.synthesis.get_output_for(w, randomize_noise=False)
        assert y.shape == (2, 3, 32, 32) and y.is_contiguous(), (architecture, grad, y.stride())
        assert (y - y_ref).abs().max().item() <= 1e-4, architecture
    out = Gs.run(z, None, randomize_noise=False)
    assert isinstance(out, np.ndarray) and out.flags.c_contiguous and out.shape == (2, 3, 32, 32)


@pytest.mark.parametrize('architecture', ['resnet', 'skip', 'orig'])
def test_discriminator_default_path_matches_reference_path(architecture):
    """D's blocks run channels-last on the CPU (its depthwise FIR filters are several times faster so): same
    scores and same input gradients (R1's) as the reference path's NCHW, to float rounding."""
    _G, D, _Gs = make_networks(fmap_max=32, architecture=architecture)
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    layouts = {}  # block layer -> channels-last output? (the 4x4 epilogue follows minibatch stddev's layout)
    hooks = [m.register_forward_hook(lambda _m, _i, out, name=name: layouts.__setitem__(
             name, out.is_contiguous(memory_format=CL))) for name, m in D.module.named_modules()
             if m.__class__.__name__ == 'Conv2dLayer' and not name.startswith('4x4')]
    results = {}
    for reference in (False, True):
        with dnnlib.ops.reference_path(reference):
            x = images.clone().requires_grad_(True)
            scores = D.module(x, None)
            results[reference] = scores, torch.autograd.grad(scores.sum(), x)[0]
        assert len(layouts) >= 6 and all(layouts.values()) != reference, (architecture, reference, layouts)
    for hook in hooks:
        hook.remove()
    torch.testing.assert_close(results[False][0], results[True][0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(results[False][1], results[True][1], rtol=1e-4, atol=1e-6)
    assert results[False][1].abs().max() > 0


def test_synthesis_batch_size_does_not_change_images(Gs):
    z = np.random.RandomState(12).randn(4, 32)
    kwargs = dict(truncation_psi=0.7, randomize_noise=False, output_transform=UINT8)
    batch4 = Gs.run(z, None, **kwargs)
    for i in range(4):
        one = Gs.run(z[i:i + 1], None, **kwargs)
        assert np.abs(one[0].astype(int) - batch4[i].astype(int)).max() <= 1, i
    by_two = Gs.run(z, None, minibatch_size=2, **kwargs)
    assert np.abs(by_two.astype(int) - batch4.astype(int)).max() <= 1


def test_synthesis_explicit_fused_modconv(Gs):
    z = np.random.RandomState(13).randn(2, 32)
    fused = Gs.run(z, None, truncation_psi=0.7, randomize_noise=False, fused_modconv=True, output_transform=UINT8)
    default = Gs.run(z, None, truncation_psi=0.7, randomize_noise=False, output_transform=UINT8)
    assert fused.shape == (2, 32, 32, 3) and fused.dtype == np.uint8
    assert np.abs(fused.astype(int) - default.astype(int)).max() <= 1
    # Randomised noise through the in-place add runs too.
    noisy = Gs.run(z, None, truncation_psi=0.7, randomize_noise=True)
    assert np.isfinite(noisy).all()


def test_run_returns_numpy_and_autograd_works_afterwards(Gs):
    z = np.random.RandomState(14).randn(2, 32)
    out = Gs.run(z, None, randomize_noise=False)
    assert type(out) is np.ndarray and out.dtype == np.float32
    out[...] = 0  # an ordinary, writable array
    images, dlatents = Gs.run(z, None, randomize_noise=False, return_dlatents=True)
    assert type(images) is np.ndarray and type(dlatents) is np.ndarray

    # After run() (inference mode), the same modules still differentiate: w.r.t. a latent ...
    synthesis = Gs.components.synthesis
    w = torch.as_tensor(dlatents).clone().requires_grad_(True)
    y = synthesis.get_output_for(w, randomize_noise=False)
    assert y.requires_grad and not torch.is_inference(y)
    y.square().sum().backward()
    assert w.grad is not None and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0
    # ... and w.r.t. the parameters, through the whole generator with the default (unfused) path.
    Gs.module.zero_grad()
    zt = torch.as_tensor(z, dtype=torch.float32).requires_grad_(True)
    Gs.get_output_for(zt, None, randomize_noise=True).mean().backward()
    assert zt.grad is not None and zt.grad.abs().sum() > 0
    weight = Gs.module.synthesis.get_submodule('8x8.Conv0_up').weight
    assert weight.grad is not None and torch.isfinite(weight.grad).all() and weight.grad.abs().sum() > 0
    Gs.module.zero_grad()
    # The gradient agrees with the reference path's (fused) one.
    w_ref = torch.as_tensor(dlatents).clone().requires_grad_(True)
    with dnnlib.ops.reference_path():
        synthesis.get_output_for(w_ref, randomize_noise=False).square().sum().backward()
    torch.testing.assert_close(w.grad, w_ref.grad, rtol=1e-3, atol=1e-4 * w_ref.grad.abs().max().item())


def test_filters_cached_during_run_work_with_autograd_later():
    """Filters first made inside Network.run (inference mode) are cached; autograd must be able to save them later.
    StyleGAN1's blur hands the cached filter itself to the convolution."""
    from dnnlib.ops.upfirdn2d import _filter_cache
    from dnnlib.tflib.network import Network
    _filter_cache.clear()
    torch.manual_seed(0)
    Gs = Network("Gs", func_name="training.networks_stylegan.G_style", resolution=16, fmap_base=64, fmap_max=16,
                 mapping_layers=2, latent_size=16, dlatent_size=16)
    z = np.random.RandomState(0).randn(1, 16)
    Gs.run(z, None)
    zt = torch.as_tensor(z, dtype=torch.float32).requires_grad_(True)
    Gs.get_output_for(zt, None).sum().backward()
    assert zt.grad is not None and torch.isfinite(zt.grad).all()
