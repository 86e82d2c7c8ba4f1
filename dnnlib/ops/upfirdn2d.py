"""Upsample, FIR-filter and downsample 2D images, as in the TF StyleGAN2 `upfirdn_2d`.

`upfirdn2d()` has a plain PyTorch reference path (the semantics) and a CUDA
path. The resampling helpers below keep the TF original's argument names,
defaults and padding arithmetic so that results match it to float rounding.
Convolution weights use the TF layout [kernelH, kernelW, inC, outC].
"""

import os

import numpy as np
import torch
import torch.nn.functional as F

from . import custom_ops, reference_path_enabled, winograd

# Dtypes the CUDA kernel is instantiated for (float16 computes in float32); others use the reference path.
_cuda_dtypes = (torch.float16, torch.float32, torch.float64)


def _get_plugin():
    sources = [os.path.join(os.path.dirname(__file__), name) for name in ('upfirdn2d.cpp', 'upfirdn2d.cu')]
    return custom_ops.get_plugin('dnnlib_upfirdn2d_plugin', sources=sources)

# ----------------------------------------------------------------------------


_filter_cache = {}  # (shape, values, device, dtype) -> normalised filter tensor.


@torch.compiler.assume_constant_result  # cached per taps: torch.compile takes it as a constant
def setup_filter(k, device=None, dtype=torch.float32):
    """Turn FIR taps `k` into a 2-D filter tensor normalised to sum 1.

    A 1-D `k` (list, array or tensor) means the separable filter outer(k, k).
    Results are cached per (values, device, dtype), so layers can call this on
    every forward pass; treat the returned tensor as read-only.
    """
    taps = np.asarray(k.detach().cpu() if isinstance(k, torch.Tensor) else k, dtype=np.float64)
    device = torch.device('cpu' if device is None else device)
    key = (taps.shape, tuple(taps.ravel().tolist()), device, dtype)
    if key not in _filter_cache:
        if taps.ndim == 1:
            taps = np.outer(taps, taps)
        assert taps.ndim == 2
        taps = taps / np.sum(taps)
        with torch.inference_mode(False):  # a normal tensor even when first made under inference_mode, so that
            _filter_cache[key] = torch.as_tensor(taps, dtype=dtype, device=device)  # autograd can save it later
    return _filter_cache[key]


def _parse_scaling(s):
    """int or (x, y) -> (sx, sy)."""
    sx, sy = (s, s) if isinstance(s, int) else s
    assert isinstance(sx, int) and isinstance(sy, int) and sx >= 1 and sy >= 1
    return sx, sy


def _parse_padding(p):
    """int, (x, y) or (x0, x1, y0, y1) -> (x0, x1, y0, y1)."""
    if isinstance(p, int):
        p = (p, p, p, p)
    elif len(p) == 2:
        p = (p[0], p[0], p[1], p[1])
    assert len(p) == 4 and all(isinstance(v, int) for v in p)
    return tuple(p)


def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl='auto'):
    """Upsample, pad, FIR-filter and downsample a batch of NCHW images.

    Per image and channel: insert `up`-1 zeros after each pixel, pad with zeros
    (negative padding crops), convolve with the 2-D filter `f` [fh, fw] (a true
    convolution; `flip_filter=True` makes it a correlation), multiply by `gain`
    and keep every `down`-th pixel starting at 0. `up`, `down`: int or (x, y);
    `padding`: int, (x, y) or (x0, x1, y0, y1). Output height is
    (H * upy + pady0 + pady1 - fh) // downy + 1, likewise for the width.
    `impl`: 'ref', 'cuda' or 'auto' as for `bias_act()`; the CUDA path does not
    differentiate with respect to `f`, so a filter that requires grad uses 'ref'.
    Without upsampling, 'auto' off the CUDA kernel gives the reference's exact
    result in fewer passes over memory; rank-one filters of SEPARABLE_MIN_TAPS
    or more taps a side (ADA's warp filter) run as two 1-D passes, the
    reference's result up to float rounding.
    """
    assert isinstance(x, torch.Tensor) and x.ndim == 4
    assert isinstance(f, torch.Tensor) and f.ndim == 2
    assert impl in ('ref', 'cuda', 'auto')
    up = _parse_scaling(up)
    down = _parse_scaling(down)
    padding = _parse_padding(padding)
    out_h, out_w = _output_size(x.shape, f.shape, up, down, padding)
    assert out_h >= 1 and out_w >= 1, 'upfirdn2d output would be empty'
    f = f.to(x.dtype)
    if gain != 1:
        f = f * gain
    if impl == 'cuda':
        assert x.is_cuda, "impl='cuda' needs a CUDA tensor"
    if impl == 'auto' and reference_path_enabled():
        impl = 'ref'
    if (impl != 'ref' and x.is_cuda and x.dtype in _cuda_dtypes and not f.requires_grad
            and _get_plugin() is not None):
        return _Upfirdn2dCuda.apply(x, f.contiguous(), up, down, padding, flip_filter)
    if impl != 'ref':
        factors = _separable_factors(f)
        if factors is not None:
            return _upfirdn2d_separable(x, *factors, up, down, padding, flip_filter)
    if impl != 'ref' and up == (1, 1):
        return _upfirdn2d_padded_in_conv(x, f, down, padding, flip_filter)
    return _upfirdn2d_ref(x, f, up, down, padding, flip_filter)


SEPARABLE_MIN_TAPS = 8  # from this many taps on each axis, two 1-D passes pay off (ADA's 12-tap warp filter)


def _separable_factors(f):
    """(column [fh, 1], row [1, fw]) whose product is the filter `f`, when `f` is rank one with at least
    SEPARABLE_MIN_TAPS taps on each axis and needs no gradient; else None. The 1-D passes give the 2-D result up
    to float rounding."""
    if f.requires_grad or min(f.shape) < SEPARABLE_MIN_TAPS:
        return None
    total = float(f.sum())
    if total == 0:
        return None
    column, row = f.sum(dim=1, keepdim=True), f.sum(dim=0, keepdim=True) / total
    if not torch.allclose(column * row, f, rtol=1e-5, atol=1e-6 * float(f.abs().max())):
        return None
    return column, row


def _output_size(x_shape, f_shape, up, down, padding):
    """(outH, outW) of upfirdn2d for the parsed arguments."""
    in_h, in_w = x_shape[2], x_shape[3]
    fh, fw = f_shape
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, padding
    return (in_h * upy + py0 + py1 - fh) // downy + 1, (in_w * upx + px0 + px1 - fw) // downx + 1


def _upfirdn2d_ref(x, f, up, down, padding, flip_filter):
    """Reference path: plain PyTorch ops, so autograd supplies all derivatives."""
    c = x.shape[1]
    (downx, downy), (px0, px1, py0, py1) = down, padding
    x = _zero_insert(x, up)

    # F.pad crops where a pad is negative.
    x = F.pad(x, [px0, px1, py0, py1])

    # conv2d correlates, so flip the filter for a true convolution. Striding
    # the convolution keeps exactly every down-th output starting at 0.
    if not flip_filter:
        f = f.flip([0, 1])
    weight = f[None, None].expand(c, 1, *f.shape)
    return F.conv2d(x, weight, stride=(downy, downx), groups=c)


def _zero_insert(x, up):
    """Upsample by inserting zeros: each pixel becomes the top-left of an up x up block."""
    (upx, upy), (n, c, in_h, in_w) = up, x.shape
    if (upx, upy) == (1, 1):
        return x
    x = x.reshape(n, c, in_h, 1, in_w, 1)
    x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
    return x.reshape(n, c, in_h * upy, in_w * upx)


def _upfirdn2d_separable(x, column, row, up, down, padding, flip_filter):
    """A rank-one filter as two 1-D passes, vertical then horizontal (fh + fw taps per pixel instead of fh * fw),
    on the batch folded into the channels in channels-last format: oneDNN vectorises depthwise convolutions over
    channels, which the three of an RGB batch do not fill (17x faster than the 2-D NCHW pass for ADA's 12-tap
    warp filter on 32 RGB images of 280x280). Same result as the reference up to float rounding."""
    n, c = x.shape[:2]
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, padding
    keep_channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    y = x.reshape(1, n * c, *x.shape[2:]).contiguous(memory_format=torch.channels_last)
    y = _separable_pass(y, column, 2, upy, downy, py0, py1, flip_filter)
    y = _separable_pass(y, row, 3, upx, downx, px0, px1, flip_filter)
    y = y.reshape(n, c, *y.shape[2:])
    return y.contiguous(memory_format=torch.channels_last if keep_channels_last else torch.contiguous_format)


def _separable_pass(y, taps, dim, up, down, pad0, pad1, flip_filter):
    """upfirdn2d along one axis (dim 2: `taps` [fh, 1]; dim 3: [1, fw]). Upsampling runs as a strided depthwise
    transposed convolution, which multiplies only the stored pixels (an up-th of the taps per output, and no
    zero-inserted copy): it gives the full convolution of the zero-inserted signal, from which the padding and
    `down` pick the outputs."""
    if up == 1:
        padding = (0, 0, pad0, pad1) if dim == 2 else (pad0, pad1, 0, 0)
        stride = (1, down) if dim == 2 else (down, 1)
        return _upfirdn2d_padded_in_conv(y, taps, stride, padding, flip_filter)
    if flip_filter:
        taps = taps.flip([0, 1])
    size, length = taps.shape[dim - 2], y.shape[dim]
    weight = taps[None, None].expand(y.shape[1], 1, *taps.shape)
    y = F.conv_transpose2d(y, weight, stride=(up, 1) if dim == 2 else (1, up), groups=y.shape[1])
    # Output i of upfirdn2d is sample i * down + size - 1 - pad0 of that full convolution (zero outside it).
    num_out = (length * up + pad0 + pad1 - size) // down + 1
    start, stop = size - 1 - pad0, size - 1 - pad0 + (num_out - 1) * down + 1
    before, after = max(-start, 0), max(stop - y.shape[dim], 0)
    if before or after:
        y = F.pad(y, (0, 0, before, after) if dim == 2 else (before, after, 0, 0))
    return y.narrow(dim, start + before, stop - start)[(slice(None),) * dim + (slice(None, None, down),)]


def _upfirdn2d_padded_in_conv(x, f, down, padding, flip_filter):
    """The reference path without upsampling, with the same result in fewer passes over memory: the convolution
    zero-pads symmetrically by itself, so only an asymmetric remainder (or a crop) makes a padded copy. The output
    keeps x's memory format; oneDNN runs this depthwise convolution 3x faster on channels-last tensors."""
    c = x.shape[1]
    (downx, downy), (px0, px1, py0, py1) = down, padding
    cx, cy = max(min(px0, px1), 0), max(min(py0, py1), 0)
    if (px0, px1, py0, py1) != (cx, cx, cy, cy):
        x = F.pad(x, [px0 - cx, px1 - cx, py0 - cy, py1 - cy])
    if not flip_filter:
        f = f.flip([0, 1])
    weight = f[None, None].expand(c, 1, *f.shape)
    return F.conv2d(x, weight, stride=(downy, downx), padding=(cy, cx), groups=c)


def _upfirdn2d_grad_args(x_shape, f_shape, up, down, padding):
    """Arguments (up, down, padding) of the upfirdn2d that is the adjoint of one call.

    The gradient of upfirdn2d(x, f, up, down, padding, flip) with respect to x
    is upfirdn2d(dy, f, up=down, down=up, padding=these, flip=not flip). Derivation
    (per axis): output j reads the zero-inserted, padded input at positions
    m = j*down + t for filter taps t, and input pixel i sits at m = i*up + pad0.
    Zero-inserting dy by `down` and correlating instead of convolving reverses
    the tap order, which shifts the start by fw - 1, so pad0' = fw - 1 - pad0;
    pad1' is whatever makes the adjoint's output exactly inW wide.
    """
    in_h, in_w = x_shape[2], x_shape[3]
    fh, fw = f_shape
    out_h, out_w = _output_size(x_shape, f_shape, up, down, padding)
    (upx, upy), (downx, downy), (px0, _, py0, _) = up, down, padding
    grad_padding = (
        fw - px0 - 1, in_w * upx - out_w * downx + px0 - upx + 1,
        fh - py0 - 1, in_h * upy - out_h * downy + py0 - upy + 1,
    )
    return down, up, grad_padding


class _Upfirdn2dCuda(torch.autograd.Function):
    """upfirdn2d on the CUDA kernel; its gradient is another call of itself."""

    @staticmethod
    def forward(ctx, x, f, up, down, padding, flip_filter):
        (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, padding
        y = _get_plugin().upfirdn2d(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip_filter)
        ctx.save_for_backward(f)
        ctx.args = (x.shape, up, down, padding, flip_filter)
        return y

    @staticmethod
    def backward(ctx, dy):
        f, = ctx.saved_tensors
        x_shape, up, down, padding, flip_filter = ctx.args
        dx = None
        if ctx.needs_input_grad[0]:
            g_up, g_down, g_padding = _upfirdn2d_grad_args(x_shape, f.shape, up, down, padding)
            dx = _Upfirdn2dCuda.apply(dy, f, g_up, g_down, g_padding, not flip_filter)
        return dx, None, None, None, None, None

# ----------------------------------------------------------------------------
# Resampling helpers with the TF original's semantics.


def _fir(x, k, factor, scale):
    """Normalised, scaled, square FIR filter for x (float64 only for float64 x)."""
    if k is None:
        k = [1] * factor
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    f = setup_filter(k, device=x.device, dtype=dtype) * scale
    assert f.shape[0] == f.shape[1], 'filter must be square'
    return f


def _groups(x, w):
    """Number of groups of a conv of x with TF-layout w, inferred as in the original."""
    assert w.ndim == 4
    in_c, out_c = w.shape[2], w.shape[3]
    num_groups = x.shape[1] // in_c
    assert num_groups >= 1 and x.shape[1] == num_groups * in_c, 'x channels must be a multiple of w inC'
    assert out_c % num_groups == 0, 'w outC must be a multiple of the number of groups'
    return num_groups


def _torch_weight(w):
    """TF-layout [kh, kw, inC, outC] -> conv2d layout [outC, inC, kh, kw]."""
    return w.permute(3, 2, 0, 1)


def upsample_2d(x, k=None, factor=2, gain=1, impl='auto'):
    """Upsample NCHW images by `factor` with FIR filter `k` (default: nearest neighbour).

    The filter is normalised so that a constant input is scaled by `gain`.
    Output: [N, C, H * factor, W * factor].
    """
    assert isinstance(factor, int) and factor >= 1
    f = _fir(x, k, factor, gain * factor ** 2)
    p = f.shape[0] - factor
    pad0, pad1 = (p + 1) // 2 + factor - 1, p // 2
    return upfirdn2d(x, f, up=factor, padding=(pad0, pad1, pad0, pad1), impl=impl)


def downsample_2d(x, k=None, factor=2, gain=1, impl='auto'):
    """Downsample NCHW images by `factor` with FIR filter `k` (default: average pooling).

    The filter is normalised so that a constant input is scaled by `gain`.
    Output: [N, C, H // factor, W // factor].
    """
    assert isinstance(factor, int) and factor >= 1
    f = _fir(x, k, factor, gain)
    p = f.shape[0] - factor
    pad0, pad1 = (p + 1) // 2, p // 2
    return upfirdn2d(x, f, down=factor, padding=(pad0, pad1, pad0, pad1), impl=impl)


def upsample_conv_2d(x, w, k=None, factor=2, gain=1, impl='auto'):
    """`upsample_2d()` followed by a 'SAME' conv with TF-layout `w`, padding only once.

    Computed as in the original: a stride-`factor` transposed convolution with
    the spatially flipped weight, then a FIR filter. Groups are inferred as
    x.shape[1] // inC, as the fused modulated convolution needs.
    """
    assert isinstance(factor, int) and factor >= 1
    num_groups = _groups(x, w)
    conv_h, conv_w, in_c, out_c = w.shape
    assert conv_h == conv_w, 'conv kernel must be square'
    f = _fir(x, k, factor, gain * factor ** 2)
    p = (f.shape[0] - factor) - (conv_w - 1)

    # conv_transpose2d wants [groups * inC, outC / groups, kh, kw].
    wt = w.reshape(conv_h, conv_w, in_c, num_groups, out_c // num_groups)
    wt = wt.permute(3, 2, 4, 0, 1).reshape(num_groups * in_c, out_c // num_groups, conv_h, conv_w)
    x = F.conv_transpose2d(x, wt.flip([2, 3]), stride=factor, groups=num_groups)

    pad0, pad1 = (p + 1) // 2 + factor - 1, p // 2 + 1
    return upfirdn2d(x, f, padding=(pad0, pad1, pad0, pad1), impl=impl)


def conv_downsample_2d(x, w, k=None, factor=2, gain=1, impl='auto'):
    """A 'SAME' conv with TF-layout `w` followed by `downsample_2d()`, padding only once.

    Computed as in the original: FIR filter, then a stride-`factor` 'VALID'
    convolution. Groups are inferred as x.shape[1] // inC. Off the reference
    path a 1x1 convolution (the resnet discriminator's skip) reads only every
    `factor`-th filtered pixel, so the filter computes just those (as its own
    stride) and the convolution runs on the smaller image: the same values
    for a factor**2 share of the filtering.
    """
    assert isinstance(factor, int) and factor >= 1
    num_groups = _groups(x, w)
    conv_h, conv_w = w.shape[:2]
    assert conv_h == conv_w, 'conv kernel must be square'
    f = _fir(x, k, factor, gain)
    p = (f.shape[0] - factor) + (conv_w - 1)
    pad0, pad1 = (p + 1) // 2, p // 2
    filter_stride = factor if conv_w == 1 and impl != 'ref' and not reference_path_enabled() else 1
    x = upfirdn2d(x, f, down=filter_stride, padding=(pad0, pad1, pad0, pad1), impl=impl)
    return F.conv2d(x, _torch_weight(w), stride=factor // filter_stride, groups=num_groups)


def conv2d(x, w, key=None):
    """Stride-1 'SAME' conv (as TF pads it) of NCHW x with TF-layout `w`, odd kernels only.

    Groups are inferred as x.shape[1] // inC, as in the resampling helpers. 3x3 kernels run by Winograd's method
    where `winograd.usable` says it pays (CPU inference); `key` is the tensor `w` was computed from, so that its
    transform is cached (see `winograd.conv3x3`).
    """
    num_groups = _groups(x, w)
    conv_h, conv_w = w.shape[:2]
    assert conv_h % 2 == 1 and conv_w % 2 == 1, "odd kernels only: TF pads even 'SAME' kernels unevenly"
    weight = _torch_weight(w)
    if winograd.usable(x, weight):
        return winograd.conv3x3(x, weight, key)
    return F.conv2d(x, weight, padding=(conv_h // 2, conv_w // 2), groups=num_groups)
