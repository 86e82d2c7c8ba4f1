"""Read the tensors of a TorchScript archive (a `torch.jit.save` zip) as data, without running any of its code.

A TorchScript archive is a zip with one top folder: `<name>/data.pkl` pickles the module tree (objects of classes
named `__torch__.*`, whose attributes are the parameters, buffers, submodules and plain settings), `<name>/data/<key>`
holds the raw bytes of each storage, `<name>/code/` the TorchScript source, `<name>/constants.pkl` its constants.

`read_torchscript_tensors(path)` unpickles data.pkl with a restricted unpickler that resolves only storages, tensors,
OrderedDict, TorchScript's list builders and inert stand-ins for the `__torch__` classes, and returns every tensor by
its dotted name, as `state_dict()` would name it. The code in the archive is never read, `torch.jit` is never used,
and a data.pkl that names any other global is refused (UserError), since unpickling it could run code.

Used for OpenAI's CLIP release (training/clip.py) and for the Inception networks of the metrics (metrics/inception.py).
"""

import collections
import os
import pickle
import zipfile

import torch

import dnnlib


class UnsafeArchiveError(pickle.UnpicklingError):
    """An archive's data.pkl references a global that tensor data never needs."""


class ScriptObject:
    """Stands in for every TorchScript class (`__torch__.*`) named in an archive's data.pkl: it keeps the
    attributes the pickle sets (parameters, buffers, submodules, settings) and has no behaviour; the TorchScript code
    in the archive is never read."""

    state = {}

    def __setstate__(self, state):
        self.state = state


# Legacy storage classes, by which pickles name the dtype of each storage.
_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "HalfStorage": torch.float16, "BFloat16Storage": torch.bfloat16,
    "DoubleStorage": torch.float64, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    """Our torch._utils._rebuild_tensor_v2: a view of the storage with the pickled offset, size and stride."""
    return storage.as_strided(size, stride, offset)


def _same_value(value, *_type_tag):
    """Our torch.jit._pickle.build_intlist & co. and restore_type_tag: TorchScript pickles typed lists (e.g. a
    convolution's `padding: List[int]`) through them; for Python they return the plain value, as torch's do."""
    return value


_LIST_BUILDERS = ("build_intlist", "build_doublelist", "build_boollist", "build_tensorlist", "restore_type_tag")


class ArchiveUnpickler(pickle.Unpickler):
    """Unpickler for data.pkl of a TorchScript archive that resolves only storages, tensors, OrderedDict, typed lists
    and inert stand-ins for TorchScript classes; storages are read with `read_record(f"data/{key}")`."""

    def __init__(self, file, read_record):
        super().__init__(file)
        self.read_record = read_record

    def find_class(self, module, name):
        if module == "__torch__" or module.startswith("__torch__."):
            return ScriptObject
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch.jit._pickle" and name in _LIST_BUILDERS:
            return _same_value
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise UnsafeArchiveError(f"{module}.{name}")

    def persistent_load(self, pid):
        kind, dtype, key, _location, numel = pid  # ('storage', storage class, record name, device, element count)
        if kind != "storage" or not isinstance(dtype, torch.dtype):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        data = bytearray(self.read_record(f"data/{key}"))  # bytearray: torch.frombuffer wants a writable buffer
        if len(data) != numel * dtype.itemsize:
            raise ValueError(f"storage {key} has {len(data)} bytes, expected {numel} x {dtype.itemsize}")
        if not data:  # torch.frombuffer refuses empty buffers
            return torch.empty(0, dtype=dtype)
        return torch.frombuffer(data, dtype=dtype)


def _collect_tensors(obj, prefix, tensors):
    """Walk the stand-in objects and collect their tensors under dotted names, as state_dict() would name them."""
    for name, value in (obj.state if isinstance(obj.state, dict) else {}).items():
        if isinstance(value, torch.Tensor):
            tensors[prefix + name] = value
        elif isinstance(value, ScriptObject):
            _collect_tensors(value, f"{prefix}{name}.", tensors)


def read_torchscript_tensors(path):
    """Parameters and buffers of a TorchScript archive (torch.jit.save's zip: `<name>/data.pkl`, storages in
    `<name>/data/<key>`), by dotted name, read as data: nothing in the archive is executed, torch.jit is not used.
    A damaged archive, or one whose data.pkl names anything but tensor data, raises UserError."""
    source = os.path.basename(os.fspath(path))
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            folders = [name[:-len("data.pkl")] for name in names
                       if name.endswith("/data.pkl") and name.count("/") == 1]
            if len(folders) != 1:
                raise ValueError(f"expected one '<name>/data.pkl', found {len(folders)}")
            folder = folders[0]
            if folder + "byteorder" in names and archive.read(folder + "byteorder") != b"little":
                raise ValueError("the archive was written on a big-endian machine, which is not supported")
            with archive.open(folder + "data.pkl") as file:
                root = ArchiveUnpickler(file, lambda record: archive.read(folder + record)).load()
    except UnsafeArchiveError as err:
        raise dnnlib.util.UserError(f"refusing to load {source}: its data.pkl references '{err}', which is not "
                                    "tensor data (archives are read as data only; nothing in it was run)") from None
    except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, RuntimeError,
            AttributeError, IndexError) as err:
        raise dnnlib.util.UserError(f"{source} is not a valid TorchScript archive (corrupt or truncated: "
                                    f"{type(err).__name__}: {err})") from None
    if not isinstance(root, ScriptObject):
        raise dnnlib.util.UserError(f"{source} is not a TorchScript module archive")
    tensors = {}
    _collect_tensors(root, "", tensors)
    return tensors


def is_torchscript_archive(path):
    """torch.jit.save's zips have constants.pkl (and code/) next to data.pkl; torch.save's zips do not."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/constants.pkl") and name.count("/") == 1 for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):  # not a zip (torch.save's legacy format), or a damaged one
        return False
