"""Metrics (metrics/): the maths against independent float64 NumPy/SciPy computations and brute force (FID, KID, IS,
precision/recall, PPL, linear separability and its SVM), the generated-image and dataset pipelines, the dataset
statistics cache, metric names, and the VGG16 features. Tiny stand-in feature networks and the small networks of
conftest.py; no downloads. run_metrics.py and training with --metrics: tests/test_run_metrics.py."""

import glob
import json
import os
import shutil

import numpy as np
import PIL.Image
import pytest
import scipy.linalg
import scipy.optimize
import scipy.spatial
import scipy.stats
import torch
import torch.nn.functional as F

import dnnlib
from conftest import make_lpips_network, make_networks
from dnnlib.tflib.network import Network
from dnnlib.tflib.network_pickle import save_network_pkl
from metrics import (feature_stats, frechet_inception_distance as fid_lib, inception_score as is_lib,
                     kernel_inception_distance as kid_lib, linear_separability as ls_lib, linear_svm, metric_base,
                     perceptual_path_length as ppl_lib, precision_recall as pr_lib)
from metrics.metric_defaults import get_metric
from metrics.vgg16 import VGG16Features, load_vgg16
from training.lpips import VGG16_STACKS

pytestmark = pytest.mark.usefixtures("single_thread")


class TinyInception(torch.nn.Module):
    """Stand-in for InceptionV3 with its call: images [N, 3, H, W] in [0, 255] -> (features [N, 16], logits [N, 10])."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv2d(3, 16, 4, stride=4)
        self.fc = torch.nn.Linear(16, 10)

    def forward(self, images, output_bias=True):
        x = F.adaptive_avg_pool2d(images / 127.5 - 1, 16)
        features = torch.relu(self.conv(x)).mean(dim=(2, 3)) * 10
        return features, F.linear(features, self.fc.weight, self.fc.bias if output_bias else None)


def write_images(folder, num, seed=0, size=32):
    """`num` random-blob RGB PNGs of size x size."""
    os.makedirs(folder, exist_ok=True)
    rnd = np.random.RandomState(seed)
    yy, xx = np.mgrid[:size, :size]
    for i in range(num):
        cy, cx = rnd.uniform(4, size - 4, size=2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 20)[..., None] * rnd.uniform(0, 255, size=3)
        PIL.Image.fromarray(blob.astype(np.uint8), "RGB").save(os.path.join(folder, f"img{i:03d}.png"))
    return folder


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    return write_images(str(tmp_path_factory.mktemp("data") / "blobs"), 24)


@pytest.fixture(scope="module")
def nets():
    return make_networks()


@pytest.fixture(autouse=True)
def cache_dir(tmp_path):
    dnnlib.util.set_cache_dir(str(tmp_path / "cache"))
    yield str(tmp_path / "cache")
    dnnlib.util.set_cache_dir(None)


def context(Gs, data=None, **modules):
    modules.setdefault("inception", TinyInception())
    return metric_base.MetricContext(Gs, None if data is None else dict(path=data),
                                     networks=metric_base.FeatureNetworks(modules=modules), progress=False)


def gaussian(n, mean, cov, seed):
    return np.random.RandomState(seed).multivariate_normal(mean, cov, size=n)


# ----------------------------------------------------------------------------------------------------------------
# FID.

def test_fid_known_answer_for_gaussians():
    """Diagonal and commuting covariances: FID = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2 (eigenvalues a, b)."""
    rnd = np.random.RandomState(0)
    mu1, mu2 = rnd.randn(6), rnd.randn(6)
    a, b = rnd.uniform(0.5, 3, 6), rnd.uniform(0.5, 3, 6)
    expected = np.square(mu1 - mu2).sum() + np.square(np.sqrt(a) - np.sqrt(b)).sum()
    assert fid_lib.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)
    q, _ = np.linalg.qr(rnd.randn(6, 6))
    sigma1, sigma2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    assert fid_lib.frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-8)


def test_fid_general_covariances_symmetric_and_zero_for_the_same_set():
    rnd = np.random.RandomState(1)
    x, y = rnd.randn(300, 8) @ rnd.randn(8, 8), rnd.randn(200, 8) @ rnd.randn(8, 8) + 1
    mx, my, cx, cy = x.mean(0), y.mean(0), np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    # Independent: tr(sqrtm(cx cy)) = sum of sqrt of the eigenvalues of cx^(1/2) cy cx^(1/2) (symmetric, PSD).
    root = scipy.linalg.sqrtm(cx).real
    eig = np.linalg.eigvalsh(root @ cy @ root)
    expected = np.square(mx - my).sum() + np.trace(cx) + np.trace(cy) - 2 * np.sqrt(np.clip(eig, 0, None)).sum()
    assert fid_lib.frechet_distance(mx, cx, my, cy) == pytest.approx(expected, rel=1e-9)
    assert fid_lib.frechet_distance(my, cy, mx, cx) == pytest.approx(expected, rel=1e-9)
    assert abs(fid_lib.frechet_distance(mx, cx, mx, cx)) < 1e-9


def test_feature_stats_equal_numpy_mean_and_cov():
    x = np.random.RandomState(2).randn(5000, 7).astype(np.float32) * 3 + 100  # large offset: centred sums needed
    stats = feature_stats.FeatureStats.from_features(x, keep_features=True)
    assert np.allclose(stats.mean, x.astype(np.float64).mean(0), rtol=1e-12)
    assert np.allclose(stats.cov(1), np.cov(x.astype(np.float64), rowvar=False), rtol=1e-10, atol=1e-12)
    assert np.allclose(stats.cov(0), np.cov(x.astype(np.float64), rowvar=False, bias=True), rtol=1e-10, atol=1e-12)
    assert stats.features is x or np.array_equal(stats.features, x)


def test_compute_fid_equals_independent_pipeline(nets, image_folder):
    """compute_fid through the generator and dataset pipelines = the FID of features computed item by item."""
    Gs = nets[2]
    ctx = context(Gs, image_folder)
    inception = ctx.networks.get("inception", ctx.device)
    result = fid_lib.compute_fid(ctx, num_gen=10, max_real=20, ddof=1, batch_size=4)[""]
    dataset = ctx.dataset()
    with torch.no_grad():
        real = np.stack([inception(torch.from_numpy(dataset[i][0])[None].float())[0][0].numpy() for i in range(20)])
        fake = np.stack([inception(metric_base.to_uint8(metric_base.generate_images(ctx, [i])).float())[0][0].numpy()
                         for i in range(10)])
    real, fake = real.astype(np.float64), fake.astype(np.float64)
    expected = fid_lib.frechet_distance(fake.mean(0), np.cov(fake, rowvar=False), real.mean(0),
                                        np.cov(real, rowvar=False))
    assert result == pytest.approx(expected, rel=1e-5)


# ----------------------------------------------------------------------------------------------------------------
# KID.

def brute_force_mmd2(x, y):
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3 by explicit sums over pairs."""
    m, d = len(x), x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_subsets_equal_brute_force():
    gen = gaussian(40, np.zeros(5), np.eye(5), 0) + 0.5
    real = gaussian(30, np.zeros(5), np.eye(5) * 2, 1)
    values = kid_lib.kid_subsets(gen, real, num_subsets=4, max_subset_size=12, rng=np.random.RandomState(7))
    rng = np.random.RandomState(7)  # the same draws: gen subset, then real subset, per subset
    expected = []
    for _ in range(4):
        x = gen[rng.choice(40, 12, replace=False)]
        expected.append(brute_force_mmd2(x, real[rng.choice(30, 12, replace=False)]))
    assert np.allclose(values, expected, rtol=1e-10)
    assert values.var() == pytest.approx(np.var(expected), rel=1e-8)  # per-subset spread, as brute force


def test_kid_is_unbiased_near_zero_for_one_distribution():
    """Same distribution: the subset mean lies within 3 standard errors of 0 (fixed seeds: deterministic)."""
    a, b = gaussian(400, np.zeros(4), np.eye(4), 2), gaussian(400, np.zeros(4), np.eye(4), 3)
    values = kid_lib.kid_subsets(a, b, num_subsets=50, max_subset_size=100, rng=np.random.RandomState(0))
    assert abs(values.mean()) < 3 * values.std() / np.sqrt(len(values))
    shifted = kid_lib.kid_subsets(a + 1, b, num_subsets=50, max_subset_size=100, rng=np.random.RandomState(0))
    assert shifted.mean() > 10 * shifted.std() / np.sqrt(len(shifted))


# ----------------------------------------------------------------------------------------------------------------
# IS.

def test_inception_score_equals_scipy_kl_and_known_answers():
    probs = np.random.RandomState(0).dirichlet(np.ones(7) * 0.3, size=60)
    splits = np.array_split(np.arange(60), 3)
    scores = [np.exp(np.mean([scipy.stats.entropy(p, probs[s].mean(0)) for p in probs[s]])) for s in splits]
    mean, std = is_lib.inception_score(probs, 3)
    assert mean == pytest.approx(np.mean(scores), rel=1e-10) and std == pytest.approx(np.std(scores), rel=1e-8)
    assert is_lib.inception_score(np.full([20, 5], 0.2), 2) == pytest.approx((1.0, 0.0))
    one_hot = np.tile(np.eye(5), [4, 1]) * (1 - 5e-12) + 1e-12  # every split holds each class equally often
    assert is_lib.inception_score(one_hot, 4)[0] == pytest.approx(5.0, rel=1e-6)


def test_compute_is_uses_logits_without_bias(nets):
    ctx = context(nets[2])
    inception = ctx.networks.get("inception", ctx.device)
    result = is_lib.compute_is(ctx, num_gen=12, num_splits=2, batch_size=5)
    with torch.no_grad():
        images = metric_base.to_uint8(metric_base.generate_images(ctx, range(12))).float()
        features, _ = inception(images)
    probs = torch.softmax(features.double() @ inception.fc.weight.double().T, dim=1).numpy()
    mean, std = is_lib.inception_score(probs, 2)
    assert result["_mean"] == pytest.approx(mean, rel=1e-5) and result["_std"] == pytest.approx(std, rel=1e-3,
                                                                                                abs=1e-6)


# ----------------------------------------------------------------------------------------------------------------
# Precision and recall.

def brute_force_pr(real, gen, k):
    def inside(probes, manifold):
        radii = np.sort(scipy.spatial.distance.cdist(manifold, manifold), axis=1)[:, k]
        return (scipy.spatial.distance.cdist(probes, manifold) <= radii[None]).any(axis=1).mean()
    return inside(gen, real), inside(real, gen)


@pytest.mark.parametrize("k", [1, 3])
def test_precision_recall_equal_brute_force_knn(k):
    real = gaussian(90, np.zeros(6), np.eye(6), 0)
    gen = gaussian(70, np.full(6, 0.7), np.eye(6) * 0.5, 1)
    expected = brute_force_pr(real, gen, k)
    assert 0 < expected[0] < 1 and 0 < expected[1] < 1
    assert pr_lib.precision_recall(real, gen, k, row_batch_size=13, col_batch_size=7) == pytest.approx(expected)
    assert pr_lib.precision_recall(real, gen, k, row_batch_size=1000, col_batch_size=1000) == pytest.approx(expected)


# ----------------------------------------------------------------------------------------------------------------
# PPL.

def numpy_slerp(a, b, t):
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    omega = np.arccos(np.clip(a @ b, -1, 1))
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def test_slerp_equals_the_textbook_formula():
    rnd = np.random.RandomState(0)
    a, b, t = rnd.randn(5, 9), rnd.randn(5, 9), rnd.uniform(0, 1, 5)
    got = ppl_lib.slerp(torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(t)[:, None]).numpy()
    assert np.allclose(got, [numpy_slerp(a[i], b[i], t[i]) for i in range(5)], atol=1e-10)


def direct_path_length(Gs, lpips, z0, z1, t, noise, epsilon, space, crop):
    """LPIPS(G(p(t)), G(p(t + eps))) / eps^2 for one path, written out with NumPy interpolation in float64."""
    mapping, synthesis = Gs.components.mapping, Gs.components.synthesis
    if space == "z":
        w = mapping.run(np.stack([numpy_slerp(z0, z1, t), numpy_slerp(z0, z1, t + epsilon)]), None)
    else:
        w0, w1 = mapping.run(np.stack([z0, z1]), None).astype(np.float64)
        w = np.stack([w0 + t * (w1 - w0), w0 + (t + epsilon) * (w1 - w0)])
    images = synthesis.run(w, noise_inputs=[torch.cat([n, n]) for n in noise])
    if crop:
        c = images.shape[2] // 8
        images = images[:, :, 3 * c:7 * c, 2 * c:6 * c]
    images = torch.from_numpy(images.astype(np.float32) + 1) * (255 / 2)
    return float(lpips(images[:1], images[1:])) / epsilon ** 2


@pytest.mark.parametrize("space,crop", [("z", True), ("w", False)])
def test_ppl_path_lengths_equal_direct_finite_differences(nets, space, crop):
    Gs = nets[2]
    lpips = make_lpips_network().module
    ctx = context(Gs, lpips=lpips)
    inputs = ppl_lib.path_inputs(ctx, [0, 1, 2], "full")
    with torch.no_grad():
        got = ppl_lib.path_lengths(Gs, lpips, inputs, 1e-4, space, crop).numpy()
        z0, z1, t, _labels, noise = inputs
        expected = [direct_path_length(Gs, lpips, z0[i].double().numpy(), z1[i].double().numpy(), float(t[i]),
                                       [n[i:i + 1] for n in noise], 1e-4, space, crop) for i in range(3)]
        coarse = ppl_lib.path_lengths(Gs, lpips, inputs, 1e-2, space, crop).numpy()
    assert np.all(got > 0) and np.allclose(got, expected, rtol=2e-2)
    assert np.allclose(got, coarse, rtol=0.2)  # a derivative: nearly the same at a 100x larger step


def test_ppl_filtered_mean_rejects_the_outer_percentiles():
    d = np.random.RandomState(0).permutation(np.concatenate([np.arange(998.0), [1e9, -1e9]]))
    lo, hi = np.percentile(d, 1, method="lower"), np.percentile(d, 99, method="higher")
    assert ppl_lib.filtered_mean(d) == pytest.approx(d[(d >= lo) & (d <= hi)].mean())
    assert ppl_lib.filtered_mean(d) == pytest.approx(np.arange(8.0, 990.0).mean())  # sorted items 9 ... 990 kept


def test_compute_ppl_end_sampling_starts_at_the_first_latent(nets):
    ctx = context(nets[2], lpips=make_lpips_network().module)
    _z0, _z1, t, _labels, _noise = ppl_lib.path_inputs(ctx, range(4), "end")
    assert torch.all(t == 0)
    results = [ppl_lib.compute_ppl(ctx, num_samples=6, epsilon=1e-4, space=space, sampling="end", crop=True,
                                   batch_size=4)[""] for space in ("z", "w")]
    assert all(np.isfinite(r) and r > 0 for r in results)


# ----------------------------------------------------------------------------------------------------------------
# Linear separability.

def original_conditional_entropy(p):
    """The original's loops (float64 here)."""
    p = np.asarray(p, np.float64) / np.sum(p)
    px, py = p.sum(1), p.sum(0)
    mi = sum(p[x, y] * np.log2(p[x, y] / (px[x] * py[y])) for x in range(2) for y in range(2) if p[x, y] > 0)
    hy = -sum(q * np.log2(q) for q in py if q > 0)
    return max(0.0, hy - mi)


def test_conditional_entropy_equals_the_original_loops():
    rnd = np.random.RandomState(0)
    for p in [rnd.uniform(0, 1, (2, 2)), [[0.5, 0], [0, 0.5]], [[0.25, 0.25], [0.25, 0.25]], [[0.3, 0.1], [0, 0.6]]]:
        assert ls_lib.conditional_entropy(p) == pytest.approx(original_conditional_entropy(p), abs=1e-12)
    assert ls_lib.conditional_entropy([[0.5, 0], [0, 0.5]]) == 0
    assert ls_lib.conditional_entropy([[0.25, 0.25], [0.25, 0.25]]) == pytest.approx(1.0)


def test_linear_svm_reaches_the_optimum_of_its_objective():
    rnd = np.random.RandomState(0)
    x = rnd.randn(300, 6)
    y = (x @ rnd.randn(6) + 0.8 * rnd.randn(300) > 0.3).astype(int)  # not separable
    w, b = linear_svm.fit_linear_svm(x, y)
    s = np.where(y == 1, 1.0, -1.0)
    xb = np.hstack([x, np.ones([300, 1])])

    def objective(v):
        return 0.5 * v @ v + np.square(np.maximum(1 - s * (xb @ v), 0)).sum()

    def grad(v):
        m = np.maximum(1 - s * (xb @ v), 0)
        return v - 2 * xb.T @ (s * m)

    ref = scipy.optimize.minimize(objective, np.zeros(7), jac=grad, method="L-BFGS-B",
                                  options=dict(gtol=1e-12, ftol=1e-15, maxiter=10000)).x
    assert np.allclose(np.append(w, b), ref, rtol=1e-5, atol=1e-6)
    assert np.linalg.norm(grad(np.append(w, b))) < 1e-6
    separable = (x[:, 0] > 0).astype(int)
    assert np.array_equal(linear_svm.predict(*linear_svm.fit_linear_svm(x * 10, separable), x * 10), separable)


def test_separability_of_linear_and_of_random_attributes():
    rnd = np.random.RandomState(0)
    latents = rnd.randn(400, 5)
    linear = 1 / (1 + np.exp(-3 * (latents @ rnd.randn(5))))  # a linear attribute: perfectly separable
    assert ls_lib.separability(latents, np.stack([linear, 1 - linear], 1), num_keep=200) == pytest.approx(0, abs=1e-9)
    noise = rnd.uniform(0, 1, 400)  # unrelated to the latents: about one bit left
    assert ls_lib.separability(latents, np.stack([noise, 1 - noise], 1), num_keep=200) > 0.8
    one_class = np.stack([np.full(400, 0.9), np.full(400, 0.1)], 1)  # the original's "perfect prediction" case
    assert ls_lib.separability(latents, one_class, num_keep=200) == 0


def stand_in_classifiers(count):
    """D_stylegan2 networks (32x32 images -> [N, 1]) with different random weights: attribute classifiers' stand-ins."""
    D = make_networks()[1]
    out = []
    for k in range(count):
        net = D.clone(f"classifier{k}")
        gen = torch.Generator().manual_seed(k)
        with torch.no_grad():
            for var in net.vars.values():
                var.tensor.add_(torch.randn(var.tensor.shape, generator=gen) * 0.3)
        out.append(net)
    return out


def test_compute_ls_with_stand_in_classifiers(nets, tmp_path):
    classifiers = stand_in_classifiers(3)
    ctx = context(nets[2], classifiers=classifiers)
    result = ls_lib.compute_ls(ctx, num_samples=24, num_keep=12, attrib_indices=(0, 1, 2), batch_size=4)
    assert set(result) == {"_z", "_w"} and all(1 <= v <= 8 for v in result.values())
    again = ls_lib.compute_ls(context(nets[2], classifiers=classifiers), 24, 12, (0, 1, 2), batch_size=4)
    assert again == result


def test_load_classifiers_reads_stylegan1_d_basic_pickles(nets, tmp_path):
    """The real classifiers are StyleGAN1 D_basic networks: a random one at 32x32 loads and labels images."""
    torch.manual_seed(0)
    basic = Network("D", func_name="training.networks_stylegan.D_basic", num_channels=3, resolution=32,
                    fmap_base=128, fmap_max=32)
    save_network_pkl(basic, str(tmp_path / "basic.pkl"))
    folder = tmp_path / "classifiers"
    folder.mkdir()
    for index in range(40):
        os.symlink(tmp_path / "basic.pkl", folder / ls_lib.classifier_file(index))
    loaded = ls_lib.load_classifiers(str(folder))
    assert len(loaded) == 40 and np.array_equal(loaded[5].get_var("4x4/Dense1/weight"), basic.get_var(
        "4x4/Dense1/weight"))
    ctx = context(nets[2], classifiers=loaded)
    result = ls_lib.compute_ls(ctx, num_samples=8, num_keep=4, attrib_indices=(0, 39), batch_size=4)
    assert all(1 <= v <= 4 for v in result.values())
    os.remove(folder / ls_lib.classifier_file(7))
    with pytest.raises(dnnlib.util.UserError, match="celebahq-classifier-07-bags-under-eyes.pkl"):
        ls_lib.load_classifiers(str(folder))
    with pytest.raises(dnnlib.util.UserError, match="not an attribute classifier"):
        save_network_pkl(nets[2], str(folder / ls_lib.classifier_file(7)))
        ls_lib.load_classifiers(str(folder))


# ----------------------------------------------------------------------------------------------------------------
# Generated items, processes, dataset statistics.

def test_generated_items_do_not_depend_on_the_batch(nets):
    ctx = context(nets[2])
    with torch.no_grad():
        batch = metric_base.generate_images(ctx, range(6))
        single = torch.cat([metric_base.generate_images(ctx, [i]) for i in range(6)])
        other_seed = metric_base.generate_images(metric_base.MetricContext(nets[2], seed=1, progress=False), [0])
    assert torch.allclose(batch, single, atol=1e-5)
    assert not torch.allclose(batch[:1], other_seed, atol=1e-2)


def test_rank_batches_cover_every_item_once(nets):
    batches = [metric_base.rank_batches(metric_base.MetricContext(nets[2], rank=r, world_size=3), 23, 4)
               for r in range(3)]
    assert [b[0].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert sorted(i for rank in batches for b in rank for i in b) == list(range(23))


class Exploding(metric_base.Detector):
    def __call__(self, images):
        raise AssertionError("features computed although they are cached")


def test_dataset_statistics_are_cached_and_invalidated(nets, image_folder, tmp_path, cache_dir):
    folder = shutil.copytree(image_folder, str(tmp_path / "blobs"))
    ctx = context(nets[2], folder)
    detector = metric_base.inception_pool3(ctx)
    first = metric_base.dataset_features(ctx, detector, 20, False, 8, keep_features=True)
    assert first.num == 20 and first.features.shape == (20, 16)
    assert len(glob.glob(os.path.join(cache_dir, "gan-metrics", "blobs-inception-*.npz"))) == 1

    cached_only = Exploding(detector.name, detector.module, options=detector.options)
    again = metric_base.dataset_features(context(nets[2], folder), cached_only, 20, False, 8, keep_features=False)
    assert np.array_equal(again.mean, first.mean) and np.array_equal(again.scatter, first.scatter)
    for other in [dict(max_items=10, mirror=False), dict(max_items=20, mirror=True)]:  # other options: other entry
        with pytest.raises(AssertionError, match="cached"):
            metric_base.dataset_features(context(nets[2], folder), cached_only, other["max_items"], other["mirror"],
                                         8, keep_features=False)
    for other in [Exploding(detector.name, TinyInception(seed=1), options=detector.options),  # other weights
                  Exploding(detector.name, detector.module, options=dict(preprocess="pytorch-fid"))]:
        with pytest.raises(AssertionError, match="cached"):
            metric_base.dataset_features(context(nets[2], folder), other, 20, False, 8, keep_features=False)

    write_images(folder, 1, seed=5)  # img000.png rewritten: the dataset changed
    with pytest.raises(AssertionError, match="cached"):
        metric_base.dataset_features(context(nets[2], folder), cached_only, 20, False, 8, keep_features=False)
    changed = metric_base.dataset_features(context(nets[2], folder), detector, 20, False, 8, keep_features=False)
    assert not np.allclose(changed.mean, first.mean)
    assert len(glob.glob(os.path.join(cache_dir, "gan-metrics", "*.npz"))) == 2


def test_mirrored_dataset_features_follow_the_originals(nets, image_folder):
    ctx = context(nets[2], image_folder)
    detector = metric_base.inception_pool3(ctx)
    plain = metric_base.dataset_features(ctx, detector, None, False, 8, keep_features=True).features
    mirrored = metric_base.dataset_features(ctx, detector, None, True, 8, keep_features=True).features
    assert mirrored.shape == (48, 16) and np.array_equal(mirrored[:24], plain)
    flipped = ctx.dataset(True)[24][0]
    assert np.array_equal(flipped, ctx.dataset()[0][0][:, :, ::-1])


def test_conditional_network_draws_dataset_labels(tmp_path, image_folder):
    Gs = make_networks(label_size=4)[2]
    folder = shutil.copytree(image_folder, str(tmp_path / "labelled"))
    with pytest.raises(dnnlib.util.UserError, match="conditional"):
        context(Gs, folder).check_labels()
    classes = np.arange(24) % 4
    with open(os.path.join(folder, "dataset.json"), "w") as f:
        json.dump({"labels": [[f"img{i:03d}.png", int(c)] for i, c in enumerate(classes)]}, f)
    ctx = context(Gs, folder)
    ctx.check_labels()
    _z, labels, _noise = metric_base.generator_inputs(ctx, range(8))
    assert labels.shape == (8, 4) and torch.all(labels.sum(1) == 1)
    assert len(set(labels.argmax(1).tolist())) > 1
    assert np.isfinite(fid_lib.compute_fid(ctx, num_gen=6, max_real=None, ddof=0, batch_size=4)[""])
    with pytest.raises(dnnlib.util.UserError, match="needs the dataset"):
        metric_base.generator_inputs(context(Gs), [0])
    with pytest.raises(dnnlib.util.UserError, match="needs the dataset"):  # before any metric runs
        metric_base.MetricGroup(["ppl_wend10"]).prepare(context(Gs, lpips=make_lpips_network().module))


# ----------------------------------------------------------------------------------------------------------------
# Names.

def test_metric_names_and_counts():
    assert get_metric("fid50k").kwargs["num_gen"] == 50000 and get_metric("fid50k").kwargs["ddof"] == 1
    assert get_metric("fid10k").kwargs == dict(get_metric("fid50k").kwargs, num_gen=10000, max_real=10000)
    full = get_metric("kid1k_full")
    assert full.name == "kid1k_full" and (full.kwargs["num_gen"], full.kwargs["max_real"]) == (1000, 1000000)
    assert get_metric("fid2k_full").kwargs["max_real"] is None and get_metric("fid2k_full").kwargs["ddof"] == 0
    assert (get_metric("pr1k3").kwargs["num_gen"], get_metric("pr1k3").kwargs["nhood_size"]) == (1000, 3)
    assert get_metric("pr5003_full").kwargs["num_gen"] == 500
    assert get_metric("ppl_wend1k").kwargs["num_samples"] == 1000 and get_metric("ppl2_wend").kwargs["crop"] is False
    assert (get_metric("ls20k").kwargs["num_samples"], get_metric("ls20k").kwargs["num_keep"]) == (20000, 10000)
    assert get_metric("is5k").kwargs["num_splits"] == 10
    for bad in ["fid", "fid0k", "fidk", "fid10k_ful", "ppl_wend_1k", "pr50k", "FID50K"]:
        with pytest.raises(dnnlib.util.UserError, match="unknown metric"):
            get_metric(bad)


def test_result_line_has_the_original_layout():
    record = dnnlib.EasyDict(total_time_str="1m 23s", results={"pr50k3_precision": 0.5, "pr50k3_recall": 0.25})
    line = metric_base.result_line("network-snapshot-000040", record)
    assert line == ("network-snapshot-000040        time 1m 23s       pr50k3_precision 0.5000     "
                    "pr50k3_recall 0.2500")
    assert metric_base.result_line("x" * 40, record).startswith("..." + "x" * 26 + "  time 1m 23s")


# ----------------------------------------------------------------------------------------------------------------
# VGG16 features (precision/recall).

def tf_resize_reference(x, size):
    """TF1 bilinear resize without half-pixel centres, in float64: output i samples the input at i * in / size."""
    def taps(n):
        src = np.arange(size) * n / size
        low = np.floor(src).astype(int)
        return low, np.minimum(low + 1, n - 1), src - low
    y0, y1, fy = taps(x.shape[2])
    x0, x1, fx = taps(x.shape[3])
    top = x[:, :, y0][:, :, :, x0] * (1 - fx) + x[:, :, y0][:, :, :, x1] * fx
    bottom = x[:, :, y1][:, :, :, x0] * (1 - fx) + x[:, :, y1][:, :, :, x1] * fx
    return top * (1 - fy[:, None]) + bottom * fy[:, None]


def test_vgg16_features_equal_a_plain_torchvision_layout_vgg16():
    torch.manual_seed(0)
    model = VGG16Features()
    convs = model.convs.convs()
    with torch.no_grad():
        for conv in convs:
            weight = getattr(conv, conv.weight_name)
            weight.normal_(0, (2 / (9 * weight.shape[2])) ** 0.5)
            getattr(conv, conv.bias_name).normal_(0, 0.1)
        for fc in (model.fc1, model.fc2):
            fc.weight.normal_(0, (2 / fc.weight.shape[1]) ** 0.5)
            fc.bias.normal_(0, 0.1)
    images = torch.rand(1, 3, 40, 40) * 255
    with torch.no_grad():
        got = model(images).numpy()
        x = torch.from_numpy(tf_resize_reference(images.double().numpy(), 224)).float() / 255
        x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(
            1, 3, 1, 1)
        layers = iter(convs)
        for stack in VGG16_STACKS:
            for _ in stack:
                conv = next(layers)
                x = F.relu(F.conv2d(x, getattr(conv, conv.weight_name).permute(3, 2, 0, 1),
                                    getattr(conv, conv.bias_name), padding=1))
            x = F.max_pool2d(x, 2)
        x = F.relu(x.flatten(1) @ model.fc1.weight.T + model.fc1.bias)
        expected = F.relu(x @ model.fc2.weight.T + model.fc2.bias).numpy()
    assert got.shape == (1, 4096) and (got > 0).any()
    assert np.allclose(got, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def test_load_vgg16_reads_torchvision_files(tmp_path):
    """torchvision's layout (int8 values and broadcast views keep the file small: shapes are what is checked)."""
    gen = torch.Generator().manual_seed(0)
    channels = [3] + [fmaps for stack in VGG16_STACKS for fmaps in stack]
    conv_at = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]  # torchvision's vgg16().features indices
    state = {}
    for i, at in enumerate(conv_at):
        state[f"features.{at}.weight"] = torch.randint(-9, 9, (channels[i + 1], channels[i], 3, 3), generator=gen,
                                                       dtype=torch.int8)
        state[f"features.{at}.bias"] = torch.randint(-9, 9, (channels[i + 1],), generator=gen, dtype=torch.int8)
    state["classifier.0.weight"] = torch.full([1, 1], 3, dtype=torch.int8).expand(4096, 25088)
    state["classifier.0.bias"] = torch.arange(4096, dtype=torch.int16)
    state["classifier.3.weight"] = torch.full([1, 1], 5, dtype=torch.int8).expand(4096, 4096)
    state["classifier.3.bias"] = -torch.arange(4096, dtype=torch.int16)
    state["classifier.6.weight"] = torch.zeros(1000, 4096, dtype=torch.int8)[:, :1].expand(1000, 4096)
    path = tmp_path / "vgg16-397923af.pth"
    torch.save(state, path)
    assert os.path.getsize(path) < 30e6
    model = load_vgg16(str(path))
    conv = model.convs.convs()[4]
    assert torch.equal(getattr(conv, conv.weight_name).cpu(), state["features.10.weight"].float().permute(2, 3, 1, 0))
    assert torch.all(model.fc1.weight == 3) and torch.equal(model.fc2.bias.cpu(), -torch.arange(4096.0))
    with pytest.raises(dnnlib.util.UserError, match="fully connected"):
        load_vgg16(str(tmp_path / "vgg16_zhang_perceptual.pkl"))
    with pytest.raises(dnnlib.util.UserError, match="file not found"):
        load_vgg16(str(tmp_path / "missing.pth"))
