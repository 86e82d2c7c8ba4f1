"""What every metric shares: the context a metric runs in (generator, dataset, feature networks, device, process
rank), generated and real images fed through a feature network in batches, split over processes, and the reporting
of results in the original's format.

Reproducibility. Generated item i (an image, or a PPL pair) draws everything random (latents, label, noise inputs)
from generators seeded by (seed, i) alone, and items go through the networks in fixed global batches of the metric's
batch size, batch b on process b % world_size. A metric therefore gives the same value on 1 or N processes, and its
images do not depend on how many ran before (results depend on the device type: CPU and CUDA generators differ).
Results are gathered in item order on process 0, which computes the metric; the others get its result.
"""

import json
import os
import time

import numpy as np
import torch
import tqdm

import dnnlib
import dnnlib.tflib as tflib
from dnnlib.util import EasyDict, UserError
from metrics import feature_stats

# ----------------------------------------------------------------------------------------------------------------
# Processes.


def dist_info():
    """(rank, world size) of this process: (0, 1) unless torch.distributed is initialised."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def broadcast(obj, world_size):
    """Process 0's `obj` in every process."""
    if world_size == 1:
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def leader_first(fn, rank, world_size):
    """fn() on process 0 first (it downloads into the cache), then on the others."""
    if rank != 0 and world_size > 1:
        torch.distributed.barrier()
    result = fn()
    if rank == 0 and world_size > 1:
        torch.distributed.barrier()
    return result


# ----------------------------------------------------------------------------------------------------------------
# Feature networks.


def add_feature_network_args(add):
    """The command-line options naming local (or other) weights of the feature networks; `add` is
    parser.add_argument. Their values go to FeatureNetworks(**)."""
    add("--inception", metavar="PATH", help="Inception-v3 weights for FID, KID, IS: pytorch-fid's .pth or "
        "StyleGAN2-ADA's inception-2015-12-05.pt (default: download pytorch-fid's)")
    add("--vgg16", metavar="PATH", help="VGG16 weights: torchvision's vgg16-397923af.pth (precision/recall; PPL with "
        "the lpips lin weights) or NVIDIA's vgg16_zhang_perceptual.pkl (PPL only); default: download")
    add("--lpips-lin", metavar="PATH", help="PPL with torchvision's VGG16: the lpips package's v0.1/vgg.pth "
        "(default: from the installed lpips package)")
    add("--classifiers", metavar="DIR", help="ls: folder or URL holding the 40 celebahq-classifier-NN-<name>.pkl "
        "files (default: NVIDIA's)")


class FeatureNetworks:
    """The networks the metrics measure with, each loaded once per process: 'inception' (FID, KID, IS), 'vgg16'
    (precision/recall: VGG16 up to fc2), 'lpips' (PPL), 'classifiers' (ls: a list of 40). The paths default to the
    original files' URLs (downloaded into the dnnlib cache); `modules` presets any of them (tests, benchmarks).
    `channels_last`: keep Inception and VGG16 in channels-last memory format, which oneDNN (CPU) and cuDNN run
    faster (bench/metrics.py); the features differ from the default format's by float rounding only."""

    _CHANNELS_LAST = ("inception", "vgg16")

    def __init__(self, inception=None, vgg16=None, lpips_lin=None, classifiers=None, cache_dir=None, modules=None,
                 channels_last=True):
        self.inception, self.vgg16, self.lpips_lin, self.classifiers = inception, vgg16, lpips_lin, classifiers
        self.cache_dir, self.channels_last = cache_dir, channels_last
        self._loaded = dict(modules or {})

    def _load(self, name):
        if name == "inception":
            from metrics.inception import load_inception
            return load_inception(self.inception, cache_dir=self.cache_dir)
        if name == "vgg16":
            from metrics.vgg16 import load_vgg16
            return load_vgg16(self.vgg16, cache_dir=self.cache_dir)
        if name == "lpips":
            from training.lpips import load_lpips
            return load_lpips(self.vgg16, self.lpips_lin, cache_dir=self.cache_dir)
        if name == "classifiers":
            from metrics.linear_separability import load_classifiers
            return load_classifiers(self.classifiers, cache_dir=self.cache_dir)
        raise ValueError(f"unknown feature network '{name}'")

    def get(self, name, device):
        """The network (for 'classifiers', the list of Networks) on `device`, frozen and in eval mode."""
        if name not in self._loaded:
            self._loaded[name] = self._load(name)
        net = self._loaded[name]
        for module in [c.module for c in net] if name == "classifiers" else [net]:
            module.to(device).eval().requires_grad_(False)
            if self.channels_last and name in self._CHANNELS_LAST:
                module.to(memory_format=torch.channels_last)
        return net


class Detector:
    """A feature network as the metrics call it: images [N, C, H, W] uint8 (or float in [0, 255]; grayscale is
    repeated to RGB) -> features [N, D], as `forward(module, images)` computes them (default: module(images)).
    `name`, `options` (settings outside the weights) and the digest of the weights key the dataset statistics
    cache."""

    def __init__(self, name, module, forward=None, options=None):
        self.name, self.module, self.options = name, module, options
        self.forward = forward if forward is not None else (lambda net, images: net(images))

    @property
    def digest(self):
        return feature_stats.module_digest(self.module)

    def __call__(self, images):
        assert images.ndim == 4 and images.shape[1] in (1, 3), f"expected images [N, 1|3, H, W], got {images.shape}"
        x = images.to(torch.float32)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        features = self.forward(self.module, x)
        assert features.ndim == 2 and features.shape[0] == len(images), f"features {list(features.shape)}"
        return features


def inception_pool3(ctx):
    """Inception-v3's pool3 features [N, 2048]: what FID and KID compare."""
    net = ctx.net("inception")
    return Detector("inception", net, lambda net, images: net(images)[0],
                    options=dict(preprocess=getattr(net, "preprocess_mode", None)))


# ----------------------------------------------------------------------------------------------------------------
# The context.


class MetricContext:
    """Everything a metric reads: the generator `Gs` (a Network), the dataset (`dataset_kwargs` of
    training.dataset.load_dataset, without mirror_augment; None when no metric needs it), whether the legacy metrics
    mirror it, the FeatureNetworks, the device, the process rank and count, the seed of the generated items, whether
    dataset statistics are cached on disk, and whether process 0 shows progress bars."""

    def __init__(self, Gs, dataset_kwargs=None, mirror_augment=False, networks=None, device=None, rank=None,
                 world_size=None, seed=0, cache=True, progress=True, num_workers=None):
        self.Gs = Gs
        self.device = torch.device(device) if device is not None else Gs.device
        self.dataset_kwargs = None if dataset_kwargs is None else dict(dataset_kwargs)
        self.mirror_augment = bool(mirror_augment)
        self.networks = networks if networks is not None else FeatureNetworks()
        default_rank, default_world = dist_info()
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size
        self.seed, self.cache, self.progress = seed, cache, progress
        self.num_workers = (3 if self.device.type == "cuda" else 0) if num_workers is None else num_workers
        self._datasets = {}

    @property
    def label_size(self):
        return self.Gs.input_shapes[1][1]

    @property
    def dataset_root(self):
        kwargs = self.dataset_kwargs
        if kwargs.get("path") is not None:
            return kwargs["path"]
        return os.path.join(kwargs.get("data_dir") or "", kwargs["tfrecord_dir"])

    def dataset(self, mirror_augment=False):
        """The dataset (with x-flipped copies after the originals when mirrored), opened once."""
        if self.dataset_kwargs is None:
            raise UserError("this metric needs the dataset the network was trained on: pass --data=<folder, zip or "
                            "tfrecord dir> or --data-dir=<root> --dataset=<name>")
        if mirror_augment not in self._datasets:
            from training.dataset import load_dataset
            self._datasets[mirror_augment] = load_dataset(**self.dataset_kwargs, mirror_augment=mirror_augment)
        return self._datasets[mirror_augment]

    def check_labels(self):
        """A conditional generator gets the labels of random dataset images: the dataset must have such labels.
        (An unconditional one needs no dataset for that.)"""
        if self.label_size:
            found = self.dataset().label_size
            if found != self.label_size:
                raise UserError(f"the network is conditional ({self.label_size} labels) but the dataset has "
                                f"{found} labels; pass the dataset it was trained on")

    def net(self, name):
        return leader_first(lambda: self.networks.get(name, self.device), self.rank, self.world_size)

    def broadcast(self, obj):
        return broadcast(obj, self.world_size)

    def progress_bar(self, total, desc, unit="img"):
        return tqdm.tqdm(total=total, desc=desc, unit=unit, mininterval=1.0, leave=False,
                         disable=not self.progress or self.rank != 0)


# ----------------------------------------------------------------------------------------------------------------
# Generated items.


def item_generators(ctx, index):
    """(CPU generator, device generator) of generated item `index`: latents and label choices come from the first,
    noise inputs from the second (on the device, so that large noise maps cost no transfer)."""
    seeds = np.random.SeedSequence([ctx.seed, int(index)]).generate_state(2, np.uint64)
    cpu = torch.Generator().manual_seed(int(seeds[0]))
    device = torch.Generator(device=ctx.device).manual_seed(int(seeds[1]))
    return cpu, device


def random_label(ctx, generator):
    """The label [label_size] of a uniformly drawn dataset image (the conditioning of a generated item), or None."""
    if not ctx.label_size:
        return None
    dataset = ctx.dataset()
    return torch.from_numpy(dataset.get_label(int(torch.randint(len(dataset), [1], generator=generator))))


def random_noise(ctx, generator):
    """One item's noise inputs of the synthesis network: a list of [1, 1, r, r] tensors on the device."""
    shapes = ctx.Gs.components.synthesis.module.noise_shapes()
    return [torch.randn(shape, generator=generator, device=ctx.device) for shape in shapes]


def stack_items(items, device):
    """Per-item tuples of tensors (or None, or lists of tensors) -> batched tensors on the device."""
    out = []
    for column in zip(*items):
        if column[0] is None:
            out.append(None)
        elif isinstance(column[0], list):
            out.append([torch.cat(layer).to(device) for layer in zip(*column)])
        else:
            out.append(torch.stack(column).to(device))
    return out


def generator_inputs(ctx, indices):
    """z [N, latent_size], labels [N, label_size] or None, noise inputs (list of [N, 1, r, r]) of items `indices`."""
    items = []
    for index in indices:
        cpu, device = item_generators(ctx, index)
        z = torch.randn([ctx.Gs.input_shape[1]], generator=cpu)
        items.append((z, random_label(ctx, cpu), random_noise(ctx, device)))
    return stack_items(items, ctx.device)


def generate_images(ctx, indices):
    """Generated images [N, C, H, W] in [-1, 1] of items `indices`: no truncation (psi 1), as the metrics are
    defined, with the items' own latents, labels and noise."""
    z, labels, noise = generator_inputs(ctx, indices)
    return ctx.Gs.get_output_for(z, labels, truncation_psi=None, noise_inputs=noise).to(torch.float32)


def to_uint8(images):
    """[-1, 1] images -> uint8 [0, 255], rounded as the original's convert_images_to_uint8."""
    return tflib.convert_images_to_uint8(images)


# ----------------------------------------------------------------------------------------------------------------
# Batches over processes.


def rank_batches(ctx, num_items, batch_size):
    """This process's global batches of item indices: batch b = [b * batch_size, (b + 1) * batch_size), taken
    by process b % world_size."""
    starts = range(ctx.rank * batch_size, num_items, batch_size * ctx.world_size)
    return [np.arange(start, min(start + batch_size, num_items)) for start in starts]


def _to_numpy(value):
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def map_batches(ctx, num_items, batch_size, fn, desc, unit="img", data=None):
    """fn(indices) -> {name: [len(indices), ...]} over every item, split over processes; `data`, if given, yields
    one input per batch of rank_batches() in order, passed as fn(indices, input). Returns {name: [num_items, ...]}
    in item order on process 0 and None on the others."""
    parts = []
    inputs = iter(data) if data is not None else None
    with torch.no_grad(), ctx.progress_bar(num_items, desc, unit) as bar:
        for indices in rank_batches(ctx, num_items, batch_size):
            out = fn(indices) if inputs is None else fn(indices, next(inputs))
            out = {name: _to_numpy(value) for name, value in out.items()}
            assert all(len(value) == len(indices) for value in out.values()), "fn must return one row per item"
            parts.append((int(indices[0]), out))
            bar.update(min(len(indices) * ctx.world_size, bar.total - bar.n))
    if ctx.world_size > 1:
        gathered = [None] * ctx.world_size if ctx.rank == 0 else None
        torch.distributed.gather_object(parts, gathered, dst=0)
        if ctx.rank != 0:
            return None
        parts = sorted((part for rank_parts in gathered for part in rank_parts), key=lambda part: part[0])
    if not parts:
        return {}
    return {name: np.concatenate([out[name] for _start, out in parts]) for name in parts[0][1]}


def generator_features(ctx, detector, num_gen, batch_size):
    """Features [num_gen, D] of generated images on process 0 (None on the others)."""
    out = map_batches(ctx, num_gen, batch_size, lambda indices: dict(f=detector(to_uint8(generate_images(
        ctx, indices)))), f"{detector.name} features of generated images")
    return None if out is None else out["f"]


def dataset_features(ctx, detector, max_items, mirror_augment, batch_size, keep_features):
    """FeatureStats of the first `max_items` dataset images (None: all; mirrored: the x-flipped copies follow the
    originals) on process 0, None on the others; from the statistics cache when it holds them."""
    mirror = ctx.mirror_augment if mirror_augment is None else mirror_augment
    dataset = ctx.dataset(mirror)
    num = len(dataset) if max_items is None else min(len(dataset), max_items)
    path = None
    if ctx.cache:
        key = dict(dataset=os.path.abspath(ctx.dataset_root), files=feature_stats.dataset_fingerprint(ctx.dataset_root),
                   image_shape=dataset.image_shape, num=num, mirror=mirror, detector=detector.name,
                   options=detector.options, weights=detector.digest)
        path = feature_stats.cache_path(key, dataset.name, detector.name)
        stats = feature_stats.load_cached(path, keep_features) if ctx.rank == 0 else None
        if ctx.broadcast(stats is not None):
            return stats

    batches = rank_batches(ctx, num, batch_size)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=[batch.tolist() for batch in batches],
                                         num_workers=ctx.num_workers, pin_memory=ctx.device.type == "cuda")
    out = map_batches(ctx, num, batch_size, lambda _indices, batch: dict(f=detector(batch[0].to(ctx.device))),
                      f"{detector.name} features of {dataset.name}", data=loader)
    if out is None:
        return None
    stats = feature_stats.FeatureStats.from_features(out["f"], keep_features)
    if path is not None:
        feature_stats.save_cached(path, stats)
    return stats


# ----------------------------------------------------------------------------------------------------------------
# Running and reporting.


def calc_metric(ctx, spec):
    """Run one metric (a spec of metric_defaults.get_metric): EasyDict(metric, results {name + suffix: value},
    total_time, total_time_str, num_gpus), the same in every process."""
    start = time.time()
    results = spec.func(ctx, **spec.kwargs)
    results = ctx.broadcast(None if results is None else {spec.name + suffix: float(value)
                                                          for suffix, value in results.items()})
    total_time = time.time() - start
    return EasyDict(metric=spec.name, results=results, total_time=total_time,
                    total_time_str=dnnlib.util.format_time(total_time), num_gpus=ctx.world_size)


def result_line(network_name, record):
    """The original's result line: '<network, 30 wide> time <time, 12 wide> <name> <value> ...'."""
    if len(network_name) > 29:
        network_name = "..." + network_name[-26:]
    line = "%-30s time %-12s" % (network_name, record.total_time_str)
    for name, value in record.results.items():
        line += " %s %-10.4f" % (name, value)
    return line.strip()


def report_metric(record, network_name, run_dir=None, snapshot_pkl=None):
    """Print the result line; in a run directory also append it to 'metric-<name>.txt' and the record (JSON) to
    'metrics.jsonl'."""
    line = result_line(network_name, record)
    print(line, flush=True)
    if run_dir is None:
        return
    with open(os.path.join(run_dir, f"metric-{record.metric}.txt"), "a", encoding="utf-8") as f:
        f.write(line + "\n")
    if snapshot_pkl is not None:
        snapshot_pkl = os.path.relpath(snapshot_pkl, run_dir)
    entry = dict(record, network=network_name, snapshot_pkl=snapshot_pkl, timestamp=time.time())
    with open(os.path.join(run_dir, "metrics.jsonl"), "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


class MetricGroup:
    """Metrics by name (unknown names fail at once). prepare() loads what they need, so that a missing dataset or
    missing weights stop a run before any metric (or training) starts; run() computes and reports them."""

    def __init__(self, names):
        from metrics.metric_defaults import get_metric
        self.specs = [get_metric(name) for name in names]

    def prepare(self, ctx):
        for name in sorted({need for spec in self.specs for need in spec.needs}):
            ctx.net(name)
        if any(spec.reals for spec in self.specs):
            ctx.dataset()
        if self.specs:
            ctx.check_labels()

    def run(self, ctx, network_name, run_dir=None, snapshot_pkl=None):
        """Compute every metric; process 0 reports each as it is done. Returns the records."""
        records = []
        for spec in self.specs:
            record = calc_metric(ctx, spec)
            if ctx.rank == 0:
                report_metric(record, network_name, run_dir, snapshot_pkl)
            records.append(record)
        return records
