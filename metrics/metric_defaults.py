"""The metrics by name, with the original definitions and defaults (StyleGAN2's metric_defaults.py and
StyleGAN2-ADA's metric_main.py), and the same metrics at other image counts: `fid10k`, `kid10k_full`, `pr1k3`,
`ppl_wend1k`, `ls20k`...

A name's count replaces the 50k (or the 200k of `ls`): the generated images or samples, and for the legacy
metrics (`fid50k`, `kid50k`, `pr50k3`) also the number of real images, as in the originals, where the two are one
number. The `_full` metrics keep their real-image counts (all, 1M, 200k) and ignore mirroring, as ADA's do.
"""

import re

from dnnlib.util import EasyDict, UserError
from metrics import (frechet_inception_distance, inception_score, kernel_inception_distance, linear_separability,
                     perceptual_path_length, precision_recall)


def _metric(name, template, func, needs, scale, reals=False, **kwargs):
    """A metric: `template` is its name with '{n}' where the count goes; `scale(n)` the kwargs a count sets;
    `needs`: the feature networks it loads ('inception', 'vgg16', 'lpips', 'classifiers'); `reals`: whether it
    reads dataset images."""
    return EasyDict(name=name, template=template, func=func, needs=needs, scale=scale, reals=reals, kwargs=kwargs)


_FID = frechet_inception_distance.compute_fid
_KID = kernel_inception_distance.compute_kid
_PR = precision_recall.compute_pr
_PPL = perceptual_path_length.compute_ppl
_INCEPTION = ("inception",)
_ADA_FULL = dict(mirror_augment=False)


def _ppl(name, space, sampling, crop):
    return _metric(name, name + "{n}", _PPL, ("lpips",), lambda n: dict(num_samples=n), num_samples=50000,
                   epsilon=1e-4, space=space, sampling=sampling, crop=crop, batch_size=4)


_METRICS = [
    # StyleGAN2 (metric_defaults.py). fid50k keeps the original's unbiased covariance (np.cov).
    _metric("fid50k", "fid{n}", _FID, _INCEPTION, lambda n: dict(num_gen=n, max_real=n), reals=True,
            num_gen=50000, max_real=50000, ddof=1, batch_size=8),
    _metric("is50k", "is{n}", inception_score.compute_is, _INCEPTION, lambda n: dict(num_gen=n),
            num_gen=50000, num_splits=10, batch_size=8),
    _ppl("ppl_zfull", "z", "full", True),
    _ppl("ppl_wfull", "w", "full", True),
    _ppl("ppl_zend", "z", "end", True),
    _ppl("ppl_wend", "w", "end", True),
    _ppl("ppl2_wend", "w", "end", False),
    _metric("ls", "ls{n}", linear_separability.compute_ls, ("classifiers",),
            lambda n: dict(num_samples=n, num_keep=n // 2),
            num_samples=200000, num_keep=100000, attrib_indices=tuple(range(40)), batch_size=4),
    _metric("pr50k3", "pr{n}3", _PR, ("vgg16",), lambda n: dict(num_gen=n, max_real=n), reals=True,
            num_gen=50000, max_real=50000, nhood_size=3, row_batch_size=10000, col_batch_size=10000, batch_size=8),
    # StyleGAN2-ADA (metric_main.py): all reals, no mirroring, biased covariance.
    _metric("fid50k_full", "fid{n}_full", _FID, _INCEPTION, lambda n: dict(num_gen=n), reals=True,
            num_gen=50000, max_real=None, ddof=0, batch_size=8, **_ADA_FULL),
    _metric("kid50k_full", "kid{n}_full", _KID, _INCEPTION, lambda n: dict(num_gen=n), reals=True,
            num_gen=50000, max_real=1000000, num_subsets=100, max_subset_size=1000, batch_size=8, **_ADA_FULL),
    _metric("pr50k3_full", "pr{n}3_full", _PR, ("vgg16",), lambda n: dict(num_gen=n), reals=True,
            num_gen=50000, max_real=200000, nhood_size=3, row_batch_size=10000, col_batch_size=10000, batch_size=8,
            **_ADA_FULL),
    _metric("kid50k", "kid{n}", _KID, _INCEPTION, lambda n: dict(num_gen=n, max_real=n), reals=True,
            num_gen=50000, max_real=50000, num_subsets=100, max_subset_size=1000, batch_size=8),
]

metric_defaults = EasyDict((spec.name, spec) for spec in _METRICS)

_COUNT = r"(?P<count>[1-9][0-9]*k?)"


def _pattern(template):
    return re.compile(re.escape(template).replace(re.escape("{n}"), _COUNT) + "$")


_PATTERNS = [(spec, _pattern(spec.template)) for spec in _METRICS]


def get_metric(name):
    """The spec of a metric name, default or counted (`fid10k`): EasyDict(name, func, needs, kwargs)."""
    for spec, pattern in _PATTERNS:
        if name == spec.name:
            return EasyDict(spec, kwargs=dict(spec.kwargs))
        match = pattern.match(name)
        if match:
            count = match.group("count")
            count = int(count[:-1]) * 1000 if count.endswith("k") else int(count)
            return EasyDict(spec, name=name, kwargs=dict(spec.kwargs, **spec.scale(count)))
    raise UserError(f"unknown metric '{name}'; valid: {', '.join(metric_defaults)} (any of them at another count "
                    "too: fid10k, kid1k_full, pr1k3, is5k, ppl_wend1k, ls20k, ...)")
