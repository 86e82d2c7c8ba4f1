"""Network pickles as data: a restricted unpickler for loading, and a writer of the original format.

A pickle can call any importable function while it loads, so official `.pkl` files (which also carry Python source
that the original executes) are read through an unpickler that resolves only the classes network data needs: our
`Network`, NumPy arrays, dtypes and scalars, and plain containers. Anything else is refused before it can run.
"""

import collections
import codecs
import pickle

import numpy as np

try:  # NumPy 2 moved numpy.core to numpy._core; 2019 files name the old path, newer writers the new one.
    from numpy._core import multiarray as _multiarray, numeric as _numeric
except ImportError:
    from numpy.core import multiarray as _multiarray, numeric as _numeric

from .. import util
from .network import Network


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references a global that network data never needs."""


_ALLOWED_GLOBALS = {
    ("dnnlib.tflib.network", "Network"): Network,
    ("dnnlib.util", "EasyDict"): util.EasyDict,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("_codecs", "encode"): codecs.encode,  # how protocol-2 pickles store bytes
}
for _core in ("numpy.core", "numpy._core"):
    _ALLOWED_GLOBALS[(_core + ".multiarray", "_reconstruct")] = _multiarray._reconstruct
    _ALLOWED_GLOBALS[(_core + ".multiarray", "scalar")] = _multiarray.scalar
    _ALLOWED_GLOBALS[(_core + ".numeric", "_frombuffer")] = _numeric._frombuffer


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals in _ALLOWED_GLOBALS."""

    def find_class(self, module, name):
        obj = _ALLOWED_GLOBALS.get((module, name))
        if obj is None:
            raise UnsafePickleError(f"{module}.{name}")
        return obj


def load_network_pkl(f, source=None, unpickler_class=RestrictedUnpickler):
    """Unpickle network data from a binary file object, refusing anything that is not network data.

    `source` names the file in error messages. Returns what the pickle holds, e.g. the (G, D, Gs) tuple.
    `unpickler_class`: a RestrictedUnpickler subclass that resolves other data classes (see
    training/checkpoint_formats.py); its refusals and errors become the same one-line UserErrors."""
    source = source or getattr(f, "name", "the pickle")
    try:
        with np.errstate(all="ignore"):
            return unpickler_class(f).load()
    except UnsafePickleError as e:
        raise util.UserError(f"refusing to load {source}: it references '{e}', which is not network data "
                             "(pickles are loaded as data only; nothing in it was run)") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            UnicodeDecodeError, MemoryError, OverflowError) as e:
        raise util.UserError(f"{source} is not a valid network pickle (corrupt or truncated: "
                             f"{type(e).__name__}: {e})") from None


# NumPy globals a network pickle may reference, by the NumPy-1 path that every NumPy can import.
_NUMPY1_NAMES = {
    id(_multiarray._reconstruct): ("numpy.core.multiarray", "_reconstruct"),
    id(_multiarray.scalar): ("numpy.core.multiarray", "scalar"),
    id(_numeric._frombuffer): ("numpy.core.numeric", "_frombuffer"),
}


class _Pickler(pickle._Pickler):
    """Pickler that names NumPy's reconstruction functions by their NumPy-1 paths, as 2019 files do, so the files
    we write load wherever official pickles load."""

    def save_global(self, obj, name=None):
        if id(obj) in _NUMPY1_NAMES:
            module, name = _NUMPY1_NAMES[id(obj)]
            self.save(module)
            self.save(name)
            self.write(pickle.STACK_GLOBAL)
            self.memoize(obj)
            return
        super().save_global(obj, name)


def dump_network_pkl(obj, f):
    """Pickle networks (or a tuple of them) into a binary file object in the original format (protocol 4)."""
    _Pickler(f, protocol=4).dump(obj)


def save_network_pkl(obj, path):
    """Write a network pickle atomically: the file at `path` is either the old one or the complete new one."""
    with util.atomic_write(path, "wb") as f:
        dump_network_pkl(obj, f)

