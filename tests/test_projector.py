"""training/projector.py: the official schedule and defaults, recovery of known latents, batch independence,
latent files."""

import numpy as np
import pytest
import torch

import dnnlib
from dnnlib.tflib.network import Network
from training import projector
from conftest import SMALL_G_KWARGS, make_networks


@pytest.fixture(scope="module")
def plain_Gs():
    """The small network with its default initialisation: zero noise strengths, so images depend on W alone."""
    torch.manual_seed(0)
    return Network("Gs", func_name="training.networks_stylegan2.G_main", **SMALL_G_KWARGS)


def psnr(a, b, peak_to_peak=2.0):
    return 10 * np.log10(peak_to_peak ** 2 / np.mean((a - b) ** 2, axis=(1, 2, 3)))


def run_projection(proj, targets, init=None):
    proj.start(targets, init)
    while proj.get_cur_step() < proj.num_steps:
        proj.step()
    return proj.get_images()


def test_the_official_hyper_parameters_are_the_defaults():
    proj = projector.Projector()
    assert (proj.num_steps, proj.dlatent_avg_samples, proj.initial_learning_rate, proj.initial_noise_factor,
            proj.lr_rampdown_length, proj.lr_rampup_length, proj.noise_ramp_length,
            proj.regularize_noise_weight) == (1000, 10000, 0.1, 0.05, 0.25, 0.05, 0.75, 1e5)
    assert (proj.space, proj.loss) == ("w", "lpips")


def test_learning_rate_schedule():
    lr = projector.learning_rate_schedule
    assert lr(0.0) == 0.0                              # ramp-up starts from zero
    assert lr(0.025) == pytest.approx(0.05)            # halfway up the 5% ramp-up
    assert lr(0.05) == pytest.approx(0.1) and lr(0.5) == pytest.approx(0.1)
    assert lr(0.875) == pytest.approx(0.05)            # halfway down the cosine over the last 25%
    assert lr(1.0) == pytest.approx(0.0, abs=1e-12)


def test_noise_regularization_sums_autocorrelation_over_scales():
    ones = torch.ones([2, 1, 32, 32])
    # Constant maps correlate perfectly with their shifts: 2 terms of 1 at each of 32, 16, 8.
    assert torch.allclose(projector.noise_regularization([ones]), torch.full([2], 6.0))
    stripes = torch.ones([1, 1, 8, 8])
    stripes[..., 1::2] = -1  # anti-correlated horizontally, constant vertically
    assert projector.noise_regularization([stripes]).item() == pytest.approx(2.0)
    white = torch.randn([1, 1, 64, 64], generator=torch.Generator().manual_seed(0))
    assert projector.noise_regularization([white]).item() < 1e-2


def test_downsample_for_lpips_box_filters_large_images_only():
    images = torch.arange(2 * 3 * 512 * 512, dtype=torch.float32).reshape(2, 3, 512, 512)
    small = projector.downsample_for_lpips(images)
    assert small.shape == (2, 3, 256, 256)
    assert torch.allclose(small[0, 0, 0, 0], images[0, 0, :2, :2].mean())
    assert projector.downsample_for_lpips(images[..., :64, :64]).shape == (2, 3, 64, 64)


def test_dlatent_statistics_match_a_direct_computation(plain_Gs):
    w_avg, w_std = projector.dlatent_statistics(plain_Gs, num_samples=300, batch_size=128)
    z = np.random.RandomState(123).randn(300, 32)
    w = plain_Gs.components.mapping.run(z, None)[:, 0].astype(np.float64)
    np.testing.assert_allclose(w_avg, w.mean(0), rtol=1e-5, atol=1e-6)
    assert w_std == pytest.approx(np.sqrt(((w - w.mean(0)) ** 2).sum() / 300), rel=1e-5)


def test_conditional_networks_average_over_classes(single_thread):
    _G, _D, Gs = make_networks(label_size=4)
    w_avg, w_std = projector.dlatent_statistics(Gs, num_samples=200)
    assert w_avg.shape == (32,) and np.isfinite(w_std) and w_std > 0


def mixed_targets(Gs):
    """Style-mixed images: exactly reachable in W+, not in W."""
    z = np.random.RandomState(1).randn(4, 32)
    w = Gs.components.mapping.run(z, None)
    w_mixed = np.concatenate([w[:2, :4], w[2:, 4:]], axis=1)
    return Gs.components.synthesis.run(w_mixed, randomize_noise=False), w_mixed


def test_projection_recovers_images_and_w_plus_beats_w(plain_Gs, single_thread):
    targets, _w = mixed_targets(plain_Gs)
    results = {}
    for space in projector.SPACES:
        proj = projector.Projector(loss="mse", space=space)
        proj.num_steps, proj.dlatent_avg_samples = 150, 2000
        proj.set_network(plain_Gs)
        proj.start(targets)
        start = psnr(proj.get_images(), targets)
        results[space] = psnr(run_projection(proj, targets), targets)
        assert np.all(results[space] > start + 5), (space, start, results[space])
        assert proj.get_dlatents().shape == (2, 8, 32)
    assert results["w+"].mean() > results["w"].mean() + 3, results


def test_w_space_latents_are_tiled_and_w_plus_are_not(plain_Gs, single_thread):
    targets, _w = mixed_targets(plain_Gs)
    for space, tiled in (("w", True), ("w+", False)):
        proj = projector.Projector(loss="mse", space=space)
        proj.num_steps, proj.dlatent_avg_samples = 5, 500
        proj.set_network(plain_Gs)
        run_projection(proj, targets[:1])
        w = proj.get_dlatents()[0]
        assert np.allclose(w, w[:1]) == tiled


def test_results_do_not_depend_on_the_batch(plain_Gs, single_thread):
    targets, _w = mixed_targets(plain_Gs)
    proj = projector.Projector(loss="mse", space="w+")
    proj.num_steps, proj.dlatent_avg_samples = 20, 500
    proj.set_network(plain_Gs)
    together = run_projection(proj, targets)
    w_together, noise_together = proj.get_dlatents(), proj.get_noises()
    alone = run_projection(proj, targets[1:])
    np.testing.assert_allclose(alone[0], together[1], atol=1e-4)
    np.testing.assert_allclose(proj.get_dlatents()[0], w_together[1], atol=1e-5)
    for a, b in zip(proj.get_noises(), noise_together):
        np.testing.assert_allclose(a[0], b[1], atol=1e-5)


def test_noise_maps_stay_normalised(plain_Gs, single_thread):
    targets, _w = mixed_targets(plain_Gs)
    proj = projector.Projector(loss="mse")
    proj.num_steps, proj.dlatent_avg_samples = 3, 500
    proj.set_network(plain_Gs)
    run_projection(proj, targets)
    for v in proj.get_noises():
        np.testing.assert_allclose(v.mean(axis=(1, 2, 3)), 0, atol=1e-5)
        np.testing.assert_allclose(v.std(axis=(1, 2, 3)), 1, atol=1e-4)


def test_start_from_a_given_latent(plain_Gs, single_thread):
    targets, w = mixed_targets(plain_Gs)
    proj = projector.Projector(loss="mse", space="w+")
    proj.num_steps, proj.dlatent_avg_samples = 1, 500
    proj.set_network(plain_Gs)
    proj.start(targets, init_dlatents=w)
    np.testing.assert_allclose(proj.get_images(), targets, atol=1e-4)  # the exact answer is where it starts
    proj_w = projector.Projector(loss="mse", space="w")
    proj_w.dlatent_avg_samples = 500
    proj_w.set_network(plain_Gs)
    with pytest.raises(dnnlib.util.UserError, match="w\\+"):
        proj_w.start(targets, init_dlatents=w)  # per-layer latents cannot start a W projection
    proj_w.start(targets, init_dlatents=w[:, 0])  # one W per image can


def test_bad_targets_and_options(plain_Gs):
    proj = projector.Projector(loss="mse")
    proj.dlatent_avg_samples = 100
    proj.set_network(plain_Gs)
    with pytest.raises(dnnlib.util.UserError, match="shape"):
        proj.start(np.zeros([1, 3, 64, 64]))
    with pytest.raises(dnnlib.util.UserError, match="space"):
        projector.Projector(space="z")
    with pytest.raises(dnnlib.util.UserError, match="loss"):
        projector.Projector(loss="l1")
    with pytest.raises(dnnlib.util.UserError, match="perceptual"):
        projector.Projector(loss="lpips").set_network(plain_Gs)


# ----------------------------------------------------------------------------------------------------------------
# Latent files.

@pytest.mark.parametrize("shape, count", [([32], 1), ([6, 32], 1), ([3, 32], 3), ([2, 6, 32], 2), ([5, 1, 32], 5),
                                          ([1, 6, 32], 1)])
def test_latent_layouts(tmp_path, shape, count):
    data = np.random.RandomState(0).randn(*shape).astype(np.float32)
    np.save(tmp_path / "w.npy", data)
    latents, noises = projector.load_latents(str(tmp_path / "w.npy"), 6, 32)
    assert latents.shape == (count, 6, 32) and noises is None
    flat = data.reshape(-1, 32)
    assert np.array_equal(latents[-1, -1], flat[-1])


def test_saved_latents_load_back_with_their_noise(tmp_path):
    w = np.random.RandomState(0).randn(6, 32).astype(np.float32)
    noises = [np.random.RandomState(i).randn(1, 1, 4 * 2 ** (i // 2), 4 * 2 ** (i // 2)).astype(np.float32)
              for i in range(5)]
    projector.save_latents(str(tmp_path / "img"), w, noises)
    loaded, _ = projector.load_latents(str(tmp_path / "img.npy"), 6, 32)
    assert np.array_equal(loaded[0], w)
    loaded, loaded_noises = projector.load_latents(str(tmp_path / "img.npz"), 6, 32)
    assert np.array_equal(loaded[0], w) and all(np.array_equal(a, b) for a, b in zip(loaded_noises, noises))
    with np.load(tmp_path / "img.npz") as data:
        assert data["w"].shape == (1, 6, 32)  # stylegan2-ada-pytorch's projected_w.npz layout


@pytest.mark.parametrize("case", ["wrong size", "garbage", "no latent key", "pickled object"])
def test_bad_latent_files(tmp_path, case):
    path = tmp_path / ("w.npz" if case == "no latent key" else "w.npy")
    if case == "wrong size":
        np.save(path, np.zeros([6, 31]))
    elif case == "garbage":
        path.write_bytes(b"not numpy at all")
    elif case == "no latent key":
        np.savez(path, other=np.zeros(3))
    else:
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(dnnlib.util.UserError, match="w.np"):
        projector.load_latents(str(path), 6, 32)


# ----------------------------------------------------------------------------------------------------------------
# With LPIPS (a random-weight VGG16 of the real architecture).

def test_lpips_projection_lowers_the_distance_and_w_plus_beats_w(plain_Gs, lpips_pkl, single_thread):
    from training import lpips as lpips_lib
    lpips = lpips_lib.load_lpips(lpips_pkl)
    targets, _w = mixed_targets(plain_Gs)
    final = {}
    for space in projector.SPACES:
        proj = projector.Projector(lpips=lpips, space=space)
        proj.num_steps, proj.dlatent_avg_samples = 40, 2000
        proj.set_network(plain_Gs)
        proj.start(targets)
        first = proj.step()
        while proj.get_cur_step() < proj.num_steps:
            last = proj.step()
        assert np.all(last < 0.6 * first), (space, first, last)
        final[space] = last
        # The reported distance is LPIPS between the current images and the targets.
        x = torch.as_tensor((proj.get_images() + 1) * 127.5)
        direct = lpips(x, torch.as_tensor((targets + 1) * 127.5)).numpy()
        assert direct == pytest.approx(last, rel=0.5)  # the step's images carried exploration noise
    assert final["w+"].mean() < final["w"].mean()
