"""How the other StyleGAN2 tools name and lay out the networks' tensors, and conversions between their state dicts
and our networks: stylegan2-ada-pytorch / stylegan3 (facts from its legacy.py, the TensorFlow -> PyTorch converter)
and rosinality's stylegan2-pytorch (from its convert_weight.py).

Our variables keep the original TensorFlow names and layouts (conv [k, k, in, out], dense [in, out]); theirs are
PyTorch's ([out, in, k, k], [out, in]). Upsampling convolutions store their kernel flipped (they are transposed
convolutions there); the style biases are stored with the 1 that we add after the bias; the equalised-learning-rate
coefficients are the same on both sides and stay out of the stored values. Importers build our networks through
original-format states, so that Network.__setstate__ checks every name and shape; see checkpoint_formats.py for
the files themselves.
"""

import contextlib
import inspect
import warnings

import numpy as np
import torch

from dnnlib import util
from dnnlib.tflib.network import Network
from training import networks_stylegan2 as sg2

# ----------------------------------------------------------------------------------------------------------------
# Original-format states -> Networks.

OUR_MODULE = "training.networks_stylegan2."


def network_state(name, func, static_kwargs, variables, components=None):
    """An original-format (version 4) network state for one of our StyleGAN2 build functions."""
    return dict(version=4, name=name, static_kwargs=dict(static_kwargs), components=components or {},
                build_module_src="", build_func_name=OUR_MODULE + func, variables=list(variables))


def generator_state(name, kwargs, variables):
    """A G_main state with its mapping and synthesis components, from variables under G's full names."""
    num_layers = int(np.log2(kwargs["resolution"])) * 2 - 2
    part = lambda prefix: [(n[len(prefix):], v) for n, v in variables.items() if n.startswith(prefix)]
    components = dict(
        mapping=network_state("G_mapping", "G_mapping", dict(kwargs, dlatent_broadcast=num_layers), part("G_mapping/")),
        synthesis=network_state("G_synthesis", "G_synthesis_stylegan2", kwargs, part("G_synthesis/")))
    own = [(n, v) for n, v in variables.items() if "/" not in n]
    return network_state(name, "G_main", kwargs, [("lod", np.float32(0))] + own, components)


def build_network(state):
    """A Network from an original-format state: a dict, or an unpickled stand-in holding one in `.state`
    (checkpoint_formats.NetworkState); its components first."""
    state = getattr(state, "state", state)
    if not isinstance(state, dict) or not isinstance(state.get("components", {}), dict):
        raise util.UserError("not a valid network pickle: a network state is not a dict")
    components = {key: build_network(comp) for key, comp in state.get("components", {}).items()}
    net = Network.__new__(Network)
    net.__setstate__(dict(state, components=components))
    return net


# Our minibatch-stddev group size for "the whole minibatch" (the others' None): min(group, N) is then N.
_WHOLE_MINIBATCH = 2 ** 31


def mbstd_kwargs(group_size, num_features):
    """Our D's mbstd kwargs for the others' (group size or None = whole minibatch, features or 0 = off)."""
    if not num_features:
        return dict(mbstd_group_size=0, mbstd_num_features=1)
    return dict(mbstd_group_size=_WHOLE_MINIBATCH if group_size is None else int(group_size),
                mbstd_num_features=int(num_features))


# ----------------------------------------------------------------------------------------------------------------
# Name tables: (our variable name, their tensor name, layout) for the StyleGAN2 architecture. Our name is None for
# their constant resampling-filter buffers, which are written on export and checked on import.

_FIR = torch.tensor([1.0, 3.0, 3.0, 1.0])
_FILTER = torch.outer(_FIR, _FIR) / 64  # [1,3,3,1] normalised, as both tools store it


def _flip_then(layout):
    """A layout that first flips the kernel: transposed convolutions (upsampling) store their kernel flipped."""
    to_theirs, to_ours = _LAYOUTS[layout]
    return lambda t: to_theirs(t.flip(0, 1)), lambda t: to_ours(t).flip(0, 1)


_LAYOUTS = {  # name: (ours -> theirs, theirs -> ours)
    "same": (lambda t: t, lambda t: t),
    "dense": (lambda t: t.t(), lambda t: t.t()),  # [in, out] <-> [out, in]
    "conv": (lambda t: t.permute(3, 2, 0, 1), lambda t: t.permute(2, 3, 1, 0)),  # [k, k, in, out] <-> [out, in, k, k]
    "modconv": (lambda t: t.permute(3, 2, 0, 1)[None], lambda t: t[0].permute(2, 3, 1, 0)),  # <-> [1, out, in, k, k]
    "style_bias": (lambda t: t + 1, lambda t: t - 1),  # we add the 1 that styles start at after the bias
    "const": (lambda t: t[0], lambda t: t[None]),  # [1, C, 4, 4] <-> [C, 4, 4]
    "noise_plane": (lambda t: t[0, 0], lambda t: t[None, None]),  # [1, 1, r, r] <-> [r, r]
    "vector1": (lambda t: t.reshape(1), lambda t: t.reshape([])),
    "rgb_bias": (lambda t: t.reshape(1, -1, 1, 1), lambda t: t.reshape(-1)),
}
_LAYOUTS["conv_flip"] = _flip_then("conv")
_LAYOUTS["modconv_flip"] = _flip_then("modconv")
_CONSTANTS = {"filter": _FILTER, "filter_up": _FILTER * 4}  # rosinality scales its upsampling filters by 2 ** 2

# Per format: our modulated-conv variable -> (their name suffix, layout); ToRGB takes no noise.
_MODCONV = {
    "ada": dict(weight=("weight", "conv"), mod_weight=("affine.weight", "dense"),
                mod_bias=("affine.bias", "style_bias"), noise_strength=("noise_strength", "same"), bias=("bias", "same")),
    "rosinality": dict(weight=("conv.weight", "modconv"), mod_weight=("conv.modulation.weight", "dense"),
                       mod_bias=("conv.modulation.bias", "style_bias"), noise_strength=("noise.weight", "vector1"),
                       bias=("activate.bias", "same")),
}


def _modconv(fmt, ours, theirs, up=False, torgb=False):
    """Name-table rows of one modulated convolution (our scope, their module)."""
    for var, (suffix, layout) in _MODCONV[fmt].items():
        if torgb and var == "noise_strength":
            continue
        if torgb and fmt == "rosinality" and var == "bias":
            suffix, layout = "bias", "rgb_bias"
        yield f"{ours}/{var}", f"{theirs}.{suffix}", layout + ("_flip" if up and var == "weight" else "")


def _dense(ours, theirs):
    """Name-table rows of one fully connected layer."""
    yield f"{ours}/weight", f"{theirs}.weight", "dense"
    yield f"{ours}/bias", f"{theirs}.bias", "same"


def _ada_g_names(log2, architecture, mapping_layers, conditional=False):
    """G_main variables <-> stylegan2-ada-pytorch Generator state_dict (legacy.py's table, inverted); conditional:
    StyleGAN2-ADA's label embedding."""
    yield "dlatent_avg", "mapping.w_avg", "same"
    if conditional:
        yield from _dense("G_mapping/LabelEmbed", "mapping.embed")
    for i in range(mapping_layers):
        yield from _dense(f"G_mapping/Dense{i}", f"mapping.fc{i}")
    yield "G_synthesis/4x4/Const/const", "synthesis.b4.const", "const"
    for res in range(2, log2 + 1):
        scope, block = f"G_synthesis/{2 ** res}x{2 ** res}", f"synthesis.b{2 ** res}"
        yield None, f"{block}.resample_filter", "filter"
        convs = [("Conv", "conv1", 0)] if res == 2 else [("Conv0_up", "conv0", res * 2 - 5), ("Conv1", "conv1", res * 2 - 4)]
        for tf_name, name, noise in convs:
            yield from _modconv("ada", f"{scope}/{tf_name}", f"{block}.{name}", up=tf_name == "Conv0_up")
            yield f"G_synthesis/noise{noise}", f"{block}.{name}.noise_const", "noise_plane"
            yield None, f"{block}.{name}.resample_filter", "filter"
        if architecture == "skip" or res == log2:
            yield from _modconv("ada", f"{scope}/ToRGB", f"{block}.torgb", torgb=True)
        if architecture == "resnet" and res > 2:
            yield f"{scope}/Skip/weight", f"{block}.skip.weight", "conv_flip"
            yield None, f"{block}.skip.resample_filter", "filter"


def _ada_d_names(log2, architecture, mapping_layers=0, conditional=False):
    """D_stylegan2 variables <-> stylegan2-ada-pytorch Discriminator state_dict; conditional: StyleGAN2-ADA's label
    mapping (its Output, b4.out, then has cmap_dim outputs)."""
    def conv(ours, theirs, bias=True):
        yield f"{ours}/weight", f"{theirs}.weight", "conv"
        if bias:
            yield f"{ours}/bias", f"{theirs}.bias", "same"
        yield None, f"{theirs}.resample_filter", "filter"
    for res in range(log2, 2, -1):
        scope, block = f"{2 ** res}x{2 ** res}", f"b{2 ** res}"
        yield None, f"{block}.resample_filter", "filter"
        if architecture == "skip" or res == log2:
            yield from conv(f"{scope}/FromRGB", f"{block}.fromrgb")
        yield from conv(f"{scope}/Conv0", f"{block}.conv0")
        yield from conv(f"{scope}/Conv1_down", f"{block}.conv1")
        if architecture == "resnet":
            yield from conv(f"{scope}/Skip", f"{block}.skip", bias=False)
    if architecture == "skip":
        yield from conv("4x4/FromRGB", "b4.fromrgb")
    yield from conv("4x4/Conv", "b4.conv")
    yield from _dense("4x4/Dense0", "b4.fc")
    yield from _dense("Output", "b4.out")
    if conditional:
        yield from _dense("LabelEmbed", "mapping.embed")
        for i in range(mapping_layers):
            yield from _dense(f"Mapping{i}", f"mapping.fc{i}")


def _rosinality_g_names(log2, mapping_layers):
    """G_main synthesis and mapping variables <-> rosinality Generator state_dict (convert_weight.py's table)."""
    for i in range(mapping_layers):
        yield from _dense(f"G_mapping/Dense{i}", f"style.{i + 1}")
    yield "G_synthesis/4x4/Const/const", "input.input", "same"
    yield from _modconv("rosinality", "G_synthesis/4x4/Conv", "conv1")
    yield from _modconv("rosinality", "G_synthesis/4x4/ToRGB", "to_rgb1", torgb=True)
    for res in range(3, log2 + 1):
        scope, i = f"G_synthesis/{2 ** res}x{2 ** res}", res - 3
        yield from _modconv("rosinality", f"{scope}/Conv0_up", f"convs.{2 * i}", up=True)
        yield None, f"convs.{2 * i}.conv.blur.kernel", "filter_up"
        yield from _modconv("rosinality", f"{scope}/Conv1", f"convs.{2 * i + 1}")
        yield from _modconv("rosinality", f"{scope}/ToRGB", f"to_rgbs.{i}", torgb=True)
        yield None, f"to_rgbs.{i}.upsample.kernel", "filter_up"
    for i in range(log2 * 2 - 3):
        yield f"G_synthesis/noise{i}", f"noises.noise_{i}", "same"


def _rosinality_d_names(log2):
    """D_stylegan2 (resnet) variables <-> rosinality Discriminator state_dict."""
    def conv(ours, theirs, index, bias=True):  # ConvLayer: [Blur,] EqualConv2d, FusedLeakyReLU (holds the bias)
        yield f"{ours}/weight", f"{theirs}.{index}.weight", "conv"
        if bias:
            yield f"{ours}/bias", f"{theirs}.{index + 1}.bias", "same"
        if index:
            yield None, f"{theirs}.0.kernel", "filter"
    yield from conv(f"{2 ** log2}x{2 ** log2}/FromRGB", "convs.0", 0)
    for k, res in enumerate(range(log2, 2, -1), start=1):
        scope = f"{2 ** res}x{2 ** res}"
        yield from conv(f"{scope}/Conv0", f"convs.{k}.conv1", 0)
        yield from conv(f"{scope}/Conv1_down", f"convs.{k}.conv2", 1)
        yield from conv(f"{scope}/Skip", f"convs.{k}.skip", 1, bias=False)
    yield from conv("4x4/Conv", "final_conv", 0)
    yield from _dense("4x4/Dense0", "final_linear.0")
    yield from _dense("Output", "final_linear.1")


def _to_theirs(net, names):
    """Their state dict from our network's variables."""
    out = {}
    for ours, theirs, layout in names:
        value = _CONSTANTS[layout] if ours is None else _LAYOUTS[layout][0](net.vars[ours].tensor.detach().cpu())
        out[theirs] = value.float().contiguous().clone()
    return out


def _to_ours(tensors, names, source):
    """Our variables (full names -> arrays) from their state dict; their filters must be [1,3,3,1]."""
    out = {}
    for ours, theirs, layout in names:
        if theirs not in tensors:
            raise util.UserError(f"{source}: '{theirs}' is missing; the file does not hold the network its other "
                                 "tensors describe")
        value = tensors[theirs].detach().cpu().float()
        if ours is None:
            if value.shape != _CONSTANTS[layout].shape or not torch.allclose(value, _CONSTANTS[layout]):
                raise util.UserError(f"{source}: '{theirs}' is not the [1,3,3,1] resampling filter, the only one "
                                     "supported")
        else:
            out[ours] = _LAYOUTS[layout][1](value).numpy()
    return out


def _fmaps(channels, source):
    """(fmap_base, fmap_max) giving our networks these channels per resolution: min(2 fmap_base / res, fmap_max)."""
    fmap_max = channels[4]
    narrower = [(res, ch) for res, ch in sorted(channels.items()) if ch < fmap_max]
    fmap_base = narrower[0][0] * narrower[0][1] // 2 if narrower else max(channels) * fmap_max // 2
    nf = sg2.make_nf(fmap_base, 1.0, 1, fmap_max)
    if any(nf(int(np.log2(res)) - 1) != ch for res, ch in channels.items()):
        raise util.UserError(f"{source}: channel counts {dict(sorted(channels.items()))} do not follow "
                             "min(base / resolution, max), as StyleGAN2 networks' do")
    return fmap_base, fmap_max


def _count(tensors, pattern, start=0):
    """How many of pattern.format(start), pattern.format(start + 1), ... are in `tensors`."""
    n = 0
    while pattern.format(start + n) in tensors:
        n += 1
    return n


@contextlib.contextmanager
def layout_errors(source, what):
    """Turn a missing name or odd value met while reading another tool's layout into one UserError line."""
    try:
        yield
    except (KeyError, AttributeError, TypeError, ValueError, IndexError) as e:
        raise util.UserError(f"{source}: not the {what} layout this toolkit knows ({type(e).__name__}: {e})") from None


# ----------------------------------------------------------------------------------------------------------------
# stylegan2-ada-pytorch / stylegan3: pickles, and the state files written here.

def _ada_kwargs_from_modules(G, D, source):
    """The stylegan2-ada-pytorch Generator and Discriminator kwargs of pickled modules, from their settings and
    tensor shapes (not from init_kwargs, whose layout and defaults differ between ada-pytorch and stylegan3)."""
    g, d = G.tensors(), D.tensors()
    res = int(G.state["img_resolution"])
    log2 = int(np.log2(res))
    g_base, g_max = _fmaps({2 ** r: g[f"synthesis.b{2 ** r}.conv1.weight"].shape[0] for r in range(2, log2 + 1)}, source)
    d_channels = {2 ** r: d[f"b{2 ** r}.conv0.weight"].shape[0] for r in range(3, log2 + 1)}
    d_base, d_max = _fmaps({**d_channels, 4: d["b4.conv.weight"].shape[0]}, source)
    mapping_layers = _count(g, "mapping.fc{}.weight")
    top = f"synthesis.b{res}"
    mbstd = D.child("b4").state["_modules"].get("mbstd")  # None (a plain attribute then) when switched off
    g_mapping = dict(num_layers=mapping_layers, layer_features=int(g["mapping.fc0.weight"].shape[0]),
                     lr_multiplier=float(G.setting("mapping.fc0", "bias_gain")),
                     activation=G.setting("mapping.fc0", "activation"))
    if "mapping.embed.weight" in g:  # conditional: the label embedding's width
        g_mapping["embed_features"] = int(g["mapping.embed.weight"].shape[0])
    d_conditional = {}
    if "mapping.embed.weight" in d:  # conditional: projection onto the mapped label
        d_layers = _count(d, "mapping.fc{}.weight")
        d_conditional = dict(cmap_dim=int(d["b4.out.weight"].shape[0]), mapping_kwargs=dict(
            num_layers=d_layers, lr_multiplier=float(D.setting("mapping.fc0", "bias_gain")) if d_layers else 0.01,
            activation=D.setting("mapping.fc0", "activation") if d_layers else "lrelu"))
    G_kwargs = dict(
        z_dim=int(G.state["z_dim"]), c_dim=int(G.state["c_dim"]), w_dim=int(G.state["w_dim"]), img_resolution=res,
        img_channels=int(G.state["img_channels"]),
        mapping_kwargs=g_mapping,
        synthesis_kwargs=dict(channel_base=2 * g_base, channel_max=g_max, architecture=G.setting(top, "architecture"),
                              num_fp16_res=sum(bool(G.setting(f"synthesis.b{2 ** r}", "use_fp16"))
                                               for r in range(2, log2 + 1)),
                              conv_clamp=G.setting(f"{top}.conv1", "conv_clamp"),
                              activation=G.setting(f"{top}.conv1", "activation")))
    D_kwargs = dict(
        c_dim=int(D.state["c_dim"]), img_resolution=res, img_channels=int(D.state["img_channels"]),
        architecture=D.setting(f"b{res}", "architecture"), channel_base=2 * d_base, channel_max=d_max,
        num_fp16_res=sum(bool(D.setting(f"b{2 ** r}", "use_fp16")) for r in range(3, log2 + 1)),
        conv_clamp=D.setting("b4.conv", "conv_clamp"),
        block_kwargs=dict(activation=D.setting("b4.conv", "activation")),
        epilogue_kwargs=dict(mbstd_group_size=mbstd.state.get("group_size") if mbstd else None,
                             mbstd_num_channels=int(mbstd.state.get("num_channels", 1)) if mbstd else 0),
        **d_conditional)
    return G_kwargs, D_kwargs


def _ours_from_ada_kwargs(G_kwargs, D_kwargs):
    """Our G_main and D_stylegan2 kwargs for stylegan2-ada-pytorch Generator and Discriminator kwargs (with
    ada-pytorch's defaults); its channel_base is twice our fmap_base."""
    m, s = G_kwargs.get("mapping_kwargs", {}), G_kwargs.get("synthesis_kwargs", {})
    e = D_kwargs.get("epilogue_kwargs", {})
    g = dict(resolution=G_kwargs["img_resolution"], num_channels=G_kwargs["img_channels"],
             latent_size=G_kwargs["z_dim"], label_size=G_kwargs["c_dim"], dlatent_size=G_kwargs["w_dim"],
             mapping_layers=m.get("num_layers", 8), mapping_fmaps=m.get("layer_features") or G_kwargs["w_dim"],
             mapping_lrmul=m.get("lr_multiplier", 0.01), mapping_nonlinearity=m.get("activation", "lrelu"),
             fmap_base=s.get("channel_base", 32768) // 2, fmap_max=s.get("channel_max", 512),
             architecture=s.get("architecture", "skip"), nonlinearity=s.get("activation", "lrelu"),
             num_fp16_res=s.get("num_fp16_res", 0), conv_clamp=s.get("conv_clamp"))
    d = dict(resolution=D_kwargs["img_resolution"], num_channels=D_kwargs["img_channels"],
             label_size=D_kwargs["c_dim"], fmap_base=D_kwargs.get("channel_base", 32768) // 2,
             fmap_max=D_kwargs.get("channel_max", 512), architecture=D_kwargs.get("architecture", "resnet"),
             nonlinearity=D_kwargs.get("block_kwargs", {}).get("activation", "lrelu"),
             num_fp16_res=D_kwargs.get("num_fp16_res", 0), conv_clamp=D_kwargs.get("conv_clamp"),
             **mbstd_kwargs(e.get("mbstd_group_size", 4), e.get("mbstd_num_channels", 1)))
    if g["label_size"]:  # ada-pytorch's MappingNetwork: embed_features defaults to w_dim
        g.update(label_conditioning="ada", label_fmaps=m.get("embed_features") or G_kwargs["w_dim"])
    if d["label_size"]:  # its Discriminator: cmap_dim defaults to the 4x4 channels; a MappingNetwork's defaults
        dm = D_kwargs.get("mapping_kwargs", {})
        cmap_dim = D_kwargs.get("cmap_dim") or min(d["fmap_base"] // 2, d["fmap_max"])
        if (dm.get("embed_features") or cmap_dim) != cmap_dim or (dm.get("layer_features") or cmap_dim) != cmap_dim:
            raise util.UserError("only ada-pytorch discriminators whose label mapping is cmap_dim wide throughout "
                                 "are supported")
        d.update(label_conditioning="ada", mapping_fmaps=cmap_dim, mapping_layers=dm.get("num_layers", 8),
                 mapping_lrmul=dm.get("lr_multiplier", 0.01))
    return g, d


def networks_from_ada(nets, G_kwargs, D_kwargs, source):
    """(G, D, Gs) from stylegan2-ada-pytorch state dicts {'G', 'D', 'G_ema'} and constructor kwargs."""
    g_kwargs, d_kwargs = _ours_from_ada_kwargs(G_kwargs, D_kwargs)
    log2 = int(np.log2(g_kwargs["resolution"]))
    g_names = list(_ada_g_names(log2, g_kwargs["architecture"], g_kwargs["mapping_layers"], bool(g_kwargs["label_size"])))
    d_names = list(_ada_d_names(log2, d_kwargs["architecture"], d_kwargs.get("mapping_layers", 0),
                                bool(d_kwargs["label_size"])))
    generator = lambda name, key: build_network(generator_state(name, g_kwargs, _to_ours(nets[key], g_names, source)))
    Gs = generator("Gs", "G_ema")
    G = generator("G", "G") if "G" in nets else Gs.clone("G")
    D = build_network(network_state("D", "D_stylegan2", d_kwargs, _to_ours(nets["D"], d_names, source).items()))
    return G, D, Gs


def networks_from_ada_pickle(G_ema, G, D, source):
    """(G, D, Gs) from the pickled modules (ModuleState) of a stylegan2-ada-pytorch or stylegan3 training pickle;
    G may be None."""
    synthesis = G_ema.child("synthesis").state.get("_modules", {})
    if "b4" not in synthesis:
        raise util.UserError(f"{source} holds a StyleGAN3 (alias-free) generator, which is a different architecture "
                             "from StyleGAN2's; only StyleGAN2-architecture pickles are supported")
    G_kwargs, D_kwargs = _ada_kwargs_from_modules(G_ema, D, source)
    nets = {"G_ema": G_ema.tensors(), "D": D.tensors()}
    if G is not None:
        nets["G"] = G.tensors()
    return networks_from_ada(nets, G_kwargs, D_kwargs, source)


def _ada_kwargs_from_ours(G, D):
    """stylegan2-ada-pytorch Generator and Discriminator kwargs that build our G and D's architecture."""
    g, d = _stylegan2_kwargs(G, D, "ada-pytorch-state")
    if (g["label_size"] or d["label_size"]) and (g["label_conditioning"], d["label_conditioning"]) != ("ada", "ada"):
        raise util.UserError("conditional networks cannot be written as ada-pytorch-state unless they condition on "
                             "labels as StyleGAN2-ADA does (label_conditioning='ada'): ada-pytorch embeds labels "
                             "differently")
    mbstd_on = d["mbstd_group_size"] > 1
    g_mapping = dict(num_layers=g["mapping_layers"], layer_features=g["mapping_fmaps"],
                     lr_multiplier=g["mapping_lrmul"], activation=g["mapping_nonlinearity"])
    d_conditional = {}
    if g["label_size"]:
        g_mapping["embed_features"] = g["label_fmaps"] or g["latent_size"]
    if d["label_size"]:
        cmap_dim = d["mapping_fmaps"] or sg2.make_nf(d["fmap_base"], 1.0, 1, d["fmap_max"])(0)
        d_conditional = dict(cmap_dim=cmap_dim, mapping_kwargs=dict(
            num_layers=d["mapping_layers"], embed_features=cmap_dim, layer_features=cmap_dim,
            activation=d["nonlinearity"], lr_multiplier=d["mapping_lrmul"]))
    G_kwargs = dict(z_dim=g["latent_size"], c_dim=g["label_size"], w_dim=g["dlatent_size"],
                    img_resolution=g["resolution"], img_channels=g["num_channels"], mapping_kwargs=g_mapping,
                    synthesis_kwargs=dict(channel_base=2 * g["fmap_base"], channel_max=g["fmap_max"],
                                          architecture=g["architecture"], num_fp16_res=g["num_fp16_res"],
                                          conv_clamp=g["conv_clamp"], activation=g["nonlinearity"]))
    D_kwargs = dict(c_dim=d["label_size"], img_resolution=d["resolution"], img_channels=d["num_channels"],
                    architecture=d["architecture"], channel_base=2 * d["fmap_base"], channel_max=d["fmap_max"],
                    num_fp16_res=d["num_fp16_res"], conv_clamp=d["conv_clamp"],
                    block_kwargs=dict(activation=d["nonlinearity"]),
                    epilogue_kwargs=dict(mbstd_group_size=d["mbstd_group_size"] if mbstd_on else None,
                                         mbstd_num_channels=d["mbstd_num_features"] if mbstd_on else 0),
                    **d_conditional)
    return G_kwargs, D_kwargs


def _effective_kwargs(net):
    """The kwargs a network was built with, its build functions' defaults included (G: mapping's and synthesis')."""
    parts = [net.components.mapping, net.components.synthesis] if "synthesis" in net.components else [net]
    kwargs = {}
    for part in parts:
        params = inspect.signature(type(part.module).__init__).parameters.values()
        kwargs.update((p.name, p.default) for p in params if p.default is not p.empty)
    for part in parts:
        kwargs.update(part.static_kwargs)
    return kwargs


def _stylegan2_kwargs(G, D, fmt):
    """Effective kwargs of a StyleGAN2 (G, D) pair that other tools' StyleGAN2 can express; UserError if not."""
    if not (isinstance(G.module, sg2.Generator) and isinstance(G.components.synthesis.module, sg2.SynthesisNetwork)
            and isinstance(G.components.mapping.module, sg2.MappingNetwork) and isinstance(D.module, sg2.Discriminator)):
        raise util.UserError(f"only StyleGAN2 networks (G_main with G_synthesis_stylegan2, D_stylegan2) can be written "
                             f"as {fmt}")
    g, d = _effective_kwargs(G), _effective_kwargs(D)
    for kwargs in (g, d):
        if list(kwargs["resample_kernel"]) != [1, 3, 3, 1] or kwargs["fmap_decay"] != 1 or kwargs["fmap_min"] != 1:
            raise util.UserError(f"{fmt} supports the standard resample_kernel [1,3,3,1], fmap_decay 1 and "
                                 f"fmap_min 1 only")
    if not g["normalize_latents"]:
        raise util.UserError(f"{fmt} always normalises latents; this network does not")
    return g, d


# ----------------------------------------------------------------------------------------------------------------
# rosinality stylegan2-pytorch.

def networks_from_rosinality(ckpt, source):
    """(G, D, Gs) from a rosinality checkpoint: 'g_ema' (required), 'g', 'd', 'latent_avg'."""
    g_ema = ckpt["g_ema"]
    log2 = _count(g_ema, "to_rgbs.{}.conv.weight") + 2
    style_dim = int(g_ema["style.1.weight"].shape[1])
    channels = {4: g_ema["conv1.conv.weight"].shape[1]}
    channels.update((2 ** r, g_ema[f"convs.{2 * r - 6}.conv.weight"].shape[1]) for r in range(3, log2 + 1))
    fmap_base, fmap_max = _fmaps(channels, source)
    g_kwargs = dict(resolution=2 ** log2, num_channels=int(g_ema["to_rgb1.conv.weight"].shape[1]),
                    latent_size=style_dim, dlatent_size=style_dim, mapping_fmaps=style_dim,
                    mapping_layers=_count(g_ema, "style.{}.weight", start=1),  # style.0 is PixelNorm
                    mapping_lrmul=0.01, fmap_base=fmap_base, fmap_max=fmap_max, architecture="skip")
    g_names = list(_rosinality_g_names(log2, g_kwargs["mapping_layers"]))

    def generator(name, key):
        variables = _to_ours(ckpt[key], g_names, source)
        variables["dlatent_avg"] = np.zeros([style_dim], np.float32)
        return build_network(generator_state(name, g_kwargs, variables))
    Gs = generator("Gs", "g_ema")
    if "latent_avg" in ckpt:
        Gs.set_var("dlatent_avg", ckpt["latent_avg"].detach().cpu().float().reshape(-1).numpy())
    else:  # train.py's checkpoints have none; its generate.py uses g_ema.mean_latent(4096) likewise
        z = np.random.RandomState(0).randn(4096, style_dim)
        Gs.set_var("dlatent_avg", Gs.components.mapping.run(z, None)[:, 0].mean(axis=0))
        warnings.warn(f"{source} has no 'latent_avg': the truncation centre is the mean W of 4096 random latents")
    G = generator("G", "g") if "g" in ckpt else Gs.clone("G")
    G.set_var("dlatent_avg", Gs.get_var("dlatent_avg"))
    if "d" in ckpt:
        d = ckpt["d"]
        d_channels = {2 ** r: d[f"convs.{log2 - r + 1}.conv1.0.weight"].shape[0] for r in range(3, log2 + 1)}
        d_base, d_max = _fmaps({**d_channels, 4: d["final_conv.0.weight"].shape[0]}, source)
        d_vars = _to_ours(d, list(_rosinality_d_names(log2)), source)
    else:
        d_base, d_max, d_vars = fmap_base, fmap_max, {}
        warnings.warn(f"{source} has no discriminator ('d'): D is freshly initialised")
    d_kwargs = dict(resolution=2 ** log2, num_channels=3, fmap_base=d_base, fmap_max=d_max, architecture="resnet",
                    mbstd_group_size=4, mbstd_num_features=1)
    with warnings.catch_warnings():
        if not d_vars:
            warnings.simplefilter("ignore")  # "variables missing from the pickle": said above
        D = build_network(network_state("D", "D_stylegan2", d_kwargs, d_vars.items()))
    return G, D, Gs


def _rosinality_args(G, D):
    """(Generator args, channel_multiplier) of rosinality's model for our G and D; UserError if it has none."""
    g, d = _stylegan2_kwargs(G, D, "rosinality")
    size, style_dim = g["resolution"], g["latent_size"]
    cm = 2 if size <= 32 else sg2.make_nf(g["fmap_base"], 1.0, 1, g["fmap_max"])(5) // 256  # channels at 64x64
    theirs = {r: 512 if r <= 32 else 16384 * cm // r for r in (2 ** i for i in range(2, int(np.log2(size)) + 1))}
    nf = lambda kwargs: {r: sg2.make_nf(kwargs["fmap_base"], 1.0, 1, kwargs["fmap_max"])(int(np.log2(r)) - 1)
                         for r in theirs}
    problems = [what for what, bad in [
        ("channels min(16384 * channel_multiplier / res, 512)", nf(g) != theirs or nf(d) != theirs or d["fmap_max"] != 512),
        ("z, w and mapping widths equal", not style_dim == g["dlatent_size"] == g["mapping_fmaps"]),
        ("architecture skip (G) and resnet (D)", (g["architecture"], d["architecture"]) != ("skip", "resnet")),
        ("3 colour channels and no labels", (g["num_channels"], g["label_size"]) != (3, 0)),
        ("minibatch stddev over groups of 4, 1 feature", (d["mbstd_group_size"], d["mbstd_num_features"]) != (4, 1)),
    ] if bad]
    if problems:
        raise util.UserError(f"rosinality's Generator/Discriminator cannot hold this network; they need "
                             f"{'; '.join(problems)}")
    lr = "" if g["mapping_lrmul"] == 0.01 else f", lr_mlp={g['mapping_lrmul']}"
    return f"Generator({size}, {style_dim}, {g['mapping_layers']}, channel_multiplier={cm}{lr})", cm, g


# ----------------------------------------------------------------------------------------------------------------
# Export.

def ada_pytorch_state(nets):
    """{'G', 'D', 'G_ema'}: stylegan2-ada-pytorch state dicts (load_state_dict-ready, buffers included) of our
    (G, D, Gs), with 'G_kwargs' and 'D_kwargs', the constructor kwargs of its Generator and Discriminator."""
    G, D, Gs = nets
    G_kwargs, D_kwargs = _ada_kwargs_from_ours(G, D)
    log2 = int(np.log2(G_kwargs["img_resolution"]))
    g_names = list(_ada_g_names(log2, G_kwargs["synthesis_kwargs"]["architecture"],
                                G_kwargs["mapping_kwargs"]["num_layers"], bool(G_kwargs["c_dim"])))
    d_names = list(_ada_d_names(log2, D_kwargs["architecture"], D_kwargs.get("mapping_kwargs", {}).get("num_layers", 0),
                                bool(D_kwargs["c_dim"])))
    return dict(G=_to_theirs(G, g_names), D=_to_theirs(D, d_names), G_ema=_to_theirs(Gs, g_names),
                G_kwargs=G_kwargs, D_kwargs=D_kwargs)


def rosinality_state(nets):
    """({'g_ema', 'g', 'd', 'latent_avg'}, how to construct rosinality's model for it): our (G, D, Gs) as a
    rosinality checkpoint; UserError if its Generator / Discriminator cannot hold them."""
    G, D, Gs = nets
    generator, cm, g = _rosinality_args(G, D)
    log2 = int(np.log2(g["resolution"]))
    g_names = list(_rosinality_g_names(log2, g["mapping_layers"]))
    ckpt = dict(g_ema=_to_theirs(Gs, g_names), g=_to_theirs(G, g_names), d=_to_theirs(D, list(_rosinality_d_names(log2))),
                latent_avg=Gs.vars["dlatent_avg"].tensor.detach().cpu().clone())
    how = f"g_ema = {generator}; Discriminator({g['resolution']}, channel_multiplier={cm}) takes 'd'"
    if g["conv_clamp"] is not None:
        how += f"; its model does not clamp activations (conv_clamp={g['conv_clamp']} here)"
    return ckpt, how
