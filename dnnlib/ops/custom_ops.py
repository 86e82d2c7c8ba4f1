"""Just-in-time building of the C++/CUDA plugins, with a quiet fallback.

The plugins are optional accelerators: every op has a plain PyTorch reference
path with identical semantics. `get_plugin()` therefore never raises; when a
plugin cannot be built it says why once and returns None so that callers use
the reference path.
"""

import os
import sys
import warnings

import torch

_plugins = {}  # module_name -> loaded module, or None when it could not be built.


def get_plugin(module_name, sources, needs_cuda=True, **build_kwargs):
    """Return the compiled extension `module_name`, building it on first use.

    `sources` and `build_kwargs` go to `torch.utils.cpp_extension.load()`, which
    keeps its build folder under the torch extensions dir (TORCH_EXTENSIONS_DIR)
    and rebuilds only when a source changes. Returns None when `needs_cuda` and
    there is no GPU, or with one warning when the build fails.
    """
    if module_name in _plugins:
        return _plugins[module_name]
    plugin = None
    if torch.cuda.is_available() or not needs_cuda:
        try:
            # Imported lazily: it pulls in setuptools and is needed only here.
            from torch.utils import cpp_extension
            if not _built_before(cpp_extension, module_name):
                print(f'Building the C++ plugin "{module_name}" (once per machine, about half a minute)...',
                      file=sys.stderr, flush=True)
            plugin = cpp_extension.load(name=module_name, sources=sources, **build_kwargs)
        except Exception as err:  # Any build or load problem means: use the reference path.
            reason = str(err).strip().splitlines()[0] if str(err).strip() else ''
            warnings.warn(f'Could not build plugin "{module_name}" ({type(err).__name__}: {reason}); '
                          f'falling back to the reference implementation.', RuntimeWarning)
    _plugins[module_name] = plugin
    return plugin


def _built_before(cpp_extension, module_name):
    """Whether the torch extensions dir holds a build of `module_name` (then loading takes a moment, not a build)."""
    try:
        folder = cpp_extension._get_build_directory(module_name, verbose=False)  # private, hence the fallback
        return any(name.startswith(module_name) and name.endswith(('.so', '.pyd')) for name in os.listdir(folder))
    except Exception:
        return True  # unknown: say nothing
