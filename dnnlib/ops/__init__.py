"""Custom ops: fused bias + activation and upfirdn2d resampling, each with a
plain PyTorch reference path and faster default paths (a CUDA plugin built on
first use; on other devices, the same arithmetic in fewer passes over memory).

Use the submodules: `from dnnlib.ops import bias_act, upfirdn2d`.

The reference path is one switch away for debugging and benchmarks:
`use_reference_path(True)` (or `with reference_path():`) makes every op called
with impl='auto' take its plain path, and makes the networks compute as the
original does (its modulated convolution, NCHW tensors).
"""

import contextlib

_reference_path = False


def use_reference_path(enabled=True):
    """Make impl='auto' mean 'ref' everywhere (and the networks follow the original's arithmetic)."""
    global _reference_path
    _reference_path = bool(enabled)


def reference_path_enabled():
    return _reference_path


@contextlib.contextmanager
def reference_path(enabled=True):
    """`use_reference_path(enabled)` for the duration of a `with` block."""
    saved = _reference_path
    use_reference_path(enabled)
    try:
        yield
    finally:
        use_reference_path(saved)
