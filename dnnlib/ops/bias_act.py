"""Fused bias + activation + gain + clamp, as in the TF StyleGAN2 `fused_bias_act`.

`bias_act()` has a plain PyTorch reference path (the semantics) and a CUDA
path whose custom autograd Functions give the same first and second
derivatives.
"""

import collections
import os

import numpy as np
import torch
import torch.nn.functional as F

from . import custom_ops, reference_path_enabled

# One record per activation.
#   func:         the activation on the bias-added input, in plain PyTorch ops
#                 (inplace=True: it may overwrite its input).
#   def_alpha:    default shape parameter (only lrelu uses one).
#   def_gain:     default output scale, chosen to keep the signal magnitude.
#   cuda_idx:     the activation's number in the CUDA kernel.
#   ref:          'x' or 'y': the tensor the kernel computes derivatives from.
#   has_2nd_grad: False when the second derivative is zero almost everywhere.
ActivationSpec = collections.namedtuple('ActivationSpec', 'func def_alpha def_gain cuda_idx ref has_2nd_grad')

S = ActivationSpec
SQRT2 = float(np.sqrt(2))  # a Python float: numpy scalars break torch.compile's guards
activation_funcs = {
    'linear':   S(lambda x, **_:            x,                              None, 1.0,        1, 'y', False),
    'relu':     S(lambda x, inplace, **_:   F.relu(x, inplace),             None, SQRT2,      2, 'y', False),
    'lrelu':    S(lambda x, alpha, inplace: F.leaky_relu(x, alpha, inplace), 0.2, SQRT2,      3, 'y', False),
    'tanh':     S(lambda x, **_:            torch.tanh(x),                  None, 1.0,        4, 'y', True),
    'sigmoid':  S(lambda x, **_:            torch.sigmoid(x),               None, 1.0,        5, 'y', True),
    'elu':      S(lambda x, **_:            F.elu(x),                       None, 1.0,        6, 'y', True),
    'selu':     S(lambda x, **_:            F.selu(x),                      None, 1.0,        7, 'y', True),
    'softplus': S(lambda x, **_:            F.softplus(x),                  None, 1.0,        8, 'y', True),
    'swish':    S(lambda x, **_:            torch.sigmoid(x) * x,           None, SQRT2,      9, 'x', True),
}
del S

# Dtypes the CUDA kernel is instantiated for (float16 computes in float32); others use the reference path.
_cuda_dtypes = (torch.float16, torch.float32, torch.float64)


def _get_plugin():
    sources = [os.path.join(os.path.dirname(__file__), name) for name in ('bias_act.cpp', 'bias_act.cu')]
    return custom_ops.get_plugin('dnnlib_bias_act_plugin', sources=sources)


def bias_act(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None, impl='auto'):
    """Add bias `b` along `dim` of `x`, apply activation `act`, scale by `gain`, clamp.

    Returns act(x + b, alpha) * gain, clamped to [-clamp, clamp] when `clamp` is
    given. `alpha` and `gain` default to the activation's `def_alpha` and
    `def_gain`. `impl`: 'ref' (plain PyTorch ops), 'cuda' (the CUDA kernel,
    for CUDA tensors; the reference path if the plugin could not be built) or
    'auto' (the kernel when usable, else the reference path).
    """
    assert isinstance(x, torch.Tensor)
    assert impl in ('ref', 'cuda', 'auto')
    spec = activation_funcs[act]
    if b is not None:
        assert isinstance(b, torch.Tensor) and b.ndim == 1
        assert 0 <= dim < x.ndim
        assert b.shape[0] == x.shape[dim]
    alpha = float(alpha if alpha is not None else (spec.def_alpha or 0))
    gain = float(gain if gain is not None else spec.def_gain)
    if clamp is not None:
        clamp = float(clamp)
        assert clamp >= 0
    if impl == 'cuda':
        assert x.is_cuda, "impl='cuda' needs a CUDA tensor"
    if impl == 'auto' and reference_path_enabled():
        impl = 'ref'
    if impl != 'ref' and x.is_cuda and x.dtype in _cuda_dtypes and _get_plugin() is not None:
        return _bias_act_cuda(x, b, dim, act, alpha, gain, clamp)
    return _bias_act_ref(x, b, dim, spec, alpha, gain, clamp)


def _bias_act_ref(x, b, dim, spec, alpha, gain, clamp):
    """Reference path: plain PyTorch ops, so autograd supplies all derivatives.

    With autograd off, the steps after the first overwrite the tensor the first made (never the caller's x): the
    same values with fewer fresh allocations, which on the CPU cost page faults and memory bandwidth."""
    y = x
    writable = lambda t: t is not x and not torch.is_grad_enabled()  # noqa: E731
    if b is not None:
        y = y + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    y = spec.func(y, alpha=alpha, inplace=writable(y))
    if gain != 1:
        y = y.mul_(gain) if writable(y) else y * gain
    if clamp is not None:
        y = y.clamp_(-clamp, clamp) if writable(y) else y.clamp(-clamp, clamp)
    return y


def _bias_act_cuda(x, b, dim, act, alpha, gain, clamp):
    spec = activation_funcs[act]
    empty = x.new_empty([0])
    b = b.to(x.dtype) if b is not None else empty
    # The kernel takes a negative clamp to mean "no clamping".
    return _BiasActCuda.apply(x, b, dim, spec, alpha, gain, -1.0 if clamp is None else clamp)


def _sum_to_bias(t, dim):
    """Reduce a gradient shaped like x to the shape of the bias along `dim`."""
    return t.sum([i for i in range(t.ndim) if i != dim])


class _BiasActCuda(torch.autograd.Function):
    """y = bias_act(x, b) on the CUDA kernel; backward goes through _BiasActCudaGrad."""

    @staticmethod
    def forward(ctx, x, b, dim, spec, alpha, gain, clamp):
        # The plugin makes its own contiguous copies; x itself is saved, so that
        # second derivatives reach the caller's tensor.
        empty = x.new_empty([0])
        y = _get_plugin().bias_act(x, b, empty, empty, empty, 0, dim, spec.cuda_idx, alpha, gain, clamp)
        # Keep only what backward needs: y for y-based derivative formulas and
        # the clamp mask; x and b for x-based formulas, and whenever there is a
        # second derivative, which must flow back to x and b.
        keep_x = spec.ref == 'x' or spec.has_2nd_grad
        keep_y = spec.ref == 'y' or clamp >= 0
        ctx.save_for_backward(x if keep_x else empty, b if keep_x else empty, y if keep_y else empty)
        ctx.args = (dim, spec, alpha, gain, clamp)
        ctx.has_bias = b.numel() > 0
        return y

    @staticmethod
    def backward(ctx, dy):
        x, b, y = ctx.saved_tensors
        dim = ctx.args[0]
        dx = _BiasActCudaGrad.apply(dy, x, b, y, *ctx.args)
        db = _sum_to_bias(dx, dim) if ctx.has_bias and ctx.needs_input_grad[1] else None
        return dx, db, None, None, None, None, None


class _BiasActCudaGrad(torch.autograd.Function):
    """dx = dy * d(bias_act)/dx on the CUDA kernel, itself differentiable once more."""

    @staticmethod
    def forward(ctx, dy, x, b, y, dim, spec, alpha, gain, clamp):
        empty = dy.new_empty([0])
        dx = _get_plugin().bias_act(dy, b, x, y, empty, 1, dim, spec.cuda_idx, alpha, gain, clamp)
        ctx.save_for_backward(dy if spec.has_2nd_grad else empty, x, b, y)
        ctx.args = (dim, spec, alpha, gain, clamp)
        return dx

    @staticmethod
    def backward(ctx, d_dx):
        dy, x, b, y = ctx.saved_tensors
        dim, spec, alpha, gain, clamp = ctx.args
        # dx is linear in dy, with the same per-element factor.
        d_dy = _BiasActCudaGrad.apply(d_dx, x, b, y, *ctx.args) if ctx.needs_input_grad[0] else None
        # y is a function of x and is not differentiated separately: the kernel's
        # second-derivative mode already gives the total derivative through x.
        d_x = d_b = None
        if spec.has_2nd_grad and (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]):
            d_x = _get_plugin().bias_act(d_dx, b, x, y, dy, 2, dim, spec.cuda_idx, alpha, gain, clamp)
            if b.numel() > 0 and ctx.needs_input_grad[2]:
                d_b = _sum_to_bias(d_x, dim)
        return d_dy, d_x, d_b, None, None, None, None, None, None
