"""Custom ops: fused bias + activation and upfirdn2d resampling, each with a
plain PyTorch reference path and an optional CUDA plugin built on first use.

Use the submodules: `from dnnlib.ops import bias_act, upfirdn2d`.
"""
