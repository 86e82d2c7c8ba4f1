"""Losses against their formulas, a short end-to-end run, exact kill-and-resume, and multi-process equivalence.

Everything runs on tiny networks (16x16, a few channels) and a 24-image dataset written in the test."""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import PIL.Image
import pytest
import torch
import torch.nn.functional as F

from conftest import REPO_ROOT
from dnnlib.tflib.network import Network
from dnnlib.tflib.network_pickle import load_network_pkl
from training import training_loop as tl
from training.loss import StyleGAN2Loss, random_inputs, slice_inputs

TINY = ["--cbase", "128", "--cmax", "16", "--map", "2", "--batch", "8", "--batch-gpu", "4", "--workers", "0"]


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """24 random-blob RGB images of 16x16 in an image folder."""
    folder = tmp_path_factory.mktemp("data") / "blobs"
    folder.mkdir()
    rnd = np.random.RandomState(0)
    yy, xx = np.mgrid[:16, :16]
    for i in range(24):
        cy, cx = rnd.uniform(3, 13, size=2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8)[..., None] * rnd.uniform(0, 255, size=3)
        PIL.Image.fromarray(blob.astype(np.uint8), "RGB").save(folder / f"img{i:03d}.png")
    return str(folder)


def tiny_nets(label_size=0):
    torch.manual_seed(1)
    kwargs = dict(resolution=16, num_channels=3, label_size=label_size, fmap_base=64, fmap_max=16)
    G = Network("G", func_name="training.networks_stylegan2.G_main", mapping_layers=2, latent_size=16,
                dlatent_size=16, mapping_fmaps=16, **kwargs)
    D = Network("D", func_name="training.networks_stylegan2.D_stylegan2", mbstd_group_size=2, **kwargs)
    return G, D


# One thread per process: these networks are too small to gain from more, and the runs go side by side.
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def run_cli(args, **kwargs):
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, "run_training.py")] + args, capture_output=True,
                          text=True, cwd=REPO_ROOT, env=ENV, **kwargs)


def load_params(pkl):
    with open(pkl, "rb") as f:
        return [{name: var.eval() for name, var in net.vars.items()} for net in load_network_pkl(f)]


# ----------------------------------------------------------------------------------------------------------------
# Losses.

def test_loss_terms_match_formulas():
    G, D = tiny_nets()
    loss = StyleGAN2Loss(G, D, r1_gamma=3.0, pl_weight=2.0)
    gen = torch.Generator().manual_seed(0)
    inputs = random_inputs(G, 4, gen, "cpu", style_mixing_prob=0)
    images = G.module.synthesis(G.module.mapping(inputs.latents), noise_inputs=inputs.noise)

    g_loss, _ = loss.G_main(inputs, None)
    torch.testing.assert_close(g_loss, F.softplus(-D.module(images)).flatten(), rtol=1e-5, atol=1e-6)

    reals = torch.randn(4, 3, 16, 16)
    d_loss, real_scores = loss.D_main(reals, None, inputs, None)
    expected = F.softplus(D.module(images)) + F.softplus(-D.module(reals))
    torch.testing.assert_close(d_loss, expected.flatten(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(real_scores, D.module(reals).flatten())

    x = reals.clone().requires_grad_(True)
    grad, = torch.autograd.grad(D.module(x).sum(), x)
    penalty, reg = loss.D_r1(reals, None)
    torch.testing.assert_close(penalty, grad.square().sum(dim=[1, 2, 3]), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(reg, penalty * 1.5, rtol=1e-6, atol=0)

    # Path length: |J^T y| per sample by finite differences of <G(w), y> along each coordinate of w.
    loss.pl_mean = torch.tensor(0.3)
    pl_noise = loss.pl_noise(4, gen, "cpu")
    lengths = loss.pl_lengths(inputs, None, pl_noise)
    w = G.module.mapping(inputs.latents).detach()
    f = lambda ws: (G.module.synthesis(ws, noise_inputs=inputs.noise).double() * pl_noise).sum(dim=[1, 2, 3])
    eps, jac = 1e-2, torch.zeros_like(w, dtype=torch.float64)
    for layer in range(w.shape[1]):
        for c in range(w.shape[2]):
            step = torch.zeros_like(w)
            step[:, layer, c] = eps
            jac[:, layer, c] = (f(w + step) - f(w - step)) / (2 * eps)
    expected_lengths = jac.square().sum(dim=2).mean(dim=1).sqrt().float()
    torch.testing.assert_close(lengths, expected_lengths, rtol=2e-2, atol=1e-6)

    # The target moves toward this batch's mean first, and the gradient flows through that mean, as in the
    # original: the surrogate's gradient with respect to the lengths is that of the penalty written out in full.
    lengths = lengths.detach().requires_grad_(True)
    full = lengths.sub(0.3 + 0.01 * (lengths.mean() - 0.3)).square().mul(2.0)
    expected_grad, = torch.autograd.grad(full.sum(), lengths)
    penalty, surrogate = loss.pl_penalty(lengths, lengths.mean())
    grad, = torch.autograd.grad(surrogate.sum(), lengths)
    torch.testing.assert_close(penalty * 2.0, full.detach(), rtol=1e-6, atol=1e-8)  # the stat is unweighted
    torch.testing.assert_close(grad, expected_grad, rtol=1e-5, atol=1e-8)
    loss.update_pl_mean(lengths.mean().detach())
    torch.testing.assert_close(loss.pl_mean, 0.3 + 0.01 * (lengths.mean().detach() - 0.3))


def test_path_length_rounds_give_the_one_round_gradient():
    """Split into accumulation rounds, the penalty measures the global mean first and gives the same gradient."""
    G, D = tiny_nets()
    loss = StyleGAN2Loss(G, D, pl_weight=2.0)
    loss.pl_mean = torch.tensor(0.5)
    gen = torch.Generator().manual_seed(3)
    inputs = random_inputs(G, 4, gen, "cpu", style_mixing_prob=0)
    pl_noise = loss.pl_noise(4, gen, "cpu")
    grads, means = [], []
    for pl_gpu in (4, 2, 1):
        G.module.zero_grad(set_to_none=True)
        mean, _ = tl.accumulate_path_length(loss, inputs, None, pl_noise, tl.my_rounds(4, pl_gpu, 0, 1), pl_gpu,
                                            4, tl.Accumulator())
        grads.append([torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in G.module.parameters()])
        means.append(mean)
    for other, mean in zip(grads[1:], means[1:]):
        torch.testing.assert_close(mean, means[0], rtol=1e-6, atol=0)
        for a, b in zip(grads[0], other):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5 * float(a.abs().max()))  # rounding near zero


def test_random_inputs_do_not_depend_on_the_split():
    G, _ = tiny_nets()
    whole = random_inputs(G, 8, torch.Generator().manual_seed(5), "cpu")
    again = random_inputs(G, 8, torch.Generator().manual_seed(5), "cpu")
    part = slice_inputs(whole, 4, 8)
    torch.testing.assert_close(part.latents, again.latents[4:])
    assert all(torch.equal(a, b[4:]) for a, b in zip(part.noise, again.noise))
    assert 1 <= whole.mixing_cutoff <= G.module.num_layers


def test_sampler_splits_global_batches_over_processes():
    one = tl.GlobalBatchSampler(10, 8, 2, 0, 1, seed=3)
    it = iter(one)
    order = [next(it) for _ in range(24)]
    assert sorted(order[:10]) == list(range(10))  # the first 10 images are one epoch
    it0, it1 = iter(tl.GlobalBatchSampler(10, 8, 2, 0, 2, seed=3)), iter(tl.GlobalBatchSampler(10, 8, 2, 1, 2, seed=3))
    rank0, rank1 = [next(it0) for _ in range(12)], [next(it1) for _ in range(12)]
    for step in range(3):  # rank 0 takes rounds 0 and 2 of each minibatch, rank 1 rounds 1 and 3
        batch = order[step * 8:(step + 1) * 8]
        assert rank0[step * 4:(step + 1) * 4] == batch[0:2] + batch[4:6]
        assert rank1[step * 4:(step + 1) * 4] == batch[2:4] + batch[6:8]
    resumed = iter(tl.GlobalBatchSampler(10, 8, 2, 0, 1, seed=3, start_nimg=16))
    assert [next(resumed) for _ in range(8)] == order[16:24]


def test_freeze_d_prefixes():
    _, D = tiny_nets()
    assert tl.d_frozen_prefixes(D, 2) == ["16x16.", "8x8."]
    tl.set_requires_grad(D, True, tl.d_frozen_prefixes(D, 1))
    frozen = {name for name, p in D.module.named_parameters() if not p.requires_grad}
    assert frozen and all(name.startswith("16x16.") for name in frozen)


# ----------------------------------------------------------------------------------------------------------------
# Whole runs.

def test_end_to_end_run_writes_every_file(image_folder, tmp_path):
    result = run_cli(["--data", image_folder, "--cfg", "auto", "--kimg", "0.064", "--tick", "0.032", "--snap", "1",
                      "--aug", "ada", "--result-dir", str(tmp_path)] + TINY)
    assert result.returncode == 0, result.stderr
    run_dir, = glob.glob(str(tmp_path / "00000-*"))
    files = set(os.listdir(run_dir))
    for name in ["training_options.json", "log.txt", "stats.jsonl", "reals.png", "fakes_init.png",
                 "fakes000000.png", "network-snapshot-000000.pkl", "network-snapshot-000000.pt"]:
        assert name in files, name
    assert any(name.startswith("events.out.tfevents") for name in files) or "tensorboard" not in sys.modules
    stats = [json.loads(line) for line in open(os.path.join(run_dir, "stats.jsonl"))]
    assert [s["Progress/tick"] for s in stats] == [1, 2]
    assert all(np.isfinite(s["Loss/G/loss"]) and np.isfinite(s["Loss/D/loss"]) for s in stats)
    # The regularisers as the originals report them: the penalties unweighted, the regularisation losses weighted.
    first = stats[0]  # step 0 runs both regularisers
    assert first["Loss/G/reg"] == pytest.approx(first["Loss/pl_penalty"] * 2.0, rel=1e-5)
    gamma = json.load(open(os.path.join(run_dir, "training_options.json")))["loss_args"]["r1_gamma"]
    assert first["Loss/D/reg"] == pytest.approx(first["Loss/r1_penalty"] * gamma / 2, rel=1e-5)
    assert "tick 2" in open(os.path.join(run_dir, "log.txt")).read()
    G, D, Gs = load_network_pkl(open(os.path.join(run_dir, "network-snapshot-000000.pkl"), "rb"))
    images = Gs.run(np.random.RandomState(0).randn(2, *Gs.input_shape[1:]), None, truncation_psi=0.5)
    assert images.shape == (2, 3, 16, 16) and np.isfinite(images).all()
    options = json.load(open(os.path.join(run_dir, "training_options.json")))
    assert options["batch_size"] == 8 and options["ada_target"] == 0.6


def test_kill_and_resume_reproduces_the_uninterrupted_run(image_folder, tmp_path):
    """The final snapshot of an uninterrupted run (32 steps) equals that of a run killed (SIGKILL) after its first
    snapshot (step 16) and resumed with --resume latest. (Sub-kimg snapshots all have the name ...-000000.)"""
    common = ["--data", image_folder, "--cfg", "auto", "--kimg", "0.256", "--tick", "0.064", "--snap", "2",
              "--aug", "ada", "--target", "0.1"] + TINY
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert run_cli(common + ["--result-dir", str(whole)]).returncode == 0
    proc = subprocess.Popen([sys.executable, os.path.join(REPO_ROOT, "run_training.py")] + common +
                            ["--result-dir", str(broken)], cwd=REPO_ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not glob.glob(str(broken / "*" / "network-snapshot-000000.pkl")) and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # and a little into the next tick
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed, = glob.glob(str(broken / "00000-*" / "network-snapshot-000000.pkl"))
    assert tl.load_state(tl.state_path_for(killed))["progress"]["cur_nimg"] == 128  # killed before the end
    result = run_cli(["--resume", "latest", "--result-dir", str(broken)])
    assert result.returncode == 0, result.stderr
    a, = glob.glob(str(whole / "*" / "network-snapshot-000000.pkl"))
    b, = glob.glob(str(broken / "00001-*" / "network-snapshot-000000.pkl"))
    for net_a, net_b in zip(load_params(a), load_params(b)):
        for name in net_a:
            np.testing.assert_array_equal(net_a[name], net_b[name], err_msg=name)
    state_a, state_b = tl.load_state(tl.state_path_for(a)), tl.load_state(tl.state_path_for(b))
    assert state_a["progress"]["cur_nimg"] == state_b["progress"]["cur_nimg"] == 256
    assert state_a["augment_p"] == state_b["augment_p"] > 0


def test_two_processes_equal_one(image_folder, tmp_path):
    # 'auto' derives gamma and the Gs half-life from the process count: a fixed config keeps them equal.
    common = ["--data", image_folder, "--cfg", "stylegan2", "--kimg", "0.016", "--tick", "0.016", "--snap", "1",
              "--aug", "noaug"] + TINY
    one = run_cli(common + ["--result-dir", str(tmp_path / "one")])
    assert one.returncode == 0, one.stderr
    two = run_cli(common + ["--num-gpus", "2", "--result-dir", str(tmp_path / "two")])
    assert two.returncode == 0, two.stderr
    a, = glob.glob(str(tmp_path / "one" / "*" / "network-snapshot-000000.pkl"))
    b, = glob.glob(str(tmp_path / "two" / "*" / "network-snapshot-000000.pkl"))
    # Summing over processes rounds differently from summing over rounds. Adam moves a parameter by about lr
    # (2.5e-3) whatever the size of its gradient, so where a gradient nearly cancels to 0 the rounding shows in
    # the weights, and after one step in the next gradients; a wrong split of the work shows as differences of
    # order lr everywhere. So: gradients (Adam's first moment, as beta1 = 0) close, and nearly all weights equal.
    state_a, state_b = tl.load_state(tl.state_path_for(a)), tl.load_state(tl.state_path_for(b))
    assert state_a["progress"]["step"] == 2 and int(state_a["D_opt"]["state"][0]["step"]) == 3  # R1 at step 0
    for opt in ("G_opt", "D_opt"):
        for idx, param_state in state_a[opt]["state"].items():
            grad_a, grad_b = param_state["exp_avg"], state_b[opt]["state"][idx]["exp_avg"]
            torch.testing.assert_close(grad_b, grad_a, rtol=1e-2, atol=1e-3 * float(grad_a.abs().max()) + 1e-12,
                                       msg=lambda m: f"{opt} parameter {idx}: {m}")
    num_values = num_close = 0
    for net_a, net_b in zip(load_params(a), load_params(b)):
        for name in net_a:
            np.testing.assert_allclose(net_a[name], net_b[name], rtol=0, atol=2e-4, err_msg=name)
            num_values += np.size(net_a[name])
            num_close += np.sum(np.abs(net_a[name] - net_b[name]) <= 1e-6 + 1e-5 * np.abs(net_a[name]))
    assert num_close >= 0.99 * num_values


# ----------------------------------------------------------------------------------------------------------------
# Command-line mistakes.

@pytest.mark.parametrize("args, message", [
    (["--cfg", "nonsense"], "unknown --config"),
    (["--aug", "fixed"], "--aug=fixed needs --p"),
    (["--p", "0.3"], "--p needs --aug=fixed"),
    (["--metrics", "fid50k,nope"], "unknown metric 'nope'"),
    (["--batch", "6", "--batch-gpu", "4"], "not a multiple"),
    (["--subset", "25"], "--subset must be between 1 and 24"),
    (["--subset", "25", "--mirror", "1"], "--subset must be between 1 and 24"),
])
def test_cli_mistakes_are_one_line(image_folder, tmp_path, args, message):
    result = run_cli(["--data", image_folder, "--result-dir", str(tmp_path), "--dry-run"] + args)
    assert result.returncode == 1
    assert result.stderr.startswith("error:") and message in result.stderr and "Traceback" not in result.stderr


def test_ada_flags_in_the_options(image_folder, tmp_path):
    """--subset, --allow-tf32, --nobench and -n as in StyleGAN2-ADA's train.py."""
    result = run_cli(["--data", image_folder, "--result-dir", str(tmp_path), "-n", "--subset", "5", "--seed", "2",
                      "--allow-tf32", "1", "--nobench", "1"])
    assert result.returncode == 0, result.stderr
    options = json.loads(result.stdout)
    assert options["dataset_args"]["subset"] == 5 and options["dataset_args"]["subset_seed"] == 2
    assert options["allow_tf32"] is True and options["cudnn_benchmark"] is False
    assert not os.listdir(tmp_path)  # a dry run makes no run directory


def test_resume_latest_without_runs(tmp_path):
    result = run_cli(["--resume", "latest", "--result-dir", str(tmp_path)])
    assert result.returncode == 1 and "no snapshot" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("data, exact", [(None, True), ("same", True), ("other", False)])
def test_resume_on_another_dataset_is_fine_tuning(image_folder, tmp_path, data, exact):
    """A snapshot with its training state resumes exactly unless the command line names another dataset: then it
    is fine-tuning with the command line's options, and, as in stylegan2-ada-pytorch, a faster ADA and no Gs
    ramp-up. (A dry run reads only training_options.json, so the snapshot files can be empty.)"""
    run = tmp_path / "00000-run"
    run.mkdir()
    (run / "network-snapshot-000012.pkl").touch()
    (run / "network-snapshot-000012.pt").touch()
    saved = dict(dataset_args=dict(path=image_folder, mirror_augment=False), total_kimg=50, batch_size=8, batch_gpu=4)
    (run / "training_options.json").write_text(json.dumps(saved))
    other = str(tmp_path / "other")
    shutil.copytree(image_folder, other)
    data_args = {None: [], "same": ["--data", image_folder + os.sep], "other": ["--data", other, "--mirror", "1"]}[data]
    result = run_cli(["--resume", str(run / "network-snapshot-000012.pkl"), "-n"] + data_args + TINY)
    assert result.returncode == 0, result.stderr
    options = json.loads(result.stdout[result.stdout.index("{"):])
    assert options["exact_resume"] is exact and ("Fine-tuning" in result.stdout) is not exact
    if exact:
        assert options["dataset_args"] == saved["dataset_args"] and options["total_kimg"] == 50
    else:
        assert options["dataset_args"]["path"] == other and options["dataset_args"]["mirror_augment"]
        assert options["ada_kimg"] == 100 and options["ema_rampup"] is None and options["G_args"]["fmap_max"] == 16


def test_fine_tuning_needs_a_matching_resolution(image_folder, tmp_path, small_pkl):
    result = run_cli(["--data", image_folder, "--resume", small_pkl, "--kimg", "0.008", "--result-dir",
                      str(tmp_path)] + TINY)
    assert result.returncode == 1 and "32x32" in result.stderr and "Traceback" not in result.stderr


def test_fine_tuning_from_a_pickle_with_frozen_d_blocks(tmp_path, small_pkl):
    folder = tmp_path / "faces32"
    folder.mkdir()
    rnd = np.random.RandomState(1)
    for i in range(8):
        PIL.Image.fromarray(rnd.randint(0, 256, size=(32, 32, 3), dtype=np.uint8), "RGB").save(folder / f"{i}.png")
    result = run_cli(["--data", str(folder), "--resume", small_pkl, "--freezed", "1", "--kimg", "0.016", "--tick",
                      "0.016", "--aug", "ada", "--batch", "8", "--batch-gpu", "4", "--workers", "0", "--result-dir",
                      str(tmp_path / "runs")])
    assert result.returncode == 0, result.stderr
    tuned, = glob.glob(str(tmp_path / "runs" / "*" / "network-snapshot-000000.pkl"))
    (G0, D0, _), (G1, D1, _) = load_params(small_pkl), load_params(tuned)
    assert G0.keys() == G1.keys() and D0.keys() == D1.keys()  # the pickle's architecture, not the config's
    for name in D0:
        frozen = name.startswith("32x32/")
        assert np.array_equal(D0[name], D1[name]) == frozen, name
    # Fine-tuned, not re-initialised: two Adam steps move a weight by at most about 2 x lr.
    assert max(np.abs(G0[name] - G1[name]).max() for name in G0 if name.endswith("weight")) < 0.02


# ----------------------------------------------------------------------------------------------------------------
# Progressive growing (configs a-d).

def test_training_schedule_against_hand_computed_values():
    # The original config a-d schedule at 1024x1024 (log2 10): lod 7 at 8x8, 600 kimg per level and per fade.
    sched_args = dict(lod_initial_resolution=8, G_lrate_base=0.001, D_lrate_base=0.001,
                      G_lrate_dict={128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003},
                      D_lrate_dict={"128": 0.0015, "256": 0.002, "512": 0.003, "1024": 0.003},  # as from JSON
                      minibatch_size_base=32, minibatch_size_dict={8: 256, 16: 128, 32: 64, 64: 32},
                      minibatch_gpu_base=4, minibatch_gpu_dict={8: 32, 16: 16, 32: 8, 64: 4})
    expected = [  # kimg: lod, resolution, minibatch, minibatch_gpu, lrate
        (0, 7.0, 8, 256, 32, 0.001), (599, 7.0, 8, 256, 32, 0.001), (900, 6.5, 16, 128, 16, 0.001),
        (1200, 6.0, 16, 128, 16, 0.001), (2100, 5.5, 32, 64, 8, 0.001), (3000, 5.0, 32, 64, 8, 0.001),
        (3300, 4.5, 64, 32, 4, 0.001), (4800, 3.0, 128, 32, 4, 0.0015), (6000, 2.0, 256, 32, 4, 0.002),
        (7500, 1.0, 512, 32, 4, 0.003), (8100, 0.5, 1024, 32, 4, 0.003), (8400, 0.0, 1024, 32, 4, 0.003),
        (25000, 0.0, 1024, 32, 4, 0.003)]
    for kimg, lod, res, mb, mb_gpu, lrate in expected:
        s = tl.training_schedule(kimg * 1000, 10, **sched_args)
        assert (s.lod, s.resolution, s.minibatch_size, s.minibatch_gpu) == (lod, res, mb, mb_gpu), kimg
        assert s.G_lrate == s.D_lrate == lrate, kimg
    s = tl.training_schedule(1500, 4, lod_initial_resolution=8, lod_training_kimg=1, lod_transition_kimg=2)
    assert s.lod == pytest.approx(1 - 0.5 / 2) and s.resolution == 16  # fading 16x16 in
    s = tl.training_schedule(10_000, 4)  # no growing: lod 0, base values
    assert (s.lod, s.resolution, s.minibatch_size, s.G_lrate) == (0.0, 16, 32, 0.002)


def test_process_reals_fades_between_levels():
    x = torch.randn(2, 3, 8, 8)
    assert tl.process_reals(x, 0.0) is x
    coarse = F.avg_pool2d(x, 2).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    coarser = F.avg_pool2d(x, 4).repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)
    torch.testing.assert_close(tl.process_reals(x, 1.0), coarse)
    torch.testing.assert_close(tl.process_reals(x, 0.25), x + (coarse - x) * 0.25)
    torch.testing.assert_close(tl.process_reals(x, 1.5), coarse + (coarser - coarse) * 0.5)


def lod_of(net):
    return {name: float(var.eval()) for name, var in net.vars.items() if name.split("/")[-1] == "lod"}


@pytest.mark.parametrize("config", ["config-a", "config-d"])
def test_progressive_run_grows_and_resumes_exactly(image_folder, tmp_path, config):
    """16x16 from 8x8 with 16 kimg... scaled down to 16 images per level and per fade (2 steps of 8): lod 1, 1,
    0.5, 0, then 0 (steps at 0, 8, 16, 24, 32... images). A run stopped at 32 images (last step at lod 0.5) and
    resumed with --resume latest ends exactly as the uninterrupted one."""
    common = ["--data", image_folder, "--config", config, "--lod-kimg", "0.016", "--tick", "0.016", "--snap", "1",
              "--cbase", "128", "--cmax", "16", "--map", "2", "--batch", "8", "--batch-gpu", "4", "--workers", "0"]
    whole = run_cli(common + ["--kimg", "0.048", "--result-dir", str(tmp_path / "whole")])
    assert whole.returncode == 0, whole.stderr
    run_dir, = glob.glob(str(tmp_path / "whole" / "*"))
    stats = [json.loads(line) for line in open(os.path.join(run_dir, "stats.jsonl"))]
    assert [s["Progress/lod"] for s in stats] == [1.0, 0.5, 0.0]  # each tick's last step
    split = run_cli(common + ["--kimg", "0.032", "--result-dir", str(tmp_path / "split")])
    assert split.returncode == 0, split.stderr
    first, = glob.glob(str(tmp_path / "split" / "00000-*" / "network-snapshot-000000.pkl"))
    with open(first, "rb") as f:
        G, D, Gs = load_network_pkl(f)
    assert set(lod_of(Gs).values()) == {0.5} and set(lod_of(D).values()) == {0.5}
    assert len(lod_of(Gs)) == 2  # G's own and its synthesis network's
    resumed = run_cli(["--resume", "latest", "--kimg", "0.048", "--result-dir", str(tmp_path / "split")])
    assert resumed.returncode == 0, resumed.stderr
    a, = glob.glob(os.path.join(run_dir, "network-snapshot-000000.pkl"))
    b, = glob.glob(str(tmp_path / "split" / "00001-*" / "network-snapshot-000000.pkl"))
    for net_a, net_b in zip(load_params(a), load_params(b)):
        for name in net_a:
            np.testing.assert_array_equal(net_a[name], net_b[name], err_msg=name)
    with open(a, "rb") as f:
        G, D, Gs = load_network_pkl(f)
    assert set(lod_of(Gs).values()) == {0.0} and set(lod_of(D).values()) == {0.0}

    # The trained Gs at a fractional lod blends the two adjacent levels; at lod 1 it is a nearest-upsampled 8x8.
    z = torch.from_numpy(np.random.RandomState(0).randn(4, Gs.input_shape[1]).astype(np.float32))
    images = {}
    for lod in (0.0, 0.25, 1.0):
        tl.set_lod(Gs, lod)
        with torch.no_grad():
            images[lod] = Gs.module(z, None, randomize_noise=False)
    assert images[1.0].shape == (4, 3, 16, 16)
    torch.testing.assert_close(images[1.0], tl.process_reals(images[1.0], 1.0))
    assert not torch.allclose(images[0.0], images[1.0])
    torch.testing.assert_close(images[0.25], images[0.0] + (images[1.0] - images[0.0]) * 0.25)
    # D at lod 1 sees only the 8x8 averages of its input; at lod 0 the details too.
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        tl.set_lod(D, 1.0)
        torch.testing.assert_close(D.module(x), D.module(tl.process_reals(x, 1.0)))
        tl.set_lod(D, 0.0)
        assert not torch.allclose(D.module(x), D.module(tl.process_reals(x, 1.0)))


def test_progressive_minibatch_and_non_lazy_regularisation(image_folder, tmp_path):
    """Config-b's networks and regularisation in-process, with per-resolution minibatches: 8 at 8x8, 4 at 16x16
    (the loader follows), R1 inside every D step (one Adam step per training step), Adam reset when the level of
    detail starts or ends a fade."""
    sched_args = dict(lod_initial_resolution=8, lod_training_kimg=0.016, lod_transition_kimg=0.016,
                      minibatch_size_base=4, minibatch_size_dict={8: 8}, minibatch_gpu_base=2,
                      minibatch_gpu_dict={"8": 4}, G_lrate_base=0.001, D_lrate_base=0.001)
    nets = dict(fmap_base=64, fmap_max=16)
    tl.training_loop(str(tmp_path), dict(path=image_folder),
                     G_args=dict(nets, synthesis_func="G_synthesis_stylegan_revised", mapping_layers=2),
                     D_args=dict(nets, func_name="training.networks_stylegan2.D_stylegan", mbstd_group_size=2),
                     loss_args=dict(pl_weight=0.0), sched_args=sched_args, lazy_regularization=False,
                     total_kimg=0.036, kimg_per_tick=0.001, image_snapshot_ticks=0, network_snapshot_ticks=100,
                     num_workers=0, device="cpu")
    stats = [json.loads(line) for line in open(tmp_path / "stats.jsonl")]
    assert [s["Progress/minibatch"] for s in stats] == [8, 8, 8, 4, 4, 4]
    assert [s["Progress/lod"] for s in stats] == [1.0, 1.0, 1.0, 0.5, 0.25, 0.0]
    assert all(s["Loss/r1_penalty"] > 0 for s in stats)  # every step
    state = tl.load_state(glob.glob(str(tmp_path / "network-snapshot-*.pt"))[0])
    assert state["progress"]["cur_nimg"] == 36
    # Non-lazy: the R1 gradient goes into the step itself; the last step (lod 0) started afresh.
    assert int(state["D_opt"]["state"][0]["step"]) == int(state["G_opt"]["state"][0]["step"]) == 1
