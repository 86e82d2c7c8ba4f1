"""Improved precision and recall (Kynkäänniemi et al. 2019) as StyleGAN2's precision_recall.py and StyleGAN2-ADA
compute it: each feature set spans a manifold, the union of balls around its points reaching their k-th nearest
neighbour (the point itself not counted); precision is the fraction of generated images inside the real manifold,
recall the fraction of real images inside the generated one. Features: VGG16 fc2 (metrics/vgg16.py).

Distances are computed in blocks of `row_batch_size` x `col_batch_size` on the device, in float32 (the originals
use float16 features), so memory stays bounded at any image count."""

import numpy as np
import torch

from metrics import metric_base


def _distances(rows, cols):
    """Euclidean distances [R, C] between feature rows: sqrt(|u|^2 - 2 u.v + |v|^2) by matrix product (as the
    original's squared distances; the root changes no comparison)."""
    return torch.cdist(rows.unsqueeze(0), cols.unsqueeze(0))[0]


def knn_radii(features, nhood_size, row_batch_size, col_batch_size):
    """Distance of each point [N, D] to its `nhood_size`-th nearest neighbour among the others: [N]."""
    assert features.ndim == 2 and len(features) > nhood_size, \
        f"need more than {nhood_size} feature vectors [N, D], got {list(features.shape)}"
    k = nhood_size + 1  # the point itself is its own nearest neighbour, at distance 0
    radii = []
    for rows in features.split(row_batch_size):
        nearest = torch.cat([_distances(rows, cols).topk(min(k, len(cols)), dim=1, largest=False).values
                             for cols in features.split(col_batch_size)], dim=1)
        radii.append(nearest.topk(k, dim=1, largest=False).values[:, -1])
    return torch.cat(radii)


def in_manifold(probes, manifold, radii, row_batch_size, col_batch_size):
    """Whether each probe [M, D] lies within the radius of some manifold point [N, D]: bool [M]."""
    inside = []
    for rows in probes.split(row_batch_size):
        hit = torch.zeros(len(rows), dtype=torch.bool, device=rows.device)
        for cols, col_radii in zip(manifold.split(col_batch_size), radii.split(col_batch_size)):
            hit |= (_distances(rows, cols) <= col_radii).any(dim=1)
        inside.append(hit)
    return torch.cat(inside)


def precision_recall(real, gen, nhood_size, row_batch_size, col_batch_size, device="cpu"):
    """(precision, recall) of generated features against real ones (arrays or tensors [N, D])."""
    real, gen = (torch.as_tensor(np.asarray(x), dtype=torch.float32, device=device) for x in (real, gen))
    assert real.ndim == gen.ndim == 2 and real.shape[1] == gen.shape[1], f"features {real.shape}, {gen.shape}"
    results = []
    for manifold, probes in ((real, gen), (gen, real)):
        radii = knn_radii(manifold, nhood_size, row_batch_size, col_batch_size)
        results.append(float(in_manifold(probes, manifold, radii, row_batch_size, col_batch_size).float().mean()))
    return tuple(results)


def compute_pr(ctx, num_gen, max_real, nhood_size, row_batch_size, col_batch_size, batch_size, mirror_augment=None):
    """Precision and recall of `num_gen` generated images against up to `max_real` dataset images, with
    k = `nhood_size`. Returns {'_precision': p, '_recall': r} on process 0 (which computes the distances), None on
    the others."""
    detector = metric_base.Detector("vgg16", ctx.net("vgg16"))
    real = metric_base.dataset_features(ctx, detector, max_real, mirror_augment, batch_size, keep_features=True)
    gen = metric_base.generator_features(ctx, detector, num_gen, batch_size)
    if ctx.rank != 0:
        return None
    precision, recall = precision_recall(real.features, gen, nhood_size, row_batch_size, col_batch_size, ctx.device)
    return {"_precision": precision, "_recall": recall}
