"""Feature statistics of a set of images, and their on-disk cache for datasets.

The real-image side of FID, KID and precision/recall depends only on the dataset, the options that pick its images
and the feature network, so it is computed once and kept in '<dnnlib cache>/gan-metrics/'. A cache entry is keyed
by the dataset's identity (its path and the size and modification time of every file in it, so that any change
invalidates the entry), the options (image shape, count, mirroring) and a digest of the feature network's weights;
it is written atomically, so a killed run never leaves a half-written entry.
"""

import hashlib
import json
import os

import numpy as np
import torch

import dnnlib

CACHE_VERSION = 1
_CHUNK = 4096  # rows per float64 chunk when accumulating the scatter matrix


class FeatureStats:
    """Count, mean and scatter matrix (sum of centred outer products) of features [N, D] in float64, and the
    features themselves (float32) when `features` is kept: KID and precision/recall need them, FID does not."""

    def __init__(self, num, mean, scatter, features=None):
        self.num, self.mean, self.scatter, self.features = int(num), mean, scatter, features

    @classmethod
    def from_features(cls, features, keep_features):
        x = np.asarray(features, dtype=np.float32)
        assert x.ndim == 2 and len(x) > 0, f"expected features [N, D], got {list(x.shape)}"
        mean = x.sum(axis=0, dtype=np.float64) / len(x)
        scatter = np.zeros([x.shape[1]] * 2)
        for start in range(0, len(x), _CHUNK):
            centred = x[start:start + _CHUNK].astype(np.float64) - mean
            scatter += centred.T @ centred
        return cls(len(x), mean, scatter, x if keep_features else None)

    def cov(self, ddof):
        """Covariance with `ddof` delta degrees of freedom: 1 as np.cov (the StyleGAN2 original), 0 as ADA."""
        return self.scatter / (self.num - ddof)


# ----------------------------------------------------------------------------------------------------------------
# Identities.

def dataset_fingerprint(path):
    """SHA-1 over (relative path, size, mtime) of every file of a dataset (a folder, searched recursively, or one
    file such as a zip): changes when any file is added, removed, rewritten or touched."""
    path = os.path.abspath(path)
    entries = []
    if os.path.isdir(path):
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(root, name)
                st = os.stat(full)
                entries.append((os.path.relpath(full, path), st.st_size, st.st_mtime_ns))
    else:
        st = os.stat(path)
        entries.append((os.path.basename(path), st.st_size, st.st_mtime_ns))
    return hashlib.sha1(json.dumps(entries).encode("utf-8")).hexdigest()


def module_digest(module):
    """SHA-1 of a module's parameters and buffers (names, shapes, dtypes, values): which weights made the features.
    Computed once per module."""
    digest = getattr(module, "_metrics_digest", None)
    if digest is None:
        sha = hashlib.sha1()
        for name, tensor in module.state_dict().items():
            tensor = tensor.detach().cpu().contiguous()
            sha.update(f"{name}{list(tensor.shape)}{tensor.dtype}".encode("utf-8"))
            sha.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
        digest = sha.hexdigest()
        module._metrics_digest = digest
    return digest


# ----------------------------------------------------------------------------------------------------------------
# The cache.

def cache_path(key, dataset_name, detector_name):
    """'<cache>/gan-metrics/<dataset>-<detector>-<md5 of the key>.npz' for a key dict (JSON-serialisable)."""
    md5 = hashlib.md5(json.dumps(dict(key, version=CACHE_VERSION), sort_keys=True).encode("utf-8")).hexdigest()
    return dnnlib.util.make_cache_dir_path("gan-metrics", f"{dataset_name}-{detector_name}-{md5}.npz")


def load_cached(path, need_features):
    """The FeatureStats in a cache file, or None if there is none (or it lacks the features that are needed).
    An unreadable entry counts as missing and is computed again."""
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if need_features and "features" not in data:
                return None
            return FeatureStats(int(data["num"]), data["mean"], data["scatter"],
                                data["features"] if "features" in data else None)
    except (OSError, ValueError, KeyError):
        return None


def save_cached(path, stats):
    """Write stats atomically; an entry with features replaces one without."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    arrays = dict(num=np.int64(stats.num), mean=stats.mean, scatter=stats.scatter)
    if stats.features is not None:
        arrays["features"] = stats.features
    with dnnlib.util.atomic_write(path) as f:
        np.savez(f, **arrays)
