"""run_generator.py: the original's images and file layout, determinism, and one clear line for bad input."""

import os
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest

import dnnlib
import dnnlib.ops
import dnnlib.tflib as tflib
from dnnlib.tflib.network_pickle import load_network_pkl
from conftest import REPO_ROOT


def run_cli(*args, cwd=None, **env_vars):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, **env_vars)
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


# ----------------------------------------------------------------------------------------------------------------
# Latents and videos.

def w_of_seeds(pkl, seeds, psi):
    _G, _D, Gs = fresh_networks(pkl)
    z = np.stack([np.random.RandomState(seed).randn(*Gs.input_shape[1:]) for seed in seeds])
    w = Gs.components.mapping.run(z, None)
    return Gs.get_var("dlatent_avg") + (w - Gs.get_var("dlatent_avg")) * psi


def test_generate_images_renders_saved_latents(tmp_path, small_pkl):
    from training import projector
    w = w_of_seeds(small_pkl, [3, 4], 0.5)
    latent_dir = tmp_path / "latents"
    latent_dir.mkdir()
    projector.save_latents(str(latent_dir / "a"), w[0])      # .npy and no noise: the network's stored noise
    np.save(latent_dir / "pair.npy", w)                      # two latents in one file
    result = run_cli("generate-images", f"--network={small_pkl}", f"--latents={latent_dir / 'a.npy'}",
                     "--result-dir", str(tmp_path / "one"))
    assert result.returncode == 0, result.stderr
    reference = run_cli("generate-images", f"--network={small_pkl}", "--seeds=3,4", "--noise-mode=const",
                        "--truncation-psi=0.5", "--result-dir", str(tmp_path / "ref"))
    assert reference.returncode == 0, reference.stderr
    ref = read_images(only_subdir(tmp_path / "ref"))
    assert np.abs(read_images(only_subdir(tmp_path / "one"))["a.png"].astype(int) -
                  ref["seed0003.png"]).max() <= 1
    result = run_cli("generate-images", f"--network={small_pkl}", f"--latents={latent_dir}",
                     "--result-dir", str(tmp_path / "dir"))
    assert result.returncode == 0, result.stderr
    images = read_images(only_subdir(tmp_path / "dir"))
    assert sorted(images) == ["a.png", "pair-0000.png", "pair-0001.png"]
    assert np.abs(images["pair-0001.png"].astype(int) - ref["seed0004.png"]).max() <= 1


def test_saved_noise_maps_are_used(tmp_path, small_pkl):
    from training import projector
    _G, _D, Gs = fresh_networks(small_pkl)
    w = w_of_seeds(small_pkl, [5], 1.0)
    noises = [np.random.RandomState(i).randn(*shape).astype(np.float32)
              for i, shape in enumerate(Gs.components.synthesis.module.noise_shapes())]
    projector.save_latents(str(tmp_path / "b"), w[0], noises)
    result = run_cli("generate-images", f"--network={small_pkl}", f"--latents={tmp_path / 'b.npz'}",
                     "--result-dir", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    import torch
    expected = Gs.components.synthesis.run(w, noise_inputs=[torch.as_tensor(v) for v in noises],
                                           output_transform=dict(func=tflib.convert_images_to_uint8,
                                                                 nchw_to_nhwc=True))[0]
    assert np.abs(read_images(only_subdir(tmp_path / "out"))["b.png"].astype(int) - expected).max() <= 1


def test_bad_latents(tmp_path, small_pkl):
    np.save(tmp_path / "w.npy", np.zeros([7, 5]))
    result = run_cli("generate-images", f"--network={small_pkl}", f"--latents={tmp_path / 'w.npy'}",
                     "--result-dir", str(tmp_path / "out"))
    _assert_one_clear_line(result, "w.npy", "do not fit")
    result = run_cli("generate-images", f"--network={small_pkl}", f"--latents={tmp_path / 'missing'}",
                     "--result-dir", str(tmp_path / "out2"))
    _assert_one_clear_line(result, "--latents")
    assert not os.path.exists(tmp_path / "out2")


def test_interpolation_video_passes_through_the_seeds(tmp_path, small_pkl):
    result = run_cli("interpolate", f"--network={small_pkl}", "--seeds=3,4", "--space=w", "--kind=linear",
                     "--frames=4", "--save-frames", "--truncation-psi=0.5", "--result-dir", str(tmp_path / "i"))
    assert result.returncode == 0, result.stderr
    run_dir = only_subdir(tmp_path / "i")
    frames = read_images(run_dir)
    assert sorted(frames) == [f"frame{i:05d}.png" for i in range(5)]
    reference = run_cli("generate-images", f"--network={small_pkl}", "--seeds=3,4", "--noise-mode=const",
                        "--truncation-psi=0.5", "--result-dir", str(tmp_path / "ref"))
    assert reference.returncode == 0, reference.stderr
    ref = read_images(only_subdir(tmp_path / "ref"))
    assert np.abs(frames["frame00000.png"].astype(int) - ref["seed0003.png"]).max() <= 1
    assert np.abs(frames["frame00004.png"].astype(int) - ref["seed0004.png"]).max() <= 1
    video = [name for name in os.listdir(run_dir) if name.startswith("interpolation.")]
    assert video in (["interpolation.mp4"], ["interpolation.gif"])
    imageio = pytest.importorskip("imageio.v3")
    pytest.importorskip("imageio_ffmpeg")
    decoded = imageio.imread(os.path.join(run_dir, "interpolation.mp4"))
    assert decoded.shape == (5, 32, 32, 3)  # H.264 with 4:2:0 chroma is lossy, so only the frames are checked
    assert not np.array_equal(decoded[0], decoded[-1])


def test_loops_and_traversal(tmp_path, small_pkl):
    result = run_cli("interpolate", f"--network={small_pkl}", "--seeds=9", "--kind=circularloop", "--frames=6",
                     "--save-frames", "--result-dir", str(tmp_path / "loop"))
    assert result.returncode == 0, result.stderr
    assert len([n for n in os.listdir(only_subdir(tmp_path / "loop")) if n.startswith("frame")]) == 6
    result = run_cli("truncation-traversal", f"--network={small_pkl}", "--seed=9", "--start=0", "--stop=1",
                     "--frames=3", "--save-frames", "--result-dir", str(tmp_path / "t"))
    assert result.returncode == 0, result.stderr
    frames = read_images(only_subdir(tmp_path / "t"))
    other = run_cli("truncation-traversal", f"--network={small_pkl}", "--seed=10", "--start=0", "--stop=1",
                    "--frames=3", "--save-frames", "--result-dir", str(tmp_path / "t2"))
    assert other.returncode == 0, other.stderr
    other_frames = read_images(only_subdir(tmp_path / "t2"))
    assert np.array_equal(frames["frame00000.png"], other_frames["frame00000.png"])  # psi 0: the average image
    assert not np.array_equal(frames["frame00002.png"], other_frames["frame00002.png"])


@pytest.mark.parametrize("args, words", [
    (["--seeds=1", "--kind=noiseloop", "--space=w"], ["--space=z"]),
    (["--seeds=1", "--kind=linear"], ["two keyframes"]),
])
def test_bad_interpolations(tmp_path, small_pkl, args, words):
    result = run_cli("interpolate", f"--network={small_pkl}", *args, "--result-dir", str(tmp_path))
    _assert_one_clear_line(result, *words)


def test_precision_and_reference_path_flags(tmp_path, small_pkl):
    """--reference-path computes as the original (same images within 1 level); --precision bf16 runs where the CPU
    has native bfloat16 (images near fp32's) and is refused in one line where it has not; tf32 and fp16 are
    refused in one line without a GPU. --compile gives the default path's images within 1 level, and without a C++
    compiler is refused in one line."""
    import torch
    runs = {}
    compile_runs = [("compile", ["--compile"])] if dnnlib.ops.compile_problem(torch.device("cpu")) is None else []
    for name, flags in [("default", []), ("reference", ["--reference-path"]), ("bf16", ["--precision=bf16"])] + \
            compile_runs:
        result = run_cli("generate-images", f"--network={small_pkl}", "--seeds=0-3", *flags,
                         f"--result-dir={tmp_path / name}")
        if name == "bf16" and not dnnlib.ops.bf16_supported(torch.device("cpu")):
            assert result.returncode == 1 and "no native bfloat16" in result.stderr
            assert "Traceback" not in result.stderr
            continue
        assert result.returncode == 0, result.stderr
        runs[name] = read_images(only_subdir(tmp_path / name))
    if not torch.cuda.is_available():
        for name in ("tf32", "fp16"):
            result = run_cli("generate-images", f"--network={small_pkl}", "--seeds=0", f"--precision={name}",
                             f"--result-dir={tmp_path / name}")
            assert result.returncode == 1 and "needs a CUDA GPU" in result.stderr
            assert "Traceback" not in result.stderr and not (tmp_path / name).exists()
    result = run_cli("generate-images", f"--network={small_pkl}", "--seeds=0", "--compile",
                     f"--result-dir={tmp_path / 'nocxx'}", CXX="no-such-compiler")
    assert result.returncode == 1 and "--compile: it needs a C++ compiler" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "nocxx").exists()
    for image in runs["default"]:
        for other in ["reference"] + [name for name, _ in compile_runs]:
            diff = np.abs(runs["default"][image].astype(int) - runs[other][image].astype(int))
            assert diff.max() <= 1, (other, image)
        if "bf16" in runs:
            diff = np.abs(runs["default"][image].astype(int) - runs["bf16"][image].astype(int))
            assert 0 < diff.max() <= 64 and diff.mean() < 4, image  # bfloat16 rounds, but the image is the same
