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


PRECISIONS = ("fp32", "bf16")


def bf16_supported(device):
    """Whether `device` computes bfloat16 natively (CPUs: oneDNN's check for AVX512-BF16 or AMX)."""
    import torch
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def precision(name, device):
    """A context manager that computes in `name` precision: 'fp32' as is; 'bf16' with convolutions and matrix
    products in bfloat16 (torch.autocast), about 1.6x faster on CPUs with native bfloat16, images a few uint8
    levels from fp32 (docs/performance.md). Raises ValueError at once where the device lacks native bfloat16."""
    import torch
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision '{name}': choose from {', '.join(PRECISIONS)}")
    if name == "fp32":
        return contextlib.nullcontext()
    if not bf16_supported(device):
        raise ValueError(f"this {device.type.upper()} has no native bfloat16 support; use --precision fp32")
    return torch.autocast(device.type, dtype=torch.bfloat16)


def add_compute_args(parser):
    """--precision and --reference-path, for the scripts that run networks."""
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="fp32 (default) or bf16: faster where the CPU has native bfloat16, images within a few "
                             "uint8 levels")
    parser.add_argument("--reference-path", action="store_true",
                        help="Compute as the original does, in plain PyTorch ops (slower; for debugging)")


def compute_mode(precision_name, reference, device):
    """The context of --precision and --reference-path; an unsupported precision is a UserError at once."""
    from dnnlib.util import UserError
    try:
        amp = precision(precision_name, device)
    except ValueError as err:
        raise UserError(str(err)) from None
    return _entered_together(reference_path(reference), amp)


@contextlib.contextmanager
def _entered_together(*contexts):
    with contextlib.ExitStack() as stack:
        for context in contexts:
            stack.enter_context(context)
        yield
