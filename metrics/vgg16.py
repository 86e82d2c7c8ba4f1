"""VGG16 up to its second fully connected layer: the 4096-d features of the precision/recall metric.

Kynkäänniemi et al. (2019) and NVIDIA's implementations (StyleGAN2's `vgg16.pkl`, StyleGAN2-ADA's `vgg16.pt` with
`return_features=True`) embed images with ImageNet VGG16's fc2 layer after its ReLU. As in ADA's network (per a
published transcription of its TorchScript code, genforce's `perceptual_model.py`; NVIDIA's file could not be
downloaded here), images in [0, 255] are resized to 224x224 with TensorFlow 1's bilinear resize (output pixel i
samples the input at i * in / 224), scaled to [0, 1] and normalised with the ImageNet mean and standard deviation,
then run through the 13 convolutions, the last max-pool, fc1 + ReLU and fc2 + ReLU (dropout off).

Weights: torchvision's ImageNet `vgg16-397923af.pth` (keys `features.N.*`, `classifier.0.*`, `classifier.3.*`; the
1000-way `classifier.6` is not needed). That these are the weights of NVIDIA's files is inferred, not checked: the
convolutions of NVIDIA's vgg16.pt equal torchvision's within 1e-5 (torch-fidelity's tests), its fully connected
layers were not compared. NVIDIA's `vgg16_zhang_perceptual.pkl` (LPIPS) has no fully connected layers, and its
TensorFlow `vgg16.pkl` has no published source to rebuild it from.
"""

import os

import torch
import torch.nn.functional as F
from torch import nn

import dnnlib
from dnnlib.tflib.network import default_device
from metrics.inception import resize_tf_bilinear
from training.lpips import LPIPS, VGG16_URL, _load_state_dict, copy_torchvision_convs, torchvision_conv_shapes

INPUT_SIZE = 224
FEATURE_DIM = 4096
_HELP = "pass a local copy of torchvision's vgg16-397923af.pth with --vgg16"


class VGG16Features(nn.Module):
    """forward(images [N, 3, H, W] in [0, 255]) -> fc2 features [N, 4096] (after the ReLU). Every weight is zero
    until loaded (`load_vgg16`), as in LPIPS, whose convolutions it uses: no time spent on a random init of 119M
    weights that are overwritten at once."""

    def __init__(self):
        super().__init__()
        self.convs = LPIPS(ceil_pool=False)  # the 13 convolutions and the ImageNet normalisation (its taps)
        self.fc1 = nn.utils.skip_init(nn.Linear, 512 * 7 * 7, FEATURE_DIM)
        self.fc2 = nn.utils.skip_init(nn.Linear, FEATURE_DIM, FEATURE_DIM)
        for param in (*self.fc1.parameters(), *self.fc2.parameters()):
            nn.init.zeros_(param)

    def forward(self, images):
        assert images.ndim == 4 and images.shape[1] == 3, f"expected images [N, 3, H, W], got {list(images.shape)}"
        x = images.to(torch.float32)
        if tuple(x.shape[2:]) != (INPUT_SIZE, INPUT_SIZE):
            x = resize_tf_bilinear(x, (INPUT_SIZE, INPUT_SIZE))
        x = F.max_pool2d(self.convs.taps(x)[-1], 2)  # relu5_3 -> pool5 [N, 512, 7, 7]
        x = F.relu(self.fc1(x.flatten(1)))
        return F.relu(self.fc2(x))


def load_vgg16(path_or_url=None, cache_dir=None):
    """VGG16Features with torchvision's weights (a path or URL; default: torchvision's download), frozen, in eval
    mode, on the default device. Other files raise a one-line UserError."""
    source = VGG16_URL if path_or_url is None else os.fspath(path_or_url)
    if source.lower().endswith(".pkl"):
        raise dnnlib.util.UserError(f"{source}: precision/recall needs VGG16 with its fully connected layers, which "
                                    f"a network pickle such as vgg16_zhang_perceptual.pkl lacks; {_HELP}")
    model = VGG16Features()
    shapes = torchvision_conv_shapes(model.convs)
    for index, layer in ((0, model.fc1), (3, model.fc2)):
        shapes[f"classifier.{index}.weight"] = tuple(layer.weight.shape)
        shapes[f"classifier.{index}.bias"] = tuple(layer.bias.shape)
    state = _load_state_dict(source, "torchvision's VGG16 weights (vgg16-397923af.pth)", _HELP, shapes, cache_dir,
                             ignored_prefix="classifier.6.")
    copy_torchvision_convs(model.convs, state)
    with torch.no_grad():
        for index, layer in ((0, model.fc1), (3, model.fc2)):
            layer.weight.copy_(state[f"classifier.{index}.weight"])
            layer.bias.copy_(state[f"classifier.{index}.bias"])
    return model.to(default_device()).eval().requires_grad_(False)
