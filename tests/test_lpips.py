"""LPIPS (training/lpips.py): a distance, equal to an independent reference of the lpips package's arithmetic, loaded
alike from the lpips/torchvision files and from a vgg16_zhang_perceptual.pkl-style pickle (read as data), with one-line
errors for bad or missing weights. Random weights, small images; no network, no lpips or torchvision needed."""

import os
import pickle
import sys
import types
from contextlib import nullcontext

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dnnlib
from dnnlib.tflib.network import Network
from dnnlib.tflib.network_pickle import load_network_pkl, save_network_pkl
from training import lpips as lpips_lib
from test_network_pickle import OfficialNetwork, official_state

pytestmark = pytest.mark.usefixtures("single_thread")

# torchvision's vgg16().features: the module index of each convolution, and the channels between them.
CONV_AT = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
CHANNELS = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
STACKS = [[0, 2], [5, 7], [10, 12, 14], [17, 19, 21], [24, 26, 28]]
TAPS = [64, 128, 256, 512, 512]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Random VGG16 and lin weights in the torchvision / lpips file formats. He-initialised, so that every tap
    still depends on the image after 13 layers."""
    gen = torch.Generator().manual_seed(0)
    vgg = {}
    for i, at in enumerate(CONV_AT):
        fmaps_in, fmaps_out = CHANNELS[i], CHANNELS[i + 1]
        he_std = (2 / (9 * fmaps_in)) ** 0.5
        vgg[f"features.{at}.weight"] = torch.randn(fmaps_out, fmaps_in, 3, 3, generator=gen) * he_std
        vgg[f"features.{at}.bias"] = torch.randn(fmaps_out, generator=gen) * 0.1
    vgg["classifier.6.bias"] = torch.zeros(1000)  # torchvision's file has the classifier too; LPIPS ignores it
    lin = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=gen) for k, c in enumerate(TAPS)}
    root = tmp_path_factory.mktemp("lpips")
    torch.save(vgg, root / "vgg16-397923af.pth")
    torch.save(lin, root / "vgg.pth")
    return types.SimpleNamespace(vgg=vgg, lin=lin, vgg_path=str(root / "vgg16-397923af.pth"),
                                 lin_path=str(root / "vgg.pth"))


@pytest.fixture(scope="module")
def model(weights):
    return lpips_lib.load_lpips(weights.vgg_path, weights.lin_path)


def images(num, size, seed):
    """Random images [num, 3, size, size] in [-1, 1]."""
    return torch.rand(num, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def reference_lpips(weights, x0, x1, tf_pooling=False):
    """The lpips package's v0.1 'vgg' arithmetic on [-1, 1] images, written out independently of training/lpips.py.
    tf_pooling: max-pool with TensorFlow's 'SAME' padding (odd sizes keep their last row and column)."""
    shift = torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1)
    scale = torch.tensor([.458, .448, .450]).view(1, 3, 1, 1)

    def taps(x):
        x, out = (x - shift) / scale, []
        for stack in STACKS:
            if out:
                if tf_pooling:
                    x = F.pad(x, (0, x.shape[3] % 2, 0, x.shape[2] % 2), value=-float("inf"))
                x = F.max_pool2d(x, 2)
            for at in stack:
                weight, bias = weights.vgg[f"features.{at}.weight"], weights.vgg[f"features.{at}.bias"]
                x = F.relu(F.conv2d(x, weight, bias, padding=1))
            out.append(x)
        return out

    def unit(x):
        return x / (torch.sqrt(torch.sum(x ** 2, dim=1, keepdim=True)) + 1e-10)

    total = 0
    for k, (a, b) in enumerate(zip(taps(x0), taps(x1))):
        total = total + F.conv2d((unit(a) - unit(b)) ** 2, weights.lin[f"lin{k}.model.1.weight"]).mean(dim=[2, 3])
    return total.reshape(-1)


def zhang_variables(weights):
    """The variables of vgg16_zhang_perceptual.pkl (names, TensorFlow shapes, creation order) holding `weights`."""
    out = []
    for i, at in enumerate(CONV_AT, start=1):
        out += [(f"conv{i}/conv{i}", weights.vgg[f"features.{at}.weight"].permute(2, 3, 1, 0).numpy()),
                (f"conv{i}/bias{i}", weights.vgg[f"features.{at}.bias"].numpy())]
    out += [(f"perceptual_weight_{k}", weights.lin[f"lin{k}.model.1.weight"].reshape(1, 1, c, 1).numpy())
            for k, c in enumerate(TAPS)]
    return out


def write_zhang_pkl(path, variables, marker=None):
    """A pickle written as the TensorFlow release writes vgg16_zhang_perceptual.pkl, with source that fails if run."""
    state = official_state("lpips", "lpips_network", {}, variables, marker=marker)
    path.write_bytes(pickle.dumps(OfficialNetwork(state), protocol=4))
    return str(path)


# ----------------------------------------------------------------------------------------------------------------


def test_distance_is_zero_symmetric_and_positive(model):
    x, y = images(2, 16, seed=1), images(2, 16, seed=2)
    d_xx, d_xy, d_yx = model(torch.cat([x, x, y]), torch.cat([x, y, x]), drange=(-1, 1)).chunk(3)
    assert torch.equal(d_xx, torch.zeros(2))
    assert d_xy.shape == (2,) and (d_xy > 0).all()
    torch.testing.assert_close(d_xy, d_yx)
    assert not model.training and not any(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("size", [16, 24])  # 24: 3x3 maps before the last pooling
def test_matches_the_lpips_arithmetic(model, weights, size):
    x, y = images(2, size, seed=3), images(2, size, seed=4)
    expected = reference_lpips(weights, x, y)
    torch.testing.assert_close(model(x, y, drange=(-1, 1)), expected, rtol=1e-5, atol=1e-7)
    # The default range is NVIDIA's [0, 255].
    torch.testing.assert_close(model((x + 1) * 127.5, (y + 1) * 127.5), expected, rtol=1e-5, atol=1e-7)


def test_precomputed_target_features(model):
    target, batch = images(1, 16, seed=5), images(3, 16, seed=6)
    target_features, batch_features = model.features(torch.cat([target, batch])).split([1, 3])
    assert target_features.shape == (1, 64 * 16 ** 2 + 128 * 8 ** 2 + 256 * 4 ** 2 + 512 * 2 ** 2 + 512 * 1 ** 2)
    torch.testing.assert_close(model.distance(target_features, batch_features),
                               model(target.expand(3, -1, -1, -1), batch), rtol=1e-5, atol=1e-7)


def test_gradients_reach_the_images(model):
    x = images(2, 16, seed=7).requires_grad_(True)
    model(x, images(2, 16, seed=8), drange=(-1, 1)).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_zhang_pickle_loads_as_data_and_equals_lpips(weights, tmp_path):
    marker = tmp_path / "marker.txt"
    path = write_zhang_pkl(tmp_path / "vgg16_zhang_perceptual.pkl", zhang_variables(weights), marker)
    zhang = lpips_lib.load_lpips(path)
    assert not marker.exists(), "build_module_src was executed"

    # Even sizes: the same as the lpips arithmetic; odd sizes pool as TensorFlow does.
    for size, tf_pooling in [(16, False), (24, True)]:
        x, y = images(2, size, seed=9), images(2, size, seed=10)
        distance = zhang((x + 1) * 127.5, (y + 1) * 127.5)
        torch.testing.assert_close(distance, reference_lpips(weights, x, y, tf_pooling), rtol=1e-5, atol=1e-7)

    # The original's API: the pickle is a Network, get_output_for(images_a, images_b) is the distance.
    with open(path, "rb") as f:
        net = load_network_pkl(f)
    assert isinstance(net, Network) and net.input_names == ["images_a", "images_b"]
    torch.testing.assert_close(net.get_output_for(x, y, drange=(-1, 1)), distance)
    assert not marker.exists(), "build_module_src was executed"


def test_our_pickle_has_the_zhang_layout(weights, tmp_path):
    net = Network("lpips", func_name="lpips_network")
    variables = zhang_variables(weights)
    assert [(name, var.shape.as_list()) for name, var in sorted(net.vars.items())] == \
        sorted((name, list(value.shape)) for name, value in variables)
    for name, value in variables:
        net.set_var(name, value)
    save_network_pkl(net, str(tmp_path / "ours.pkl"))
    loaded = lpips_lib.load_lpips(str(tmp_path / "ours.pkl"))
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), net.module.state_dict().values()))


@pytest.mark.parametrize("case", ["unexpected", "wrong shape", "missing", "not lpips", "code"])
def test_bad_pickles_give_one_line_errors(weights, tmp_path, small_pkl, case):
    path = tmp_path / "bad.pkl"
    if case == "unexpected":
        path, match = write_zhang_pkl(path, [("lod", np.float32(0))]), "has no variable 'lod'"
    elif case == "wrong shape":
        path, match = write_zhang_pkl(path, [("conv1/conv1", np.ones([3, 3, 3, 32], np.float32))]), "conv1/conv1"
    elif case == "missing":
        path = write_zhang_pkl(path, [item for item in zhang_variables(weights) if item[0].startswith("perceptual")])
        match = "lacks LPIPS variables: conv1/conv1, conv1/bias1, .* and 18 more"
    elif case == "not lpips":
        path, match = small_pkl, "not an LPIPS network pickle .*it holds tuple"
    else:
        path.write_bytes(pickle.dumps(os.system, protocol=4))
        path, match = str(path), "refusing to load"
    # Network warns about the missing variables first; the loader then refuses them.
    warns = pytest.warns(UserWarning, match="missing from the pickle") if case == "missing" else nullcontext()
    with pytest.raises(dnnlib.util.UserError, match=match) as err, warns:
        lpips_lib.load_lpips(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("case", ["no vgg16", "no lin", "lin keys", "vgg16 keys", "negative", "garbage", "code",
                                  "no lpips package"])
def test_bad_weight_files_give_one_line_errors(weights, tmp_path, monkeypatch, case):
    vgg16, lin, bad = weights.vgg_path, weights.lin_path, tmp_path / "bad.pth"
    if case == "no vgg16":
        vgg16, match = str(tmp_path / "vgg16-397923af.pth"), "cannot load torchvision's VGG16 weights .*file not found"
    elif case == "no lin":
        lin, match = str(tmp_path / "vgg.pth"), "cannot load the LPIPS lin weights .*file not found"
    elif case == "lin keys":
        torch.save({"lin0.weight": torch.ones(1, 64, 1, 1)}, bad)
        lin, match = str(bad), "missing keys: lin0.model.1.weight, .*unexpected keys: lin0.weight"
    elif case == "vgg16 keys":
        torch.save({"features.0.weight": torch.ones(64, 3, 3, 3), "features.1.running_mean": torch.ones(64)}, bad)
        vgg16, match = str(bad), "missing keys: features.0.bias, .*unexpected keys: features.1.running_mean"
    elif case == "negative":
        torch.save(dict(weights.lin, **{"lin2.model.1.weight": -weights.lin["lin2.model.1.weight"]}), bad)
        lin, match = str(bad), "non-negative, but perceptual_weight_2"
    elif case == "garbage":
        bad.write_bytes(b"not a weights file")
        lin, match = str(bad), "not a PyTorch weights file"
    elif case == "code":  # weights_only refuses anything but tensors and containers
        torch.save({"lin0.model.1.weight": os.system}, bad)
        lin, match = str(bad), "not a PyTorch weights file"
    else:
        monkeypatch.setattr(lpips_lib, "lpips_package_weights", lambda: None)
        lin, match = None, r"pip install --no-deps lpips==0.1.4"
    with pytest.raises(dnnlib.util.UserError, match=match) as err:
        lpips_lib.load_lpips(vgg16, lin)
    assert "\n" not in str(err.value)


def test_offline_default_says_what_to_pass(monkeypatch):
    def offline(url, **_kwargs):
        raise dnnlib.util.UserError(f"cannot download {url}: cannot resolve host 'nvlabs-fi-cdn.nvidia.com'; check "
                                    "your network connection, or download the file by hand and pass its local path")
    monkeypatch.setattr(dnnlib.util, "open_url", offline)
    with pytest.raises(dnnlib.util.UserError, match="cannot load the VGG16 perceptual network: cannot download "
                       r"https://nvlabs-fi-cdn.nvidia.com/.*vgg16_zhang_perceptual.pkl.*--vgg16") as err:
        lpips_lib.load_lpips()
    assert "\n" not in str(err.value)


def test_lin_weights_are_found_in_the_lpips_package_without_importing_it(model, weights, tmp_path, monkeypatch):
    package = tmp_path / "site" / "lpips"
    (package / "weights" / "v0.1").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('the lpips package was imported')\n")
    (package / "weights" / "v0.1" / "vgg.pth").write_bytes(open(weights.lin_path, "rb").read())
    monkeypatch.delitem(sys.modules, "lpips", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert lpips_lib.lpips_package_weights() == str(package / "weights" / "v0.1" / "vgg.pth")
    loaded = lpips_lib.load_lpips(weights.vgg_path)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    assert "lpips" not in sys.modules
