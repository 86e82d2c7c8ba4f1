"""`Network`: the network object of the original StyleGAN2 release, backed by a torch.nn.Module.

The original pickles `Network` objects whose state is plain data (name, build-function name and keyword arguments,
sub-networks, and the variables as NumPy arrays) plus the source code of the module that builds the graph. Here the
build function named in the state is looked up among our own PyTorch implementations (`register_build_func`), the
stored source is never executed, and the variables are copied into the module under their original names. What we
pickle is the same state, with no source code in it.

A build function is a torch.nn.Module class taking the original static keyword arguments (plus `components`, the
EasyDict of sub-Networks it may fill in, like the original build functions) and exposing `input_names`,
`input_shapes`, `output_names` and `output_shapes`. Its forward() takes the inputs and the original's dynamic
keyword arguments; a static kwarg that forward() accepts becomes that argument's default, as it would in the
original, where static and dynamic kwargs reach the same build function.
"""

import importlib
import inspect
import re
import warnings
from collections import OrderedDict

import numpy as np
import torch

from .. import util

# Modules that register build functions; imported when a network names a function not registered yet.
BUILD_FUNC_MODULES = ["training.networks_stylegan2", "training.lpips", "training.networks_stylegan"]
_build_funcs = dict()  # build function name -> {module name: class}; StyleGAN and StyleGAN2 both have 'G_mapping'

# The text stored in place of `build_module_src`: we never store code, and other readers of the format only need
# `build_func_name` to know what to build. It names the function with its module ('training.networks_stylegan.
# G_mapping'), which tells two modules' functions of the same name apart when the file is loaded again.
_NO_SOURCE = "# No source code is stored in this pickle: build function '{}' is implemented by the loader.\n"
_NO_SOURCE_RE = re.compile(r"# No source code is stored in this pickle: build function '([\w.]+)'")


def register_build_func(name):
    """Class decorator: make a torch.nn.Module class the build function called `name` (e.g. 'G_main') of its
    module. Two modules may register the same name, as two original modules define it; see get_build_func."""
    def decorator(cls):
        _build_funcs.setdefault(name, {})[cls.__module__] = cls
        return cls
    return decorator


def get_build_func(func_name, module_src=None):
    """(short name, class): our implementation of the build function `func_name` ('G_main' or
    'training.networks_stylegan2.G_main').

    Where more than one of our modules implements the name (StyleGAN's and StyleGAN2's 'G_mapping' differ in
    arithmetic, not in variables), the module is the one `func_name` names, else the one a pickle's
    `build_module_src` stands for (read as text, never run: our placeholder names the module; an original module
    is known by the build functions it defines), else the first of BUILD_FUNC_MODULES, as for files without
    either."""
    if not isinstance(func_name, str):
        func_name = func_name.__name__
    module_name, _, short_name = func_name.rpartition(".")
    for name in BUILD_FUNC_MODULES:  # never the module named by the caller: pickles are untrusted
        importlib.import_module(name)
    impls = _build_funcs.get(short_name)
    if not impls:
        raise util.UserError(f"unsupported network build function '{func_name}'; supported: "
                             f"{', '.join(sorted(_build_funcs))}")
    if len(impls) > 1 and module_name not in impls:
        module_name = _module_of_source(module_src, impls)
    if module_name not in impls:
        order = {name: i for i, name in enumerate(BUILD_FUNC_MODULES)}
        module_name = min(impls, key=lambda name: order.get(name, len(order)))
    return short_name, impls[module_name]


def _module_of_source(module_src, modules):
    """Which of `modules` a pickle's build_module_src stands for, judged from the text alone; None if unclear."""
    if not isinstance(module_src, str):
        return None
    match = _NO_SOURCE_RE.match(module_src)
    if match:
        return match.group(1).rpartition(".")[0]
    defined = set(re.findall(r"^def (\w+)\(", module_src, flags=re.MULTILINE))
    scores = {module: sum(module in impls for name, impls in _build_funcs.items() if name in defined)
              for module in modules}
    best = max(scores.values())
    winners = [module for module, score in scores.items() if score == best]
    return winners[0] if best > 0 and len(winners) == 1 else None


def default_device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class TensorShape(tuple):
    """A shape tuple with the `as_list()` of tf.TensorShape, which scripts of the original call."""

    def as_list(self):
        return list(self)

    @property
    def ndims(self):
        return len(self)


class Variable:
    """A handle on one network variable, the counterpart of a tf.Variable: `eval()`, `assign()`, `shape`, `name`.

    It resolves the tensor through its module on each access, so it stays valid when the module moves devices."""

    def __init__(self, name, module, attr, trainable):
        self.name = name
        self.trainable = trainable
        self._module = module
        self._attr = attr

    @property
    def tensor(self):
        return getattr(self._module, self._attr)

    @property
    def shape(self):
        return TensorShape(self.tensor.shape)

    @property
    def dtype(self):
        return np.dtype(str(self.tensor.dtype).replace("torch.", ""))

    def eval(self):
        return self.tensor.detach().cpu().numpy().copy()

    def assign(self, value):
        tensor = self.tensor
        value = torch.as_tensor(np.asarray(value), dtype=tensor.dtype)
        if value.numel() == tensor.numel():
            value = value.reshape(tensor.shape)
        elif value.ndim > tensor.ndim or any(v not in (1, t) for v, t in zip(value.shape[::-1], tensor.shape[::-1])):
            raise ValueError(f"cannot assign a value of shape {list(value.shape)} to variable {self.name} of "
                             f"shape {list(tensor.shape)}")
        with torch.no_grad():
            tensor.copy_(value)

    def __repr__(self):
        return f"<Variable '{self.name}' shape={self.shape.as_list()} trainable={self.trainable}>"


class Network:
    """A network with the original API (run, get_output_for, components, vars, clone, ...) around a torch module.

    Args:
        name: network name ('G', 'D', 'Gs', 'G_mapping', ...); defaults to the build function name.
        func_name: build function, e.g. 'training.networks_stylegan2.G_main' or 'G_main'.
        static_kwargs: the build function's keyword arguments (architecture and defaults).

    `module` is the torch.nn.Module for PyTorch users; the component Networks wrap its submodules, so the two views
    share parameters.
    """

    def __init__(self, name=None, func_name=None, **static_kwargs):
        assert func_name is not None
        self._init_fields()
        self.name = name
        self.static_kwargs = util.EasyDict(static_kwargs)
        self._build_func_name, self._build_func = get_build_func(func_name)
        self._build_module(default_device())

    def _init_fields(self):
        self.name = None
        self.static_kwargs = util.EasyDict()
        self.components = util.EasyDict()
        self.module = None
        self.num_inputs = 0
        self.num_outputs = 0
        self.input_names = []
        self.output_names = []
        self.input_shapes = [[]]
        self.output_shapes = [[]]
        self.input_shape = []
        self.output_shape = []
        self.own_vars = OrderedDict()
        self.vars = OrderedDict()
        self.trainables = OrderedDict()
        self._build_func_name = None
        self._build_func = None  # our class implementing the build function
        self._forward_params = set()
        self._warned_kwargs = set()

    def _build_module(self, device):
        """Construct the module from the build function and static kwargs, then list inputs, outputs, variables."""
        if self.name is None:
            self.name = self._build_func_name
        self.module = self._build_func(components=self.components, **self.static_kwargs).to(device)
        if any(not isinstance(comp, Network) for comp in self.components.values()):
            raise ValueError("Components of a Network must be Networks themselves.")

        self.input_names = list(self.module.input_names)
        self.output_names = list(self.module.output_names)
        self.input_shapes = [list(shape) for shape in self.module.input_shapes]
        self.output_shapes = [list(shape) for shape in self.module.output_shapes]
        self.num_inputs = len(self.input_names)
        self.num_outputs = len(self.output_names)
        self.input_shape = self.input_shapes[0]
        self.output_shape = self.output_shapes[0]
        self._forward_params = {p.name for p in inspect.signature(self.module.forward).parameters.values()
                                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}

        self.own_vars = OrderedDict()
        component_modules = {id(comp.module) for comp in self.components.values()}
        for prefix, mod in _walk_modules(self.module, component_modules):
            for attr, _ in mod.named_parameters(recurse=False):
                self.own_vars[prefix + attr] = Variable(prefix + attr, mod, attr, trainable=True)
            for attr, _ in mod.named_buffers(recurse=False):
                if attr not in mod._non_persistent_buffers_set:
                    self.own_vars[prefix + attr] = Variable(prefix + attr, mod, attr, trainable=False)
        self.vars = OrderedDict(self.own_vars)
        self.vars.update((comp.name + "/" + name, var) for comp in self.components.values() for name, var in comp.vars.items())
        self.trainables = OrderedDict((name, var) for name, var in self.vars.items() if var.trainable)

    # ------------------------------------------------------------------------------------------------------------
    # Evaluation.

    @property
    def device(self):
        return next(iter(self.module.buffers()), next(iter(self.module.parameters()), torch.empty(0))).device

    def to(self, device):
        """Move the network (and its components, which share the module) to a device; returns self."""
        self.module.to(device)
        return self

    def _forward_kwargs(self, dynamic_kwargs):
        kwargs = {key: value for key, value in self.static_kwargs.items() if key in self._forward_params}
        for key, value in dynamic_kwargs.items():
            if key in self._forward_params:
                kwargs[key] = value
            elif key not in self.static_kwargs and key not in self._warned_kwargs:
                # The original swallows unknown kwargs silently; say it once so a typo is not invisible.
                self._warned_kwargs.add(key)
                warnings.warn(f"{self.name}: ignoring argument '{key}', which {self._build_func_name} does not take")
        return kwargs

    def get_output_for(self, *in_expr, return_as_list=False, **dynamic_kwargs):
        """Evaluate the network on torch tensors, keeping autograd: the differentiable counterpart of run().
        A None input becomes zeros of its declared shape."""
        assert len(in_expr) == self.num_inputs
        assert not all(expr is None for expr in in_expr)
        ref = next(expr for expr in in_expr if expr is not None)
        inputs = [expr if expr is not None else torch.zeros([ref.shape[0]] + shape[1:], device=ref.device)
                  for expr, shape in zip(in_expr, self.input_shapes)]
        out = self.module(*inputs, **self._forward_kwargs(dynamic_kwargs))
        if return_as_list:
            out = [out] if isinstance(out, torch.Tensor) else list(out)
        return out

    def run(self, *in_arrays, input_transform=None, output_transform=None, return_as_list=False,
            print_progress=False, minibatch_size=None, num_gpus=1, assume_frozen=False, **dynamic_kwargs):
        """Run the network on NumPy arrays in minibatches and return NumPy arrays, like the original.

        input_transform / output_transform: dict(func=..., **kwargs) applied to the torch input / output tensors
        (e.g. dict(func=tflib.convert_images_to_uint8, nchw_to_nhwc=True)). A None input becomes zeros.
        num_gpus and assume_frozen are accepted for compatibility; the network runs on its own device."""
        del num_gpus, assume_frozen
        assert len(in_arrays) == self.num_inputs
        assert not all(arr is None for arr in in_arrays)
        output_transform, dynamic_kwargs = _handle_legacy_output_transforms(output_transform, dynamic_kwargs)
        num_items = next(arr for arr in in_arrays if arr is not None).shape[0]
        if minibatch_size is None:
            minibatch_size = max(num_items, 1)
        device = self.device

        out_arrays = None
        with torch.inference_mode():  # no autograd bookkeeping at all; the outputs leave as NumPy arrays
            for mb_begin in range(0, num_items, minibatch_size):
                if print_progress:
                    print("\r%d / %d" % (mb_begin, num_items), end="")
                mb_end = min(mb_begin + minibatch_size, num_items)
                mb_in = [torch.as_tensor(np.asarray(src[mb_begin:mb_end]), dtype=torch.float32, device=device)
                         if src is not None else torch.zeros([mb_end - mb_begin] + shape[1:], device=device)
                         for src, shape in zip(in_arrays, self.input_shapes)]
                if input_transform is not None:
                    in_kwargs = dict(input_transform)
                    mb_in = in_kwargs.pop("func")(*mb_in, **in_kwargs)
                    mb_in = [mb_in] if isinstance(mb_in, torch.Tensor) else list(mb_in)
                mb_out = self.get_output_for(*mb_in, return_as_list=True, **dynamic_kwargs)
                if output_transform is not None:
                    out_kwargs = dict(output_transform)
                    mb_out = out_kwargs.pop("func")(*mb_out, **out_kwargs)
                    mb_out = [mb_out] if isinstance(mb_out, torch.Tensor) else list(mb_out)
                mb_out = [out.cpu().numpy() for out in mb_out]
                if out_arrays is None:
                    out_arrays = [np.empty([num_items] + list(out.shape[1:]), out.dtype) for out in mb_out]
                for dst, src in zip(out_arrays, mb_out):
                    dst[mb_begin:mb_end] = src
        if print_progress:
            print("\r%d / %d" % (num_items, num_items))

        if not return_as_list:
            out_arrays = out_arrays[0] if len(out_arrays) == 1 else tuple(out_arrays)
        return out_arrays

    # ------------------------------------------------------------------------------------------------------------
    # Variables.

    def find_var(self, var_or_local_name):
        return self.vars[var_or_local_name] if isinstance(var_or_local_name, str) else var_or_local_name

    def get_var(self, var_or_local_name):
        """Value of a variable as a NumPy array (a copy)."""
        return self.find_var(var_or_local_name).eval()

    def set_var(self, var_or_local_name, new_value):
        self.find_var(var_or_local_name).assign(new_value)

    def _copy_vars(self, src_net, names):
        for name in names:
            if name in src_net.vars:
                dst, src = self.vars[name].tensor, src_net.vars[name].tensor
                if dst.shape != src.shape:
                    raise ValueError(f"cannot copy variable {name}: shape {list(src.shape)} != {list(dst.shape)}")
                with torch.no_grad():
                    dst.copy_(src)

    def copy_own_vars_from(self, src_net):
        """Copy the values of the variables both networks have, excluding sub-networks."""
        self._copy_vars(src_net, [name for name in self.own_vars if name in src_net.own_vars])

    def copy_vars_from(self, src_net):
        """Copy the values of the variables both networks have, including sub-networks."""
        self._copy_vars(src_net, list(self.vars))

    def copy_trainables_from(self, src_net):
        """Copy the values of the trainable variables both networks have."""
        self._copy_vars(src_net, [name for name in self.trainables if name in src_net.trainables])

    def reset_own_vars(self):
        """Re-initialise this network's own variables (not the components') as a fresh build would."""
        self.copy_own_vars_from(self._rebuilt(self.name, self.static_kwargs, self.components))

    # ------------------------------------------------------------------------------------------------------------
    # Copies and pickling.

    def _rebuilt(self, name, static_kwargs, components):
        """A fresh network of this build function (with new variables) on this network's device; `components`
        are reused as given, missing ones are built from the kwargs."""
        net = Network.__new__(Network)
        net._init_fields()
        net.name, net._build_func_name, net._build_func = name, self._build_func_name, self._build_func
        net.static_kwargs = util.EasyDict(static_kwargs)
        net.components = util.EasyDict(components)
        net._build_module(self.device)
        return net

    def clone(self, name=None, **new_static_kwargs):
        """A copy with its own variables. New static kwargs rebuild the components from the merged kwargs, as the
        original does; without them the components are cloned as they are."""
        components = {} if new_static_kwargs else {key: comp.clone() for key, comp in self.components.items()}
        net = self._rebuilt(name if name is not None else self.name, {**self.static_kwargs, **new_static_kwargs},
                            components)
        net.copy_vars_from(self)
        return net

    def convert(self, new_func_name, new_name=None, **new_static_kwargs):
        """A new network built by another build function, with every variable of the same name copied over."""
        static_kwargs = dict(self.static_kwargs)
        static_kwargs.update(new_static_kwargs)
        net = Network(name=new_name if new_name is not None else self.name, func_name=new_func_name, **static_kwargs)
        net.to(self.device)
        net.copy_vars_from(self)
        return net

    def __getstate__(self):
        """The original's version-4 state, with no source code in it."""
        return dict(
            version=4,
            name=self.name,
            static_kwargs=dict(self.static_kwargs),
            components=dict(self.components),
            build_module_src=_NO_SOURCE.format(f"{self._build_func.__module__}.{self._build_func_name}"),
            build_func_name=self._build_func_name,
            variables=[(name, var.eval()) for name, var in self.own_vars.items()],
        )

    def __setstate__(self, state):
        """Build our implementation of the state's build function and copy the stored variables in. The stored
        source code is ignored. Building does not disturb the global torch random state."""
        _validate_state(state)
        self._init_fields()
        self.name = state["name"]
        self.static_kwargs = util.EasyDict(state["static_kwargs"])
        self.components = util.EasyDict(state.get("components", {}))
        self._build_func_name, self._build_func = get_build_func(state["build_func_name"],
                                                                 state.get("build_module_src"))
        with torch.random.fork_rng(devices=[]):
            self._build_module(torch.device("cpu"))
        for name, value in state["variables"]:
            if name not in self.own_vars:
                raise util.UserError(f"network '{self.name}' ({self._build_func_name}) has no variable '{name}': "
                                     "the pickle does not match the architecture its kwargs describe")
            var = self.own_vars[name]
            if list(np.shape(value)) != var.shape.as_list():
                raise util.UserError(f"variable '{self.name}/{name}' has shape {list(np.shape(value))} in the "
                                     f"pickle but {var.shape.as_list()} in the network its kwargs describe")
            var.assign(value)
        missing = set(self.own_vars) - {name for name, _ in state["variables"]}
        if missing:
            warnings.warn(f"network '{self.name}': variables missing from the pickle keep their initial values: "
                          f"{', '.join(sorted(missing))}")
        self.to(default_device())

    # ------------------------------------------------------------------------------------------------------------
    # Reporting.

    def list_layers(self):
        """(layer_name, output_shape, variables) for each module that owns variables or computes something, found
        by running the network once on a minibatch of one."""
        shapes = {}
        hooks = []
        scope_names = self._component_scope_names()
        for prefix, mod in _walk_modules(self.module, set(), renamed=scope_names):
            def hook(_mod, _inputs, output, prefix=prefix):
                out = output[0] if isinstance(output, (tuple, list)) else output
                if isinstance(out, torch.Tensor):
                    shapes.setdefault(prefix, [None] + list(out.shape[1:]))
            hooks.append(mod.register_forward_hook(hook))
        try:
            with torch.no_grad():
                self.get_output_for(*[torch.zeros([1] + shape[1:], device=self.device) for shape in self.input_shapes])
        finally:
            for handle in hooks:
                handle.remove()

        var_names = {(id(var._module), var._attr): name for name, var in self.vars.items()}
        layers = []
        for prefix, mod in _walk_modules(self.module, set(), renamed=scope_names):
            keys = [(id(mod), attr) for attr in [*mod._parameters, *mod._buffers]]
            layer_vars = [self.vars[var_names[key]] for key in keys if key in var_names]
            if prefix and (layer_vars or prefix in shapes):
                layers.append((prefix.rstrip("/"), shapes.get(prefix), layer_vars))
        return layers

    def _component_scope_names(self):
        """id(component module) -> component network name, recursively: layers are named like the original's
        scopes ('G_synthesis/4x4/Conv'), not by module attribute."""
        names = {}
        for comp in self.components.values():
            names[id(comp.module)] = comp.name
            names.update(comp._component_scope_names())
        return names

    def print_layers(self, title=None, hide_layers_with_no_params=False):
        """Print a table of layers: name, trainable parameter count, output shape, weight shape."""
        rows = [[title if title is not None else self.name, "Params", "OutputShape", "WeightShape"], ["---"] * 4]
        total_params = 0
        for layer_name, output_shape, layer_vars in self.list_layers():
            trainables = [var for var in layer_vars if var.trainable]
            num_params = sum(int(np.prod(var.shape)) for var in trainables)
            weights = [var for var in trainables if var.name.endswith("/weight") or var.name == "weight"]
            if not weights and len(layer_vars) == 1:
                weights = layer_vars
            total_params += num_params
            if not hide_layers_with_no_params or num_params:
                rows.append([layer_name, str(num_params) if num_params else "-",
                             str(output_shape) if output_shape else "-",
                             str(weights[0].shape.as_list()) if weights else "-"])
        rows += [["---"] * 4, ["Total", str(total_params), "", ""]]
        widths = [max(len(cell) for cell in column) for column in zip(*rows)]
        print()
        for row in rows:
            print("  ".join(cell + " " * (width - len(cell)) for cell, width in zip(row, widths)))
        print()

    def __repr__(self):
        return f"<Network '{self.name}' {self._build_func_name} inputs={self.input_shapes} outputs={self.output_shapes}>"


def _walk_modules(module, excluded_ids, prefix="", renamed=None):
    """(variable-name prefix, module) for `module` and its descendants, skipping the excluded (component) ones;
    `renamed` maps id(submodule) to the name its prefix uses instead of its attribute name."""
    yield prefix, module
    for name, child in module.named_children():
        if id(child) not in excluded_ids:
            child_name = (renamed or {}).get(id(child), name)
            yield from _walk_modules(child, excluded_ids, prefix + child_name + "/", renamed)


def _validate_state(state):
    """Check the shape of an unpickled network state before anything is built from it."""
    def fail(what):
        raise util.UserError(f"not a valid network pickle: {what}")
    if not isinstance(state, dict):
        fail(f"network state is a {type(state).__name__}, not a dict")
    if state.get("version") not in (2, 3, 4):
        fail(f"unsupported network state version {state.get('version')!r}")
    for key, kind in [("name", str), ("build_func_name", str), ("static_kwargs", dict), ("variables", list)]:
        if not isinstance(state.get(key), kind):
            fail(f"'{key}' is missing or not a {kind.__name__}")
    if not all(isinstance(comp, Network) for comp in state.get("components", {}).values()):
        fail("a component is not a Network")
    for item in state["variables"]:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
                and isinstance(item[1], (np.ndarray, np.generic, float, int))):
            fail("'variables' must be a list of (name, array) pairs")


# --------------------------------------------------------------------------------------------------------------------
# Old-style output transformations (out_mul, out_add, out_shrink, out_dtype), still used by StyleGAN1-era scripts.

_LEGACY_OUTPUT_KWARGS = ("out_mul", "out_add", "out_shrink", "out_dtype")


def _handle_legacy_output_transforms(output_transform, dynamic_kwargs):
    if not any(kwarg in dynamic_kwargs for kwarg in _LEGACY_OUTPUT_KWARGS):
        return output_transform, dynamic_kwargs
    assert output_transform is None, "use either output_transform or the legacy out_* arguments"
    new_kwargs = dict(dynamic_kwargs)
    new_transform = {kwarg: new_kwargs.pop(kwarg) for kwarg in _LEGACY_OUTPUT_KWARGS if kwarg in dynamic_kwargs}
    new_transform["func"] = _legacy_output_transform_func
    return new_transform, new_kwargs


def _legacy_output_transform_func(*expr, out_mul=1.0, out_add=0.0, out_shrink=1, out_dtype=None):
    if out_mul != 1.0:
        expr = [x * out_mul for x in expr]
    if out_add != 0.0:
        expr = [x + out_add for x in expr]
    if out_shrink > 1:
        expr = [torch.nn.functional.avg_pool2d(x, out_shrink, out_shrink) for x in expr]
    if out_dtype is not None:
        dtype = np.dtype(out_dtype)
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            expr = [x.round().clamp(info.min, info.max) for x in expr]
        expr = [x.to(getattr(torch, dtype.name)) for x in expr]
    return expr

