"""Tests for dnnlib.ops: bias_act, upfirdn2d and the resampling helpers.

Reference paths are checked against independent NumPy definitions written
with explicit loops, and against autograd (first and second order). CUDA
paths are checked against the reference paths when a GPU is present.
"""

import warnings

import numpy as np
import pytest
import torch

from dnnlib.ops import bias_act as bias_act_module
from dnnlib.ops import custom_ops
from dnnlib.ops import upfirdn2d as upfirdn2d_module
from dnnlib.ops.bias_act import activation_funcs, bias_act
from dnnlib.ops.upfirdn2d import (conv2d, conv_downsample_2d, downsample_2d, setup_filter, upfirdn2d,
                                  upsample_2d, upsample_conv_2d)

SQRT2 = np.sqrt(2)
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

# Direct formulas, in float64 NumPy, with the defaults of the TF original.
ACTIVATIONS = {
    #            formula(v, alpha)                                                     def_alpha def_gain
    'linear':   (lambda v, a: v,                                                       None,     1.0),
    'relu':     (lambda v, a: np.maximum(v, 0),                                        None,     SQRT2),
    'lrelu':    (lambda v, a: np.where(v > 0, v, a * v),                               0.2,      SQRT2),
    'tanh':     (lambda v, a: np.tanh(v),                                              None,     1.0),
    'sigmoid':  (lambda v, a: 1 / (1 + np.exp(-v)),                                    None,     1.0),
    'elu':      (lambda v, a: np.where(v > 0, v, np.expm1(v)),                         None,     1.0),
    'selu':     (lambda v, a: SELU_SCALE * np.where(v > 0, v, SELU_ALPHA * np.expm1(v)), None,   1.0),
    'softplus': (lambda v, a: np.log1p(np.exp(v)),                                     None,     1.0),
    'swish':    (lambda v, a: v / (1 + np.exp(-v)),                                    None,     SQRT2),
}
KINKED = ('relu', 'lrelu', 'elu', 'selu')  # Not differentiable at 0.

cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')


pytestmark = pytest.mark.usefixtures('single_thread')


def expected_bias_act(x, b, dim, act, alpha=None, gain=None, clamp=None):
    """bias_act by its definition: act(x + b, alpha) * gain, clamped."""
    formula, def_alpha, def_gain = ACTIVATIONS[act]
    v = x.detach().double().numpy()
    if b is not None:
        v = v + b.detach().double().numpy().reshape([-1 if i == dim else 1 for i in range(v.ndim)])
    y = formula(v, def_alpha if alpha is None else alpha) * (def_gain if gain is None else gain)
    if clamp is not None:
        y = np.clip(y, -clamp, clamp)
    return torch.from_numpy(y)


def away_from_zero(shape, generator, low=0.1, dtype=torch.float64):
    """Random values with |v| >= low, so kinks at 0 stay out of finite differences."""
    magnitude = low + torch.rand(shape, generator=generator, dtype=dtype)
    sign = torch.randint(0, 2, shape, generator=generator).to(dtype) * 2 - 1
    return magnitude * sign

# ----------------------------------------------------------------------------
# bias_act


def test_activation_records():
    assert set(activation_funcs) == set(ACTIVATIONS)
    for name, (_, def_alpha, def_gain) in ACTIVATIONS.items():
        spec = activation_funcs[name]
        assert spec.def_alpha == def_alpha
        assert spec.def_gain == pytest.approx(def_gain)
        assert spec.ref in ('x', 'y')
        assert spec.has_2nd_grad == (name not in ('linear', 'relu', 'lrelu'))
    assert len({spec.cuda_idx for spec in activation_funcs.values()}) == len(activation_funcs)


@pytest.mark.parametrize('act', sorted(ACTIVATIONS))
def test_bias_act_default_params(act):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn([3, 4, 5, 6], generator=gen) * 3
    b = torch.randn([4], generator=gen)
    y = bias_act(x, b, act=act, impl='ref')
    assert y.dtype == torch.float32 and y.shape == x.shape
    torch.testing.assert_close(y.double(), expected_bias_act(x + b.reshape(1, -1, 1, 1), None, 1, act),
                               rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize('act', sorted(ACTIVATIONS))
@pytest.mark.parametrize('alpha, gain, clamp', [(0.1, 3.0, None), (0.3, 0.5, 0.7), (None, None, 1.0), (None, 1, 0.0)])
def test_bias_act_custom_params(act, alpha, gain, clamp):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn([2, 3, 4], generator=gen) * 2
    b = torch.randn([3], generator=gen)
    y = bias_act(x, b, act=act, alpha=alpha, gain=gain, clamp=clamp, impl='ref')
    # Only lrelu has a shape parameter.
    expected = expected_bias_act(x + b.reshape(1, -1, 1), None, 1, act, alpha if act == 'lrelu' else None, gain, clamp)
    torch.testing.assert_close(y.double(), expected, rtol=2e-6, atol=1e-6)
    if clamp is not None:
        assert y.abs().max() <= clamp


def test_bias_act_is_exact_for_piecewise_linear():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn([4, 8, 3], generator=gen)
    b = torch.randn([8], generator=gen)
    v = x + b[None, :, None]
    assert torch.equal(bias_act(x, b, impl='ref'), v)
    assert torch.equal(bias_act(x, b, act='relu', gain=1, impl='ref'), torch.where(v > 0, v, torch.zeros_like(v)))
    assert torch.equal(bias_act(x, b, act='lrelu', impl='ref'), torch.where(v > 0, v, v * 0.2) * float(SQRT2))


@pytest.mark.parametrize('dim', [0, 1, 2, 3])
def test_bias_act_bias_dim(dim):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn([2, 3, 4, 5], generator=gen)
    b = torch.randn([x.shape[dim]], generator=gen)
    y = bias_act(x, b, dim=dim, act='lrelu', impl='ref')
    expected = expected_bias_act(x, b, dim, 'lrelu')
    torch.testing.assert_close(y.double(), expected, rtol=2e-6, atol=1e-6)


def test_bias_act_without_bias_and_bad_shapes():
    x = torch.randn([2, 3, 4])
    torch.testing.assert_close(bias_act(x, act='tanh', impl='ref').double(), expected_bias_act(x, None, 1, 'tanh'))
    with pytest.raises(AssertionError):
        bias_act(x, torch.zeros([4]), dim=1)  # Wrong length for dim 1.
    with pytest.raises(AssertionError):
        bias_act(x, torch.zeros([3, 1]))  # Not 1-D.
    with pytest.raises(KeyError):
        bias_act(x, act='nonexistent')


@pytest.mark.parametrize('act', sorted(ACTIVATIONS))
def test_bias_act_gradcheck(act):
    gen = torch.Generator().manual_seed(4)
    v = away_from_zero([2, 3, 4], gen)
    b = torch.randn([3], generator=gen, dtype=torch.float64)
    x = (v - b[None, :, None]).requires_grad_()
    b.requires_grad_()
    # Custom alpha and gain so that they are exercised in the derivatives too.
    fn = lambda x, b: bias_act(x, b, act=act, alpha=0.3, gain=1.7, impl='ref')
    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))


def test_bias_act_gradcheck_clamp():
    # Values away from the kink at 0 and from where the output reaches the clamp (|v| = 1 / 1.5).
    v = np.array([-2.0, 0.5, -0.9, 3.0, -0.4, 0.8, -0.1, 1.5, 0.2])
    x = torch.tensor(v).reshape(1, 9).requires_grad_()
    b = torch.zeros([9], dtype=torch.float64, requires_grad=True)
    fn = lambda x, b: bias_act(x, b, act='lrelu', gain=1.5, clamp=1.0, impl='ref')
    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))
    dx, = torch.autograd.grad(fn(x, b).sum(), x)
    unclamped = np.abs(np.where(v > 0, v, 0.2 * v) * 1.5) < 1.0
    np.testing.assert_allclose(dx.numpy().ravel(), np.where(unclamped, np.where(v > 0, 1.5, 0.3), 0.0), rtol=1e-12)

# ----------------------------------------------------------------------------
# upfirdn2d


def upfirdn2d_numpy(x, f, up=(1, 1), down=(1, 1), pad=(0, 0, 0, 0), flip_filter=False, gain=1.0):
    """The definition, with loops: zero insertion, pad/crop, true convolution, decimation."""
    n, c, in_h, in_w = x.shape
    fh, fw = f.shape
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, pad

    upsampled = np.zeros([n, c, in_h * upy, in_w * upx])
    for iy in range(in_h):
        for ix in range(in_w):
            upsampled[:, :, iy * upy, ix * upx] = x[:, :, iy, ix]

    padded_h, padded_w = in_h * upy + py0 + py1, in_w * upx + px0 + px1
    padded = np.zeros([n, c, padded_h, padded_w])
    for uy in range(in_h * upy):
        for ux in range(in_w * upx):
            py, px = uy + py0, ux + px0
            if 0 <= py < padded_h and 0 <= px < padded_w:
                padded[:, :, py, px] = upsampled[:, :, uy, ux]

    # Convolution: output n reads input n + (fh - 1) - t with tap t ("VALID" region).
    taps = f[::-1, ::-1] if flip_filter else f
    conv_h, conv_w = padded_h - fh + 1, padded_w - fw + 1
    conv = np.zeros([n, c, conv_h, conv_w])
    for oy in range(conv_h):
        for ox in range(conv_w):
            for ty in range(fh):
                for tx in range(fw):
                    conv[:, :, oy, ox] += taps[ty, tx] * padded[:, :, oy + fh - 1 - ty, ox + fw - 1 - tx]
    return (conv * gain)[:, :, ::downy, ::downx]


UPFIRDN_CASES = [
    # up,     down,    padding,          filter shape, flip
    (1,       1,       0,                (3, 3),       False),
    (2,       1,       (1, 2, 0, -1),    (4, 4),       False),
    (1,       2,       (2, 1, 1, 2),     (3, 2),       True),
    ((2, 3),  (1, 2),  (-1, 3, 2, -2),   (2, 5),       False),
    (3,       3,       (1, 1),           (4, 2),       False),
    (1,       1,       -1,               (1, 1),       False),
    (2,       2,       (3, 0, 1, 2),     (5, 3),       True),
]


def _parsed(up, down, padding):
    up = (up, up) if isinstance(up, int) else up
    down = (down, down) if isinstance(down, int) else down
    if isinstance(padding, int):
        padding = (padding,) * 4
    elif len(padding) == 2:
        padding = (padding[0], padding[0], padding[1], padding[1])
    return up, down, padding


@pytest.mark.parametrize('up, down, padding, fshape, flip', UPFIRDN_CASES)
def test_upfirdn2d_matches_definition(up, down, padding, fshape, flip):
    gen = torch.Generator().manual_seed(6)
    x = torch.randn([2, 3, 5, 6], generator=gen, dtype=torch.float64)
    f = torch.randn(fshape, generator=gen, dtype=torch.float64)  # Non-symmetric.
    y = upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=2.5, impl='ref')
    expected = upfirdn2d_numpy(x.numpy(), f.numpy(), *_parsed(up, down, padding), flip_filter=flip, gain=2.5)
    assert y.shape == expected.shape
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = _parsed(up, down, padding)
    assert y.shape[2] == (5 * upy + py0 + py1 - fshape[0]) // downy + 1
    assert y.shape[3] == (6 * upx + px0 + px1 - fshape[1]) // downx + 1
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)
    # float32 agrees too.
    y32 = upfirdn2d(x.float(), f.float(), up=up, down=down, padding=padding, flip_filter=flip, gain=2.5, impl='ref')
    np.testing.assert_allclose(y32.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_upfirdn2d_is_true_convolution():
    # An impulse reproduces the filter itself, unflipped; flip_filter gives it reversed.
    f = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    x = torch.zeros([1, 1, 1, 1])
    x[0, 0, 0, 0] = 1
    y = upfirdn2d(x, f, padding=(2, 2, 1, 1), impl='ref')
    assert torch.equal(y[0, 0], f)
    y = upfirdn2d(x, f, padding=(2, 2, 1, 1), flip_filter=True, impl='ref')
    assert torch.equal(y[0, 0], f.flip([0, 1]))


def test_upfirdn2d_argument_forms():
    gen = torch.Generator().manual_seed(7)
    x = torch.randn([1, 2, 4, 4], generator=gen)
    f = torch.randn([3, 3], generator=gen)
    a = upfirdn2d(x, f, up=2, down=1, padding=1, impl='ref')
    assert torch.equal(a, upfirdn2d(x, f, up=(2, 2), down=(1, 1), padding=(1, 1), impl='ref'))
    assert torch.equal(a, upfirdn2d(x, f, up=(2, 2), down=(1, 1), padding=(1, 1, 1, 1), impl='ref'))
    with pytest.raises(AssertionError):
        upfirdn2d(x, f, padding=-2, impl='ref')  # Empty output.


@pytest.mark.parametrize('up, down, padding, fshape, flip', UPFIRDN_CASES)
def test_upfirdn2d_gradient_is_upfirdn2d(up, down, padding, fshape, flip):
    """The adjoint of upfirdn2d is upfirdn2d with swapped factors, the other filter orientation, adjusted pads."""
    gen = torch.Generator().manual_seed(8)
    x = torch.randn([2, 3, 5, 6], generator=gen, dtype=torch.float64, requires_grad=True)
    f = torch.randn(fshape, generator=gen, dtype=torch.float64)
    y = upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip, impl='ref')
    dy = torch.randn(y.shape, generator=gen, dtype=torch.float64)
    dx, = torch.autograd.grad(y, x, dy)
    g_up, g_down, g_pad = upfirdn2d_module._upfirdn2d_grad_args(x.shape, f.shape, *_parsed(up, down, padding))
    dx_formula = upfirdn2d(dy, f, up=g_up, down=g_down, padding=g_pad, flip_filter=not flip, impl='ref')
    assert dx_formula.shape == x.shape
    torch.testing.assert_close(dx_formula, dx, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('up, down, padding, fshape, flip', UPFIRDN_CASES)
def test_upfirdn2d_gradcheck(up, down, padding, fshape, flip):
    gen = torch.Generator().manual_seed(9)
    x = torch.randn([1, 2, 3, 4], generator=gen, dtype=torch.float64, requires_grad=True)
    f = torch.randn(fshape, generator=gen, dtype=torch.float64, requires_grad=True)
    fn = lambda x, f: upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=0.7, impl='ref')
    assert torch.autograd.gradcheck(fn, (x, f))
    assert torch.autograd.gradgradcheck(fn, (x, f))


def test_setup_filter():
    f = setup_filter([1, 3, 3, 1])
    assert f.dtype == torch.float32 and f.shape == (4, 4)
    expected = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64
    assert np.array_equal(f.numpy(), expected.astype(np.float32))
    assert setup_filter([1, 3, 3, 1]) is f  # Cached.
    assert setup_filter(np.array([1, 3, 3, 1])) is f
    assert setup_filter([1, 3, 3, 1], dtype=torch.float64) is not f
    assert setup_filter([1, 3, 3, 1], dtype=torch.float64).dtype == torch.float64
    f2 = setup_filter([[1, 2], [3, 4]])
    assert np.allclose(f2.numpy(), np.array([[1, 2], [3, 4]]) / 10)
    assert setup_filter(torch.tensor([1.0, 2.0, 1.0])).sum().item() == pytest.approx(1)

# ----------------------------------------------------------------------------
# Resampling helpers.


def correlate_numpy(x, w, stride=1):
    """TF-style conv2d ('VALID' correlation) of NCHW x with TF-layout w [kh, kw, inC, outC], inferred groups."""
    n, c, h, wd = x.shape
    kh, kw, in_c, out_c = w.shape
    groups = c // in_c
    out_per_group = out_c // groups
    out_h, out_w = (h - kh) // stride + 1, (wd - kw) // stride + 1
    y = np.zeros([n, out_c, out_h, out_w])
    for o in range(out_c):
        g = o // out_per_group
        for ci in range(in_c):
            for ty in range(kh):
                for tx in range(kw):
                    window = x[:, g * in_c + ci, ty:ty + stride * (out_h - 1) + 1:stride,
                               tx:tx + stride * (out_w - 1) + 1:stride]
                    y[:, o] += w[ty, tx, ci, o] * window
    return y


def fir_numpy(k, scale):
    k = np.asarray(k, dtype=np.float64)
    k = np.outer(k, k) if k.ndim == 1 else k
    return k / k.sum() * scale


def test_upsample_2d_nearest_and_smooth():
    gen = torch.Generator().manual_seed(10)
    x = torch.randn([2, 3, 4, 5], generator=gen, dtype=torch.float64)
    # Default filter: nearest-neighbour upsampling.
    expected = x.numpy().repeat(2, axis=2).repeat(2, axis=3)
    np.testing.assert_allclose(upsample_2d(x, impl='ref').numpy(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(upsample_2d(x, factor=3, gain=2, impl='ref').numpy(),
                               2 * x.numpy().repeat(3, axis=2).repeat(3, axis=3), rtol=1e-12, atol=1e-12)
    # With TF pads: the definition via upfirdn2d_numpy.
    k = [1, 3, 3, 1]
    expected = upfirdn2d_numpy(x.numpy(), fir_numpy(k, 4 * 1.5), up=(2, 2), pad=(2, 1, 2, 1))
    np.testing.assert_allclose(upsample_2d(x, k, gain=1.5, impl='ref').numpy(), expected, rtol=1e-12, atol=1e-12)
    # A constant stays constant away from the border.
    y = upsample_2d(torch.ones([1, 1, 6, 6], dtype=torch.float64), k, impl='ref')
    np.testing.assert_allclose(y[0, 0, 2:-2, 2:-2].numpy(), 1.0)


def test_downsample_2d_average_and_smooth():
    gen = torch.Generator().manual_seed(11)
    x = torch.randn([2, 3, 6, 8], generator=gen, dtype=torch.float64)
    # Default filter: average pooling.
    expected = x.numpy().reshape(2, 3, 3, 2, 4, 2).mean(axis=(3, 5))
    np.testing.assert_allclose(downsample_2d(x, impl='ref').numpy(), expected, rtol=1e-12, atol=1e-12)
    k = [1, 3, 3, 1]
    expected = upfirdn2d_numpy(x.numpy(), fir_numpy(k, 0.5), down=(2, 2), pad=(1, 1, 1, 1))
    np.testing.assert_allclose(downsample_2d(x, k, gain=0.5, impl='ref').numpy(), expected, rtol=1e-12, atol=1e-12)
    assert downsample_2d(x, k, impl='ref').shape == (2, 3, 3, 4)


CONV_CASES = [
    # batch, groups, inC, outC per group, kernel, FIR taps
    (2,      1,      3,   4,               3,      [1, 3, 3, 1]),
    (2,      1,      3,   2,               1,      [1, 3, 3, 1]),
    (1,      3,      2,   2,               3,      [1, 3, 3, 1]),
    (1,      2,      2,   3,               1,      [1, 2, 1]),
    (1,      2,      1,   1,               3,      None),
]


def same_pads(taps, factor, conv_k, up):
    """Pads that upsample_2d / downsample_2d and a 'SAME' conv would apply, summed (padding once)."""
    length = factor if taps is None else len(taps)
    p = length - factor
    pad0, pad1 = ((p + 1) // 2 + factor - 1, p // 2) if up else ((p + 1) // 2, p // 2)
    return pad0 + conv_k // 2, pad1 + conv_k // 2


@pytest.mark.parametrize('batch, groups, in_c, out_per_group, conv_k, taps', CONV_CASES)
def test_upsample_conv_2d_matches_definition(batch, groups, in_c, out_per_group, conv_k, taps):
    """Padding once, zero-insert upsample, FIR with the filter * factor^2, then a 'VALID' TF conv."""
    gen = torch.Generator().manual_seed(12)
    x = torch.randn([batch, groups * in_c, 4, 5], generator=gen, dtype=torch.float64)
    w = torch.randn([conv_k, conv_k, in_c, groups * out_per_group], generator=gen, dtype=torch.float64)
    y = upsample_conv_2d(x, w, taps, gain=1.5, impl='ref')
    assert y.shape == (batch, groups * out_per_group, 8, 10)
    pad0, pad1 = same_pads(taps, 2, conv_k, up=True)
    firred = upfirdn2d_numpy(x.numpy(), fir_numpy(taps or [1, 1], 4 * 1.5), up=(2, 2), pad=(pad0, pad1, pad0, pad1))
    expected = correlate_numpy(firred, w.numpy())
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('batch, groups, in_c, out_per_group, conv_k, taps', CONV_CASES)
def test_conv_downsample_2d_matches_definition(batch, groups, in_c, out_per_group, conv_k, taps):
    """Padding once, a 'VALID' TF conv, FIR with the filter, then keep every 2nd pixel (conv first: they commute)."""
    gen = torch.Generator().manual_seed(13)
    x = torch.randn([batch, groups * in_c, 6, 8], generator=gen, dtype=torch.float64)
    w = torch.randn([conv_k, conv_k, in_c, groups * out_per_group], generator=gen, dtype=torch.float64)
    y = conv_downsample_2d(x, w, taps, gain=0.5, impl='ref')
    assert y.shape == (batch, groups * out_per_group, 3, 4)
    pad0, pad1 = same_pads(taps, 2, conv_k, up=False)
    padded = np.pad(x.numpy(), [(0, 0), (0, 0), (pad0, pad1), (pad0, pad1)])
    firred = upfirdn2d_numpy(correlate_numpy(padded, w.numpy()), fir_numpy(taps or [1, 1], 0.5))
    np.testing.assert_allclose(y.numpy(), firred[:, :, ::2, ::2], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('groups, conv_k', [(1, 1), (1, 3), (2, 3), (3, 5)])
def test_conv2d_same(groups, conv_k):
    gen = torch.Generator().manual_seed(14)
    x = torch.randn([2, groups * 2, 5, 4], generator=gen, dtype=torch.float64)
    w = torch.randn([conv_k, conv_k, 2, groups * 3], generator=gen, dtype=torch.float64)
    pad = conv_k // 2
    expected = correlate_numpy(np.pad(x.numpy(), [(0, 0), (0, 0), (pad, pad), (pad, pad)]), w.numpy())
    np.testing.assert_allclose(conv2d(x, w).numpy(), expected, rtol=1e-10, atol=1e-10)
    with pytest.raises(AssertionError):
        conv2d(x, torch.zeros([2, 2, 2, 3], dtype=torch.float64))  # Even kernel.


def test_fused_modulated_conv_layout():
    """x [1, B*I, H, W] with w [k, k, I, B*O] acts as B independent convolutions."""
    gen = torch.Generator().manual_seed(15)
    batch, in_c, out_c = 3, 2, 4
    xs = torch.randn([batch, in_c, 4, 4], generator=gen, dtype=torch.float64)
    ws = torch.randn([batch, 3, 3, in_c, out_c], generator=gen, dtype=torch.float64)
    x = xs.reshape(1, batch * in_c, 4, 4)
    w = ws.permute(1, 2, 3, 0, 4).reshape(3, 3, in_c, batch * out_c)
    for op in (upsample_conv_2d, conv_downsample_2d):
        fused = op(x, w, [1, 3, 3, 1], impl='ref')
        separate = torch.cat([op(xs[i:i + 1], ws[i], [1, 3, 3, 1], impl='ref') for i in range(batch)], dim=1)
        torch.testing.assert_close(fused, separate, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(conv2d(x, w), torch.cat([conv2d(xs[i:i + 1], ws[i]) for i in range(batch)], dim=1))


def test_helpers_gradcheck():
    gen = torch.Generator().manual_seed(16)
    x = torch.randn([1, 4, 3, 3], generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn([3, 3, 2, 4], generator=gen, dtype=torch.float64, requires_grad=True)  # 2 groups.
    k = [1, 3, 3, 1]
    checks = [
        (lambda x: upsample_2d(x, k, impl='ref'), (x,)),
        (lambda x: downsample_2d(x, k, impl='ref'), (x,)),
        (lambda x, w: upsample_conv_2d(x, w, k, impl='ref'), (x, w)),
        (lambda x, w: conv_downsample_2d(x, w, k, impl='ref'), (x, w)),
    ]
    for fn, inputs in checks:
        assert torch.autograd.gradcheck(fn, inputs)
        assert torch.autograd.gradgradcheck(fn, inputs)

# ----------------------------------------------------------------------------
# Plugin building.


@pytest.mark.parametrize('source', ['missing.cpp', 'broken.cpp'])
def test_get_plugin_falls_back_with_one_warning(tmp_path, monkeypatch, source):
    # Pretend CUDA is there, so that a build is really attempted.
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setenv('TORCH_EXTENSIONS_DIR', str(tmp_path / 'extensions'))
    monkeypatch.setattr(custom_ops, '_plugins', {})
    (tmp_path / 'broken.cpp').write_text('#error this source cannot build\n')
    with pytest.warns(RuntimeWarning, match='falling back to the reference implementation') as record:
        assert custom_ops.get_plugin('dnnlib_test_bogus_plugin', sources=[str(tmp_path / source)]) is None
    assert len(record) == 1 and '\n' not in str(record[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # Memoised: no second build attempt, no second warning.
        assert custom_ops.get_plugin('dnnlib_test_bogus_plugin', sources=[str(tmp_path / source)]) is None


def test_ops_use_reference_without_plugin(monkeypatch):
    monkeypatch.setattr(bias_act_module, '_get_plugin', lambda: None)
    monkeypatch.setattr(upfirdn2d_module, '_get_plugin', lambda: None)
    x = torch.randn([1, 2, 4, 4])
    assert torch.equal(bias_act(x, act='relu'), bias_act(x, act='relu', impl='ref'))
    f = setup_filter([1, 3, 3, 1])
    assert torch.equal(upfirdn2d(x, f, up=2, padding=2), upfirdn2d(x, f, up=2, padding=2, impl='ref'))

# ----------------------------------------------------------------------------
# CUDA paths against the reference paths.


def _grads_1st_2nd(fn, inputs, gen):
    """Values, first derivatives, and derivatives of a random projection of the first derivatives."""
    y = fn(*inputs)
    dy = torch.randn(y.shape, generator=gen, device='cpu', dtype=y.dtype).to(y.device)
    grads = torch.autograd.grad(y, inputs, dy, create_graph=True)
    projection = sum((g * torch.randn(g.shape, generator=gen, dtype=g.dtype).to(g.device)).sum() for g in grads)
    grads2 = torch.autograd.grad(projection, inputs, allow_unused=True)
    return [y.detach(), *[g.detach() for g in grads], *[g if g is not None else torch.zeros_like(i)
                                                        for g, i in zip(grads2, inputs)]]


@cuda_only
@pytest.mark.parametrize('act', sorted(ACTIVATIONS))
@pytest.mark.parametrize('clamp', [None, 0.8])
def test_bias_act_cuda_matches_ref(act, clamp):
    assert bias_act_module._get_plugin() is not None, 'CUDA plugin failed to build'
    gen = torch.Generator().manual_seed(20)
    for dtype, tol in [(torch.float32, 1e-5), (torch.float64, 1e-12)]:
        v = away_from_zero([4, 5, 6], gen, dtype=dtype)
        b = torch.randn([5], generator=gen, dtype=dtype)
        x = (v - b[None, :, None]).cuda().requires_grad_()
        b = b.cuda().requires_grad_()
        results = {}
        for impl in ('ref', 'cuda'):
            fn = lambda x, b: bias_act(x, b, act=act, alpha=0.3, gain=1.3, clamp=clamp, impl=impl)
            results[impl] = _grads_1st_2nd(fn, (x, b), torch.Generator().manual_seed(21))
        for got, expected in zip(results['cuda'], results['ref']):
            torch.testing.assert_close(got, expected, rtol=tol, atol=tol)
    x64 = away_from_zero([2, 3, 4], gen).cuda().requires_grad_()
    b64 = torch.zeros([3], dtype=torch.float64, device='cuda', requires_grad=True)
    fn = lambda x, b: bias_act(x, b, act=act, alpha=0.3, gain=1.3, impl='cuda')
    assert torch.autograd.gradcheck(fn, (x64, b64))
    assert torch.autograd.gradgradcheck(fn, (x64, b64))


def _float16_against_float32_ref(fn16, fn32, inputs16, dy16):
    """Output and input gradients of fn16 on float16 inputs, and of fn32 on the same values in float32."""
    results = []
    for fn, dtype in ((fn16, torch.float16), (fn32, torch.float32)):
        inputs = [t.detach().to(dtype).requires_grad_() for t in inputs16]
        y = fn(*inputs)
        assert y.dtype == dtype
        results.append([y.detach(), *torch.autograd.grad(y, inputs, dy16.to(dtype))])
    return results


@cuda_only
@pytest.mark.parametrize('act', sorted(ACTIVATIONS))
def test_bias_act_cuda_float16_matches_float32_ref(act):
    """float16 tensors (the mixed-precision blocks): the kernel computes in float32 and rounds once, so it matches
    the float32 reference on the same values to float16's precision."""
    gen = torch.Generator().manual_seed(25)
    v = away_from_zero([4, 5, 6], gen, dtype=torch.float32)
    b = torch.randn([5], generator=gen)
    x16, b16 = (v - b[None, :, None]).half().cuda(), b.half().cuda()
    dy16 = torch.randn([4, 5, 6], generator=gen).half().cuda()
    for clamp in (None, 0.8):
        got, expected = _float16_against_float32_ref(
            lambda x, b: bias_act(x, b, act=act, alpha=0.3, gain=1.3, clamp=clamp, impl='cuda'),
            lambda x, b: bias_act(x, b, act=act, alpha=0.3, gain=1.3, clamp=clamp, impl='ref'), (x16, b16), dy16)
        checked = 1 if clamp else 3  # near the clamp, float16 rounding may flip an element's gradient to zero
        for g, e, tol in list(zip(got, expected, (2e-3, 2e-3, 2e-2)))[:checked]:
            torch.testing.assert_close(g.float(), e, rtol=tol, atol=tol)


@cuda_only
@pytest.mark.parametrize('up, down, padding, fshape, flip', UPFIRDN_CASES)
def test_upfirdn2d_cuda_float16_matches_float32_ref(up, down, padding, fshape, flip):
    gen = torch.Generator().manual_seed(26)
    x16 = torch.randn([2, 3, 7, 6], generator=gen).half().cuda()
    f = torch.randn(fshape, generator=gen).half().float().cuda()
    out_shape = upfirdn2d(x16.float(), f, up=up, down=down, padding=padding, impl='ref').shape
    dy16 = torch.randn(out_shape, generator=gen).half().cuda()
    got, expected = _float16_against_float32_ref(
        lambda x: upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=1.5, impl='cuda'),
        lambda x: upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=1.5, impl='ref'),
        (x16,), dy16)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g.float(), e, rtol=5e-3, atol=5e-3 * e.abs().max().item())


@cuda_only
@pytest.mark.parametrize('dim', [0, 2])
def test_bias_act_cuda_bias_dim(dim):
    x = torch.randn([3, 4, 5], device='cuda')
    b = torch.randn([x.shape[dim]], device='cuda')
    torch.testing.assert_close(bias_act(x, b, dim=dim, act='swish', impl='cuda'),
                               bias_act(x, b, dim=dim, act='swish', impl='ref'))


@cuda_only
@pytest.mark.parametrize('up, down, padding, fshape, flip', UPFIRDN_CASES)
def test_upfirdn2d_cuda_matches_ref(up, down, padding, fshape, flip):
    assert upfirdn2d_module._get_plugin() is not None, 'CUDA plugin failed to build'
    gen = torch.Generator().manual_seed(22)
    for dtype, tol in [(torch.float32, 1e-5), (torch.float64, 1e-12)]:
        x = torch.randn([2, 3, 7, 6], generator=gen, dtype=dtype).cuda().requires_grad_()
        f = torch.randn(fshape, generator=gen, dtype=dtype).cuda()
        results = {}
        for impl in ('ref', 'cuda'):
            fn = lambda x: upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=1.5, impl=impl)
            results[impl] = _grads_1st_2nd(fn, (x,), torch.Generator().manual_seed(23))
        for got, expected in zip(results['cuda'], results['ref']):
            torch.testing.assert_close(got, expected, rtol=tol, atol=tol)
    x64 = torch.randn([1, 2, 4, 3], generator=gen, dtype=torch.float64).cuda().requires_grad_()
    f64 = torch.randn(fshape, generator=gen, dtype=torch.float64).cuda()
    fn = lambda x: upfirdn2d(x, f64, up=up, down=down, padding=padding, flip_filter=flip, impl='cuda')
    assert torch.autograd.gradcheck(fn, (x64,))
    assert torch.autograd.gradgradcheck(fn, (x64,))


@cuda_only
def test_helpers_cuda_match_ref():
    gen = torch.Generator().manual_seed(24)
    x = torch.randn([2, 4, 8, 8], generator=gen).cuda()
    w = torch.randn([3, 3, 2, 6], generator=gen).cuda()
    k = [1, 3, 3, 1]
    for fn in (lambda impl: upsample_2d(x, k, impl=impl), lambda impl: downsample_2d(x, k, impl=impl),
               lambda impl: upsample_conv_2d(x, w, k, impl=impl), lambda impl: conv_downsample_2d(x, w, k, impl=impl)):
        torch.testing.assert_close(fn('cuda'), fn('ref'), rtol=1e-4, atol=1e-4)
