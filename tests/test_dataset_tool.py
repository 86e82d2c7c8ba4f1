"""dataset_tool.py: the original's TFRecords (pyramid, order, labels), the ada layout, conversion between them,
the usual downloads in their original file formats, and one clear line for bad input."""

import argparse
import gzip
import io
import itertools
import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np
import PIL.Image
import pytest

import dataset_tool
from conftest import REPO_ROOT
from dnnlib.util import UserError
from training import dataset


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, 'dataset_tool.py'), *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=120)


def tool(*args):
    dataset_tool.main([str(arg) for arg in args])


def save_images(folder, images, mode=None):
    """Save uint8 [N, H, W, C] or [N, H, W] arrays as img0.png, img1.png, ... and return the paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for idx, image in enumerate(images):
        paths.append(os.path.join(folder, f'img{idx}.png'))
        PIL.Image.fromarray(image, mode).save(paths[-1])
    return paths


def random_images(num, size=16, channels=3, seed=0):
    shape = [num, size, size] + ([channels] if channels > 1 else [])
    return np.random.RandomState(seed).randint(0, 256, size=shape, dtype=np.uint8)


def read_records(path):
    """Images of every record of a .tfrecords file."""
    with open(path, 'rb') as f:
        return [dataset.parse_image_record(dataset.read_record(f, offset, path))
                for offset in dataset.scan_records(f, path)]


def box_pyramid(image):
    """[C, H, W] -> the original's lower levels, computed here independently (float64 means of 2x2 blocks of
    the unrounded level above; exact for these sizes), rounded half to even."""
    levels = []
    level = image.astype(np.float64)
    while level.shape[1] > 4:
        c, h, w = level.shape
        level = level.reshape(c, h // 2, 2, w // 2, 2).mean(axis=(2, 4))
        levels.append(np.rint(level).astype(np.uint8))
    return levels


def no_leftovers(parent):
    return not [name for name in os.listdir(parent) if '.tmp-' in name or '.old-' in name]


# ----------------------------------------------------------------------------------------------------------------
# Images to TFRecords and back.


def test_images_to_tfrecords_to_images(tmp_path, capsys):
    images = random_images(5, size=32)
    paths = save_images(tmp_path / 'imgs', images)
    tool('create_from_images', tmp_path / 'ds', tmp_path / 'imgs')
    assert capsys.readouterr().out.strip().splitlines()[-1] == f'Done: 5 images in {tmp_path / "ds"}'
    assert sorted(os.listdir(tmp_path / 'ds')) == ['ds-r02.tfrecords', 'ds-r03.tfrecords', 'ds-r04.tfrecords',
                                                    'ds-r05.tfrecords']
    order = np.arange(5)
    np.random.RandomState(123).shuffle(order)  # the original's --shuffle 1 order
    full = read_records(str(tmp_path / 'ds' / 'ds-r05.tfrecords'))
    for idx, record in enumerate(full):
        assert np.array_equal(record, images[order[idx]].transpose(2, 0, 1))
        for log2, expected in zip([4, 3, 2], box_pyramid(record)):
            assert np.array_equal(read_records(str(tmp_path / 'ds' / f'ds-r{log2:02d}.tfrecords'))[idx], expected)

    tool('extract', tmp_path / 'ds', tmp_path / 'out')
    extracted = sorted(os.listdir(tmp_path / 'out'))
    assert extracted == [f'img{idx:08d}.png' for idx in range(5)]
    for idx, name in enumerate(extracted):
        assert np.array_equal(np.asarray(PIL.Image.open(tmp_path / 'out' / name)), images[order[idx]])
    with pytest.raises(UserError, match='is not empty; pass --overwrite'):
        tool('extract', tmp_path / 'ds', tmp_path / 'out')

    tool('create_from_images', tmp_path / 'unshuffled', tmp_path / 'imgs', '--shuffle', 0)
    assert np.array_equal(read_records(str(tmp_path / 'unshuffled' / 'unshuffled-r05.tfrecords'))[0],
                          np.asarray(PIL.Image.open(paths[0])).transpose(2, 0, 1))


def test_pyramid_levels_come_from_unrounded_levels(tmp_path):
    """As the original: 8x8 means 0.5, 0.5, 0.5, 1.5 are stored as 0, 0, 0, 2 (half to even) but give 0.75 -> 1
    at 4x4 (from the rounded values it would be 0.5 -> 0)."""
    image = np.zeros([1, 16, 16], np.uint8)
    half, one_and_half = [[0, 1], [1, 0]], [[1, 2], [1, 2]]
    for (row, col), block in zip([(0, 0), (0, 2), (2, 0), (2, 2)], [half, half, half, one_and_half]):
        image[0, row:row + 2, col:col + 2] = block
    with dataset_tool.new_dataset(str(tmp_path / 'ds')) as out:
        out.add_image(image)
    level8 = read_records(str(tmp_path / 'ds' / 'ds-r03.tfrecords'))[0]
    level4 = read_records(str(tmp_path / 'ds' / 'ds-r02.tfrecords'))[0]
    assert level8[0, :2, :2].tolist() == [[0, 0], [0, 2]] and level4[0, 0, 0] == 1
    assert np.array_equal(level4, box_pyramid(image)[1])


def test_info_and_compare(tmp_path, capsys):
    save_images(tmp_path / 'imgs', random_images(5, size=8, channels=1), 'L')
    tool('create_from_images', tmp_path / 'ds', tmp_path / 'imgs')
    tool('create_from_images', tmp_path / 'other', tmp_path / 'imgs', '--shuffle', 0)
    capsys.readouterr()
    tool('info', tmp_path / 'ds')
    out = capsys.readouterr().out
    for line in ['name:        ds', 'resolution:  8', 'channels:    1', 'images:      5', 'label size:  0',
                 'layout:      TFRecords (ds-r03.tfrecords; resolutions 4, 8)']:
        assert line in out
    tool('compare', tmp_path / 'ds', tmp_path / 'ds')
    assert 'Identical images: 5 / 5' in capsys.readouterr().out
    tool('compare', tmp_path / 'ds', tmp_path / 'other', '--ignore_labels', 1)
    out = capsys.readouterr().out
    assert 'is different' in out and 'Identical images: 5 / 5' not in out and 'Identical labels' not in out


# ----------------------------------------------------------------------------------------------------------------
# Bad and unusual inputs.


def test_corrupt_image_stops_with_one_line(tmp_path):
    save_images(tmp_path / 'imgs', random_images(3, size=8))
    (tmp_path / 'imgs' / 'broken.png').write_bytes(b'this is not a png')
    result = run_cli('create_from_images', tmp_path / 'ds', tmp_path / 'imgs')
    assert result.returncode == 1
    assert result.stderr.startswith('error: ') and 'Traceback' not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert 'broken.png' in result.stderr and '--skip-bad' in result.stderr
    assert not (tmp_path / 'ds').exists() and no_leftovers(tmp_path)

    result = run_cli('create_from_images', tmp_path / 'ds', tmp_path / 'imgs', '--skip-bad')
    assert result.returncode == 0, result.stderr
    assert 'warning: skipped unreadable image' in result.stderr and 'broken.png' in result.stderr
    assert 'skipped 1 unreadable image(s)' in result.stderr
    assert result.stdout.strip().splitlines()[-1] == f'Done: 3 images in {tmp_path / "ds"}'


def test_truncated_image_is_found_while_writing(tmp_path, capsys):
    paths = save_images(tmp_path / 'imgs', random_images(3, size=16))
    data = open(paths[1], 'rb').read()
    with open(paths[1], 'wb') as f:
        f.write(data[:len(data) // 2])  # header intact, pixels cut off
    with pytest.raises(UserError, match='cannot read image .*img1.png'):
        tool('create_from_images', tmp_path / 'ds', tmp_path / 'imgs')
    assert not (tmp_path / 'ds').exists() and no_leftovers(tmp_path)
    tool('create_from_images', tmp_path / 'ds', tmp_path / 'imgs', '--skip-bad')
    assert 'img1.png' in capsys.readouterr().err
    assert len(dataset.load_dataset(str(tmp_path / 'ds'))) == 2


def test_mixed_sizes_are_refused_unless_resized(tmp_path):
    save_images(tmp_path / 'imgs', random_images(2, size=16))
    PIL.Image.new('RGB', (8, 8)).save(tmp_path / 'imgs' / 'small.png')
    with pytest.raises(UserError, match='small.png is 8x8 but .*img0.png is 16x16; pass --resolution'):
        tool('create_from_images', tmp_path / 'ds', tmp_path / 'imgs')
    tool('create_from_images', tmp_path / 'ds', tmp_path / 'imgs', '--resolution', 8)
    assert dataset.load_dataset(str(tmp_path / 'ds')).image_shape == [3, 8, 8]


def test_non_square_images_need_resolution_or_crop(tmp_path):
    os.makedirs(tmp_path / 'imgs')
    wide = np.zeros([16, 32, 3], np.uint8)
    wide[:, 8:24] = 200  # the centre square is bright
    PIL.Image.fromarray(wide).save(tmp_path / 'imgs' / 'wide.png')
    with pytest.raises(UserError, match='images are 32x16, but TFRecords needs square power-of-two .*--resolution'):
        tool('create_from_images', tmp_path / 'ds', tmp_path / 'imgs')
    tool('create_from_images', tmp_path / 'crop', tmp_path / 'imgs', '--transform', 'center-crop')
    assert np.all(dataset.load_dataset(str(tmp_path / 'crop'))[0][0] == 200)
    tool('create_from_images', tmp_path / 'band', tmp_path / 'imgs', '--transform', 'center-crop-wide',
         '--resolution', 16, '--height', 8)
    image = dataset.load_dataset(str(tmp_path / 'band'))[0][0]
    assert image.shape == (3, 16, 16) and np.all(image[:, :4] == 0) and np.all(image[:, 12:] == 0)
    assert image[:, 4:12].mean() > 50  # the band holds the (scaled) picture


def test_grayscale_rgba_palette_and_16_bit_inputs(tmp_path):
    gray = random_images(2, size=8, channels=1)
    save_images(tmp_path / 'gray', gray, 'L')
    tool('create_from_images', tmp_path / 'g', tmp_path / 'gray', '--shuffle', 0)
    dset = dataset.load_dataset(str(tmp_path / 'g'))
    assert dset.num_channels == 1 and np.array_equal(dset[0][0][0], gray[0])

    rgba = np.zeros([8, 8, 4], np.uint8)
    rgba[..., 0] = 255
    rgba[:4, ..., 3] = 255  # top half opaque red, bottom half transparent
    PIL.Image.fromarray(rgba, 'RGBA').save(tmp_path / 'gray' / 'x_rgba.png')
    wide16 = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    PIL.Image.fromarray(wide16).save(tmp_path / 'gray' / 'y_16bit.png')
    PIL.Image.fromarray(gray[0], 'L').convert('P').save(tmp_path / 'gray' / 'z_palette.png')
    tool('create_from_images', tmp_path / 'mixed', tmp_path / 'gray', '--shuffle', 0)
    dset = dataset.load_dataset(str(tmp_path / 'mixed'))
    assert dset.num_channels == 3 and len(dset) == 5
    assert np.array_equal(dset[0][0], np.stack([gray[0]] * 3))  # grayscale replicated
    red_on_white = dset[2][0]
    assert np.all(red_on_white[:, :4] == np.array([255, 0, 0])[:, None, None])
    assert np.all(red_on_white[:, 4:] == 255)
    assert np.array_equal(dset[3][0][0], np.round(wide16 / 257).astype(np.uint8))
    assert np.array_equal(dset[4][0][0], gray[0])


def test_existing_target_is_kept_unless_overwrite(tmp_path):
    save_images(tmp_path / 'imgs', random_images(2, size=8))
    os.makedirs(tmp_path / 'ds')
    (tmp_path / 'ds' / 'keep.txt').write_text('precious')
    with pytest.raises(UserError, match='ds is not empty; pass --overwrite'):
        tool('create_from_images', tmp_path / 'ds', tmp_path / 'imgs')
    assert os.listdir(tmp_path / 'ds') == ['keep.txt']
    tool('create_from_images', tmp_path / 'ds', tmp_path / 'imgs', '--overwrite')
    assert 'keep.txt' not in os.listdir(tmp_path / 'ds') and no_leftovers(tmp_path)
    os.makedirs(tmp_path / 'empty')
    tool('create_from_images', tmp_path / 'empty', tmp_path / 'imgs')  # an empty directory is fine


def test_a_crash_mid_write_leaves_no_dataset(tmp_path, monkeypatch):
    save_images(tmp_path / 'imgs', random_images(4, size=8))
    original = dataset_tool.TFRecordExporter._write_image

    def failing(self, image):
        if self.count == 2:
            raise RuntimeError('disk on fire')
        original(self, image)

    monkeypatch.setattr(dataset_tool.TFRecordExporter, '_write_image', failing)
    with pytest.raises(RuntimeError, match='disk on fire'):
        tool('create_from_images', tmp_path / 'ds', tmp_path / 'imgs')
    assert sorted(os.listdir(tmp_path)) == ['imgs']


# ----------------------------------------------------------------------------------------------------------------
# The ada layout and conversion.


@pytest.mark.parametrize('target', ['ada_folder', 'ada.zip'])
def test_ada_layout_and_conversion_round_trip(tmp_path, target, capsys):
    images = random_images(4, size=8)
    save_images(tmp_path / 'imgs', images)
    tool('create_from_images', tmp_path / 'tfr', tmp_path / 'imgs')
    with open(tmp_path / 'tfr' / 'tfr-rxx.labels', 'wb') as f:  # one-hot labels, as the original writes them
        np.save(f, np.eye(3, dtype=np.float32)[[2, 0, 1, 2]])

    tool('convert', tmp_path / 'tfr', tmp_path / target)
    if target.endswith('.zip'):
        with zipfile.ZipFile(tmp_path / target) as z:
            names = sorted(z.namelist())
            meta = json.loads(z.read('dataset.json'))
    else:
        names = sorted(os.path.relpath(os.path.join(root, f), tmp_path / target).replace(os.sep, '/')
                       for root, _, files in os.walk(tmp_path / target) for f in files)
        meta = json.loads((tmp_path / target / 'dataset.json').read_text())
    assert names == ['00000/img00000000.png', '00000/img00000001.png', '00000/img00000002.png',
                     '00000/img00000003.png', 'dataset.json']
    assert meta['labels'][0] == ['00000/img00000000.png', [0.0, 0.0, 1.0]]

    ada = dataset.load_dataset(str(tmp_path / target))
    tfr = dataset.load_dataset(str(tmp_path / 'tfr'))
    for idx in range(4):
        assert np.array_equal(ada[idx][0], tfr[idx][0]) and np.array_equal(ada[idx][1], tfr[idx][1])

    tool('convert', tmp_path / target, tmp_path / 'back')
    for log2 in (2, 3):
        assert (tmp_path / 'back' / f'back-r{log2:02d}.tfrecords').read_bytes() == \
            (tmp_path / 'tfr' / f'tfr-r{log2:02d}.tfrecords').read_bytes()
    assert (tmp_path / 'back' / 'back-rxx.labels').read_bytes() == (tmp_path / 'tfr' / 'tfr-rxx.labels').read_bytes()

    again = 'again.zip' if target.endswith('.zip') else 'again'
    tool('convert', tmp_path / 'back', tmp_path / again)
    if target.endswith('.zip'):
        with zipfile.ZipFile(tmp_path / target) as a, zipfile.ZipFile(tmp_path / again) as b:
            assert all(a.read(name) == b.read(name) for name in names)
    else:
        assert all((tmp_path / target / name).read_bytes() == (tmp_path / again / name).read_bytes() for name in names)
    assert capsys.readouterr().out.strip().splitlines()[-1] == f'Done: 4 images in {tmp_path / again}'


def test_create_with_format_ada_and_class_labels(tmp_path):
    write_cifar10(tmp_path / 'cifar', per_batch=2)
    tool('create_cifar10', tmp_path / 'c.zip', tmp_path / 'cifar')
    with zipfile.ZipFile(tmp_path / 'c.zip') as z:
        labels = json.loads(z.read('dataset.json'))['labels']
    assert all(isinstance(label, int) for _, label in labels)  # class indices, as ada-pytorch's own tool writes
    dset = dataset.load_dataset(str(tmp_path / 'c.zip'))
    assert dset.label_size == 10 and len(dset) == 10
    tool('create_cifar10', tmp_path / 'c_folder', tmp_path / 'cifar', '--format', 'ada')
    assert os.path.isfile(tmp_path / 'c_folder' / 'dataset.json')


# ----------------------------------------------------------------------------------------------------------------
# The usual downloads, as tiny files in their original formats.


def write_mnist(folder, num):
    os.makedirs(folder)
    rnd = np.random.RandomState(0)
    images = rnd.randint(0, 256, [num, 28, 28], dtype=np.uint8)
    labels = (np.arange(num) % 10).astype(np.uint8)
    with gzip.open(os.path.join(folder, 'train-images-idx3-ubyte.gz'), 'wb') as f:
        f.write(struct.pack('>4I', 2051, num, 28, 28) + images.tobytes())
    with gzip.open(os.path.join(folder, 'train-labels-idx1-ubyte.gz'), 'wb') as f:
        f.write(struct.pack('>2I', 2049, num) + labels.tobytes())
    return images, labels


def write_cifar10(folder, per_batch):
    """data_batch_1..5 as the python CIFAR-10 download has them: pickled dicts with 'data' [N, 3072] uint8."""
    os.makedirs(folder)
    rnd = np.random.RandomState(1)
    images = rnd.randint(0, 256, [5 * per_batch, 3, 32, 32], dtype=np.uint8)
    labels = list(range(10)) * (5 * per_batch // 10) + list(range(5 * per_batch % 10))
    for batch in range(5):
        part = slice(batch * per_batch, (batch + 1) * per_batch)
        with open(os.path.join(folder, f'data_batch_{batch + 1}'), 'wb') as f:
            pickle.dump({'batch_label': 'training batch', 'data': images[part].reshape(per_batch, -1),
                         'labels': labels[part], 'filenames': ['x.png'] * per_batch}, f, protocol=2)
    return images, np.array(labels)


def test_create_mnist(tmp_path):
    images, labels = write_mnist(tmp_path / 'mnist', 12)
    tool('create_mnist', tmp_path / 'mnist_ds', tmp_path / 'mnist')
    order = np.arange(12)
    np.random.RandomState(123).shuffle(order)
    dset = dataset.load_dataset(str(tmp_path / 'mnist_ds'))
    assert dset.image_shape == [1, 32, 32] and dset.label_size == 10
    for idx in (0, 5, 11):
        image, label = dset[idx]
        assert np.array_equal(image[0, 2:30, 2:30], images[order[idx]]) and image[0, :2].max() == 0
        assert label.argmax() == labels[order[idx]] and label.sum() == 1
    labels_file = np.load(tmp_path / 'mnist_ds' / 'mnist_ds-rxx.labels')
    assert labels_file.dtype == np.float32 and labels_file.shape == (12, 10)

    tool('create_mnistrgb', tmp_path / 'rgb', tmp_path / 'mnist', '--num_images', 3, '--random_seed', 5)
    rnd = np.random.RandomState(5)
    padded = np.pad(images, [(0, 0), (2, 2), (2, 2)])
    assert np.array_equal(dataset.load_dataset(str(tmp_path / 'rgb'))[0][0], padded[rnd.randint(12, size=3)])

    with gzip.open(tmp_path / 'mnist' / 'train-images-idx3-ubyte.gz', 'wb') as f:
        f.write(struct.pack('>4I', 2049, 12, 28, 28))
    with pytest.raises(UserError, match='not an MNIST idx file'):
        tool('create_mnist', tmp_path / 'bad', tmp_path / 'mnist')


def test_create_cifar10_and_refuse_code_in_pickles(tmp_path):
    images, labels = write_cifar10(tmp_path / 'cifar', per_batch=3)
    tool('create_cifar10', tmp_path / 'ds', tmp_path / 'cifar')
    order = np.arange(15)
    np.random.RandomState(123).shuffle(order)
    dset = dataset.load_dataset(str(tmp_path / 'ds'))
    assert (len(dset), dset.image_shape, dset.label_size) == (15, [3, 32, 32], 10)
    assert all(np.array_equal(dset[i][0], images[order[i]]) and dset[i][1].argmax() == labels[order[i]]
               for i in range(15))

    class Exploit:
        def __reduce__(self):
            return (os.system, ('echo pwned > ' + str(tmp_path / 'pwned'),))

    with open(tmp_path / 'cifar' / 'data_batch_2', 'wb') as f:
        pickle.dump({'data': Exploit(), 'labels': []}, f)
    with pytest.raises(UserError, match='refusing to load .*data_batch_2: it references (posix|os|nt).system'):
        tool('create_cifar10', tmp_path / 'ds2', tmp_path / 'cifar')
    assert not (tmp_path / 'pwned').exists()


def test_create_cifar100_svhn_celeba(tmp_path):
    rnd = np.random.RandomState(2)
    images = rnd.randint(0, 256, [4, 3, 32, 32], dtype=np.uint8)
    os.makedirs(tmp_path / 'c100')
    with open(tmp_path / 'c100' / 'train', 'wb') as f:
        pickle.dump({'data': images.reshape(4, -1), 'fine_labels': [99, 0, 5, 7], 'coarse_labels': [0] * 4}, f)
    tool('create_cifar100', tmp_path / 'c100_ds', tmp_path / 'c100')
    assert dataset.load_dataset(str(tmp_path / 'c100_ds')).label_size == 100

    os.makedirs(tmp_path / 'svhn')
    for batch in range(1, 4):
        with open(tmp_path / 'svhn' / f'train_{batch}.pkl', 'wb') as f:
            pickle.dump((images, np.array([1, 2, 3, 9], np.uint8)), f)
    tool('create_svhn', tmp_path / 'svhn_ds', tmp_path / 'svhn')
    assert len(dataset.load_dataset(str(tmp_path / 'svhn_ds'))) == 12

    faces = rnd.randint(0, 256, [2, 218, 178, 3], dtype=np.uint8)
    for idx, face in enumerate(faces):
        os.makedirs(tmp_path / 'celeba' / 'img_align_celeba_png', exist_ok=True)
        PIL.Image.fromarray(face).save(tmp_path / 'celeba' / 'img_align_celeba_png' / f'{idx:06d}.png')
    with pytest.raises(UserError, match='expected 202599 images'):
        tool('create_celeba', tmp_path / 'celeba_ds', tmp_path / 'celeba')
    dataset_tool.create_celeba(str(tmp_path / 'celeba_ds'), str(tmp_path / 'celeba'), expected_images=2)
    order = np.arange(2)
    np.random.RandomState(123).shuffle(order)
    assert np.array_equal(dataset.load_dataset(str(tmp_path / 'celeba_ds'))[0][0],
                          faces[order[0]][121 - 64:121 + 64, 89 - 64:89 + 64].transpose(2, 0, 1))


def test_create_from_images_raw(tmp_path):
    images = random_images(3, size=16)
    for idx, image in enumerate(images):
        os.makedirs(tmp_path / 'jpgs', exist_ok=True)
        PIL.Image.fromarray(image).save(tmp_path / 'jpgs' / f'{idx}.jpg', quality=95)
    tool('create_from_images_raw', tmp_path / 'raw', tmp_path / 'jpgs', '--shuffle', 0)
    assert os.listdir(tmp_path / 'raw') == ['raw-r04.tfrecords']
    dset = dataset.load_dataset(str(tmp_path / 'raw'))
    decoded = np.asarray(PIL.Image.open(tmp_path / 'jpgs' / '1.jpg')).transpose(2, 0, 1)
    assert dset.image_shape == [3, 16, 16] and np.array_equal(dset[1][0], decoded)
    payload = read_records_payloads(tmp_path / 'raw' / 'raw-r04.tfrecords')[1]
    assert dataset.decode_example(payload)['img'][0] == (tmp_path / 'jpgs' / '1.jpg').read_bytes()

    PIL.Image.new('RGBA', (16, 16)).save(tmp_path / 'jpgs' / '9.png')
    with pytest.raises(UserError, match='9.png is a RGBA image; raw records need RGB or grayscale'):
        tool('create_from_images_raw', tmp_path / 'raw2', tmp_path / 'jpgs')


def read_records_payloads(path):
    with open(path, 'rb') as f:
        return [dataset.read_record(f, offset, str(path)) for offset in dataset.scan_records(f, str(path))]


def test_create_lsun_from_lmdb(tmp_path):
    lmdb = pytest.importorskip('lmdb')
    rnd = np.random.RandomState(3)
    env = lmdb.open(str(tmp_path / 'cat_lmdb'), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for idx, (h, w) in enumerate([(24, 32), (32, 24), (40, 40)]):
            buf = io.BytesIO()
            PIL.Image.fromarray(rnd.randint(0, 256, [h, w, 3], dtype=np.uint8)).save(buf, format='webp', lossless=True)
            txn.put(f'key{idx}'.encode(), buf.getvalue())
        txn.put(b'key3', b'garbage')
    env.close()
    with pytest.raises(UserError, match='cat_lmdb:key3'):
        tool('create_lsun', tmp_path / 'lsun', tmp_path / 'cat_lmdb', '--resolution', 16)
    tool('create_lsun', tmp_path / 'lsun', tmp_path / 'cat_lmdb', '--resolution', 16, '--skip-bad')
    assert dataset.load_dataset(str(tmp_path / 'lsun')).image_shape == [3, 16, 16]
    tool('create_lsun', tmp_path / 'lsun2', tmp_path / 'cat_lmdb', '--resolution', 8, '--max_images', 2)
    assert len(dataset.load_dataset(str(tmp_path / 'lsun2'))) == 2
    tool('create_lsun_wide', tmp_path / 'wide', tmp_path / 'cat_lmdb', '--width', 32, '--height', 24, '--skip-bad')
    assert len(dataset.load_dataset(str(tmp_path / 'wide'))) == 2  # the 24-pixel-wide image is too small


def test_create_from_hdf5(tmp_path):
    h5py = pytest.importorskip('h5py')
    rnd = np.random.RandomState(4)
    images = rnd.randint(0, 256, [3, 3, 8, 8], dtype=np.uint8)
    with h5py.File(tmp_path / 'faces.h5', 'w') as f:
        f['data4x4'] = images[:, :, ::2, ::2]
        f['data8x8'] = images
    np.save(tmp_path / 'faces-labels.npy', np.eye(3, dtype=np.float32))
    tool('create_from_hdf5', tmp_path / 'h5', tmp_path / 'faces.h5', '--shuffle', 0)
    dset = dataset.load_dataset(str(tmp_path / 'h5'))
    assert np.array_equal(dset[2][0], images[2]) and dset[2][1].tolist() == [0, 0, 1]


@pytest.fixture
def emoji_font():
    font = dataset_tool.installed_emoji_font()
    if font is None:
        pytest.skip("no colour emoji font installed (apt-get install fonts-noto-color-emoji)")
    pytest.importorskip("fontTools")
    return font


def test_create_emoji_renders_the_font(emoji_font):
    emoji = list(itertools.islice(dataset_tool.render_emoji(emoji_font, 16), 12))
    assert len(emoji) == 12 and len({code for code, _ in emoji}) == 12
    for _, image in emoji:
        assert image.shape == (3, 16, 16) and image.dtype == np.uint8
        assert image[:, 0, 0].min() >= 240  # white margin around the ink (Lanczos rings a little)
        assert image.min() < 200  # and some ink


def test_emoji_code_points_parse():
    assert dataset_tool.parse_code_points("1F600-1F602, 263A") == {0x1F600, 0x1F601, 0x1F602, 0x263A}
    assert 0x1F60A in dataset_tool.parse_code_points("faces") and 0x1F4A9 not in dataset_tool.parse_code_points("faces")
    with pytest.raises(argparse.ArgumentTypeError, match="not a hex code point"):
        dataset_tool.parse_code_points("smileys")


def test_render_emoji_of_selected_code_points(emoji_font):
    assert [code for code, _ in dataset_tool.render_emoji(emoji_font, 8, {0x1F600, 0x1F603, 0x41})] == [0x1F600, 0x1F603]
