"""LPIPS perceptual distance (Zhang et al. 2018, v0.1, VGG16), the distance NVIDIA's projector and metrics use.

The distance between two images: VGG16 features at relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3, each unit-
normalised over channels, squared differences weighted per channel by non-negative "lin" weights, averaged over
pixels and summed over the five taps.

Input convention. `LPIPS` takes images [N, 3, H, W] in [0, 255] by default, as NVIDIA's networks do (the
original projector and PPL scale [-1, 1] images by (x + 1) * 255 / 2 and box-downsample them to at most 256x256
before calling the network; stylegan2-ada-pytorch's vgg16.pt takes the same range). Pass `drange=(-1, 1)` for
images scaled like the `lpips` package's inputs. Nothing is resized here. Inside, the range is mapped to [0, 1] and
normalised with the ImageNet mean and std, which is exactly the `lpips` package's ScalingLayer applied to [-1, 1].

Weights, loaded by `load_lpips` from either source (both give the same module):
- NVIDIA's `vgg16_zhang_perceptual.pkl`, a TensorFlow-release network pickle read as data through the restricted
  unpickler: `LPIPS` is registered as its build function `lpips_network`, so the pickle also loads with
  `dnnlib.tflib.load_network_pkl` into a `Network` whose `get_output_for(images_a, images_b)` is the distance;
- torchvision's ImageNet `vgg16-397923af.pth` (keys `features.N.weight`) plus the lin weights of the `lpips`
  package (`lpips/weights/v0.1/vgg.pth`, keys `lin{i}.model.1.weight`), found in an installed `lpips` package
  without importing it (its import needs torchvision).

The pickle's layout, from its build-module source as published in the repository shawwn/stylegan-encoder (file
`vgg16_zhang_perceptual.py`; the pickle itself could not be downloaded to check): build function
`lpips_network(images_a, images_b, **kwargs)`, inputs NCHW in [0, 255], output [N]; variables `conv{i}/conv{i}`
[3, 3, in, out] and `conv{i}/bias{i}` [out] for the 13 convolutions (i = 1..13), and `perceptual_weight_{k}`
[1, 1, C, 1] for the five taps (k = 0..4); every variable starts at zero. Its max-pools use TensorFlow's 'SAME'
padding, which keeps the last row and column of odd-sized maps (ceil); torchvision's drop them (floor). The two
agree on even sizes such as 256.
That the pickle's weights are torchvision's VGG16 and the `lpips` v0.1 lin weights is inferred, not read: NVIDIA's
license notes say the pickle is derived from the LPIPS weights, and torch-fidelity's tests find NVIDIA's vgg16.pt
(the PyTorch port) equal to torchvision VGG16 + lpips v0.1 within 1e-5.
"""

import importlib.util
import os
import pickle
import urllib.parse

import torch
import torch.nn.functional as F
from torch import nn

import dnnlib
from dnnlib.ops import winograd
from dnnlib.tflib.network import Network, default_device, register_build_func
from dnnlib.tflib.network_pickle import load_network_pkl

ZHANG_PERCEPTUAL_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan/networks/metrics/vgg16_zhang_perceptual.pkl"
VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"

# VGG16's convolution stacks (output channels); each stack but the last ends in a max-pool and an LPIPS tap.
VGG16_STACKS = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]
TAP_CHANNELS = [stack[-1] for stack in VGG16_STACKS]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

_VGG16_HELP = ("pass a local copy instead (the --vgg16 option of the command-line tools): NVIDIA's "
               "vgg16_zhang_perceptual.pkl, or torchvision's vgg16-397923af.pth with the lpips package installed")
_LIN_HELP = "pass the path of the lpips package's lpips/weights/v0.1/vgg.pth"


class _Conv3x3(nn.Module):
    """One VGG16 convolution + ReLU, with the pickle's variable names (`conv{i}`, `bias{i}`) and TF weight layout."""

    def __init__(self, index, fmaps_in, fmaps_out):
        super().__init__()
        self.weight_name, self.bias_name = f"conv{index}", f"bias{index}"
        self.register_parameter(self.weight_name, nn.Parameter(torch.zeros(3, 3, fmaps_in, fmaps_out)))
        self.register_parameter(self.bias_name, nn.Parameter(torch.zeros(fmaps_out)))

    def forward(self, x):
        param, bias = getattr(self, self.weight_name), getattr(self, self.bias_name)
        weight = param.permute(3, 2, 0, 1)  # [k, k, in, out] -> [out, in, k, k]
        if winograd.usable(x, weight):  # CPU, weights frozen (projection): 2x faster, also in backward
            return F.relu(winograd.conv3x3(x, weight, key=param) + bias[:, None, None])
        return F.relu(F.conv2d(x, weight, bias, padding=1))


@register_build_func("lpips_network")
class LPIPS(nn.Module):
    """LPIPS v0.1 with VGG16: forward(images_a, images_b) -> [N] distances; see the module docstring.

    Built as NVIDIA's build function `lpips_network` builds it: every weight zero until loaded (`load_lpips`).
    `ceil_pool` keeps the last row/column of odd-sized maps when max-pooling, as the TensorFlow original does;
    False pools like torchvision and the `lpips` package. Other keyword arguments are ignored, as the original
    ignores them.
    """

    def __init__(self, ceil_pool=True, **_kwargs):
        super().__init__()
        self.ceil_pool = ceil_pool
        fmaps = [3] + [fmaps_out for stack in VGG16_STACKS for fmaps_out in stack]
        for index in range(1, len(fmaps)):
            self.add_module(f"conv{index}", _Conv3x3(index, fmaps[index - 1], fmaps[index]))
        for k, channels in enumerate(TAP_CHANNELS):
            self.register_parameter(f"perceptual_weight_{k}", nn.Parameter(torch.zeros(1, 1, channels, 1)))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

        self.input_names = ["images_a", "images_b"]
        self.input_shapes = [[None, 3, None, None], [None, 3, None, None]]
        self.output_names = ["distance"]
        self.output_shapes = [[None]]

    def convs(self):
        """The 13 convolutions, in order."""
        return [getattr(self, f"conv{index}") for index in range(1, 14)]

    def perceptual_weights(self):
        """The five per-channel weights, each [C]."""
        return [getattr(self, f"perceptual_weight_{k}").reshape(-1) for k in range(len(TAP_CHANNELS))]

    def taps(self, images, drange=(0, 255)):
        """VGG16 activations relu1_2 ... relu5_3 of images [N, 3, H, W] in `drange`."""
        assert images.ndim == 4 and images.shape[1] == 3, f"expected images [N, 3, H, W], got {list(images.shape)}"
        assert min(images.shape[2:]) >= 16, f"images must be at least 16x16 (VGG16 pools 4 times): {list(images.shape)}"
        low, high = drange
        x = (images.to(self.mean.dtype) - low) / (high - low)
        x = (x - self.mean) / self.std
        convs, taps = iter(self.convs()), []
        for stack in VGG16_STACKS:
            if taps:
                x = F.max_pool2d(x, 2, ceil_mode=self.ceil_pool)
            for _ in stack:
                x = next(convs)(x)
            taps.append(x)
        return taps

    def features(self, images, drange=(0, 255)):
        """LPIPS features [N, D] of images [N, 3, H, W] in `drange`: LPIPS(a, b) = distance(features(a), features(b)).

        Each tap is unit-normalised over channels and scaled by sqrt(weight / pixels), so the squared Euclidean
        distance of two feature vectors is the weighted, pixel-averaged LPIPS sum. Compute a target's features
        once and compare many images against them (the projector), or compare pairs (metrics)."""
        out = []
        for tap, weight in zip(self.taps(images, drange), self.perceptual_weights()):
            # vector_norm has a zero gradient where all channels are zero; sqrt(sum(x ** 2)) would give NaN there.
            unit = tap / (torch.linalg.vector_norm(tap, dim=1, keepdim=True) + 1e-10)
            scale = (weight / (tap.shape[2] * tap.shape[3])).sqrt().view(1, -1, 1, 1)
            out.append((unit * scale).flatten(1))
        return torch.cat(out, dim=1)

    @staticmethod
    def distance(features_a, features_b):
        """LPIPS distances [N] between feature batches [N, D] (either may be [1, D], compared with every row)."""
        assert features_a.ndim == 2 and features_b.ndim == 2 and features_a.shape[1] == features_b.shape[1], \
            f"feature batches {list(features_a.shape)} and {list(features_b.shape)} do not match"
        return (features_a - features_b).square().sum(dim=1)

    def forward(self, images_a, images_b, drange=(0, 255)):
        """LPIPS distances [N] between image batches [N, 3, H, W] in `drange`."""
        assert images_a.shape == images_b.shape, f"image batches differ: {list(images_a.shape)}, {list(images_b.shape)}"
        features_a, features_b = self.features(torch.cat([images_a, images_b]), drange).chunk(2)
        return self.distance(features_a, features_b)


# --------------------------------------------------------------------------------------------------------------------
# Loaders.


def load_lpips(vgg16=None, lin=None, cache_dir=None):
    """The LPIPS module with pretrained weights, in eval mode with frozen weights, on the default device.

    vgg16: NVIDIA's vgg16_zhang_perceptual.pkl (a name ending in .pkl), or torchvision's vgg16-397923af.pth (any
        other name, e.g. VGG16_URL); a local path or URL. Default: download NVIDIA's pickle (ZHANG_PERCEPTUAL_URL),
        as the original projector does.
    lin: for the torchvision file, the lpips package's lin weights (v0.1/vgg.pth, path or URL); default: the file
        inside the installed `lpips` package.
    Missing files and failed downloads raise UserError saying what to pass instead."""
    if vgg16 is None:
        vgg16 = ZHANG_PERCEPTUAL_URL
    vgg16 = os.fspath(vgg16)
    if urllib.parse.urlsplit(vgg16).path.lower().endswith(".pkl"):
        if lin is not None:
            raise dnnlib.util.UserError(f"{vgg16} is a network pickle with its own LPIPS weights: do not pass lin "
                                        "weights with it")
        model = _load_zhang_pkl(vgg16, cache_dir)
    else:
        model = _load_torchvision_and_lin(vgg16, lin, cache_dir)
    return model.to(default_device()).eval().requires_grad_(False)


def lpips_package_weights():
    """Path of lpips/weights/v0.1/vgg.pth in an installed `lpips` package, or None. The package is located, never
    imported (importing it needs torchvision)."""
    try:
        spec = importlib.util.find_spec("lpips")
    except (ImportError, ValueError):
        return None
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        path = os.path.join(root, "weights", "v0.1", "vgg.pth")
        if os.path.isfile(path):
            return path
    return None


def _open(path_or_url, what, how, cache_dir):
    """open_url, with its UserError prefixed by what was being loaded and followed by how to supply it."""
    try:
        return dnnlib.util.open_url(path_or_url, cache_dir=cache_dir)
    except dnnlib.util.UserError as err:
        raise dnnlib.util.UserError(f"cannot load {what}: {err}; {how}") from None


def _load_zhang_pkl(path_or_url, cache_dir):
    """LPIPS from a vgg16_zhang_perceptual.pkl-style network pickle, read as data (its source is never run)."""
    with _open(path_or_url, "the VGG16 perceptual network", _VGG16_HELP, cache_dir) as f:
        net = load_network_pkl(f, source=str(path_or_url))
    if not (isinstance(net, Network) and isinstance(net.module, LPIPS)):
        found = f"network '{net.name}'" if isinstance(net, Network) else type(net).__name__
        raise dnnlib.util.UserError(f"{path_or_url} is not an LPIPS network pickle like vgg16_zhang_perceptual.pkl "
                                    f"(build function lpips_network): it holds {found}")
    # The original initialises every variable to zero, so a zero variable is one the pickle did not hold.
    missing = [name for name, var in net.vars.items() if not var.tensor.any()]
    if missing:
        raise dnnlib.util.UserError(f"{path_or_url} lacks LPIPS variables: {_name_list(missing)}")
    _check_non_negative(net.module, path_or_url)
    return net.module


def _load_torchvision_and_lin(vgg16, lin, cache_dir):
    """LPIPS from torchvision's VGG16 ImageNet state dict and the lpips package's lin-layer state dict."""
    if lin is None:
        lin = lpips_package_weights()
        if lin is None:
            raise dnnlib.util.UserError("LPIPS needs the lin weights of the lpips package (lpips/weights/v0.1/vgg.pth) "
                                        "next to torchvision's VGG16: install the package (pip install --no-deps "
                                        "lpips==0.1.4) or pass the file's path; or use NVIDIA's "
                                        "vgg16_zhang_perceptual.pkl, which holds both")
    model = LPIPS(ceil_pool=False)  # the lpips package pools like torchvision
    state = _load_state_dict(vgg16, "torchvision's VGG16 weights (vgg16-397923af.pth)", _VGG16_HELP,
                             torchvision_conv_shapes(model), cache_dir, ignored_prefix="classifier.")
    copy_torchvision_convs(model, state)

    lin_shapes = {f"lin{k}.model.1.weight": (1, channels, 1, 1) for k, channels in enumerate(TAP_CHANNELS)}
    state = _load_state_dict(lin, "the LPIPS lin weights (lpips/weights/v0.1/vgg.pth)", _LIN_HELP, lin_shapes,
                             cache_dir)
    with torch.no_grad():
        for k, channels in enumerate(TAP_CHANNELS):
            getattr(model, f"perceptual_weight_{k}").copy_(state[f"lin{k}.model.1.weight"].reshape(1, 1, channels, 1))
    _check_non_negative(model, lin)
    return model


def _torchvision_conv_keys(model):
    """(conv, key prefix) of the 13 convolutions: torchvision's vgg16().features numbers its modules (conv, ReLU,
    pool) from 0, so the convolutions sit at 0, 2, 5, 7, 10, ..."""
    conv_at, index = [], 0
    for stack in VGG16_STACKS:
        conv_at += [index + 2 * j for j in range(len(stack))]
        index += 2 * len(stack) + 1
    return [(conv, f"features.{at}") for at, conv in zip(conv_at, model.convs())]


def torchvision_conv_shapes(model):
    """{key: shape} of the convolution weights and biases in torchvision's VGG16 state dict."""
    shapes = {}
    for conv, key in _torchvision_conv_keys(model):
        kh, kw, fmaps_in, fmaps_out = getattr(conv, conv.weight_name).shape
        shapes[f"{key}.weight"] = (fmaps_out, fmaps_in, kh, kw)
        shapes[f"{key}.bias"] = (fmaps_out,)
    return shapes


def copy_torchvision_convs(model, state):
    """Copy the convolutions of a torchvision VGG16 state dict into an LPIPS module (OIHW -> TF's HWIO layout)."""
    with torch.no_grad():
        for conv, key in _torchvision_conv_keys(model):
            getattr(conv, conv.weight_name).copy_(state[f"{key}.weight"].permute(2, 3, 1, 0))
            getattr(conv, conv.bias_name).copy_(state[f"{key}.bias"])


def _load_state_dict(path_or_url, what, how, shapes, cache_dir, ignored_prefix=None):
    """A state dict holding exactly the keys and shapes of `shapes` (plus any keys under `ignored_prefix`), loaded
    with weights_only=True; anything else is a UserError naming the offending keys."""
    with _open(path_or_url, what, how, cache_dir) as f:
        try:
            state = torch.load(f, map_location="cpu", weights_only=True)
        except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError) as err:
            # Only torch's first sentence: the rest suggests weights_only=False, which would run code from the file.
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0].split(". ")[0].rstrip(".")
            raise dnnlib.util.UserError(f"cannot load {what}: {path_or_url} is not a PyTorch weights file "
                                        f"({reason})") from None
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise dnnlib.util.UserError(f"cannot load {what}: {path_or_url} is not a state dict of tensors")
    problems = []
    missing = [key for key in shapes if key not in state]
    unexpected = [key for key in state if key not in shapes and not (ignored_prefix and key.startswith(ignored_prefix))]
    wrong = [f"{key} {list(state[key].shape)} (expected {list(shapes[key])})" for key in shapes
             if key in state and tuple(state[key].shape) != shapes[key]]
    for label, names in [("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)]:
        if names:
            problems.append(f"{label}: {_name_list(names)}")
    if problems:
        raise dnnlib.util.UserError(f"{path_or_url} does not hold {what}: {'; '.join(problems)}")
    return state


def _check_non_negative(model, source):
    """LPIPS weights are non-negative by construction (their training clamps them); features() takes their root."""
    negative = [f"perceptual_weight_{k}" for k, weight in enumerate(model.perceptual_weights()) if (weight < 0).any()]
    if negative:
        raise dnnlib.util.UserError(f"{source}: LPIPS weights must be non-negative, but {_name_list(negative)} "
                                    "have negative entries")


def _name_list(names, limit=8):
    """'a, b, c' for error messages, shortened after `limit` names."""
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
