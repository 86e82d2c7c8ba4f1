"""Mixed precision (StyleGAN2-ADA style): float16 blocks on GPUs only, and activation clamping.

There is no GPU here, so the float16 path is checked on the CPU by letting the blocks pick float16 on any device
(torch runs float16 convolutions on the CPU, slowly) and comparing with float32."""

import numpy as np
import pytest
import torch

import dnnlib.ops

from dnnlib.tflib.network import Network
from training import networks_stylegan2 as nets

KWARGS = dict(resolution=32, num_channels=3, fmap_base=256, fmap_max=32)


def build(**kwargs):
    torch.manual_seed(0)
    G = Network("G", func_name="training.networks_stylegan2.G_main", latent_size=32, dlatent_size=32,
                mapping_fmaps=32, mapping_layers=2, **KWARGS, **kwargs)
    D = Network("D", func_name="training.networks_stylegan2.D_stylegan2", **KWARGS, **kwargs)
    with torch.no_grad():  # non-zero biases and noise strengths, so that every variable matters
        for net in (G, D):
            for var in net.trainables.values():
                if var.tensor.abs().sum() == 0:
                    var.tensor.normal_(0, 0.3)
    return G, D


def outputs(G, D):
    z = torch.from_numpy(np.random.RandomState(1).randn(4, 32).astype(np.float32))
    with torch.no_grad():
        images = G.module(z, None, truncation_psi=1, randomize_noise=False)
        return images, D.module(images)


def test_fp16_blocks_are_float32_on_the_cpu():
    reference = outputs(*build())
    mixed = outputs(*build(num_fp16_res=2, conv_clamp=None))
    for a, b in zip(reference, mixed):
        assert torch.equal(a, b)


def test_fp16_resolutions():
    assert list(nets.fp16_resolutions(10, 4)) == [7, 8, 9, 10]  # 1024: 128 and up, as ADA's num_fp16_res=4
    assert list(nets.fp16_resolutions(4, 4)) == [3, 4]  # never below 8x8
    assert list(nets.fp16_resolutions(10, 0)) == []


@pytest.mark.parametrize("fused", [True, False])
def test_fp16_path_matches_fp32(monkeypatch, fused):
    G, D = build(num_fp16_res=2, conv_clamp=256)
    reference = outputs(G, D)
    monkeypatch.setattr(nets, "block_dtype", lambda use_fp16, device: torch.float16 if use_fp16 else torch.float32)
    G.module.synthesis.fused_modconv = fused
    for block in G.module.synthesis.children():
        for layer in block.children():
            if isinstance(layer, nets.ModulatedConv2dLayer):
                layer.fused_modconv = fused
    images, scores = outputs(G, D)
    assert images.dtype == scores.dtype == torch.float32
    torch.testing.assert_close(images, reference[0], rtol=0, atol=2e-2 * reference[0].abs().max().item())
    torch.testing.assert_close(scores, reference[1], rtol=2e-2, atol=2e-2)


def test_conv_clamp_bounds_activations():
    x = torch.randn(2, 8, 8, 8) * 100
    layer = nets.Conv2dLayer(8, 8, 3, act="lrelu", conv_clamp=0.5)
    with torch.no_grad():
        layer.bias.normal_()
        assert layer(x).abs().max() <= 0.5
    modulated = nets.ModulatedConv2dLayer(8, 8, 3, dlatent_size=4, conv_clamp=0.5)
    with torch.no_grad():
        assert modulated(x, torch.randn(2, 4)).abs().max() <= 0.5
    # A clamp no activation reaches changes nothing; a tight one changes the images.
    reference = outputs(*build())
    assert torch.equal(outputs(*build(conv_clamp=1e9))[0], reference[0])
    assert not torch.allclose(outputs(*build(conv_clamp=0.01))[0], reference[0])


def layer_outputs(G, z):
    """Each synthesis ModulatedConv2dLayer's output (by name) in one forward pass."""
    outs, hooks = {}, []
    for name, layer in G.module.synthesis.named_modules():
        if isinstance(layer, nets.ModulatedConv2dLayer):
            hooks.append(layer.register_forward_hook(lambda _m, _i, out, name=name: outs.__setitem__(name, out)))
    with torch.no_grad():
        images = G.module(z, None, truncation_psi=1, randomize_noise=False)
    for hook in hooks:
        hook.remove()
    return images, outs


def test_forced_fp16_runs_the_highest_resolutions_in_float16_with_a_clamp(monkeypatch):
    """--precision fp16 on a network trained without it (num_fp16_res 0, no clamp): the forced blocks run in
    float16 with their activations clamped, the others as before; images stay near float32's."""
    G, _ = build()
    z = torch.from_numpy(np.random.RandomState(1).randn(4, 32).astype(np.float32))
    reference, reference_outs = layer_outputs(G, z)
    monkeypatch.setattr(nets, "block_dtype", lambda use_fp16, device: torch.float16 if use_fp16 else torch.float32)
    with dnnlib.ops.forcing_fp16(num_fp16_res=2, conv_clamp=256):
        images, outs = layer_outputs(G, z)
    assert images.dtype == torch.float32
    torch.testing.assert_close(images, reference, rtol=0, atol=2e-2 * reference.abs().max().item())
    forced = {name for name in outs if name.startswith(("16x16", "32x32"))}
    assert forced and all(outs[name].dtype == torch.float16 for name in forced)
    assert all(outs[name].dtype == torch.float32 for name in set(outs) - forced)
    assert all(torch.equal(outs[name], reference_outs[name]) for name in set(outs) - forced)

    with dnnlib.ops.forcing_fp16(num_fp16_res=2, conv_clamp=0.05):
        tight, outs = layer_outputs(G, z)
    assert all(outs[name].abs().max() <= 0.05 for name in forced)
    assert any(outs[name].abs().max() > 0.05 for name in set(outs) - forced)
    assert not torch.allclose(tight, reference, atol=1e-2)
    assert dnnlib.ops.forced_fp16() is None  # the context restores the network's own settings
    torch.testing.assert_close(layer_outputs(G, z)[0], reference, rtol=0, atol=0)


def test_a_layers_own_clamp_wins_over_the_forced_one():
    layer = nets.ModulatedConv2dLayer(8, 8, 3, dlatent_size=4, conv_clamp=0.5)
    x, w = torch.randn(2, 8, 8, 8) * 100, torch.randn(2, 4)
    with torch.no_grad():
        assert torch.equal(layer(x, w, conv_clamp=1e-3), layer(x, w))
        layer.conv_clamp = None
        assert layer(x, w, conv_clamp=1e-3).abs().max() <= 1e-3


@pytest.mark.parametrize("name", ["tf32", "fp16"])
def test_gpu_precisions_are_refused_on_the_cpu(name):
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        dnnlib.ops.precision(name, torch.device("cpu"))
    with pytest.raises(ValueError, match="unknown precision"):
        dnnlib.ops.precision("fp8", torch.device("cpu"))


def test_cuda_tf32_sets_and_restores_both_flags():
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = matmul.allow_tf32, cudnn.allow_tf32
    for enabled in (True, False):
        with dnnlib.ops.cuda_tf32(enabled):
            assert matmul.allow_tf32 is enabled and cudnn.allow_tf32 is enabled
        assert (matmul.allow_tf32, cudnn.allow_tf32) == saved


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_precisions_stay_near_the_cpus_float32():
    """On a GPU: --precision fp32 (TF32 off) gives the CPU's images to float rounding; tf32 and fp16 stay close."""
    G, _ = build()
    z = torch.from_numpy(np.random.RandomState(1).randn(8, 32).astype(np.float32))
    reference = layer_outputs(G, z)[0]
    G.module.cuda()
    cuda = torch.device("cuda")
    scale = reference.abs().max().item()
    for name, tolerance in [("fp32", 1e-4), ("tf32", 2e-2), ("fp16", 2e-2)]:
        if name == "tf32" and torch.cuda.get_device_capability()[0] < 8:
            continue
        with dnnlib.ops.precision(name, cuda):
            images = layer_outputs(G, z.cuda())[0].cpu()
        torch.testing.assert_close(images, reference, rtol=0, atol=tolerance * scale, msg=name)


def test_compute_mode_autotunes_cudnn_on_gpus_only():
    saved = torch.backends.cudnn.benchmark
    with dnnlib.ops.compute_mode("fp32", False, torch.device("cpu")):
        assert torch.backends.cudnn.benchmark == saved
    with dnnlib.ops._cudnn_benchmark(True):  # what compute_mode enters on a CUDA device
        assert torch.backends.cudnn.benchmark
    assert torch.backends.cudnn.benchmark == saved
