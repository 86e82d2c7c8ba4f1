"""run_generator.py: the original's images and file layout, determinism, and one clear line for bad input."""

import os
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest

import dnnlib
import dnnlib.tflib as tflib
from dnnlib.tflib.network_pickle import load_network_pkl
from conftest import REPO_ROOT


def run_cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, "run_generator.py"), *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def read_images(run_dir):
    return {name: np.array(PIL.Image.open(os.path.join(run_dir, name)))
            for name in sorted(os.listdir(run_dir)) if name.endswith(".png")}


def fresh_networks(path):
    """Networks straight from the file (load_networks caches, and the original flow below changes noise vars)."""
    with open(path, "rb") as f:
        return load_network_pkl(f)


def only_subdir(path):
    (name,) = os.listdir(path)
    return os.path.join(path, name)


def test_generate_images_matches_the_original_flow_at_any_batch_size(tmp_path, small_pkl):
    seeds = [0, 1, 2, 7, 42, 66, 230, 389, 1518, 6600]
    runs = {}
    for batch in (1, 8):
        result = run_cli("generate-images", f"--network={small_pkl}", "--seeds=0-2,7,42,66,230,389,1518,6600",
                         "--truncation-psi=0.7", f"--batch-size={batch}", f"--result-dir={tmp_path / str(batch)}")
        assert result.returncode == 0, result.stderr
        run_dir = only_subdir(tmp_path / str(batch))
        assert os.path.basename(run_dir) == "00000-generate-images"
        assert run_dir in result.stdout.strip().splitlines()[-1]
        assert os.path.isfile(os.path.join(run_dir, "log.txt"))
        runs[batch] = read_images(run_dir)
    assert sorted(runs[1]) == sorted("seed%04d.png" % seed for seed in seeds)
    for name in runs[1]:  # separate processes, batch sizes 1 and 8
        assert np.array_equal(runs[1][name], runs[8][name]), name

    # The original run_generator.py: z then every noise variable from the seed's RandomState, set with
    # tflib.set_vars, then Gs.run with randomize_noise=False.
    _G, _D, Gs = fresh_networks(small_pkl)
    noise_vars = [var for name, var in Gs.components.synthesis.vars.items() if name.startswith("noise")]
    Gs_kwargs = dnnlib.EasyDict(output_transform=dict(func=tflib.convert_images_to_uint8, nchw_to_nhwc=True),
                                randomize_noise=False, truncation_psi=0.7)
    for seed in seeds:
        rnd = np.random.RandomState(seed)
        z = rnd.randn(1, *Gs.input_shape[1:])
        tflib.set_vars({var: rnd.randn(*var.shape.as_list()) for var in noise_vars})
        images = Gs.run(z, None, **Gs_kwargs)
        assert np.array_equal(images[0], runs[1]["seed%04d.png" % seed]), seed


def test_run_dirs_are_numbered_like_the_original(tmp_path, small_pkl):
    os.makedirs(tmp_path / "00007-old")
    for _ in range(2):
        assert run_cli("generate-images", f"--network={small_pkl}", "--seeds=1",
                       f"--result-dir={tmp_path}").returncode == 0
    assert sorted(os.listdir(tmp_path)) == ["00007-old", "00008-generate-images", "00009-generate-images"]


def test_noise_modes(tmp_path, small_pkl):
    images = {}
    for mode in ("seed", "const", "none", "random"):
        result = run_cli("generate-images", f"--network={small_pkl}", "--seeds=5", f"--noise-mode={mode}",
                         f"--result-dir={tmp_path / mode}")
        assert result.returncode == 0, result.stderr
        images[mode] = read_images(only_subdir(tmp_path / mode))["seed0005.png"]
    for a, b in [("seed", "const"), ("seed", "none"), ("const", "none"), ("random", "const")]:
        assert not np.array_equal(images[a], images[b]), (a, b)


def test_style_mixing_example(tmp_path, small_pkl):
    result = run_cli("style-mixing-example", f"--network={small_pkl}", "--row-seeds=85,100,75",
                     "--col-seeds=55,821", "--col-styles=0-3", "--truncation-psi=1.0", f"--result-dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    run_dir = only_subdir(tmp_path)
    assert os.path.basename(run_dir) == "00000-style-mixing-example"
    images = read_images(run_dir)
    rows, cols = [85, 100, 75], [55, 821]
    expected = {f"{r}-{c}.png" for r in rows for c in cols} | {f"{s}-{s}.png" for s in rows + cols} | {"grid.png"}
    assert set(images) == expected
    grid = images["grid.png"]
    assert grid.shape == (32 * 4, 32 * 3, 3)
    assert not grid[:32, :32].any()  # black corner
    for ri, r in enumerate([None] + rows):
        for ci, c in enumerate([None] + cols):
            if r is None and c is None:
                continue
            key = f"{c}-{c}" if r is None else f"{r}-{r}" if c is None else f"{r}-{c}"
            assert np.array_equal(grid[ri * 32:(ri + 1) * 32, ci * 32:(ci + 1) * 32], images[key + ".png"]), key

    # A mixed image is the row's W with the column's styles at col_styles, as the original builds it.
    _G, _D, Gs = fresh_networks(small_pkl)
    w = Gs.components.mapping.run(np.stack([np.random.RandomState(s).randn(32) for s in (100, 821)]), None)
    w[0, 0:4] = w[1, 0:4]
    mixed = Gs.components.synthesis.run(w[:1], randomize_noise=False, output_transform=dict(
        func=tflib.convert_images_to_uint8, nchw_to_nhwc=True))
    assert np.array_equal(mixed[0], images["100-821.png"])


def test_conditional_network(tmp_path, conditional_pkl):
    missing = run_cli("generate-images", f"--network={conditional_pkl}", "--seeds=1", f"--result-dir={tmp_path}")
    assert missing.returncode == 1 and "conditional" in missing.stderr and "--class" in missing.stderr
    images = []
    for class_idx in (0, 3):
        result = run_cli("generate-images", f"--network={conditional_pkl}", "--seeds=1", f"--class={class_idx}",
                         f"--result-dir={tmp_path / str(class_idx)}")
        assert result.returncode == 0, result.stderr
        images.append(read_images(only_subdir(tmp_path / str(class_idx)))["seed0001.png"])
    assert not np.array_equal(images[0], images[1])
    out_of_range = run_cli("generate-images", f"--network={conditional_pkl}", "--seeds=1", "--class=4",
                           f"--result-dir={tmp_path}")
    assert out_of_range.returncode == 1 and "out of range" in out_of_range.stderr


def _assert_one_clear_line(result, *words):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("error:")
             or "error:" in line]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], result.stderr


@pytest.mark.parametrize("case", ["missing", "corrupt", "not a network", "directory"])
def test_bad_network_files(tmp_path, case):
    path = tmp_path / "net.pkl"
    if case == "corrupt":
        path.write_bytes(b"\x80\x04garbage" * 100)
    elif case == "not a network":
        import pickle
        path.write_bytes(pickle.dumps([1, 2, 3]))
    elif case == "directory":
        path.mkdir()
    result = run_cli("generate-images", f"--network={path}", "--seeds=1", f"--result-dir={tmp_path / 'out'}")
    _assert_one_clear_line(result, "net.pkl")


@pytest.mark.parametrize("seeds", ["a-b", "5-3", "1,,2", "-1", "99999999999"])
def test_bad_seed_lists(tmp_path, small_pkl, seeds):
    result = run_cli("generate-images", f"--network={small_pkl}", f"--seeds={seeds}", f"--result-dir={tmp_path}")
    _assert_one_clear_line(result, "--seeds")
    assert not os.listdir(tmp_path)


def test_unwritable_result_dir(tmp_path, small_pkl):
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    result = run_cli("generate-images", f"--network={small_pkl}", "--seeds=1", f"--result-dir={blocker}")
    _assert_one_clear_line(result, "result directory")
    assert blocker.read_text() == "in the way"


def test_unreachable_url(tmp_path):
    result = run_cli("generate-images", "--network=http://127.0.0.1:9/net.pkl", "--seeds=1",
                     f"--result-dir={tmp_path}", f"--cache-dir={tmp_path / 'cache'}")
    _assert_one_clear_line(result, "cannot download")


def test_bad_col_styles(tmp_path, small_pkl):
    result = run_cli("style-mixing-example", f"--network={small_pkl}", "--row-seeds=1", "--col-seeds=2",
                     "--col-styles=0-20", f"--result-dir={tmp_path}")
    _assert_one_clear_line(result, "--col-styles")


def test_the_shipped_network_is_the_default(tmp_path):
    """README's first command: no --network, the emoji network under networks/ (a real training run's snapshot)."""
    import pretrained_networks
    assert os.path.isfile(pretrained_networks.DEFAULT_NETWORK)
    result = run_cli("generate-images", "--seeds=0-3", "--truncation-psi=0.7", "--result-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    images = read_images(only_subdir(tmp_path))
    assert sorted(images) == [f"seed{seed:04d}.png" for seed in range(4)]
    for image in images.values():
        assert image.shape == (64, 64, 3) and image.std() > 5  # an image, not a flat colour
    assert not np.array_equal(images["seed0000.png"], images["seed0001.png"])
