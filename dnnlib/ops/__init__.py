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


_compiling = False


def compiling_enabled():
    """Whether synthesis networks run through torch.compile when called without autograd (`--compile`)."""
    return _compiling


@contextlib.contextmanager
def compiling(enabled=True):
    """Compile every StyleGAN2 synthesis network called without autograd inside the block (once per network and
    input shape): the same float32 arithmetic with the elementwise epilogues fused into their convolutions."""
    global _compiling
    saved, _compiling = _compiling, bool(enabled)
    try:
        yield
    finally:
        _compiling = saved


PRECISIONS = ("fp32", "tf32", "fp16", "bf16")
FP16_RESOLUTIONS, FP16_CONV_CLAMP = 4, 256  # --precision fp16, as StyleGAN2-ADA's configs train

_forced_fp16 = None


def forced_fp16():
    """(num_fp16_res, conv_clamp) that synthesis networks apply on top of their own settings while --precision fp16
    is in effect, else None."""
    return _forced_fp16


@contextlib.contextmanager
def forcing_fp16(num_fp16_res=FP16_RESOLUTIONS, conv_clamp=FP16_CONV_CLAMP):
    """Run the `num_fp16_res` highest resolutions of every synthesis network in float16 (on GPUs: blocks stay
    float32 on other devices), clamping their activations to +-conv_clamp where a layer has no clamp of its own."""
    global _forced_fp16
    saved, _forced_fp16 = _forced_fp16, (int(num_fp16_res), float(conv_clamp))
    try:
        yield
    finally:
        _forced_fp16 = saved


@contextlib.contextmanager
def cuda_tf32(enabled):
    """TF32 for CUDA convolutions and matrix products on or off (PyTorch's default has it on for convolutions, which
    moves images away from the original's float32 outputs)."""
    import torch
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = matmul.allow_tf32, cudnn.allow_tf32
    matmul.allow_tf32 = cudnn.allow_tf32 = bool(enabled)
    try:
        yield
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = saved


def bf16_supported(device):
    """Whether `device` computes bfloat16 natively (CPUs: oneDNN's check for AVX512-BF16 or AMX)."""
    import torch
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def precision(name, device):
    """A context manager that computes in `name` precision:
      fp32  exact float32, the default (on GPUs with TF32 off, so that images match the original's);
      tf32  GPUs from Ampere on: TF32 convolutions and matrix products (10-bit mantissa inputs);
      fp16  GPUs: float16 in the FP16_RESOLUTIONS highest resolutions of the synthesis network with activations
            clamped to +-FP16_CONV_CLAMP (as StyleGAN2-ADA trains), TF32 for the rest;
      bf16  convolutions and matrix products in bfloat16 (torch.autocast), for GPUs and CPUs with native bfloat16;
            on a CPU with AVX512-BF16 but no AMX no faster than fp32, whose 3x3 convolutions use Winograd's method
            (docs/performance.md).
    Every mode but fp32 moves images a few uint8 levels. Raises ValueError at once where the device cannot run it."""
    import torch
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision '{name}': choose from {', '.join(PRECISIONS)}")
    cuda = device.type == "cuda"
    if name == "fp32":
        return cuda_tf32(False) if cuda else contextlib.nullcontext()
    if name == "bf16":
        if not bf16_supported(device):
            raise ValueError(f"this {device.type.upper()} has no native bfloat16 support; use --precision fp32")
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if not cuda:
        raise ValueError(f"--precision {name} needs a CUDA GPU; on the {device.type.upper()} use fp32 or bf16")
    if name == "tf32":
        if torch.cuda.get_device_capability(device)[0] < 8:
            raise ValueError("this GPU has no TF32 (it needs compute capability 8.0 or newer); use fp32 or fp16")
        return cuda_tf32(True)
    return _entered_together(cuda_tf32(True), forcing_fp16())


def add_compute_args(parser, compile_flag=False):
    """--precision and --reference-path, for the scripts that run networks; --compile with `compile_flag`."""
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="fp32 (default, exact); GPUs: tf32, fp16 (float16 in the 4 highest resolutions); CPUs "
                             "with native bfloat16 and GPUs: bf16. All but fp32 move images a few uint8 levels")
    parser.add_argument("--reference-path", action="store_true",
                        help="Compute as the original does, in plain PyTorch ops (slower; for debugging)")
    if compile_flag:
        parser.add_argument("--compile", action="store_true",
                            help="torch.compile the synthesis network (20-30 s per batch shape on a CPU, then "
                                 "the same images within one uint8 level; on a 2-core CPU 1.16x faster at 256x256 "
                                 "batch 1, no gain at batch 8 or 1024x1024; docs/performance.md). Needs a C++ "
                                 "compiler (CPU) or Triton (GPU)")


def compute_mode(precision_name, reference, device, compiled=False):
    """The context of --precision, --reference-path and --compile, with cuDNN's autotuner on for the run's fixed
    shapes (as TensorFlow autotunes by default); an unsupported precision is a UserError at once."""
    from dnnlib.util import UserError
    try:
        amp = precision(precision_name, device)
    except ValueError as err:
        raise UserError(str(err)) from None
    if compiled and not reference:
        problem = compile_problem(device)
        if problem:
            raise UserError(f"--compile: {problem}")
    return _entered_together(reference_path(reference), amp, _cudnn_benchmark(device.type == "cuda"),
                             compiling(compiled and not reference))


def compile_problem(device):
    """Why torch.compile cannot build kernels for `device` here (one line), or None: inductor compiles C++ with
    $CXX or g++ on CPUs and generates Triton kernels on GPUs."""
    import importlib.util
    import os
    import shutil
    if device.type == "cuda":
        return None if importlib.util.find_spec("triton") else "it needs Triton on GPUs (pip install triton)"
    compiler = os.environ.get("CXX", "g++")
    return None if shutil.which(compiler) else f"it needs a C++ compiler on the CPU ({compiler} not found; set CXX)"


@contextlib.contextmanager
def _cudnn_benchmark(enabled):
    import torch
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = saved or enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved


@contextlib.contextmanager
def _entered_together(*contexts):
    with contextlib.ExitStack() as stack:
        for context in contexts:
            stack.enter_context(context)
        yield
