"""training/dataset.py: TFRecord framing and Examples checked against independent decoders, and the dataset readers
(TFRecords, ada folder and zip) with labels, mirroring, DataLoader workers and corrupt files."""

import json
import os
import pickle
import struct
import zipfile

import numpy as np
import PIL.Image
import pytest
import torch

import dataset_tool
from dnnlib.util import UserError
from training import dataset


def make_images(num, channels=3, size=8, seed=0):
    return np.random.RandomState(seed).randint(0, 256, size=[num, channels, size, size], dtype=np.uint8)


def write_tfrecords(path, images, labels=None):
    """A TFRecords dataset written by dataset_tool's exporter (labels: class indices, vectors or None)."""
    with dataset_tool.new_dataset(str(path), 'tfrecords') as out:
        for idx, image in enumerate(images):
            out.add_image(image, None if labels is None else labels[idx])
    return str(path)


def write_ada(path, images, labels=None):
    with dataset_tool.new_dataset(str(path), 'ada') as out:
        for idx, image in enumerate(images):
            out.add_image(image, None if labels is None else labels[idx])
    return str(path)


# ----------------------------------------------------------------------------------------------------------------
# CRC-32C, framing and tf.train.Example.


def test_crc32c_matches_the_standard_check_value_and_google_crc32c():
    google_crc32c = pytest.importorskip('google_crc32c')
    assert dataset._crc32c_bytes(b'123456789') == 0xE3069283  # the CRC-32C check value (RFC 3720)
    assert dataset._crc32c_numpy(b'123456789') == 0xE3069283
    rnd = np.random.RandomState(1)
    for size in [0, 1, 3, 4, 5, 63, 64, 65, 255, 256, 1000, 4097, 70001]:
        data = rnd.randint(0, 256, size, dtype=np.uint8).tobytes()
        expected = google_crc32c.value(data)
        assert dataset._crc32c_bytes(data) == expected, size
        if size >= 4:
            assert dataset._crc32c_numpy(data) == expected, size
        assert dataset.crc32c(data) == expected


def read_frames_independently(path):
    """Payloads of a .tfrecords file, framing and masked CRCs checked with google-crc32c only."""
    google_crc32c = pytest.importorskip('google_crc32c')

    def masked(data):
        crc = google_crc32c.value(data)
        return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    payloads = []
    with open(path, 'rb') as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        length_bytes = data[pos:pos + 8]
        (length,), (length_crc,) = struct.unpack('<Q', length_bytes), struct.unpack('<I', data[pos + 8:pos + 12])
        assert length_crc == masked(length_bytes)
        payload = data[pos + 12:pos + 12 + length]
        assert struct.unpack('<I', data[pos + 12 + length:pos + 16 + length])[0] == masked(payload)
        payloads.append(payload)
        pos += 16 + length
    return payloads


def example_class():
    """tf.train.Example built at runtime from a descriptor with the protobuf package (no TensorFlow)."""
    pytest.importorskip('google.protobuf')
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    F = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name='test_example.proto', package='tf', syntax='proto3')

    def message(name, *fields, nested=()):
        msg = proto.message_type.add(name=name)
        msg.nested_type.extend(nested)
        for number, field_name, field_type, label, type_name, oneof in fields:
            field = msg.field.add(name=field_name, number=number, type=field_type, label=label)
            if type_name:
                field.type_name = type_name
            if oneof is not None:
                field.oneof_index = oneof
        return msg

    rep, opt = F.LABEL_REPEATED, F.LABEL_OPTIONAL
    message('BytesList', (1, 'value', F.TYPE_BYTES, rep, None, None))
    message('FloatList', (1, 'value', F.TYPE_FLOAT, rep, None, None))
    message('Int64List', (1, 'value', F.TYPE_INT64, rep, None, None))
    feature = message('Feature', (1, 'bytes_list', F.TYPE_MESSAGE, opt, '.tf.BytesList', 0),
                      (2, 'float_list', F.TYPE_MESSAGE, opt, '.tf.FloatList', 0),
                      (3, 'int64_list', F.TYPE_MESSAGE, opt, '.tf.Int64List', 0))
    feature.oneof_decl.add(name='kind')
    entry = descriptor_pb2.DescriptorProto(name='FeatureEntry')
    entry.options.map_entry = True
    entry.field.add(name='key', number=1, type=F.TYPE_STRING, label=opt)
    entry.field.add(name='value', number=2, type=F.TYPE_MESSAGE, label=opt, type_name='.tf.Feature')
    message('Features', (1, 'feature', F.TYPE_MESSAGE, rep, '.tf.Features.FeatureEntry', None), nested=[entry])
    message('Example', (1, 'features', F.TYPE_MESSAGE, opt, '.tf.Features', None))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName('tf.Example'))


def test_records_decode_with_protobuf_and_independent_crc(tmp_path):
    Example = example_class()
    images = make_images(3, size=8)
    path = write_tfrecords(tmp_path / 'ds', images)
    payloads = read_frames_independently(os.path.join(path, 'ds-r03.tfrecords'))
    assert len(payloads) == 3
    for payload, image in zip(payloads, images):
        ex = Example.FromString(payload)
        assert list(ex.features.feature['shape'].int64_list.value) == [3, 8, 8]
        assert ex.features.feature['data'].bytes_list.value[0] == image.tobytes()


def test_decode_example_reads_what_protobuf_writes():
    Example = example_class()
    ex = Example()
    ex.features.feature['shape'].int64_list.value.extend([3, 4, -5])
    ex.features.feature['data'].bytes_list.value.append(b'\x00\xffabc')
    ex.features.feature['f'].float_list.value.extend([0.5, -2.25])
    assert dataset.decode_example(ex.SerializeToString()) == {'shape': [3, 4, -5], 'data': [b'\x00\xffabc'],
                                                             'f': [0.5, -2.25]}
    assert Example.FromString(dataset.encode_example({'f': [0.5, -2.25]})) == Example.FromString(
        Example(features=dict(feature=dict(f=dict(float_list=dict(value=[0.5, -2.25]))))).SerializeToString())
    # Unpacked repeated values (one field per value) are valid protobuf too.
    unpacked_list = b'\x08\x03\x08\x04'
    feature = b'\x1a' + bytes([len(unpacked_list)]) + unpacked_list
    entry = b'\x0a\x01s' + b'\x12' + bytes([len(feature)]) + feature
    features = b'\x0a' + bytes([len(entry)]) + entry
    payload = b'\x0a' + bytes([len(features)]) + features
    assert list(Example.FromString(payload).features.feature['s'].int64_list.value) == [3, 4]
    assert dataset.decode_example(payload) == {'s': [3, 4]}


def test_frame_record_round_trip(tmp_path):
    path = tmp_path / 'x.tfrecords'
    path.write_bytes(dataset.frame_record(b'hello') + dataset.frame_record(b'') + dataset.frame_record(b'w' * 300))
    with open(path, 'rb') as f:
        offsets = dataset.scan_records(f, str(path))
        assert [dataset.read_record(f, offset, str(path)) for offset in offsets] == [b'hello', b'', b'w' * 300]
    assert read_frames_independently(path) == [b'hello', b'', b'w' * 300]


# ----------------------------------------------------------------------------------------------------------------
# TFRecord reader.


def test_tfrecord_dataset_items_labels_and_mirror(tmp_path):
    images = make_images(5, size=16)
    path = write_tfrecords(tmp_path / 'ds', images, labels=[0, 2, 1, 2, 0])
    dset = dataset.load_dataset(path)
    assert isinstance(dset, dataset.TFRecordDataset)
    assert (dset.name, dset.resolution, dset.num_channels, dset.image_shape) == ('ds', 16, 3, [3, 16, 16])
    assert (len(dset), dset.label_size, dset.has_labels) == (5, 3, True)
    image, label = dset[1]
    assert image.dtype == np.uint8 and np.array_equal(image, images[1])
    assert label.dtype == np.float32 and label.tolist() == [0, 0, 1]
    assert dset.get_label(4).tolist() == [1, 0, 0]

    mirrored = dataset.load_dataset(path, mirror_augment=True)
    assert len(mirrored) == 10
    assert np.array_equal(mirrored[7][0], images[2][:, :, ::-1]) and mirrored[7][1].tolist() == [0, 1, 0]
    assert np.array_equal(mirrored[2][0], images[2])
    with pytest.raises(IndexError):
        mirrored[10]

    limited = dataset.load_dataset(path, max_images=2, mirror_augment=True)
    assert len(limited) == 4 and np.array_equal(limited[3][0], images[1][:, :, ::-1])

    unlabeled = dataset.load_dataset(path, use_labels=False)
    assert unlabeled.label_size == 0 and unlabeled[0][1].shape == (0,)
    assert dataset.load_dataset(path, max_label_size=2).label_size == 2
    assert dataset.load_dataset(path, max_label_size=0).label_size == 0


@pytest.mark.parametrize('layout', ['tfrecords', 'ada'])
def test_subset_is_stylegan2_adas_random_selection(tmp_path, layout):
    """--subset N: N images chosen by a seeded shuffle, kept in dataset order, labels with their images."""
    images, labels = make_images(10), [i % 4 for i in range(10)]
    path = (write_tfrecords if layout == 'tfrecords' else write_ada)(tmp_path / 'ds', images, labels)
    for seed in (0, 3):
        chosen = np.arange(10)
        np.random.RandomState(seed).shuffle(chosen)
        chosen = sorted(chosen[:4])  # stylegan2-ada-pytorch's Dataset(max_size=4, random_seed=seed)
        dset = dataset.load_dataset(path, subset=4, subset_seed=seed, mirror_augment=True)
        assert len(dset) == 8
        for item, raw in enumerate(chosen):
            assert np.array_equal(dset[item][0], images[raw])
            assert np.array_equal(dset[item + 4][0], images[raw][:, :, ::-1])
            assert dset[item][1].argmax() == labels[raw] == dset[item + 4][1].argmax()
    assert len(dataset.load_dataset(path, subset=10)) == len(dataset.load_dataset(path, subset=None)) == 10


def test_lower_resolution_and_original_style_arguments(tmp_path):
    images = make_images(3, channels=1, size=16)
    write_tfrecords(tmp_path / 'mnist', images)
    dset = dataset.load_dataset(tfrecord_dir='mnist', data_dir=str(tmp_path), resolution=8, shuffle_mb=0,
                                repeat=False)
    assert dset.image_shape == [1, 8, 8] and dset.path.endswith('mnist-r03.tfrecords')
    with pytest.raises(UserError, match='no 32-pixel images; available: \\[4, 8, 16\\]'):
        dataset.load_dataset(tfrecord_dir=str(tmp_path / 'mnist'), resolution=32)
    with pytest.raises(TypeError, match='bogus'):
        dataset.load_dataset(str(tmp_path / 'mnist'), bogus=1)
    with pytest.raises(UserError, match='dataset not found'):
        dataset.load_dataset(str(tmp_path / 'missing'))


def test_labels_file_with_class_indices_is_one_hot(tmp_path):
    path = write_tfrecords(tmp_path / 'ds', make_images(3))
    with open(os.path.join(path, 'ds-rxx.labels'), 'wb') as f:
        np.save(f, np.array([1, 0, 3]))
    labels = dataset.load_dataset(path)
    assert labels.label_size == 4 and labels.get_label(2).tolist() == [0, 0, 0, 1]
    with open(os.path.join(path, 'ds-rxx.labels'), 'wb') as f:
        np.save(f, np.zeros([2, 4], np.float32))
    with pytest.raises(UserError, match='has 2 labels for 3 images'):
        dataset.load_dataset(path)


def test_get_random_labels_samples_the_dataset_labels(tmp_path):
    path = write_tfrecords(tmp_path / 'ds', make_images(4), labels=[0, 0, 0, 1])
    dset = dataset.load_dataset(path)
    labels = dset.get_random_labels(400, np.random.RandomState(0))
    assert labels.shape == (400, 2) and labels.dtype == np.float32
    assert set(map(tuple, labels.tolist())) == {(1, 0), (0, 1)}
    assert 60 < labels[:, 1].sum() < 140  # one image in four has class 1
    assert np.array_equal(dset.get_random_labels(5, np.random.default_rng(1)).sum(1), np.ones(5))
    assert dataset.load_dataset(path, use_labels=False).get_random_labels(3).shape == (3, 0)


def test_dataloader_workers_give_the_same_items(tmp_path):
    images = make_images(6, size=8)
    for path in (write_tfrecords(tmp_path / 'ds', images, labels=[0, 1, 2, 0, 1, 2]),
                 write_ada(tmp_path / 'ds.zip', images, labels=[0, 1, 2, 0, 1, 2])):
        dset = dataset.load_dataset(path, mirror_augment=True)
        dset[0]  # opens the file in this process first; workers must open their own
        assert np.array_equal(pickle.loads(pickle.dumps(dset))[7][0], dset[7][0])  # spawned workers unpickle it
        batches = {}
        for workers in (0, 2):
            loader = torch.utils.data.DataLoader(dset, batch_size=4, num_workers=workers)
            batches[workers] = [(x.numpy(), y.numpy()) for x, y in loader]
        assert len(batches[0]) == 3
        for (x0, y0), (x2, y2) in zip(batches[0], batches[2]):
            assert np.array_equal(x0, x2) and np.array_equal(y0, y2)
        assert np.array_equal(batches[0][0][0][:4], images[:4])


def corrupt(path, offset, value=None, truncate=False):
    with open(path, 'r+b') as f:
        if truncate:
            f.truncate(offset)
        else:
            f.seek(offset)
            byte = f.read(1)
            f.seek(offset)
            f.write(bytes([byte[0] ^ 0x40]) if value is None else value)


def test_corrupt_records_name_the_file_and_offset(tmp_path):
    images = make_images(3, size=8)
    path = write_tfrecords(tmp_path / 'ds', images)
    record_file = os.path.join(path, 'ds-r03.tfrecords')
    frame_size = os.path.getsize(record_file) // 3
    second = frame_size  # byte offset of the second record

    corrupt(record_file, second + 12 + 40)  # a pixel byte of the second record
    dset = dataset.load_dataset(path)
    assert np.array_equal(dset[0][0], images[0])
    with pytest.raises(UserError, match=f'ds-r03.tfrecords at byte offset {second}: data checksum mismatch'):
        dset[1]

    corrupt(record_file, second + 2)  # the length field
    with pytest.raises(UserError, match=f'at byte offset {second}: length checksum mismatch'):
        dataset.load_dataset(path)
    corrupt(record_file, second + 2)  # restore

    corrupt(record_file, os.path.getsize(record_file) - 10, truncate=True)
    with pytest.raises(UserError, match=f'at byte offset {2 * frame_size}: .*truncated'):
        dataset.load_dataset(path)


def test_bad_payloads_name_the_file_and_offset(tmp_path):
    path = tmp_path / 'ds'
    path.mkdir()
    good = dataset.image_example(make_images(1)[0])
    bad_shape = dataset.encode_example({'shape': [3, 8, 9], 'data': make_images(1)[0].tobytes()})
    frames = [dataset.frame_record(good), dataset.frame_record(bad_shape), dataset.frame_record(b'\x0a\xff\x01')]
    (path / 'ds-r03.tfrecords').write_bytes(b''.join(frames))
    dset = dataset.load_dataset(str(path))
    offset = len(frames[0])
    with pytest.raises(UserError, match=f'at byte offset {offset}: bad record: .data. holds 192 bytes but shape'):
        dset[1]
    with pytest.raises(UserError, match=f'at byte offset {offset + len(frames[1])}: bad record: truncated'):
        dset[2]


def test_raw_records_decode_their_image_files(tmp_path):
    path = tmp_path / 'raw'
    path.mkdir()
    image = make_images(1, size=8)[0]
    buf = dataset_tool.io.BytesIO()
    dataset_tool.to_pil(image).save(buf, format='png')
    (path / 'raw-r03.tfrecords').write_bytes(dataset.frame_record(
        dataset.encode_example({'shape': [3, 8, 8], 'img': buf.getvalue()})))
    assert np.array_equal(dataset.load_dataset(str(path))[0][0], image)


# ----------------------------------------------------------------------------------------------------------------
# ada layout reader.


@pytest.mark.parametrize('name', ['folder', 'data.zip'])
def test_ada_layout_reader(tmp_path, name):
    images = make_images(3, channels=1, size=8)
    target = tmp_path / name
    path = write_ada(target, images, labels=[[0.5, 1.0], [0.25, 0.0], [1.0, 2.0]])
    assert zipfile.is_zipfile(path) == name.endswith('.zip')
    dset = dataset.load_dataset(path)
    assert isinstance(dset, dataset.ImageFolderDataset)
    assert (dset.name, len(dset), dset.image_shape, dset.label_size) == (name.split('.')[0], 3, [1, 8, 8], 2)
    for idx in range(3):
        assert np.array_equal(dset[idx][0], images[idx])
    assert dset.get_label(2).tolist() == [1.0, 2.0]


def test_ada_int_labels_and_errors(tmp_path):
    folder = tmp_path / 'imgs'
    (folder / 'sub').mkdir(parents=True)
    for idx, name in enumerate(['b.png', 'a.png', 'sub/c.png']):
        PIL.Image.fromarray(make_images(1, size=8, seed=idx)[0].transpose(1, 2, 0)).save(folder / name)
    (folder / 'dataset.json').write_text(json.dumps({'labels': [['a.png', 2], ['b.png', 0], ['sub/c.png', 1]]}))
    dset = dataset.load_dataset(str(folder))
    assert dset.label_size == 3 and [dset.get_label(i).argmax() for i in range(3)] == [2, 0, 1]

    (folder / 'dataset.json').write_text(json.dumps({'labels': [['a.png', 2]]}))
    with pytest.raises(UserError, match='has no label for b.png'):
        dataset.load_dataset(str(folder))
    (folder / 'dataset.json').write_text(json.dumps({'labels': None}))
    assert dataset.load_dataset(str(folder)).label_size == 0

    PIL.Image.new('RGB', (16, 16)).save(folder / 'sub' / 'd.png')
    with pytest.raises(UserError, match='image sub/d.png .* has shape \\[3, 16, 16\\]'):
        dataset.load_dataset(str(folder))[3]
    (folder / 'sub' / 'd.png').write_bytes(b'not a png')
    with pytest.raises(UserError, match='cannot read image sub/d.png'):
        dataset.load_dataset(str(folder))[3]
