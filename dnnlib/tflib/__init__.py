"""Compatibility layer for scripts written against the original `dnnlib.tflib` (TensorFlow), running on PyTorch."""

from .tfutil import (init_tf, assert_tf_initialized, is_tf_expression, run, set_vars, lerp,
                     convert_images_to_uint8, convert_images_from_uint8)
from .network import Network, Variable, register_build_func
from .network_pickle import load_network_pkl, save_network_pkl
