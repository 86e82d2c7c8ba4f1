"""Fréchet Inception Distance (FID, Heusel et al. 2017): the Fréchet distance between Gaussians fitted to the
Inception-v3 pool3 features of generated and of real images, as StyleGAN2's frechet_inception_distance.py and
StyleGAN2-ADA's compute it (matrix square root by scipy.linalg.sqrtm, real part of the result)."""

import numpy as np
import scipy.linalg

from metrics import metric_base
from metrics.feature_stats import FeatureStats


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)) in float64."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    assert mu1.ndim == 1 and mu1.shape == mu2.shape and sigma1.shape == sigma2.shape == mu1.shape * 2, \
        f"means {mu1.shape}, {mu2.shape} and covariances {sigma1.shape}, {sigma2.shape} do not match"
    m = np.square(mu1 - mu2).sum()
    s = scipy.linalg.sqrtm(sigma1 @ sigma2)
    return float(np.real(m + np.trace(sigma1 + sigma2 - 2 * s)))


def compute_fid(ctx, num_gen, max_real, ddof, batch_size, mirror_augment=None):
    """FID of `num_gen` generated images against the first `max_real` dataset images (None: all). `ddof`: 1 for the
    original's np.cov, 0 for ADA's covariance. Returns {'': fid} on process 0, None on the others."""
    detector = metric_base.inception_pool3(ctx)
    real = metric_base.dataset_features(ctx, detector, max_real, mirror_augment, batch_size, keep_features=False)
    gen = metric_base.generator_features(ctx, detector, num_gen, batch_size)
    if ctx.rank != 0:
        return None
    gen = FeatureStats.from_features(gen, keep_features=False)
    return {"": frechet_distance(gen.mean, gen.cov(ddof), real.mean, real.cov(ddof))}
