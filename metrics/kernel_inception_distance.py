"""Kernel Inception Distance (KID, Bińkowski et al. 2018) as StyleGAN2-ADA computes it: the unbiased estimate of
the squared MMD between generated and real Inception-v3 pool3 features with the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3, averaged over random subsets of equal size."""

import numpy as np

from metrics import metric_base


def kid_subsets(gen, real, num_subsets, max_subset_size, rng):
    """Unbiased MMD^2 of each of `num_subsets` subset pairs (m = min(len(gen), len(real), max_subset_size) rows of
    each, drawn without replacement by `rng`, a RandomState), in float64: an array [num_subsets]; KID is its mean."""
    gen, real = np.asarray(gen, np.float64), np.asarray(real, np.float64)
    assert gen.ndim == real.ndim == 2 and gen.shape[1] == real.shape[1], f"features {gen.shape}, {real.shape}"
    d = gen.shape[1]
    m = min(len(gen), len(real), max_subset_size)
    assert m >= 2, "KID needs at least 2 images on each side"
    values = np.empty(num_subsets)
    for i in range(num_subsets):
        x = gen[rng.choice(len(gen), m, replace=False)]
        y = real[rng.choice(len(real), m, replace=False)]
        a = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
        b = (x @ y.T / d + 1) ** 3
        values[i] = ((a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m) / m
    return values


def compute_kid(ctx, num_gen, max_real, num_subsets, max_subset_size, batch_size, mirror_augment=None):
    """KID of `num_gen` generated images against up to `max_real` dataset images. Returns {'': kid} on process 0."""
    detector = metric_base.inception_pool3(ctx)
    real = metric_base.dataset_features(ctx, detector, max_real, mirror_augment, batch_size, keep_features=True)
    gen = metric_base.generator_features(ctx, detector, num_gen, batch_size)
    if ctx.rank != 0:
        return None
    rng = np.random.RandomState(ctx.seed)
    return {"": float(kid_subsets(gen, real.features, num_subsets, max_subset_size, rng).mean())}
