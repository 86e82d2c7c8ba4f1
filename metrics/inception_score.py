"""Inception Score (IS, Salimans et al. 2016) as StyleGAN2's inception_score.py and StyleGAN2-ADA compute it:
exp(E_x KL(p(y|x) || p(y))) over 10 splits of the generated images, mean and standard deviation over the splits.
p(y|x) is the softmax over all 1008 outputs of the 2015-12-05 Inception graph (1000 ImageNet classes and 8 unused
ones) of the logits without the output bias, as OpenAI's reference code and ADA's `no_output_bias=True` take them."""

import numpy as np
import torch

from dnnlib.util import UserError
from metrics import metric_base


def inception_score(probs, num_splits):
    """(mean, std) over `num_splits` consecutive splits of class probabilities [N, classes], in float64."""
    probs = np.asarray(probs, np.float64)
    assert probs.ndim == 2 and len(probs) >= num_splits, f"expected probabilities [N >= {num_splits}, C]"
    n = len(probs)
    scores = []
    for i in range(num_splits):
        part = probs[i * n // num_splits:(i + 1) * n // num_splits]
        kl = part * (np.log(part) - np.log(np.mean(part, axis=0, keepdims=True)))
        scores.append(np.exp(np.mean(np.sum(kl, axis=1))))
    return float(np.mean(scores)), float(np.std(scores))


def compute_is(ctx, num_gen, num_splits, batch_size):
    """IS of `num_gen` generated images. Returns {'_mean': mean, '_std': std} on process 0, None on the others."""
    inception = ctx.net("inception")
    if inception.fc is None:
        raise UserError("the Inception weights have no output layer (fid-helper's default_1.pt): the Inception Score "
                        "needs pytorch-fid's or StyleGAN2-ADA's weights (--inception)")
    detector = metric_base.Detector("inception-probs", inception, lambda net, images: torch.softmax(
        net(images, output_bias=False)[1].to(torch.float64), dim=1))
    probs = metric_base.generator_features(ctx, detector, num_gen, batch_size)
    if ctx.rank != 0:
        return None
    mean, std = inception_score(probs, num_splits)
    return {"_mean": mean, "_std": std}
