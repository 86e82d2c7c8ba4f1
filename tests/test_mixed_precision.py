"""Mixed precision (StyleGAN2-ADA style): float16 blocks on GPUs only, and activation clamping.

There is no GPU here, so the float16 path is checked on the CPU by letting the blocks pick float16 on any device
(torch runs float16 convolutions on the CPU, slowly) and comparing with float32."""

import numpy as np
import pytest
import torch

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
