"""The benchmark helpers measure what they claim: FLOP counts, interleaved timing, peak memory, the peer's modules
kept apart from ours."""

import argparse
import os
import sys

import pytest
import torch
import torch.nn.functional as F

import dnnlib
from bench import common


def test_count_flops_matches_formulas_also_under_inference_mode():
    x, w = torch.randn(2, 8, 16, 16), torch.randn(4, 8, 3, 3)
    conv = 2 * 2 * 16 * 16 * 4 * 8 * 9
    assert common.count_flops(lambda: F.conv2d(x, w, padding=1)) == conv
    with torch.inference_mode():  # Network.run's mode: composite ops arrive undecomposed
        assert common.count_flops(lambda: F.conv2d(x, w, padding=1)) == conv
        assert common.count_flops(lambda: torch.randn(5, 6) @ torch.randn(6, 7)) == 2 * 5 * 6 * 7
    # Transposed: every input pixel meets every tap; grouped: each output sees in/groups channels.
    assert common.count_flops(lambda: F.conv_transpose2d(x, torch.randn(8, 4, 3, 3), stride=2)) == conv
    assert common.count_flops(lambda: F.conv2d(x, torch.randn(8, 4, 3, 3), groups=2)) == 2 * 2 * 14 * 14 * 8 * 4 * 9
    # Backward passes count too (input and weight gradients: twice the forward).
    wg = w.clone().requires_grad_(True)
    xg = x.clone().requires_grad_(True)
    assert common.count_flops(lambda: F.conv2d(xg, wg, padding=1).sum().backward()) == 3 * conv


def test_time_paths_runs_every_path_and_pairs_against_the_first():
    calls = {"a": 0, "b": 0}

    def path(name):
        def run():
            calls[name] += 1
            torch.randn(64, 64) @ torch.randn(64, 64)
        return run
    medians, paired = common.time_paths(dict(a=path("a"), b=path("b")), torch.device("cpu"), min_time=0,
                                        min_repeats=3)
    assert calls == {"a": 4, "b": 4}  # one untimed call each, then three rounds
    assert set(medians) == {"a", "b"} and all(t > 0 for t in medians.values())
    assert paired["a"] == 1.0 and paired["b"] > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RSS high-water mark: Linux only")
def test_peak_memory_sees_a_large_temporary():
    size = 64 * 2**20

    def allocate():
        t = torch.ones(size // 4)  # touched, so resident
        return float(t[-1])
    step, total = common.peak_memory(allocate, torch.device("cpu"))
    assert step >= 0.9 * size and total >= step
    assert common.peak_memory(lambda: None, torch.device("cpu"))[0] < size / 4


def test_peer_imports_keep_the_peer_apart_from_our_modules(tmp_path):
    (tmp_path / "legacy.py").write_text("WHO = 'peer legacy'\n")
    (tmp_path / "dnnlib").mkdir()
    (tmp_path / "dnnlib" / "__init__.py").write_text("WHO = 'peer dnnlib'\n")
    ours = sys.modules["dnnlib"]
    with common.peer_imports(str(tmp_path)):
        import dnnlib as peer_dnnlib
        import legacy
        assert peer_dnnlib.WHO == "peer dnnlib" and legacy.WHO == "peer legacy"
    assert sys.modules["dnnlib"] is ours and "legacy" not in sys.modules
    assert str(tmp_path) not in sys.path
    import dnnlib as again
    assert again is ours and hasattr(again, "util") and again is dnnlib


def test_peer_imports_refuses_a_folder_that_is_not_a_checkout(tmp_path):
    with pytest.raises(SystemExit, match="not a checkout"):
        with common.peer_imports(str(tmp_path)):
            pass
    assert os.path.isdir(tmp_path)


def test_run_passes_the_peer_to_generate_and_train():
    from bench import run
    args = argparse.Namespace(device="cpu", threads=1, full=False, no_memory=True, peer="/x/stylegan3",
                              precision="fp32")
    for workload in ("generate", "train"):
        cmd = run.commands(args)[workload]
        assert cmd[cmd.index("--peer") + 1] == "/x/stylegan3"
    args.peer = None
    assert not any("--peer" in cmd for cmd in run.commands(args).values())


def test_generation_precision_rows():
    """bench/run.py asks generate.py for the TF32 and float16 rows on CUDA by default, none on the CPU."""
    from bench import generate, run
    args = argparse.Namespace(device="cpu", threads=None, full=False, no_memory=True, peer=None, precision=None)

    def precision():
        cmd = run.commands(args)["generate"]
        return cmd[cmd.index("--precision") + 1]

    assert precision() == "fp32" and generate.precision_list(precision()) == []
    args.device = "cuda"
    assert generate.precision_list(precision()) == ["tf32", "fp16"]
    args.precision = "bf16"
    assert precision() == "bf16"
    assert generate.precision_list("fp32, bf16,fp16") == ["bf16", "fp16"]
    with pytest.raises(argparse.ArgumentTypeError, match="unknown precision fp8"):
        generate.precision_list("fp8")


def test_train_report_shows_the_peer_only_when_it_ran(capsys):
    from bench import train
    times = dict.fromkeys(train.PHASES + ("step",), 1.0)
    result = dict(name="small", config=dict(resolution=64, batch=32), memory={}, flops_per_step=1e9,
                  median=dict(ours=dict(times, kimg=10.0), ref=dict(times, kimg=20.0)), paired=dict(times))
    args = argparse.Namespace(no_memory=True, device="cpu", peak=1e11)
    train.print_report([result], args)
    assert "peer" not in capsys.readouterr().out
    result["median"]["peer"] = dict(times, kimg=15.0)
    result.update(paired_peer=dict(times), flops_per_step_peer=1e9)
    train.print_report([result], args)
    out = capsys.readouterr().out
    assert "vs peer" in out and "peer GFLOP/s" in out and "peer mem GiB" in out
    row = next(line for line in out.splitlines() if line.split()[:2] == ["small", "64"])
    assert row.split()[3:9] == ["10.0", "20.0", "2.00", "1.00", "15.0", "1.50"]
