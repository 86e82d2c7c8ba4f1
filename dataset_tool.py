"""Create, inspect and convert StyleGAN2 datasets, with the commands and arguments of the original dataset_tool.py.

    python dataset_tool.py create_from_images datasets/mydataset myimagedir
    python dataset_tool.py create_cifar10 datasets/cifar10 ~/downloads/cifar10
    python dataset_tool.py info datasets/mydataset
    python dataset_tool.py convert datasets/mydataset mydataset.zip

Datasets are written as the original's multi-resolution TFRecords (`<dir>/<name>-rNN.tfrecords`, one file per
resolution down to 4x4, plus `<name>-rxx.labels`), or with `--format ada` (or a `.zip` target) as
stylegan2-ada-pytorch reads them: PNGs `00000/img00000000.png` and `dataset.json`. A new dataset is written beside
its target (`<target>.tmp-XXXX`) and moved into place only when complete.
"""

import argparse
import collections
import contextlib
import gzip
import io
import json
import os
import pickle
import shutil
import struct
import sys
import tempfile
import uuid
import zipfile

import numpy as np
import PIL.Image
import tqdm

import dnnlib
from dnnlib.tflib import network_pickle
from dnnlib.util import UserError
from training import dataset

# ----------------------------------------------------------------------------------------------------------------
# New datasets: staged beside the target, moved into place when complete.


def _default_mode(base):
    """`base` permissions less the process umask (temp files and dirs are created private)."""
    umask = os.umask(0)
    os.umask(umask)
    return base & ~umask


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)


@contextlib.contextmanager
def staged_output(target, overwrite, is_file=False):
    """Yield a fresh temporary directory (or file path) beside `target`; when the block succeeds it replaces
    `target`, otherwise it is removed. A crash therefore never leaves a half-written dataset under the target's
    name. An existing non-empty target is refused unless `overwrite`."""
    target = os.path.normpath(target)
    if os.path.lexists(target):
        is_empty_dir = os.path.isdir(target) and not os.listdir(target)
        if not is_empty_dir and not overwrite:
            what = 'is not empty' if os.path.isdir(target) else 'exists'
            raise UserError(f'{target} {what}; pass --overwrite to replace it, or choose another path')
    parent = os.path.dirname(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    prefix = os.path.basename(target) + '.tmp-'
    if is_file:
        fd, staging = tempfile.mkstemp(dir=parent, prefix=prefix)
        os.close(fd)
        os.chmod(staging, _default_mode(0o666))
    else:
        staging = tempfile.mkdtemp(dir=parent, prefix=prefix)
        os.chmod(staging, _default_mode(0o777))
    try:
        yield staging
        if not os.path.lexists(target):
            os.replace(staging, target)
            return
        old = f'{target}.old-{uuid.uuid4().hex[:8]}'  # moved aside first: a directory cannot replace a full one
        os.rename(target, old)
        try:
            os.replace(staging, target)
        except BaseException:
            os.rename(old, target)
            raise
        _remove(old)
    except BaseException:
        if os.path.lexists(staging):
            _remove(staging)
        raise


def check_image_shape(shape, layout):
    """Refuse image shapes that the original's networks cannot train on: [C, H, W] with C 1 or 3, square,
    a power of two, at least 4x4."""
    channels, height, width = shape
    if channels not in (1, 3):
        raise UserError(f'images have {channels} channels; datasets need 1 (grayscale) or 3 (RGB)')
    if height != width or height < 4 or height & (height - 1):
        raise UserError(f'images are {width}x{height}, but {layout} needs square power-of-two images (4x4 or '
                        'larger); pass --resolution N to resize them')


class Skips:
    """Inputs left out of a dataset. An unreadable image stops the run with one line naming it, or with
    `skip_bad` is skipped with a warning naming it; every skip is counted in report()."""

    # What a broken or unsupported image file raises while it is opened and decoded.
    IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, PIL.Image.DecompressionBombError)

    def __init__(self, skip_bad=False):
        self.skip_bad = skip_bad
        self.unreadable = 0
        self.dropped = collections.Counter()

    def load(self, name, func, *args):
        """func(*args), or None when it fails on a bad image and skip_bad is set."""
        try:
            return func(*args)
        except self.IMAGE_ERRORS as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            if isinstance(err, PIL.UnidentifiedImageError):
                reason = 'not a recognised image file'
            if not self.skip_bad:
                raise UserError(f'cannot read image {name}: {reason}; fix or remove it, or pass --skip-bad to '
                                'skip unreadable images') from None
            tqdm.tqdm.write(f'warning: skipped unreadable image {name}: {reason}', file=sys.stderr)
            self.unreadable += 1
            return None

    def drop(self, reason):
        self.dropped[reason] += 1

    def report(self):
        if self.unreadable:
            print(f'warning: skipped {self.unreadable} unreadable image(s)', file=sys.stderr)
        for reason, count in self.dropped.items():
            print(f'warning: skipped {count} image(s): {reason}', file=sys.stderr)


class _Exporter:
    """Collects images and labels into a dataset under construction; close() writes what remains."""

    def __init__(self, path, name, skips):
        self.path = path
        self.name = name
        self.skips = skips
        self.count = 0
        self._labels = []

    def add_image(self, image, label=None):
        """Append a uint8 [C, H, W] image, with a class index, a label vector or None."""
        self._write_image(np.asarray(image, dtype=np.uint8))
        self._labels.append(label)
        self.count += 1

    def _write_image(self, image):
        raise NotImplementedError

    def _finish(self, labels):  # overridden: write what remains, given the labels (see _collected_labels)
        raise NotImplementedError

    def _collected_labels(self):
        """None, int64 [N] class indices, or float32 [N, label_size]."""
        given = [label is not None for label in self._labels]
        if not any(given):
            return None
        if not all(given):
            raise ValueError('either every image or none has a label')
        if all(isinstance(label, (int, np.integer)) for label in self._labels):
            return np.array(self._labels, dtype=np.int64)
        return np.stack([np.asarray(label, dtype=np.float32) for label in self._labels])

    def close(self, complete=True):
        """Finish the dataset, or with complete=False just release files (the staging area is discarded)."""
        if complete:
            self._finish(self._collected_labels())


class TFRecordExporter(_Exporter):
    """The original layout: `<name>-rNN.tfrecords` for each resolution 2^NN down to 4x4, the lower ones made by
    2x2 box averaging in float32 (each level from the unrounded level above, rounded half-to-even only for
    storage, as the original TFRecordExporter), and labels as float32 `.npy` data in `<name>-rxx.labels`."""

    def __init__(self, path, name, skips):
        super().__init__(path, name, skips)
        self._files = []
        self._shape = None

    def _write_image(self, image):
        if self._shape is None:
            check_image_shape(image.shape, 'TFRecords')
            self._shape = image.shape
            resolution_log2 = int(np.log2(image.shape[1]))
            self._files = [open(os.path.join(self.path, f'{self.name}-r{log2:02d}.tfrecords'), 'wb')
                           for log2 in range(resolution_log2, 1, -1)]
        if image.shape != self._shape:
            raise ValueError(f'image shape {image.shape} differs from the first image\'s {self._shape}')
        level = image
        for lod, f in enumerate(self._files):
            if lod:
                level = level.astype(np.float32)
                level = (level[:, 0::2, 0::2] + level[:, 0::2, 1::2] +
                         level[:, 1::2, 0::2] + level[:, 1::2, 1::2]) * 0.25
            quant = np.rint(level).clip(0, 255).astype(np.uint8)
            f.write(dataset.frame_record(dataset.image_example(quant)))

    def _finish(self, labels):
        if labels is not None:
            with open(os.path.join(self.path, f'{self.name}-rxx.labels'), 'wb') as f:
                np.save(f, dataset.labels_to_float(labels, 'the labels'))

    def close(self, complete=True):
        for f in self._files:
            f.close()
        super().close(complete)


class RawTFRecordExporter(_Exporter):
    """One `<name>-rNN.tfrecords` file whose records keep each image file's encoded bytes (feature `img`) and
    its [C, H, W] shape, as create_from_images_raw of the skyflynil/stylegan2 fork writes them."""

    def __init__(self, path, name, skips):
        super().__init__(path, name, skips)
        self._file = None

    def start(self, res_log2):
        """Open the records file; res_log2 is the NN of its name."""
        self._file = open(os.path.join(self.path, f'{self.name}-r{res_log2:02d}.tfrecords'), 'wb')

    def add_encoded(self, data, shape):
        """Append an encoded image file (bytes) whose decoded pixels are [C, H, W] `shape`."""
        self._file.write(dataset.frame_record(dataset.encode_example({'shape': list(shape), 'img': data})))
        self.count += 1

    def close(self, complete=True):
        if self._file is not None:
            self._file.close()


class AdaExporter(_Exporter):
    """The stylegan2-ada-pytorch layout, in a folder or a zip (stored, not compressed): uncompressed PNGs
    `00000/img00000000.png` and `dataset.json` with {"labels": [[file, class index or vector], ...] or null}."""

    def __init__(self, path, name, skips, is_zip):
        super().__init__(path, name, skips)
        self._zip = zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_STORED) if is_zip else None
        self._names = []
        self._shape = None

    def _save(self, name, data):
        if self._zip is not None:
            self._zip.writestr(name, data)
            return
        full = os.path.join(self.path, name)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, 'wb') as f:
            f.write(data)

    def _write_image(self, image):
        if self._shape is None:
            check_image_shape(image.shape, 'the ada layout')
            self._shape = image.shape
        if image.shape != self._shape:
            raise ValueError(f'image shape {image.shape} differs from the first image\'s {self._shape}')
        idx = f'{self.count:08d}'
        name = f'{idx[:5]}/img{idx}.png'
        buf = io.BytesIO()
        to_pil(image).save(buf, format='png', compress_level=0, optimize=False)
        self._save(name, buf.getvalue())
        self._names.append(name)

    def _finish(self, labels):
        entries = None if labels is None else [[name, label] for name, label in zip(self._names, labels.tolist())]
        self._save('dataset.json', json.dumps({'labels': entries}).encode('utf-8'))

    def close(self, complete=True):
        super().close(complete)
        if self._zip is not None:
            self._zip.close()


def default_format(target, source_is_tfrecords=None):
    """'ada' for a .zip target; else the other layout than a converted source's; else 'tfrecords'."""
    if target.lower().endswith('.zip'):
        return 'ada'
    return 'ada' if source_is_tfrecords else 'tfrecords'


@contextlib.contextmanager
def new_dataset(target, fmt=None, overwrite=False, skip_bad=False):
    """Yield an exporter that builds a dataset at `target` (format 'tfrecords', 'ada' or 'raw'); it appears
    there only if the block succeeds. Prints skipped inputs and where the dataset went."""
    fmt = fmt or default_format(target)
    is_zip = fmt == 'ada' and target.lower().endswith('.zip')
    if fmt != 'ada' and target.lower().endswith('.zip'):
        raise UserError(f'TFRecords are written into a directory, not {target}; pass --format ada for a .zip')
    name = os.path.basename(os.path.normpath(target))
    with staged_output(target, overwrite, is_file=is_zip) as staging:
        skips = Skips(skip_bad)
        if fmt == 'ada':
            exporter = AdaExporter(staging, name, skips, is_zip)
        else:
            exporter = (RawTFRecordExporter if fmt == 'raw' else TFRecordExporter)(staging, name, skips)
        try:
            yield exporter
        except BaseException:
            exporter.close(complete=False)
            raise
        if exporter.count == 0:
            raise UserError(f'no images to write to {target}')
        exporter.close()
    exporter.skips.report()
    print(f'Done: {exporter.count} images in {target}')


# ----------------------------------------------------------------------------------------------------------------
# Images.

_GRAYSCALE_MODES = {'1', 'L', 'LA', 'La', 'I', 'I;16', 'I;16L', 'I;16B', 'I;16N'}
_SUPPORTED_MODES = _GRAYSCALE_MODES | {'P', 'PA', 'RGB', 'RGBA', 'RGBa', 'RGBX', 'CMYK', 'YCbCr', 'LAB', 'HSV'}


def to_pil(image):
    """A uint8 [C, H, W] image (C 1 or 3) as a PIL image."""
    if image.shape[0] == 1:
        return PIL.Image.fromarray(image[0], 'L')
    return PIL.Image.fromarray(image.transpose(1, 2, 0), 'RGB')


def to_channels(img, channels):
    """A PIL image as uint8 [H, W, 3] (channels 3) or [H, W] (channels 1). Transparent images are composited on
    white; 16-bit grayscale is scaled to 8 bits. Raises ValueError for pixel formats that have no such meaning."""
    if img.mode not in _SUPPORTED_MODES:
        raise ValueError(f'unsupported pixel mode {img.mode}')
    if img.mode in ('P', 'PA'):
        img = img.convert('RGBA')
    if img.mode.startswith('I'):
        wide = np.asarray(img).astype(np.int64)
        img = PIL.Image.fromarray(((np.clip(wide, 0, 65535) * 255 + 32767) // 65535).astype(np.uint8), 'L')
    if img.mode in ('RGBA', 'RGBa', 'LA', 'La'):
        img = PIL.Image.alpha_composite(PIL.Image.new('RGBA', img.size, 'white'), img.convert('RGBA'))
    return np.asarray(img.convert('L' if channels == 1 else 'RGB'))


def geometry(size, transform=None, resolution=None, wide_height=None):
    """(crop box or None, output (width, height)) for an image of `size`, or None when center-crop-wide would
    have to enlarge it. center-crop: the centred square, scaled to `resolution` if given. center-crop-wide: the
    centred band of aspect resolution:wide_height, scaled to that size on a black resolution^2 canvas."""
    width, height = size
    if transform == 'center-crop':
        crop = min(width, height)
        left, top = (width - crop) // 2, (height - crop) // 2
        out = resolution or crop
        return (left, top, left + crop, top + crop), (out, out)
    if transform == 'center-crop-wide':
        band = int(np.round(resolution * height / width))
        if width < resolution or band < wide_height:
            return None
        return (0, (height - band) // 2, width, (height + band) // 2), (resolution, resolution)
    return None, (resolution, resolution) if resolution else (width, height)


def prepare_image(img, channels, transform=None, resolution=None, wide_height=None):
    """A PIL image cropped, resized and converted to uint8 [C, H, W]; None when center-crop-wide drops it."""
    geo = geometry(img.size, transform, resolution, wide_height)
    if geo is None:
        return None
    box, out_size = geo
    array = to_channels(img, channels)
    pil = PIL.Image.fromarray(array)
    if box is not None:
        pil = pil.crop(box)
    if transform == 'center-crop-wide':
        canvas = PIL.Image.new(pil.mode, out_size, 'black')
        canvas.paste(pil.resize((resolution, wide_height), PIL.Image.LANCZOS), (0, (resolution - wide_height) // 2))
        pil = canvas
    elif pil.size != out_size:
        pil = pil.resize(out_size, PIL.Image.LANCZOS)
    array = np.asarray(pil)
    return array[np.newaxis] if array.ndim == 2 else array.transpose(2, 0, 1)


def open_image(path_or_bytes):
    """Open and fully decode an image file (path or bytes), so that damage shows here."""
    img = PIL.Image.open(io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes)
    img.load()
    return img


def probe_image(path):
    """(size, mode) from an image file's header; ValueError for pixel formats we cannot convert."""
    with PIL.Image.open(path) as img:
        if img.mode not in _SUPPORTED_MODES:
            raise ValueError(f'unsupported pixel mode {img.mode}')
        return img.size, img.mode


def list_images(image_dir):
    """Image files (by extension) under image_dir, at any depth, sorted by path. Other files are named in a
    note, not read."""
    if not os.path.isdir(image_dir):
        raise UserError(f'image directory not found: {image_dir}')
    paths = sorted(os.path.join(root, name) for root, _dirs, files in os.walk(image_dir) for name in files)
    PIL.Image.init()
    images = [path for path in paths if os.path.splitext(path)[1].lower() in PIL.Image.EXTENSION]
    others = sorted(set(paths) - set(images))
    if others:
        print(f'note: ignoring {len(others)} file(s) that are not images by extension, e.g. {others[0]}')
    if not images:
        raise UserError(f'no images found in {image_dir}')
    return images


def shuffled_order(num, shuffle=True):
    """The order in which the original adds images: np.random.RandomState(123) shuffle, or as listed."""
    order = np.arange(num)
    if shuffle:
        np.random.RandomState(123).shuffle(order)
    return order


def _optional_import(module, purpose, package=None):
    """Import an optional dependency, or say which package to install."""
    try:
        return __import__(module)
    except ImportError:
        raise UserError(f'{purpose} needs the {package or module} package: pip install {package or module}') from None


# ----------------------------------------------------------------------------------------------------------------
# Reading, comparing and converting datasets.


def display(tfrecord_dir):
    """Show the images one by one in a window (needs opencv-python), as the original."""
    cv2 = _optional_import('cv2', 'display', 'opencv-python')
    dset = dataset.load_dataset(tfrecord_dir)
    print('Press SPACE or ENTER to advance, ESC to exit')
    idx = 0
    for idx in range(len(dset)):
        image, label = dset[idx]
        print(f'\nidx = {idx:<8d}\nlabel = {label.tolist()}')
        cv2.imshow('dataset_tool', image.transpose(1, 2, 0)[:, :, ::-1])  # CHW RGB => HWC BGR
        if cv2.waitKey() == 27:
            break
    print(f'\nDisplayed {idx + 1} images.')


def extract(tfrecord_dir, output_dir, overwrite=False):
    """Write every image at full resolution as output_dir/img%08d.png (grayscale or RGB)."""
    dset = dataset.load_dataset(tfrecord_dir, use_labels=False)
    with staged_output(output_dir, overwrite) as staging:
        for idx in tqdm.tqdm(range(len(dset)), desc='Extracting', unit='img'):
            to_pil(dset[idx][0]).save(os.path.join(staging, f'img{idx:08d}.png'))
    print(f'Done: {len(dset)} images in {output_dir}')


def compare(tfrecord_dir_a, tfrecord_dir_b, ignore_labels=0):
    """Count identical images (and labels) of two datasets, item by item, as the original."""
    dset_a = dataset.load_dataset(tfrecord_dir_a, use_labels=not ignore_labels)
    dset_b = dataset.load_dataset(tfrecord_dir_b, use_labels=not ignore_labels)
    num = min(len(dset_a), len(dset_b))
    identical_images = identical_labels = 0
    for idx in tqdm.tqdm(range(num), desc='Comparing', unit='img'):
        (image_a, label_a), (image_b, label_b) = dset_a[idx], dset_b[idx]
        if image_a.shape == image_b.shape and np.array_equal(image_a, image_b):
            identical_images += 1
        else:
            tqdm.tqdm.write(f'Image {idx} is different')
        if label_a.shape == label_b.shape and np.array_equal(label_a, label_b):
            identical_labels += 1
        elif not ignore_labels:
            tqdm.tqdm.write(f'Label {idx} is different')
    if len(dset_a) != len(dset_b):
        print(f'Datasets contain different number of images ({len(dset_a)} and {len(dset_b)})')
    print(f'Identical images: {identical_images} / {num}')
    if not ignore_labels:
        print(f'Identical labels: {identical_labels} / {num}')


def info(path):
    """Print what a dataset holds."""
    dset = dataset.load_dataset(path)
    _, height, width = dset.image_shape
    if isinstance(dset, dataset.TFRecordDataset):
        sizes = sorted(shape[1] for shape in dset.files.values())
        layout = f'TFRecords ({os.path.basename(dset.path)}; resolutions {", ".join(map(str, sizes))})'
    else:
        layout = 'ada zip' if os.path.isfile(path) else 'ada folder'
    print(f'name:        {dset.name}')
    print(f'layout:      {layout}')
    print(f'resolution:  {height if height == width else f"{width}x{height}"}')
    print(f'channels:    {dset.num_channels}')
    print(f'images:      {len(dset)}')
    print(f'label size:  {dset.label_size}')


def convert(source, dest, fmt=None, resolution=None, max_images=None, overwrite=False):
    """Copy a dataset into the other layout (TFRecords <-> ada folder or zip), images and labels unchanged
    unless --resolution resizes them."""
    src = dataset.load_dataset(source, max_images=max_images)
    fmt = fmt or default_format(dest, isinstance(src, dataset.TFRecordDataset))
    with new_dataset(dest, fmt, overwrite) as out:
        for idx in tqdm.tqdm(range(len(src)), desc='Converting', unit='img'):
            image, label = src[idx]
            if resolution is not None:
                image = prepare_image(to_pil(image), image.shape[0], resolution=resolution)
            out.add_image(image, label if src.has_labels else None)


# ----------------------------------------------------------------------------------------------------------------
# Creating datasets from the usual downloads.


class _DataUnpickler(network_pickle.RestrictedUnpickler):
    """Loads NumPy arrays and plain containers (dicts, lists, tuples, strings, bytes, numbers) only."""

    def find_class(self, module, name):
        if module.split('.')[0] != 'numpy' and (module, name) != ('_codecs', 'encode'):
            raise network_pickle.UnsafePickleError(f'{module}.{name}')
        return super().find_class(module, name)


def load_data_pickle(path):
    """Unpickle a dataset file (CIFAR, SVHN) as data; a pickle that would run code is refused unopened."""
    try:
        with open(path, 'rb') as f:
            return _DataUnpickler(f, encoding='latin1').load()
    except network_pickle.UnsafePickleError as err:
        raise UserError(f'refusing to load {path}: it references {err}, which is not plain data '
                        '(nothing in it was run)') from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError) as err:
        raise UserError(f'{path} is not a valid pickle ({type(err).__name__}: {err})') from None


def _check_arrays(images, labels, shape, source):
    """images: uint8 [N, *shape]; labels: integer [N] class indices. Returns them as NumPy arrays."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != len(shape) + 1 or list(images.shape[1:]) != list(shape):
        raise UserError(f'{source}: expected uint8 images of shape {list(shape)}, got {images.dtype} '
                        f'{list(images.shape)}')
    if not np.issubdtype(labels.dtype, np.integer) or labels.shape != (images.shape[0],):
        raise UserError(f'{source}: expected {images.shape[0]} integer labels, got {labels.dtype} {list(labels.shape)}')
    return images, labels.astype(np.int64)


def _export_arrays(out, images, labels=None, shuffle=True):
    """Add array images (and class labels) in the original's order."""
    for idx in tqdm.tqdm(shuffled_order(len(images), shuffle), desc='Writing', unit='img'):
        out.add_image(images[idx], None if labels is None else int(labels[idx]))


def _read_idx(path, magic, ndim):
    """An MNIST idx file (gzip): big-endian magic, ndim sizes, then uint8 data."""
    try:
        with gzip.open(path, 'rb') as f:
            data = f.read()
    except (gzip.BadGzipFile, EOFError) as err:
        raise UserError(f'{path} is not a valid gzip file: {err}') from None
    header = 4 + 4 * ndim
    if len(data) < header or struct.unpack('>I', data[:4])[0] != magic:
        raise UserError(f'{path} is not an MNIST idx file (wrong magic number); pass the directory with the '
                        'original train-*-idx*-ubyte.gz files')
    dims = struct.unpack(f'>{ndim}I', data[4:header])
    if len(data) - header != int(np.prod(dims)):
        raise UserError(f'{path} is truncated: {len(data) - header} of {int(np.prod(dims))} bytes')
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def _load_mnist_images(mnist_dir):
    """MNIST training images padded to uint8 [N, 32, 32]."""
    images = _read_idx(os.path.join(mnist_dir, 'train-images-idx3-ubyte.gz'), 2051, 3)
    if images.shape[1:] != (28, 28):
        raise UserError(f'MNIST images in {mnist_dir} are {list(images.shape[1:])}, expected 28x28')
    return np.pad(images, [(0, 0), (2, 2), (2, 2)], 'constant', constant_values=0)


def create_mnist(tfrecord_dir, mnist_dir, fmt=None, overwrite=False):
    with new_dataset(tfrecord_dir, fmt, overwrite) as out:
        print(f'Loading MNIST from "{mnist_dir}"')
        images = _load_mnist_images(mnist_dir)[:, np.newaxis]
        labels = _read_idx(os.path.join(mnist_dir, 'train-labels-idx1-ubyte.gz'), 2049, 1)
        images, labels = _check_arrays(images, labels, [1, 32, 32], mnist_dir)
        _export_arrays(out, images, labels)


def create_mnistrgb(tfrecord_dir, mnist_dir, num_images=1000000, random_seed=123, fmt=None, overwrite=False):
    with new_dataset(tfrecord_dir, fmt, overwrite) as out:
        print(f'Loading MNIST from "{mnist_dir}"')
        images = _load_mnist_images(mnist_dir)
        rnd = np.random.RandomState(random_seed)
        for _ in tqdm.tqdm(range(num_images), desc='Writing', unit='img'):
            out.add_image(images[rnd.randint(images.shape[0], size=3)])


def _cifar_batch(path, label_key):
    data = load_data_pickle(path)
    if not isinstance(data, dict) or 'data' not in data or label_key not in data:
        raise UserError(f'{path} is not a CIFAR batch: expected a dict with "data" and "{label_key}"; pass the '
                        'directory of the python version (cifar-*-python.tar.gz, extracted)')
    return _check_arrays(np.asarray(data['data']).reshape(-1, 3, 32, 32), data[label_key], [3, 32, 32], path)


def create_cifar10(tfrecord_dir, cifar10_dir, fmt=None, overwrite=False):
    with new_dataset(tfrecord_dir, fmt, overwrite) as out:
        print(f'Loading CIFAR-10 from "{cifar10_dir}"')
        batches = [_cifar_batch(os.path.join(cifar10_dir, f'data_batch_{batch}'), 'labels') for batch in range(1, 6)]
        _export_arrays(out, np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]))


def create_cifar100(tfrecord_dir, cifar100_dir, fmt=None, overwrite=False):
    with new_dataset(tfrecord_dir, fmt, overwrite) as out:
        print(f'Loading CIFAR-100 from "{cifar100_dir}"')
        _export_arrays(out, *_cifar_batch(os.path.join(cifar100_dir, 'train'), 'fine_labels'))


def create_svhn(tfrecord_dir, svhn_dir, fmt=None, overwrite=False):
    with new_dataset(tfrecord_dir, fmt, overwrite) as out:
        print(f'Loading SVHN from "{svhn_dir}"')
        parts = []
        for batch in range(1, 4):
            path = os.path.join(svhn_dir, f'train_{batch}.pkl')
            data = load_data_pickle(path)
            if not isinstance(data, (tuple, list)) or len(data) != 2:
                raise UserError(f'{path} is not an SVHN batch: expected a pickled (images, labels) pair')
            parts.append(_check_arrays(data[0], data[1], [3, 32, 32], path))
        _export_arrays(out, np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def _export_lmdb(out, lmdb_dir, max_images, **prepare_kwargs):
    """Add the images of an LSUN LMDB database, in key order, up to max_images."""
    lmdb = _optional_import('lmdb', 'reading LSUN')
    print(f'Loading LSUN dataset from "{lmdb_dir}"')
    try:
        env = lmdb.open(lmdb_dir, readonly=True, lock=False)
    except lmdb.Error as err:
        raise UserError(f'cannot open LMDB database {lmdb_dir}: {err}') from None
    with env, env.begin(write=False) as txn:
        total = txn.stat()['entries']
        max_images = total if max_images is None else min(max_images, total)
        with tqdm.tqdm(total=max_images, desc='Writing', unit='img') as progress:
            for key, value in txn.cursor():
                if out.count >= max_images:
                    break
                img = out.skips.load(f'{lmdb_dir}:{key.decode(errors="replace")}', open_image, bytes(value))
                image = None if img is None else prepare_image(img, 3, **prepare_kwargs)
                if img is not None and image is None:
                    out.skips.drop(_TOO_SMALL_FOR_WIDE)
                if image is not None:
                    out.add_image(image)
                    progress.update(1)


_TOO_SMALL_FOR_WIDE = 'too small for center-crop-wide (it does not enlarge images)'


def create_lsun(tfrecord_dir, lmdb_dir, resolution=256, max_images=None, skip_bad=False, fmt=None, overwrite=False):
    with new_dataset(tfrecord_dir, fmt, overwrite, skip_bad) as out:
        _export_lmdb(out, lmdb_dir, max_images, transform='center-crop', resolution=resolution)


def create_lsun_wide(tfrecord_dir, lmdb_dir, width=512, height=384, max_images=None, skip_bad=False, fmt=None,
                     overwrite=False):
    if width & (width - 1) or width < 4 or not 0 < height <= width:
        raise UserError(f'--width must be a power of two and --height at most --width (got {width}x{height})')
    with new_dataset(tfrecord_dir, fmt, overwrite, skip_bad) as out:
        _export_lmdb(out, lmdb_dir, max_images, transform='center-crop-wide', resolution=width, wide_height=height)


def create_celeba(tfrecord_dir, celeba_dir, cx=89, cy=121, skip_bad=False, fmt=None, overwrite=False,
                  expected_images=202599):
    """128x128 crops centred at (cx, cy) of the aligned CelebA PNGs, shuffled as the original."""
    with new_dataset(tfrecord_dir, fmt, overwrite, skip_bad) as out:
        print(f'Loading CelebA from "{celeba_dir}"')
        image_dir = os.path.join(celeba_dir, 'img_align_celeba_png')
        paths = sorted(os.path.join(image_dir, name) for name in os.listdir(image_dir)
                       if name.endswith('.png')) if os.path.isdir(image_dir) else []
        if len(paths) != expected_images:
            raise UserError(f'expected {expected_images} images in {image_dir}, found {len(paths)}; download the '
                            'complete aligned CelebA set in PNG form')
        for idx in tqdm.tqdm(shuffled_order(len(paths)), desc='Writing', unit='img'):
            img = out.skips.load(paths[idx], open_image, paths[idx])
            if img is None:
                continue
            array = to_channels(img, 3)
            if array.shape != (218, 178, 3):
                raise UserError(f'{paths[idx]} is {array.shape[1]}x{array.shape[0]}; aligned CelebA images are 178x218')
            out.add_image(array[cy - 64:cy + 64, cx - 64:cx + 64].transpose(2, 0, 1))


def _probe_all(paths, skips):
    """[(path, size, mode)] of the readable image files."""
    probed = []
    for path in paths:
        header = skips.load(path, probe_image, path)
        if header is not None:
            probed.append((path, *header))
    return probed


def create_from_images(tfrecord_dir, image_dir, shuffle=1, resolution=None, transform=None, height=None,
                       skip_bad=False, fmt=None, overwrite=False):
    """A dataset of the images in a folder: grayscale if all of them are, else RGB (transparency on white)."""
    if transform == 'center-crop-wide' and resolution is None:
        raise UserError('--transform center-crop-wide needs --resolution (the output width)')
    wide_height = height or (resolution * 3 // 4 if resolution else None)
    if transform == 'center-crop-wide' and wide_height > resolution:
        raise UserError(f'--height {wide_height} is more than --resolution {resolution}: the band must fit the canvas')
    with new_dataset(tfrecord_dir, fmt, overwrite, skip_bad) as out:
        print(f'Loading images from "{image_dir}"')
        probed = []
        for path, size, mode in _probe_all(list_images(image_dir), out.skips):
            geo = geometry(size, transform, resolution, wide_height)
            if geo is None:
                tqdm.tqdm.write(f'warning: skipped {path} ({size[0]}x{size[1]}): {_TOO_SMALL_FOR_WIDE}',
                                file=sys.stderr)
                out.skips.drop(_TOO_SMALL_FOR_WIDE)
                continue
            probed.append((path, geo[1], mode))
        if not probed:
            raise UserError(f'no usable images in {image_dir}')
        first_path, first_size, _ = probed[0]
        for path, size, _ in probed:
            if size != first_size:
                raise UserError(f'image sizes differ: {path} is {size[0]}x{size[1]} but {first_path} is '
                                f'{first_size[0]}x{first_size[1]}; pass --resolution N to resize all images to NxN')
        channels = 1 if all(mode in _GRAYSCALE_MODES for _, _, mode in probed) else 3
        # Before any decoding: the exporter would refuse the first image anyway.
        check_image_shape([channels, first_size[1], first_size[0]],
                          'TFRecords' if isinstance(out, TFRecordExporter) else 'the ada layout')

        def load(path):
            return prepare_image(open_image(path), channels, transform, resolution, wide_height)

        for idx in tqdm.tqdm(shuffled_order(len(probed), shuffle), desc='Writing', unit='img'):
            image = out.skips.load(probed[idx][0], load, probed[idx][0])
            if image is not None:
                out.add_image(image)


def create_from_images_raw(tfrecord_dir, image_dir, shuffle=1, res_log2=None, skip_bad=False, overwrite=False):
    """TFRecords that keep each image file's encoded bytes (e.g. JPEG) instead of pixels: one file, no
    lower resolutions. All images must have one size and be RGB or grayscale files."""
    with new_dataset(tfrecord_dir, 'raw', overwrite, skip_bad) as out:
        print(f'Loading images from "{image_dir}"')
        probed = _probe_all(list_images(image_dir), out.skips)
        if not probed:
            raise UserError(f'no usable images in {image_dir}')
        first_path, (width, height), first_mode = probed[0]
        for path, size, mode in probed:
            if mode not in ('L', 'RGB'):
                raise UserError(f'{path} is a {mode} image; raw records need RGB or grayscale files: use '
                                'create_from_images, which converts them')
            if (size, mode) != ((width, height), first_mode):
                raise UserError(f'{path} is a {size[0]}x{size[1]} {mode} image but {first_path} is {width}x{height} '
                                f'{first_mode}; raw records need one size and mode: use create_from_images '
                                '--resolution N')
        if res_log2 is None:  # the largest power of two dividing both sides
            common = int(np.gcd(width, height))
            res_log2 = (common & -common).bit_length() - 1
        if res_log2 < 0 or width % 2**res_log2 or height % 2**res_log2:
            raise UserError(f'images are {width}x{height}: not multiples of 2^{res_log2}; pick another --res_log2')
        out.start(res_log2)
        shape = [1 if first_mode == 'L' else 3, height, width]
        for idx in tqdm.tqdm(shuffled_order(len(probed), shuffle), desc='Writing', unit='img'):
            path = probed[idx][0]
            with open(path, 'rb') as f:
                data = f.read()
            if out.skips.load(path, open_image, data) is not None:
                out.add_encoded(data, shape)


def create_from_hdf5(tfrecord_dir, hdf5_filename, shuffle=1, fmt=None, overwrite=False):
    """The highest-resolution `data*` array [N, C, H, W] of a legacy HDF5 archive, with `<name>-labels.npy`
    labels if present."""
    h5py = _optional_import('h5py', 'create_from_hdf5')
    with new_dataset(tfrecord_dir, fmt, overwrite) as out:
        print(f'Loading HDF5 archive from "{hdf5_filename}"')
        try:
            hdf5_file = h5py.File(hdf5_filename, 'r')
        except OSError as err:
            raise UserError(f'cannot open HDF5 archive {hdf5_filename}: {err}') from None
        with hdf5_file:
            arrays = [value for key, value in hdf5_file.items() if key.startswith('data') and len(value.shape) == 4]
            if not arrays:
                raise UserError(f'{hdf5_filename} has no data* arrays of images [N, C, H, W]')
            data = max(arrays, key=lambda array: array.shape[3])
            labels = None
            npy_filename = os.path.splitext(hdf5_filename)[0] + '-labels.npy'
            if os.path.isfile(npy_filename):
                labels = np.load(npy_filename, allow_pickle=False)
                if len(labels) != data.shape[0]:
                    raise UserError(f'{npy_filename} has {len(labels)} labels for {data.shape[0]} images')
            for idx in tqdm.tqdm(shuffled_order(data.shape[0], shuffle), desc='Writing', unit='img'):
                label = None if labels is None else labels[idx]
                out.add_image(data[idx], int(label) if label is not None and label.ndim == 0 else label)


EMOJI_FONT_PATHS = ['/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf', '/usr/share/fonts/noto/NotoColorEmoji.ttf',
                    '/System/Library/Fonts/Apple Color Emoji.ttc']


# Named selections for create_emoji --code-points. 'faces': the ~100 round yellow faces of Unicode's
# "Smileys & Emotion" group, a small, coherent set a CPU-trained network can learn.
EMOJI_CODE_POINTS = {
    'faces': '1F600-1F637,1F641-1F644,1F910-1F915,1F917,1F920-1F925,1F927-1F92F,1F970-1F976,1F978,1F97A,1F9D0,'
             '1FAE0-1FAE5,1FAE8,2639,263A',
}


def installed_emoji_font():
    """The first of EMOJI_FONT_PATHS that exists, or None."""
    return next((path for path in EMOJI_FONT_PATHS if os.path.isfile(path)), None)


def parse_code_points(text):
    """A name from EMOJI_CODE_POINTS or comma-separated hex code points and ranges ('1F600-1F64F,263A') -> set."""
    text = EMOJI_CODE_POINTS.get(text, text)
    selected = set()
    for part in text.split(','):
        first, _, last = part.strip().partition('-')
        try:
            first, last = int(first, 16), int(last or first, 16)
        except ValueError:
            raise argparse.ArgumentTypeError(f'"{part}" is not a hex code point or range (e.g. 1F600-1F64F); '
                                             f'named sets: {", ".join(EMOJI_CODE_POINTS)}') from None
        selected.update(range(first, last + 1))
    return selected


def render_emoji(font_path, resolution, code_points=None):
    """Yield (code point, uint8 [3, R, R]) for every emoji above U+2000 in a colour-bitmap font (or those of
    `code_points`): the glyph's ink centred on a white square with a 4% margin, resized with Lanczos. Glyphs that
    render blank (parts of sequences) are left out."""
    font_tools = _optional_import('fontTools.ttLib', 'create_emoji', 'fonttools')
    from PIL import ImageDraw, ImageFont
    try:
        rendered = sorted(c for c in font_tools.ttLib.TTFont(font_path).getBestCmap()
                          if c > 0x2000 and (code_points is None or c in code_points))
        font = ImageFont.truetype(font_path, 109)  # the size of the font's colour bitmaps
    except (OSError, font_tools.ttLib.TTLibError) as err:
        raise UserError(f'cannot read the emoji font {font_path}: {err}') from err
    for code_point in rendered:
        glyph = PIL.Image.new('RGBA', (136, 128), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((0, 0), chr(code_point), font=font, embedded_color=True)
        box = glyph.getbbox()
        if box is None:
            continue
        glyph = glyph.crop(box)
        side = int(max(glyph.size) * 1.08)
        canvas = PIL.Image.new('RGBA', (side, side), (255, 255, 255, 255))
        canvas.alpha_composite(glyph, ((side - glyph.size[0]) // 2, (side - glyph.size[1]) // 2))
        image = canvas.convert('RGB').resize((resolution, resolution), PIL.Image.LANCZOS)
        yield code_point, np.asarray(image).transpose(2, 0, 1)


def create_emoji(tfrecord_dir, font=None, resolution=64, code_points=None, shuffle=1, fmt=None, overwrite=False):
    """A dataset of the ~1,400 emoji of a colour emoji font (Noto Color Emoji: apt-get install
    fonts-noto-color-emoji), or of the selected code points: the offline few-images dataset of the embedded
    default network."""
    if font is None:
        font = installed_emoji_font()
        if font is None:
            raise UserError('no colour emoji font found; install one (apt-get install fonts-noto-color-emoji) or '
                            'pass --font PATH')
    images = [image for _, image in tqdm.tqdm(render_emoji(font, resolution, code_points), desc='Rendering',
                                              unit='img')]
    if not images:
        raise UserError(f'the font {font} has no emoji at the selected code points')
    with new_dataset(tfrecord_dir, fmt, overwrite) as out:
        _export_arrays(out, images, shuffle=shuffle)


# ----------------------------------------------------------------------------------------------------------------
# Command line.

_EPILOG = """output formats (create_* commands and convert):
  --format tfrecords   the original multi-resolution TFRecords in a directory (default; for convert, the
                       layout the source is not)
  --format ada         stylegan2-ada-pytorch layout: a folder, or a .zip if the target ends in .zip
                       (a .zip target implies --format ada)

A new dataset is written beside its target and moved into place when complete; an existing non-empty
target is refused unless --overwrite. Unreadable images stop the run with their name, or are skipped with
a warning under --skip-bad.

Type "%(prog)s <command> -h" for more information."""


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Tool for creating multi-resolution TFRecords datasets for StyleGAN and ProGAN, and '
                    'stylegan2-ada-pytorch datasets.',
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest='command', metavar='<command>')

    def add_command(cmd, desc, example):
        return subparsers.add_parser(cmd, description=desc, help=desc, epilog=f'Example: {parser.prog} {example}')

    def add_output(p, target_help, fmt=True, skip_bad=False):
        """The new dataset's positional argument comes first, as in the original; the options go after."""
        p.add_argument('tfrecord_dir', help=target_help)
        if fmt:
            p.add_argument('--format', dest='fmt', choices=['tfrecords', 'ada'],
                           help='Output layout (default: tfrecords; ada for a .zip target)')
        p.add_argument('--overwrite', action='store_true', help='Replace an existing non-empty target')
        if skip_bad:
            p.add_argument('--skip-bad', '--skip_bad', dest='skip_bad', action='store_true',
                           help='Skip unreadable images (each named in a warning) instead of stopping')

    new_dataset_help = 'New dataset directory (or .zip with --format ada) to be created'

    p = add_command('display', 'Display images in dataset.', 'display datasets/mnist')
    p.add_argument('tfrecord_dir', help='Directory containing dataset')

    p = add_command('extract', 'Extract images from dataset.', 'extract datasets/mnist mnist-images')
    p.add_argument('tfrecord_dir', help='Directory containing dataset')
    p.add_argument('output_dir', help='Directory to extract the images into')
    p.add_argument('--overwrite', action='store_true', help='Replace an existing non-empty output directory')

    p = add_command('compare', 'Compare two datasets.', 'compare datasets/mydataset datasets/mnist')
    p.add_argument('tfrecord_dir_a', help='Directory containing first dataset')
    p.add_argument('tfrecord_dir_b', help='Directory containing second dataset')
    p.add_argument('--ignore_labels', '--ignore-labels', help='Ignore labels (default: 0)', type=int, default=0)

    p = add_command('info', 'Print name, layout, resolution, channels, image count and label size.',
                    'info datasets/mnist')
    p.add_argument('path', help='Dataset: TFRecords directory, ada folder or .zip')

    p = add_command('convert', 'Convert a dataset between layouts (TFRecords <-> ada folder or zip).',
                    'convert datasets/mnist mnist.zip')
    p.add_argument('source', help='Dataset: TFRecords directory, ada folder or .zip')
    p.add_argument('dest', help='New dataset directory or .zip')
    p.add_argument('--format', dest='fmt', choices=['tfrecords', 'ada'],
                   help='Output layout (default: the one the source is not; ada for a .zip target)')
    p.add_argument('--resolution', type=dnnlib.util.positive_int, help='Resize images to NxN (default: keep)')
    p.add_argument('--max_images', '--max-images', type=dnnlib.util.positive_int, help='Copy only the first N images')
    p.add_argument('--overwrite', action='store_true', help='Replace an existing non-empty target')

    p = add_command('create_mnist', 'Create dataset for MNIST.', 'create_mnist datasets/mnist ~/downloads/mnist')
    add_output(p, new_dataset_help)
    p.add_argument('mnist_dir', help='Directory containing MNIST')

    p = add_command('create_mnistrgb', 'Create dataset for MNIST-RGB.',
                    'create_mnistrgb datasets/mnistrgb ~/downloads/mnist')
    add_output(p, new_dataset_help)
    p.add_argument('mnist_dir', help='Directory containing MNIST')
    p.add_argument('--num_images', '--num-images', help='Number of composite images to create (default: 1000000)',
                   type=dnnlib.util.positive_int, default=1000000)
    p.add_argument('--random_seed', '--random-seed', help='Random seed (default: 123)', type=int, default=123)

    p = add_command('create_cifar10', 'Create dataset for CIFAR-10.',
                    'create_cifar10 datasets/cifar10 ~/downloads/cifar10')
    add_output(p, new_dataset_help)
    p.add_argument('cifar10_dir', help='Directory containing CIFAR-10')

    p = add_command('create_cifar100', 'Create dataset for CIFAR-100.',
                    'create_cifar100 datasets/cifar100 ~/downloads/cifar100')
    add_output(p, new_dataset_help)
    p.add_argument('cifar100_dir', help='Directory containing CIFAR-100')

    p = add_command('create_svhn', 'Create dataset for SVHN.', 'create_svhn datasets/svhn ~/downloads/svhn')
    add_output(p, new_dataset_help)
    p.add_argument('svhn_dir', help='Directory containing SVHN')

    p = add_command('create_lsun', 'Create dataset for single LSUN category.',
                    'create_lsun datasets/lsun-car-100k ~/downloads/lsun/car_lmdb --resolution 256 --max_images 100000')
    add_output(p, new_dataset_help, skip_bad=True)
    p.add_argument('lmdb_dir', help='Directory containing LMDB database')
    p.add_argument('--resolution', help='Output resolution (default: 256)', type=dnnlib.util.positive_int, default=256)
    p.add_argument('--max_images', '--max-images', help='Maximum number of images (default: none)',
                   type=dnnlib.util.positive_int, default=None)

    p = add_command('create_lsun_wide', 'Create LSUN dataset with non-square aspect ratio.',
                    'create_lsun_wide datasets/lsun-car-512x384 ~/downloads/lsun/car_lmdb --width 512 --height 384')
    add_output(p, new_dataset_help, skip_bad=True)
    p.add_argument('lmdb_dir', help='Directory containing LMDB database')
    p.add_argument('--width', help='Output width (default: 512)', type=dnnlib.util.positive_int, default=512)
    p.add_argument('--height', help='Output height (default: 384)', type=dnnlib.util.positive_int, default=384)
    p.add_argument('--max_images', '--max-images', help='Maximum number of images (default: none)',
                   type=dnnlib.util.positive_int, default=None)

    p = add_command('create_celeba', 'Create dataset for CelebA.', 'create_celeba datasets/celeba ~/downloads/celeba')
    add_output(p, new_dataset_help, skip_bad=True)
    p.add_argument('celeba_dir', help='Directory containing CelebA')
    p.add_argument('--cx', help='Center X coordinate (default: 89)', type=int, default=89)
    p.add_argument('--cy', help='Center Y coordinate (default: 121)', type=int, default=121)

    p = add_command('create_from_images', 'Create dataset from a directory full of images.',
                    'create_from_images datasets/mydataset myimagedir')
    add_output(p, new_dataset_help, skip_bad=True)
    p.add_argument('image_dir', help='Directory containing the images (searched at any depth)')
    p.add_argument('--shuffle', help='Randomize image order (default: 1)', type=int, default=1)
    p.add_argument('--resolution', type=dnnlib.util.positive_int,
                   help='Resize every image to NxN (default: keep; all images must then have one size)')
    p.add_argument('--transform', choices=['center-crop', 'center-crop-wide'],
                   help='center-crop: the centred square (then --resolution if given); center-crop-wide: the '
                        'centred band scaled to --resolution x --height on a black square canvas')
    p.add_argument('--height', type=dnnlib.util.positive_int,
                   help='Band height for center-crop-wide (default: 3/4 of --resolution, as LSUN car 512x384)')

    p = add_command('create_from_images_raw', 'Create dataset from a directory full of images, storing the encoded '
                    'files (e.g. JPEG) instead of pixels, in one file.',
                    'create_from_images_raw datasets/mydataset myimagedir')
    add_output(p, 'New dataset directory to be created', fmt=False, skip_bad=True)
    p.add_argument('image_dir', help='Directory containing the images (searched at any depth)')
    p.add_argument('--shuffle', help='Randomize image order (default: 1)', type=int, default=1)
    p.add_argument('--res_log2', '--res-log2', type=int,
                   help='The NN of the -rNN.tfrecords file name; width and height must be multiples of 2^NN '
                        '(default: the largest such NN)')

    p = add_command('create_from_hdf5', 'Create dataset from legacy HDF5 archive.',
                    'create_from_hdf5 datasets/celebahq ~/downloads/celeba-hq-1024x1024.h5')
    add_output(p, new_dataset_help)
    p.add_argument('hdf5_filename', help='HDF5 archive containing the images')
    p.add_argument('--shuffle', help='Randomize image order (default: 1)', type=int, default=1)

    p = add_command('create_emoji', 'Create dataset from the emoji of a colour emoji font (offline, ~1,400 images).',
                    'create_emoji datasets/emoji64 --resolution 64')
    add_output(p, new_dataset_help)
    p.add_argument('--font', help='Colour emoji font (default: Noto Color Emoji where installed)')
    p.add_argument('--resolution', help='Output resolution (default: 64)', type=dnnlib.util.positive_int, default=64)
    p.add_argument('--code-points', help='Only these emoji: "faces" (~100 smileys) or hex code points and ranges, '
                   'e.g. 1F600-1F64F,263A (default: all)', type=parse_code_points, metavar='SET')
    p.add_argument('--shuffle', help='Randomize image order (default: 1)', type=int, default=1)

    args = vars(parser.parse_args(argv))
    command = args.pop('command')
    if command is None:
        parser.print_help()
        sys.exit(1)
    globals()[command](**args)


if __name__ == '__main__':
    dnnlib.util.cli_main(main)
