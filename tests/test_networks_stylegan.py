"""StyleGAN (2019) networks: G_style, G_mapping, G_synthesis, D_basic.

Official-layout pickles are written here the way the original dnnlib writes them (state versions 2, 3 and 4,
variables under the original names and shapes, module source that would announce itself if run); they load as data
and their outputs match a plain NumPy transcription of the original's equations (float64), written below from
NVlabs/stylegan's training/networks_stylegan.py independently of our modules.
"""

import os
import pickle
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import torch

import dnnlib.tflib as tflib
import pretrained_networks
from dnnlib.tflib.network import Network
from dnnlib.tflib.network_pickle import load_network_pkl, save_network_pkl
from training import networks_stylegan, networks_stylegan2
from conftest import REPO_ROOT

# 64x64: 10 style layers, so that the default truncation cutoff (8) leaves two layers alone.
KW = dict(num_channels=3, resolution=64, label_size=0, fmap_base=128, fmap_max=16, latent_size=16, dlatent_size=16,
          mapping_fmaps=16, mapping_layers=4)
L = 6  # log2(resolution)
NUM_LAYERS = 2 * L - 2
D_KEYS = ("num_channels", "resolution", "label_size", "fmap_base", "fmap_max")
SQRT2 = np.sqrt(2)


@pytest.fixture(autouse=True)
def _one_thread(single_thread):
    yield


def nf(stage, fmap_base=KW["fmap_base"], fmap_max=KW["fmap_max"]):
    return min(int(fmap_base / 2.0 ** stage), fmap_max)


# ----------------------------------------------------------------------------------------------------------------
# Pickles in the original layout.

SOURCE = (  # what build_module_src holds: the original module's text (here: its signatures), never to be run
    "raise RuntimeError('build_module_src was executed')\n"
    '"""Network architectures used in the StyleGAN paper."""\n'
    "def G_style(latents_in, labels_in, truncation_psi=0.7, truncation_cutoff=8, **kwargs): pass\n"
    "def G_mapping(latents_in, labels_in, latent_size=512, **_kwargs): pass\n"
    "def G_synthesis(dlatents_in, dlatent_size=512, **_kwargs): pass\n"
    "def D_basic(images_in, labels_in, num_channels=1, **_kwargs): pass\n")


def OfficialNetwork(state):
    """An object that pickles as a `dnnlib.tflib.network.Network` with the given state, as the original's do."""
    net = Network.__new__(Network)
    net.state = state
    net.__getstate__ = lambda: state
    return net


def official_state(version, name, func_name, static_kwargs, variables, components=None, source=SOURCE, marker=None):
    if marker is not None:
        source = f"open({str(marker)!r}, 'w').write('executed')\n" + source
    state = dict(version=version, name=name, static_kwargs=dict(static_kwargs), build_module_src=source,
                 build_func_name=func_name, variables=variables)
    if version >= 3:  # version 2 (Progressive GAN's dnnlib) has no components
        state["components"] = components or {}
    return state


def g_variables(rnd, label_size=0):
    """(top, mapping, synthesis) variables of G_style in the original's names, order and shapes; random values at
    the scale training gives them (mapping weights ~ 1/lrmul), so that every variable matters."""
    def var(*shape, scale=1.0):
        return (rnd.randn(*shape) * scale).astype(np.float32)
    latent, dlatent, fmaps = KW["latent_size"], KW["dlatent_size"], KW["mapping_fmaps"]
    mapping = [("LabelConcat/weight", var(label_size, latent))] if label_size else []
    fan_in = latent * (2 if label_size else 1)
    for i in range(KW["mapping_layers"]):
        out = dlatent if i == KW["mapping_layers"] - 1 else fmaps
        mapping += [(f"Dense{i}/weight", var(fan_in, out, scale=100)), (f"Dense{i}/bias", var(out, scale=20))]
        fan_in = out

    synthesis = [("lod", np.float32(0))]
    synthesis += [(f"noise{i}", var(1, 1, 2 ** (i // 2 + 2), 2 ** (i // 2 + 2))) for i in range(NUM_LAYERS)]

    def epilogue(scope, channels):
        return [(f"{scope}/Noise/weight", var(channels, scale=0.3)), (f"{scope}/bias", var(channels, scale=0.2)),
                (f"{scope}/StyleMod/weight", var(dlatent, 2 * channels)),
                (f"{scope}/StyleMod/bias", var(2 * channels, scale=0.2))]

    def torgb(res):
        scope = f"ToRGB_lod{L - res}"
        return [(f"{scope}/weight", var(1, 1, nf(res - 1), 3)), (f"{scope}/bias", var(3, scale=0.1))]

    synthesis += [("4x4/Const/const", var(1, nf(1), 4, 4))] + epilogue("4x4/Const", nf(1))
    synthesis += [("4x4/Conv/weight", var(3, 3, nf(1), nf(1)))] + epilogue("4x4/Conv", nf(1)) + torgb(2)
    for res in range(3, L + 1):
        scope = f"{2 ** res}x{2 ** res}"
        synthesis += [(f"{scope}/Conv0_up/weight", var(3, 3, nf(res - 2), nf(res - 1)))]
        synthesis += epilogue(f"{scope}/Conv0_up", nf(res - 1))
        synthesis += [(f"{scope}/Conv1/weight", var(3, 3, nf(res - 1), nf(res - 1)))]
        synthesis += epilogue(f"{scope}/Conv1", nf(res - 1)) + torgb(res)
    top = [("lod", np.float32(0)), ("dlatent_avg", var(dlatent, scale=0.5))]
    return top, mapping, synthesis


def d_variables(rnd, label_size=0):
    def var(*shape, scale=1.0):
        return (rnd.randn(*shape) * scale).astype(np.float32)

    def conv(scope, kernel, fin, fout):
        return [(f"{scope}/weight", var(kernel, kernel, fin, fout)), (f"{scope}/bias", var(fout, scale=0.2))]
    out = [("lod", np.float32(0))] + conv("FromRGB_lod0", 1, 3, nf(L - 1))
    for res in range(L, 2, -1):
        scope = f"{2 ** res}x{2 ** res}"
        out += conv(f"{scope}/Conv0", 3, nf(res - 1), nf(res - 1))
        out += conv(f"{scope}/Conv1_down", 3, nf(res - 1), nf(res - 2))
        out += conv(f"FromRGB_lod{L - res + 1}", 1, 3, nf(res - 2))
    out += conv("4x4/Conv", 3, nf(1) + 1, nf(1))
    out += [("4x4/Dense0/weight", var(nf(1) * 16, nf(0))), ("4x4/Dense0/bias", var(nf(0), scale=0.2)),
            ("4x4/Dense1/weight", var(nf(0), max(label_size, 1))), ("4x4/Dense1/bias", var(max(label_size, 1)))]
    return out


def official_networks(version=3, marker=None, seed=1, **overrides):
    """(G, D, Gs) as the original's pickle holds them, and {name: value} of Gs's and D's variables. G and Gs use
    state `version`; D uses version 2, without a components entry."""
    rnd = np.random.RandomState(seed)
    kw = dict(KW, resolution=np.int64(KW["resolution"]), **overrides)  # official kwargs may be NumPy integers
    label_size = kw["label_size"]

    def generator(name):
        top, mapping, synthesis = g_variables(rnd, label_size)
        comps = dict(
            synthesis=OfficialNetwork(official_state(version, "G_synthesis", "G_synthesis", kw, synthesis,
                                                     marker=marker)),
            mapping=OfficialNetwork(official_state(version, "G_mapping", "G_mapping",
                                                   dict(kw, dlatent_broadcast=NUM_LAYERS), mapping, marker=marker)))
        net = OfficialNetwork(official_state(version, name, "G_style", kw, top, comps, marker=marker))
        values = dict(top)
        values.update(("G_synthesis/" + n, v) for n, v in synthesis)
        values.update(("G_mapping/" + n, v) for n, v in mapping)
        return net, values

    G, _ = generator("G")
    Gs, gs_values = generator("Gs")
    d_vars = d_variables(rnd, label_size)
    D = OfficialNetwork(official_state(2, "D", "D_basic", {k: kw[k] for k in D_KEYS if k in kw} |
                                       {k: v for k, v in overrides.items() if k not in KW}, d_vars, marker=marker))
    return (G, D, Gs), gs_values, dict(d_vars)


def load_official(tmp_path, version=3, **overrides):
    """Write an official-layout pickle, load it as data; returns (G, D, Gs), Gs's values, D's values."""
    marker = tmp_path / "executed.txt"
    nets, gs_values, d_values = official_networks(version, marker, **overrides)
    path = tmp_path / "karras2019stylegan-test.pkl"
    path.write_bytes(pickle.dumps(nets, protocol=4))
    with open(path, "rb") as f:
        loaded = load_network_pkl(f)
    assert not marker.exists(), "build_module_src was executed"
    return loaded, gs_values, d_values


# ----------------------------------------------------------------------------------------------------------------
# The original's arithmetic, transcribed plainly in NumPy (float64). TF layouts: conv [k, k, in, out], dense [in, out].

def he(shape, gain, lrmul=1.0):  # get_weight with use_wscale=True: the runtime coefficient
    return gain / np.sqrt(np.prod(shape[:-1])) * lrmul


def lrelu(x):
    return np.maximum(x, 0.2 * x)


def ref_conv(x, w):
    """tf.nn.conv2d, stride 1, 'SAME', odd kernel."""
    k, p = w.shape[0], w.shape[0] // 2
    h, wd = x.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0), (p, p), (p, p)])
    return sum(np.einsum("nchw,co->nohw", xp[:, :, i:i + h, j:j + wd], w[i, j]) for i in range(k) for j in range(k))


def ref_upscale(x, factor=2):
    return x.repeat(factor, axis=2).repeat(factor, axis=3)


def ref_downscale(x, factor=2):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // factor, factor, w // factor, factor).mean(axis=(3, 5))


def ref_blur(x):
    """blur2d with [1, 2, 1]: depthwise 'SAME' with outer([1,2,1], [1,2,1]) / 16."""
    f = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    h, w = x.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)])
    return sum(f[i, j] * xp[:, :, i:i + h, j:j + w] for i in range(3) for j in range(3))


def fused_kernel(w):
    wp = np.pad(w, [(1, 1), (1, 1), (0, 0), (0, 0)])
    return wp[1:, 1:] + wp[:-1, 1:] + wp[1:, :-1] + wp[:-1, :-1]


def ref_upscale2d_conv2d(x, w, fused):
    if not fused:
        return ref_conv(ref_upscale(x), w)
    # tf.nn.conv2d_transpose(x, K [4, 4, out, in], stride 2, 'SAME'): input pixel i feeds outputs 2i + t - 1.
    K = fused_kernel(w.transpose(0, 1, 3, 2))
    n, _, h, wd = x.shape
    out = np.zeros([n, K.shape[2], 2 * h + 2, 2 * wd + 2])
    for ty in range(4):
        for tx in range(4):
            out[:, :, ty:ty + 2 * h:2, tx:tx + 2 * wd:2] += np.einsum("nchw,oc->nohw", x, K[ty, tx])
    return out[:, :, 1:2 * h + 1, 1:2 * wd + 1]


def ref_conv2d_downscale2d(x, w, fused):
    if not fused:
        return ref_downscale(ref_conv(x, w))
    # tf.nn.conv2d(x, K * 0.25 [4, 4, in, out], stride 2, 'SAME'): one pixel of padding on each side.
    K = fused_kernel(w) * 0.25
    h, wd = x.shape[2] // 2, x.shape[3] // 2
    xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)])
    return sum(np.einsum("nchw,co->nohw", xp[:, :, ty:ty + 2 * h:2, tx:tx + 2 * wd:2], K[ty, tx])
               for ty in range(4) for tx in range(4))


def ref_mapping(v, z, labels=None):
    x = z.astype(np.float64)
    if labels is not None:
        x = np.concatenate([x, labels @ v["LabelConcat/weight"]], axis=1)
    x = x / np.sqrt(np.mean(x ** 2, axis=1, keepdims=True) + 1e-8)
    for i in range(KW["mapping_layers"]):
        w, b = v[f"Dense{i}/weight"], v[f"Dense{i}/bias"]
        x = lrelu(x @ (w * he(w.shape, SQRT2, 0.01)) + b * 0.01)
    return np.repeat(x[:, np.newaxis], NUM_LAYERS, axis=1)


def ref_synthesis(v, dlatents, lod, fused_scale=False):
    """G_synthesis with the 'linear' structure, as the original writes it; constant noise."""
    n = dlatents.shape[0]

    def epilogue(x, scope, layer):
        x = x + v[f"noise{layer}"] * v[f"{scope}/Noise/weight"][None, :, None, None]
        x = lrelu(x + v[f"{scope}/bias"][None, :, None, None])
        x = x - x.mean(axis=(2, 3), keepdims=True)
        x = x / np.sqrt(np.mean(x ** 2, axis=(2, 3), keepdims=True) + 1e-8)
        w = v[f"{scope}/StyleMod/weight"]
        style = dlatents[:, layer] @ (w * he(w.shape, 1)) + v[f"{scope}/StyleMod/bias"]
        c = x.shape[1]
        return x * (style[:, :c, None, None] + 1) + style[:, c:, None, None]

    def weight(scope, gain=SQRT2):
        w = v[f"{scope}/weight"]
        return w * he(w.shape, gain)

    def torgb(res, x):
        return ref_conv(x, weight(f"ToRGB_lod{L - res}", 1)) + v[f"ToRGB_lod{L - res}/bias"][None, :, None, None]

    x = epilogue(np.tile(v["4x4/Const/const"], [n, 1, 1, 1]), "4x4/Const", 0)
    x = epilogue(ref_conv(x, weight("4x4/Conv")), "4x4/Conv", 1)
    images = torgb(2, x)
    for res in range(3, L + 1):
        scope = f"{2 ** res}x{2 ** res}"
        fused = fused_scale is True or (fused_scale == "auto" and 2 ** res >= 128)
        x = epilogue(ref_blur(ref_upscale2d_conv2d(x, weight(f"{scope}/Conv0_up"), fused)), f"{scope}/Conv0_up",
                     res * 2 - 4)
        x = epilogue(ref_conv(x, weight(f"{scope}/Conv1")), f"{scope}/Conv1", res * 2 - 3)
        img = torgb(res, x)
        images = ref_upscale(images)
        images = img + (images - img) * np.clip(lod - (L - res), 0, 1)  # tflib.lerp_clip(img, images, lod_in - lod)
    return images


def ref_G_style(values, z, psi=0.7, cutoff=8, lod=0.0, fused_scale=False):
    sub = lambda prefix: {k[len(prefix):]: v for k, v in values.items() if k.startswith(prefix)}
    w = ref_mapping(sub("G_mapping/"), z)
    coefs = np.where(np.arange(NUM_LAYERS) < cutoff, psi, 1.0)[None, :, None]
    w = values["dlatent_avg"] + (w - values["dlatent_avg"]) * coefs
    return ref_synthesis(sub("G_synthesis/"), w, lod, fused_scale)


def ref_mbstd(x, group_size=4):
    n, c, h, w = x.shape
    g = min(group_size, n)
    m = n // g
    y = x.reshape(g, m, c, h, w)  # sample i is in group i % m
    std = np.sqrt(np.mean((y - y.mean(axis=0)) ** 2, axis=0) + 1e-8).mean(axis=(1, 2, 3))  # [m]
    feature = np.broadcast_to(std[np.arange(n) % m][:, None, None, None], (n, 1, h, w))
    return np.concatenate([x, feature], axis=1)


def ref_D_basic(v, images, lod=0.0, fused_scale=False, labels=None):
    """D_basic with the 'linear' structure, as the original writes it."""
    def layer(scope, x, down=False, fused=False):
        w = v[f"{scope}/weight"] * he(v[f"{scope}/weight"].shape, SQRT2)
        y = ref_conv2d_downscale2d(ref_blur(x), w, fused) if down else ref_conv(x, w)
        return lrelu(y + v[f"{scope}/bias"][None, :, None, None])

    def dense(scope, x, gain):
        w = v[f"{scope}/weight"]
        return x.reshape(x.shape[0], -1) @ (w * he(w.shape, gain)) + v[f"{scope}/bias"]

    def block(x, res):
        if res >= 3:
            scope = f"{2 ** res}x{2 ** res}"
            fused = fused_scale is True or (fused_scale == "auto" and 2 ** res >= 128)
            return layer(f"{scope}/Conv1_down", layer(f"{scope}/Conv0", x), down=True, fused=fused)
        x = layer("4x4/Conv", ref_mbstd(x))
        return dense("4x4/Dense1", lrelu(dense("4x4/Dense0", x, SQRT2)), 1)

    img = images.astype(np.float64)
    x = layer("FromRGB_lod0", img)
    for res in range(L, 2, -1):
        x = block(x, res)
        img = ref_downscale(img)
        y = layer(f"FromRGB_lod{L - res + 1}", img)
        x = x + (y - x) * np.clip(lod - (L - res), 0, 1)
    scores = block(x, 2)
    return scores if labels is None else (scores * labels).sum(axis=1, keepdims=True)


def assert_close(ours, ref, what, rtol=1e-4):
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != {ref.shape}"
    err, tol = np.abs(ours - ref).max(), rtol * max(1.0, np.abs(ref).max())
    assert err <= tol, f"{what}: max abs error {err:.3g} > {tol:.3g}"


UINT8 = dict(func=tflib.convert_images_to_uint8, nchw_to_nhwc=True)


# ----------------------------------------------------------------------------------------------------------------
# Loading.

@pytest.mark.parametrize("version", [3, 4])
def test_official_pickle_loads_as_data_and_runs_like_pretrained_example(tmp_path, version):
    (G, D, Gs), gs_values, d_values = load_official(tmp_path, version)
    assert set(Gs.vars) == set(gs_values) and set(D.vars) == set(d_values)
    for net, values in ((Gs, gs_values), (D, d_values)):
        for name, value in values.items():
            got = net.get_var(name)
            assert got.dtype == np.float32 and got.shape == np.shape(value) and np.array_equal(got, value), name
    synthesis, mapping = Gs.components.synthesis, Gs.components.mapping
    assert isinstance(mapping.module, networks_stylegan.MappingNetwork)  # StyleGAN's G_mapping, not StyleGAN2's
    assert isinstance(synthesis.module, networks_stylegan.SynthesisNetwork)
    assert [name for name in synthesis.vars if name.startswith("noise")] == [f"noise{i}" for i in range(NUM_LAYERS)]
    assert list(Gs.own_vars) == ["lod", "dlatent_avg"]
    assert Gs.input_shapes == [[None, 16], [None, 0]] and Gs.output_shape == [None, 3, 64, 64]
    assert mapping.output_shape == [None, NUM_LAYERS, 16] and synthesis.input_shape == [None, NUM_LAYERS, 16]
    assert D.output_shape == [None, 1]

    # pretrained_example.py of the original.
    latents = np.random.RandomState(5).randn(2, Gs.input_shape[1])
    images = Gs.run(latents, None, truncation_psi=0.7, randomize_noise=True, output_transform=UINT8)
    assert images.shape == (2, 64, 64, 3) and images.dtype == np.uint8
    dlatents = mapping.run(latents, None)
    assert dlatents.shape == (2, NUM_LAYERS, 16)
    const = synthesis.run(dlatents, randomize_noise=False, output_transform=UINT8)
    assert const.shape == (2, 64, 64, 3)
    assert np.array_equal(Gs.get_var("dlatent_avg"), gs_values["dlatent_avg"])
    assert D.run(Gs.run(latents, None, randomize_noise=False), None).shape == (2, 1)

    # Saved by us and loaded again: the same networks, the state of version 4 with a placeholder naming the module.
    path = tmp_path / "resaved.pkl"
    save_network_pkl((G, D, Gs), str(path))
    assert b"build_module_src was executed" not in path.read_bytes()
    with open(path, "rb") as f:
        _G2, D2, Gs2 = load_network_pkl(f)
    state = Gs2.components.mapping.__getstate__()
    assert state["version"] == 4 and state["build_func_name"] == "G_mapping"
    assert "training.networks_stylegan.G_mapping" in state["build_module_src"]
    assert isinstance(Gs2.components.mapping.module, networks_stylegan.MappingNetwork)
    assert np.array_equal(Gs2.run(latents, None, randomize_noise=False), Gs.run(latents, None, randomize_noise=False))
    assert np.array_equal(D2.run(images.transpose(0, 3, 1, 2) / 127.5 - 1, None),
                          D.run(images.transpose(0, 3, 1, 2) / 127.5 - 1, None))


def test_pretrained_networks_load_networks(tmp_path):
    nets, _, _ = official_networks(3)
    path = tmp_path / "official.pkl"
    path.write_bytes(pickle.dumps(nets, protocol=4))
    _G, _D, Gs = pretrained_networks.load_networks(str(path))
    assert Gs.run(np.zeros([1, 16]), None, output_transform=UINT8).shape == (1, 64, 64, 3)


def test_which_g_mapping_a_pickle_gets():
    """StyleGAN's and StyleGAN2's G_mapping share name and variables but not arithmetic (StyleGAN puts the sqrt(2)
    gain in the weights, StyleGAN2 after the activation): the module behind the name decides, as in the original."""
    rnd = np.random.RandomState(3)
    _top, mapping_vars, _synthesis = g_variables(rnd)
    kw = dict(KW, dlatent_broadcast=NUM_LAYERS)

    def load(source, version=3):
        net = OfficialNetwork(official_state(version, "G_mapping", "G_mapping", kw, mapping_vars, source=source))
        return pickle.loads(pickle.dumps(net, protocol=4))
    stylegan2_src = "raise SystemExit\ndef G_main(): pass\ndef G_mapping(): pass\ndef G_synthesis_stylegan2(): pass\n"
    ours1 = Network.__new__(Network)
    ours1.__setstate__(dict(official_state(4, "G_mapping", "G_mapping", kw, mapping_vars, source=
                            "# No source code is stored in this pickle: build function "
                            "'training.networks_stylegan.G_mapping' is implemented by the loader.\n")))
    assert isinstance(load(SOURCE).module, networks_stylegan.MappingNetwork)
    assert isinstance(ours1.module, networks_stylegan.MappingNetwork)
    assert isinstance(load(stylegan2_src).module, networks_stylegan2.MappingNetwork)
    # No telling source (e.g. files we wrote before StyleGAN was supported): StyleGAN2's, as before.
    assert isinstance(load("raise SystemExit\n").module, networks_stylegan2.MappingNetwork)
    assert isinstance(Network(func_name="G_mapping", **kw).module, networks_stylegan2.MappingNetwork)
    assert isinstance(Network(func_name="training.networks_stylegan.G_mapping", **kw).module,
                      networks_stylegan.MappingNetwork)

    z = np.random.RandomState(4).randn(3, 16)
    v1 = load(SOURCE)
    assert_close(v1.run(z, None), ref_mapping(dict(mapping_vars), z), "StyleGAN G_mapping")
    assert not np.allclose(v1.run(z, None), load(stylegan2_src).run(z, None), atol=1e-3)

    # G_style always runs StyleGAN's mapping, whatever its mapping's source says.
    top, mapping_vars, synthesis_vars = g_variables(rnd)
    comps = dict(synthesis=OfficialNetwork(official_state(3, "G_synthesis", "G_synthesis", KW, synthesis_vars)),
                 mapping=OfficialNetwork(official_state(3, "G_mapping", "G_mapping", kw, mapping_vars,
                                                        source="raise SystemExit\n")))
    Gs = pickle.loads(pickle.dumps(OfficialNetwork(official_state(3, "Gs", "G_style", KW, top, comps)), protocol=4))
    assert isinstance(Gs.components.mapping.module, networks_stylegan.MappingNetwork)
    assert np.array_equal(Gs.components.mapping.get_var("Dense0/bias"), dict(mapping_vars)["Dense0/bias"])
    assert Gs.module.mapping is Gs.components.mapping.module


def test_conditional_mapping_matches_reference(tmp_path):
    (_G, D, Gs), values, d_values = load_official(tmp_path, label_size=3)
    z = np.random.RandomState(6).randn(4, 16)
    labels = np.eye(3)[[0, 1, 2, 0]]
    mapping = {k[len("G_mapping/"):]: v for k, v in values.items() if k.startswith("G_mapping/")}
    assert_close(Gs.components.mapping.run(z, labels), ref_mapping(mapping, z, labels), "conditional mapping")
    images = np.random.RandomState(7).randn(4, 3, 64, 64)
    assert_close(D.run(images, labels), ref_D_basic(d_values, images, labels=labels), "conditional D_basic")


# ----------------------------------------------------------------------------------------------------------------
# Fidelity against the transcription of the original.

@pytest.mark.parametrize("fused_scale", [False, True])
def test_generator_matches_reference(tmp_path, fused_scale):
    (_G, _D, Gs), values, _ = load_official(tmp_path, fused_scale=fused_scale)
    z = np.random.RandomState(8).randn(3, 16)
    for lod in (0.0, 0.5, 1.25, 3.0, 4.0):  # 4 = log2(64) - 2: the 4x4 level
        Gs.set_var("lod", lod)
        what = f"G_style(fused_scale={fused_scale}, lod={lod})"
        assert_close(Gs.run(z, None, randomize_noise=False), ref_G_style(values, z, lod=lod, fused_scale=fused_scale),
                     what)
    Gs.set_var("lod", 0)
    assert_close(Gs.run(z, None, truncation_psi=0.5, truncation_cutoff=4, randomize_noise=False),
                 ref_G_style(values, z, psi=0.5, cutoff=4, fused_scale=fused_scale), "G_style(psi=0.5, cutoff=4)")
    uint8 = Gs.run(z, None, truncation_psi=0.7, randomize_noise=False, output_transform=UINT8)
    expected = np.clip(ref_G_style(values, z, fused_scale=fused_scale) * 127.5 + 128, 0, 255).astype(np.uint8)
    assert np.abs(uint8.astype(int) - expected.transpose(0, 2, 3, 1)).max() <= 1


@pytest.mark.parametrize("fused_scale", [False, True])
def test_discriminator_matches_reference(tmp_path, fused_scale):
    (_G, D, _Gs), _, d_values = load_official(tmp_path, fused_scale=fused_scale)
    images = np.random.RandomState(9).randn(8, 3, 64, 64)
    for lod in (0.0, 0.5, 1.25, 3.0, 4.0):
        D.set_var("lod", lod)
        assert_close(D.run(images, None), ref_D_basic(d_values, images, lod, fused_scale), f"D_basic(lod={lod})")


def test_fused_scale_auto_fuses_from_128():
    kw = dict(resolution=256, fmap_base=256, fmap_max=4, dlatent_size=8, latent_size=8)
    synthesis = Network("G_synthesis", func_name="G_synthesis", **kw).module
    D = Network("D", func_name="D_basic", **kw).module
    for res in range(3, 9):
        assert synthesis.get_submodule(f"{2 ** res}x{2 ** res}.Conv0_up").fused == (2 ** res >= 128), res
        assert D.get_submodule(f"{2 ** res}x{2 ** res}.Conv1_down").fused == (2 ** res >= 128), res


# ----------------------------------------------------------------------------------------------------------------
# Truncation, level of detail, noise, batches, training.

def test_truncation_defaults_to_psi_0_7_on_the_first_8_layers(tmp_path):
    (_G, _D, Gs), _, _ = load_official(tmp_path)
    z = np.random.RandomState(10).randn(3, 16)
    w = Gs.components.mapping.run(z, None)
    avg = Gs.get_var("dlatent_avg")
    synthesis = Gs.components.synthesis

    def expected(psi, cutoff):
        wt = w.copy()
        if psi is not None and cutoff is not None:
            wt[:, :cutoff] = avg + (w[:, :cutoff] - avg) * psi
        return wt

    cases = [(dict(), (0.7, 8)), (dict(truncation_psi=0.5), (0.5, 8)), (dict(truncation_psi=0.5, truncation_cutoff=3),
             (0.5, 3)), (dict(truncation_psi=0.5, truncation_cutoff=None), (None, None)),  # no cutoff: no truncation
             (dict(truncation_psi=1), (None, None)), (dict(truncation_psi=None), (None, None)),
             (dict(truncation_psi=0.5, truncation_cutoff=0), (None, None)),
             (dict(is_validation=True, truncation_psi_val=0.3, truncation_cutoff_val=5), (0.3, 5))]
    for kwargs, (psi, cutoff) in cases:
        images, dlatents = Gs.run(z, None, randomize_noise=False, return_dlatents=True, **kwargs)
        wt = expected(psi, cutoff)
        assert np.allclose(dlatents, wt, atol=1e-6), kwargs
        assert np.allclose(dlatents[:, 8:], w[:, 8:]), kwargs  # layers 8, 9 are never truncated by default
        assert np.allclose(images, synthesis.run(wt, randomize_noise=False), atol=1e-5), kwargs


def test_level_of_detail(tmp_path):
    (_G, _D, Gs), _, _ = load_official(tmp_path)
    synthesis = Gs.components.synthesis
    z = np.random.RandomState(11).randn(2, 16)

    def at(lod, net=Gs):
        net.set_var("lod", lod)
        return net.run(z, None, randomize_noise=False)
    full = at(0.0)
    fixed = Gs.clone(structure="fixed")
    assert "G_synthesis/ToRGB_lod1/weight" not in fixed.vars and "G_synthesis/ToRGB_lod0/weight" in fixed.vars
    assert np.allclose(full, fixed.run(z, None, randomize_noise=False), atol=1e-6)
    one, two = at(1.0), at(2.0)
    assert np.array_equal(two, ref_upscale(two[:, :, ::4, ::4], 4))  # lod 2: 16x16 detail at 64x64
    assert np.array_equal(one, ref_upscale(one[:, :, ::2, ::2], 2)) and not np.allclose(one, full, atol=1e-3)
    assert np.allclose(at(1.25), one + (two - one) * 0.25, atol=1e-5)  # the blend of the adjacent levels
    assert np.allclose(at(0.5), full + (one - full) * 0.5, atol=1e-5)
    # G_style hands its lod to the synthesis network, as the original assigns it; alone, synthesis uses its own.
    assert synthesis.get_var("lod") == 0.5
    w = Gs.components.mapping.run(z, None)
    synthesis.set_var("lod", 2.0)
    assert np.allclose(synthesis.run(w, randomize_noise=False), at(2.0, Gs.clone(truncation_psi=None)), atol=1e-5)
    # 'linear' and 'recursive' give the same images.
    linear = Gs.clone(structure="linear")
    for lod in (0.0, 0.5, 1.25, 4.0):
        assert np.allclose(at(lod, linear), at(lod), atol=1e-5), lod


def test_noise_modes_and_batch_independence(tmp_path):
    (_G, _D, Gs), _, _ = load_official(tmp_path)
    z = np.random.RandomState(12).randn(5, 16)
    for lod in (0.0, 0.5):
        Gs.set_var("lod", lod)
        full = Gs.run(z, None, randomize_noise=False)
        assert_close(Gs.run(z, None, randomize_noise=False, minibatch_size=1), full, "batches of 1", rtol=1e-5)
        assert_close(Gs.run(z[2:3], None, randomize_noise=False), full[2:3], "one sample", rtol=1e-5)
    Gs.set_var("lod", 0)
    assert not np.allclose(Gs.run(z, None, randomize_noise=True), Gs.run(z, None, randomize_noise=True))
    stored = [torch.as_tensor(var.eval()) for name, var in Gs.components.synthesis.vars.items()
              if name.startswith("noise")]
    assert np.allclose(Gs.run(z, None, noise_inputs=stored), Gs.run(z, None, randomize_noise=False), atol=1e-6)
    assert Gs.components.synthesis.module.noise_shapes() == [list(t.shape) for t in stored]
    # Tools written for StyleGAN2 pass fused_modconv; StyleGAN has no modulated convolution and ignores it.
    assert np.allclose(Gs.run(z, None, randomize_noise=False, fused_modconv=False),
                       Gs.run(z, None, randomize_noise=False), atol=1e-6)


def test_training_mode_tracks_w_average_mixes_styles_and_backpropagates(tmp_path):
    (G, D, _Gs), _, _ = load_official(tmp_path)
    z = torch.randn(4, 16)
    avg_before = G.get_var("dlatent_avg")
    images = G.get_output_for(z, None, is_training=True, style_mixing_prob=0.9)
    w = G.components.mapping.get_output_for(z, None).detach().numpy()
    assert np.allclose(G.get_var("dlatent_avg"), w[:, 0].mean(0) + (avg_before - w[:, 0].mean(0)) * 0.995, atol=1e-6)
    assert images.shape == (4, 3, 64, 64)
    D.get_output_for(images, None).sum().backward()
    used = [name for name in G.trainables if "ToRGB_lod" not in name or "ToRGB_lod0/" in name]  # lod 0
    assert all(G.trainables[name].tensor.grad is not None for name in used)
    assert all(G.trainables[name].tensor.grad is None for name in G.trainables if name not in used)
    # Without mixing and truncation, training output = the untruncated output (constant noise).
    a = G.get_output_for(z, None, is_training=True, style_mixing_prob=0, randomize_noise=False)
    b = G.get_output_for(z, None, truncation_psi=None, randomize_noise=False)
    assert torch.allclose(a, b, atol=1e-5)
    # With mixing always on, some layers take their styles from other latents.
    torch.manual_seed(0)
    mixed, dl = G.get_output_for(z, None, is_training=True, style_mixing_prob=1.0, randomize_noise=False,
                                 return_dlatents=True)
    assert not torch.allclose(mixed, b, atol=1e-4) and torch.allclose(dl[:, 0], torch.as_tensor(w[:, 0]), atol=1e-6)


# ----------------------------------------------------------------------------------------------------------------
# run_generator.py on a StyleGAN pickle.

def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, "run_generator.py"), *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_run_generator_on_a_stylegan_pickle(tmp_path):
    nets, _, _ = official_networks(3)
    pkl = tmp_path / "karras2019stylegan-test.pkl"
    pkl.write_bytes(pickle.dumps(nets, protocol=4))
    runs = {}
    for batch in (1, 3):
        out = tmp_path / f"b{batch}"
        result = run_cli("generate-images", f"--network={pkl}", "--seeds=1-3", "--truncation-psi=0.7",
                         f"--batch-size={batch}", f"--result-dir={out}")
        assert result.returncode == 0, result.stderr
        (run_dir,) = [os.path.join(out, name) for name in os.listdir(out)]
        runs[batch] = {name: np.array(PIL.Image.open(os.path.join(run_dir, name)))
                       for name in sorted(os.listdir(run_dir)) if name.endswith(".png")}
    assert sorted(runs[1]) == ["seed0001.png", "seed0002.png", "seed0003.png"]
    for name in runs[1]:  # the same up to float rounding (CPU convolutions of 1 and 3 samples round differently)
        diff = np.abs(runs[1][name].astype(int) - runs[3][name].astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, name

    # The original flow: z, then every noise variable of the synthesis network from the seed's RandomState.
    with open(pkl, "rb") as f:
        _G, _D, Gs = load_network_pkl(f)
    noise_vars = [var for name, var in Gs.components.synthesis.vars.items() if name.startswith("noise")]
    assert len(noise_vars) == NUM_LAYERS
    for seed in (1, 2, 3):
        rnd = np.random.RandomState(seed)
        z = rnd.randn(1, *Gs.input_shape[1:])
        tflib.set_vars({var: rnd.randn(*var.shape) for var in noise_vars})
        image = Gs.run(z, None, truncation_psi=0.7, randomize_noise=False, output_transform=UINT8)[0]
        assert np.abs(image.astype(int) - runs[1]["seed%04d.png" % seed]).max() <= 1, seed

    out = tmp_path / "mix"
    result = run_cli("style-mixing-example", f"--network={pkl}", "--row-seeds=1,2", "--col-seeds=3",
                     "--col-styles=0-3", "--truncation-psi=0.7", f"--result-dir={out}")
    assert result.returncode == 0, result.stderr
    (run_dir,) = [os.path.join(out, name) for name in os.listdir(out)]
    names = set(os.listdir(run_dir))
    assert {"1-1.png", "2-2.png", "3-3.png", "1-3.png", "2-3.png", "grid.png"} <= names
    assert PIL.Image.open(os.path.join(run_dir, "grid.png")).size == (64 * 2, 64 * 3)
