"""run_projector.py: the original subcommands and file names, any image files, latents that render back, videos,
and one clear line for bad input. Small networks and a random-weight LPIPS; a few steps each."""

import os
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest

from conftest import REPO_ROOT
from test_run_generator import _assert_one_clear_line, only_subdir, read_images, run_cli as run_generator


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, "run_projector.py"), *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_project_generated_images_writes_the_original_files(tmp_path, small_pkl, lpips_pkl):
    result = run_cli("project-generated-images", f"--network={small_pkl}", f"--vgg16={lpips_pkl}", "--seeds=1",
                     "--num-steps=10", "--num-snapshots=2", f"--result-dir={tmp_path / 'p'}")
    assert result.returncode == 0, result.stderr
    run_dir = only_subdir(tmp_path / "p")
    assert os.path.basename(run_dir) == "00000-project-generated-images"
    assert sorted(os.listdir(run_dir)) == ["log.txt", "seed0001-projected.png", "seed0001-step0005.png",
                                           "seed0001-step0010.png", "seed0001-target.png", "seed0001.npy",
                                           "seed0001.npz"]
    # The target is the image generate-images makes for the seed at psi 1 (the seed's own noise).
    reference = run_generator("generate-images", f"--network={small_pkl}", "--seeds=1", "--truncation-psi=1.0",
                              f"--result-dir={tmp_path / 'g'}")
    assert reference.returncode == 0, reference.stderr
    target = read_images(run_dir)["seed0001-target.png"]
    assert np.abs(target.astype(int) - read_images(only_subdir(tmp_path / "g"))["seed0001.png"]).max() <= 1
    assert np.load(os.path.join(run_dir, "seed0001.npy")).shape == (8, 32)
    assert "Done: 1 projections in" in result.stdout


def save_rgb(path, size, seed, mode="RGB"):
    array = np.random.RandomState(seed).randint(0, 256, [size, size, 4], dtype=np.uint8)
    PIL.Image.fromarray(array, "RGBA").convert(mode).save(path)


def test_project_images_any_files_with_latents_and_videos(tmp_path, small_pkl, lpips_pkl):
    targets = tmp_path / "targets"
    targets.mkdir()
    save_rgb(targets / "photo.png", 48, 0)          # larger than the network: centre-cropped and resized
    save_rgb(targets / "gray.png", 32, 1, "L")      # one channel: converted to RGB
    save_rgb(targets / "alpha.png", 32, 2, "RGBA")  # transparency: composited on white
    (targets / "broken.png").write_bytes(b"\x89PNG not really")
    result = run_cli("project-images", f"--network={small_pkl}", f"--vgg16={lpips_pkl}", f"--target={targets}",
                     "--num-steps=6", "--num-snapshots=0", "--space=w+", "--save-video", "--batch-size=2",
                     f"--result-dir={tmp_path / 'p'}")
    assert result.returncode == 0, result.stderr
    assert "broken.png" in result.stdout and "skipped" in result.stdout
    run_dir = only_subdir(tmp_path / "p")
    files = sorted(os.listdir(run_dir))
    for name in ("alpha", "gray", "photo"):
        for suffix in ("-target.png", "-projected.png", ".npy", ".npz", "-proj.mp4"):
            assert name + suffix in files, files
    assert not [f for f in files if f.startswith("broken") or f.startswith(".")]
    images = read_images(run_dir)
    assert images["photo-target.png"].shape == (32, 32, 3)
    gray = images["gray-target.png"].astype(int)
    assert np.abs(gray[..., 0] - gray[..., 1]).max() <= 1  # still gray after conversion

    imageio = pytest.importorskip("imageio.v3")
    pytest.importorskip("imageio_ffmpeg")
    video = imageio.imread(os.path.join(run_dir, "photo-proj.mp4"))
    assert video.shape == (6, 32, 64, 3)  # one frame per step: target | projection

    # The saved latent and noise render back to the projection.
    rendered = run_generator("generate-images", f"--network={small_pkl}",
                             f"--latents={os.path.join(run_dir, 'photo.npz')}", f"--result-dir={tmp_path / 'r'}")
    assert rendered.returncode == 0, rendered.stderr
    again = read_images(only_subdir(tmp_path / "r"))["photo.png"]
    assert np.abs(again.astype(int) - images["photo-projected.png"]).max() <= 1


def test_results_do_not_depend_on_the_batch_size(tmp_path, small_pkl):
    targets = tmp_path / "targets"
    targets.mkdir()
    for i in range(3):
        save_rgb(targets / f"t{i}.png", 32, i)
    latents = {}
    for batch in (1, 3):
        result = run_cli("project-images", f"--network={small_pkl}", "--loss=mse", f"--target={targets}",
                         "--num-steps=5", f"--batch-size={batch}", f"--result-dir={tmp_path / str(batch)}")
        assert result.returncode == 0, result.stderr
        latents[batch] = np.load(os.path.join(only_subdir(tmp_path / str(batch)), "t2.npy"))
    # Equal up to float rounding: oneDNN reduces in another order for a batch of one (about 1e-6 relative per
    # convolution), which Adam's per-element normalisation amplifies over the steps. Targets leaking into each other
    # (shared noise, a batch-wide loss normalisation) would move the latents by orders of magnitude more.
    np.testing.assert_allclose(latents[1], latents[3], atol=1e-3)


def test_project_real_images(tmp_path, small_pkl, lpips_pkl):
    import dataset_tool
    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(2):
        save_rgb(images / f"{i}.png", 32, i)
    dataset_tool.main(["create_from_images", str(tmp_path / "data" / "tiny"), str(images), "--shuffle", "0"])
    result = run_cli("project-real-images", f"--network={small_pkl}", f"--vgg16={lpips_pkl}",
                     f"--data-dir={tmp_path / 'data'}", "--dataset=tiny", "--num-images=2", "--num-steps=4",
                     "--num-snapshots=1", f"--result-dir={tmp_path / 'p'}")
    assert result.returncode == 0, result.stderr
    run_dir = only_subdir(tmp_path / "p")
    got = read_images(run_dir)
    assert {"image0000-target.png", "image0000-step0004.png", "image0001-target.png"} <= set(got)
    assert np.array_equal(got["image0001-target.png"], np.asarray(PIL.Image.open(images / "1.png").convert("RGB")))


def test_project_real_images_refuses_a_dataset_of_another_resolution(tmp_path, small_pkl, lpips_pkl):
    import dataset_tool
    images = tmp_path / "imgs"
    images.mkdir()
    save_rgb(images / "0.png", 64, 0)
    dataset_tool.main(["create_from_images", str(tmp_path / "data" / "big"), str(images)])
    result = run_cli("project-real-images", f"--network={small_pkl}", f"--vgg16={lpips_pkl}",
                     f"--data-dir={tmp_path / 'data'}", "--dataset=big", f"--result-dir={tmp_path / 'p'}")
    _assert_one_clear_line(result, "project-images")


@pytest.mark.parametrize("case", ["missing target", "no readable image", "missing vgg16", "bad init"])
def test_bad_input_is_one_clear_line(tmp_path, small_pkl, case):
    target = tmp_path / "t.png"
    save_rgb(target, 32, 0)
    args = [f"--target={target}", "--num-steps=2"]
    words = []
    if case == "missing target":
        args[0], words = f"--target={tmp_path / 'nothing.png'}", ["--target", "nothing.png"]
    elif case == "no readable image":
        target.write_bytes(b"garbage")
        args += ["--loss=mse"]
        words = ["none of the target files"]
    elif case == "missing vgg16":
        args += [f"--vgg16={tmp_path / 'vgg16_zhang_perceptual.pkl'}"]
        words = ["vgg16_zhang_perceptual.pkl"]
    else:
        np.save(tmp_path / "init.npy", np.zeros([3, 7]))
        args += ["--loss=mse", f"--init={tmp_path / 'init.npy'}"]
        words = ["init.npy", "do not fit"]
    result = run_cli("project-images", f"--network={small_pkl}", *args, f"--result-dir={tmp_path / 'out'}")
    _assert_one_clear_line(result, *words)
    if case == "missing target":
        assert not os.path.exists(tmp_path / "out")


def test_precision_and_reference_path_flags(tmp_path, small_pkl):
    """--reference-path projects as the original computes (same latents up to float rounding); --precision bf16
    projects in bfloat16 where the CPU has it natively and is refused in one line, leaving no run dir, where not."""
    import torch
    import dnnlib.ops
    target = tmp_path / "t.png"
    save_rgb(target, 32, 0)
    latents = {}
    for name, flags in [("default", []), ("reference", ["--reference-path"]), ("bf16", ["--precision=bf16"])]:
        result = run_cli("project-images", f"--network={small_pkl}", "--loss=mse", f"--target={target}",
                         "--num-steps=3", *flags, f"--result-dir={tmp_path / name}")
        if name == "bf16" and not dnnlib.ops.bf16_supported(torch.device("cpu")):
            assert result.returncode == 1 and "no native bfloat16" in result.stderr
            assert "Traceback" not in result.stderr and not (tmp_path / name).exists()
            continue
        assert result.returncode == 0, result.stderr
        latents[name] = np.load(os.path.join(only_subdir(tmp_path / name), "t.npy"))
    np.testing.assert_allclose(latents["reference"], latents["default"], atol=1e-3)
    if "bf16" in latents:
        assert np.isfinite(latents["bf16"]).all() and np.abs(latents["bf16"] - latents["default"]).max() < 1
