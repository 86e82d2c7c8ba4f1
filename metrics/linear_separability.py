"""Linear separability (LS, StyleGAN, Karras et al. 2019) as StyleGAN2's linear_separability.py computes it.

Generated images (no truncation) are labelled by the 40 CelebA-HQ attribute classifiers (NVIDIA's StyleGAN1
networks, one pickle per attribute, read as data through our restricted unpickler): a classifier's logit l gives
the probabilities softmax([l, -l]). Per attribute, the `num_keep` most confident of `num_samples` images are kept,
a linear SVM (metrics/linear_svm.py) is fitted to predict the label from the image's z, and one from its w (the
mapping output of the last layer), and the conditional entropy H(label | SVM prediction) in bits is measured on the
same samples. The scores are 2 ** (sum over attributes of those entropies), `_z` and `_w`: lower is more
separable. Images above 256x256 are box-downsampled to it, as the classifiers were built for 256x256.

One difference: the original generates the images of a conditional network with zero labels (it passes no labels
to the full network but the drawn ones to the mapping for w); here both use the drawn labels.
"""

import os

import numpy as np
import torch

import dnnlib
from dnnlib.tflib.network import Network
from dnnlib.tflib.network_pickle import load_network_pkl
from metrics import linear_svm, metric_base

CLASSIFIER_URL_ROOT = "https://nvlabs-fi-cdn.nvidia.com/stylegan/networks/metrics/"
ATTRIBUTES = ["male", "smiling", "attractive", "wavy-hair", "young", "5-o-clock-shadow", "arched-eyebrows",
              "bags-under-eyes", "bald", "bangs", "big-lips", "big-nose", "black-hair", "blond-hair", "blurry",
              "brown-hair", "bushy-eyebrows", "chubby", "double-chin", "eyeglasses", "goatee", "gray-hair",
              "heavy-makeup", "high-cheekbones", "mouth-slightly-open", "mustache", "narrow-eyes", "no-beard",
              "oval-face", "pale-skin", "pointy-nose", "receding-hairline", "rosy-cheeks", "sideburns",
              "straight-hair", "wearing-earrings", "wearing-hat", "wearing-lipstick", "wearing-necklace",
              "wearing-necktie"]
CLASSIFIER_SIZE = 256


def classifier_file(index):
    """'celebahq-classifier-00-male.pkl' ..., the original file names."""
    return f"celebahq-classifier-{index:02d}-{ATTRIBUTES[index]}.pkl"


def load_classifiers(root=None, cache_dir=None):
    """The 40 attribute classifiers (Networks, images [N, C, H, W] in [-1, 1] -> logits [N, 1]) from a folder or URL
    root (default: NVIDIA's). A missing or unusable file raises a one-line UserError."""
    root = CLASSIFIER_URL_ROOT if root is None else os.fspath(root)
    classifiers = []
    for index in range(len(ATTRIBUTES)):
        name = classifier_file(index)
        source = root.rstrip("/") + "/" + name if dnnlib.util.is_url(root) else os.path.join(root, name)
        try:
            with dnnlib.util.open_url(source, cache_dir=cache_dir) as f:
                net = load_network_pkl(f, source=source)
        except dnnlib.util.UserError as err:
            raise dnnlib.util.UserError(f"cannot load the ls attribute classifier {name} ({err}); pass --classifiers "
                                        "with a folder of the 40 celebahq-classifier-NN-<attribute>.pkl files") \
                from None
        if not (isinstance(net, Network) and len(net.input_shape) == 4 and list(net.output_shape[1:]) == [1]):
            raise dnnlib.util.UserError(f"{source} is not an attribute classifier: expected one network mapping "
                                        "images to [N, 1] logits")
        classifiers.append(net)
    return classifiers


def conditional_entropy(p):
    """H(Y | X) in bits of a joint distribution p [X, Y] (normalised here), never below 0."""
    p = np.asarray(p, np.float64)
    assert p.ndim == 2
    p = p / p.sum()
    px, py = p.sum(axis=1, keepdims=True), p.sum(axis=0, keepdims=True)
    nz = p > 0
    mutual_information = (p[nz] * np.log2(p[nz] / (px @ py)[nz])).sum()
    h_y = -(py[py > 0] * np.log2(py[py > 0])).sum()
    return max(0.0, h_y - mutual_information)


def classify(ctx, classifiers, indices):
    """z, w (last layer's) and attribute probabilities [N, A, 2] of generated items `indices`."""
    z, labels, noise = metric_base.generator_inputs(ctx, indices)
    images, dlatents = ctx.Gs.get_output_for(z, labels, truncation_psi=None, noise_inputs=noise, return_dlatents=True)
    factor = images.shape[2] // CLASSIFIER_SIZE
    if factor > 1:
        n, c, h, w = images.shape
        images = images.reshape(n, c, h // factor, factor, w // factor, factor).mean(dim=[3, 5])
    probs = []
    for net in classifiers:
        if list(net.input_shape[1:]) != list(images.shape[1:]):
            raise dnnlib.util.UserError(f"the attribute classifiers take {net.input_shape[1:]} images, but the "
                                        f"generator's are {list(images.shape[1:])} (after downsampling to 256)")
        logits = net.get_output_for(images.to(torch.float32), None)
        probs.append(torch.softmax(torch.cat([logits, -logits], dim=1), dim=1))
    return dict(z=z, w=dlatents[:, -1], p=torch.stack(probs, dim=1))


def separability(latents, probs, num_keep):
    """Conditional entropy of one attribute: its probabilities [N, 2], the latents [N, D] the SVM sees."""
    keep = np.argsort(-probs.max(axis=1), kind="stable")[:num_keep]
    targets = probs[keep].argmax(axis=1)
    inputs = latents[keep]
    if len(np.unique(targets)) < 2:  # the original's LinearSVC fails on one class; it then counts it as perfect
        outputs = targets
    else:
        outputs = linear_svm.predict(*linear_svm.fit_linear_svm(inputs, targets), inputs)
    joint = [[np.mean((outputs == row) & (targets == col)) for col in (0, 1)] for row in (0, 1)]
    return conditional_entropy(joint)


def compute_ls(ctx, num_samples, num_keep, attrib_indices, batch_size):
    """LS over `num_samples` generated images with the classifiers `attrib_indices`. Returns {'_z': ..., '_w': ...}
    on process 0, None on the others."""
    assert num_keep <= num_samples
    classifiers = [ctx.net("classifiers")[index] for index in attrib_indices]
    out = metric_base.map_batches(ctx, num_samples, batch_size, lambda indices: classify(ctx, classifiers, indices),
                                  "attributes of generated images")
    if out is None:
        return None
    entropies = {space: sum(separability(out[space], out["p"][:, a], num_keep) for a in range(len(classifiers)))
                 for space in ("z", "w")}
    return {"_z": 2.0 ** entropies["z"], "_w": 2.0 ** entropies["w"]}
