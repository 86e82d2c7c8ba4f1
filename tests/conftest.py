"""Shared fixtures: small StyleGAN2 networks and pickles of them, built here (no downloads)."""

import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

# A config-f-like network scaled down: 32x32, 3 blocks, 32-d latents.
SMALL_G_KWARGS = dict(resolution=32, num_channels=3, label_size=0, fmap_base=256, fmap_max=64, latent_size=32,
                      dlatent_size=32, mapping_fmaps=32, mapping_layers=4)


def make_networks(**overrides):
    """(G, D, Gs) built the way the original training loop builds them."""
    import torch
    from dnnlib.tflib.network import Network
    kwargs = dict(SMALL_G_KWARGS, **overrides)
    torch.manual_seed(0)
    G = Network("G", func_name="training.networks_stylegan2.G_main", **kwargs)
    D = Network("D", func_name="training.networks_stylegan2.D_stylegan2",
                **{k: v for k, v in kwargs.items() if k in ("resolution", "num_channels", "label_size", "fmap_base",
                                                          "fmap_max")})
    # Non-zero values everywhere, so that every variable affects the output.
    with torch.no_grad():
        for net in (G, D):
            for var in net.vars.values():
                if var.tensor.abs().sum() == 0:
                    var.tensor.normal_(0, 0.3 if var.tensor.ndim else 0.5)
    Gs = G.clone("Gs")
    return G, D, Gs


@pytest.fixture(scope="module")
def single_thread():
    """For tests of tiny tensors: one thread avoids OpenMP spin contention on a busy machine."""
    import torch
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def small_pkl(tmp_path_factory):
    """Path of a pickle of small unconditional networks, saved by our writer."""
    from dnnlib.tflib.network_pickle import save_network_pkl
    path = tmp_path_factory.mktemp("net") / "small.pkl"
    save_network_pkl(make_networks(), str(path))
    return str(path)


@pytest.fixture(scope="session")
def conditional_pkl(tmp_path_factory):
    from dnnlib.tflib.network_pickle import save_network_pkl
    path = tmp_path_factory.mktemp("net") / "cond.pkl"
    save_network_pkl(make_networks(label_size=4), str(path))
    return str(path)


def make_lpips_network(seed=0):
    """A vgg16_zhang_perceptual.pkl-style LPIPS Network with random weights: He-initialised convolutions (so every
    tap still depends on the image) and positive per-channel weights."""
    import torch
    from dnnlib.tflib.network import Network
    net = Network("lpips", func_name="lpips_network")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, var in net.vars.items():
            t = var.tensor
            if name.startswith("perceptual_weight"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.1)
            elif t.ndim == 4:  # [3, 3, in, out]
                t.copy_(torch.randn(t.shape, generator=gen) * (2 / (9 * t.shape[2])) ** 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
    return net


@pytest.fixture(scope="session")
def lpips_pkl(tmp_path_factory):
    """Path of a random-weight LPIPS pickle in the layout of NVIDIA's vgg16_zhang_perceptual.pkl."""
    from dnnlib.tflib.network_pickle import save_network_pkl
    path = tmp_path_factory.mktemp("lpips") / "vgg16_zhang_perceptual.pkl"
    save_network_pkl(make_lpips_network(), str(path))
    return str(path)
