"""Our training losses and augmentations against NVIDIA's own: one step of each phase gives the gradients of
stylegan2-ada-pytorch's StyleGAN2Loss on the same weights and inputs, and our AugmentPipe gives its AugmentPipe's
images from the same RNG state.

Needs a checkout of NVlabs/stylegan2-ada-pytorch or NVlabs/stylegan3 (its Python files are enough), named by
STYLEGAN2_PEER=PATH; skipped without one. Both sides load one official-format pickle, the peer through its own
`legacy.load_network_pkl`. To compare gradients parameter by parameter, ours are written into a copy of our
networks as if they were weights and loaded the same way, so the peer's converter lays them out as its own."""

import importlib
import os

import numpy as np
import pytest
import torch

from bench.common import peer_checkout_problem, peer_imports
from dnnlib.tflib.network import Network
from dnnlib.tflib.network_pickle import save_network_pkl
from training import training_loop as tl
from training.augment import AugmentPipe, augpipe_specs
from training.loss import StyleGAN2Loss, random_inputs

PEER = os.environ.get("STYLEGAN2_PEER", "")
pytestmark = pytest.mark.skipif(not PEER or peer_checkout_problem(PEER) is not None,
                                reason="set STYLEGAN2_PEER to a stylegan2-ada-pytorch or stylegan3 checkout")

BATCH, R1_GAMMA, PL_WEIGHT = 4, 3.0, 2.0


def peer_load(path):
    with peer_imports(PEER):
        legacy = importlib.import_module("legacy")
        with open(path, "rb") as f:
            return legacy.load_network_pkl(f)


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    """Ours (G, D) and the peer's (G, D, loss class) with the same weights; noise strengths and biases nonzero."""
    torch.manual_seed(1)
    kwargs = dict(resolution=16, num_channels=3, label_size=0, fmap_base=64, fmap_max=16)
    G = Network("G", func_name="training.networks_stylegan2.G_main", mapping_layers=2, latent_size=16,
                dlatent_size=16, mapping_fmaps=16, **kwargs)
    D = Network("D", func_name="training.networks_stylegan2.D_stylegan2", mbstd_group_size=2, **kwargs)
    with torch.no_grad():
        for name, p in list(G.module.named_parameters()) + list(D.module.named_parameters()):
            if p.ndim <= 1:
                p.add_(torch.randn_like(p) * 0.1)
    path = tmp_path_factory.mktemp("peer") / "nets.pkl"
    save_network_pkl((G, D, G.clone("Gs")), str(path))
    peer = peer_load(path)
    with peer_imports(PEER):
        loss_class = importlib.import_module("training.loss").StyleGAN2Loss
    pG, pD = peer["G"].train(), peer["D"].train()
    synthesis = pG.synthesis.forward  # the stored noise on both sides
    pG.synthesis.forward = lambda ws, **kw: synthesis(ws, **dict(kw, noise_mode="const"))
    return G, D, pG, pD, loss_class, path.parent


def grads_in_peer_layout(ours, which, G, D, folder):
    """Our network's gradients as the peer's converter lays them out (it adds 1 to TF's mod_bias: undone)."""
    holder = ours.clone()
    with torch.no_grad():
        for p, q in zip(holder.module.parameters(), ours.module.parameters()):
            p.copy_(torch.zeros_like(q) if q.grad is None else q.grad)
    path = str(folder / "grads.pkl")
    save_network_pkl((holder, D, G) if which == "G" else (G, holder, G), path)
    net = peer_load(path)[which]
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("affine.bias"):
                p.sub_(1)
    return dict(net.named_parameters())


def assert_same_gradients(ours, peer_net, which, G, D, folder, rtol):
    mine = grads_in_peer_layout(ours, which, G, D, folder)
    for name, p in peer_net.named_parameters():
        theirs = torch.zeros_like(p) if p.grad is None else p.grad
        scale = max(theirs.abs().max().item(), 1e-6)
        assert (mine[name] - theirs).abs().max().item() <= rtol * scale, name


@pytest.mark.parametrize("phase", ["Gmain", "Greg", "Dmain", "Dreg"])
def test_one_step_of_each_phase_matches_the_peer(nets, phase):
    G, D, pG, pD, loss_class, folder = nets
    torch.manual_seed(5)
    z, reals = torch.randn(BATCH, 16), torch.randn(BATCH, 3, 16, 16)
    c = torch.zeros(BATCH, 0)
    for net in (G.module, D.module, pG, pD):
        net.zero_grad(set_to_none=True)
    train_g = phase.startswith("G")
    for ours_net, peer_net, flag in ((G.module, pG, train_g), (D.module, pD, not train_g)):
        ours_net.requires_grad_(flag)
        peer_net.requires_grad_(flag)
    peer_loss = loss_class("cpu", pG, pD, r1_gamma=R1_GAMMA, style_mixing_prob=0, pl_weight=PL_WEIGHT)
    loss = StyleGAN2Loss(G, D, r1_gamma=R1_GAMMA, pl_weight=PL_WEIGHT, style_mixing_prob=0)
    gain = dict(Gmain=1, Greg=4, Dmain=1, Dreg=16)[phase]
    torch.manual_seed(7)  # the peer's path-length noise: its first draw after G runs
    peer_loss.accumulate_gradients(phase, reals, c, z, c, gain=gain, cur_nimg=0)

    def inputs(n):
        x = random_inputs(G, n, torch.Generator(), "cpu", style_mixing_prob=0)
        x.latents = z[:n]
        x.noise = [getattr(G.module.synthesis, f"noise{i}").expand(n, -1, -1, -1) for i in range(len(x.noise))]
        return x

    if phase == "Gmain":
        (loss.G_main(inputs(BATCH), None)[0].sum() / BATCH).backward()
    elif phase == "Greg":
        n = BATCH // 2
        torch.manual_seed(7)
        pl_noise = torch.randn([n, 3, 16, 16]) / np.sqrt(16 * 16)
        mean_length, _ = tl.accumulate_path_length(loss, inputs(n), None, pl_noise, tl.my_rounds(n, n, 0, 1), n,
                                                   gain, tl.Accumulator())
        loss.update_pl_mean(mean_length)
        torch.testing.assert_close(loss.pl_mean, peer_loss.pl_mean, rtol=1e-5, atol=0)
    elif phase == "Dmain":
        (loss.D_main(reals, None, inputs(BATCH), None)[0].sum() / BATCH).backward()
    else:
        tl.accumulate_r1(loss, [(reals, None)], gain, BATCH, tl.Accumulator())
    # R1's bias gradients come only through minibatch-stddev's second derivative: small values, more rounding.
    rtol = 2e-3 if phase == "Dreg" else 1e-4
    which = "G" if train_g else "D"
    assert_same_gradients(G if train_g else D, pG if train_g else pD, which, G, D, folder, rtol)


AUGMENTATIONS = ["xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness", "contrast",
                 "lumaflip", "hue", "saturation", "imgfilter", "noise", "cutout"]
AUGMENT_CASES = {name: {name: 1} for name in AUGMENTATIONS}
AUGMENT_CASES.update(bgc=augpipe_specs["bgc"], bgcfnc=augpipe_specs["bgcfnc"])


@pytest.fixture(scope="module")
def peer_pipes():
    with peer_imports(PEER):  # persistent classes: made while the peer's modules are importable
        pipe_class = importlib.import_module("training.augment").AugmentPipe
        return {name: pipe_class(**kwargs) for name, kwargs in AUGMENT_CASES.items()}


@pytest.mark.parametrize("name", list(AUGMENT_CASES))
def test_augmentation_matches_the_peer(peer_pipes, name):
    """Same draws in the same order: the same images for a given seed, at any p and at debug percentiles."""
    ours, theirs = AugmentPipe(**AUGMENT_CASES[name]), peer_pipes[name]
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for p in (1.0, 0.5):
        ours.p.fill_(p)
        theirs.p.fill_(p)
        torch.manual_seed(3)
        expected = theirs(x)
        torch.manual_seed(3)
        torch.testing.assert_close(ours(x), expected, rtol=1e-4, atol=1e-4)
    for q in (0.1, 0.6, 0.9):
        torch.manual_seed(4)
        expected = theirs(x, debug_percentile=q)
        torch.manual_seed(4)
        torch.testing.assert_close(ours(x, debug_percentile=q), expected, rtol=1e-4, atol=1e-4)
