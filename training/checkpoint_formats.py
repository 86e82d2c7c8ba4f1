"""Network files of the other StyleGAN tools, read as data into our (G, D, Gs) Networks, and written for them.

`load_networks_file` tells the formats apart by content (pickle opcodes, zip magic, dict keys), never by file name:

- pickles of the TensorFlow releases (StyleGAN, StyleGAN2, StyleGAN2-ADA) and ours: a (G, D, Gs) tuple of
  `dnnlib.tflib.network.Network` states. StyleGAN2-ADA's TensorFlow networks are StyleGAN2's under other
  build-function names ('G_synthesis', 'D_main') and are mapped onto ours;
- stylegan2-ada-pytorch and stylegan3 pickles of the StyleGAN2 architecture: a dict with 'G', 'D', 'G_ema', whose
  modules `torch_utils.persistence` would rebuild by executing the source code stored in the file. Here each module
  is an inert `ModuleState` holding its pickled attributes; tensors are rebuilt from their bytes by
  torch.load(weights_only=True); the stored source is never looked at;
- PyTorch checkpoints (torch.save zip or legacy), read with torch.load(weights_only=True): rosinality's
  stylegan2-pytorch ('g_ema', 'g', 'd', 'latent_avg') and the ada-pytorch state files written here;
- safetensors files written here.

Every reader turns its file into original-format network states (the variable names and TensorFlow layouts of
training/networks_stylegan2.py) and `Network.__setstate__` builds our networks from them, checking every name and
shape. `save_networks` writes the formats back ('ours', 'ada-pytorch-state', 'rosinality', 'safetensors').
"""

import argparse
import contextlib
import io
import json
import pickle
import warnings

import numpy as np
import torch

from dnnlib import util
from dnnlib.tflib.network_pickle import RestrictedUnpickler, UnsafePickleError, dump_network_pkl, load_network_pkl
from training.checkpoint_layouts import (OUR_MODULE, ada_pytorch_state, build_network, layout_errors, mbstd_kwargs,
                                         networks_from_ada, networks_from_ada_pickle, networks_from_rosinality,
                                         rosinality_state)

EXPORT_FORMATS = ("ours", "ada-pytorch-state", "rosinality", "safetensors")

# ----------------------------------------------------------------------------------------------------------------
# Pickles read as data.


class NetworkState:
    """Stands in for dnnlib.tflib.network.Network while unpickling: keeps the state and builds nothing, so that the
    states can be looked at (and StyleGAN2-ADA's renamed) before our networks are built from them."""

    state = None

    def __setstate__(self, state):
        self.state = state


class ModuleState:
    """Stands in for a torch.nn.Module while unpickling: keeps the pickled __dict__ (parameters, buffers,
    submodules and plain settings such as `conv_clamp`) and has no behaviour."""

    state = {}

    def __setstate__(self, state):
        self.state = state

    def child(self, path):
        """The submodule at a dotted path ('synthesis.b4.conv1')."""
        module = self
        for name in path.split("."):
            module = module.state["_modules"][name]
        return module

    def setting(self, path, name, default=None):
        """A plain attribute of the submodule at `path`, e.g. setting('synthesis.b4.conv1', 'conv_clamp')."""
        return self.child(path).state.get(name, default)

    def tensors(self, prefix=""):
        """Every parameter and buffer below this module by dotted name, as state_dict() names them."""
        out = {}
        for group in ("_parameters", "_buffers"):
            out.update((prefix + name, value) for name, value in self.state.get(group, {}).items()
                       if isinstance(value, torch.Tensor))
        for name, module in self.state.get("_modules", {}).items():
            if isinstance(module, ModuleState):
                out.update(module.tensors(f"{prefix}{name}."))
        return out


def _persistent_module(meta):
    """Our torch_utils.persistence._reconstruct_persistent_obj: the module's pickled state, as data. The original
    executes meta['module_src'] (the module's source code) to get the class; it is ignored here."""
    if not (isinstance(meta, dict) and isinstance(meta.get("state"), dict) and isinstance(meta.get("class_name"), str)):
        raise pickle.UnpicklingError("malformed torch_utils.persistence object")
    module = ModuleState()
    module.state = meta["state"]
    return module


def _storage(data):
    """Our torch.storage._load_from_bytes: plain pickle stores a tensor's storage as the bytes of a legacy
    torch.save of it, which torch.load(weights_only=True) reads as data."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TypedStorage deprecation
            storage = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:  # weights_only refusals and corrupt bytes alike: nothing was run
        raise UnsafePickleError("torch.storage._load_from_bytes with bytes that are not a plain tensor storage") from None
    if not isinstance(storage, torch.TypedStorage):
        raise UnsafePickleError("torch.storage._load_from_bytes with bytes that are not a plain tensor storage")
    return storage


def _tensor(storage, offset, size, stride, *_requires_grad_hooks_metadata):
    """Our torch._utils._rebuild_tensor_v2: a view of a storage that _storage() read."""
    if not isinstance(storage, torch.TypedStorage):
        raise pickle.UnpicklingError("a tensor without a storage")
    try:
        return torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, None)
    except (RuntimeError, TypeError) as e:
        raise pickle.UnpicklingError(f"a tensor that does not fit its storage ({e})") from None


def _parameter(data, _requires_grad=False, _backward_hooks=None):
    """Our torch._utils._rebuild_parameter: the tensor itself (no autograd state is needed)."""
    return data


_DATA_GLOBALS = {
    ("dnnlib.tflib.network", "Network"): NetworkState,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_module,
    ("torch._utils", "_rebuild_tensor_v2"): _tensor,
    ("torch._utils", "_rebuild_parameter"): _parameter,
    ("torch.storage", "_load_from_bytes"): _storage,
}


class DataUnpickler(RestrictedUnpickler):
    """The network-pickle unpickler, plus inert stand-ins for what pickles of PyTorch modules reference:
    persistence reconstruction, torch.nn module classes, and tensor rebuilding from bytes."""

    def find_class(self, module, name):
        if (module, name) in _DATA_GLOBALS:
            return _DATA_GLOBALS[(module, name)]
        if module.startswith("torch.nn.modules.") and name[:1].isupper():
            return ModuleState
        return super().find_class(module, name)


# ----------------------------------------------------------------------------------------------------------------
# StyleGAN2-ADA's TensorFlow states.

def _is_ada_tf_synthesis(state):
    """StyleGAN2-ADA's and StyleGAN1's synthesis are both 'G_synthesis'; ADA's has modulated convolutions."""
    return (isinstance(state, dict) and state.get("build_func_name") == "G_synthesis"
            and any(isinstance(item, tuple) and str(item[0]).endswith("/mod_weight") for item in state.get("variables", [])))


def _from_ada_tf(state, source):
    """A TensorFlow network state (tree) as our build functions take it. StyleGAN2-ADA's networks are StyleGAN2's
    under other build-function names and kwargs, and its state version 5 adds input and output shapes and names,
    which our networks derive themselves; other states are returned as they are."""
    state = getattr(state, "state", state)
    if not isinstance(state, dict) or not isinstance(state.get("components", {}), dict):
        return state  # build_network() says what is wrong
    comps = {key: _from_ada_tf(comp, source) for key, comp in state.get("components", {}).items()}
    state = dict(state, components=comps, version=4 if state.get("version") == 5 else state.get("version"))
    kwargs = dict(state.get("static_kwargs", {}))
    is_ada = state.get("build_func_name") == "D_main" or (
        state.get("build_func_name") == "G_main" and _is_ada_tf_synthesis(comps.get("synthesis")))
    if not is_ada:
        return state
    if kwargs.get("label_size"):  # ADA's label embedding (G) and projection discriminator with label mapping (D)
        kwargs["label_conditioning"] = "ada"
    if state.get("build_func_name") == "D_main":
        kwargs.update(mbstd_kwargs(kwargs.get("mbstd_group_size"), kwargs.get("mbstd_num_features", 1)))
        return dict(state, build_func_name=OUR_MODULE + "D_stylegan2", static_kwargs=kwargs)
    if kwargs.get("mapping_fmaps") is None:  # ADA's default: as wide as W
        kwargs["mapping_fmaps"] = kwargs.get("dlatent_size", 512)
    kwargs["synthesis_func"] = "G_synthesis_stylegan2"

    def ours(comp, func):
        return dict(comp, build_func_name=OUR_MODULE + func, static_kwargs={**comp["static_kwargs"], **kwargs})
    variables = list(state["variables"])
    if "lod" not in {name for name, _ in variables}:  # ADA's G_main has no lod
        variables.insert(0, ("lod", np.float32(0)))
    return dict(state, build_func_name=OUR_MODULE + "G_main", static_kwargs=kwargs, variables=variables,
                components=dict(synthesis=ours(comps["synthesis"], "G_synthesis_stylegan2"),
                                mapping=ours(comps["mapping"], "G_mapping")))


# ----------------------------------------------------------------------------------------------------------------
# safetensors (ours): tensors under our variable names, the network states (without variables) as metadata.

_SAFETENSORS_KEY = "stylegan2_toolkit_networks"
_KEYS = ("G", "D", "Gs")


def _import_safetensors():
    try:
        import safetensors.torch
    except ImportError:
        raise util.UserError("safetensors files need the safetensors package: pip install safetensors") from None
    return safetensors.torch


def _split_state(net, prefix, tensors):
    """The network's state with its variables moved into `tensors` under prefix + our variable name."""
    state = net.__getstate__()
    names = []
    for name, value in state["variables"]:
        tensors[prefix + name] = torch.as_tensor(np.asarray(value)).contiguous()
        names.append(name)
    state["variables"] = names
    state["components"] = {key: _split_state(comp, f"{prefix}{comp.name}/", tensors)
                           for key, comp in state["components"].items()}
    return state


def _join_state(state, prefix, tensors):
    """Inverse of _split_state."""
    variables = [(name, tensors[prefix + name].numpy()) for name in state["variables"]]
    components = {key: _join_state(comp, f"{prefix}{comp['name']}/", tensors)
                  for key, comp in state["components"].items()}
    return dict(state, variables=variables, components=components)


def _to_json(value):
    """JSON for kwargs: NumPy scalars (official pickles carry some) as Python numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in safetensors metadata")


def _networks_from_safetensors(data, source):
    with layout_errors(source, "safetensors networks file"):
        meta = json.loads(data[8:8 + int.from_bytes(data[:8], "little")]).get("__metadata__", {})
        if _SAFETENSORS_KEY not in meta:
            raise util.UserError(f"{source} is a safetensors file, but not one of networks written by this toolkit "
                                 "(its metadata has no network states)")
        states, tensors = json.loads(meta[_SAFETENSORS_KEY]), _import_safetensors().load(data)
        return tuple(build_network(_join_state(states[key], key + "/", tensors)) for key in _KEYS)


# ----------------------------------------------------------------------------------------------------------------
# Loading: the format told by content.

_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"  # pickled torch.save magic number


def _is_safetensors(data):
    n = int.from_bytes(data[:8], "little") if len(data) >= 8 else 0
    return 0 < n <= len(data) - 8 and data[8:9] == b"{"


def _torch_load(data, source):
    """torch.load(weights_only=True) of a checkpoint; argparse.Namespace (rosinality's 'args') is allowed too."""
    allow = getattr(torch.serialization, "safe_globals", None)
    try:
        with allow([argparse.Namespace]) if allow else contextlib.nullcontext():
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        reason = next((line for line in lines if "GLOBAL" in line or "global" in line), lines[-1] if lines else "")
        raise util.UserError(f"refusing to load {source}: torch.load(weights_only=True) rejects it ({reason}); "
                             "nothing in it was run") from None
    except (RuntimeError, EOFError, ValueError, OSError) as e:
        raise util.UserError(f"{source} is not a valid PyTorch checkpoint ({type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''})") from None


def _networks_from_checkpoint(ckpt, source):
    tensor_dict = lambda key: isinstance(ckpt, dict) and isinstance(ckpt.get(key), dict)
    if tensor_dict("g_ema") and "conv1.conv.weight" in ckpt["g_ema"]:
        with layout_errors(source, "rosinality checkpoint"):
            return networks_from_rosinality(ckpt, source)
    if tensor_dict("G_ema") and tensor_dict("G_kwargs") and tensor_dict("D_kwargs"):
        with layout_errors(source, "ada-pytorch state file"):
            return networks_from_ada(ckpt, ckpt["G_kwargs"], ckpt["D_kwargs"], source)
    found = ", ".join(map(str, list(ckpt)[:8])) if isinstance(ckpt, dict) else type(ckpt).__name__
    raise util.UserError(f"{source} is a PyTorch checkpoint, but not of StyleGAN2 networks this toolkit knows "
                         f"(rosinality's 'g_ema', or an ada-pytorch state file written here); found {found}")


def _networks_from_pickle(data, source):
    obj = load_network_pkl(io.BytesIO(data), source=source, unpickler_class=DataUnpickler)
    if isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(net, NetworkState) for net in obj):
        return tuple(build_network(_from_ada_tf(net, source)) for net in obj)
    if isinstance(obj, dict) and all(isinstance(obj.get(key), ModuleState) for key in ("G_ema", "D")):
        G = obj.get("G") if isinstance(obj.get("G"), ModuleState) else None
        with layout_errors(source, "stylegan2-ada-pytorch / stylegan3 pickle"):
            return networks_from_ada_pickle(obj["G_ema"], G, obj["D"], source)
    found = type(obj).__name__
    if isinstance(obj, (tuple, list)):
        found += " of " + ", ".join(type(item).__name__ for item in obj)
    elif isinstance(obj, dict):
        found += " with keys " + ", ".join(map(str, list(obj)[:8]))
    raise util.UserError(f"{source} is a pickle, but not of StyleGAN networks: expected a (G, D, Gs) tuple or a "
                         f"stylegan2-ada-pytorch / stylegan3 dict with 'G_ema' and 'D', found {found}")


def load_networks_file(f, source):
    """(G, D, Gs) Networks from a binary file object in any supported format, detected by content; `source` names
    the file in the one-line UserErrors that every unreadable, unsafe or unknown file gets."""
    data = f.read()
    if data[:4] == b"PK\x03\x04" or data.startswith(_TORCH_LEGACY_MAGIC):
        return _networks_from_checkpoint(_torch_load(data, source), source)
    if _is_safetensors(data):
        return _networks_from_safetensors(data, source)
    if data[:1] == b"\x80":  # pickle protocol 2+
        return _networks_from_pickle(data, source)
    raise util.UserError(f"{source} is not a network file this toolkit reads (not a pickle, PyTorch checkpoint or "
                         "safetensors file)" if data else f"{source} is empty")


# ----------------------------------------------------------------------------------------------------------------
# Saving.

def save_networks(nets, path, fmt):
    """Write (G, D, Gs) atomically in `fmt` (one of EXPORT_FORMATS); returns text saying how to load it."""
    if fmt == "ours":
        with util.atomic_write(path) as f:
            dump_network_pkl(nets, f)
        return f"load with pretrained_networks.load_networks({path!r}) or any StyleGAN2 release"
    if fmt == "safetensors":
        tensors = {}
        states = {key: _split_state(net, key + "/", tensors) for key, net in zip(_KEYS, nets)}
        data = _import_safetensors().save(tensors, metadata={_SAFETENSORS_KEY: json.dumps(states, default=_to_json)})
        with util.atomic_write(path) as f:
            f.write(data)
        return f"tensors under our variable names ('Gs/G_synthesis/4x4/Conv/weight', ...); load with " \
               f"pretrained_networks.load_networks({path!r})"
    if fmt == "ada-pytorch-state":
        ckpt = ada_pytorch_state(nets)
        with util.atomic_write(path) as f:
            torch.save(ckpt, f)
        return (f"in stylegan2-ada-pytorch: G = training.networks.Generator(**G_kwargs); G.load_state_dict("
                f"torch.load({path!r})['G_ema']) (or ['G']); D = Discriminator(**D_kwargs) loads ['D']\n"
                f"in stylegan3: training.networks_stylegan2.Generator takes G_kwargs with synthesis_kwargs unpacked\n"
                f"G_kwargs = {ckpt['G_kwargs']!r}\nD_kwargs = {ckpt['D_kwargs']!r}\n(both are also stored in the file)")
    if fmt == "rosinality":
        ckpt, how = rosinality_state(nets)
        with util.atomic_write(path) as f:
            torch.save(ckpt, f)
        return f"in rosinality's stylegan2-pytorch: {how}; load_state_dict(torch.load({path!r})['g_ema'])"
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")
