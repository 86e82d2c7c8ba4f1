"""The official StyleGAN2 networks, and load_networks(): (G, D, Gs) from a local path, a URL or a `gdrive:` name.

The `gdrive:networks/<file>.pkl` names of the original release are mapped to the files NVIDIA hosts today. Every
pickle goes through the restricted unpickler of dnnlib.tflib.network_pickle: it is read as data, never run.
"""

import os

import dnnlib
from dnnlib.tflib.network import Network
from dnnlib.tflib.network_pickle import load_network_pkl

OFFICIAL_URL_ROOT = "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/"

_OFFICIAL_FILES = (
    [f"stylegan2-{dataset}-config-{config}.pkl" for dataset in ("car", "ffhq") for config in "abcdef"]
    + [f"stylegan2-{dataset}-config-{config}.pkl" for dataset in ("cat", "church", "horse") for config in "af"]
    + [f"table2/stylegan2-{dataset}-config-e-G{g}-D{d}.pkl" for dataset in ("car", "ffhq")
       for g in ("orig", "resnet", "skip") for d in ("orig", "resnet", "skip")]
)

gdrive_urls = {f"gdrive:networks/{name}": OFFICIAL_URL_ROOT + name for name in _OFFICIAL_FILES}

# Trained by this toolkit (run_training.py on `dataset_tool.py create_emoji`) and shipped with it: the network
# used when none is given. See networks/README.md.
DEFAULT_NETWORK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "networks", "stylegan2-emoji64.pkl")


def get_path_or_url(path_or_gdrive_path):
    """The URL behind an official `gdrive:` name, or the argument itself."""
    path_or_gdrive_path = os.fspath(path_or_gdrive_path)
    if path_or_gdrive_path.startswith("gdrive:") and path_or_gdrive_path not in gdrive_urls:
        raise dnnlib.util.UserError(f"unknown network '{path_or_gdrive_path}'; official names are "
                                    "gdrive:networks/stylegan2-<ffhq|car|cat|church|horse>-config-<a..f>.pkl")
    return gdrive_urls.get(path_or_gdrive_path, path_or_gdrive_path)


_cached_networks = dict()


def load_networks(path_or_gdrive_path):
    """Load the (G, D, Gs) tuple of a network pickle, once per process. Downloads go to the dnnlib cache
    (~/.cache/dnnlib, or $DNNLIB_CACHE_DIR)."""
    path_or_url = get_path_or_url(path_or_gdrive_path)
    if path_or_url in _cached_networks:
        return _cached_networks[path_or_url]
    with dnnlib.util.open_url(path_or_url) as stream:
        data = load_network_pkl(stream, source=str(path_or_gdrive_path))
    if not (isinstance(data, tuple) and len(data) == 3 and all(isinstance(net, Network) for net in data)):
        found = type(data).__name__
        if isinstance(data, (tuple, list)):
            found += " of " + ", ".join(type(item).__name__ for item in data)
        raise dnnlib.util.UserError(f"{path_or_gdrive_path} is a pickle, but not of StyleGAN2 networks: expected "
                                    f"a (G, D, Gs) tuple, found {found}")
    _cached_networks[path_or_url] = data
    return data
