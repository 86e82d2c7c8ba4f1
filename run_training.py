"""Train StyleGAN2 networks: the original run_training.py configs plus StyleGAN2-ADA's augmentation, transfer
learning and resume options.

  python run_training.py --num-gpus=8 --data-dir=~/datasets --config=config-f --dataset=ffhq --mirror-augment=true
  python run_training.py --data=~/datasets/mydata.zip --cfg=auto --resume=ffhq-config-f.pkl --aug=ada
  python run_training.py --resume=latest                          # continue the newest run exactly
  torchrun --nproc_per_node=4 run_training.py --data=... --cfg=auto  # or --num-gpus=4
"""

import argparse
import glob
import json
import os
import re
import signal
import sys
import tempfile

import torch

import dnnlib
from dnnlib.util import EasyDict, UserError
from metrics import metric_base

# Original StyleGAN2 configs (Table 1 a-f and Table 2 of the paper); a-d grow progressively.
_PROGRESSIVE_CONFIGS = ["config-a", "config-b", "config-c", "config-d"]
_TF_CONFIGS = _PROGRESSIVE_CONFIGS + ["config-e", "config-f"] + [
    f"config-e-G{g}-D{d}" for g in ("orig", "resnet", "skip") for d in ("orig", "resnet", "skip")]
# StyleGAN2-ADA configs: reference GPUs, kimg, minibatch, mbstd group, channel scale, lrate, gamma, Gs half-life
# (kimg), Gs ramp-up, mapping layers. -1: derived from the resolution ('auto').
_ADA_CONFIGS = {
    "auto":      dict(kimg=25000, mb=-1, mbstd=-1, fmaps=-1, lrate=-1, gamma=-1, ema=-1, ramp=0.05, map=2),
    "stylegan2": dict(kimg=25000, mb=32, mbstd=4, fmaps=1, lrate=0.002, gamma=10, ema=10, ramp=None, map=8),
    "paper256":  dict(kimg=25000, mb=64, mbstd=8, fmaps=0.5, lrate=0.0025, gamma=1, ema=20, ramp=None, map=8),
    "paper512":  dict(kimg=25000, mb=64, mbstd=8, fmaps=1, lrate=0.0025, gamma=0.5, ema=20, ramp=None, map=8),
    "paper1024": dict(kimg=25000, mb=32, mbstd=4, fmaps=1, lrate=0.002, gamma=2, ema=10, ramp=None, map=8),
    "cifar":     dict(kimg=100000, mb=64, mbstd=32, fmaps=1, lrate=0.0025, gamma=0.01, ema=500, ramp=0.05, map=2),
}
_AUGPIPES = ["blit", "geom", "color", "filter", "noise", "cutout", "bg", "bgc", "bgcf", "bgcfn", "bgcfnc"]
# Options a resumed run may change; everything else comes from the run being resumed.
_RESUMABLE_OVERRIDES = ("total_kimg", "image_snapshot_ticks", "network_snapshot_ticks", "num_workers", "metrics",
                        "metric_weights")


def _lod_kimg(s):
    values = [float(v) for v in s.split(",")]
    if len(values) not in (1, 2) or min(values) < 0:
        raise argparse.ArgumentTypeError("expected KIMG or TRAINING_KIMG,TRANSITION_KIMG (non-negative)")
    return (values[0], values[-1])


def _metric_list(s):
    return [] if s is None or s.lower() in ("", "none") else s.split(",")


# ----------------------------------------------------------------------------------------------------------------
# Options.

def dataset_options(args):
    if args.data is not None:
        return dict(path=args.data), os.path.splitext(os.path.basename(os.path.normpath(args.data)))[0]
    if args.dataset is None:
        raise UserError("say which dataset to train on: --data=<folder, zip or tfrecord dir>, or "
                        "--data-dir=<root> --dataset=<name>")
    return dict(tfrecord_dir=args.dataset, data_dir=os.path.expanduser(args.data_dir or ".")), args.dataset


def names_other_dataset(args, resumed_dataset_args):
    """Whether the command line names a dataset other than the one a resumed run trained on (fine-tuning)."""
    if args.data is None and args.dataset is None:
        return False
    wanted, _ = dataset_options(args)
    return any(os.path.normpath(str(value)) != os.path.normpath(str(resumed_dataset_args.get(key)))
               for key, value in wanted.items())


def setup_options(args, resolution):
    """The training_loop() kwargs for a new run (or a fine-tuning run) from the command line."""
    c = EasyDict(G_args=EasyDict(), D_args=EasyDict(), loss_args=EasyDict(), G_opt_args=EasyDict(betas=(0, 0.99),
                 eps=1e-8), D_opt_args=EasyDict(betas=(0, 0.99), eps=1e-8))
    config = args.config
    if config in _TF_CONFIGS:
        c.batch_size, c.batch_gpu, lrate = 32, 4, 0.002
        c.loss_args.r1_gamma = 10.0
        c.G_smoothing_kimg, c.ema_rampup, total_kimg, snap, aug = 10.0, None, 25000, 10, "noaug"
        if config != "config-f":  # configs a-e: networks of the size of the original StyleGAN
            c.G_args.fmap_base = c.D_args.fmap_base = 8 << 10
        if config.startswith("config-e"):
            c.loss_args.r1_gamma = 100.0
            for net, key in ((c.G_args, "G"), (c.D_args, "D")):
                match = re.search(key + r"(orig|skip|resnet)", config)
                if match:
                    net.architecture = match.group(1)
        if config in _PROGRESSIVE_CONFIGS:  # progressive growing from 8x8 with the networks that support it
            lrates = {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}
            c.sched_args = EasyDict(lod_initial_resolution=8, G_lrate_base=0.001, D_lrate_base=0.001,
                                    G_lrate_dict=dict(lrates), D_lrate_dict=dict(lrates), minibatch_size_base=32,
                                    minibatch_size_dict={8: 256, 16: 128, 32: 64, 64: 32}, minibatch_gpu_base=4,
                                    minibatch_gpu_dict={8: 32, 16: 16, 32: 8, 64: 4})
            c.G_args.synthesis_func = "G_synthesis_stylegan_revised"
            c.D_args.func_name = "training.networks_stylegan2.D_stylegan"
            if config != "config-d":  # a-c: G_logistic_ns, no path-length regularisation
                c.loss_args.pl_weight = 0.0
            if config in ("config-a", "config-b"):  # a-b: regularisation in every step, not lazily
                c.lazy_regularization = False
            if config == "config-a":  # the original StyleGAN networks (with their own defaults)
                c.G_args = EasyDict(func_name="training.networks_stylegan.G_style")
                c.D_args = EasyDict(func_name="training.networks_stylegan.D_basic")
    elif config in _ADA_CONFIGS:
        spec = EasyDict(_ADA_CONFIGS[config])
        gpus = args.num_gpus
        if config == "auto":
            spec.mb = max(min(gpus * min(4096 // resolution, 32), 64), gpus)
            spec.mbstd = min(spec.mb // gpus, 4)
            spec.fmaps = 1 if resolution >= 512 else 0.5
            spec.lrate = 0.002 if resolution >= 1024 else 0.0025
            spec.gamma = 0.0002 * resolution ** 2 / spec.mb
            spec.ema = spec.mb * 10 / 32
        c.batch_size, c.batch_gpu, lrate = spec.mb, spec.mb // gpus, spec.lrate
        c.G_args.fmap_base = c.D_args.fmap_base = int(spec.fmaps * 16384)
        c.G_args.mapping_layers = spec.map
        c.D_args.mbstd_group_size = spec.mbstd
        if not args.fp32:  # float16 in the 4 highest resolutions (on GPUs), activations clamped to +-256
            for net in (c.G_args, c.D_args):
                net.num_fp16_res, net.conv_clamp = 4, 256
        c.loss_args.r1_gamma = float(spec.gamma)
        c.G_smoothing_kimg, c.ema_rampup, total_kimg, snap, aug = spec.ema, spec.ramp, spec.kimg, 50, "ada"
        if config == "cifar":
            c.loss_args.pl_weight = 0.0
            c.loss_args.style_mixing_prob = 0.0
            c.D_args.architecture = "orig"
    else:
        raise UserError(f"unknown --config '{config}'; valid: {', '.join(_TF_CONFIGS + list(_ADA_CONFIGS))}")

    # Overrides.
    if args.batch is not None:
        c.batch_size = args.batch
        c.batch_gpu = min(c.batch_gpu, args.batch // args.num_gpus) or 1
        c.D_args.mbstd_group_size = min(c.D_args.get("mbstd_group_size", 4), c.batch_gpu)
    if args.batch_gpu is not None:
        c.batch_gpu = args.batch_gpu
    if args.gamma is not None:
        c.loss_args.r1_gamma = args.gamma
    if args.cbase is not None:
        c.G_args.fmap_base = c.D_args.fmap_base = args.cbase // 2  # channels at res r: min(cbase / r, cmax)
    if args.cmax is not None:
        c.G_args.fmap_max = c.D_args.fmap_max = args.cmax
    if args.map is not None:
        c.G_args.mapping_layers = args.map
    sched = c.get("sched_args")
    if sched is not None:  # progressive configs: these overrides replace the per-resolution values
        if args.batch is not None:
            sched.minibatch_size_base, sched.minibatch_size_dict = c.batch_size, {}
        if args.batch is not None or args.batch_gpu is not None:
            sched.minibatch_gpu_base, sched.minibatch_gpu_dict = c.batch_gpu, {}
        if args.glr is not None:
            sched.G_lrate_base, sched.G_lrate_dict = args.glr, {}
        if args.dlr is not None:
            sched.D_lrate_base, sched.D_lrate_dict = args.dlr, {}
        if args.lod_kimg is not None:
            sched.lod_training_kimg, sched.lod_transition_kimg = args.lod_kimg
        lrate = sched.G_lrate_base  # the loop sets the learning rates from the schedule at every step
    elif args.lod_kimg is not None:
        raise UserError("--lod-kimg needs a progressive config (config-a to config-d)")
    c.G_opt_args.lr = args.glr if args.glr is not None else lrate
    c.D_opt_args.lr = args.dlr if args.dlr is not None else lrate
    c.total_kimg = args.total_kimg if args.total_kimg is not None else total_kimg
    c.image_snapshot_ticks = c.network_snapshot_ticks = args.snap if args.snap is not None else snap
    c.random_seed, c.freeze_layers, c.kimg_per_tick = args.seed, args.freezed, args.tick
    c.num_workers = 2 if args.workers is None else args.workers
    c.allow_tf32, c.cudnn_benchmark = args.allow_tf32, not args.nobench

    # Augmentation.
    aug = args.aug or aug
    c.augment_args, c.ada_target, c.augment_p = None, None, 0.0
    if aug != "noaug":
        from training.augment import augpipe_specs
        c.augment_args = dict(augpipe_specs[args.augpipe])
        if aug == "ada":
            c.ada_target = args.target
            if args.p is not None:
                raise UserError("--p sets a fixed augmentation probability: use it with --aug=fixed")
        else:
            if args.p is None:
                raise UserError("--aug=fixed needs --p=<probability>")
            c.augment_p = args.p
    elif args.p is not None:
        raise UserError("--p needs --aug=fixed")
    c.aug = aug
    if args.resume is not None:  # fine-tuning, as stylegan2-ada-pytorch: p adapts 5x faster, no Gs ramp-up
        c.ada_kimg, c.ema_rampup = 100, None
    return c


def find_latest_snapshot(result_dir):
    """The newest snapshot (highest run number, then highest kimg) that has its training state beside it."""
    from training.training_loop import state_path_for
    runs = sorted(glob.glob(os.path.join(result_dir, "[0-9]*-*")),
                  key=lambda p: int(re.match(r"\d+", os.path.basename(p)).group()), reverse=True)
    for run in runs:
        pkls = sorted(glob.glob(os.path.join(run, "network-snapshot-*.pkl")))
        pkls = [p for p in pkls if os.path.isfile(state_path_for(p))]
        if pkls:
            return pkls[-1]
    raise UserError(f"--resume=latest: no snapshot with a training state in '{result_dir}'; start a new run "
                    "without --resume, or give a snapshot pickle")


# ----------------------------------------------------------------------------------------------------------------
# Processes.

def training_process(rank, world_size, init_file, options, resume, run_dir):
    """One training process: join the process group, load the resume networks, run the loop."""
    from training import training_loop
    if torch.cuda.is_available():
        torch.cuda.set_device(rank % torch.cuda.device_count())
    if world_size > 1 and not torch.distributed.is_initialized():  # spawned by --num-gpus (torchrun: done)
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo",
                                             init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    device = torch.device("cuda", rank % torch.cuda.device_count()) if torch.cuda.is_available() else None
    resume_nets = resume_state = None
    if resume is not None:
        from pretrained_networks import load_networks
        resume_nets = load_networks(resume)
        state_path = training_loop.state_path_for(resume)
        if options.get("exact_resume") and os.path.isfile(state_path):
            resume_state = training_loop.load_state(state_path)
    loop_args = {k: v for k, v in options.items() if k not in ("aug", "exact_resume", "resume", "num_gpus", "desc")}
    stop = {"requested": False}

    def request_stop(signum, _frame):
        if not stop["requested"]:
            print(f"\nSignal {signum}: saving a snapshot at the end of this tick, then stopping "
                  "(send it again to stop at once)", flush=True)
            stop["requested"] = True
        else:
            raise KeyboardInterrupt
    if rank == 0:
        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

    def abort_fn():
        flag = torch.tensor([1.0 if stop["requested"] else 0.0])
        if world_size > 1:
            torch.distributed.broadcast(flag.to(device or "cpu"), src=0)
        return bool(flag.item())

    def run():
        training_loop.training_loop(run_dir=run_dir, resume_nets=resume_nets, resume_state=resume_state,
                                    device=device, abort_fn=abort_fn, **loop_args)
    if rank == 0:
        with dnnlib.util.Logger(os.path.join(run_dir, "log.txt")):
            run()
    else:
        run()
    if world_size > 1:
        torch.distributed.destroy_process_group()


def _spawned_process(rank, world_size, init_file, options, resume, run_dir):
    dnnlib.util.cli_main(training_process, rank, world_size, init_file, options, resume, run_dir)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train StyleGAN2 (original configs and StyleGAN2-ADA options).",
                                     epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--result-dir", "--outdir", default="results", metavar="DIR", help="Root directory for run results")
    add("--data-dir", help="Dataset root directory (with --dataset)")
    add("--dataset", help="Training dataset: a TFRecord directory name under --data-dir")
    add("--data", metavar="PATH", help="Training dataset: a TFRecord directory, image folder or zip")
    add("--config", "--cfg", default="config-f", metavar="CONFIG",
        help=f"Training config (default: %(default)s): {', '.join(_TF_CONFIGS + list(_ADA_CONFIGS))}")
    add("--num-gpus", "--gpus", type=int, default=1, metavar="N",
        help="Processes to spawn (one per GPU; gloo processes on the CPU)")
    add("--total-kimg", "--kimg", type=float, metavar="KIMG", help="Training length in thousands of images")
    add("--gamma", type=float, help="R1 regularisation weight (default depends on the config)")
    add("--mirror-augment", "--mirror", type=dnnlib.util.str_to_bool, default=False, metavar="BOOL",
        help="Add x-flipped copies of the dataset (default: false)")
    add("--subset", type=int, metavar="N", help="Train on N images of the dataset, chosen at random with --seed "
        "(default: all)")
    add("--cond", type=dnnlib.util.str_to_bool, default=False, metavar="BOOL",
        help="Train a conditional network on the dataset's labels (default: false)")
    add("--metrics", type=_metric_list, help="Metrics at each network snapshot, comma-separated (e.g. fid50k,"
        "ppl_wend), or none (default); see run_metrics.py")
    metric_base.add_feature_network_args(add)
    add("--aug", choices=["ada", "noaug", "fixed"], help="Augmentation mode (default: noaug for config-e/f, "
        "ada for the ADA configs)")
    add("--augpipe", choices=_AUGPIPES, default="bgc", help="Augmentation pipeline (default: %(default)s)")
    add("--target", type=float, default=0.6, help="ADA target value of E[sign(D(real))] (default: %(default)s)")
    add("--p", type=float, help="Augmentation probability for --aug=fixed")
    add("--resume", metavar="PKL", help="Start from a network pickle (path, URL or name), or 'latest' to "
        "continue the newest run in --result-dir exactly")
    add("--freezed", type=int, default=0, metavar="N", help="Freeze-D: freeze the first N blocks of D")
    add("--batch", type=int, help="Global minibatch size (default depends on the config)")
    add("--batch-gpu", type=int, help="Images per process and accumulation round")
    add("--snap", type=int, metavar="TICKS", help="Snapshot interval in ticks")
    add("--tick", type=float, default=4, metavar="KIMG", help="Progress report interval (default: %(default)s kimg)")
    add("--seed", type=int, default=0, help="Random seed (default: %(default)s)")
    add("--cbase", type=int, help="Channel base: channels at resolution r are min(cbase / r, cmax)")
    add("--cmax", type=int, help="Most channels per layer (default 512)")
    add("--map", type=int, help="Mapping network layers")
    add("--glr", type=float, help="G learning rate (default depends on the config)")
    add("--dlr", type=float, help="D learning rate (default depends on the config)")
    add("--workers", type=int, help="DataLoader worker processes (default: 2)")
    add("--lod-kimg", type=_lod_kimg, metavar="KIMG[,KIMG]", help="Configs a-d: thousands of images per level "
        "of detail and per transition to the next (default 600,600; one value sets both)")
    add("--fp32", action="store_true", help="ADA configs: no float16 layers and no activation clamping")
    add("--allow-tf32", type=dnnlib.util.str_to_bool, default=False, metavar="BOOL",
        help="GPUs: TF32 in convolutions and matrix products (default: false, full float32 as the original)")
    add("--nobench", type=dnnlib.util.str_to_bool, default=False, metavar="BOOL",
        help="GPUs: no cuDNN autotuning (default: false)")
    add("-n", "--dry-run", action="store_true", help="Print the training options and exit")
    args = parser.parse_args(argv)
    dnnlib.util.cli_main(run_training, args)


def run_training(args):
    if args.num_gpus < 1:
        raise UserError("--num-gpus must be at least 1")
    metric_base.MetricGroup(args.metrics or [])  # unknown metric names fail here
    metric_weights = dict(inception=args.inception, vgg16=args.vgg16, lpips_lin=args.lpips_lin,
                          classifiers=args.classifiers)
    torchrun = "WORLD_SIZE" in os.environ and "RANK" in os.environ
    world_size = int(os.environ["WORLD_SIZE"]) if torchrun else args.num_gpus
    rank = int(os.environ["RANK"]) if torchrun else 0

    resume = args.resume
    if resume == "latest":
        resume = find_latest_snapshot(args.result_dir)
    options = None
    if resume is not None and os.path.isfile(resume):
        from training.training_loop import state_path_for
        saved = os.path.join(os.path.dirname(resume), "training_options.json")
        if os.path.isfile(state_path_for(resume)) and os.path.isfile(saved):
            with open(saved, encoding="utf-8") as f:
                saved_options = EasyDict(json.load(f))
            if names_other_dataset(args, saved_options.dataset_args):
                print(f"Fine-tuning {resume} on another dataset: a new run with the command line's options, "
                      "not an exact resume")
            else:
                options = saved_options
                options.exact_resume = True
                overrides = dict(total_kimg=args.total_kimg, image_snapshot_ticks=args.snap,
                                 network_snapshot_ticks=args.snap, num_workers=args.workers, metrics=args.metrics,
                                 metric_weights=metric_weights if any(metric_weights.values()) else None)
                options.update({k: v for k, v in overrides.items() if v is not None and k in _RESUMABLE_OVERRIDES})
    if options is None:
        dataset_args, dataset_name = dataset_options(args)
        from training import dataset as dataset_lib
        dataset_args.update(mirror_augment=args.mirror_augment, use_labels=args.cond)
        if args.subset is not None:
            dataset_args.update(subset=args.subset, subset_seed=args.seed)
        training_set = dataset_lib.load_dataset(**dataset_args)
        size = len(training_set) // (2 if args.mirror_augment else 1)  # the whole dataset where subset exceeds it
        if args.subset is not None and not 1 <= args.subset <= size:
            raise UserError(f"--subset must be between 1 and {size}, the dataset's size")
        options = setup_options(args, training_set.resolution)
        options.dataset_args = dataset_args
        options.metrics, options.metric_weights = args.metrics or [], metric_weights
        options.desc = f"stylegan2-{dataset_name}-{world_size}gpu-{args.config}"
        options.exact_resume = False
    options.resume = resume
    if options.batch_size % (options.batch_gpu * world_size):
        raise UserError(f"minibatch {options.batch_size} is not a multiple of {world_size} processes x "
                        f"{options.batch_gpu} images; change --batch or --batch-gpu")

    if args.dry_run:
        print(json.dumps(options, indent=2))
        return
    run_dir = None
    if rank == 0:
        run_dir = dnnlib.util.make_run_dir(args.result_dir, options.desc)
        with dnnlib.util.atomic_write(os.path.join(run_dir, "training_options.json"), "w") as f:
            json.dump(options, f, indent=2)
        print(f"Run directory: {run_dir}" + (f" (resuming {resume})" if resume else ""))
    if torchrun:
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        shared = [run_dir]
        torch.distributed.broadcast_object_list(shared, src=0)
        training_process(rank, world_size, None, options, resume, shared[0])
    elif world_size == 1:
        training_process(0, 1, None, options, resume, run_dir)
    else:
        init_file = os.path.join(tempfile.mkdtemp(), ".torch_distributed_init")
        torch.multiprocessing.spawn(_spawned_process, args=(world_size, init_file, options, resume, run_dir),
                                    nprocs=world_size)


if __name__ == "__main__":
    main(sys.argv[1:])
