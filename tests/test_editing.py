"""training/editing.py: interpolation paths and loops."""

import numpy as np
import pytest

import dnnlib
from training import editing


def test_slerp_stays_on_the_sphere_and_hits_the_ends():
    rnd = np.random.RandomState(0)
    a, b = rnd.randn(512), rnd.randn(512)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    t = np.linspace(0, 1, 11)[:, None]
    path = editing.slerp(a, b, t)
    np.testing.assert_allclose(path[0], a, atol=1e-12)
    np.testing.assert_allclose(path[-1], b, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(a), rtol=1e-12)
    angles = np.arccos(np.clip(np.sum(path[:-1] * path[1:], 1) / np.linalg.norm(a) ** 2, -1, 1))
    np.testing.assert_allclose(angles, angles[0], rtol=1e-6)  # constant angular speed
    np.testing.assert_allclose(editing.slerp(a, a, 0.3), a)  # parallel vectors fall back to lerp


def test_keyframe_paths_visit_every_keyframe():
    keys = np.random.RandomState(1).randn(3, 4, 8)
    path = editing.keyframe_path(keys, 5, "linear")
    assert path.shape == (11, 4, 8)
    for i in range(3):
        np.testing.assert_allclose(path[5 * i], keys[i])
    looped = editing.keyframe_path(keys, 5, "slerp", loop=True)
    assert looped.shape == (15, 4, 8)
    # The frame after the last would be the first keyframe again: continuing the path closes it.
    np.testing.assert_allclose(editing.slerp(looped[-1], keys[0], 1.0), keys[0])
    step = np.linalg.norm(looped[-1] - keys[0])
    assert 0 < step < np.linalg.norm(keys[0] - keys[2])
    with pytest.raises(dnnlib.util.UserError):
        editing.keyframe_path(keys[:1], 5)


@pytest.mark.parametrize("kind", ["noiseloop", "circularloop"])
def test_loops_close_exactly(kind):
    frames = 48
    if kind == "noiseloop":
        pytest.importorskip("opensimplex")
        make = lambda n: editing.noise_loop(7, [16], n, diameter=2.0)  # noqa: E731
    else:
        make = lambda n: editing.circular_loop(np.random.RandomState(7), [16], n)  # noqa: E731
    path = make(frames)
    assert path.shape == (frames, 16)
    # Sampling the same loop twice as densely puts frame 2k on frame k, and the frame after the last on frame 0.
    dense = make(2 * frames)
    np.testing.assert_allclose(dense[::2], path, atol=1e-12)
    closing = np.linalg.norm(path[-1] - path[0])
    neighbours = np.linalg.norm(np.diff(path, axis=0), axis=1)
    assert closing < 2 * neighbours.max()  # the seam is no bigger a step than the others
    assert np.all(np.ptp(path, axis=0) > 0)  # and the latent really moves


def test_truncation_path():
    w, avg = np.ones([3, 4]), np.zeros(4)
    path = editing.truncation_path(w, avg, [0, 0.5, 1, -1])
    assert path.shape == (4, 3, 4)
    np.testing.assert_allclose(path[:, 0, 0], [0, 0.5, 1, -1])
