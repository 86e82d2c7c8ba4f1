"""Metric speed: feature extraction images/s (dataset images and generated images) and the time of a whole FID at a
small count, for two paths timed in one process.

    python bench/metrics.py                          # CPU: 48-image blocks, fid100
    python bench/metrics.py --threads 1 --num 32 --fid-count 50
    python bench/metrics.py --device cuda --num 1024 --fid-count 10000

Setup: the shipped emoji network (networks/stylegan2-emoji64.pkl, 64x64) and its dataset datasets/emoji64 when it
is there (`dataset_tool.py create_emoji`; else 200 random 64x64 images written to a temporary folder), and
Inception-v3 (metrics/inception.py) with random weights: the architecture sets the cost, not the weights, and
nothing is downloaded. The dataset statistics cache is off, so every run computes everything.
Paths (same weights, same images; the order alternates from block to block):
  ours   the metrics as they run: Inception in channels-last memory format (FeatureNetworks' default)
  plain  the same with Inception in PyTorch's default contiguous NCHW format
Measures, each in --repeats blocks per path (the best block counts; the machine may be busy):
  dataset    images/s of `dataset_features`: PNG decoding and Inception pool3 features of --num dataset images
  generated  images/s of `generator_features`: per-item latents and noise, the generator, uint8, Inception
  fid        seconds of a whole `compute_fid` at --fid-count generated and real images (one block per path):
             both feature passes plus the Fréchet distance (scipy.linalg.sqrtm of a 2048x2048 matrix, timed
             alone too)
Also printed: the largest difference between the two paths' features and FIDs.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
import dnnlib  # noqa: E402
import pretrained_networks  # noqa: E402
from bench.common import count_flops, machine_line, matmul_peak, sync  # noqa: E402
from metrics import frechet_inception_distance, metric_base  # noqa: E402
from metrics.inception import InceptionV3  # noqa: E402

PATHS = ("ours", "plain")


def dataset_folder():
    """datasets/emoji64, or a folder of 200 random 64x64 images."""
    emoji = os.path.join(REPO_ROOT, "datasets", "emoji64")
    if os.path.isdir(emoji):
        return emoji
    import PIL.Image
    folder = tempfile.mkdtemp(prefix="bench-metrics-")
    rnd = np.random.RandomState(0)
    for i in range(200):
        PIL.Image.fromarray(rnd.randint(0, 256, (64, 64, 3), dtype=np.uint8)).save(os.path.join(folder, f"{i}.png"))
    return folder


def contexts(Gs, data, device):
    """One MetricContext per path, each with its own copy of the same random Inception weights."""
    torch.manual_seed(0)
    inception = InceptionV3()
    out = {}
    for path in PATHS:
        model = InceptionV3()
        model.load_state_dict(inception.state_dict())
        networks = metric_base.FeatureNetworks(modules=dict(inception=model), channels_last=path == "ours")
        out[path] = metric_base.MetricContext(Gs, dict(path=data), networks=networks, device=device, cache=False,
                                              progress=False)
    return out


def timed(fn, device):
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return time.perf_counter() - start, result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=48, help="images per feature block (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="blocks per path (default: %(default)s)")
    parser.add_argument("--fid-count", type=int, default=100, help="images of the whole FID (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=8, help="images per batch (the metrics' default: 8)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dnnlib.util.keep_freed_memory()  # as run_metrics.py does
    print(machine_line(device))
    peak = matmul_peak(device)
    print(f"measured peak: {peak / 1e9:.1f} GFLOP/s (float32 4096x4096 matrix product)")
    Gs = pretrained_networks.load_networks(pretrained_networks.DEFAULT_NETWORK)[2].to(device)
    data = dataset_folder()
    ctxs = contexts(Gs, data, device)
    detectors = {path: metric_base.inception_pool3(ctx) for path, ctx in ctxs.items()}
    print(f"network {os.path.basename(pretrained_networks.DEFAULT_NETWORK)}, dataset {data} "
          f"({len(ctxs['ours'].dataset())} images), batch {args.batch}")

    measures = dict(
        dataset=lambda path: metric_base.dataset_features(ctxs[path], detectors[path], args.num, False, args.batch,
                                                          keep_features=True).features,
        generated=lambda path: metric_base.generator_features(ctxs[path], detectors[path], args.num, args.batch))
    for path in PATHS:  # warm-up: allocator, oneDNN primitives, dataset file lists
        metric_base.generator_features(ctxs[path], detectors[path], args.batch, args.batch)
    times = {(name, path): [] for name in measures for path in PATHS}
    outputs = {}
    for block in range(args.repeats):
        for name, fn in measures.items():
            for path in PATHS if block % 2 == 0 else PATHS[::-1]:
                seconds, outputs[name, path] = timed(lambda: fn(path), device)
                times[name, path].append(seconds)
    print(f"\n{'measure':<10} {'ours img/s':>11} {'plain img/s':>12} {'ours/plain':>11} {'max |diff|':>11} "
          f"{'GFLOP/img':>10} {'ours GFLOP/s':>13} {'% peak':>7}")
    for name, fn in measures.items():
        best = {path: args.num / min(times[name, path]) for path in PATHS}
        diff = np.abs(outputs[name, "ours"] - outputs[name, "plain"]).max()
        flops = count_flops(lambda: fn("ours")) / args.num  # convolutions and matrix products, torch's formulas
        print(f"{name:<10} {best['ours']:>11.2f} {best['plain']:>12.2f} {best['ours'] / best['plain']:>11.2f} "
              f"{diff:>11.2e} {flops / 1e9:>10.2f} {flops * best['ours'] / 1e9:>13.1f} "
              f"{100 * flops * best['ours'] / peak:>7.1f}", flush=True)

    fid = {}
    for path in PATHS:
        seconds, result = timed(lambda: frechet_inception_distance.compute_fid(
            ctxs[path], num_gen=args.fid_count, max_real=args.fid_count, ddof=1, batch_size=args.batch)[""], device)
        fid[path] = (seconds, result)
    stats = np.random.RandomState(0).randn(3 * 2048, 2048)
    sigma = np.cov(stats, rowvar=False)
    sqrtm_seconds, _ = timed(lambda: frechet_inception_distance.frechet_distance(np.zeros(2048), sigma,
                                                                                 np.zeros(2048), sigma), device)
    print(f"\nfid{args.fid_count}: ours {fid['ours'][0]:.1f} s, plain {fid['plain'][0]:.1f} s, plain/ours "
          f"{fid['plain'][0] / fid['ours'][0]:.2f}; FID ours {fid['ours'][1]:.6f}, plain {fid['plain'][1]:.6f}; "
          f"Fréchet distance alone {sqrtm_seconds:.1f} s")


if __name__ == "__main__":
    main()
