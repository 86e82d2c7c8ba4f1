"""The StyleGAN2 training loop: lazy regularisation, Gs moving average, ADA, ticks and snapshots, exact resume.

One process per device; with torch.distributed initialised, each process takes its share of every global
minibatch and gradients are summed over processes. A step is split into accumulation rounds of `batch_gpu`
images, as in the original, so D's minibatch-stddev groups and the result do not depend on how many processes
run it.

All randomness of a step is a function of (seed, step, rank): the shared generator (latents, noise, labels of
fakes) is re-seeded from (seed, step) and the per-process generator (augmentation) from (seed, step, rank). A
snapshot therefore needs no RNG state to continue exactly where it was taken."""

import json
import os
import resource
import time

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

import dnnlib
from dnnlib.tflib.network_pickle import save_network_pkl
from metrics import metric_base
from training import dataset as dataset_lib
from training.augment import AugmentPipe
from training.loss import StyleGAN2Loss, random_inputs, slice_inputs

STATE_VERSION = 1


def state_path_for(pkl_path):
    """Training state saved beside a network snapshot: 'network-snapshot-000123.pkl' -> '...-000123.pt'."""
    return os.path.splitext(pkl_path)[0] + ".pt"


# ----------------------------------------------------------------------------------------------------------------
# Image grids.

def grid_shape(resolution):
    """Grid of about 8K pixels ('8k' in the original): columns, rows."""
    return int(np.clip(7680 // resolution, 7, 32)), int(np.clip(4320 // resolution, 4, 32))


def save_image_grid(images, path, drange, grid_size):
    """Tile [N, C, H, W] images (values in `drange`) into a gw x gh grid and write it atomically as PNG."""
    gw, gh = grid_size
    images = np.asarray(images, dtype=np.float32)
    lo, hi = drange
    images = np.rint((images - lo) * (255 / (hi - lo))).clip(0, 255).astype(np.uint8)
    _N, C, H, W = images.shape
    images = images.reshape(gh, gw, C, H, W).transpose(0, 3, 1, 4, 2).reshape(gh * H, gw * W, C)
    image = PIL.Image.fromarray(images[:, :, 0], "L") if C == 1 else PIL.Image.fromarray(images, "RGB")
    with dnnlib.util.atomic_write(path) as f:
        image.save(f, format="PNG")


# ----------------------------------------------------------------------------------------------------------------
# Distributed helpers (no-ops in a single process).

def dist_info():
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def all_reduce_sum(tensor):
    if dist_info()[1] > 1:
        torch.distributed.all_reduce(tensor)
    return tensor


def sum_gradients(params):
    """Sum the gradients of `params` over processes in one flat all-reduce; non-finite values become 0."""
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    all_reduce_sum(flat)
    torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
    for p, g in zip(params, flat.split([p.numel() for p in params])):
        p.grad.copy_(g.reshape(p.shape))


# ----------------------------------------------------------------------------------------------------------------
# Data.

class GlobalBatchSampler(torch.utils.data.Sampler):
    """Indices of this process's share of each global minibatch, forever, starting at image `start_nimg`.

    Image number n of the run is dataset item perm_e[n % len] with e = n // len, perm_e a permutation seeded by
    (seed, e): the data order depends only on the seed, and a resumed run continues the same sequence."""

    def __init__(self, dataset_size, batch_size, batch_gpu, rank, world_size, seed, start_nimg=0, shuffle=True):
        assert batch_size % (batch_gpu * world_size) == 0
        self.size, self.batch_size, self.batch_gpu = dataset_size, batch_size, batch_gpu
        self.rank, self.world_size, self.seed, self.start_nimg, self.shuffle = rank, world_size, seed, start_nimg, \
            shuffle

    def __iter__(self):
        epoch, perm = None, None
        nimg = self.start_nimg
        while True:
            for start in my_rounds(self.batch_size, self.batch_gpu, self.rank, self.world_size):
                for n in range(nimg + start, nimg + start + self.batch_gpu):
                    if n // self.size != epoch:
                        epoch = n // self.size
                        perm = (np.random.RandomState([self.seed, epoch]).permutation(self.size) if self.shuffle
                                else np.arange(self.size))
                    yield int(perm[n % self.size])
            nimg += self.batch_size


def my_rounds(batch_size, batch_gpu, rank, world_size):
    """Offsets in the global minibatch of the accumulation rounds this process runs."""
    return range(rank * batch_gpu, batch_size, batch_gpu * world_size)


def to_network_range(images_uint8, device):
    return images_uint8.to(device).to(torch.float32) / 127.5 - 1


def sample_labels(training_set, num, generator):
    """Labels of `num` random dataset items, for the fakes of a conditional network."""
    if not training_set.label_size:
        return None
    idx = torch.randint(len(training_set), [num], generator=generator).tolist()
    return torch.from_numpy(np.stack([training_set.get_label(i) for i in idx]))


def accumulate_path_length(loss, inputs, labels, pl_noise, rounds, pl_gpu, gain, stats):
    """Backpropagate the path-length penalty of this process's rounds of a global batch of `len(pl_noise)`.
    Returns the mean length over the global batch (for `loss.update_pl_mean`) and this process's sum of the
    weighted penalty.

    The penalty's target depends on that global mean, so it is known first: with one round the lengths keep their
    graph while the mean is summed over processes; with more, a first pass without the double-backward graph
    measures them, and a second backpropagates round by round (memory stays that of one round)."""
    pl_batch = len(pl_noise)
    parts = [(slice_inputs(inputs, start, start + pl_gpu), slice_rows(labels, start, start + pl_gpu),
              pl_noise[start:start + pl_gpu]) for start in rounds]
    one_round = len(parts) == 1
    measured = [loss.pl_lengths(*part, create_graph=one_round) for part in parts]
    length_sum = sum((lengths.detach().sum() for lengths in measured), torch.zeros([], device=pl_noise.device))
    mean_length = all_reduce_sum(length_sum) / pl_batch
    penalty_sum = torch.zeros([], device=pl_noise.device)
    for part, lengths in zip(parts, measured):
        if not one_round:  # again, now with the double-backward graph
            lengths = loss.pl_lengths(*part)
        penalty, surrogate = loss.pl_penalty(lengths, mean_length)
        (surrogate.sum() * gain / pl_batch).backward()
        stats.add("Loss/pl_penalty", penalty)
        stats.add("Loss/G/reg", penalty * loss.pl_weight)
        stats.add("Loss/pl_lengths", lengths)
        penalty_sum += penalty.sum() * loss.pl_weight
    return mean_length, penalty_sum


def accumulate_r1(loss, reals, gain, batch_size, stats):
    """Backpropagate the R1 regulariser of this process's rounds of reals ([(images, labels)]) of a global batch
    of `batch_size`, scaled by `gain`; returns this process's sum of it."""
    reg_sum = 0
    for real, real_c in reals:
        penalty, reg = loss.D_r1(real, real_c)
        (reg.sum() * gain / batch_size).backward()
        stats.add("Loss/r1_penalty", penalty)
        stats.add("Loss/D/reg", reg)
        reg_sum += reg.detach().sum()
    return reg_sum


# ----------------------------------------------------------------------------------------------------------------
# Snapshots.

def capture_state(G_opt, D_opt, loss, augment_pipe, progress):
    """Everything besides the networks that a resumed run needs: plain tensors and numbers only, so that
    torch.load(weights_only=True) can read it back."""
    return dict(version=STATE_VERSION, G_opt=G_opt.state_dict(), D_opt=D_opt.state_dict(),
                pl_mean=loss.pl_mean.detach().cpu(),
                augment_p=float(augment_pipe.p) if augment_pipe is not None else 0.0,
                progress=dict(progress))


def save_snapshot(run_dir, nets, state, kimg):
    """Write 'network-snapshot-<kimg>.pkl' (the original (G, D, Gs) pickle) and the training state beside it.
    The state goes first: a snapshot pickle is only ever found next to its complete state."""
    pkl_path = os.path.join(run_dir, f"network-snapshot-{kimg:06d}.pkl")
    with dnnlib.util.atomic_write(state_path_for(pkl_path)) as f:
        torch.save(state, f)
    save_network_pkl(nets, pkl_path)
    return pkl_path


def load_state(path):
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise dnnlib.util.UserError(f"cannot read the training state '{path}' ({err}); resume from an earlier "
                                    "snapshot or start over") from err
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise dnnlib.util.UserError(f"'{path}' is not a training state this version can read")
    return state


# ----------------------------------------------------------------------------------------------------------------
# Logging.

class StatsLog:
    """Per-tick scalars: 'stats.jsonl' in the run dir (one JSON object per line, flushed at once) and
    TensorBoard event files when tensorboard is installed."""

    def __init__(self, run_dir):
        self.file = open(os.path.join(run_dir, "stats.jsonl"), "at", encoding="utf-8")
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(run_dir)
        except ImportError:
            self.writer = None

    def write(self, stats, nimg):
        self.file.write(json.dumps(stats) + "\n")
        self.file.flush()
        if self.writer is not None:
            for name, value in stats.items():
                if isinstance(value, (int, float)) and name != "timestamp":
                    self.writer.add_scalar(name, value, global_step=nimg)
            self.writer.flush()

    def close(self):
        self.file.close()
        if self.writer is not None:
            self.writer.close()


class Accumulator:
    """Running means of named scalars over a tick."""

    def __init__(self):
        self.sums, self.counts = {}, {}

    def add(self, name, values):
        values = torch.as_tensor(values).detach().flatten().to(torch.float64)
        self.sums[name] = self.sums.get(name, 0.0) + float(values.sum())
        self.counts[name] = self.counts.get(name, 0) + values.numel()

    def means(self):
        means = {name: self.sums[name] / max(self.counts[name], 1) for name in self.sums}
        self.sums, self.counts = {}, {}
        return means


def peak_memory_gb(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # kilobytes on Linux


# ----------------------------------------------------------------------------------------------------------------
# Progressive growing (configs a-d): the original TrainingSchedule and process_reals.

def training_schedule(cur_nimg, resolution_log2, lod_initial_resolution=None, lod_training_kimg=600,
                      lod_transition_kimg=600, minibatch_size_base=32, minibatch_size_dict={}, minibatch_gpu_base=4,
                      minibatch_gpu_dict={}, G_lrate_base=0.002, G_lrate_dict={}, D_lrate_base=0.002, D_lrate_dict={},
                      lrate_rampup_kimg=0):
    """The original training_schedule(): level of detail, minibatch and learning rates at `cur_nimg` images.

    From lod = log2(resolution / lod_initial_resolution), each phase of lod_training_kimg + lod_transition_kimg
    trains at one level, then fades the next one in (lod falling linearly to the next integer) over the
    transition. The dicts override the base values by the resolution being trained, 2 ** (log2(res) -
    floor(lod)). Keys may be strings (the options come back from JSON)."""
    s = dnnlib.util.EasyDict(kimg=cur_nimg / 1000.0)
    phase_dur = lod_training_kimg + lod_transition_kimg
    phase_idx = int(np.floor(s.kimg / phase_dur)) if phase_dur > 0 else 0
    phase_kimg = s.kimg - phase_idx * phase_dur
    if lod_initial_resolution is None:
        s.lod = 0.0
    else:
        lod = resolution_log2 - np.floor(np.log2(lod_initial_resolution)) - phase_idx
        if lod_transition_kimg > 0:
            lod -= max(phase_kimg - lod_training_kimg, 0.0) / lod_transition_kimg
        s.lod = max(float(lod), 0.0)
    s.resolution = 2 ** (resolution_log2 - int(np.floor(s.lod)))
    pick = lambda table, base: {int(k): v for k, v in table.items()}.get(s.resolution, base)
    s.minibatch_size = pick(minibatch_size_dict, minibatch_size_base)
    s.minibatch_gpu = pick(minibatch_gpu_dict, minibatch_gpu_base)
    s.G_lrate = pick(G_lrate_dict, G_lrate_base)
    s.D_lrate = pick(D_lrate_dict, D_lrate_base)
    if lrate_rampup_kimg > 0:
        rampup = min(s.kimg / lrate_rampup_kimg, 1.0)
        s.G_lrate *= rampup
        s.D_lrate *= rampup
    return s


def process_reals(x, lod):
    """Reals [N, C, H, W] at the level of detail `lod`, as the original's process_reals: averaged down by
    2 ** floor(lod), cross-faded with their own 2x2 averages by the fraction of lod, and upscaled again (nearest)
    to the full resolution. (The original reads the lower levels from the dataset's lod TFRecords, which are
    rounded to uint8; here they are averaged in float from the full-resolution images.)"""
    if lod <= 0:
        return x
    level = int(np.floor(lod))
    t = lod - level
    if level:
        x = F.avg_pool2d(x, 2 ** level)
    if t > 0:
        y = F.avg_pool2d(x, 2).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        x = x + (y - x) * t
    if level:
        x = x.repeat_interleave(2 ** level, dim=2).repeat_interleave(2 ** level, dim=3)
    return x


def set_lod(net, lod):
    """Set every `lod` variable of a network (G's own and its synthesis network's, or D's)."""
    with torch.no_grad():
        for name, buf in net.module.named_buffers():
            if name == "lod" or name.endswith(".lod"):
                buf.fill_(lod)


# ----------------------------------------------------------------------------------------------------------------
# The loop.

def lazy_reg_adam(net, args, reg_interval, lazy=True):
    """Adam for a network regularised every `reg_interval` steps: lr and betas compensated for the extra steps
    as the original does (no compensation with lazy=False). args: Adam's kwargs (lr, betas, eps)."""
    ratio = reg_interval / (reg_interval + 1) if lazy else 1.0
    args = dict(args, lr=args["lr"] * ratio, betas=tuple(beta ** ratio for beta in args["betas"]))
    return torch.optim.Adam(net.module.parameters(), **args)


def set_requires_grad(net, flag, frozen=()):
    for name, param in net.module.named_parameters():
        param.requires_grad_(flag and not name.startswith(tuple(frozen)))


def d_frozen_prefixes(D, freeze_layers):
    """Module prefixes of D's first `freeze_layers` blocks counted from the highest resolution (Freeze-D)."""
    res_log2 = D.module.resolution_log2
    return [f"{2 ** res}x{2 ** res}." for res in range(res_log2, res_log2 - freeze_layers, -1)]


def training_loop(
    run_dir,                        # Where logs, grids and snapshots go.
    dataset_args,                   # kwargs of training.dataset.load_dataset().
    G_args,                         # kwargs of G_main (architecture, fmap_base, ...).
    D_args,                         # kwargs of D_stylegan2.
    G_opt_args=dict(lr=0.002, betas=(0, 0.99), eps=1e-8),
    D_opt_args=dict(lr=0.002, betas=(0, 0.99), eps=1e-8),
    loss_args={},                   # kwargs of StyleGAN2Loss (r1_gamma, pl_weight, style_mixing_prob...).
    augment_args=None,              # kwargs of AugmentPipe, or None for no augmentation.
    augment_p=0.0,                  # Initial augmentation probability.
    ada_target=None,                # ADA target for E[sign(D(real))], or None for a fixed p.
    ada_interval=4,                 # Steps between p adjustments.
    ada_kimg=500,                   # Images for p to go from 0 to 1 at the fastest.
    batch_size=32,                  # Global minibatch.
    batch_gpu=4,                    # Images per accumulation round and process.
    G_reg_interval=4, D_reg_interval=16,
    G_smoothing_kimg=10.0,          # Half-life of the Gs moving average.
    ema_rampup=None,                # Gs half-life ramp-up as a fraction of training so far (ADA), or None.
    total_kimg=25000,
    kimg_per_tick=4,
    image_snapshot_ticks=10,
    network_snapshot_ticks=10,
    freeze_layers=0,                # Freeze-D: D blocks from the top that do not train.
    random_seed=0,
    resume_nets=None,               # (G, D, Gs) to start from, or None for new networks.
    resume_state=None,              # Training state saved with a snapshot of this kind of run, or None.
    num_workers=2,                  # DataLoader worker processes.
    device=None,
    abort_fn=None,                  # Called once per tick: True stops the run after saving a snapshot.
    metrics=(),                     # Metric names (metrics/metric_defaults.py) evaluated at each network snapshot.
    metric_weights=None,            # Feature network weights for the metrics: FeatureNetworks kwargs (paths).
    sched_args=None,                # Progressive growing: training_schedule() kwargs (lod, per-resolution minibatch
                                    # and lrate), overriding batch_size, batch_gpu and the lr; None: no growing.
    lazy_regularization=True,       # False: R1 every step inside D's step, no lr compensation (configs a-b).
    reset_opt_for_new_lod=True,     # Reset the Adam state when new layers come in (progressive growing).
    allow_tf32=False,               # GPUs: TF32 in convolutions and matrix products (--allow-tf32).
    cudnn_benchmark=True,           # GPUs: cuDNN autotuning (off with --nobench).
):
    rank, world_size = dist_info()
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":  # as StyleGAN2-ADA: autotuned convolutions, full float32 where not float16
        torch.backends.cudnn.benchmark = cudnn_benchmark
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allow_tf32
    is_main = rank == 0
    log = print if is_main else (lambda *_args, **_kwargs: None)
    start_time = time.time()
    if batch_size % (batch_gpu * world_size):
        raise dnnlib.util.UserError(f"--batch {batch_size} must be a multiple of batch-gpu {batch_gpu} x "
                                    f"{world_size} processes")

    # Data.
    training_set = dataset_lib.load_dataset(**dataset_args)
    log(f"Dataset: {len(training_set)} images of {training_set.image_shape}, labels {training_set.label_size}")

    # Networks: the same initial weights in every process.
    from dnnlib.tflib.network import Network
    torch.manual_seed(random_seed)
    net_args = dict(num_channels=training_set.num_channels, resolution=training_set.resolution,
                    label_size=training_set.label_size)
    if resume_nets is None:
        G_args, D_args = dict(G_args), dict(D_args)  # func_name: another build function, as the original's options
        G = Network("G", func_name=G_args.pop("func_name", "training.networks_stylegan2.G_main"), **net_args,
                    **G_args)
        D = Network("D", func_name=D_args.pop("func_name", "training.networks_stylegan2.D_stylegan2"), **net_args,
                    **D_args)
        Gs = G.clone("Gs")
    else:
        G, D, Gs = resume_nets
        check_compatible(G, training_set)
    G, D, Gs = G.to(device), D.to(device), Gs.to(device)
    if is_main:
        G.print_layers()
        D.print_layers()

    # Training state.
    progress = dict(cur_nimg=0, step=0, cur_tick=0, tick_start_nimg=0, total_time=0.0, ada_sign_sum=0.0,
                    ada_sign_count=0, prev_lod=-1.0)
    augment_pipe = None
    if augment_args is not None:
        augment_pipe = AugmentPipe(**augment_args).train().requires_grad_(False).to(device)
        augment_pipe.p.copy_(torch.as_tensor(augment_p))
    loss = StyleGAN2Loss(G, D, augment_pipe=augment_pipe, **loss_args)

    if not lazy_regularization and loss.pl_weight > 0:
        raise dnnlib.util.UserError("path-length regularisation runs lazily only: set pl_weight=0 or "
                                    "lazy_regularization=True")
    G_opt = lazy_reg_adam(G, G_opt_args, G_reg_interval, lazy_regularization)
    D_opt = lazy_reg_adam(D, D_opt_args, D_reg_interval, lazy_regularization)
    lr_ratios = [interval / (interval + 1) if lazy_regularization else 1.0
                 for interval in (G_reg_interval, D_reg_interval)]  # lazy_reg_adam's lr compensation
    if resume_state is not None:
        G_opt.load_state_dict(resume_state["G_opt"])
        D_opt.load_state_dict(resume_state["D_opt"])
        loss.pl_mean = resume_state["pl_mean"].to(device)
        if augment_pipe is not None:
            augment_pipe.p.copy_(torch.as_tensor(resume_state["augment_p"]))
        progress.update(resume_state["progress"])
        log(f"Resuming at {progress['cur_nimg'] / 1000:.1f} kimg")
    frozen = d_frozen_prefixes(D, freeze_layers)
    metric_group = metric_ctx = None
    if metrics:  # loaded now, so that missing weights stop the run before training
        dataset_kwargs = {k: v for k, v in dataset_args.items() if k != "mirror_augment"}
        metric_ctx = metric_base.MetricContext(Gs, dataset_kwargs, dataset_args.get("mirror_augment", False),
                                               metric_base.FeatureNetworks(**(metric_weights or {})))
        metric_group = metric_base.MetricGroup(metrics)
        metric_group.prepare(metric_ctx)

    # Snapshot grid: random reals and fixed latents, as in the original's 'random' layout.
    grid_size = grid_shape(training_set.resolution)
    grid_rnd = np.random.RandomState(random_seed)
    grid_idx = grid_rnd.randint(len(training_set), size=grid_size[0] * grid_size[1])
    grid_latents = torch.from_numpy(grid_rnd.randn(len(grid_idx), G.input_shape[1]).astype(np.float32))
    grid_labels = (torch.from_numpy(np.stack([training_set.get_label(i) for i in grid_idx]))
                   if training_set.label_size else None)

    def save_fakes(name):
        grid_batch = max(batch_gpu, 32)  # no gradients: bigger batches, fewer calls
        labels = [None] * len(grid_latents) if grid_labels is None else grid_labels.split(grid_batch)
        with torch.no_grad():
            images = [Gs.module(z.to(device), to_device(c, device), is_validation=True, truncation_psi_val=None,
                                randomize_noise=False).cpu()
                      for z, c in zip(grid_latents.split(grid_batch), labels)]
        save_image_grid(torch.cat(images).numpy(), os.path.join(run_dir, name), [-1, 1], grid_size)

    if is_main and resume_state is None:
        save_image_grid(np.stack([training_set[i][0] for i in grid_idx]), os.path.join(run_dir, "reals.png"),
                        [0, 255], grid_size)
        save_fakes("fakes_init.png")

    def make_loader(batch_size, batch_gpu):
        sampler = GlobalBatchSampler(len(training_set), batch_size, batch_gpu, rank, world_size, random_seed,
                                     start_nimg=progress["cur_nimg"])
        return iter(torch.utils.data.DataLoader(training_set, batch_size=batch_gpu, sampler=sampler,
                                                num_workers=num_workers, pin_memory=device.type == "cuda",
                                                persistent_workers=num_workers > 0))

    resolution_log2 = int(np.log2(training_set.resolution))
    sched = None
    if sched_args is not None:
        sched = training_schedule(progress["cur_nimg"], resolution_log2, **sched_args)
        batch_size, batch_gpu = sched.minibatch_size, sched.minibatch_gpu
    loader = make_loader(batch_size, batch_gpu)
    stats_log = StatsLog(run_dir) if is_main else None
    tick_stats = Accumulator()
    rounds = my_rounds(batch_size, batch_gpu, rank, world_size)
    shared_gen = torch.Generator()
    log(f"Training for {total_kimg} kimg...\n")
    tick_start_time = time.time()
    maintenance_time = tick_start_time - start_time

    while progress["cur_nimg"] < total_kimg * 1000:
        step = progress["step"]
        if sched_args is not None:  # progressive growing: lod, minibatch and learning rates of this step
            sched = training_schedule(progress["cur_nimg"], resolution_log2, **sched_args)
            if (sched.minibatch_size, sched.minibatch_gpu) != (batch_size, batch_gpu):
                batch_size, batch_gpu = sched.minibatch_size, sched.minibatch_gpu
                if batch_size % (batch_gpu * world_size):
                    raise dnnlib.util.UserError(f"minibatch {batch_size} at {sched.resolution}x{sched.resolution} is "
                                                f"not a multiple of batch-gpu {batch_gpu} x {world_size} processes")
                rounds = my_rounds(batch_size, batch_gpu, rank, world_size)
                loader = make_loader(batch_size, batch_gpu)
            prev_lod = progress["prev_lod"]
            if reset_opt_for_new_lod and (np.floor(sched.lod) != np.floor(prev_lod) or
                                          np.ceil(sched.lod) != np.ceil(prev_lod)):
                G_opt.state.clear()
                D_opt.state.clear()
            progress["prev_lod"] = sched.lod
            for opt, lrate, ratio in ((G_opt, sched.G_lrate, lr_ratios[0]), (D_opt, sched.D_lrate, lr_ratios[1])):
                for group in opt.param_groups:
                    group["lr"] = lrate * ratio
            set_lod(G, sched.lod)
            set_lod(D, sched.lod)
        shared_gen.manual_seed(random_seed * 1_000_003 + step)
        torch.manual_seed(((random_seed * 1_000_003 + step) * 997 + rank) % 2 ** 63)  # augmentation draws
        if device.type == "cuda":
            torch.cuda.manual_seed(((random_seed * 1_000_003 + step) * 997 + rank) % 2 ** 63)
        reals = [next(loader) for _ in rounds]
        reals = [(to_network_range(x, device), c.to(device) if training_set.label_size else None) for x, c in reals]
        if sched is not None:
            reals = [(process_reals(x, sched.lod), c) for x, c in reals]

        # G: main loss.
        set_requires_grad(G, True)
        set_requires_grad(D, False)
        G_opt.zero_grad(set_to_none=True)
        inputs = random_inputs(G, batch_size, shared_gen, device, loss.style_mixing_prob)
        fake_labels = to_device(sample_labels(training_set, batch_size, shared_gen), device)
        dlatent_sum = torch.zeros([G.module.synthesis.dlatent_size], device=device)
        for start in rounds:
            part = slice_inputs(inputs, start, start + batch_gpu)
            g_loss, dlatents = loss.G_main(part, slice_rows(fake_labels, start, start + batch_gpu))
            (g_loss.sum() / batch_size).backward()
            dlatent_sum += dlatents[:, 0].detach().sum(dim=0)
            tick_stats.add("Loss/G/loss", g_loss)
        sum_gradients(G.module.parameters())
        G_opt.step()
        with torch.no_grad():
            loss.update_dlatent_avg(all_reduce_sum(dlatent_sum) / batch_size)

        # G: path-length regularisation, every G_reg_interval steps on a shrunk minibatch.
        if loss.pl_weight > 0 and step % G_reg_interval == 0:
            G_opt.zero_grad(set_to_none=True)
            shrink = loss.pl_batch_shrink
            pl_batch, pl_gpu = max(batch_size // shrink, 1), max(batch_gpu // shrink, 1)
            inputs = random_inputs(G, pl_batch, shared_gen, device, loss.style_mixing_prob)
            pl_labels = to_device(sample_labels(training_set, pl_batch, shared_gen), device)
            pl_noise = loss.pl_noise(pl_batch, shared_gen, device)
            mean_length, _ = accumulate_path_length(loss, inputs, pl_labels, pl_noise,
                                                    my_rounds(pl_batch, pl_gpu, rank, world_size), pl_gpu,
                                                    G_reg_interval, tick_stats)
            sum_gradients(G.module.parameters())
            G_opt.step()
            loss.update_pl_mean(mean_length)

        # D: main loss.
        set_requires_grad(G, False)
        set_requires_grad(D, True, frozen)
        D_opt.zero_grad(set_to_none=True)
        inputs = random_inputs(G, batch_size, shared_gen, device, loss.style_mixing_prob)
        fake_labels = to_device(sample_labels(training_set, batch_size, shared_gen), device)
        sign_sum = torch.zeros([], device=device)
        for (real, real_c), start in zip(reals, rounds):
            d_loss, real_scores = loss.D_main(real, real_c, slice_inputs(inputs, start, start + batch_gpu),
                                              slice_rows(fake_labels, start, start + batch_gpu))
            (d_loss.sum() / batch_size).backward()
            sign_sum += real_scores.sign().sum()
            tick_stats.add("Loss/D/loss", d_loss)
            tick_stats.add("Loss/scores/real", real_scores)
        if not lazy_regularization and loss.r1_gamma > 0:  # configs a-b: R1 in the same step, every step
            accumulate_r1(loss, reals, 1, batch_size, tick_stats)
        sum_gradients(D.module.parameters())
        D_opt.step()
        progress["ada_sign_sum"] += float(all_reduce_sum(sign_sum))
        progress["ada_sign_count"] += batch_size

        # D: R1, every D_reg_interval steps on the same reals.
        if lazy_regularization and loss.r1_gamma > 0 and step % D_reg_interval == 0:
            D_opt.zero_grad(set_to_none=True)
            accumulate_r1(loss, reals, D_reg_interval, batch_size, tick_stats)
            sum_gradients(D.module.parameters())
            D_opt.step()

        # Gs: moving average of G's weights; G's other variables (dlatent_avg...) copied.
        with torch.no_grad():
            ema_nimg = G_smoothing_kimg * 1000
            if ema_rampup is not None:
                ema_nimg = min(ema_nimg, progress["cur_nimg"] * ema_rampup)
            beta = 0.5 ** (batch_size / max(ema_nimg, 1e-8))
            for p_ema, p in zip(Gs.module.parameters(), G.module.parameters()):
                p_ema.copy_(p.lerp(p_ema, beta))
            for b_ema, b in zip(Gs.module.buffers(), G.module.buffers()):
                b_ema.copy_(b)

        progress["cur_nimg"] += batch_size
        progress["step"] += 1

        # ADA: move p toward the target of E[sign(D(real))].
        if augment_pipe is not None and ada_target is not None and progress["step"] % ada_interval == 0:
            rt = progress["ada_sign_sum"] / max(progress["ada_sign_count"], 1)
            adjust = np.sign(rt - ada_target) * (batch_size * ada_interval) / (ada_kimg * 1000)
            augment_pipe.p.copy_((augment_pipe.p + adjust).clamp(min=0))
            progress["ada_sign_sum"], progress["ada_sign_count"] = 0.0, 0
            tick_stats.add("Progress/augment_rt", rt)

        # Once per tick: report, snapshots.
        cur_nimg = progress["cur_nimg"]
        done = cur_nimg >= total_kimg * 1000
        if not done and cur_nimg < progress["tick_start_nimg"] + kimg_per_tick * 1000:
            continue
        abort = abort_fn is not None and abort_fn()
        tick_end_time = time.time()
        tick_time = tick_end_time - tick_start_time
        tick_kimg = (cur_nimg - progress["tick_start_nimg"]) / 1000
        progress["total_time"] += tick_time + maintenance_time
        progress["cur_tick"] += 1
        progress["tick_start_nimg"] = cur_nimg
        cur_tick = progress["cur_tick"]
        means = tick_stats.means()
        stats = {"Progress/tick": cur_tick, "Progress/kimg": cur_nimg / 1000,
                 "Progress/lod": sched.lod if sched is not None else 0.0, "Progress/minibatch": batch_size,
                 "Progress/augment": float(augment_pipe.p) if augment_pipe is not None else 0.0,
                 "Timing/total_sec": progress["total_time"], "Timing/sec_per_tick": tick_time,
                 "Timing/sec_per_kimg": tick_time / tick_kimg, "Timing/maintenance_sec": maintenance_time,
                 "Resources/peak_mem_gb": peak_memory_gb(device), **means, "timestamp": time.time()}
        log(f"tick {cur_tick:<5d} kimg {cur_nimg / 1000:<8.1f} minibatch {batch_size:<4d} "
            f"time {dnnlib.util.format_time(progress['total_time']):<12s} sec/tick {tick_time:<7.1f} "
            f"sec/kimg {tick_time / tick_kimg:<7.2f} maintenance {maintenance_time:<6.1f} "
            f"mem {stats['Resources/peak_mem_gb']:<5.2f} augment {stats['Progress/augment']:.3f} "
            f"G {means.get('Loss/G/loss', 0):.3f} D {means.get('Loss/D/loss', 0):.3f}"
            + (f" lod {sched.lod:.2f}" if sched is not None else ""))
        snapshot = network_snapshot_ticks and (cur_tick % network_snapshot_ticks == 0 or done or abort)
        if is_main:
            stats_log.write(stats, cur_nimg)
            if image_snapshot_ticks and (cur_tick % image_snapshot_ticks == 0 or done or abort):
                save_fakes(f"fakes{cur_nimg // 1000:06d}.png")
            if snapshot:
                state = capture_state(G_opt, D_opt, loss, augment_pipe, progress)
                pkl = save_snapshot(run_dir, (G, D, Gs), state, cur_nimg // 1000)
                log(f"Saved {pkl}")
        if snapshot and metric_group is not None:  # every process takes part
            name = f"network-snapshot-{cur_nimg // 1000:06d}"
            metric_group.run(metric_ctx, name, run_dir, snapshot_pkl=os.path.join(run_dir, name + ".pkl"))
        if abort:
            break
        tick_start_time = time.time()
        maintenance_time = tick_start_time - tick_end_time

    if is_main:
        stats_log.close()
        log(f"Done: trained to {progress['cur_nimg'] / 1000:.1f} kimg; snapshots in {run_dir}")
    return G, D, Gs


def to_device(tensor, device):
    return None if tensor is None else tensor.to(device)


def slice_rows(tensor, start, stop):
    return None if tensor is None else tensor[start:stop]


def check_compatible(G, training_set):
    """A resumed or fine-tuned network must produce the dataset's images and take its labels."""
    _, channels, height, _ = G.output_shape
    if (channels, height) != (training_set.num_channels, training_set.resolution):
        raise dnnlib.util.UserError(
            f"the network makes {channels}x{height}x{height} images but the dataset has "
            f"{training_set.num_channels}x{training_set.resolution}x{training_set.resolution}; resize the dataset "
            f"with dataset_tool.py --resolution {height} or start from a matching network")
    if G.input_shapes[1][1] != training_set.label_size:
        raise dnnlib.util.UserError(f"the network takes {G.input_shapes[1][1]} labels but the dataset has "
                                    f"{training_set.label_size}; use a matching network or dataset")
