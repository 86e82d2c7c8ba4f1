"""Training speed: sec/kimg, per-phase times and peak memory of StyleGAN2 training steps, our path vs. a plain
PyTorch reference path, timed interleaved in one process.

    python bench/train.py                                  # small (64x64) on the CPU: a few minutes
    python bench/train.py --setups configf                 # config-f-sized at 256x256, batch 4: long on the CPU
    python bench/train.py --setups configf --resolution 1024 --repeats 2
    python bench/train.py --device cuda --steps 8 --repeats 5   # both setups

Setups (random networks; the reals are fixed random images, no dataset or DataLoader is involved):
  small    64x64, fmap_base 1024, fmap_max 64, mapping_layers 2 (run_training.py --cbase 2048 --cmax 64 --map 2),
           batch 32 in one round (batch_gpu 32, as --cfg auto gives at 64x64), mbstd group 4, gamma 0.0256.
  configf  config-f channel widths (fmap_base 16384, fmap_max 512, mapping_layers 8) at --resolution (256),
           rounds of batch_gpu 4, mbstd group 4, gamma 10; global batch 4 on the CPU (one round, to keep the run
           short), 32 on CUDA (8 rounds, as config-f on one GPU). --batch overrides either.
No augmentation, float32 everywhere (--fp16-res N: float16 in the N highest-resolution blocks of both paths on
CUDA, as run_training.py's ADA configs); pl_weight 2, style mixing 0.9, Adam(0, 0.99) with the lazy-regularisation
lr/beta adjustment. On CUDA both paths run with cudnn.benchmark on and TF32 off, as training_loop sets them.

Paths (same networks, same initial weights, same random inputs and reals):
  ours  the step of training/training_loop.py as it runs: StyleGAN2Loss (unfused modulated convolution in run_G,
        channels-last on the CPU) and the ops with their default impl='auto' (CUDA kernels for bias_act/upfirdn2d
        on a GPU; on the CPU the FIR filter pads inside its convolution).
  ref   the same maths the way the original computes it, inside dnnlib.ops.reference_path():
        StyleGAN2Loss(fused_modconv=True), the fused modulated convolution (one grouped conv with per-sample
        weights), NCHW tensors, and every bias_act/upfirdn2d call on its plain PyTorch path.
After the timing it prints the FLOPs of a step (convolutions and matrix products, torch's formulas, amortised as
the times are) and the rate each path achieves against a large matrix product's on this machine.
Before timing, the script prints the largest difference between the two paths' images, and after it the relative
difference of each phase's loss in step 0 (both paths start from the same weights and inputs).

A timed block runs --steps training steps of each path; each step runs all four phases with backward and
optimiser step, as the loop does: Gmain, Greg (path length, half batch), Dmain, Dreg (R1), then the Gs moving
average. Inside a block the paths take turns phase by phase (ours Gmain, ref Gmain, ours Greg, ref Greg, ...; ref
goes first in every other block), so that changes in the machine's load hit both alike. After a process warm-up
(one step per path on tiny networks) and --warmup untimed steps per path, --repeats blocks are timed; each phase's
time is the median over blocks of its mean per step. The loop runs Greg every 4th and Dreg every 16th step:
    sec/step = Gmain + Greg / 4 + Dmain + Dreg / 16 + Gs,   sec/kimg = sec/step / batch * 1000.
Ratios are ref / ours (> 1: ours is faster): of the sec/kimg, and 'paired', the median over blocks of the ratio of
the two paths' times in that block. On CUDA every phase is timed between torch.cuda.synchronize() calls.

Peak memory is measured in a fresh child process per (setup, path) that builds the same networks, creates the Adam
state (zero gradients, weights unchanged) and runs one full step (all four phases): on CUDA
torch.cuda.max_memory_allocated, on the CPU the RSS high-water mark VmHWM of /proc/self/status, reset to the
current RSS just before the step (echo 5 > /proc/self/clear_refs), which counts what glibc's allocator keeps as
well as live tensors. 'step' is the peak minus the memory in use just before the step (networks and optimiser
state); 'total' is the peak itself (on the CPU including Python and torch).
"""

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import dnnlib.ops  # noqa: E402
from bench.common import count_flops, machine_line, matmul_peak, sync  # noqa: E402
from dnnlib.tflib.network import Network  # noqa: E402
from training.loss import StyleGAN2Loss, random_inputs, slice_inputs  # noqa: E402
from training.training_loop import (Accumulator, all_reduce_sum, lazy_reg_adam, my_rounds,  # noqa: E402
                                    set_requires_grad, sum_gradients, to_network_range)

PHASES = ("Gmain", "Greg", "Dmain", "Dreg", "Gs")
WEIGHTS = dict(Gmain=1.0, Greg=1 / 4, Dmain=1.0, Dreg=1 / 16, Gs=1.0)  # G_reg_interval 4, D_reg_interval 16
PATHS = ("ours", "ref")
G_REG_INTERVAL, D_REG_INTERVAL = 4, 16


def setup_config(name, args):
    """Network kwargs and batch shape of a setup (see the module docstring)."""
    cuda = args.device.startswith("cuda")
    if name == "small":
        c = dict(resolution=args.resolution_small, batch=32, batch_gpu=32, r1_gamma=0.0256, lrate=0.0025,
                 G_args=dict(fmap_base=1024, fmap_max=64, mapping_layers=2), D_args=dict(fmap_base=1024, fmap_max=64))
    elif name == "configf":
        c = dict(resolution=args.resolution, batch=32 if cuda else 4, batch_gpu=4, r1_gamma=10.0, lrate=0.002,
                 G_args=dict(fmap_base=16384, fmap_max=512, mapping_layers=8),
                 D_args=dict(fmap_base=16384, fmap_max=512))
    else:
        raise SystemExit(f"unknown setup '{name}' (small, configf)")
    if args.batch is not None:
        c["batch"] = args.batch
        c["batch_gpu"] = min(c["batch_gpu"], args.batch)
    assert c["batch"] % c["batch_gpu"] == 0, "batch must be a multiple of batch_gpu"
    c["D_args"]["mbstd_group_size"] = min(4, c["batch_gpu"])
    if args.fp16_res:  # as run_training.py's ADA configs; float16 blocks only on CUDA (block_dtype)
        for net in (c["G_args"], c["D_args"]):
            net.update(num_fp16_res=args.fp16_res, conv_clamp=256)
    c["steps"] = args.steps if args.steps is not None else (2 if name == "small" else 1)
    c["repeats"] = args.repeats if args.repeats is not None else 3
    c["warmup"] = args.warmup if args.warmup is not None else (1 if name == "small" or cuda else 0)
    return c


# ----------------------------------------------------------------------------------------------------------------
# The two paths.

class Trainer:
    """One path's copy of G, D, Gs, loss and optimisers; the phases of training_loop's step, one method each."""

    def __init__(self, path, G, D, c, device, seed=0):
        self.path, self.c, self.device, self.seed = path, c, device, seed
        self.G, self.D = G.clone("G").to(device), D.clone("D").to(device)
        self.Gs = self.G.clone("Gs")
        # The reference path runs the original's fused modulated convolution.
        self.loss = StyleGAN2Loss(self.G, self.D, r1_gamma=c["r1_gamma"], fused_modconv=path == "ref")
        adam = dict(lr=c["lrate"], betas=(0, 0.99), eps=1e-8)
        self.G_opt = lazy_reg_adam(self.G, adam, G_REG_INTERVAL)
        self.D_opt = lazy_reg_adam(self.D, adam, D_REG_INTERVAL)
        self.batch, self.batch_gpu = c["batch"], c["batch_gpu"]
        self.rounds = my_rounds(self.batch, self.batch_gpu, 0, 1)
        gen = torch.Generator().manual_seed(1234)
        shape = [self.batch_gpu, 3, c["resolution"], c["resolution"]]
        self.reals = [(to_network_range(torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8), device), None)
                      for _ in self.rounds]
        self.shared_gen = torch.Generator()
        self.stats = Accumulator()
        self.progress = dict(cur_nimg=0, step=0, ada_sign_sum=0.0, ada_sign_count=0)
        self.first_losses = None  # each phase's loss in step 0 (from the initial weights)

    def create_optimizer_state(self):
        """Adam's state for every parameter, with no change to the weights (zero gradients, beta1 = 0)."""
        for opt in (self.G_opt, self.D_opt):
            params = [p for group in opt.param_groups for p in group["params"]]
            for p in params:
                p.grad = torch.zeros_like(p)
            opt.step()
            opt.zero_grad(set_to_none=True)

    def begin_step(self):
        step = self.progress["step"]
        self.shared_gen.manual_seed(self.seed * 1_000_003 + step)
        torch.manual_seed((self.seed * 1_000_003 + step) * 997 % 2 ** 63)
        if self.device.type == "cuda":
            torch.cuda.manual_seed((self.seed * 1_000_003 + step) * 997 % 2 ** 63)

    def end_step(self):
        self.progress["cur_nimg"] += self.batch
        self.progress["step"] += 1

    def run_phase(self, phase):
        with dnnlib.ops.reference_path(self.path == "ref"):
            return getattr(self, "phase_" + phase)()

    def phase_Gmain(self):
        G, D, loss, batch, batch_gpu, device = self.G, self.D, self.loss, self.batch, self.batch_gpu, self.device
        set_requires_grad(G, True)
        set_requires_grad(D, False)
        self.G_opt.zero_grad(set_to_none=True)
        inputs = random_inputs(G, batch, self.shared_gen, device, loss.style_mixing_prob)
        dlatent_sum = torch.zeros([G.module.synthesis.dlatent_size], device=device)
        total = 0
        for start in self.rounds:
            g_loss, dlatents = loss.G_main(slice_inputs(inputs, start, start + batch_gpu), None)
            (g_loss.sum() / batch).backward()
            dlatent_sum += dlatents[:, 0].detach().sum(dim=0)
            self.stats.add("Loss/G/loss", g_loss)
            total += g_loss.detach().sum()
        sum_gradients(G.module.parameters())
        self.G_opt.step()
        with torch.no_grad():
            loss.update_dlatent_avg(all_reduce_sum(dlatent_sum) / batch)
        return total / batch

    def phase_Greg(self):
        G, loss, device = self.G, self.loss, self.device
        self.G_opt.zero_grad(set_to_none=True)
        pl_batch, pl_gpu = max(self.batch // loss.pl_batch_shrink, 1), max(self.batch_gpu // loss.pl_batch_shrink, 1)
        inputs = random_inputs(G, pl_batch, self.shared_gen, device, loss.style_mixing_prob)
        pl_noise = loss.pl_noise(pl_batch, self.shared_gen, device)
        length_sum = torch.zeros([], device=device)
        total = 0
        for start in my_rounds(pl_batch, pl_gpu, 0, 1):
            stop = start + pl_gpu
            penalty, lengths = loss.G_pl(slice_inputs(inputs, start, stop), None, pl_noise[start:stop])
            (penalty.sum() * G_REG_INTERVAL / pl_batch).backward()
            length_sum += lengths.sum()
            self.stats.add("Loss/pl_penalty", penalty)
            self.stats.add("Loss/pl_lengths", lengths)
            total += penalty.detach().sum()
        sum_gradients(G.module.parameters())
        self.G_opt.step()
        loss.update_pl_mean(all_reduce_sum(length_sum) / pl_batch)
        return total / pl_batch

    def phase_Dmain(self):
        G, D, loss, batch, batch_gpu, device = self.G, self.D, self.loss, self.batch, self.batch_gpu, self.device
        set_requires_grad(G, False)
        set_requires_grad(D, True)
        self.D_opt.zero_grad(set_to_none=True)
        inputs = random_inputs(G, batch, self.shared_gen, device, loss.style_mixing_prob)
        sign_sum = torch.zeros([], device=device)
        total = 0
        for (real, real_c), start in zip(self.reals, self.rounds):
            d_loss, real_scores = loss.D_main(real, real_c, slice_inputs(inputs, start, start + batch_gpu), None)
            (d_loss.sum() / batch).backward()
            sign_sum += real_scores.sign().sum()
            self.stats.add("Loss/D/loss", d_loss)
            self.stats.add("Loss/scores/real", real_scores)
            total += d_loss.detach().sum()
        sum_gradients(D.module.parameters())
        self.D_opt.step()
        self.progress["ada_sign_sum"] += float(all_reduce_sum(sign_sum))
        self.progress["ada_sign_count"] += batch
        return total / batch

    def phase_Dreg(self):
        self.D_opt.zero_grad(set_to_none=True)
        total = 0
        for real, real_c in self.reals:
            penalty = self.loss.D_r1(real, real_c)
            (penalty.sum() * D_REG_INTERVAL / self.batch).backward()
            self.stats.add("Loss/r1_penalty", penalty)
            total += penalty.detach().sum()
        sum_gradients(self.D.module.parameters())
        self.D_opt.step()
        return total / self.batch

    def phase_Gs(self):
        with torch.no_grad():
            beta = 0.5 ** (self.batch / (10.0 * 1000))  # G_smoothing_kimg 10
            for p_ema, p in zip(self.Gs.module.parameters(), self.G.module.parameters()):
                p_ema.copy_(p.lerp(p_ema, beta))
            for b_ema, b in zip(self.Gs.module.buffers(), self.G.module.buffers()):
                b_ema.copy_(b)
        return 0

    def timed_phase(self, phase):
        """Run one phase; its wall-clock seconds."""
        sync(self.device)
        start = time.perf_counter()
        loss = self.run_phase(phase)
        sync(self.device)
        seconds = time.perf_counter() - start
        if self.progress["step"] == 0:
            self.first_losses = dict(self.first_losses or {}, **{phase: float(loss)})
        return seconds

    def step(self):
        """One full step, every phase, untimed."""
        self.begin_step()
        for phase in PHASES:
            self.timed_phase(phase)
        self.end_step()


def process_warmup(device):
    """One step per path on tiny networks: the first backward pass of a process carries a one-time cost (about
    20 s of a 30 s first step on this project's 2-core CPU machine) that is not the networks' own."""
    c = dict(resolution=16, batch=4, batch_gpu=4, r1_gamma=1.0, lrate=0.002,
             G_args=dict(fmap_base=64, fmap_max=16, mapping_layers=2), D_args=dict(fmap_base=64, fmap_max=16))
    G, D = build_networks(c)
    for path in PATHS:
        Trainer(path, G, D, c, device).step()


def step_time(phase_times):
    """Seconds per training step with the regularisation phases amortised over their intervals."""
    return sum(WEIGHTS[p] * phase_times[p] for p in PHASES)


def build_networks(c, seed=0):
    torch.manual_seed(seed)
    net = dict(num_channels=3, resolution=c["resolution"], label_size=0)
    G = Network("G", func_name="training.networks_stylegan2.G_main", **net, **c["G_args"])
    D = Network("D", func_name="training.networks_stylegan2.D_stylegan2", **net, **c["D_args"])
    return G, D


# ----------------------------------------------------------------------------------------------------------------
# Memory (child process per setup and path).

def proc_status_bytes(field):
    """A memory field of /proc/self/status ('VmRSS', 'VmHWM'), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_child(setup, path, args):
    device = torch.device(args.device)
    c = setup_config(setup, args)
    G, D = build_networks(c)
    trainer = Trainer(path, G, D, c, device)
    del G, D
    trainer.create_optimizer_state()
    print_peak_memory(device, trainer.step)


def print_peak_memory(device, step):
    """Run step() and print, as JSON, its peak memory above what was in use before it ('step') and the peak itself
    ('total'): torch.cuda.max_memory_allocated on CUDA, the RSS high-water mark (VmHWM) on the CPU."""
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    else:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the RSS high-water mark (VmHWM) to the current RSS (Linux >= 4.0)
        before = proc_status_bytes("VmRSS")
    step()
    if device.type == "cuda":
        sync(device)
        peak = torch.cuda.max_memory_allocated(device)
    else:
        peak = proc_status_bytes("VmHWM")
    print(json.dumps(dict(step=peak - before, total=peak)))


def measure_memory(setup, path, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", f"{setup}:{path}", "--device", args.device,
           "--resolution", str(args.resolution), "--resolution-small", str(args.resolution_small)]
    if args.threads is not None:
        cmd += ["--threads", str(args.threads)]
    if args.batch is not None:
        cmd += ["--batch", str(args.batch)]
    if args.fp16_res:
        cmd += ["--fp16-res", str(args.fp16_res)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"memory child {setup}:{path} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------------------------
# Timing.

def bench_setup(name, args, device):
    c = setup_config(name, args)
    G, D = build_networks(c)
    trainers = {path: Trainer(path, G, D, c, device) for path in PATHS}
    print(f"\n[{name}] {c['resolution']}x{c['resolution']}, batch {c['batch']} (rounds of {c['batch_gpu']}), "
          f"G {c['G_args']}, D {c['D_args']}, gamma {c['r1_gamma']}; {c['steps']} step(s) per block, "
          f"{c['repeats']} blocks per path", flush=True)

    # Same maths: both paths' generators on the same inputs, from the same weights.
    inputs = slice_inputs(random_inputs(G, c["batch_gpu"], torch.Generator().manual_seed(7), device), 0,
                          c["batch_gpu"])
    with torch.no_grad():
        images = {path: trainers[path].loss.run_G(inputs, None)[0] for path in PATHS}
    print(f"  max |images ours - images ref| {float((images['ours'] - images['ref']).abs().max()):.1e} "
          f"(images in about [-1, 1])", flush=True)
    del images

    if c["warmup"]:
        t0 = time.perf_counter()
        for _ in range(c["warmup"]):
            for path in PATHS:
                trainers[path].step()
        print(f"  warm-up: {c['warmup']} step(s) per path, {time.perf_counter() - t0:.1f} s", flush=True)

    # blocks[path][i][phase]: mean seconds per step in block i. Within a block the two paths take turns phase by
    # phase (ours Gmain, ref Gmain, ours Greg, ref Greg, ...; ref first in every other block), so that a change in
    # the machine's load hits both paths alike.
    blocks = {path: [] for path in PATHS}
    for repeat in range(c["repeats"]):
        order = PATHS if repeat % 2 == 0 else PATHS[::-1]
        sums = {path: dict.fromkeys(PHASES, 0.0) for path in PATHS}
        for _ in range(c["steps"]):
            for path in PATHS:
                trainers[path].begin_step()
            for phase in PHASES:
                for path in order:
                    sums[path][phase] += trainers[path].timed_phase(phase)
            for path in PATHS:
                trainers[path].end_step()
        for path in PATHS:
            block = {p: t / c["steps"] for p, t in sums[path].items()}
            block["step"] = step_time(block)
            blocks[path].append(block)
            print(f"  block {repeat + 1}/{c['repeats']} {path:<4s} " + " ".join(f"{p} {block[p]:.3f}" for p in PHASES)
                  + f"  -> {block['step']:.3f} s/step", flush=True)
    # Step 0 of each path started from the same weights and inputs: its losses agree up to rounding.
    diffs = {phase: abs(trainers["ours"].first_losses[phase] - trainers["ref"].first_losses[phase]) /
             max(abs(trainers["ref"].first_losses[phase]), 1e-12) for phase in PHASES if phase != "Gs"}
    print("  step 0, relative loss difference ours vs. ref: " + ", ".join(f"{p} {d:.1e}" for p, d in diffs.items()))
    # FLOPs of one more step of ours, phase by phase (the same convolutions and products as ref's).
    trainers["ours"].begin_step()
    flops = {phase: count_flops(functools.partial(trainers["ours"].run_phase, phase)) for phase in PHASES}
    del trainers

    result = dict(name=name, config=c, blocks=blocks, memory={})
    result["median"] = {path: {p: statistics.median(b[p] for b in blocks[path]) for p in PHASES + ("step",)}
                        for path in PATHS}
    pairs = list(zip(blocks["ours"], blocks["ref"]))
    result["paired"] = {p: statistics.median(r[p] / o[p] if o[p] else float("nan") for o, r in pairs)
                        for p in PHASES + ("step",)}
    result["flops_per_step"] = step_time(flops)  # amortised as the times are
    for path in PATHS:
        median = result["median"][path]
        median["kimg"] = step_time(median) / c["batch"] * 1000
    if not args.no_memory:
        for path in PATHS:
            result["memory"][path] = measure_memory(name, path, args)
    return result


def print_report(results, args):
    gib = 2 ** 30
    print("\nsec/kimg = (Gmain + Greg/4 + Dmain + Dreg/16 + Gs) / batch * 1000, from the median phase times. Ratios "
          "ref/ours (> 1: ours faster):\n'ref/ours' of the sec/kimg, 'paired' the median over blocks of the ratio of "
          "the two paths' step times")
    print(f"{'setup':>8} {'res':>5} {'batch':>5} {'ours s/kimg':>12} {'ref s/kimg':>11} {'ref/ours':>9} "
          f"{'paired':>7} {'ours mem GiB':>13} {'ref mem GiB':>12}")
    for r in results:
        c, o, f = r["config"], r["median"]["ours"], r["median"]["ref"]
        mem = lambda path: (f"{r['memory'][path]['step'] / gib:.2f} / {r['memory'][path]['total'] / gib:.2f}"
                            if r["memory"] else "-")
        print(f"{r['name']:>8} {c['resolution']:>5} {c['batch']:>5} {o['kimg']:>12.1f} {f['kimg']:>11.1f} "
              f"{f['kimg'] / o['kimg']:>9.2f} {r['paired']['step']:>7.2f} {mem('ours'):>13} {mem('ref'):>12}")
    if not args.no_memory:
        what = "torch.cuda.max_memory_allocated" if args.device.startswith("cuda") else "RSS high-water mark (VmHWM)"
        print(f"memory: step / total, {what}, in a fresh process per setup and path (see --help)")
    print("\nFLOPs of the convolutions and matrix products of a step (Greg / 4 and Dreg / 16 as above), and the rate "
          "each path achieves, against the measured peak")
    print(f"{'setup':>8} {'GFLOP/step':>11} {'GFLOP/img':>10} {'ours GFLOP/s':>13} {'ref GFLOP/s':>12} {'ours % peak':>12}")
    for r in results:
        flops, o, f = r["flops_per_step"], r["median"]["ours"]["step"], r["median"]["ref"]["step"]
        print(f"{r['name']:>8} {flops / 1e9:>11.1f} {flops / r['config']['batch'] / 1e9:>10.2f} "
              f"{flops / o / 1e9:>13.1f} {flops / f / 1e9:>12.1f} {100 * flops / o / args.peak:>12.1f}")
    print("\nper phase: seconds per call, median over blocks; ratio ref/ours paired per block")
    print(f"{'setup':>8} {'phase':>6} {'ours s':>9} {'ref s':>9} {'ref/ours':>9}")
    for r in results:
        for p in PHASES + ("step",):
            o, f = r["median"]["ours"][p], r["median"]["ref"][p]
            print(f"{r['name']:>8} {p:>6} {o:>9.3f} {f:>9.3f} {r['paired'][p]:>9.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--setups", help="comma-separated: small, configf (default: both on CUDA; small on the CPU, "
                        "where one config-f-sized step takes minutes)")
    parser.add_argument("--steps", type=int, help="training steps per timed block (default: small 2, configf 1)")
    parser.add_argument("--repeats", type=int, help="timed blocks per path (default: 3)")
    parser.add_argument("--warmup", type=int, help="untimed steps per path before the blocks (default: 1; 0 for "
                        "configf on the CPU, where one-time costs are small next to a step)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--resolution", type=int, default=256, help="resolution of configf (default: 256)")
    parser.add_argument("--resolution-small", type=int, default=64, help="resolution of small (default: 64)")
    parser.add_argument("--batch", type=int, help="global batch of every setup (default: see above)")
    parser.add_argument("--fp16-res", type=int, default=0, help="num_fp16_res of G and D (with conv_clamp 256) in "
                        "both paths, as run_training.py's ADA configs; float16 runs on CUDA only (default: 0)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(*args.memory_child.split(":"), args)
        return

    device = torch.device(args.device)
    if args.setups is None:
        args.setups = "small,configf" if device.type == "cuda" else "small"
    if device.type == "cuda":
        assert torch.cuda.is_available(), "--device cuda but CUDA is not available"
        # As training_loop sets them on CUDA, for both paths: autotuned convolutions, no TF32.
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    dnnlib.util.keep_freed_memory()  # as run_training.py does
    print(machine_line(device))
    args.peak = matmul_peak(device)
    print(f"measured peak: {args.peak / 1e9:.1f} GFLOP/s (float32 4096x4096 matrix product)")
    print("ours: training_loop's step as it runs (StyleGAN2Loss, unfused modulated conv, ops impl='auto'); "
          "ref: the same inside dnnlib.ops.reference_path() with the fused modulated conv")
    t0 = time.perf_counter()
    process_warmup(device)
    print(f"process warm-up (one step per path on 16x16 networks): {time.perf_counter() - t0:.1f} s")
    results = [bench_setup(name.strip(), args, device) for name in args.setups.split(",") if name.strip()]
    print_report(results, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
