"""The helpers of the original `dnnlib.tflib.tfutil` that still mean something without TensorFlow.

Scripts written for the TensorFlow release call `tflib.init_tf()`, `tflib.run(...)`, `tflib.set_vars({...})` and
pass `tflib.convert_images_to_uint8` as an output transform; these functions let such scripts run unchanged on
PyTorch tensors and `Variable` handles (see network.py).
"""

import numpy as np
import torch


def init_tf(config_dict: dict = None) -> None:
    """There is no TensorFlow session to create; only the original's random-seed options are honoured."""
    cfg = dict(config_dict or {})
    seed = cfg.get("rnd.np_random_seed")
    if seed is not None:
        np.random.seed(seed)
        torch.manual_seed(seed)


def assert_tf_initialized() -> None:
    """Always initialised: kept so that scripts calling it keep working."""


def is_tf_expression(x) -> bool:
    """The counterpart of a TensorFlow expression here is a torch tensor or a network `Variable`."""
    from .network import Variable
    return isinstance(x, (torch.Tensor, Variable))


def _to_numpy(x):
    from .network import Variable
    if isinstance(x, Variable):
        return x.eval()
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return x


def run(fetches, feed_dict=None):
    """Evaluate variables or tensors (a single one, a list/tuple or a dict of them) to NumPy arrays."""
    assert feed_dict is None, "feed_dict has no meaning without a TensorFlow graph"
    if isinstance(fetches, dict):
        return {key: _to_numpy(value) for key, value in fetches.items()}
    if isinstance(fetches, (list, tuple)):
        return type(fetches)(_to_numpy(x) for x in fetches)
    return _to_numpy(fetches)


def set_vars(var_to_value_dict: dict) -> None:
    """Assign NumPy values to network `Variable`s, like the original `tflib.set_vars`."""
    for var, value in var_to_value_dict.items():
        var.assign(value)


def lerp(a, b, t):
    """Linear interpolation a + (b - a) * t."""
    return a + (b - a) * t


def convert_images_to_uint8(images, drange=(-1, 1), nchw_to_nhwc=False, shrink=1, uint8_cast=True):
    """Map images from `drange` to [0, 255] exactly as the original: x * scale + (0.5 - lo * scale), then clip and
    truncate to uint8 (TensorFlow's saturate_cast). Accepts torch tensors (an output transform) or NumPy arrays."""
    is_numpy = isinstance(images, np.ndarray)
    x = torch.as_tensor(images).to(torch.float32)
    if shrink > 1:
        x = torch.nn.functional.avg_pool2d(x, kernel_size=shrink, stride=shrink)
    if nchw_to_nhwc:
        x = x.permute(0, 2, 3, 1)
    scale = 255 / (drange[1] - drange[0])
    x = x * scale + (0.5 - drange[0] * scale)
    if uint8_cast:
        x = x.clamp(0, 255).to(torch.uint8)  # float -> integer conversion truncates toward zero, like TF
    return x.numpy() if is_numpy else x


def convert_images_from_uint8(images, drange=(-1, 1), nhwc_to_nchw=False):
    """Inverse of convert_images_to_uint8 (without the rounding): uint8 images to float32 in `drange`."""
    is_numpy = isinstance(images, np.ndarray)
    x = torch.as_tensor(images).to(torch.float32)
    if nhwc_to_nchw:
        x = x.permute(0, 3, 1, 2)
    x = x * ((drange[1] - drange[0]) / 255) + drange[0]
    return x.numpy() if is_numpy else x
