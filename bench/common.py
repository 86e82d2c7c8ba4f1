"""What every benchmark needs: the machine, its measured peak, FLOP counts, interleaved timing, peak memory, and the
peer (stylegan2-ada-pytorch or stylegan3) loaded beside our modules in one process."""

import contextlib
import ctypes
import datetime
import gc
import importlib
import os
import platform
import statistics
import sys
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from dnnlib.ops import winograd


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line(device):
    """One line naming the machine, the software and the date, for the report."""
    what = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{cpu_model()}, {os.cpu_count()} CPUs"
    return (f"{what}; torch {torch.__version__}, {torch.get_num_threads()} threads, Python "
            f"{platform.python_version()}; {datetime.date.today().isoformat()}")


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device, dtype=torch.float32, size=4096, repeats=5):
    """FLOP/s of a large matrix product: the best rate this machine reaches in practice, the yardstick for
    'achieved FLOP/s'. The best of `repeats` timed products after one warm-up."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    best = float("inf")
    with torch.inference_mode():
        a @ b
        for _ in range(repeats):
            sync(device)
            start = time.perf_counter()
            a @ b
            sync(device)
            best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best


class _FlopCounter(TorchDispatchMode):
    """Adds up torch's FLOP formulas (torch.utils.flop_counter) of the ops that run. FlopCounterMode itself
    cannot be used: its module hooks fail under torch.inference_mode, which Network.run uses."""

    def __init__(self):
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        formula = flop_registry.get(func._overloadpacket)
        if formula is None:
            # Under inference_mode composite ops (conv2d, matmul) arrive undecomposed: count their parts.
            with self:
                out = func.decompose(*args, **kwargs)
            return func(*args, **kwargs) if out is NotImplemented else out
        out = func(*args, **kwargs)
        self.flops += formula(*args, **kwargs, out_val=out)
        return out


def count_flops(fn):
    """FLOPs of the matrix products and convolutions that fn() runs (multiply-adds count two), by torch's own
    formulas; element-wise work is not counted. Convolutions count as the direct method does them, also where the
    fast path uses Winograd's (fewer multiplications): rates are then comparable across paths, Winograd's effective."""
    with _FlopCounter() as counter, winograd.disabled():
        fn()
    return counter.flops


def time_paths(paths, device, min_time, min_repeats=3):
    """Seconds per call of each path: after one untimed call each, rounds in which every path runs once, the order
    reversed every other round, until each path has `min_repeats` calls and `min_time` seconds. Returns
    {name: median seconds} and {name: median over rounds of (that path's time / the first path's time)}."""
    names = list(paths)
    for name in names:
        paths[name]()
    times = {name: [] for name in names}
    rounds = 0
    while rounds < min_repeats or min(sum(t) for t in times.values()) < min_time:
        for name in (names if rounds % 2 == 0 else names[::-1]):
            sync(device)
            start = time.perf_counter()
            paths[name]()
            sync(device)
            times[name].append(time.perf_counter() - start)
        rounds += 1
    first = names[0]
    paired = {name: statistics.median(t / f for t, f in zip(times[name], times[first])) for name in names}
    return {name: statistics.median(t) for name, t in times.items()}, paired


# ----------------------------------------------------------------------------------------------------------------
# Memory.

_libc = ctypes.CDLL("libc.so.6") if sys.platform.startswith("linux") else None


def _proc_status_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_memory(fn, device):
    """Peak memory of fn(), in bytes, as (step, total): the peak above what was in use before the call, and the peak
    itself. On CUDA torch.cuda.max_memory_allocated; on Linux CPUs the RSS high-water mark (VmHWM), reset just before
    the call after handing glibc's free memory back to the system (malloc_trim), so that what one path left cached
    does not hide the next one's needs (the total includes Python and torch). (None, None) elsewhere."""
    gc.collect()
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        sync(device)
        peak = torch.cuda.max_memory_allocated(device)
        return peak - before, peak
    if _libc is None:
        return None, None
    _libc.malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS (Linux >= 4.0)
    before = _proc_status_bytes("VmRSS")
    fn()
    peak = _proc_status_bytes("VmHWM")
    return peak - before, peak


# ----------------------------------------------------------------------------------------------------------------
# The peer.

_PEER_PACKAGES = ("dnnlib", "torch_utils", "training", "legacy", "metrics")


def _is_package_module(name):
    return any(name == p or name.startswith(p + ".") for p in _PEER_PACKAGES)


def peer_checkout_problem(checkout):
    """Why `checkout` cannot be the peer (one line), or None."""
    if not os.path.isfile(os.path.join(checkout, "legacy.py")):
        return f"--peer {checkout}: not a checkout of stylegan2-ada-pytorch or stylegan3 (no legacy.py)"
    return None


def check_peer_arg(parser, checkout):
    """A --peer that is not a peer checkout is the command line's error (none given is fine)."""
    if checkout and peer_checkout_problem(checkout):
        parser.error(peer_checkout_problem(checkout))


@contextlib.contextmanager
def peer_imports(checkout):
    """Import from a checkout of NVlabs/stylegan2-ada-pytorch or NVlabs/stylegan3 while inside the block.

    Both repositories name their packages as ours do (dnnlib, training), so ours leave sys.modules for the duration
    and come back afterwards; objects made inside keep working outside, since their code holds its own modules."""
    checkout = os.path.abspath(checkout)
    problem = peer_checkout_problem(checkout)
    if problem:
        raise SystemExit(f"error: {problem}")
    ours = {name: sys.modules.pop(name) for name in list(sys.modules) if _is_package_module(name)}
    sys.path.insert(0, checkout)
    try:
        yield
    finally:
        sys.path.remove(checkout)
        for name in [name for name in sys.modules if _is_package_module(name)]:
            del sys.modules[name]
        sys.modules.update(ours)


def load_peer_generator(checkout, pkl_path, device):
    """The peer's G_ema from an official-format pickle, through the peer's own legacy.load_network_pkl."""
    with peer_imports(checkout):
        legacy = importlib.import_module("legacy")
        with open(pkl_path, "rb") as f:
            G = legacy.load_network_pkl(f)["G_ema"]
    return G.eval().requires_grad_(False).to(device)
