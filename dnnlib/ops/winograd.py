"""3x3 'same' convolutions on the CPU by Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray, 2016).

A direct 3x3 convolution does 9 multiply-adds per output pixel and channel pair; F(4x4, 3x3) computes a 4x4 output
tile from its 6x6 input tile with 36 per 16 pixels, 4x fewer, as 36 matrix products [tiles, I] x [I, O] between
fixed linear transforms of the input tiles and of the weights. The transforms run in a small C++ plugin
(`winograd.cpp`, built on first use like the CUDA plugins); the products are ATen's. On this project's 2-core CPU
it runs StyleGAN2's and VGG16's 3x3 convolutions 1.3-2.5x faster than oneDNN's direct convolution
(docs/performance.md). The price is float rounding: the transforms' constants (up to 8 in A^T, 1/24 in G) make the
error about 3x the direct convolution's, 1e-5 of the output's largest value against 3e-6, which leaves StyleGAN2's
uint8 images within one level of the reference path.

The default path uses it where it pays and changes nothing else: float32 CPU tensors, no groups, at least
MIN_CHANNELS channels in and out, at least MIN_TILES output tiles and MIN_FLOPS per image, outside autocast, and
weights that need no gradient: inference, and projection, whose input gradient is again such a convolution (the
kernel flipped in space, input and output channels swapped). Training, which needs weight gradients, the reference
path, and machines without a C++ compiler or OpenMP (macOS) use F.conv2d. (The upsampling layers' stride-2
transposed convolution was tried by output phase, F(4, 2) for the even outputs: no faster than oneDNN here, as its
5x larger transformed tiles made the transforms memory-bound.)
"""

import contextlib
import os
import sys
import weakref
from typing import Optional

import torch

from . import custom_ops, reference_path_enabled

MIN_CHANNELS = 32  # below this, oneDNN's direct convolution is as fast (docs/performance.md)
# Output tiles per image below which reading the 4x larger transformed weights costs more than the multiplications
# saved (16: from 16x16 pixels on). Per image, not per batch: an image then takes the same path at any batch size.
MIN_TILES = 16
# FLOPs per image of the direct convolution below which the layer stays with it: small networks (the shipped 64x64
# one) gain too little to be worth building the plugin (half a minute, once per machine). Config-f's layers from
# 16x16 on and VGG16's are above it.
MIN_FLOPS = 1e9
# Tiles per chunk of work: its transforms and products stay in the core's cache. Never fewer than the minimum: the
# BLAS picks other kernels (another summation order) for matrix products of very few rows, and an image's values
# would then depend on the batch size.
TILES_PER_TASK, MIN_TILES_PER_TASK = 64, 8

# G of F(4x4, 3x3): the weight transform, U = G k G^T per input/output channel pair.
_G = ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6), (1 / 24, 1 / 12, 1 / 6),
      (1 / 24, -1 / 12, 1 / 6), (0, 0, 1))


def _get_plugin():
    """The compiled plugin, or None where it cannot run as measured: it needs OpenMP, as ATen's parallel_for is
    OpenMP code in a header (without it the transforms run on one thread), which Apple's compiler lacks."""
    if sys.platform == 'darwin':
        return None
    # AVX2 and FMA where torch itself uses them (AVX-512 was no faster here); the instruction set is the plugin's
    # name suffix, so a build folder shared by several machines holds one build per instruction set.
    vectorised = torch.backends.cpu.get_cpu_capability() in ('AVX2', 'AVX512')
    if sys.platform == 'win32':  # MSVC
        flags, ldflags = ['/O2', '/openmp'] + (['/arch:AVX2'] if vectorised else []), []
    else:
        flags = ['-O3', '-fopenmp'] + (['-mavx2', '-mfma', '-mtune=native'] if vectorised else [])
        ldflags = ['-fopenmp']
    return custom_ops.get_plugin(f'dnnlib_winograd_plugin_{"avx2" if vectorised else "generic"}', needs_cuda=False,
                                 sources=[os.path.join(os.path.dirname(__file__), 'winograd.cpp')],
                                 extra_cflags=flags, extra_ldflags=ldflags)


@torch.compiler.assume_constant_result  # torch.compile takes the answer as a constant instead of tracing the build
def _plugin_available():
    return _get_plugin() is not None


_enabled = True


@contextlib.contextmanager
def disabled():
    """PyTorch's convolutions only inside the block (the benchmarks count FLOPs as the direct method does them)."""
    global _enabled
    saved, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = saved


def _tiles_per_image(x):
    return ((x.shape[2] + 3) // 4) * ((x.shape[3] + 3) // 4)


def usable(x, w):
    """Whether `conv3x3(x, w)` runs: x [N, I, H, W], w [O, I, 3, 3] (F.conv2d's layout)."""
    return (_enabled and x.device.type == 'cpu' and x.dtype == w.dtype == torch.float32 and x.ndim == 4
            and w.shape[1:] == (x.shape[1], 3, 3) and min(w.shape[:2]) >= MIN_CHANNELS
            and _tiles_per_image(x) >= MIN_TILES and 18 * x.shape[2] * x.shape[3] * w.shape[0] * w.shape[1] >= MIN_FLOPS
            and not (torch.is_grad_enabled() and w.requires_grad) and not torch.is_autocast_enabled('cpu')
            and not reference_path_enabled() and _plugin_available())


def transform_weight(w):
    """w [O, I, 3, 3] -> U [36, I, O], in float64 before rounding to float32 once."""
    g = torch.tensor(_G, dtype=torch.float64, device=w.device)
    u = torch.einsum('ak,oikl,bl->abio', g, w.detach().to(torch.float64), g)
    return u.reshape(36, w.shape[1], w.shape[0]).to(torch.float32).contiguous()


def _transform(w, flipped):
    """U of w, or with `flipped` of the kernel whose convolution is the input gradient of w's: w flipped in space,
    input and output channels swapped."""
    return transform_weight(w.flip([2, 3]).transpose(0, 1) if flipped else w)


class _TransformCache:
    """Transformed weights per source tensor (a layer's parameter), recomputed when it changes (its version
    counter moves on every in-place update: optimiser steps, load_state_dict, copy_)."""

    def __init__(self):
        self._entries = {}  # id(source) -> (weakref(source), version, {flipped: U})

    def get(self, source, w, flipped):
        entry = self._entries.get(id(source))
        if entry is None or entry[0]() is not source or entry[1] != source._version:
            entry = (weakref.ref(source, lambda _, key=id(source): self._entries.pop(key, None)), source._version, {})
            self._entries[id(source)] = entry
        if flipped not in entry[2]:
            entry[2][flipped] = _transform(w, flipped)
        return entry[2][flipped]


_cache = _TransformCache()


def _transformed(w, key, flipped):
    return _transform(w, flipped) if key is None else _cache.get(key, w, flipped)


def _tiles_per_task(x):
    """TILES_PER_TASK, or fewer (down to MIN_TILES_PER_TASK) where that would leave threads idle."""
    tiles = x.shape[0] * _tiles_per_image(x)
    return max(MIN_TILES_PER_TASK, min(TILES_PER_TASK, -(-tiles // torch.get_num_threads())))


# A torch operator, so that torch.compile keeps the plugin in its graph as an opaque call (a plain pybind function
# would break the graph). It runs eagerly, also inside compiled graphs, where the parameter serves as `key` too.
@torch.library.custom_op('dnnlib::winograd_conv3x3', mutates_args=())
def _conv3x3_op(x: torch.Tensor, w: torch.Tensor, key: Optional[torch.Tensor], flipped: bool) -> torch.Tensor:
    return _get_plugin().conv3x3(x, _transformed(w, key, flipped), _tiles_per_task(x))


@_conv3x3_op.register_fake
def _(x, w, key, flipped):
    out_channels = w.shape[1] if flipped else w.shape[0]
    return x.new_empty([x.shape[0], out_channels, x.shape[2], x.shape[3]]).contiguous(
        memory_format=torch.channels_last)


def _setup_backward(ctx, inputs, output):
    _, w, key, ctx.flipped = inputs
    ctx.save_for_backward(w, key)


def _backward(ctx, grad):
    """The input gradient by the same method; the weight takes none (`usable` asks for one that needs none)."""
    w, key = ctx.saved_tensors
    return _conv3x3_op(grad.to(torch.float32), w, key, not ctx.flipped), None, None, None


_conv3x3_op.register_autograd(_backward, setup_context=_setup_backward)


def conv3x3(x, w, key=None):
    """F.conv2d(x, w, padding=1) for x [N, I, H, W] and w [O, I, 3, 3], returned in channels-last memory format;
    differentiable with respect to x. Call only where `usable(x, w)`.

    `key`: the tensor that `w` is a fixed function of (the parameter it was scaled from): the weight transform is
    then cached with it instead of recomputed on every call."""
    assert usable(x, w)
    return _conv3x3_op(x, w, key, False)
