"""The CPU fast path's 3x3 convolutions layer by layer: Winograd F(4x4, 3x3) (dnnlib/ops/winograd.py) against
oneDNN's direct convolution (F.conv2d, channels-last, as the fast path ran them before), in one process.

    python bench/conv.py                 # config-f's 3x3 layers at 256x256 batch 8 and 1024x1024 batch 1, VGG16's
    python bench/conv.py --threads 1

Each layer: random float32 activations in channels-last and weights of the layer's shape; the two paths take turns
(common.time_paths) until each has --min-time seconds. "ratio" is direct time / Winograd time (above 1: Winograd
faster); "GFLOP/s" counts the direct method's FLOPs (2 x 9 x H x W x I x O per image) for both, so Winograd's is
an effective rate; "error" is each path's largest difference from float64, relative to the output's largest value.
Layers Winograd does not take (`winograd.usable`: fewer than MIN_CHANNELS channels, MIN_TILES tiles or MIN_FLOPS
per image) are listed as such.
"""

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.common import machine_line, matmul_peak, time_paths  # noqa: E402
from dnnlib.ops import winograd  # noqa: E402
from training.networks_stylegan2 import make_nf  # noqa: E402


def configf_layers(resolution, batch):
    """(name, batch, in, out, size) of config-f's stride-1 3x3 convolutions (conv1 of each block, and the 4x4 conv)."""
    nf = make_nf(fmap_base=16 << 10, fmap_decay=1.0, fmap_min=1, fmap_max=512)  # G_main's defaults
    layers, res = [], 4
    while res <= resolution:
        channels = nf(res.bit_length() - 2)  # stage 1 = 4x4
        layers.append((f"G{resolution} b{batch} {res}x{res}", batch, channels, channels, res))
        res *= 2
    return layers


def vgg16_layers(size=256, batch=1):
    """LPIPS's VGG16 convolutions (projection compares 256x256 images), but the 3-channel first one."""
    layers, channels = [], [(64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256), (256, 512),
                            (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    sizes = [size, size // 2, size // 2, size // 4, size // 4, size // 4, size // 8, size // 8, size // 8,
             size // 16, size // 16, size // 16]
    for (i, o), s in zip(channels, sizes):
        layers.append((f"VGG16 b{batch} {s}x{s}", batch, i, o, s))
    return layers


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per path and layer (default 1)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    print(machine_line(device))
    peak = matmul_peak(device)
    print(f"measured peak: {peak / 1e9:.1f} GFLOP/s (fp32 4096x4096 matrix product)")
    print(f"{'layer':>20} {'in':>4} {'out':>4} {'direct ms':>10} {'winograd ms':>12} {'ratio':>6} "
          f"{'direct GFLOP/s':>15} {'winograd GFLOP/s':>17} {'err direct':>11} {'err winograd':>13}")
    gen = torch.Generator().manual_seed(0)
    totals = {"direct": 0.0, "winograd": 0.0}
    layers = configf_layers(256, 8) + configf_layers(1024, 1) + vgg16_layers()
    for name, batch, in_channels, out_channels, size in layers:
        x = torch.randn(batch, in_channels, size, size, generator=gen).contiguous(memory_format=torch.channels_last)
        w = torch.randn(out_channels, in_channels, 3, 3, generator=gen) / (9 * in_channels) ** 0.5
        with torch.inference_mode():
            if not winograd.usable(x, w):
                print(f"{name:>20} {in_channels:>4} {out_channels:>4}   (direct only: below the thresholds)")
                continue
            paths = dict(direct=lambda: F.conv2d(x, w, padding=1), winograd=lambda: winograd.conv3x3(x, w, key=w))
            times, _ = time_paths(paths, device, args.min_time)
            exact = F.conv2d(x.double(), w.double(), padding=1)
            err = {p: ((fn().double() - exact).abs().max() / exact.abs().max()).item() for p, fn in paths.items()}
        flops = 2 * 9 * batch * size * size * in_channels * out_channels
        for p in totals:
            totals[p] += times[p]
        print(f"{name:>20} {in_channels:>4} {out_channels:>4} {times['direct'] * 1e3:>10.2f} "
              f"{times['winograd'] * 1e3:>12.2f} {times['direct'] / times['winograd']:>6.2f} "
              f"{flops / times['direct'] / 1e9:>15.1f} {flops / times['winograd'] / 1e9:>17.1f} "
              f"{err['direct']:>11.1e} {err['winograd']:>13.1e}", flush=True)
    print(f"all layers above: direct {totals['direct']:.3f} s, winograd {totals['winograd']:.3f} s, "
          f"ratio {totals['direct'] / totals['winograd']:.2f}")


if __name__ == "__main__":
    main()
