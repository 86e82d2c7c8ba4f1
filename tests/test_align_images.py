"""align_images.py: the FFHQ crop geometry on synthetic faces, landmarks on a real photo, and a batch that names
what it skips and ends with one clear line for bad input.

Where the FFHQ recipe puts the face: with d the eye distance and m the distance from the eyes' midpoint to the
mouth's (perpendicular to the eyes), the crop is a square of side 2s, s = max(2d, 1.8m), centred 0.1m below the
eyes' midpoint. In an S x S output the eye centres land at S/2 + (-d/2 or +d/2, -0.1m) * S/(2s) and the mouth
corners (w apart) at S/2 + (-w/2 or +w/2, 0.9m) * S/(2s); for usual proportions (2d >= 1.8m) the eyes sit at
x = 3S/8 and 5S/8. These positions count from the image's top-left edge; pixel indices are 0.5 less.
"""

import hashlib
import os
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest

import align_images
from conftest import REPO_ROOT
from dnnlib.util import UserError


def canonical_positions(size, d, m, w):
    """Pixel positions [eye_left, eye_right, mouth_left, mouth_right] of an upright face in the aligned image,
    derived from the recipe as in the module docstring."""
    s = max(2 * d, 1.8 * m)
    offsets = np.array([(-d / 2, -0.1 * m), (d / 2, -0.1 * m), (-w / 2, 0.9 * m), (w / 2, 0.9 * m)])
    return size / 2 + offsets * size / (2 * s) - 0.5


def face_keypoints(centre, d, m, w, angle_deg):
    """Keypoints of a face whose eyes are d apart, with the mouth (w wide) m below them, turned by angle_deg."""
    upright = np.array([(-d / 2, 0), (d / 2, 0), (-w / 2, m), (w / 2, m)])
    a = np.deg2rad(angle_deg)
    rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return np.asarray(centre) + upright @ rotation.T


def dot_image(size, points, sigma):
    """A black image with a Gaussian dot at each point, each in its own channel (red, green, blue). The dots are
    centred on the exact positions, fractions of a pixel included."""
    ys, xs = np.mgrid[:size[1], :size[0]]
    pixels = np.zeros((size[1], size[0], 3))
    for channel, (x, y) in enumerate(points):
        pixels[:, :, channel] = 255 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2))
    return PIL.Image.fromarray(np.uint8(np.rint(pixels)))


def dot_centres(image):
    """Intensity-weighted centre (x, y) of each channel's dot."""
    pixels = np.asarray(image, np.float64)
    ys, xs = np.mgrid[:pixels.shape[0], :pixels.shape[1]]
    centres = []
    for channel in range(3):
        weight = pixels[:, :, channel]
        weight = np.where(weight > 0.1 * weight.max(), weight, 0)  # ignore resampling ripples
        centres.append((np.sum(weight * xs) / weight.sum(), np.sum(weight * ys) / weight.sum()))
    return np.array(centres)


# ----------------------------------------------------------------------------------------------------------------
# The recipe, without a landmark detector.


@pytest.mark.parametrize('size, transform_size, m_over_d, angle', [
    (256, 1024, 1.0, 20.0),    # usual proportions: the eye distance sets the scale
    (64, 4096, 1.5, -35.0),    # long face: the eye-mouth distance sets it; a large photo is shrunk first
])
def test_eyes_and_mouth_land_where_the_ffhq_recipe_puts_them(size, transform_size, m_over_d, angle):
    d, m, w = 60.0, 60.0 * m_over_d, 48.0
    keypoints = face_keypoints((300.5, 260.25), d, m, w, angle)
    image = dot_image((640, 560), keypoints[:3], sigma=4)  # eyes and left mouth corner
    aligned = align_images.align_face(image, keypoints, output_size=size, transform_size=transform_size)
    assert aligned.size == (size, size) and aligned.mode == 'RGB'
    expected = canonical_positions(size, d, m, w)[:3]
    # A quarter pixel: tight enough to catch a half-pixel slip in the recipe's pixel-centre convention.
    np.testing.assert_allclose(dot_centres(aligned), expected, atol=0.25)
    if m_over_d == 1.0:  # the fixed FFHQ eye columns
        np.testing.assert_allclose(expected[:2, 0], [0.375 * size - 0.5, 0.625 * size - 0.5])


def test_ffhq_quad_is_the_square_around_the_face():
    quad, qsize = align_images.ffhq_quad(face_keypoints((100, 100), 40, 40, 30, 0))
    # s = 80 around the centre (100, 104): corners top-left, bottom-left, bottom-right, top-right.
    np.testing.assert_allclose(quad, [(20, 24), (20, 184), (180, 184), (180, 24)])
    assert qsize == pytest.approx(160)


def test_keypoints_from_68_landmarks_are_eye_means_and_mouth_corners():
    landmarks = np.zeros((68, 2))
    landmarks[36:42] = [(10, 20), (12, 18), (14, 18), (16, 20), (14, 22), (12, 22)]
    landmarks[42:48] = landmarks[36:42] + (30, 2)
    landmarks[48], landmarks[54] = (11, 50), (45, 52)
    np.testing.assert_allclose(align_images.keypoints_from_68(landmarks), [(13, 20), (43, 22), (11, 50), (45, 52)])


def test_padding_mirrors_the_photo_where_the_crop_leaves_it():
    image = PIL.Image.new('RGB', (300, 300), (200, 150, 100))
    keypoints = face_keypoints((40, 40), 40, 40, 30, 0)  # the crop reaches 60 px past the top-left corner
    padded = np.asarray(align_images.align_face(image, keypoints, output_size=64, transform_size=256))
    black = np.asarray(align_images.align_face(image, keypoints, 64, 256, enable_padding=False))
    np.testing.assert_allclose(padded[0, 0], (200, 150, 100), atol=2)
    assert black[0, 0].tolist() == [0, 0, 0]
    np.testing.assert_allclose(black[-1, -1], (200, 150, 100), atol=2)


def test_output_stems_keep_the_extension_only_where_two_inputs_share_a_name():
    assert align_images.output_stems(['a.jpg', 'a.png', 'b.x.png']) == ['a_jpg', 'a_png', 'b.x']


# ----------------------------------------------------------------------------------------------------------------
# Real landmarks on a real photo.


def load_landmarker_or_skip(name):
    pytest.importorskip(name, exc_type=ImportError)  # missing, or installed but broken
    try:
        return align_images.load_landmarker(name)
    except UserError as err:  # e.g. dlib without its model package, or a mediapipe without face models
        pytest.skip(str(err))


def largest_face(faces):
    return max(faces, key=lambda keypoints: np.hypot(*(keypoints[1] - keypoints[0])))


def proportions(keypoints):
    """(d, m, w) of a face: eye distance, eyes-to-mouth distance, mouth width."""
    eye_left, eye_right, mouth_left, mouth_right = keypoints
    return (np.hypot(*(eye_right - eye_left)), np.hypot(*((mouth_left + mouth_right - eye_left - eye_right) / 2)),
            np.hypot(*(mouth_right - mouth_left)))


@pytest.mark.parametrize('backend', ['dlib', 'mediapipe'])
def test_aligned_photo_has_the_eyes_where_ffhq_puts_them(backend):
    skimage_data = pytest.importorskip('skimage.data')
    find_faces = load_landmarker_or_skip(backend)
    photo = PIL.Image.fromarray(skimage_data.astronaut())
    size = 256
    aligned = align_images.align_face(photo, largest_face(find_faces(np.asarray(photo))), output_size=size)

    keypoints = largest_face(find_faces(np.asarray(aligned)))
    expected = canonical_positions(size, *proportions(keypoints))
    np.testing.assert_allclose(keypoints[:2], expected[:2], atol=2.0)  # within 2 px of 256
    np.testing.assert_allclose(keypoints[:2, 0], [95.5, 159.5], atol=2.0)  # 3/8 and 5/8 of the width


# ----------------------------------------------------------------------------------------------------------------
# The command.


def run_cli(*args, pythonpath=REPO_ROOT):
    env = dict(os.environ, PYTHONPATH=pythonpath, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, 'align_images.py'), *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=300)


def lines_naming(text, name):
    # tqdm redraws its bar with carriage returns; splitlines() splits there too, leaving the messages whole.
    return [line for line in text.splitlines() if name in line]


def file_digests(directory):
    return {name: hashlib.sha256((directory / name).read_bytes()).hexdigest() for name in os.listdir(directory)}


@pytest.fixture(scope='module')
def batch(tmp_path_factory):
    """One run over a folder holding a portrait, two photos without a face, a damaged PNG and a text file."""
    skimage_data = pytest.importorskip('skimage.data')
    load_landmarker_or_skip('dlib')
    raw = tmp_path_factory.mktemp('raw')
    PIL.Image.fromarray(skimage_data.astronaut()).save(raw / 'astronaut.png')
    PIL.Image.fromarray(skimage_data.coffee()).save(raw / 'coffee.jpg')
    PIL.Image.new('RGB', (200, 200), (128, 128, 128)).save(raw / 'gray.png')
    (raw / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n' + bytes(range(256)) * 4)
    (raw / 'notes.txt').write_text('not an image')
    before = file_digests(raw)
    aligned = tmp_path_factory.mktemp('out') / 'aligned'
    result = run_cli(raw, aligned, '--output-size=128')
    return dict(raw=raw, aligned=aligned, result=result, inputs_before=before)


def test_cli_aligns_the_faces_and_leaves_the_inputs_alone(batch):
    result = batch['result']
    assert result.returncode == 0, result.stderr
    outputs = sorted(os.listdir(batch['aligned']))
    assert outputs[0] == 'astronaut_01.png'
    assert all(name.startswith('astronaut_') for name in outputs)  # nothing else, no temporary files
    with PIL.Image.open(batch['aligned'] / 'astronaut_01.png') as image:
        assert image.size == (128, 128) and image.mode == 'RGB'
    assert file_digests(batch['raw']) == batch['inputs_before']
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith('Done:') and str(batch['aligned']) in summary
    assert 'Traceback' not in result.stderr


def test_cli_names_each_image_without_a_face_and_goes_on(batch):
    stderr = batch['result'].stderr
    for name in ('coffee.jpg', 'gray.png'):
        assert lines_naming(stderr, name) == [f"warning: skipped {batch['raw'] / name}: no face found"]


def test_cli_names_an_unreadable_image_and_goes_on(batch):
    assert lines_naming(batch['result'].stderr, 'broken.png') == [
        f"warning: skipped unreadable image {batch['raw'] / 'broken.png'}: not a recognised image file"]


def test_cli_fails_when_no_image_has_a_face(tmp_path):
    load_landmarker_or_skip('dlib')
    PIL.Image.new('RGB', (100, 100), (128, 128, 128)).save(tmp_path / 'gray.png')
    result = run_cli(tmp_path, tmp_path / 'out')
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f'error: no face found in the 1 image(s) of {tmp_path}'


def test_missing_input_dir_is_one_clear_line(tmp_path):
    result = run_cli(tmp_path / 'nowhere', tmp_path / 'out')
    assert result.returncode == 1
    assert result.stderr == f"error: input directory not found: {tmp_path / 'nowhere'}\n"
    assert not (tmp_path / 'out').exists()


def test_output_dir_must_not_be_the_input_dir(tmp_path):
    PIL.Image.new('RGB', (100, 100)).save(tmp_path / 'a.png')
    result = run_cli(tmp_path, tmp_path / '.')
    assert result.returncode == 1
    assert result.stderr.startswith('error: the output directory is the input directory')
    assert os.listdir(tmp_path) == ['a.png']


def test_missing_landmark_package_says_what_to_install(tmp_path):
    # A stand-in dlib that fails to import, first on the path, whether or not the real one is installed.
    (tmp_path / 'fake' / 'dlib').mkdir(parents=True)
    (tmp_path / 'fake' / 'dlib' / '__init__.py').write_text("raise ImportError('no dlib here')\n")
    (tmp_path / 'raw').mkdir()
    PIL.Image.new('RGB', (100, 100)).save(tmp_path / 'raw' / 'a.png')
    result = run_cli(tmp_path / 'raw', tmp_path / 'out', pythonpath=f"{tmp_path / 'fake'}{os.pathsep}{REPO_ROOT}")
    assert result.returncode == 1
    assert result.stderr == 'error: --landmarks=dlib needs dlib: pip install dlib-bin face-recognition-models\n'
