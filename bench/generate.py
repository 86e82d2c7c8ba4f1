"""Generation and mapping speed of a config-f StyleGAN2: our default path against our reference path and, given a
checkout, stylegan2-ada-pytorch (or stylegan3), all in one process on the same official-format pickle.

    python bench/generate.py                                   # CPU: 256 at batch 1 and 8, 1024 at batch 1
    python bench/generate.py --peer /path/to/stylegan2-ada-pytorch --precision bf16
    python bench/generate.py --resolutions 256,1024 --batch-sizes 1,8,32 --device cuda --precision tf32,fp16

The networks are config-f (G_main with its default kwargs, 8 mapping layers) with random weights, written as an
official-format (G, D, Gs) pickle to a temporary file and loaded back from it by every path. Paths:
  ours   Gs.run(z, None, truncation_psi=0.5, randomize_noise=False) with the uint8 NHWC output transform: the
         default path (on the CPU: unfused modulated convolution in channels-last, large 3x3 convolutions by
         Winograd's method; CUDA kernels on GPUs).
  ref    the same call inside dnnlib.ops.reference_path(): the original's arithmetic in plain PyTorch ops (fused
         modulated convolution, NCHW, ops on impl='ref').
  peer   the peer's G_ema(z, None, truncation_psi=0.5, noise_mode='const') loaded by its legacy.py, converted to
         uint8 NHWC as its generate.py does; its ops take their own CPU/CUDA paths.
  ours, ref and peer compute in float32 (on GPUs with TF32 off, as the original's float32).
  tf32, fp16, bf16   (--precision, comma-separated) ours under dnnlib.ops.precision(name), run_generator.py's
         --precision: TF32 on a GPU; float16 in the 4 highest resolutions with clamping, TF32 for the rest;
         torch.autocast(dtype=bfloat16). Separate rows, never the default.
  compile  (--compile) ours through torch.compile (run_generator.py --compile), compiled in its untimed first call.
Each call generates one batch from the same latents. The paths take turns (order reversed every other round) until
each has --min-time seconds and 3 calls; images/s is the batch over the median call. 'vs ref' and 'vs peer' are
the other path's median time over ours (above 1: ours is faster). GFLOP/img counts the convolutions and matrix
products of one call as the direct method does them (torch's formulas; Winograd's method does fewer
multiplications, so its rate is effective and can pass 100 %); '% peak' sets the achieved rate against a 4096x4096 matrix
product's on this machine in the row's precision (fp16: float16's; tf32: float32's with TF32 on). Peak memory: see bench/common.py. 'max diff' is the largest uint8 difference from ours.
The mapping rows time the mapping network alone (z -> W, batch --mapping-batch).
"""

import argparse
import contextlib
import os
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import dnnlib  # noqa: E402
import dnnlib.ops  # noqa: E402
import dnnlib.tflib as tflib  # noqa: E402
from bench import common  # noqa: E402
from dnnlib.tflib.network import Network  # noqa: E402
from dnnlib.tflib.network_pickle import save_network_pkl  # noqa: E402
from pretrained_networks import load_networks_file  # noqa: E402

PEAK_DTYPES = dict(fp32=torch.float32, tf32=torch.float32, fp16=torch.float16, bf16=torch.bfloat16)
TO_UINT8 = dict(func=tflib.convert_images_to_uint8, nchw_to_nhwc=True)


def write_configf_pickle(resolution, path):
    """Random config-f networks (seed 0) as an official-format (G, D, Gs) pickle."""
    torch.manual_seed(0)
    G = Network("G", func_name="training.networks_stylegan2.G_main", resolution=resolution)
    D = Network("D", func_name="training.networks_stylegan2.D_stylegan2", resolution=resolution)
    save_network_pkl((G, D, G.clone("Gs")), path)


def with_reference_and_peer(ours, peer=None):
    """The paths of one workload: ours, ours on the reference path, and the peer's (when given) in inference mode."""
    def ref():
        with dnnlib.ops.reference_path():
            return ours()

    paths = dict(ours=ours, ref=ref)
    if peer is not None:
        def peer_path():
            with torch.inference_mode():
                return peer()
        paths["peer"] = peer_path
    return paths


def generation_paths(Gs, peer_G, z, device, precisions, compiled=False):
    """name -> callable returning uint8 NHWC images of the batch z."""
    def ours():
        return Gs.run(z, None, truncation_psi=0.5, randomize_noise=False, output_transform=TO_UINT8)

    def peer():
        img = peer_G(torch.as_tensor(z, dtype=torch.float32, device=device), None, truncation_psi=0.5,
                     noise_mode="const")
        return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()

    paths = with_reference_and_peer(ours, peer if peer_G is not None else None)
    for name in precisions:
        def ours_in(name=name):
            with dnnlib.ops.precision(name, device):
                return ours()
        paths[name] = ours_in
    if compiled:
        def ours_compiled():
            with dnnlib.ops.compiling():
                return ours()
        paths["compile"] = ours_compiled
    return paths


def mapping_paths(Gs, peer_G, z, device):
    def ours():
        return Gs.components.mapping.run(z, None)

    def peer():
        return peer_G.mapping(torch.as_tensor(z, dtype=torch.float32, device=device), None).cpu().numpy()

    return with_reference_and_peer(ours, peer if peer_G is not None else None)


def measure(paths, device, args):
    """Median seconds per call, FLOPs, peak memory and output of every path."""
    times, _ = common.time_paths(paths, device, args.min_time)
    rows = {}
    for name, fn in paths.items():
        out = fn()
        flops = common.count_flops(fn)
        memory = None if args.no_memory else common.peak_memory(fn, device)[0]
        rows[name] = dict(seconds=times[name], flops=flops, memory=memory, output=out)
    return rows


def print_rows(title, rows, items, unit, peaks):
    ours = rows["ours"]
    for name, r in rows.items():
        rate = items / r["seconds"]
        gflop = r["flops"] / items / 1e9
        achieved = r["flops"] / r["seconds"]
        peak = peaks.get(name, peaks["fp32"])
        vs_ref = rows["ref"]["seconds"] / r["seconds"] if name == "ours" else None
        vs_peer = rows["peer"]["seconds"] / r["seconds"] if name == "ours" and "peer" in rows else None
        diff = np.abs(r["output"].astype(np.float64) - ours["output"].astype(np.float64)).max()
        memory = "-" if r["memory"] is None else f"{r['memory'] / 2**20:.0f}"
        print(f"{title:>16} {name:>5} {rate:>9.3f} {unit:<5} {gflop:>9.4g} {achieved / 1e9:>8.1f} "
              f"{100 * achieved / peak:>6.1f} {memory:>8} {fmt(vs_ref):>7} {fmt(vs_peer):>8} {fmt(diff, '.3g'):>9}",
              flush=True)


def precision_list(text):
    """'tf32,fp16' -> ['tf32', 'fp16']; 'fp32' (the rows that are always there) -> []."""
    names = [name for name in (part.strip() for part in text.split(",")) if name and name != "fp32"]
    unknown = [name for name in names if name not in dnnlib.ops.PRECISIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown precision {', '.join(unknown)}: choose from "
                                         f"{', '.join(dnnlib.ops.PRECISIONS)}")
    return names


def fmt(value, spec=".2f"):
    return "" if value is None else format(value, spec)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolutions", type=dnnlib.util.parse_num_range, default="256,1024")
    parser.add_argument("--batch-sizes", type=dnnlib.util.parse_num_range,
                        help="default: 1,8 on the CPU (1024: 1 only), 1,8,32 on CUDA")
    parser.add_argument("--mapping-batch", type=int, default=256, help="batch of the mapping rows (default: 256)")
    parser.add_argument("--peer", metavar="PATH", help="checkout of NVlabs/stylegan2-ada-pytorch or NVlabs/stylegan3")
    parser.add_argument("--precision", type=precision_list, default="fp32",
                        help="comma-separated rows besides float32's: tf32, fp16 (GPUs), bf16 (default: none)")
    parser.add_argument("--compile", action="store_true",
                        help="a row for ours through torch.compile (run_generator.py --compile; compiled before timing)")
    parser.add_argument("--min-time", type=float, default=10.0, help="seconds to time each path (default: 10)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurements")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    common.check_peer_arg(parser, args.peer)
    device = torch.device(args.device)
    for name in args.precision:
        try:
            dnnlib.ops.precision(name, device)
        except ValueError as err:
            parser.error(str(err))
    dnnlib.util.keep_freed_memory()

    print(common.machine_line(device))
    peaks = {}  # each row's "% peak" is of its own precision's matrix-product peak
    for name in ["fp32"] + args.precision:
        with dnnlib.ops.cuda_tf32(name == "tf32"):
            peaks[name] = common.matmul_peak(device, PEAK_DTYPES[name])
        print(f"measured peak: {peaks[name] / 1e9:.1f} GFLOP/s ({name} 4096x4096 matrix product)")
    print(f"{'workload':>16} {'path':>5} {'rate':>9} {'':<5} {'GFLOP/img':>9} {'GFLOP/s':>8} {'% peak':>6} "
          f"{'mem MiB':>8} {'vs ref':>7} {'vs peer':>8} {'max diff':>9}")
    with tempfile.TemporaryDirectory() as tmp, dnnlib.ops.precision("fp32", device):
        for resolution in args.resolutions:
            pkl = os.path.join(tmp, f"configf-{resolution}.pkl")
            write_configf_pickle(resolution, pkl)
            with open(pkl, "rb") as f:
                _G, _D, Gs = load_networks_file(f, source=pkl)
            Gs = Gs.to(device)
            peer_G = common.load_peer_generator(args.peer, pkl, device) if args.peer else None
            batches = args.batch_sizes or ([1, 8, 32] if device.type == "cuda" else [1] if resolution > 256 else [1, 8])
            for batch in batches:
                z = np.random.RandomState(0).randn(batch, *Gs.input_shape[1:])
                rows = measure(generation_paths(Gs, peer_G, z, device, args.precision, args.compile), device, args)
                print_rows(f"gen {resolution} b{batch}", rows, batch, "img/s", peaks)
            z = np.random.RandomState(0).randn(args.mapping_batch, *Gs.input_shape[1:])
            rows = measure(mapping_paths(Gs, peer_G, z, device), device, args)
            print_rows(f"mapping b{args.mapping_batch}", rows, args.mapping_batch, "z/s", peaks)
            del Gs, peer_G, _G, _D
            with contextlib.suppress(OSError):
                os.remove(pkl)


if __name__ == "__main__":
    main()
