"""Other tools' network files: each is built here in that tool's own layout (names, shapes and buffers by the rules of
its converter: stylegan2-ada-pytorch's legacy.py, rosinality's convert_weight.py; independently of
training/checkpoint_formats.py), loads into networks that compute what the same network built directly computes,
exports load back, unknown files get one line, and nothing in a file ever runs."""

import argparse
import contextlib
import io
import os
import pickle
import re
import sys
import types
import unittest.mock

import numpy as np
import pytest
import torch

import convert_network
import dnnlib
import pretrained_networks
from conftest import make_networks
from test_network_pickle import official_networks
from training import checkpoint_formats

pytestmark = pytest.mark.usefixtures("single_thread")

FILTER = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64  # setup_filter([1,3,3,1])


def outputs(nets):
    """Gs (truncated), G and D outputs on fixed inputs."""
    G, D, Gs = nets
    z = np.random.RandomState(0).randn(4, Gs.input_shape[1])
    images = np.random.RandomState(1).randn(4, *D.input_shape[1:])
    return [Gs.run(z, None, truncation_psi=0.5, randomize_noise=False),
            G.run(z, None, truncation_psi=1, randomize_noise=False), D.run(images, None)]


def assert_same_outputs(nets, reference, rtol=1e-5):
    """Outputs agree within rtol of their scale (rtol=0: bit-identical)."""
    for got, want in zip(outputs(nets), outputs(reference)):
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= rtol * max(1.0, np.abs(want).max())


def load(path):
    return pretrained_networks.load_networks(str(path))


def one_line_error(path, match):
    with pytest.raises(dnnlib.util.UserError, match=match) as info:
        load(path)
    assert "\n" not in str(info.value)
    return str(info.value)


def var(net, name):
    return torch.from_numpy(net.get_var(name))


class Payload:
    """Pickles as a call of func(*args): what a malicious file does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


# ----------------------------------------------------------------------------------------------------------------
# stylegan2-ada-pytorch: state dicts by legacy.py's TensorFlow -> PyTorch rules, pickled as torch_utils.persistence
# pickles them.

def ada_g_state(G, log2):
    """stylegan2-ada-pytorch Generator state_dict (skip architecture) holding our G's variables."""
    s = {"mapping.w_avg": var(G, "dlatent_avg")}
    if "G_mapping/LabelEmbed/weight" in G.vars:  # StyleGAN2-ADA's label embedding
        s["mapping.embed.weight"] = var(G, "G_mapping/LabelEmbed/weight").T
        s["mapping.embed.bias"] = var(G, "G_mapping/LabelEmbed/bias")
    for name in G.vars:
        m = re.fullmatch(r"G_mapping/Dense(\d+)/(weight|bias)", name)
        if m:
            s[f"mapping.fc{m[1]}.{m[2]}"] = var(G, name).T if m[2] == "weight" else var(G, name)
    s["synthesis.b4.const"] = var(G, "G_synthesis/4x4/Const/const")[0]
    for res in range(2, log2 + 1):
        tf, b = f"G_synthesis/{2 ** res}x{2 ** res}", f"synthesis.b{2 ** res}"
        s[f"{b}.resample_filter"] = FILTER
        layers = [("Conv", "conv1", 0)] if res == 2 else [("Conv0_up", "conv0", res * 2 - 5), ("Conv1", "conv1", res * 2 - 4)]
        for tf_layer, layer, noise in layers + [("ToRGB", "torgb", None)]:
            weight = var(G, f"{tf}/{tf_layer}/weight")
            s[f"{b}.{layer}.weight"] = (weight.flip(0, 1) if tf_layer == "Conv0_up" else weight).permute(3, 2, 0, 1)
            s[f"{b}.{layer}.bias"] = var(G, f"{tf}/{tf_layer}/bias")
            s[f"{b}.{layer}.affine.weight"] = var(G, f"{tf}/{tf_layer}/mod_weight").T
            s[f"{b}.{layer}.affine.bias"] = var(G, f"{tf}/{tf_layer}/mod_bias") + 1
            if noise is not None:
                s[f"{b}.{layer}.noise_strength"] = var(G, f"{tf}/{tf_layer}/noise_strength")
                s[f"{b}.{layer}.noise_const"] = var(G, f"G_synthesis/noise{noise}")[0, 0]
                s[f"{b}.{layer}.resample_filter"] = FILTER
    return s


def ada_d_state(D, log2):
    """stylegan2-ada-pytorch Discriminator state_dict (resnet architecture) holding our D's variables."""
    s = {}

    def conv(tf, pt, bias=True):
        s[f"{pt}.weight"] = var(D, f"{tf}/weight").permute(3, 2, 0, 1)
        if bias:
            s[f"{pt}.bias"] = var(D, f"{tf}/bias")
        s[f"{pt}.resample_filter"] = FILTER
    for res in range(log2, 2, -1):
        r = 2 ** res
        s[f"b{r}.resample_filter"] = FILTER
        if res == log2:
            conv(f"{r}x{r}/FromRGB", f"b{r}.fromrgb")
        conv(f"{r}x{r}/Conv0", f"b{r}.conv0")
        conv(f"{r}x{r}/Conv1_down", f"b{r}.conv1")
        conv(f"{r}x{r}/Skip", f"b{r}.skip", bias=False)
    conv("4x4/Conv", "b4.conv")
    s.update({"b4.fc.weight": var(D, "4x4/Dense0/weight").T, "b4.fc.bias": var(D, "4x4/Dense0/bias"),
              "b4.out.weight": var(D, "Output/weight").T, "b4.out.bias": var(D, "Output/bias")})
    for name in D.vars:  # StyleGAN2-ADA's label mapping: LabelEmbed -> mapping.embed, Mapping{i} -> mapping.fc{i}
        m = re.fullmatch(r"(LabelEmbed|Mapping(\d+))/(weight|bias)", name)
        if m:
            key = f"mapping.{'embed' if m[2] is None else 'fc' + m[2]}.{m[3]}"
            s[key] = var(D, name).T if m[3] == "weight" else var(D, name)
    return s


def _reconstruct_persistent_obj(meta):
    """What the pickles name; a loader that called it would fail loudly."""
    raise AssertionError(f"torch_utils.persistence._reconstruct_persistent_obj was called for {meta['class_name']}")


_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"


@contextlib.contextmanager
def torch_utils_importable():
    """torch_utils.persistence exists only while a pickle is written (as where stylegan2-ada-pytorch runs)."""
    persistence = types.ModuleType("torch_utils.persistence")
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    package = types.ModuleType("torch_utils")
    package.persistence = persistence
    with unittest.mock.patch.dict(sys.modules, {"torch_utils": package, "torch_utils.persistence": persistence}):
        yield


class Persistent(torch.nn.Module):
    """A module that pickles as torch_utils.persistence makes stylegan2-ada-pytorch's pickle: a call of
    _reconstruct_persistent_obj(meta), with the class's module source in meta and the module's __dict__ as state."""

    def __init__(self, class_name, module_src):
        super().__init__()
        self.meta = dict(type="class", version=6, module_src=module_src, class_name=class_name)

    def __reduce__(self):
        state = {key: value for key, value in self.__dict__.items() if key != "meta"}
        return _reconstruct_persistent_obj, (dict(self.meta, state=state),)


def module_tree(class_name, state_dict, settings, module_src):
    """Persistent modules holding a state_dict (buffers where ada-pytorch registers buffers) and plain settings
    {dotted module path: attributes}."""
    root = Persistent(class_name, module_src)

    def module_at(path):
        module = root
        for part in path.split(".") if path else []:
            if part not in module._modules:
                module.add_module(part, Persistent(part, module_src))
            module = module._modules[part]
        return module
    for name, value in state_dict.items():
        path, _, leaf = name.rpartition(".")
        if leaf in ("w_avg", "noise_const", "resample_filter"):
            module_at(path).register_buffer(leaf, value.clone())
        else:
            module_at(path).register_parameter(leaf, torch.nn.Parameter(value.clone()))
    for path, attrs in settings.items():
        module_at(path).__dict__.update(attrs)
    return root


def ada_pickle(nets, marker, flavour="ada-pytorch", architecture="stylegan2", c_dim=0):
    """The bytes of a stylegan2-ada-pytorch (or stylegan3) training pickle of our (G, D, Gs), whose embedded source
    would write `marker` if anything executed it."""
    G, D, Gs = nets
    src = f"open({str(marker)!r}, 'w').write('module_src executed')\nraise RuntimeError('module_src executed')\n"
    g, d = G.static_kwargs, D.static_kwargs
    log2 = int(np.log2(g.resolution))
    fp16 = range(log2 + 1 - g.get("num_fp16_res", 0), log2 + 1)
    init_kwargs = dnnlib.EasyDict(z_dim=g.latent_size, c_dim=c_dim, w_dim=g.dlatent_size, img_resolution=g.resolution,
                                  img_channels=3, mapping_kwargs=dnnlib.EasyDict(num_layers=g.mapping_layers))
    synthesis_kwargs = dict(channel_base=2 * g.fmap_base, channel_max=g.fmap_max, conv_clamp=g.get("conv_clamp"))
    if flavour == "stylegan3":
        init_kwargs.update(synthesis_kwargs)
    else:
        init_kwargs.synthesis_kwargs = dnnlib.EasyDict(synthesis_kwargs)
    g_settings = {"": dict(z_dim=g.latent_size, c_dim=c_dim, w_dim=g.dlatent_size, img_resolution=g.resolution,
                           img_channels=3, _init_args=(), _init_kwargs=init_kwargs),
                  "mapping": dict(num_layers=g.mapping_layers, w_avg_beta=0.995)}
    for i in range(g.mapping_layers):
        g_settings[f"mapping.fc{i}"] = dict(activation="lrelu", bias_gain=0.01, weight_gain=np.float64(0.01) / 32 ** 0.5)
    for res in range(2, log2 + 1):
        b = f"synthesis.b{2 ** res}"
        g_settings[b] = dict(architecture="skip", use_fp16=res in fp16, resolution=2 ** res)
        for layer in (["conv1"] if res == 2 else ["conv0", "conv1"]):
            g_settings[f"{b}.{layer}"] = dict(conv_clamp=g.get("conv_clamp"), activation="lrelu", use_noise=True)
    d_settings = {"": dict(c_dim=c_dim, img_resolution=d.resolution, img_channels=3),
                  "b4.conv": dict(conv_clamp=None, activation="lrelu"),
                  "b4.mbstd": dict(group_size=4, num_channels=1)}
    d_settings.update((f"b{2 ** res}", dict(architecture="resnet", use_fp16=False)) for res in range(3, log2 + 1))
    for i in range(d.get("mapping_layers", 0) if c_dim else 0):  # ada-pytorch's D label MappingNetwork
        d_settings[f"mapping.fc{i}"] = dict(activation="lrelu", bias_gain=0.1)

    def generator(net):
        state = ada_g_state(net, log2)
        if architecture == "stylegan3":  # alias-free synthesis layers instead of b4, b8, ...
            state = {k: v for k, v in state.items() if not k.startswith("synthesis.")}
            state.update({"synthesis.input.freqs": torch.randn(512, 2), "synthesis.L0_36_512.weight": torch.randn(4, 4, 3, 3)})
            return module_tree("Generator", state, {"": g_settings[""]}, src)
        return module_tree("Generator", state, g_settings, src)
    data = dict(G=generator(G), D=module_tree("Discriminator", ada_d_state(D, log2), d_settings, src),
                G_ema=generator(Gs), augment_pipe=module_tree("AugmentPipe", {"p": torch.zeros([])}, {}, src),
                training_set_kwargs=dnnlib.EasyDict(class_name="training.dataset.ImageFolderDataset", path="x.zip"))
    with torch_utils_importable():
        return pickle.dumps(data)


@pytest.mark.parametrize("flavour", ["ada-pytorch", "stylegan3"])
@pytest.mark.parametrize("kwargs", [{}, dict(conv_clamp=256, num_fp16_res=2)], ids=["plain", "clamp-fp16"])
def test_ada_pytorch_pickle_loads_and_its_source_never_runs(tmp_path, flavour, kwargs):
    nets = make_networks(**kwargs)
    marker = tmp_path / "marker.txt"
    data = ada_pickle(nets, marker, flavour)
    assert b"torch_utils.persistence" in data and b"_reconstruct_persistent_obj" in data
    assert b"_load_from_bytes" in data and b"module_src executed" in data
    path = tmp_path / "network-snapshot-000100.bin"  # the name says nothing; the content does
    path.write_bytes(data)
    G, D, Gs = load(path)
    assert not marker.exists(), "module_src was executed"
    assert_same_outputs((G, D, Gs), nets)
    for key, value in kwargs.items():
        assert Gs.static_kwargs[key] == value
    # Back to the same state dicts: every tensor bit-identical but the style biases (stored +1, within float32).
    ckpt_path = tmp_path / "back.pt"
    checkpoint_formats.save_networks((G, D, Gs), str(ckpt_path), "ada-pytorch-state")
    ckpt = torch.load(ckpt_path, weights_only=True)
    for key, want in [("G_ema", ada_g_state(nets[2], 5)), ("G", ada_g_state(nets[0], 5)), ("D", ada_d_state(nets[1], 5))]:
        assert set(ckpt[key]) == set(want)
        for name, value in want.items():
            if name.endswith("affine.bias"):
                assert torch.allclose(ckpt[key][name], value, rtol=0, atol=2e-7), name
            else:
                assert torch.equal(ckpt[key][name], value.float()), name


def test_stylegan3_architecture_is_refused_in_one_line(tmp_path):
    marker = tmp_path / "marker.txt"
    path = tmp_path / "stylegan3-t.pkl"
    path.write_bytes(ada_pickle(make_networks(), marker, "stylegan3", architecture="stylegan3"))
    one_line_error(path, "StyleGAN3 .alias-free.")
    assert not marker.exists()


def test_stylegan2_ada_tensorflow_pickle_loads(tmp_path):
    """StyleGAN2-ADA's TensorFlow networks: 'G_synthesis' and 'D_main' build functions, its extra kwargs, no lod,
    state version 5; the same variables as the StyleGAN2 pickle they are compared with."""
    marker = tmp_path / "marker.txt"
    nets, _ = official_networks(marker)
    reference_path = tmp_path / "stylegan2.pkl"
    reference_path.write_bytes(pickle.dumps(nets, protocol=4))
    ada_kwargs = dict(conv_clamp=256, num_fp16_res=2, mapping_fmaps=None, fused_modconv=False, use_noise=True,
                      fmap_const=None)
    for G in (nets[0], nets[2]):
        G.state["variables"] = [item for item in G.state["variables"] if item[0] != "lod"]
        G.state["static_kwargs"].update(ada_kwargs, synthesis_func="G_synthesis")
        G.state["components"]["synthesis"].state["build_func_name"] = "G_synthesis"
        for comp in G.state["components"].values():
            comp.state["static_kwargs"].update(ada_kwargs)
            comp.state["build_module_src"] = "def G_main():\n    pass\ndef G_synthesis():\n    pass\n" + comp.state["build_module_src"]
    nets[1].state.update(build_func_name="D_main")
    nets[1].state["static_kwargs"].update(mbstd_group_size=None, num_fp16_res=2, conv_clamp=256, freeze_layers=0)
    for state in [net.state for net in nets] + [c.state for G in (nets[0], nets[2]) for c in G.state["components"].values()]:
        state.update(version=5, input_shapes=[[None, 32]], output_shapes=[[None, 1]], input_names=["x"],
                     output_names=["y"])  # ADA's tflib stores these too
    path = tmp_path / "metfaces.pkl"
    path.write_bytes(pickle.dumps(nets, protocol=4))

    G, D, Gs = load(path)
    assert not marker.exists(), "build_module_src was executed"
    reference = tuple(net.clone(**{k: v for k, v in ada_kwargs.items() if k != "mapping_fmaps"})
                      for net in load(reference_path))
    assert_same_outputs((G, D, Gs), reference)
    assert Gs.static_kwargs.conv_clamp == 256 and Gs.static_kwargs.mapping_fmaps == 32
    assert Gs.static_kwargs.synthesis_func == "G_synthesis_stylegan2"
    assert Gs.get_var("lod") == 0


def conditional_ada_tf_networks(marker):
    """A conditional StyleGAN2-ADA TensorFlow (G, D, Gs) in its own names: G_mapping's `LabelEmbed` (label ->
    latent_size, with bias) instead of StyleGAN2's `LabelConcat`; D's `LabelEmbed` and `Mapping0` label mapping and an
    `Output` of mapping_fmaps (= nf(0) = 64) features."""
    nets, _ = official_networks(marker, label_size=4)
    rnd = np.random.RandomState(5)
    randn = lambda *shape: (rnd.randn(*shape) * 0.5).astype(np.float32)
    for G in (nets[0], nets[2]):
        mapping = G.state["components"]["mapping"].state
        mapping["variables"] = [("LabelEmbed/weight", randn(4, 32)), ("LabelEmbed/bias", randn(32))] + [
            (n, v * 100 if n.endswith("weight") else v)  # initialised with std 1 / mapping_lrmul, as trained ones are
            for n, v in mapping["variables"] if n != "LabelConcat/weight"]
        G.state["variables"] = [item for item in G.state["variables"] if item[0] != "lod"]
        G.state["static_kwargs"].update(mapping_fmaps=None, synthesis_func="G_synthesis")
        G.state["components"]["synthesis"].state["build_func_name"] = "G_synthesis"
        for comp in G.state["components"].values():
            comp.state["static_kwargs"].update(mapping_fmaps=None)
    d = nets[1].state
    d.update(build_func_name="D_main")
    d["static_kwargs"].update(mbstd_group_size=4, mapping_layers=1)
    d["variables"] = [item for item in d["variables"] if not item[0].startswith("Output/")] + [
        ("LabelEmbed/weight", randn(4, 64)), ("LabelEmbed/bias", randn(64)), ("Mapping0/weight", randn(64, 64)),
        ("Mapping0/bias", randn(64)), ("Output/weight", randn(64, 64)), ("Output/bias", randn(64))]
    for state in [net.state for net in nets] + [c.state for G in (nets[0], nets[2]) for c in G.state["components"].values()]:
        state.update(version=5)
    return nets


def np_dense(x, net, scope, lrmul=1.0, act="linear"):
    """TF dense_layer + apply_bias_act, plainly: equalised learning rate, bias * lrmul, lrelu with gain sqrt(2)."""
    w, b = net.get_var(f"{scope}/weight"), net.get_var(f"{scope}/bias")
    x = x @ (w * (lrmul / np.sqrt(w.shape[0]))) + b * lrmul
    return np.where(x >= 0, x, 0.2 * x) * np.sqrt(2) if act == "lrelu" else x


def np_normalize(x):
    return x / np.sqrt(np.mean(np.square(x), axis=1, keepdims=True) + 1e-8)


def test_conditional_stylegan2_ada_tensorflow_pickle_follows_the_ada_equations(tmp_path):
    marker = tmp_path / "marker.txt"
    path = tmp_path / "cifar10.pkl"
    path.write_bytes(pickle.dumps(conditional_ada_tf_networks(marker), protocol=4))
    G, D, Gs = load(path)
    assert not marker.exists()
    assert Gs.static_kwargs.label_conditioning == D.static_kwargs.label_conditioning == "ada"
    z = np.random.RandomState(0).randn(4, 32)
    labels = np.eye(4)[[0, 1, 2, 3]]
    # G_mapping: normalize(z) ++ normalize(LabelEmbed(c)), then Dense0..3 (lrmul 0.01, lrelu).
    x = np.concatenate([np_normalize(z), np_normalize(np_dense(labels, Gs, "G_mapping/LabelEmbed"))], axis=1)
    for i in range(4):
        x = np_dense(x, Gs, f"G_mapping/Dense{i}", lrmul=0.01, act="lrelu")
    w = Gs.components.mapping.run(z, labels)
    assert w.shape == (4, 8, 32) and np.abs(w - x[:, None]).max() < 1e-4 * max(1, np.abs(x).max())
    avg = Gs.get_var("dlatent_avg")
    want = Gs.components.synthesis.run(np.repeat((avg + 0.5 * (x - avg))[:, None], 8, axis=1), randomize_noise=False)
    got = Gs.run(z, labels, truncation_psi=0.5, randomize_noise=False)
    assert np.abs(got - want).max() < 1e-4 * max(1, np.abs(want).max())
    other = Gs.run(z, labels[[1, 2, 3, 0]], truncation_psi=0.5, randomize_noise=False)
    assert np.abs(other - got).max() > 1e-2, "the label does not change the image"
    # D: features h (4x4/Dense0) -> Output(h) [64], dotted with the mapped label, / sqrt(64). Output(h)[k] is what
    # StyleGAN2's conditional D with the same variables and label_size=64 gives for the one-hot label e_k.
    images = np.random.RandomState(1).randn(4, 3, 32, 32)
    projection = D.clone(label_conditioning="stylegan2", label_size=64)
    out = np.stack([projection.run(images, np.tile(np.eye(64)[k], (4, 1)))[:, 0] for k in range(64)], axis=1)
    cmap = np_dense(np_normalize(np_dense(labels, D, "LabelEmbed")), D, "Mapping0", lrmul=0.1, act="lrelu")
    want = (out * cmap).sum(axis=1, keepdims=True) / np.sqrt(64)
    got = D.run(images, labels)
    assert got.shape == (4, 1) and np.abs(got - want).max() < 1e-4 * max(1, np.abs(want).max())
    assert np.abs(D.run(images, labels[[1, 2, 3, 0]]) - got).max() > 1e-3


def test_conditional_ada_pytorch_pickle_and_state_file_load(tmp_path):
    """cifar10.pkl-style ada-pytorch networks: mapping.embed in G; mapping.embed, mapping.fc0 and a cmap_dim-wide b4.out
    in D; they compute what the TensorFlow networks they were converted from compute; ada-pytorch-state round trip."""
    tf_path = tmp_path / "cifar10-tf.pkl"
    tf_path.write_bytes(pickle.dumps(conditional_ada_tf_networks(tmp_path / "m1"), protocol=4))
    nets = load(tf_path)
    marker = tmp_path / "marker.txt"
    path = tmp_path / "cifar10.pkl"
    path.write_bytes(ada_pickle(nets, marker, c_dim=4))
    loaded = load(path)
    assert not marker.exists()
    z, labels = np.random.RandomState(0).randn(4, 32), np.eye(4)
    images = np.random.RandomState(1).randn(4, 3, 32, 32)
    for a, b in [(loaded, nets)]:
        for G in (0, 2):
            want = b[G].run(z, labels, truncation_psi=0.5, randomize_noise=False)
            assert np.abs(a[G].run(z, labels, truncation_psi=0.5, randomize_noise=False) - want).max() < 1e-5 * max(1, np.abs(want).max())
        want = b[1].run(images, labels)
        assert np.abs(a[1].run(images, labels) - want).max() < 1e-5 * max(1, np.abs(want).max())
    assert loaded[1].static_kwargs.mapping_layers == 1 and loaded[1].static_kwargs.mapping_fmaps == 64
    # Back to ada-pytorch state dicts: the same tensors (style biases within float32), kwargs with c_dim and cmap_dim.
    back = tmp_path / "back.pt"
    checkpoint_formats.save_networks(loaded, str(back), "ada-pytorch-state")
    ckpt = torch.load(back, weights_only=True)
    assert ckpt["G_kwargs"]["c_dim"] == 4 and ckpt["G_kwargs"]["mapping_kwargs"]["embed_features"] == 32
    assert ckpt["D_kwargs"]["cmap_dim"] == 64 and ckpt["D_kwargs"]["mapping_kwargs"]["num_layers"] == 1
    for key, want in [("G_ema", ada_g_state(nets[2], 5)), ("D", ada_d_state(nets[1], 5))]:
        assert set(ckpt[key]) == set(want)
        for name, value in want.items():
            assert torch.allclose(ckpt[key][name], value.float(), rtol=0, atol=2e-7), name
    again = load(back)
    want = nets[1].run(images, labels)
    assert np.abs(again[1].run(images, labels) - want).max() < 1e-5 * max(1, np.abs(want).max())


# ----------------------------------------------------------------------------------------------------------------
# rosinality stylegan2-pytorch: state dicts by convert_weight.py's rules, saved as its train.py saves them.

def rosinality_g_state(G, log2, n_mlp):
    s = {}
    for i in range(n_mlp):
        s[f"style.{i + 1}.weight"] = var(G, f"G_mapping/Dense{i}/weight").T
        s[f"style.{i + 1}.bias"] = var(G, f"G_mapping/Dense{i}/bias")
    s["input.input"] = var(G, "G_synthesis/4x4/Const/const")

    def modconv(tf, pt, flip=False, rgb=False):
        weight = var(G, f"{tf}/weight").permute(3, 2, 0, 1)[None]
        s[f"{pt}.conv.weight"] = weight.flip(3, 4) if flip else weight
        s[f"{pt}.conv.modulation.weight"] = var(G, f"{tf}/mod_weight").T
        s[f"{pt}.conv.modulation.bias"] = var(G, f"{tf}/mod_bias") + 1
        if rgb:
            s[f"{pt}.bias"] = var(G, f"{tf}/bias").reshape(1, 3, 1, 1)
        else:
            s[f"{pt}.noise.weight"] = var(G, f"{tf}/noise_strength").reshape(1)
            s[f"{pt}.activate.bias"] = var(G, f"{tf}/bias")
    modconv("G_synthesis/4x4/Conv", "conv1")
    modconv("G_synthesis/4x4/ToRGB", "to_rgb1", rgb=True)
    for i in range(log2 - 2):
        r = 4 * 2 ** (i + 1)
        modconv(f"G_synthesis/{r}x{r}/Conv0_up", f"convs.{2 * i}", flip=True)
        s[f"convs.{2 * i}.conv.blur.kernel"] = FILTER * 4  # Blur(upsample_factor=2)
        modconv(f"G_synthesis/{r}x{r}/Conv1", f"convs.{2 * i + 1}")
        modconv(f"G_synthesis/{r}x{r}/ToRGB", f"to_rgbs.{i}", rgb=True)
        s[f"to_rgbs.{i}.upsample.kernel"] = FILTER * 4
    for i in range((log2 - 2) * 2 + 1):
        s[f"noises.noise_{i}"] = var(G, f"G_synthesis/noise{i}")
    return s


def rosinality_d_state(D, log2):
    s = {}

    def conv(tf, pt, start=0, bias=True):
        s[f"{pt}.{start}.weight"] = var(D, f"{tf}/weight").permute(3, 2, 0, 1)
        if bias:
            s[f"{pt}.{start + 1}.bias"] = var(D, f"{tf}/bias")
        if start:
            s[f"{pt}.0.kernel"] = FILTER  # Blur before the strided convolution
    conv(f"{2 ** log2}x{2 ** log2}/FromRGB", "convs.0")
    for conv_i, res in enumerate(range(log2, 2, -1), start=1):
        r = 2 ** res
        conv(f"{r}x{r}/Conv0", f"convs.{conv_i}.conv1")
        conv(f"{r}x{r}/Conv1_down", f"convs.{conv_i}.conv2", start=1)
        conv(f"{r}x{r}/Skip", f"convs.{conv_i}.skip", start=1, bias=False)
    conv("4x4/Conv", "final_conv")
    s.update({"final_linear.0.weight": var(D, "4x4/Dense0/weight").T, "final_linear.0.bias": var(D, "4x4/Dense0/bias"),
              "final_linear.1.weight": var(D, "Output/weight").T, "final_linear.1.bias": var(D, "Output/bias")})
    return s


def rosinality_checkpoint(nets, with_d=True, with_latent_avg=True):
    G, D, Gs = nets
    ckpt = dict(g=rosinality_g_state(G, 5, 4), g_ema=rosinality_g_state(Gs, 5, 4),
                g_optim={"state": {}, "param_groups": [{"lr": 0.002, "betas": (0.0, 0.99)}]},
                args=argparse.Namespace(size=32, n_mlp=4, latent=32, channel_multiplier=2), ada_aug_p=0.0)
    if with_d:
        ckpt["d"] = rosinality_d_state(D, 5)
    if with_latent_avg:
        ckpt["latent_avg"] = var(Gs, "dlatent_avg")
    return ckpt


@pytest.mark.parametrize("serialization", ["zip", "legacy"])
def test_rosinality_checkpoint_loads(tmp_path, serialization):
    nets = make_networks()
    path = tmp_path / "550000.model"
    torch.save(rosinality_checkpoint(nets), path, _use_new_zipfile_serialization=serialization == "zip")
    loaded = load(path)
    assert_same_outputs(loaded, nets)
    assert loaded[2].static_kwargs.fmap_base == 256 and loaded[2].static_kwargs.mapping_layers == 4


def test_rosinality_generator_only_checkpoint_loads_with_a_computed_latent_average(tmp_path):
    nets = make_networks()
    path = tmp_path / "stylegan2-ffhq-config-f.pt"
    torch.save(rosinality_checkpoint(nets, with_d=False, with_latent_avg=False), path)
    with pytest.warns(UserWarning) as record:
        G, D, Gs = load(path)
    assert any("latent_avg" in str(w.message) for w in record) and any("'d'" in str(w.message) for w in record)
    z = np.random.RandomState(0).randn(2, 32)
    assert np.abs(Gs.run(z, None, truncation_psi=1, randomize_noise=False)
                  - nets[2].run(z, None, truncation_psi=1, randomize_noise=False)).max() < 1e-4
    w = Gs.components.mapping.run(np.random.RandomState(0).randn(4096, 32), None)[:, 0].mean(axis=0)
    assert np.allclose(Gs.get_var("dlatent_avg"), w, atol=1e-6)
    assert D.output_shape == [None, 1]


# ----------------------------------------------------------------------------------------------------------------
# Export.

@pytest.mark.parametrize("fmt", ["ours", "safetensors"])
def test_export_loads_back_bit_identically(tmp_path, fmt):
    if fmt == "safetensors":
        pytest.importorskip("safetensors")
    nets = make_networks()
    path = tmp_path / f"out.{fmt}"
    checkpoint_formats.save_networks(nets, str(path), fmt)
    loaded = load(path)
    for a, b in zip(nets, loaded):
        assert list(a.vars) == list(b.vars) and a.static_kwargs == b.static_kwargs
        assert all(np.array_equal(a.get_var(name), b.get_var(name)) for name in a.vars)
    assert_same_outputs(loaded, nets, rtol=0)
    if fmt == "safetensors":
        from safetensors.torch import load_file
        tensors = load_file(str(path))
        assert torch.equal(tensors["Gs/G_synthesis/4x4/Conv/weight"], var(nets[2], "G_synthesis/4x4/Conv/weight"))


def test_export_ada_pytorch_state(tmp_path):
    nets = make_networks()
    path = tmp_path / "G.pt"
    how = checkpoint_formats.save_networks(nets, str(path), "ada-pytorch-state")
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["G_kwargs"]["synthesis_kwargs"]["channel_base"] == 512 and "G_kwargs = {" in how
    assert ckpt["D_kwargs"]["epilogue_kwargs"] == dict(mbstd_group_size=4, mbstd_num_channels=1)
    assert set(ckpt["G_ema"]) == set(ada_g_state(nets[2], 5)) and set(ckpt["D"]) == set(ada_d_state(nets[1], 5))
    loaded = load(path)
    assert_same_outputs(loaded, nets)
    for a, b in zip(nets, loaded):  # every variable bit-identical but the style biases (stored +1) and lod (none there)
        for name in set(a.vars) - {"lod"}:
            same = np.array_equal if not name.endswith("mod_bias") else lambda x, y: np.allclose(x, y, rtol=0, atol=2e-7)
            assert same(a.get_var(name), b.get_var(name)), name


def test_export_rosinality(tmp_path):
    # rosinality's Generator(8, 32, 4, channel_multiplier=2): 512 channels up to 32x32.
    nets = make_networks(resolution=8, fmap_base=8192, fmap_max=512)
    path = tmp_path / "rosinality.pt"
    how = checkpoint_formats.save_networks(nets, str(path), "rosinality")
    assert "Generator(8, 32, 4, channel_multiplier=2)" in how
    ckpt = torch.load(path, weights_only=True)
    assert set(ckpt) == {"g_ema", "g", "d", "latent_avg"}
    assert set(ckpt["g_ema"]) == set(rosinality_g_state(nets[2], 3, 4)) and set(ckpt["d"]) == set(rosinality_d_state(nets[1], 3))
    assert_same_outputs(load(path), nets)


def test_export_refuses_what_the_other_tool_cannot_hold(tmp_path):
    with pytest.raises(dnnlib.util.UserError, match="rosinality's Generator/Discriminator cannot hold this network"):
        checkpoint_formats.save_networks(make_networks(), str(tmp_path / "x.pt"), "rosinality")
    with pytest.raises(dnnlib.util.UserError, match="conditional networks cannot be written as ada-pytorch-state"):
        checkpoint_formats.save_networks(make_networks(label_size=4), str(tmp_path / "x.pt"), "ada-pytorch-state")
    assert not (tmp_path / "x.pt").exists()


def test_convert_network_command(tmp_path, small_pkl, capsys):
    out = tmp_path / "G.pt"
    convert_network.main(["--input", small_pkl, "--to", "ada-pytorch-state", "--output", str(out)])
    assert "D_kwargs = {" in capsys.readouterr().out
    back = tmp_path / "back.pkl"
    convert_network.main(["--from", "any", "--input", str(out), "--to", "ours", "--output", str(back)])
    assert_same_outputs(load(back), load(small_pkl))


def test_safetensors_without_the_package_is_one_line(tmp_path, small_pkl):
    with unittest.mock.patch.dict(sys.modules, {"safetensors": None, "safetensors.torch": None}):
        with pytest.raises(dnnlib.util.UserError, match="pip install safetensors"):
            convert_network.main(["--input", small_pkl, "--to", "safetensors", "--output", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------------------------------------------
# Malicious and unknown files.

def _evil_storage(marker):
    """A pickle reference to torch.storage._load_from_bytes whose bytes (a legacy torch.save) hold os.system."""
    class EvilStorage:
        def __reduce__(self):
            buf = io.BytesIO()
            torch.save(Payload(os.system, f"touch {marker}"), buf, _use_new_zipfile_serialization=False)
            return torch.storage._load_from_bytes, (buf.getvalue(),)
    return EvilStorage()


@pytest.mark.parametrize("container", ["pickle", "pickle-storage", "ada-pickle-module_src", "torch-zip",
                                       "torch-legacy"])
def test_malicious_files_are_refused_and_never_run(tmp_path, container):
    marker = tmp_path / "marker.txt"
    path = tmp_path / "evil.pt"
    payload = Payload(os.system, f"touch {marker}")
    rosinality = dict(g_ema={"conv1.conv.weight": torch.zeros(1)}, args=payload)
    if container == "pickle":
        path.write_bytes(pickle.dumps(dict(G_ema=payload, D=None), protocol=4))
    elif container == "pickle-storage":
        path.write_bytes(pickle.dumps(dict(G_ema=_evil_storage(marker)), protocol=4))
    elif container == "ada-pickle-module_src":  # a well-formed pickle whose payload is only its source code
        path.write_bytes(ada_pickle(make_networks(), marker))
    else:
        torch.save(rosinality, path, _use_new_zipfile_serialization=container == "torch-zip")
    if container == "ada-pickle-module_src":
        load(path)
    else:
        message = one_line_error(path, "refusing to load")
        assert "system" in message or "storage" in message
    assert not marker.exists(), "the payload ran"


def test_unknown_layouts_get_one_line(tmp_path):
    cases = {
        "zip.pt": lambda p: torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, p),
        "dict.pkl": lambda p: p.write_bytes(pickle.dumps({"a": np.zeros(3)}, protocol=4)),
        "text.pkl": lambda p: p.write_bytes(b"hello, not a network"),
        "empty.pkl": lambda p: p.write_bytes(b""),
        "other.safetensors": lambda p: p.write_bytes(len(b'{"__metadata__":{}}').to_bytes(8, "little")
                                                     + b'{"__metadata__":{}}'),
        "broken-rosinality.pt": lambda p: torch.save({"g_ema": {"conv1.conv.weight": torch.zeros(1, 8, 8, 3, 3)}}, p),
    }
    for name, make in cases.items():
        path = tmp_path / name
        make(path)
        message = one_line_error(path, ".")
        assert str(path) in message, message


# ----------------------------------------------------------------------------------------------------------------
# Official names.

def test_official_names_resolve_to_nvidia_files(tmp_path, monkeypatch):
    url = pretrained_networks.get_path_or_url
    assert url("ffhq") == url("gdrive:networks/stylegan2-ffhq-config-f.pkl") == \
        "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/stylegan2-ffhq-config-f.pkl"
    assert url("car-config-e") == "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/stylegan2-car-config-e.pkl"
    assert url("horse") == "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/stylegan2-horse-config-f.pkl"
    assert url("stylegan1-ffhq") == "https://nvlabs-fi-cdn.nvidia.com/stylegan/networks/karras2019stylegan-ffhq-1024x1024.pkl"
    assert url("stylegan1-cars") == "https://nvlabs-fi-cdn.nvidia.com/stylegan/networks/karras2019stylegan-cars-512x384.pkl"
    assert url("ada-ffhq") == "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada/pretrained/ffhq.pkl"
    assert url("metfaces") == url("ada-metfaces") == "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada/pretrained/metfaces.pkl"
    assert url("afhqdog") == "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada/pretrained/afhqdog.pkl"
    assert url("ada-pytorch-cifar10") == "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/cifar10.pkl"
    assert url("ada-ffhq1024") == ("https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada/pretrained/"
                                   "transfer-learning-source-nets/ffhq-res1024-mirror-stylegan2-noaug.pkl")
    assert url("results/network.pkl") == "results/network.pkl"
    with pytest.raises(dnnlib.util.UserError, match="unknown network 'ffhqq'.*official names: .*stylegan1-ffhq"):
        url("ffhqq")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ffhq").write_bytes(b"")
    assert url("ffhq") == "ffhq"  # a file of that name wins


def test_official_names_are_downloaded_through_the_cache(monkeypatch, small_pkl):
    opened = []

    def open_url(url, *args, **kwargs):
        opened.append(url)
        return open(small_pkl, "rb")
    monkeypatch.setattr(dnnlib.util, "open_url", open_url)
    monkeypatch.setattr(pretrained_networks, "_cached_networks", {})
    first = pretrained_networks.load_networks("church")
    assert pretrained_networks.load_networks("church") is first
    assert opened == ["https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/stylegan2-church-config-f.pkl"]
