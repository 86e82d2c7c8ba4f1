"""run_editor.py: directions found, learned and applied through the command line; blended networks that load."""

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT
from test_run_generator import _assert_one_clear_line, fresh_networks, only_subdir, read_images


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, "run_editor.py"), *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_find_and_apply_sefa_directions(tmp_path, small_pkl):
    result = run_cli("find-directions", f"--network={small_pkl}", "--method=sefa", "--layers=0-3",
                     "--num-components=5", f"--result-dir={tmp_path / 'f'}")
    assert result.returncode == 0, result.stderr
    found = only_subdir(tmp_path / "f")
    with np.load(os.path.join(found, "sefa.npz")) as data:
        assert data["components"].shape == (5, 32) and list(data["layers"]) == [0, 1, 2, 3]
    assert read_images(found)["sefa-preview.png"].shape == (5 * 32, 5 * 32, 3)

    result = run_cli("apply-direction", f"--network={small_pkl}", "--seeds=1,2",
                     f"--direction={os.path.join(found, 'sefa.npz')}", "--component=0", "--coeffs=-2,0,2",
                     "--layers=0-3", f"--result-dir={tmp_path / 'a'}")
    assert result.returncode == 0, result.stderr
    applied = only_subdir(tmp_path / "a")
    grid = read_images(applied)["grid.png"]
    assert grid.shape == (2 * 32, 3 * 32, 3)
    edited = np.load(os.path.join(applied, "seed0001-edited.npy"))
    assert edited.shape == (3, 8, 32)
    np.testing.assert_array_equal(edited[:, 4:], np.repeat(edited[1:2, 4:], 3, axis=0))  # layers 4-7 untouched
    assert not np.allclose(edited[0, :4], edited[1, :4])


def test_train_direction_from_seeds_and_a_csv(tmp_path, small_pkl):
    _G, _D, Gs = fresh_networks(small_pkl)
    seeds = list(range(300))
    z = np.stack([np.random.RandomState(seed).randn(32) for seed in seeds])
    w = Gs.components.mapping.run(z, None)[:, 0]
    hidden = np.random.RandomState(9).randn(32)
    labels = (w - w.mean(0)) @ hidden > 0
    rows = ["seed,smiling"] + [f"{seed},{int(label)}" for seed, label in zip(seeds, labels)]
    (tmp_path / "labels.csv").write_text("\n".join(rows[:1] + rows[1:][::-1]))  # a header, rows in any order
    result = run_cli("train-direction", f"--network={small_pkl}", "--seeds=0-299", f"--labels={tmp_path / 'labels.csv'}",
                     "--truncation-psi=1", "--name=smile", f"--result-dir={tmp_path / 't'}")
    assert result.returncode == 0, result.stderr
    direction = np.load(os.path.join(only_subdir(tmp_path / "t"), "smile.npy"))
    assert direction.shape == (32,)
    # Moving along the direction raises the hidden score: the boundary found the attribute.
    assert direction @ hidden > 0
    assert "Validation accuracy" in result.stdout


def test_blend_networks_writes_a_loadable_pickle(tmp_path, small_pkl):
    result = run_cli("blend-networks", f"--base={small_pkl}", f"--fine={small_pkl}", "--resolution=16",
                     f"--output={tmp_path / 'blend.pkl'}", "--seeds=0,1", f"--result-dir={tmp_path / 'b'}")
    assert result.returncode == 0, result.stderr
    _G, _D, Gs = fresh_networks(str(tmp_path / "blend.pkl"))
    _G, _D, base = fresh_networks(small_pkl)
    for name in Gs.vars:  # blending a network with itself changes nothing
        np.testing.assert_allclose(Gs.get_var(name), base.get_var(name), rtol=1e-6)
    assert read_images(only_subdir(tmp_path / "b"))["blend-preview.png"].shape == (2 * 32, 3 * 32, 3)


@pytest.mark.parametrize("args, words", [
    (["apply-direction", "--seeds=1", "--direction=DIR", "--layers=0-8"], ["layer range", "0-7"]),
    (["apply-direction", "--seeds=1", "--direction=BAD"], ["does not fit"]),
    (["apply-direction", "--seeds=1", "--direction=SET"], ["--component"]),
    (["train-direction", "--seeds=0-3", "--labels=SHORT"], ["labels for 4 latents"]),
])
def test_bad_input_is_one_clear_line(tmp_path, small_pkl, args, words):
    np.save(tmp_path / "dir.npy", np.ones(32))
    np.save(tmp_path / "bad.npy", np.ones([3, 32]))
    np.savez(tmp_path / "set.npz", components=np.eye(32)[:4])
    (tmp_path / "short.csv").write_text("1\n0\n")
    files = dict(DIR="dir.npy", BAD="bad.npy", SET="set.npz", SHORT="short.csv")
    args = [arg.split("=")[0] + "=" + str(tmp_path / files[arg.split("=")[1]]) if arg.split("=")[-1] in files
            else arg for arg in args]
    result = run_cli(*args, f"--network={small_pkl}", f"--result-dir={tmp_path / 'out'}")
    _assert_one_clear_line(result, *words)


def test_text_edit_with_a_local_clip(tmp_path, small_pkl):
    """Offline: a tiny CLIP saved as an open_clip checkpoint and a tiny BPE vocabulary, both passed as files."""
    import torch
    from test_editing import tiny_clip
    merges = ["#version: 0.2", "s m", "i l", "sm il", "smil e</w>"]
    (tmp_path / "vocab.txt").write_text("\n".join(merges) + "\n")
    vocab_size = 2 * 256 + len(merges) - 1 + 2  # bytes, bytes</w>, merges, start and end tokens
    torch.save(tiny_clip(vocab_size).state_dict(), tmp_path / "open_clip_pytorch_model.bin")
    result = run_cli("text-edit", f"--network={small_pkl}", "--seeds=4", "--prompt=smile", "--num-steps=8",
                     f"--clip={tmp_path / 'open_clip_pytorch_model.bin'}", f"--clip-vocab={tmp_path / 'vocab.txt'}",
                     f"--result-dir={tmp_path / 'e'}")
    assert result.returncode == 0, result.stderr
    run_dir = only_subdir(tmp_path / "e")
    assert {"seed0004-edited.png", "seed0004-strip.png", "seed0004-edited.npy"} <= set(os.listdir(run_dir))
    assert read_images(run_dir)["seed0004-strip.png"].shape == (32, 64, 3)
    assert np.load(os.path.join(run_dir, "seed0004-edited.npy")).shape == (8, 32)
    assert "CLIP loss" in result.stdout


def test_text_edit_without_clip_weights_is_one_clear_line(tmp_path, small_pkl):
    result = run_cli("text-edit", f"--network={small_pkl}", "--seeds=4", "--prompt=smile",
                     f"--clip={tmp_path / 'ViT-B-32.pt'}", f"--result-dir={tmp_path / 'e'}")
    _assert_one_clear_line(result, "CLIP", "--clip")
