"""Just-in-time building of the C++/CUDA plugins, with a quiet fallback.

The plugins are optional accelerators: every op has a plain PyTorch reference
path with identical semantics. `get_plugin()` therefore never raises; when a
plugin cannot be built it says why once and returns None so that callers use
the reference path.
"""

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
            plugin = cpp_extension.load(name=module_name, sources=sources, **build_kwargs)
        except Exception as err:  # Any build or load problem means: use the reference path.
            reason = str(err).strip().splitlines()[0] if str(err).strip() else ''
            warnings.warn(f'Could not build plugin "{module_name}" ({type(err).__name__}: {reason}); '
                          f'falling back to the reference implementation.', RuntimeWarning)
    _plugins[module_name] = plugin
    return plugin
