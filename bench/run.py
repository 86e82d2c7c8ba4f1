"""The benchmark suite: every workload's script in turn, each in its own process, with one report.

    python -m bench                                     # all workloads, CPU defaults (about 25 minutes on 2 cores)
    python -m bench --peer ../stylegan2-ada-pytorch --precision bf16 --out bench-report.txt
    python -m bench --only generate,train --device cuda --full

Workloads (each script's --help says exactly what it measures and how):
  generate  bench/generate.py: config-f generation at 256 and 1024 and the mapping network alone; ours vs. our
            reference path vs. the peer (--peer), FLOPs, achieved FLOP/s against the measured peak, peak memory,
            uint8 differences; rows for --precision tf32,fp16,bf16 (tf32 and fp16 by default on CUDA).
  train     bench/train.py: full training steps (G and D with their regularisers), sec/kimg, per-phase times,
            FLOPs, peak memory; ours vs. the reference path vs. the peer's training step (--peer).
  project   bench/project.py: Projector.step() at 256 (and 1024 with --full), ours vs. the reference path.
  features  bench/metrics.py: Inception feature extraction of dataset and generated images and a small FID.
  conv      bench/conv.py: the CPU fast path's Winograd 3x3 convolutions layer by layer against oneDNN's direct
            ones (config-f at 256 and 1024, VGG16), with their float error; CPU only.
--full asks for the issue's whole grid (batch 1, 8 and 32 at both resolutions; projection at 1024 too), which takes
hours on a 2-core CPU; on CUDA it is the default.
"""

import argparse
import os
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH_DIR))  # `python bench/run.py` as well as `python -m bench`
from bench.common import check_peer_arg  # noqa: E402
WORKLOADS = ("generate", "train", "project", "features", "conv")


def commands(args):
    """workload -> argument list of its script."""
    cuda = args.device.startswith("cuda")
    full = args.full or cuda
    common = ["--device", args.device] + (["--threads", str(args.threads)] if args.threads else [])
    memory = ["--no-memory"] if args.no_memory else []
    generate = ["generate.py", "--resolutions", "256,1024"] + common + memory
    generate += ["--batch-sizes", "1,8,32"] if full else []
    peer = ["--peer", args.peer] if args.peer else []
    generate += peer + ["--precision", args.precision or ("tf32,fp16" if cuda else "fp32")]
    return dict(
        generate=generate,
        train=["train.py"] + common + memory + (["--setups", "small,configf"] if full else []) + peer,
        project=["project.py", "--resolution", "256,1024" if full else "256"] + common + memory,
        features=["metrics.py"] + common,
        conv=["conv.py"] + common[2:],  # CPU only: no --device
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(WORKLOADS)}")
    parser.add_argument("--peer", metavar="PATH", help="checkout of NVlabs/stylegan2-ada-pytorch or NVlabs/stylegan3")
    parser.add_argument("--precision", help="comma-separated generation rows besides float32's: tf32, fp16 (GPUs), "
                                            "bf16 (default: tf32,fp16 on CUDA, none on the CPU)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--full", action="store_true", help="the whole grid (default on CUDA; hours on a CPU)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurements")
    parser.add_argument("--out", help="also write the report to this file")
    args = parser.parse_args()
    selected = WORKLOADS if args.only is None else [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = sorted(set(selected) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    check_peer_arg(parser, args.peer)

    report = open(args.out, "w") if args.out else None
    failed = []
    for workload in selected:
        script, *script_args = commands(args)[workload]
        cmd = [sys.executable, os.path.join(BENCH_DIR, script)] + script_args
        header = f"\n===== {workload}: {' '.join(['python', 'bench/' + script] + script_args)}"
        for stream in filter(None, (sys.stdout, report)):
            print(header, file=stream, flush=True)
        start = time.perf_counter()
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
            for line in proc.stdout:
                for stream in filter(None, (sys.stdout, report)):
                    stream.write(line)
                    stream.flush()
        footer = f"----- {workload}: {'ok' if proc.returncode == 0 else f'FAILED (exit {proc.returncode})'} in " \
                 f"{time.perf_counter() - start:.0f} s"
        for stream in filter(None, (sys.stdout, report)):
            print(footer, file=stream, flush=True)
        if proc.returncode != 0:
            failed.append(workload)
    if report:
        report.close()
        print(f"report written to {args.out}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
