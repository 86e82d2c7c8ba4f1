"""Latent-space maths for exploring and editing: interpolation paths and seamless loops.

Paths are NumPy arrays [frames, ...latent shape]. Z vectors move along great circles (slerp), because Gaussian
latents concentrate on a sphere; W vectors move along straight lines (lerp), as in the StyleGAN papers' PPL.
"""

import numpy as np

import dnnlib

INTERPOLATION_KINDS = ("linear", "slerp", "noiseloop", "circularloop")


def lerp(a, b, t):
    return a + (b - a) * t


def slerp(a, b, t):
    """Spherical interpolation along the last axis, with the norm interpolated linearly (so slerp between two
    vectors of different length stays between them); falls back to lerp for (anti)parallel vectors."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    na, nb = np.linalg.norm(a, axis=-1, keepdims=True), np.linalg.norm(b, axis=-1, keepdims=True)
    ua, ub = a / np.maximum(na, 1e-12), b / np.maximum(nb, 1e-12)
    omega = np.arccos(np.clip(np.sum(ua * ub, axis=-1, keepdims=True), -1, 1))
    so = np.sin(omega)
    safe = so > 1e-6
    direction = np.where(safe, (np.sin((1 - t) * omega) * ua + np.sin(t * omega) * ub) / np.where(safe, so, 1),
                         lerp(ua, ub, t))
    return direction * lerp(na, nb, t)


def keyframe_path(keyframes, frames_per_transition, kind="linear", loop=False):
    """Frames moving through keyframes [K, ...] in order, `frames_per_transition` frames from each keyframe to the
    next (the next keyframe starts the next transition). The last keyframe is the last frame, unless `loop`: then
    the path returns towards the first keyframe and stops one frame short of it, so that repeating the video is
    seamless."""
    keyframes = np.asarray(keyframes, np.float64)
    if kind not in ("linear", "slerp"):
        raise dnnlib.util.UserError(f"'{kind}' is not a keyframe interpolation: use linear or slerp")
    if len(keyframes) < 2:
        raise dnnlib.util.UserError("interpolation needs at least two keyframes (seeds or latents)")
    if loop:
        keyframes = np.concatenate([keyframes, keyframes[:1]])
    func = slerp if kind == "slerp" else lerp
    t = np.arange(frames_per_transition, dtype=np.float64) / frames_per_transition
    t = t.reshape([-1] + [1] * (keyframes.ndim - 1))
    path = [func(a, b, t) for a, b in zip(keyframes[:-1], keyframes[1:])]
    if not loop:
        path.append(keyframes[-1:])
    return np.concatenate(path)


def circular_loop(rnd, shape, num_frames, radius=1.0):
    """A closed circle of latents: centre c plus radius times (cos θ·u + sin θ·v) for θ over one turn, with c, u, v
    Gaussian from `rnd`. Frame num_frames would equal frame 0."""
    center, u, v = (rnd.randn(*shape) for _ in range(3))
    theta = 2 * np.pi * np.arange(num_frames) / num_frames
    theta = theta.reshape([-1] + [1] * len(shape))
    return center + radius * (np.cos(theta) * u + np.sin(theta) * v)


def noise_loop(seed, shape, num_frames, diameter=2.0):
    """A closed loop from OpenSimplex noise, as in the popular StyleGAN2-ADA forks: every latent dimension i follows
    2-D noise (generator seeded with seed + i) sampled around a circle of the given diameter, so the latent wanders
    smoothly and comes back to where it started. Larger diameters wander further."""
    try:
        from opensimplex import OpenSimplex
    except ImportError:
        raise dnnlib.util.UserError("noise loops need the opensimplex package: pip install opensimplex") from None
    size = int(np.prod(shape))
    theta = 2 * np.pi * np.arange(num_frames) / num_frames
    x, y = diameter / 2 * (1 + np.cos(theta)), diameter / 2 * (1 + np.sin(theta))
    path = np.empty([num_frames, size])
    for i in range(size):
        noise = OpenSimplex(seed + i)
        path[:, i] = [noise.noise2(xf, yf) for xf, yf in zip(x, y)]
    return path.reshape([num_frames] + list(shape))


def truncation_path(w, w_avg, psis):
    """W [..., dlatent_size] pulled towards the average by each psi in turn: [len(psis), ...]."""
    psis = np.asarray(psis, np.float64).reshape([-1] + [1] * np.ndim(w))
    return w_avg + (np.asarray(w) - w_avg) * psis
