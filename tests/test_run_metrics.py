"""run_metrics.py end to end on a small random network, an 8-image TFRecord dataset and random-weight feature
networks passed by flag (Inception-v3, LPIPS); two processes give the result of one; training with --metrics;
mistakes end in one line. The maths: tests/test_metrics.py."""

import glob
import json
import os
import re
import subprocess
import sys

import pytest
import torch

import dnnlib
import run_metrics
from conftest import REPO_ROOT
from metrics.inception import InceptionV3
from test_metrics import write_images

ENV = dict(os.environ, OMP_NUM_THREADS="1")
METRICS = "kid4_full,is10,ppl_zfull8,ppl2_wend8"


@pytest.fixture(scope="module")
def files(tmp_path_factory, lpips_pkl, small_pkl):
    """Paths: inception (random InceptionV3 state dict), lpips, network, data_dir/blobs (8 images, TFRecords)."""
    import dataset_tool
    root = tmp_path_factory.mktemp("run_metrics")
    torch.manual_seed(0)
    inception = str(root / "pt_inception.pth")
    torch.save(InceptionV3().state_dict(), inception)
    dataset_tool.create_from_images(str(root / "blobs"), write_images(str(root / "images"), 8))
    return dnnlib.EasyDict(inception=inception, lpips=lpips_pkl, network=small_pkl, data_dir=str(root),
                           root=root)


def args_for(files, result_dir, metrics=METRICS, *extra):
    return ["--network", files.network, "--metrics", metrics, "--data-dir", files.data_dir, "--dataset", "blobs",
            "--inception", files.inception, "--vgg16", files.lpips, "--result-dir", str(result_dir),
            "--cache-dir", str(files.root / "cache"), *extra]


def records(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def single_run(files, single_thread):
    """One in-process run of METRICS: its run directory. One thread, as each process of the two-process run (a
    different thread count may reduce in another order: results would then agree only to float rounding)."""
    try:
        run_metrics.main(args_for(files, files.root / "single"))
    finally:
        dnnlib.util.set_cache_dir(None)
    run_dir, = glob.glob(str(files.root / "single" / "*-run-metrics"))
    return run_dir


def test_end_to_end_writes_the_original_lines_and_records(single_run, files):
    assert os.path.basename(single_run) == "00000-run-metrics"
    log = open(os.path.join(single_run, "log.txt")).read()
    assert 'Evaluating metrics "kid4_full,is10,ppl_zfull8,ppl2_wend8"' in log
    for name, keys in [("kid4_full", ["kid4_full"]), ("is10", ["is10_mean", "is10_std"]),
                       ("ppl_zfull8", ["ppl_zfull8"]), ("ppl2_wend8", ["ppl2_wend8"])]:
        line = open(os.path.join(single_run, f"metric-{name}.txt")).read().strip()
        pattern = r"small {26}time \S+( \S+)? +" + " ".join(rf"{key} -?\d+\.\d{{4}}\s*" for key in keys)
        assert re.fullmatch(pattern, line), line
        assert line in log
    recs = records(single_run)
    assert [r["metric"] for r in recs] == METRICS.split(",")
    assert all(r["num_gpus"] == 1 and r["network"] == "small" and r["total_time"] >= 0 for r in recs)
    assert recs[1]["results"]["is10_mean"] >= 1
    assert len(glob.glob(str(files.root / "cache" / "gan-metrics" / "blobs-inception-*.npz"))) == 1


def test_two_processes_give_the_result_of_one(single_run, files):
    result = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "run_metrics.py")] +
                            args_for(files, files.root / "dual", "kid4_full,ppl_zfull8,ppl2_wend8", "--num-gpus", "2"),
                            capture_output=True, text=True, cwd=REPO_ROOT, env=ENV)
    assert result.returncode == 0, result.stderr
    run_dir, = glob.glob(str(files.root / "dual" / "*-run-metrics"))
    dual = {r["metric"]: r for r in records(run_dir)}
    single = {r["metric"]: r for r in records(single_run)}
    assert set(dual) == {"kid4_full", "ppl_zfull8", "ppl2_wend8"}
    for name, record in dual.items():
        assert record["num_gpus"] == 2 and record["results"] == single[name]["results"], name
    assert result.stdout.count("Evaluating metrics") == 1


def test_training_evaluates_metrics_at_each_snapshot(files, tmp_path):
    tiny = ["--cbase", "128", "--cmax", "16", "--map", "2", "--batch", "8", "--batch-gpu", "4", "--workers", "0"]
    result = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "run_training.py"), "--data",
                             os.path.join(files.data_dir, "blobs"), "--cfg", "auto", "--kimg", "0.016", "--tick",
                             "0.008", "--snap", "1", "--metrics", "ppl_wend2,ppl2_wend2", "--vgg16", files.lpips,
                             "--result-dir", str(tmp_path)] + tiny,
                            capture_output=True, text=True, cwd=REPO_ROOT, env=ENV)
    assert result.returncode == 0, result.stderr
    run_dir, = glob.glob(str(tmp_path / "00000-*"))
    lines = open(os.path.join(run_dir, "metric-ppl_wend2.txt")).read().splitlines()
    assert len(lines) == 2 and all(line.startswith("network-snapshot-000000 ") for line in lines)
    recs = records(run_dir)
    assert [r["metric"] for r in recs] == ["ppl_wend2", "ppl2_wend2"] * 2
    assert all(r["snapshot_pkl"] == "network-snapshot-000000.pkl" for r in recs)
    options = json.load(open(os.path.join(run_dir, "training_options.json")))
    assert options["metrics"] == ["ppl_wend2", "ppl2_wend2"] and options["metric_weights"]["vgg16"] == files.lpips


@pytest.mark.parametrize("metrics,data,extra,message", [
    ("fid50k,fid1m", "tfrecords", [], "unknown metric 'fid1m'"),
    ("kid1k_full", ["--data", "/nonexistent/data.zip"], [], "dataset not found: /nonexistent/data.zip"),
    ("kid1k_full", "tfrecords", ["--inception", "/nonexistent/pt_inception.pth"],
     "Inception weights are not available"),
    ("ppl_wend10", [], ["--vgg16", "/nonexistent/vgg16_zhang_perceptual.pkl"], "file not found"),
    ("kid1k_full", [], [], "needs the dataset"),
    ("kid1k_full", "tfrecords", ["--num-gpus", "0"], "--num-gpus must be at least 1"),
])
def test_mistakes_are_one_line(files, tmp_path, capsys, metrics, data, extra, message):
    argv = args_for(files, tmp_path / "results", metrics)
    if data != "tfrecords":
        at = argv.index("--data-dir")
        argv[at:at + 4] = data  # --data-dir <dir> --dataset blobs
    argv += extra  # a repeated option: the last one counts
    try:
        with pytest.raises(SystemExit) as exit_info:
            run_metrics.main(argv)
    finally:
        dnnlib.util.set_cache_dir(None)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 1 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not glob.glob(str(tmp_path / "results" / "*"))  # no run directory
