"""Compute quality metrics of a StyleGAN2 network pickle, as the original run_metrics.py does (plus StyleGAN2-ADA's
metrics and its --data option).

    python run_metrics.py --data-dir=~/datasets --network=gdrive:networks/stylegan2-ffhq-config-f.pkl \\
        --metrics=fid50k,ppl_wend --dataset=ffhq --mirror-augment=true
    python run_metrics.py --network=results/00000-stylegan2-mydata-1gpu-auto/network-snapshot-000040.pkl \\
        --metrics=fid50k_full,kid50k_full,pr50k3_full,is50k --data=mydata.zip
    python run_metrics.py --metrics=fid1k,ppl_wend1k --data=datasets/emoji64 --inception=pt_inception.pth

Each run writes into a new folder <result-dir>/<NNNNN>-run-metrics: log.txt, metric-<name>.txt with the original's
result line per metric, and metrics.jsonl with one JSON record per metric.
"""

import argparse
import os
import sys
import tempfile

import torch

import dnnlib
import pretrained_networks
from dnnlib.util import EasyDict, UserError
from metrics import metric_base
from metrics.metric_defaults import metric_defaults


def dataset_kwargs(data, dataset, data_dir):
    """load_dataset() kwargs from --data or --dataset/--data-dir, or None when neither is given."""
    if data is not None and dataset is not None:
        raise UserError("give the dataset once: --data=<path>, or --data-dir=<root> --dataset=<name>")
    if data is not None:
        return dict(path=os.path.expanduser(data))
    if dataset is not None:
        return dict(tfrecord_dir=dataset, data_dir=os.path.expanduser(data_dir or "."))
    return None


def network_name(network):
    """The name a result line starts with: the pickle's file name without extension."""
    return os.path.splitext(os.path.basename(os.fspath(network).rstrip("/")))[0]


def metrics_process(rank, world_size, init_file, job):
    """One process: join the process group, load the network and feature networks, compute and report."""
    if job.cache_dir is not None:
        dnnlib.util.set_cache_dir(job.cache_dir)
    if world_size > 1 and not torch.distributed.is_initialized():  # spawned by --num-gpus (torchrun: done)
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo",
                                             init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    device = torch.device("cuda", rank % torch.cuda.device_count()) if torch.cuda.is_available() else None
    if device is not None:
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # float32 as the original
    _G, _D, Gs = pretrained_networks.load_networks(job.network)
    ctx = metric_base.MetricContext(Gs.to(device or Gs.device), job.dataset_kwargs, job.mirror_augment,
                                    metric_base.FeatureNetworks(**job.weights), rank=rank, world_size=world_size)
    group = metric_base.MetricGroup(job.metrics)
    group.prepare(ctx)

    if rank == 0:
        with dnnlib.util.Logger(os.path.join(job.run_dir, "log.txt")):
            print(f'Evaluating metrics "{",".join(job.metrics)}" for "{job.network}"...', flush=True)
            group.run(ctx, network_name(job.network), job.run_dir)
    else:
        group.run(ctx, network_name(job.network), job.run_dir)
    if world_size > 1:
        torch.distributed.destroy_process_group()


def _spawned_process(rank, world_size, init_file, job):
    dnnlib.util.cli_main(metrics_process, rank, world_size, init_file, job)


def run_metrics(args):
    if args.num_gpus < 1:
        raise UserError("--num-gpus must be at least 1")
    if args.cache_dir is not None:
        dnnlib.util.set_cache_dir(args.cache_dir)
    metrics = [name for name in args.metrics.split(",") if name]
    if not metrics:
        raise UserError(f"--metrics is empty; valid: {', '.join(metric_defaults)}")
    group = metric_base.MetricGroup(metrics)  # unknown names fail here
    job = EasyDict(network=args.network, metrics=metrics, mirror_augment=args.mirror_augment,
                   dataset_kwargs=dataset_kwargs(args.data, args.dataset, args.data_dir), cache_dir=args.cache_dir,
                   weights=dict(inception=args.inception, vgg16=args.vgg16, lpips_lin=args.lpips_lin,
                                classifiers=args.classifiers))
    torchrun = "WORLD_SIZE" in os.environ and "RANK" in os.environ
    world_size = int(os.environ["WORLD_SIZE"]) if torchrun else args.num_gpus
    rank = int(os.environ["RANK"]) if torchrun else 0

    if rank == 0:
        # Everything a user can get wrong fails here, before a run directory exists or processes start: the
        # network, the dataset, the feature networks (downloaded once into the cache for the other processes).
        print(f'Loading networks from "{args.network}"...', flush=True)
        _G, _D, Gs = pretrained_networks.load_networks(args.network)
        group.prepare(metric_base.MetricContext(Gs, job.dataset_kwargs, job.mirror_augment,
                                                metric_base.FeatureNetworks(**job.weights), rank=0, world_size=1,
                                                progress=False))
        job.run_dir = dnnlib.util.make_run_dir(args.result_dir, "run-metrics")
    if torchrun:
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        job.run_dir = metric_base.broadcast(job.get("run_dir"), world_size)
        metrics_process(rank, world_size, None, job)
    elif world_size == 1:
        metrics_process(0, 1, None, job)
    else:
        init_file = os.path.join(tempfile.mkdtemp(), ".torch_distributed_init")
        try:
            torch.multiprocessing.spawn(_spawned_process, args=(world_size, init_file, job), nprocs=world_size)
        except torch.multiprocessing.ProcessExitedException as err:
            raise UserError(f"metrics process {err.error_index} stopped with exit code {err.exit_code}; see its "
                            "message above") from None
    if rank == 0:
        print(f"Done: results in {job.run_dir}", flush=True)


_examples = """examples:

  python %(prog)s --data-dir=~/datasets --network=gdrive:networks/stylegan2-ffhq-config-f.pkl --metrics=fid50k,ppl_wend --dataset=ffhq --mirror-augment=true
  python %(prog)s --network=network-snapshot-000040.pkl --metrics=fid50k_full,kid50k_full --data=mydata.zip

valid metrics:

  """ + ", ".join(metric_defaults) + """
  and each at another count: fid10k, fid1k_full, kid10k_full, pr1k3, is5k, ppl_wend1k, ls20k, ...
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run StyleGAN2 metrics.", epilog=_examples,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--result-dir", help="Root directory for run results (default: %(default)s)", default="results", metavar="DIR")
    add("--network", default=pretrained_networks.DEFAULT_NETWORK,
        help="Network pickle: path, URL or gdrive:networks/<file>.pkl (default: the shipped emoji network)")
    add("--metrics", default="fid50k", help="Metrics to compute, comma-separated (default: %(default)s)")
    add("--dataset", help="Dataset: a TFRecord directory name under --data-dir")
    add("--data-dir", help="Dataset root directory (with --dataset)")
    add("--data", metavar="PATH", help="Dataset: a TFRecord directory, image folder or zip")
    add("--mirror-augment", help="Mirror the dataset for the legacy metrics (default: %(default)s)", default=False,
        type=dnnlib.util.str_to_bool, metavar="BOOL")
    add("--num-gpus", help="Processes to use: one per GPU, or gloo processes on the CPU (default: %(default)s)",
        type=int, default=1, metavar="N")
    metric_base.add_feature_network_args(add)
    add("--cache-dir", metavar="DIR", help="Downloads and dataset statistics (default: $DNNLIB_CACHE_DIR or "
        "~/.cache/dnnlib)")
    args = parser.parse_args(argv)
    dnnlib.util.cli_main(run_metrics, args)


if __name__ == "__main__":
    main(sys.argv[1:])
