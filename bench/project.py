"""Projection: speed of Projector.step() on a config-f generator, our default path vs. the reference path (the
original's arithmetic), timed interleaved in one process; and, with --recovery, how closely projection recovers images of a
small random network from known latents (PSNR and LPIPS vs. step, W vs. W+).

    python bench/project.py                              # speed at 256 and 1024 on the CPU (12 min on a busy 2-core)
    python bench/project.py --resolution 256 --steps 2 --repeats 5 --space w+
    python bench/project.py --device cuda --steps 20 --repeats 5
    python bench/project.py --recovery --threads 1       # 64x64 network, 200 steps in W and in W+: ~5 minutes

Speed. Random weights throughout: config-f G_main (its default kwargs: fmap_base 16384, fmap_max 512, 8 mapping
layers) at --resolution, and the LPIPS VGG16 of tests/conftest.py's make_lpips_network (the real architecture with
random weights; the weights do not change the work). The targets are --batch images the generator makes from seed 0.
A step is all of Projector.step(): synthesis forward, LPIPS features of the images (box-downsampled to 256x256),
noise regularisation, backward, Adam, renormalising the noise maps. Paths (same generator, LPIPS, targets and seed):
  ours     the Projector as it runs by default: the unfused modulated convolution (the modulation scales the
           activations; channels-last on the CPU) and the ops with impl='auto' (CUDA kernels on a GPU).
  ref      Projector(fused_modconv=True) inside dnnlib.ops.reference_path(): one grouped convolution with
           per-sample weights as the original, NCHW tensors, every bias_act/upfirdn2d call on its plain path.
After --warmup untimed steps per path (default 1; 0 on the CPU above 256x256, where a step takes long enough to make
one-time costs small), --repeats blocks (default 3; 2 on the CPU above 256x256) of --steps steps (default 1) per path;
inside a block the paths take turns step by step (their order reversed in every other block), so that changes in the
machine's load hit all alike.
steps/s is 1 / the median over blocks of the mean step time; 'paired' is the median over blocks of the ratio of the
step times (path / ours: above 1, ours is faster). On CUDA every step is timed between torch.cuda.synchronize() calls.
Peak memory, in a fresh child process per (resolution, path) that runs one step after start(): on the CPU the RSS
high-water mark (VmHWM, reset just before the step), on CUDA torch.cuda.max_memory_allocated; 'step' is the peak
above the memory in use before the step, 'total' the peak itself.

Recovery (--recovery). The small network of tests/conftest.py (SMALL_G_KWARGS) at --recovery-resolution with its
default initialisation: zero noise strengths, so an image depends on its W alone. Targets: two images made from a W
each, and two style-mixed images (layers below the middle from one W, the rest from another), which W cannot
represent exactly and W+ can. Each space projects all four with --recovery-loss (default: LPIPS, with the
random-weight test network) for --recovery-steps steps, the original's schedule stretched over that many steps; the
table gives, at fractions 0, 1/8, 1/4, 1/2, 3/4 and 1 of the run, the mean over each kind of target of the PSNR and
the LPIPS (the same test network) of the current projections without exploration noise. The PSNR's peak-to-peak value
is each target's own range (this network's images are not confined to [-1, 1]; at 64x64 they span about -11 to 8).
The numbers hardly depend on the thread count, and tensors this small run fastest with --threads 1.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
sys.path.insert(1, os.path.join(REPO_ROOT, "tests"))  # conftest, as the tests import it (a site-packages 'tests'
# package may shadow the directory)
import dnnlib  # noqa: E402
import dnnlib.ops  # noqa: E402
from bench.common import count_flops, machine_line, matmul_peak, sync  # noqa: E402
from bench.train import print_peak_memory  # noqa: E402
from conftest import SMALL_G_KWARGS, make_lpips_network  # noqa: E402
from dnnlib.tflib.network import Network  # noqa: E402
from training.projector import LOSSES, Projector  # noqa: E402



def build(resolution, device, seed=0):
    """Config-f generator (G_main's default kwargs) and the LPIPS module, both with random weights."""
    torch.manual_seed(seed)
    Gs = Network("Gs", func_name="training.networks_stylegan2.G_main", resolution=resolution).to(device)
    lpips = make_lpips_network().module.to(device)
    return Gs, lpips


def make_projector(path, Gs, lpips, space, targets):
    """A Projector for one path, started on the targets (its own copy of the synthesis network)."""
    proj = Projector(lpips=lpips, space=space, **(dict(fused_modconv=True) if path == "ref" else {}))
    proj.set_network(Gs)
    proj.start(targets)
    return proj


def targets_for(Gs, batch):
    """`batch` images of Gs from seed 0 (truncation 0.5, stored noise): what the speed run projects."""
    z = np.random.RandomState(0).randn(batch, *Gs.input_shape[1:])
    return Gs.run(z, None, truncation_psi=0.5, randomize_noise=False)


def timed_step(proj, path, device):
    """One Projector.step() on a path; (seconds, distances)."""
    sync(device)
    start = time.perf_counter()
    with dnnlib.ops.reference_path(path == "ref"):
        dist = proj.step()
    sync(device)
    return time.perf_counter() - start, dist


# ----------------------------------------------------------------------------------------------------------------
# Speed.

def memory_child(resolution, path, args):
    """Print the peak memory of one step of a fresh projector as JSON (runs in a child process)."""
    device = torch.device(args.device)
    Gs, lpips = build(resolution, device)
    proj = make_projector(path, Gs, lpips, args.space, targets_for(Gs, args.batch))
    print_peak_memory(device, lambda: timed_step(proj, path, device))


def measure_memory(resolution, path, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", f"{resolution}:{path}", "--device",
           args.device, "--space", args.space, "--batch", str(args.batch)]
    if args.threads is not None:
        cmd += ["--threads", str(args.threads)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"memory child {resolution}:{path} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def schedule(resolution, args, device):
    """(warm-up steps, blocks) per path: on the CPU above 256x256 no warm-up and 2 blocks, to keep the default run
    to minutes (a warm-up step there took no longer than the timed ones); else 1 and 3."""
    large = device.type == "cpu" and resolution > 256
    return (args.warmup if args.warmup is not None else 0 if large else 1,
            args.repeats if args.repeats is not None else 2 if large else 3)


def bench_resolution(resolution, paths, args, device):
    """Time the paths' steps interleaved at one resolution; then their peak memory in child processes."""
    warmup, repeats = schedule(resolution, args, device)
    t0 = time.perf_counter()
    Gs, lpips = build(resolution, device)
    targets = targets_for(Gs, args.batch)
    projs = {path: make_projector(path, Gs, lpips, args.space, targets) for path in paths}
    print(f"\n[{resolution}x{resolution}] space {args.space}, batch {args.batch}; set-up "
          f"{time.perf_counter() - t0:.1f} s; {warmup} warm-up step(s), {repeats} blocks of {args.steps} step(s) per "
          f"path", flush=True)
    # Same maths: the paths' start images (mean W, the same noise maps) agree up to rounding.
    start_images = {path: proj.get_images() for path, proj in projs.items()}
    print("  max |start image ours - path|: " + ", ".join(
        f"{path} {np.abs(start_images[path] - start_images['ours']).max():.1e}" for path in paths if path != "ours")
        + f" (image values in [{start_images['ours'].min():.2f}, {start_images['ours'].max():.2f}])", flush=True)

    first = {}
    for _ in range(warmup):
        for path in paths:
            seconds, dist = timed_step(projs[path], path, device)
            first.setdefault(path, dist)
            print(f"  warm-up {path:<7s} {seconds:.2f} s", flush=True)
    blocks = {path: [] for path in paths}
    for repeat in range(repeats):
        order = paths if repeat % 2 == 0 else paths[::-1]
        sums = dict.fromkeys(paths, 0.0)
        for _ in range(args.steps):
            for path in order:
                seconds, dist = timed_step(projs[path], path, device)
                first.setdefault(path, dist)
                sums[path] += seconds
        for path in paths:
            blocks[path].append(sums[path] / args.steps)
        print(f"  block {repeat + 1}/{repeats} " + ", ".join(f"{p} {blocks[p][-1]:.2f}" for p in paths)
              + " s/step", flush=True)
    # Step 0 of every path started from the same latents, noise and random numbers.
    print("  step 0, relative LPIPS difference to ours: " + ", ".join(
        f"{path} {np.abs(first[path] - first['ours']).max() / first['ours'].max():.1e}" for path in paths
        if path != "ours"))
    flops = count_flops(projs["ours"].step)  # one more step of ours: the same convolutions and products as ref's
    del projs, Gs, lpips

    result = dict(resolution=resolution, blocks=blocks, memory={}, flops=flops)
    result["median"] = {path: statistics.median(blocks[path]) for path in paths}
    result["paired"] = {path: statistics.median(b / o for o, b in zip(blocks["ours"], blocks[path]))
                        for path in paths}
    if not args.no_memory:
        for path in paths:
            result["memory"][path] = measure_memory(resolution, path, args)
    return result


def print_speed(results, paths, args):
    """The table: steps/s, ratios to ours and peak memory per resolution and path."""
    gib = 2 ** 30
    print(f"\nsteps/s = 1 / median over blocks of the mean step time; ratios path/ours of the step time (> 1: ours "
          f"faster), 'paired' the median over blocks; space {args.space}, batch {args.batch}")
    print("GFLOP/step: convolutions and matrix products of one step (torch's formulas); GFLOP/s and % of the "
          "measured peak as each path achieves them")
    print(f"{'res':>5} {'path':>8} {'steps/s':>8} {'s/step':>7} {'ratio':>6} {'paired':>7} {'GFLOP/step':>11} "
          f"{'GFLOP/s':>8} {'% peak':>7} {'peak step GiB':>14} {'peak total GiB':>15}")
    for r in results:
        for path in paths:
            median, mem = r["median"][path], r["memory"].get(path)
            step, total = (f"{mem['step'] / gib:.2f}", f"{mem['total'] / gib:.2f}") if mem else ("-", "-")
            rate = r["flops"] / median
            print(f"{r['resolution']:>5} {path:>8} {1 / median:>8.3f} {median:>7.2f} "
                  f"{median / r['median']['ours']:>6.2f} {r['paired'][path]:>7.2f} {r['flops'] / 1e9:>11.1f} "
                  f"{rate / 1e9:>8.1f} {100 * rate / args.peak:>7.1f} {step:>14} {total:>15}")
    if not args.no_memory:
        what = "torch.cuda.max_memory_allocated" if args.device.startswith("cuda") else "RSS high-water mark (VmHWM)"
        print(f"memory: {what}, one step in a fresh process per resolution and path (see --help)")


# ----------------------------------------------------------------------------------------------------------------
# Recovery.

def recovery_targets(Gs):
    """Two images from one W each and two style-mixed ones, [4, C, H, W], and the kind of each."""
    z = np.random.RandomState(1).randn(6, *Gs.input_shape[1:])
    w = Gs.components.mapping.run(z, None)  # [6, num_layers, dlatent_size]
    middle = w.shape[1] // 2
    mixed = np.concatenate([w[2:4, :middle], w[4:6, middle:]], axis=1)
    dlatents = np.concatenate([w[:2], mixed])
    return Gs.components.synthesis.run(dlatents, randomize_noise=False), np.array(["W", "W", "mixed", "mixed"])


def recovery_metrics(proj, lpips, targets, device):
    """PSNR [N] and LPIPS [N] of the current projections (no exploration noise) vs. the targets. The PSNR's peak is
    each target's own value range: the random network's images are not confined to [-1, 1]."""
    images = proj.get_images()
    peak = targets.max(axis=(1, 2, 3)) - targets.min(axis=(1, 2, 3))
    psnr = 10 * np.log10(peak ** 2 / np.mean((images - targets) ** 2, axis=(1, 2, 3)))
    with torch.no_grad():
        to_255 = lambda x: torch.as_tensor((x + 1) * 127.5, device=device)
        dist = lpips(to_255(images), to_255(targets)).cpu().numpy()
    return psnr, dist


def run_recovery(args, device):
    """Project known images of a small random network in W and in W+; print PSNR and LPIPS vs. step."""
    torch.manual_seed(0)
    kwargs = dict(SMALL_G_KWARGS, resolution=args.recovery_resolution)
    Gs = Network("Gs", func_name="training.networks_stylegan2.G_main", **kwargs).to(device)
    lpips = make_lpips_network().module.to(device)
    targets, kinds = recovery_targets(Gs)
    checkpoints = sorted({round(args.recovery_steps * f) for f in (0, 1 / 8, 1 / 4, 1 / 2, 3 / 4, 1)})
    print(f"\nrecovery: G {kwargs} (default initialisation), targets: {', '.join(kinds)}; loss {args.recovery_loss}, "
          f"{args.recovery_steps} steps per space", flush=True)
    rows = []
    for space in ("w", "w+"):
        t0 = time.perf_counter()
        proj = Projector(lpips=lpips, space=space, loss=args.recovery_loss)
        proj.num_steps = args.recovery_steps
        proj.set_network(Gs)
        proj.start(targets)
        table = {}
        while True:
            if proj.get_cur_step() in checkpoints:
                table[proj.get_cur_step()] = recovery_metrics(proj, lpips, targets, device)
            if proj.get_cur_step() == proj.num_steps:
                break
            proj.step()
        print(f"  {space}: {time.perf_counter() - t0:.1f} s", flush=True)
        for kind in ("W", "mixed"):
            for metric, index, fmt in (("PSNR dB", 0, "{:>7.2f}"), ("LPIPS", 1, "{:>7.4f}")):
                rows.append((space, kind, metric, [fmt.format(table[s][index][kinds == kind].mean())
                                                   for s in checkpoints]))
    print(f"\nmean over targets of each kind, vs. projection step\n{'space':>5} {'target':>6} {'metric':>8} "
          + " ".join(f"{s:>7d}" for s in checkpoints))
    for space, kind, metric, values in rows:
        print(f"{space:>5} {kind:>6} {metric:>8} " + " ".join(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=dnnlib.util.parse_num_range, default="256,1024",
                        help="generator resolutions for the speed run (default: 256,1024)")
    parser.add_argument("--space", choices=("w", "w+"), default="w", help="latent space of the speed run (default: w)")
    parser.add_argument("--batch", type=int, default=1, help="images projected at once (default: 1)")
    parser.add_argument("--steps", type=int, default=1, help="timed steps per path in a block (default: 1)")
    parser.add_argument("--repeats", type=int, help="timed blocks (default: 3; 2 on the CPU above 256x256)")
    parser.add_argument("--warmup", type=int, help="untimed steps per path first (default: 1; 0 on the CPU above "
                        "256x256)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    parser.add_argument("--recovery", action="store_true", help="run the recovery table instead of the speed run")
    parser.add_argument("--recovery-resolution", type=int, default=64, help="of the recovery network (default: 64)")
    parser.add_argument("--recovery-steps", type=int, default=200, help="projection steps per space (default: 200)")
    parser.add_argument("--recovery-loss", choices=LOSSES, default="lpips", help="projection loss (default: lpips)")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        resolution, path = args.memory_child.split(":")
        memory_child(int(resolution), path, args)
        return

    device = torch.device(args.device)
    dnnlib.util.keep_freed_memory()  # as run_projector.py does
    print(machine_line(device))
    if args.recovery:
        run_recovery(args, device)
        return
    args.peak = matmul_peak(device)
    print(f"measured peak: {args.peak / 1e9:.1f} GFLOP/s (float32 4096x4096 matrix product)")
    paths = ("ours", "ref")
    print("ours: Projector default (unfused modulated conv, ops impl='auto'); ref: fused_modconv=True inside "
          "dnnlib.ops.reference_path()")
    results = [bench_resolution(resolution, paths, args, device) for resolution in args.resolution]
    print_speed(results, paths, args)


if __name__ == "__main__":
    main()
