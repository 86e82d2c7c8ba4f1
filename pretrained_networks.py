"""The official networks, and load_networks(): (G, D, Gs) from a local path, a URL, an official name ('ffhq',
'stylegan1-ffhq', 'metfaces', ...) or a `gdrive:` name of the original release.

Names are mapped to the files NVIDIA hosts today. Every file is read as data, never run, in whatever format it is
(see training/checkpoint_formats.py: TensorFlow and PyTorch pickles, rosinality checkpoints, safetensors).
"""

import os

import dnnlib
from training.checkpoint_formats import load_networks_file

OFFICIAL_URL_ROOT = "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/"

_OFFICIAL_FILES = (
    [f"stylegan2-{dataset}-config-{config}.pkl" for dataset in ("car", "ffhq") for config in "abcdef"]
    + [f"stylegan2-{dataset}-config-{config}.pkl" for dataset in ("cat", "church", "horse") for config in "af"]
    + [f"table2/stylegan2-{dataset}-config-e-G{g}-D{d}.pkl" for dataset in ("car", "ffhq")
       for g in ("orig", "resnet", "skip") for d in ("orig", "resnet", "skip")]
)

gdrive_urls = {f"gdrive:networks/{name}": OFFICIAL_URL_ROOT + name for name in _OFFICIAL_FILES}

_STYLEGAN1_URL_ROOT = "https://nvlabs-fi-cdn.nvidia.com/stylegan/networks/"
_ADA_TF_URL_ROOT = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada/pretrained/"
_ADA_PYTORCH_URL_ROOT = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
_ADA_DATASETS = ("ffhq", "metfaces", "afhqcat", "afhqdog", "afhqwild", "brecahad", "cifar10")
_ADA_TRANSFER_SOURCES = {  # StyleGAN2-ADA's --resume names
    "ffhq256": "ffhq-res256-mirror-paper256-noaug.pkl", "ffhq512": "ffhq-res512-mirror-stylegan2-noaug.pkl",
    "ffhq1024": "ffhq-res1024-mirror-stylegan2-noaug.pkl",
    "celebahq256": "celebahq-res256-mirror-paper256-kimg100000-ada-target0.5.pkl",
    "lsundog256": "lsundog-res256-paper256-kimg100000-noaug.pkl"}

# Short names: StyleGAN2 '<dataset>' (config-f) and '<dataset>-config-<x>'; 'stylegan1-<dataset>';
# 'ada-<dataset>' (StyleGAN2-ADA TensorFlow; its datasets also by name alone), 'ada-pytorch-<dataset>' and
# StyleGAN2-ADA's transfer-learning sources ('ada-ffhq256', ...).
network_urls = {name[len("stylegan2-"):-len(".pkl")]: OFFICIAL_URL_ROOT + name
                for name in _OFFICIAL_FILES if not name.startswith("table2/")}
network_urls.update({name[:-len("-config-f")]: url for name, url in list(network_urls.items())
                     if name.endswith("-config-f")})
network_urls.update({f"stylegan1-{name}": f"{_STYLEGAN1_URL_ROOT}karras2019stylegan-{name}-{size}.pkl"
                     for name, size in [("ffhq", "1024x1024"), ("celebahq", "1024x1024"), ("bedrooms", "256x256"),
                                        ("cars", "512x384"), ("cats", "256x256")]})
for _dataset in _ADA_DATASETS:
    network_urls[f"ada-{_dataset}"] = f"{_ADA_TF_URL_ROOT}{_dataset}.pkl"
    network_urls[f"ada-pytorch-{_dataset}"] = f"{_ADA_PYTORCH_URL_ROOT}{_dataset}.pkl"
    network_urls.setdefault(_dataset, network_urls[f"ada-{_dataset}"])
network_urls.update({f"ada-{name}": f"{_ADA_TF_URL_ROOT}transfer-learning-source-nets/{file}"
                     for name, file in _ADA_TRANSFER_SOURCES.items()})

# Trained by this toolkit (run_training.py on `dataset_tool.py create_emoji`) and shipped with it: the network
# used when none is given. See networks/README.md.
DEFAULT_NETWORK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "networks", "stylegan2-emoji64.pkl")


def get_path_or_url(path_or_gdrive_path):
    """The URL behind an official name ('ffhq', 'gdrive:networks/...'), or the argument itself. An existing file
    wins over a name; a word that is neither is an error that lists the names."""
    path_or_gdrive_path = os.fspath(path_or_gdrive_path)
    if path_or_gdrive_path.startswith("gdrive:") and path_or_gdrive_path not in gdrive_urls:
        raise dnnlib.util.UserError(f"unknown network '{path_or_gdrive_path}'; official names are "
                                    "gdrive:networks/stylegan2-<ffhq|car|cat|church|horse>-config-<a..f>.pkl")
    if path_or_gdrive_path in gdrive_urls:
        return gdrive_urls[path_or_gdrive_path]
    if os.path.exists(path_or_gdrive_path) or any(c in path_or_gdrive_path for c in "./\\:"):
        return path_or_gdrive_path
    if path_or_gdrive_path not in network_urls:
        raise dnnlib.util.UserError(f"unknown network '{path_or_gdrive_path}': not a file, URL or official name; "
                                    f"official names: {', '.join(sorted(network_urls))}")
    return network_urls[path_or_gdrive_path]


_cached_networks = dict()


def load_networks(path_or_gdrive_path):
    """Load the (G, D, Gs) Networks of a network file in any supported format, once per process. Downloads go to
    the dnnlib cache (~/.cache/dnnlib, or $DNNLIB_CACHE_DIR)."""
    path_or_url = get_path_or_url(path_or_gdrive_path)
    if path_or_url in _cached_networks:
        return _cached_networks[path_or_url]
    with dnnlib.util.open_url(path_or_url) as stream:
        data = load_networks_file(stream, source=str(path_or_gdrive_path))
    _cached_networks[path_or_url] = data
    return data
