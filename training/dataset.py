"""Datasets for training: the original's multi-resolution TFRecords and the stylegan2-ada-pytorch image folder / zip.

Both layouts read through one `torch.utils.data.Dataset` interface (`load_dataset`). The TFRecord container and the
`tf.train.Example` protobuf are read and written here by hand (no TensorFlow, no protobuf package); dataset_tool.py
writes its records with the same functions.

TFRecord framing: `uint64 length | uint32 masked_crc32c(length) | payload | uint32 masked_crc32c(payload)`, little
endian. StyleGAN2 payloads are Examples with `shape` (int64 [C, H, W]) and `data` (uint8 CHW bytes); records written
by `create_from_images_raw` hold the encoded image file in `img` instead of `data`.
"""

import glob
import io
import json
import os
import struct
import zipfile

import numpy as np
import PIL.Image
import torch

from dnnlib.util import UserError

# ----------------------------------------------------------------------------------------------------------------
# CRC-32C (Castagnoli), as TFRecords use it.

_CRC32C_POLY = 0x82F63B78  # reflected Castagnoli polynomial


def _make_crc_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (_CRC32C_POLY if crc & 1 else 0)
        table.append(crc)
    return table


_CRC_TABLE = _make_crc_table()
_CRC_TABLE_NP = np.array(_CRC_TABLE, dtype=np.uint32)
_NUMPY_CRC_MIN_BYTES = 256  # below this the byte loop is faster than NumPy's call overhead
_CRC_CHUNK = 64  # bytes per chunk in the NumPy version


def _crc32c_bytes(data):
    """CRC-32C one byte at a time (short inputs)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _gf2_apply(columns, values):
    """Apply the linear map over GF(2) whose images of the 32 unit bits are `columns` to each uint32 in `values`."""
    bits = (values[..., None] >> np.arange(32, dtype=np.uint32)) & 1
    return np.bitwise_xor.reduce(np.where(bits == 1, columns, np.uint32(0)), axis=-1)


def _crc32c_numpy(data):
    """CRC-32C of 4 or more bytes, vectorised: CRCs of equal chunks in parallel, then combined pairwise.

    The CRC register is linear in the data, so the register after chunk A then chunk B is shift(reg(A)) ^ reg(B),
    where shift runs len(B) zero bytes through the register. XOR-ing the first four bytes with 0xFF stands in for
    the 0xFFFFFFFF initial value, so every chunk starts from a zero register; zero bytes prepended to a zero register
    change nothing, which pads the data to a power-of-two number of chunks."""
    buf = np.frombuffer(data, dtype=np.uint8)
    num_chunks = 1 << int(np.ceil(np.log2(-(-buf.size // _CRC_CHUNK))))
    padded = np.zeros(num_chunks * _CRC_CHUNK, dtype=np.uint8)
    padded[padded.size - buf.size:] = buf
    padded[padded.size - buf.size:][:4] ^= 0xFF
    chunks = padded.reshape(num_chunks, _CRC_CHUNK)
    regs = np.zeros(num_chunks, dtype=np.uint32)
    for column in chunks.T:
        regs = _CRC_TABLE_NP[(regs ^ column) & 0xFF] ^ (regs >> 8)
    # shift: columns of "one zero byte through the register", squared up to one chunk length.
    unit_bits = np.uint32(1) << np.arange(32, dtype=np.uint32)
    shift = _CRC_TABLE_NP[unit_bits & 0xFF] ^ (unit_bits >> 8)
    for _ in range(int(np.log2(_CRC_CHUNK))):
        shift = _gf2_apply(shift, shift)
    while regs.size > 1:
        regs = _gf2_apply(shift, regs[0::2]) ^ regs[1::2]
        shift = _gf2_apply(shift, shift)
    return int(regs[0]) ^ 0xFFFFFFFF


try:
    import google_crc32c

    def crc32c(data):
        """CRC-32C of a bytes-like object (google-crc32c's C implementation)."""
        return google_crc32c.value(bytes(data))
except ImportError:  # pure Python/NumPy; about 50x slower, still fine for small datasets
    def crc32c(data):
        """CRC-32C of a bytes-like object (pure Python/NumPy fallback: pip install google-crc32c for speed)."""
        return _crc32c_bytes(data) if len(data) < _NUMPY_CRC_MIN_BYTES else _crc32c_numpy(data)


def masked_crc32c(data):
    """The masked CRC that TFRecord frames store: rotated right by 15 bits plus a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# ----------------------------------------------------------------------------------------------------------------
# TFRecord framing: one layout, used by the writer (frame_record) and the readers below.

_LENGTH = struct.Struct('<Q')
_CRC = struct.Struct('<I')
_HEADER_SIZE = _LENGTH.size + _CRC.size
_FRAME_OVERHEAD = _HEADER_SIZE + _CRC.size


def frame_record(payload):
    """One TFRecord frame holding `payload` (bytes), ready to append to a .tfrecords file."""
    length = _LENGTH.pack(len(payload))
    return length + _CRC.pack(masked_crc32c(length)) + payload + _CRC.pack(masked_crc32c(payload))


def _record_error(path, offset, problem):
    return UserError(f"corrupt TFRecord file {path} at byte offset {offset}: {problem}; "
                     "recreate the dataset with dataset_tool.py")


def _parse_header(header, path, offset):
    """Payload length from a 12-byte frame header, checking its CRC."""
    if len(header) < _HEADER_SIZE:
        raise _record_error(path, offset, f"truncated record header ({len(header)} of {_HEADER_SIZE} bytes)")
    length_bytes, crc_bytes = header[:_LENGTH.size], header[_LENGTH.size:_HEADER_SIZE]
    if _CRC.unpack(crc_bytes)[0] != masked_crc32c(length_bytes):
        raise _record_error(path, offset, "length checksum mismatch")
    return _LENGTH.unpack(length_bytes)[0]


def scan_records(f, path):
    """Byte offsets of all records in an open .tfrecords file, reading only the frame headers.

    Checks each header's CRC and that every record lies wholly inside the file."""
    file_size = os.fstat(f.fileno()).st_size
    offsets = []
    offset = 0
    while offset < file_size:
        f.seek(offset)
        length = _parse_header(f.read(_HEADER_SIZE), path, offset)
        if offset + _FRAME_OVERHEAD + length > file_size:
            raise _record_error(path, offset, f"record of {length} bytes runs past the end of the file "
                                f"({file_size} bytes): the file is truncated")
        offsets.append(offset)
        offset += _FRAME_OVERHEAD + length
    return offsets


def read_record(f, offset, path):
    """The payload of the record at `offset`, with both CRCs checked."""
    f.seek(offset)
    header = f.read(_HEADER_SIZE)
    length = _parse_header(header, path, offset)
    body = f.read(length + _CRC.size)
    if len(body) < length + _CRC.size:
        raise _record_error(path, offset, "the file ends inside the record: it is truncated")
    payload = body[:length]
    if _CRC.unpack(body[length:])[0] != masked_crc32c(payload):
        raise _record_error(path, offset, "data checksum mismatch")
    return payload


# ----------------------------------------------------------------------------------------------------------------
# tf.train.Example: Example{1: Features{1: map<string, Feature>}}, Feature{1: BytesList | 2: FloatList | 3: Int64List},
# each list {1: repeated value}. Written as TF writes it (packed numeric lists); read in packed or unpacked form.

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5


def _varint(value):
    value &= 0xFFFFFFFFFFFFFFFF  # negative int64 as two's complement, as protobuf does
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number, payload):
    return _varint(number << 3 | _LEN) + _varint(len(payload)) + payload


def _encode_feature(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _field(1, _field(1, bytes(value)))
    values = list(value)
    if all(isinstance(v, (int, np.integer)) for v in values):
        return _field(3, _field(1, b''.join(_varint(int(v)) for v in values)))
    return _field(2, _field(1, np.asarray(values, dtype='<f4').tobytes()))


def encode_example(features):
    """Serialize a tf.train.Example. `features` maps names to bytes (a one-item BytesList), a list of ints
    (Int64List) or a list of floats (FloatList)."""
    entries = b''.join(_field(1, _field(1, name.encode('utf-8')) + _field(2, _encode_feature(value)))
                       for name, value in features.items())
    return _field(1, entries)


def _read_varint(buf, pos):
    """(value, position after it) of the varint at buf[pos]; ValueError if malformed."""
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError('truncated varint')
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError('varint too long')


def _fields(buf):
    """(field number, wire type, value) for each field of a protobuf message; value is an int for varints and
    fixed-size fields, a memoryview for length-delimited ones. Raises ValueError on malformed input."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            value, pos = _read_varint(buf, pos)
        elif wire_type in (_FIXED64, _FIXED32):
            size = 8 if wire_type == _FIXED64 else 4
            if pos + size > len(buf):
                raise ValueError('truncated fixed-size field')
            value = int.from_bytes(buf[pos:pos + size], 'little')
            pos += size
        elif wire_type == _LEN:
            size, pos = _read_varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError('truncated length-delimited field')
            value = buf[pos:pos + size]
            pos += size
        else:
            raise ValueError(f'unsupported wire type {wire_type}')
        yield number, wire_type, value


def _decode_list(kind, buf):
    """Values of a BytesList (kind 1), FloatList (2) or Int64List (3) message."""
    values = []
    for number, wire_type, value in _fields(buf):
        if number != 1:
            continue
        if kind == 1:
            values.append(bytes(value))
        elif kind == 2:  # packed (LEN) or one fixed32 per value
            raw = bytes(value) if wire_type == _LEN else value.to_bytes(4, 'little')
            if len(raw) % 4:
                raise ValueError('packed float list with a partial value')
            values.extend(np.frombuffer(raw, dtype='<f4').tolist())
        elif wire_type == _LEN:  # packed varints
            pos = 0
            while pos < len(value):
                item, pos = _read_varint(value, pos)
                values.append(item)
        else:
            values.append(value)
    if kind == 3:
        values = [v - (1 << 64) if v >= 1 << 63 else v for v in values]
    return values


def decode_example(payload):
    """Parse a serialized tf.train.Example into {name: list of values} (bytes, floats or ints).
    Raises ValueError if the payload is not a valid Example."""
    features = {}
    for number, wire_type, features_msg in _fields(memoryview(payload)):
        if number != 1 or wire_type != _LEN:
            continue
        for entry_number, entry_type, entry in _fields(features_msg):
            if entry_number != 1 or entry_type != _LEN:
                continue
            name, values = None, []
            for part_number, part_type, part in _fields(entry):
                if part_number == 1 and part_type == _LEN:
                    name = bytes(part).decode('utf-8')
                elif part_number == 2 and part_type == _LEN:
                    for kind, kind_type, lst in _fields(part):
                        if kind in (1, 2, 3) and kind_type == _LEN:
                            values = _decode_list(kind, lst)
            if name is None:
                raise ValueError('feature without a name')
            features[name] = values
    return features


def image_example(image):
    """A StyleGAN2 record payload for one uint8 [C, H, W] image."""
    return encode_example({'shape': list(image.shape), 'data': np.ascontiguousarray(image, dtype=np.uint8).tobytes()})


def decode_image_file(data):
    """An encoded image file (PNG, JPEG, ...) as uint8 [C, H, W], keeping its channels."""
    with PIL.Image.open(io.BytesIO(data)) as img:
        array = np.asarray(img)
    return array[np.newaxis] if array.ndim == 2 else array.transpose(2, 0, 1)


def parse_image_record(payload):
    """The uint8 [C, H, W] image of a record payload: raw pixels ('data') or an encoded file ('img').
    Raises ValueError if the payload is malformed or its shape disagrees with its pixels."""
    features = decode_example(payload)
    shape = features.get('shape')
    if shape is None or len(shape) != 3 or not all(isinstance(v, int) and v > 0 for v in shape):
        raise ValueError(f"missing or invalid 'shape' feature: {shape}")
    if 'data' in features and len(features['data']) == 1:
        data = features['data'][0]
        if len(data) != int(np.prod(shape)):
            raise ValueError(f"'data' holds {len(data)} bytes but shape {shape} needs {int(np.prod(shape))}")
        return np.frombuffer(data, dtype=np.uint8).reshape(shape)
    if 'img' in features and len(features['img']) == 1:
        try:
            image = decode_image_file(features['img'][0])
        except (OSError, SyntaxError) as err:
            raise ValueError(f"cannot decode the encoded image: {err}") from None
        if list(image.shape) != shape:
            raise ValueError(f"encoded image is {list(image.shape)} but the record says {shape}")
        return image
    raise ValueError("no 'data' or 'img' feature")


# ----------------------------------------------------------------------------------------------------------------
# Datasets.


def _one_hot(classes, source):
    classes = np.asarray(classes)
    if classes.ndim != 1 or classes.size and classes.min() < 0:
        raise UserError(f"labels in {source} must be non-negative class indices or one vector per image")
    onehot = np.zeros([classes.size, int(classes.max()) + 1 if classes.size else 0], dtype=np.float32)
    onehot[np.arange(classes.size), classes] = 1
    return onehot


def labels_to_float(labels, source):
    """Labels as float32 [N, label_size]: integer class indices [N] become one-hot vectors (size max + 1)."""
    labels = np.asarray(labels)
    if labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer):
        return _one_hot(labels, source)
    if labels.ndim != 2 or not (np.issubdtype(labels.dtype, np.number) or labels.dtype == bool):
        raise UserError(f"labels in {source} have shape {list(labels.shape)}: expected one class index or one "
                        "label vector per image")
    return labels.astype(np.float32)


class Dataset(torch.utils.data.Dataset):
    """Images (uint8 [C, H, W]) and labels (float32 [label_size]) of a dataset, for torch DataLoaders.

    `max_images` keeps the first images (as the original's TFRecordDataset does); `subset` keeps that many
    images chosen at random with `subset_seed`, in dataset order (StyleGAN2-ADA's --subset). With `mirror_augment`
    the dataset has twice as many items: item i + N is item i flipped left-right (no randomness inside)."""

    def __init__(self, name, image_shape, num_images, labels, max_images=None, mirror_augment=False, subset=None,
                 subset_seed=0):
        self._name = name
        self._image_shape = [int(v) for v in image_shape]
        raw_idx = np.arange(num_images if max_images is None else min(num_images, max_images), dtype=np.int64)
        if subset is not None and subset < len(raw_idx):
            np.random.RandomState(subset_seed).shuffle(raw_idx)
            raw_idx = np.sort(raw_idx[:subset])
        self._raw_idx = raw_idx  # stored image of each selected one
        self._num_images = len(raw_idx)
        self._labels = None if labels is None else labels[raw_idx]
        self._mirror = bool(mirror_augment)

    def _load_image(self, raw_idx):  # overridden: uint8 [C, H, W] of stored image raw_idx
        raise NotImplementedError

    def _selected(self, idx):
        """The position among the selected images of item idx."""
        if not 0 <= idx < len(self):
            raise IndexError(f'index {idx} out of range for a dataset of {len(self)} items')
        return idx % self._num_images

    def __len__(self):
        return self._num_images * (2 if self._mirror else 1)

    def __getitem__(self, idx):
        image = self._load_image(int(self._raw_idx[self._selected(idx)]))
        if idx >= self._num_images:
            image = image[:, :, ::-1]
        return image.copy(), self.get_label(idx)  # a writable, contiguous array of its own

    def get_label(self, idx):
        """The float32 [label_size] label of item idx (empty when the dataset has no labels)."""
        return np.zeros([0], np.float32) if self._labels is None else self._labels[self._selected(idx)].copy()

    def get_random_labels(self, n, rng=None):
        """float32 [n, label_size]: labels of n images drawn uniformly from the dataset (with replacement), i.e.
        samples of its label distribution, as conditioning for generated images. `rng`: a NumPy Generator or
        RandomState (default: NumPy's global RandomState, as the original)."""
        if self._labels is None:
            return np.zeros([n, 0], np.float32)
        rng = np.random if rng is None else rng
        draw = rng.integers if isinstance(rng, np.random.Generator) else rng.randint
        return self._labels[draw(0, self._num_images, size=n)]

    @property
    def name(self):
        return self._name

    @property
    def image_shape(self):
        """[C, H, W]"""
        return list(self._image_shape)

    shape = image_shape  # the original's name

    @property
    def num_channels(self):
        return self._image_shape[0]

    @property
    def resolution(self):
        _, height, width = self._image_shape
        if height != width:
            raise UserError(f"dataset '{self._name}' has {width}x{height} images; training needs square images")
        return height

    @property
    def label_size(self):
        return 0 if self._labels is None else self._labels.shape[1]

    @property
    def has_labels(self):
        return self.label_size > 0


class _LazyFile:
    """A file, `opener(*args)`, opened on first use in each process, so that a dataset pickles (DataLoader
    workers) and forked workers never share the parent's file position."""

    def __init__(self, opener, *args):
        self._opener = opener
        self._args = args
        self._file = None
        self._pid = None

    def get(self):
        if self._file is None or self._pid != os.getpid():
            self._file = self._opener(*self._args)
            self._pid = os.getpid()
        return self._file

    def close(self):
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def __getstate__(self):
        return dict(self.__dict__, _file=None, _pid=None)


def _select_labels(labels, use_labels, max_label_size):
    """Apply use_labels and the original's max_label_size (0: none, 'full': all, N: first N components)."""
    if labels is None or not use_labels or max_label_size == 0:
        return None
    if max_label_size != 'full':
        labels = labels[:, :int(max_label_size)]
    return labels if labels.shape[1] else None


class TFRecordDataset(Dataset):
    """A directory of the original's `<name>-rNN.tfrecords` files (plus an optional `*.labels` file).

    Reads the highest-resolution file, or the one whose images are `resolution` pixels high. Record offsets are
    indexed once when the dataset is created; items are then read by offset."""

    def __init__(self, tfrecord_dir, resolution=None, label_file=None, max_label_size='full', use_labels=True,
                 **selection):  # max_images, subset, subset_seed, mirror_augment: see Dataset
        if not os.path.isdir(tfrecord_dir):
            raise UserError(f'dataset directory not found: {tfrecord_dir}')
        tfr_files = sorted(glob.glob(os.path.join(glob.escape(tfrecord_dir), '*.tfrecords')))
        if not tfr_files:
            raise UserError(f'no .tfrecords files in {tfrecord_dir}; create the dataset with dataset_tool.py')
        self.files = {}  # path -> image shape of its first record (the original's way to tell resolutions apart)
        for path in tfr_files:
            if os.path.getsize(path):
                with open(path, 'rb') as f:
                    self.files[path] = list(self._parse(read_record(f, 0, path), path, 0).shape)
        if not self.files:
            raise UserError(f'the .tfrecords files in {tfrecord_dir} hold no records')
        if resolution is None:
            self.path = max(self.files, key=lambda p: np.prod(self.files[p]))
        else:
            matching = [p for p, shape in self.files.items() if shape[1] == resolution]
            if not matching:
                available = sorted({shape[1] for shape in self.files.values()})
                raise UserError(f'dataset {tfrecord_dir} has no {resolution}-pixel images; available: {available}')
            self.path = matching[0]
        with open(self.path, 'rb') as f:
            self._offsets = np.array(scan_records(f, self.path), dtype=np.int64)
        self._file = _LazyFile(open, self.path, 'rb')

        labels = None
        if label_file is None:
            guesses = sorted(glob.glob(os.path.join(glob.escape(tfrecord_dir), '*.labels')))
            label_file = guesses[0] if guesses else None
        elif not os.path.isfile(label_file):
            label_file = os.path.join(tfrecord_dir, label_file)  # relative to the dataset, as in the original
        if label_file is not None and use_labels and max_label_size != 0:
            labels = self._load_labels(label_file, len(self._offsets))
        name = os.path.basename(os.path.normpath(tfrecord_dir))
        super().__init__(name, self.files[self.path], len(self._offsets), _select_labels(labels, use_labels,
                         max_label_size), **selection)

    @staticmethod
    def _load_labels(label_file, count):
        try:
            labels = np.load(label_file, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise UserError(f'cannot read labels file {label_file}: {err}') from None
        labels = labels_to_float(labels, label_file)
        if labels.shape[0] != count:
            raise UserError(f'labels file {label_file} has {labels.shape[0]} labels for {count} images')
        return labels

    @staticmethod
    def _parse(payload, path, offset):
        try:
            return parse_image_record(payload)
        except ValueError as err:
            raise _record_error(path, offset, f'bad record: {err}') from None

    def _load_image(self, raw_idx):
        offset = int(self._offsets[raw_idx])
        image = self._parse(read_record(self._file.get(), offset, self.path), self.path, offset)
        if list(image.shape) != self._image_shape:
            raise _record_error(self.path, offset, f'image shape {list(image.shape)} differs from the first '
                                f'record\'s {self._image_shape}')
        return image

    def close(self):
        self._file.close()


def _is_image_name(name):
    PIL.Image.init()
    return os.path.splitext(name)[1].lower() in PIL.Image.EXTENSION


class ImageFolderDataset(Dataset):
    """A stylegan2-ada-pytorch dataset: a folder or a zip of images (any depth, sorted by path) with an optional
    `dataset.json` {"labels": [[relative path, class index or label vector], ...] or null}."""

    def __init__(self, path, resolution=None, max_label_size='full', use_labels=True,
                 **selection):  # max_images, subset, subset_seed, mirror_augment: see Dataset
        self.path = path
        if os.path.isdir(path):
            names = [os.path.relpath(os.path.join(root, fname), path).replace(os.sep, '/')
                     for root, _dirs, files in os.walk(path) for fname in files]
            self._zip = None
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                names = [info.filename for info in z.infolist() if not info.is_dir()]
            self._zip = _LazyFile(zipfile.ZipFile, path)
        else:
            raise UserError(f'{path} is not a dataset: expected a TFRecords directory, an image folder or a .zip')
        self._image_names = sorted(name for name in names if _is_image_name(name))
        if not self._image_names:
            raise UserError(f'no images found in {path}')
        first = self._read_image(self._image_names[0])
        if resolution is not None and list(first.shape[1:]) != [resolution, resolution]:
            raise UserError(f'dataset {path} has {first.shape[2]}x{first.shape[1]} images, not '
                            f'{resolution}x{resolution}')
        labels = self._load_labels(names) if use_labels and max_label_size != 0 else None
        name = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
        super().__init__(name, first.shape, len(self._image_names), _select_labels(labels, use_labels,
                         max_label_size), **selection)

    def _open(self, name):
        if self._zip is None:
            return open(os.path.join(self.path, name), 'rb')
        return self._zip.get().open(name)

    def _read_image(self, name):
        try:
            with self._open(name) as f:
                return decode_image_file(f.read())
        except (OSError, SyntaxError, ValueError) as err:
            raise UserError(f'cannot read image {name} in {self.path}: {err}') from None

    def _load_labels(self, names):
        if 'dataset.json' not in names:
            return None
        source = f'{self.path}/dataset.json'
        try:
            with self._open('dataset.json') as f:
                entries = json.load(f)['labels']
            if entries is None:
                return None
            by_name = {str(fname): label for fname, label in entries}
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(f'{source} is not a valid dataset.json ({err}); expected '
                            '{"labels": [["00000/img00000000.png", label], ...]} or {"labels": null}') from None
        missing = [name for name in self._image_names if name not in by_name]
        if missing:
            raise UserError(f'{source} has no label for {missing[0]} ({len(missing)} images lack one)')
        return labels_to_float(np.array([by_name[name] for name in self._image_names]), source)

    def _load_image(self, raw_idx):
        name = self._image_names[raw_idx]
        image = self._read_image(name)
        if list(image.shape) != self._image_shape:
            raise UserError(f'image {name} in {self.path} has shape {list(image.shape)}, but the dataset\'s images '
                            f'are {self._image_shape} ([channels, height, width])')
        return image

    def close(self):
        if self._zip is not None:
            self._zip.close()


# Options of the original's tf.data pipeline; batching, shuffling and prefetching are the DataLoader's job here.
_TF_PIPELINE_OPTIONS = ('class_name', 'repeat', 'shuffle_mb', 'prefetch_mb', 'buffer_mb', 'num_threads')


def load_dataset(path=None, tfrecord_dir=None, data_dir=None, resolution=None, max_images=None, mirror_augment=False,
                 use_labels=True, subset=None, subset_seed=0, **kwargs):
    """Open a dataset, finding its layout from its content.

    `path`: a TFRecords directory, an image folder or a .zip of images. Or, as in the original, `tfrecord_dir`
    (joined onto `data_dir` when given). `subset`: that many images chosen with `subset_seed` (StyleGAN2-ADA's
    --subset). Further keyword arguments: `max_label_size` (0, 'full' or N first
    components), `label_file` (TFRecords), `verbose` (print the shape); the original's tf.data options (repeat,
    shuffle_mb, ...) are accepted and have no effect."""
    label_file = kwargs.pop('label_file', None)
    max_label_size = kwargs.pop('max_label_size', 'full')
    verbose = kwargs.pop('verbose', False)
    unknown = sorted(set(kwargs) - set(_TF_PIPELINE_OPTIONS))
    if unknown:
        raise TypeError(f'load_dataset() got unexpected keyword arguments: {", ".join(unknown)}')
    if (path is None) == (tfrecord_dir is None):
        raise TypeError('load_dataset() needs exactly one of path and tfrecord_dir')
    if path is None:
        path = tfrecord_dir if data_dir is None else os.path.join(data_dir, tfrecord_dir)
    if not os.path.exists(path):
        raise UserError(f'dataset not found: {path}')
    common = dict(resolution=resolution, max_label_size=max_label_size, use_labels=use_labels,
                  max_images=max_images, mirror_augment=mirror_augment, subset=subset, subset_seed=subset_seed)
    if os.path.isdir(path) and glob.glob(os.path.join(glob.escape(path), '*.tfrecords')):
        dataset = TFRecordDataset(path, label_file=label_file, **common)
    else:
        dataset = ImageFolderDataset(path, **common)
    if verbose:
        print('Dataset shape =', dataset.image_shape)
        print('Dynamic range =', [0, 255])
        print('Label size    =', dataset.label_size)
    return dataset
