"""Generation speed of a config-f generator (random weights): images/s, fused vs. unfused modulated convolution.

    python bench/generate.py                      # 256x256 and 1024x1024, batch 1 and 8, on the CPU
    python bench/generate.py --resolutions=256 --batch-sizes=4 --min-time=20

Both paths run in the same process on the same network and inputs, so the ratio holds however busy the machine is;
the absolute images/s move with it. Prints one row per (resolution, batch) and the largest difference between the
two paths' uint8 images.
"""

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import dnnlib  # noqa: E402
import dnnlib.tflib as tflib  # noqa: E402
from dnnlib.tflib.network import Network  # noqa: E402


def images_per_second(Gs, z, fused_modconv, min_time, min_repeats):
    """Median images/s over repeated Gs.run calls after one warm-up call; also returns the last images."""
    kwargs = dict(truncation_psi=0.5, randomize_noise=False, fused_modconv=fused_modconv,
                  output_transform=dict(func=tflib.convert_images_to_uint8, nchw_to_nhwc=True))
    images = Gs.run(z, None, **kwargs)  # warm-up: allocator, oneDNN primitive caches
    times = []
    while len(times) < min_repeats or sum(times) < min_time:
        start = time.perf_counter()
        images = Gs.run(z, None, **kwargs)
        times.append(time.perf_counter() - start)
    return len(z) / statistics.median(times), images


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolutions", type=dnnlib.util.parse_num_range, default="256,1024")
    parser.add_argument("--batch-sizes", type=dnnlib.util.parse_num_range, default="1,8")
    parser.add_argument("--min-time", type=float, default=10.0, help="seconds to time each path (default: 10)")
    parser.add_argument("--min-repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"device {args.device}")
    print(f"{'resolution':>10} {'batch':>5} {'fused img/s':>12} {'unfused img/s':>14} {'fused/unfused':>14} "
          f"{'max |diff| uint8':>17}")
    for resolution in args.resolutions:
        torch.manual_seed(0)
        Gs = Network("Gs", func_name="G_main", resolution=resolution).to(args.device)  # config-f kwargs
        for batch in args.batch_sizes:
            z = np.random.RandomState(0).randn(batch, *Gs.input_shape[1:])
            fused, fused_images = images_per_second(Gs, z, True, args.min_time, args.min_repeats)
            unfused, unfused_images = images_per_second(Gs, z, False, args.min_time, args.min_repeats)
            diff = np.abs(fused_images.astype(int) - unfused_images.astype(int)).max()
            print(f"{resolution:>10} {batch:>5} {fused:>12.3f} {unfused:>14.3f} {fused / unfused:>14.2f} {diff:>17}",
                  flush=True)


if __name__ == "__main__":
    main()
