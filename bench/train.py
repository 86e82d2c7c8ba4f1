"""Training speed: sec/kimg, per-phase times and peak memory of StyleGAN2 training steps, our path vs. a plain
PyTorch reference path (and, with --peer, the training step of NVlabs/stylegan2-ada-pytorch or NVlabs/stylegan3),
timed interleaved in one process.

    python bench/train.py                                  # small (64x64) on the CPU: a few minutes
    python bench/train.py --peer ../stylegan3              # a third path: the peer's training step
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
  peer  (--peer PATH, a checkout of stylegan2-ada-pytorch or stylegan3) the peer's own training step on the same
        networks: G, D and Gs written as an official-format pickle and loaded by the peer's legacy.load_network_pkl
        (float32 blocks on the CPU, as ours); its StyleGAN2Loss (r1_gamma, style mixing 0.9, pl_weight 2,
        pl_batch_shrink 2, pl_decay 0.01 as ours; no augmentation, no blur, pl_no_weight_grad False) and its
        training_loop's phases: opt.zero_grad, requires_grad_ on the phase's network, accumulate_gradients per round
        with gain 1, 4 (Greg), 1, 16 (Dreg), nan_to_num of the gradients, opt.step (a gradient that sums each
        round's mean: with several rounds that many times ours, which Adam all but ignores); Adam with the
        lazy-regularisation lr/beta adjustment as ours; the G_ema update with ours' decay. Synthesis blocks that
        have it get fused_modconv_default='inference_only' (stylegan3's --cfg stylegan2: unfused in training, as ours);
        conv2d_gradfix is on as the peer's loop sets it, except in a checkout from before its PyTorch 1.11 fix, whose
        custom op would call an operator that current torch lacks. Each phase gets ours' latents z (drawn the same
        way, from the same generator, inside the timed phase; Greg's in the first half of each round's z, which is
        what the peer's loss uses) and the same reals and (empty) labels; the peer's loss draws its own style-mixing
        cutoff and latents, noise and path-length noise from torch's generator.
After the timing it prints the FLOPs of a step (convolutions and matrix products, torch's formulas, amortised as
the times are) and the rate each path achieves against a large matrix product's on this machine (the peer's rate
from its own count).
Before timing, the script prints the largest difference between the two paths' images, and after it the relative
difference of each phase's loss in step 0 (both paths start from the same weights and inputs). With --peer it also
prints, before timing, the largest difference between our and the peer's images for the same z (no style mixing,
the stored noise), and the relative difference of the Gmain, Dmain and Dreg losses of the peer's StyleGAN2Loss
and ours on the same z and reals from the initial weights (style mixing off; the noise strengths start at zero, so
the noise drawn does not matter; Greg is not compared, as the peer draws its own path-length noise). After the
timing it prints both paths' step-0 losses, which agree in size only: the peer's own style mixing differs from
ours, its Greg penalty uses pl_mean after this batch's update (ours before), and from Dmain on it runs from its
own updated G.

A timed block runs --steps training steps of each path; each step runs all four phases with backward and
optimiser step, as the loop does: Gmain, Greg (path length, half batch), Dmain, Dreg (R1), then the Gs moving
average. Inside a block the paths take turns phase by phase (ours Gmain, ref Gmain, [peer Gmain,] ours Greg, ref
Greg, ...; the order reversed in every other block), so that changes in the machine's load hit all alike. After a
process warm-up (one step per path on tiny networks) and --warmup untimed steps per path, --repeats blocks are
timed; each phase's time is the median over blocks of its mean per step. The loop runs Greg every 4th and Dreg
every 16th step:
    sec/step = Gmain + Greg / 4 + Dmain + Dreg / 16 + Gs,   sec/kimg = sec/step / batch * 1000.
Ratios are ref / ours (> 1: ours is faster): of the sec/kimg, and 'paired', the median over blocks of the ratio of
the two paths' times in that block; 'vs peer' and its 'paired' are peer / ours likewise. On CUDA every phase is
timed between torch.cuda.synchronize() calls.

Peak memory is measured in a fresh child process per (setup, path) that builds the same networks, creates the Adam
state (zero gradients, weights unchanged) and runs one full step (all four phases): on CUDA
torch.cuda.max_memory_allocated, on the CPU the RSS high-water mark VmHWM of /proc/self/status, reset to the
current RSS just before the step (echo 5 > /proc/self/clear_refs), which counts what glibc's allocator keeps as
well as live tensors. 'step' is the peak minus the memory in use just before the step (networks and optimiser
state); 'total' is the peak itself (on the CPU including Python and torch).
"""

import argparse
import copy
import functools
import importlib
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import dnnlib.ops  # noqa: E402
from bench.common import (check_peer_arg, count_flops, machine_line, matmul_peak, peak_memory,  # noqa: E402
                          peer_imports, sync)
from dnnlib.tflib.network import Network  # noqa: E402
from dnnlib.tflib.network_pickle import save_network_pkl  # noqa: E402
from training.loss import StyleGAN2Loss, random_inputs, slice_inputs  # noqa: E402
from training.training_loop import (Accumulator, accumulate_path_length, accumulate_r1, all_reduce_sum,  # noqa: E402
                                    lazy_reg_adam, my_rounds, set_requires_grad, sum_gradients,
                                    to_network_range)

PHASES = ("Gmain", "Greg", "Dmain", "Dreg", "Gs")
WEIGHTS = dict(Gmain=1.0, Greg=1 / 4, Dmain=1.0, Dreg=1 / 16, Gs=1.0)  # G_reg_interval 4, D_reg_interval 16
PATHS = ("ours", "ref")  # and "peer" with --peer
PEER_LOSS_STATS = dict(Gmain="Loss/G/loss", Greg="Loss/G/reg", Dmain="Loss/D/loss", Dreg="Loss/D/reg")  # its names
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
# The paths.

class PathTrainer:
    """What every path's trainer shares: the batch and its fixed reals, the per-step seeding of the shared input
    generator, one phase timed, and each phase's loss in step 0. Subclasses set G_opt, D_opt and run_phase()."""

    def __init__(self, path, c, device, seed=0):
        self.path, self.c, self.device, self.seed = path, c, device, seed
        self.batch, self.batch_gpu = c["batch"], c["batch_gpu"]
        self.rounds = my_rounds(self.batch, self.batch_gpu, 0, 1)
        gen = torch.Generator().manual_seed(1234)
        shape = [self.batch_gpu, 3, c["resolution"], c["resolution"]]
        self.reals = [(to_network_range(torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8), device), None)
                      for _ in self.rounds]
        self.shared_gen = torch.Generator()
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
        """Run one phase; its mean loss (a tensor or number) or None."""
        raise NotImplementedError

    def phase_loss(self, phase, result):
        """The mean loss of a phase that just ran, from what run_phase returned."""
        return float(result)

    def timed_phase(self, phase):
        """Run one phase; its wall-clock seconds."""
        sync(self.device)
        start = time.perf_counter()
        result = self.run_phase(phase)
        sync(self.device)
        seconds = time.perf_counter() - start
        if self.progress["step"] == 0:
            self.first_losses = dict(self.first_losses or {}, **{phase: self.phase_loss(phase, result)})
        return seconds

    def step(self):
        """One full step, every phase, untimed."""
        self.begin_step()
        for phase in PHASES:
            self.timed_phase(phase)
        self.end_step()


def gs_beta(batch):
    """Gs's moving-average decay per step (G_smoothing_kimg 10), for every path."""
    return 0.5 ** (batch / (10.0 * 1000))


class Trainer(PathTrainer):
    """Ours or ref: one copy of G, D, Gs, loss and optimisers; the phases of training_loop's step, one method each."""

    def __init__(self, path, G, D, c, device, seed=0):
        super().__init__(path, c, device, seed)
        self.G, self.D = G.clone("G").to(device), D.clone("D").to(device)
        self.Gs = self.G.clone("Gs")
        # The reference path runs the original's fused modulated convolution.
        self.loss = StyleGAN2Loss(self.G, self.D, r1_gamma=c["r1_gamma"], fused_modconv=path == "ref")
        adam = dict(lr=c["lrate"], betas=(0, 0.99), eps=1e-8)
        self.G_opt = lazy_reg_adam(self.G, adam, G_REG_INTERVAL)
        self.D_opt = lazy_reg_adam(self.D, adam, D_REG_INTERVAL)
        self.stats = Accumulator()

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
        rounds = my_rounds(pl_batch, pl_gpu, 0, 1)
        mean_length, penalty_sum = accumulate_path_length(loss, inputs, None, pl_noise, rounds, pl_gpu, G_REG_INTERVAL,
                                                           self.stats)
        sum_gradients(G.module.parameters())
        self.G_opt.step()
        loss.update_pl_mean(mean_length)
        return penalty_sum / pl_batch

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
        total = accumulate_r1(self.loss, self.reals, D_REG_INTERVAL, self.batch, self.stats)
        sum_gradients(self.D.module.parameters())
        self.D_opt.step()
        return total / self.batch

    def phase_Gs(self):
        with torch.no_grad():
            beta = gs_beta(self.batch)
            for p_ema, p in zip(self.Gs.module.parameters(), self.G.module.parameters()):
                p_ema.copy_(p.lerp(p_ema, beta))
            for b_ema, b in zip(self.Gs.module.buffers(), self.G.module.buffers()):
                b_ema.copy_(b)
        return 0


class PeerTrainer(PathTrainer):
    """The peer: the training step of a checkout of NVlabs/stylegan3 or NVlabs/stylegan2-ada-pytorch, on the same
    networks (written as an official-format pickle and loaded by the peer's legacy.load_network_pkl), with the same
    reals and, phase by phase, the same latents z as ours (drawn from the same shared generator in the same order).
    The peer's StyleGAN2Loss draws the rest itself from torch's global generator (style-mixing cutoff and latents,
    noise, path-length noise). Optimisers, requires_grad toggling, gradient clean-up and the G_ema update follow the
    peer's training_loop; the G_ema decay is ours."""

    def __init__(self, checkout, G, D, c, device, seed=0):
        super().__init__("peer", c, device, seed)
        ours = StyleGAN2Loss(G, D, r1_gamma=c["r1_gamma"])  # our loss settings, to give the peer the same
        self.style_mixing_prob, self.pl_batch_shrink = ours.style_mixing_prob, ours.pl_batch_shrink
        assert self.batch_gpu >= self.pl_batch_shrink, "the peer's path-length batch is batch_gpu // 2: needs 2 or more"
        # What random_inputs and pl_noise read of our G, so that the peer draws exactly ours' inputs.
        synthesis = G.module.synthesis
        noise_shapes = synthesis.noise_shapes()
        self.input_spec = SimpleNamespace(input_shape=G.input_shape, module=SimpleNamespace(
            synthesis=SimpleNamespace(num_layers=synthesis.num_layers, noise_shapes=lambda: noise_shapes),
            **({"lod": float(G.module.lod)} if hasattr(G.module, "lod") else {})))
        self.image_shape = list(G.output_shape[1:])
        with tempfile.TemporaryDirectory() as tmp:
            pkl = os.path.join(tmp, "networks.pkl")
            save_network_pkl((G, D, G.clone("Gs")), pkl)
            with peer_imports(checkout):
                legacy = importlib.import_module("legacy")
                loss_module = importlib.import_module("training.loss")
                self.misc = importlib.import_module("torch_utils.misc")
                self.training_stats = importlib.import_module("torch_utils.training_stats")
                gradfix = importlib.import_module("torch_utils.ops.conv2d_gradfix")
                with open(pkl, "rb") as f:
                    nets = legacy.load_network_pkl(f)
                if device.type != "cuda":  # float16 blocks only on CUDA, as ours (--fp16-res)
                    nets = {key: self.float32_copy(nets[key]) for key in ("G", "D", "G_ema")}
        # As the peer's training_loop: conv2d_gradfix on. A checkout from before its PyTorch 1.11 fix (no
        # _use_pytorch_1_11_api) would call an operator that torch >= 1.11 lacks; there it stays off, as the fix does.
        torch_version = tuple(int(v) for v in torch.__version__.split("+")[0].split(".")[:2])
        gradfix.enabled = hasattr(gradfix, "_use_pytorch_1_11_api") or torch_version < (1, 11)
        self.G = nets["G"].train().requires_grad_(False).to(device)
        self.D = nets["D"].train().requires_grad_(False).to(device)
        self.G_ema = nets["G_ema"].eval().requires_grad_(False).to(device)
        for module in list(self.G.modules()) + list(self.G_ema.modules()):
            if hasattr(module, "fused_modconv_default"):  # stylegan3's train.py --cfg stylegan2: unfused in training
                module.fused_modconv_default = "inference_only"
        loss_args = dict(device=device, G=self.G, G_mapping=self.G.mapping, G_synthesis=self.G.synthesis, D=self.D,
                         augment_pipe=None, r1_gamma=c["r1_gamma"], style_mixing_prob=ours.style_mixing_prob,
                         pl_weight=ours.pl_weight, pl_batch_shrink=ours.pl_batch_shrink, pl_decay=ours.pl_decay,
                         pl_no_weight_grad=False, blur_init_sigma=0, blur_fade_kimg=0)
        accepted = inspect.signature(loss_module.StyleGAN2Loss).parameters
        missing = {"r1_gamma", "style_mixing_prob", "pl_weight", "pl_batch_shrink", "pl_decay"} - set(accepted)
        assert not missing, f"the peer's StyleGAN2Loss lacks {sorted(missing)}"
        self.loss_class = loss_module.StyleGAN2Loss
        self.loss_args = {k: v for k, v in loss_args.items() if k in accepted}
        self.loss = self.loss_class(**self.loss_args)
        # stylegan2-ada-pytorch's accumulate_gradients takes sync (DDP), stylegan3's cur_nimg (blur fade-in).
        self.ada = "sync" in inspect.signature(self.loss.accumulate_gradients).parameters

        def adam(module, reg_interval):  # the peer's lazy regularisation: lr and betas scaled by mb_ratio
            mb_ratio = reg_interval / (reg_interval + 1)
            return torch.optim.Adam(module.parameters(), lr=c["lrate"] * mb_ratio,
                                    betas=[beta ** mb_ratio for beta in (0, 0.99)], eps=1e-8)
        self.G_opt, self.D_opt = adam(self.G, G_REG_INTERVAL), adam(self.D, D_REG_INTERVAL)
        self.real_c = torch.zeros([self.batch_gpu, 0], device=device)  # no labels (c_dim 0)
        self.gen_c = torch.zeros([self.batch_gpu, 0], device=device)
        self.unused_z = torch.zeros([self.batch_gpu, G.input_shape[1]], device=device)  # Dreg's (unused) latents
        self.collector = self.training_stats.Collector(regex="Loss/.*")

    def float32_copy(self, net):
        """The network rebuilt with num_fp16_res 0, as the peer's legacy.load_network_pkl(force_fp16=True) rebuilds
        with 4."""
        kwargs = copy.deepcopy(net.init_kwargs)
        net_kwargs = kwargs.get("synthesis_kwargs", kwargs)
        if not net_kwargs.get("num_fp16_res"):
            return net
        net_kwargs["num_fp16_res"] = 0
        new = type(net)(**kwargs).eval().requires_grad_(False)
        self.misc.copy_params_and_buffers(net, new, require_all=True)
        return new

    def latents(self, batch):
        """Ours' draws for one phase (random_inputs on the CPU); the peer takes the latents z alone."""
        return random_inputs(self.input_spec, batch, self.shared_gen, torch.device("cpu"),
                             self.style_mixing_prob).latents.to(self.device)

    def accumulate(self, loss, name, module, opt, gain, gen_z):
        """One phase as the peer's training_loop runs it: gen_z is one batch_gpu slice per round."""
        opt.zero_grad(set_to_none=True)
        module.requires_grad_(True)
        extra = dict(sync=True) if self.ada else dict(cur_nimg=self.progress["cur_nimg"])
        for (real, _), z in zip(self.reals, gen_z):
            loss.accumulate_gradients(phase=name, real_img=real, real_c=self.real_c, gen_z=z, gen_c=self.gen_c,
                                      gain=gain, **extra)
        module.requires_grad_(False)
        params = [p for p in module.parameters() if p.grad is not None]
        if self.ada:  # stylegan2-ada-pytorch: in place, parameter by parameter
            for p in params:
                self.misc.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
        elif params:  # stylegan3: one flat tensor
            flat = torch.cat([p.grad.flatten() for p in params])
            self.misc.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
            for p, grad in zip(params, flat.split([p.numel() for p in params])):
                p.grad = grad.reshape(p.shape)
        opt.step()

    def run_phase(self, phase):
        if phase == "Gmain":
            self.accumulate(self.loss, "Gmain", self.G, self.G_opt, 1, self.latents(self.batch).split(self.batch_gpu))
        elif phase == "Greg":
            # Ours' path-length latents: pl_batch rows in rounds of pl_gpu; the peer's loss takes the first
            # batch_gpu // pl_batch_shrink rows of each round's z, so each round gets ours' rows first.
            pl_batch = max(self.batch // self.pl_batch_shrink, 1)
            pl_gpu = self.batch_gpu // self.pl_batch_shrink
            z = self.latents(pl_batch)
            torch.randn([pl_batch] + self.image_shape, generator=self.shared_gen)  # ours' path-length noise draw
            gen_z = [torch.cat([z[start:start + pl_gpu], self.unused_z[pl_gpu:]])
                     for start in range(0, pl_batch, pl_gpu)]
            self.accumulate(self.loss, "Greg", self.G, self.G_opt, G_REG_INTERVAL, gen_z)
        elif phase == "Dmain":
            self.accumulate(self.loss, "Dmain", self.D, self.D_opt, 1, self.latents(self.batch).split(self.batch_gpu))
        elif phase == "Dreg":
            self.accumulate(self.loss, "Dreg", self.D, self.D_opt, D_REG_INTERVAL, [self.unused_z] * len(self.reals))
        else:  # Gs: the peer's G_ema update
            beta = gs_beta(self.batch)
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
                p_ema.copy_(p.lerp(p_ema, beta))
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                b_ema.copy_(b)

    def phase_loss(self, phase, result):
        """The loss the peer reported (training_stats) in the phase that just ran: its mean."""
        self.collector.update()
        return self.collector.mean(PEER_LOSS_STATS[phase]) if phase in PEER_LOSS_STATS else 0.0

    def timed_phase(self, phase):
        if self.progress["step"] == 0:
            self.collector.update()  # count from here: step 0's phase alone
        return super().timed_phase(phase)

    def same_maths_losses(self, z, real):
        """Gmain, Dmain and Dreg losses of the peer's StyleGAN2Loss on one round's z and reals, style mixing off,
        from the current weights (no weight changes; G's w_avg, which Dmain tracks, is put back)."""
        loss = self.loss_class(**dict(self.loss_args, style_mixing_prob=0))
        buffers = [b.clone() for b in self.G.buffers()]
        extra = dict(sync=True) if self.ada else dict(cur_nimg=0)
        losses = {}
        for phase, module in (("Gmain", self.G), ("Dmain", self.D), ("Dreg", self.D)):
            self.collector.update()
            module.requires_grad_(True)
            loss.accumulate_gradients(phase=phase, real_img=real, real_c=self.real_c, gen_z=z, gen_c=self.gen_c,
                                      gain=1, **extra)
            module.requires_grad_(False)
            for p in module.parameters():
                p.grad = None
            self.collector.update()
            losses[phase] = self.collector.mean(PEER_LOSS_STATS[phase])
        with torch.no_grad():
            for b, saved in zip(self.G.buffers(), buffers):
                b.copy_(saved)
        return losses


def make_trainer(path, G, D, c, device, peer=None):
    """The trainer of a path: 'ours', 'ref', or 'peer' (a checkout of the peer at `peer`)."""
    return PeerTrainer(peer, G, D, c, device) if path == "peer" else Trainer(path, G, D, c, device)


def process_warmup(device, paths, peer=None):
    """One step per path on tiny networks: the first backward pass of a process carries a one-time cost (about
    20 s of a 30 s first step on this project's 2-core CPU machine) that is not the networks' own."""
    c = dict(resolution=16, batch=4, batch_gpu=4, r1_gamma=1.0, lrate=0.002,
             G_args=dict(fmap_base=64, fmap_max=16, mapping_layers=2), D_args=dict(fmap_base=64, fmap_max=16))
    G, D = build_networks(c)
    for path in paths:
        make_trainer(path, G, D, c, device, peer).step()


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

def memory_child(setup, path, args):
    device = torch.device(args.device)
    c = setup_config(setup, args)
    G, D = build_networks(c)
    trainer = make_trainer(path, G, D, c, device, args.peer)
    del G, D
    trainer.create_optimizer_state()
    print_peak_memory(device, trainer.step)


def print_peak_memory(device, step):
    """Run step() and print, as JSON, its peak memory above what was in use before it ('step') and the peak itself
    ('total'), as bench.common.peak_memory measures them."""
    step_bytes, total = peak_memory(step, device)
    print(json.dumps(dict(step=step_bytes, total=total)))


def measure_memory(setup, path, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", f"{setup}:{path}", "--device", args.device,
           "--resolution", str(args.resolution), "--resolution-small", str(args.resolution_small)]
    if args.threads is not None:
        cmd += ["--threads", str(args.threads)]
    if args.batch is not None:
        cmd += ["--batch", str(args.batch)]
    if args.fp16_res:
        cmd += ["--fp16-res", str(args.fp16_res)]
    if path == "peer":
        cmd += ["--peer", args.peer]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"memory child {setup}:{path} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------------------------
# Timing.

def print_peer_check(ours, peer, c, device):
    """Same maths as the peer, before any step: the generators' images for the same z (no style mixing, the stored
    noise), and the Gmain, Dmain and Dreg losses of the two StyleGAN2Loss implementations on the same z and reals
    (style mixing off; the noise strengths start at zero, so the noise drawn does not matter)."""
    inputs = random_inputs(ours.G, c["batch_gpu"], torch.Generator().manual_seed(7), device, style_mixing_prob=0)
    real, G = ours.reals[0][0], ours.G.module
    with torch.no_grad():
        image = G.synthesis(G.mapping(inputs.latents, None), randomize_noise=False)
        peer_image = peer.G.synthesis(peer.G.mapping(inputs.latents, peer.gen_c), noise_mode="const")
        losses = dict(Gmain=float(ours.loss.G_main(inputs, None)[0].mean()),
                      Dmain=float(ours.loss.D_main(real, None, inputs, None)[0].mean()))
    losses["Dreg"] = float(ours.loss.D_r1(real, None)[1].detach().mean())
    peer_losses = peer.same_maths_losses(inputs.latents, real)
    print(f"  max |images ours - images peer| {float((image - peer_image).abs().max()):.1e} (same z, no style "
          f"mixing, stored noise)", flush=True)
    print("  same z and reals, no style mixing, initial weights: relative loss difference ours vs. peer: "
          + ", ".join(f"{p} {abs(losses[p] - peer_losses[p]) / max(abs(peer_losses[p]), 1e-12):.1e}" for p in losses)
          + " (Greg: the peer draws its own path-length noise)", flush=True)


def run_paths(args):
    """The paths this run times: ours and ref, and the peer's with --peer."""
    return PATHS + (("peer",) if args.peer else ())


def bench_setup(name, args, device):
    c = setup_config(name, args)
    G, D = build_networks(c)
    paths = run_paths(args)
    trainers = {path: make_trainer(path, G, D, c, device, args.peer) for path in paths}
    print(f"\n[{name}] {c['resolution']}x{c['resolution']}, batch {c['batch']} (rounds of {c['batch_gpu']}), "
          f"G {c['G_args']}, D {c['D_args']}, gamma {c['r1_gamma']}; {c['steps']} step(s) per block, "
          f"{c['repeats']} blocks per path", flush=True)

    # Same maths: ours' and ref's generators on the same inputs, from the same weights; then the peer.
    inputs = slice_inputs(random_inputs(G, c["batch_gpu"], torch.Generator().manual_seed(7), device), 0,
                          c["batch_gpu"])
    with torch.no_grad():
        images = {path: trainers[path].loss.run_G(inputs, None)[0] for path in PATHS}
    print(f"  max |images ours - images ref| {float((images['ours'] - images['ref']).abs().max()):.1e} "
          f"(images in about [-1, 1])", flush=True)
    del images
    if "peer" in trainers:
        print_peer_check(trainers["ours"], trainers["peer"], c, device)

    if c["warmup"]:
        t0 = time.perf_counter()
        for _ in range(c["warmup"]):
            for path in paths:
                trainers[path].step()
        print(f"  warm-up: {c['warmup']} step(s) per path, {time.perf_counter() - t0:.1f} s", flush=True)

    # blocks[path][i][phase]: mean seconds per step in block i. Within a block the paths take turns phase by phase
    # (ours Gmain, ref Gmain, [peer Gmain,] ours Greg, ref Greg, ...; the order reversed in every other block), so
    # that a change in the machine's load hits all paths alike.
    blocks = {path: [] for path in paths}
    for repeat in range(c["repeats"]):
        order = paths if repeat % 2 == 0 else paths[::-1]
        sums = {path: dict.fromkeys(PHASES, 0.0) for path in paths}
        for _ in range(c["steps"]):
            for path in paths:
                trainers[path].begin_step()
            for phase in PHASES:
                for path in order:
                    sums[path][phase] += trainers[path].timed_phase(phase)
            for path in paths:
                trainers[path].end_step()
        for path in paths:
            block = {p: t / c["steps"] for p, t in sums[path].items()}
            block["step"] = step_time(block)
            blocks[path].append(block)
            print(f"  block {repeat + 1}/{c['repeats']} {path:<4s} " + " ".join(f"{p} {block[p]:.3f}" for p in PHASES)
                  + f"  -> {block['step']:.3f} s/step", flush=True)
    # Step 0 of ours and ref started from the same weights and inputs: its losses agree up to rounding.
    first = {path: trainers[path].first_losses for path in paths}
    diffs = {phase: abs(first["ours"][phase] - first["ref"][phase]) / max(abs(first["ref"][phase]), 1e-12)
             for phase in PHASES if phase != "Gs"}
    print("  step 0, relative loss difference ours vs. ref: " + ", ".join(f"{p} {d:.1e}" for p, d in diffs.items()))
    if "peer" in trainers:
        # The peer's step 0 has the same z and reals but its own style mixing and noise draws (and Greg's pl_mean
        # moves before its penalty), and from Dmain on it starts from its own G: the losses agree in size only.
        print("  step 0 losses, ours / peer (the peer's own style mixing and noise): " + ", ".join(
            f"{p} {first['ours'][p]:.4g} / {first['peer'][p]:.4g}" for p in PHASES if p != "Gs"))
    # FLOPs of one more step of ours, phase by phase (the same convolutions and products as ref's), and the peer's.
    flops = {}
    for path in ("ours", "peer") if "peer" in trainers else ("ours",):
        trainers[path].begin_step()
        flops[path] = {phase: count_flops(functools.partial(trainers[path].run_phase, phase)) for phase in PHASES}
    del trainers

    result = dict(name=name, config=c, blocks=blocks, memory={})
    result["median"] = {path: {p: statistics.median(b[p] for b in blocks[path]) for p in PHASES + ("step",)}
                        for path in paths}

    def paired(other):  # median over blocks of other's time / ours' time, per phase and step
        pairs = list(zip(blocks["ours"], blocks[other]))
        return {p: statistics.median(r[p] / o[p] if o[p] else float("nan") for o, r in pairs)
                for p in PHASES + ("step",)}
    result["paired"] = paired("ref")
    result["flops_per_step"] = step_time(flops["ours"])  # amortised as the times are
    if "peer" in paths:
        result["paired_peer"] = paired("peer")
        result["flops_per_step_peer"] = step_time(flops["peer"])
    for path in paths:
        median = result["median"][path]
        median["kimg"] = step_time(median) / c["batch"] * 1000
    if not args.no_memory:
        for path in paths:
            result["memory"][path] = measure_memory(name, path, args)
    return result


def print_report(results, args):
    gib = 2 ** 30
    peer = any("peer" in r["median"] for r in results)
    print("\nsec/kimg = (Gmain + Greg/4 + Dmain + Dreg/16 + Gs) / batch * 1000, from the median phase times. Ratios "
          "ref/ours (> 1: ours faster):\n'ref/ours' of the sec/kimg, 'paired' the median over blocks of the ratio of "
          "the two paths' step times" + ("; 'vs peer' and its 'paired' likewise peer/ours" if peer else ""))
    print(f"{'setup':>8} {'res':>5} {'batch':>5} {'ours s/kimg':>12} {'ref s/kimg':>11} {'ref/ours':>9} {'paired':>7}"
          + (f" {'peer s/kimg':>12} {'vs peer':>8} {'paired':>7}" if peer else "")
          + f" {'ours mem GiB':>13} {'ref mem GiB':>12}" + (f" {'peer mem GiB':>13}" if peer else ""))
    for r in results:
        c, o, f = r["config"], r["median"]["ours"], r["median"]["ref"]
        mem = lambda path: (f"{r['memory'][path]['step'] / gib:.2f} / {r['memory'][path]['total'] / gib:.2f}"
                            if path in r["memory"] else "-")
        line = (f"{r['name']:>8} {c['resolution']:>5} {c['batch']:>5} {o['kimg']:>12.1f} {f['kimg']:>11.1f} "
                f"{f['kimg'] / o['kimg']:>9.2f} {r['paired']['step']:>7.2f}")
        if peer:
            q = r["median"]["peer"]
            line += f" {q['kimg']:>12.1f} {q['kimg'] / o['kimg']:>8.2f} {r['paired_peer']['step']:>7.2f}"
        line += f" {mem('ours'):>13} {mem('ref'):>12}" + (f" {mem('peer'):>13}" if peer else "")
        print(line)
    if not args.no_memory:
        what = "torch.cuda.max_memory_allocated" if args.device.startswith("cuda") else "RSS high-water mark (VmHWM)"
        print(f"memory: step / total, {what}, in a fresh process per setup and path (see --help)")
    print("\nFLOPs of the convolutions and matrix products of a step (Greg / 4 and Dreg / 16 as above), and the rate "
          "each path achieves, against the measured peak" + ("; the peer's own count for its rate" if peer else ""))
    print(f"{'setup':>8} {'GFLOP/step':>11} {'GFLOP/img':>10} {'ours GFLOP/s':>13} {'ref GFLOP/s':>12} "
          f"{'ours % peak':>12}"
          + (f" {'peer GFLOP/step':>16} {'peer GFLOP/s':>13}" if peer else ""))
    for r in results:
        flops, o, f = r["flops_per_step"], r["median"]["ours"]["step"], r["median"]["ref"]["step"]
        line = (f"{r['name']:>8} {flops / 1e9:>11.1f} {flops / r['config']['batch'] / 1e9:>10.2f} "
                f"{flops / o / 1e9:>13.1f} {flops / f / 1e9:>12.1f} {100 * flops / o / args.peak:>12.1f}")
        if peer:
            peer_flops = r["flops_per_step_peer"]
            line += f" {peer_flops / 1e9:>16.1f} {peer_flops / r['median']['peer']['step'] / 1e9:>13.1f}"
        print(line)
    print("\nper phase: seconds per call, median over blocks; ratio ref/ours paired per block"
          + (", and peer/ours" if peer else ""))
    print(f"{'setup':>8} {'phase':>6} {'ours s':>9} {'ref s':>9} {'ref/ours':>9}"
          + (f" {'peer s':>9} {'vs peer':>9}" if peer else ""))
    for r in results:
        for p in PHASES + ("step",):
            o, f = r["median"]["ours"][p], r["median"]["ref"][p]
            line = f"{r['name']:>8} {p:>6} {o:>9.3f} {f:>9.3f} {r['paired'][p]:>9.2f}"
            if peer:
                line += f" {r['median']['peer'][p]:>9.3f} {r['paired_peer'][p]:>9.2f}"
            print(line)


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
    parser.add_argument("--peer", metavar="PATH", help="checkout of NVlabs/stylegan2-ada-pytorch or NVlabs/stylegan3: "
                        "time its training step as a third path")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    check_peer_arg(parser, args.peer)
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
    paths = run_paths(args)
    if args.peer:
        print(f"peer: the training step of {os.path.abspath(args.peer)} (its StyleGAN2Loss.accumulate_gradients and "
              "training_loop's phases) on the same networks, reals and latents")
    t0 = time.perf_counter()
    process_warmup(device, paths, args.peer)
    print(f"process warm-up (one step per path on 16x16 networks): {time.perf_counter() - t0:.1f} s")
    results = [bench_setup(name.strip(), args, device) for name in args.setups.split(",") if name.strip()]
    print_report(results, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
