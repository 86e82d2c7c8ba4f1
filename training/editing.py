"""Latent-space maths for exploring and editing: interpolation paths and seamless loops.

Paths are NumPy arrays [frames, ...latent shape]. Z vectors move along great circles (slerp), because Gaussian
latents concentrate on a sphere; W vectors move along straight lines (lerp), as in the StyleGAN papers' PPL.
"""

import re

import numpy as np
import torch

import dnnlib
from training.clip import cosine_distance
from training.projector import learning_rate_schedule

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


# ----------------------------------------------------------------------------------------------------------------
# Directions. A direction is [dlatent_size] (the same for every layer) or [num_layers, dlatent_size].


def parse_layers(text, num_layers):
    """Layer indices from 'all' or a list such as '0-7' or '0,2,4-5', checked against the network."""
    if text in (None, "all"):
        return list(range(num_layers))
    layers = dnnlib.util.parse_num_range(text)
    bad = [layer for layer in layers if layer >= num_layers]
    if bad:
        raise dnnlib.util.UserError(f"unknown layer range '{text}': the network has layers 0-{num_layers - 1}")
    return sorted(set(layers))


def apply_direction(dlatents, direction, coeffs, layers=None):
    """W+ latents [N, num_layers, D] moved by each coefficient along a direction, on the chosen layers only:
    [N, len(coeffs), num_layers, D]."""
    dlatents = np.asarray(dlatents, np.float64)
    num_layers, size = dlatents.shape[1:]
    direction = np.asarray(direction, np.float64)
    if direction.shape not in ((size,), (num_layers, size)):
        raise dnnlib.util.UserError(f"a direction of shape {list(direction.shape)} does not fit this network: "
                                    f"expected [{size}] or [{num_layers}, {size}]")
    mask = np.zeros([num_layers, 1])
    mask[list(range(num_layers)) if layers is None else layers] = 1
    step = np.broadcast_to(direction, (num_layers, size)) * mask
    coeffs = np.asarray(coeffs, np.float64).reshape(1, -1, 1, 1)
    return dlatents[:, np.newaxis] + coeffs * step


def sample_w(Gs, num_samples, seed=0, batch_size=1000):
    """W [num_samples, dlatent_size] of seeded Gaussian z (no truncation; random classes if conditional)."""
    rnd = np.random.RandomState(seed)
    label_size = Gs.input_shapes[1][1]
    out = []
    for start in range(0, num_samples, batch_size):
        num = min(batch_size, num_samples - start)
        z = rnd.randn(num, *Gs.input_shape[1:])
        labels = np.eye(label_size, dtype=np.float32)[rnd.randint(label_size, size=num)] if label_size else None
        out.append(Gs.components.mapping.run(z, labels)[:, 0])
    return np.concatenate(out).astype(np.float64)


def ganspace(Gs, num_samples=300000, num_components=80, seed=0, batch_size=10000, progress=None):
    """GANSpace (Härkönen et al. 2020) in W: principal components of mapped samples, by exact eigendecomposition of
    their covariance (512x512, accumulated in float64 batch by batch). Returns an EasyDict with GANSpace's names:
    lat_comp [K, D] (unit rows, decreasing variance), lat_mean [D], lat_stdev [K] (standard deviation along each)."""
    size = Gs.components.mapping.output_shape[-1]
    num_components = min(num_components, size)
    total, outer, count = np.zeros(size), np.zeros([size, size]), 0
    rnd_seeds = np.random.RandomState(seed).randint(2 ** 31, size=(num_samples + batch_size - 1) // batch_size)
    for i, batch_seed in enumerate(rnd_seeds):
        w = sample_w(Gs, min(batch_size, num_samples - i * batch_size), seed=batch_seed, batch_size=batch_size)
        total += w.sum(0)
        outer += w.T @ w
        count += len(w)
        if progress is not None:
            progress.update(len(w))
    mean = total / count
    cov = (outer - count * np.outer(mean, mean)) / (count - 1)
    eigval, eigvec = np.linalg.eigh(cov)
    order = np.argsort(eigval)[::-1][:num_components]
    return dnnlib.EasyDict(lat_comp=eigvec[:, order].T.astype(np.float32), lat_mean=mean.astype(np.float32),
                           lat_stdev=np.sqrt(np.maximum(eigval[order], 0)).astype(np.float32))


def style_layers(Gs):
    """(W+ row, modulation weight [D, C]) for every modulated convolution of the synthesis network, ToRGB excluded:
    the layers whose styles SeFa factorises. Row i feeds the 4x4 Conv (i = 0), Conv0_up (odd i) or Conv1 (even i)."""
    synthesis = Gs.components.synthesis.module
    found = []
    for res in range(2, synthesis.resolution_log2 + 1):
        block = getattr(synthesis, f"{2 ** res}x{2 ** res}")
        for name, row in (("Conv", 0), ("Conv0_up", res * 2 - 5), ("Conv1", res * 2 - 4)):
            layer = getattr(block, name, None)
            if layer is not None:
                found.append((row, layer.mod_weight.detach().cpu().numpy().astype(np.float64)))
    return found


def sefa(Gs, layers=None):
    """SeFa (Shen & Zhou 2021): closed-form directions from the style weights of the chosen W+ rows. The weights'
    output-channel columns, each normalised to unit length, are stacked into A [D, sum C]; the directions are the
    eigenvectors of A A^T by decreasing eigenvalue. Returns EasyDict(components [D, D] unit rows, eigenvalues [D])."""
    chosen = [weight for row, weight in style_layers(Gs) if layers is None or row in layers]
    if not chosen:
        raise dnnlib.util.UserError("the chosen layers have no style convolution (the last layer feeds only ToRGB)")
    a = np.concatenate([w / np.linalg.norm(w, axis=0, keepdims=True) for w in chosen], axis=1)
    eigval, eigvec = np.linalg.eigh(a @ a.T)
    order = np.argsort(eigval)[::-1]
    return dnnlib.EasyDict(components=eigvec[:, order].T.astype(np.float32), eigenvalues=eigval[order])


def train_direction(latents, labels, train_fraction=0.7, chosen_fraction=None, l2=1.0, seed=0):
    """InterFaceGAN (Shen et al. 2020): a linear boundary separating latents by a binary attribute; its unit normal
    is the editing direction (towards label 1). latents [N, ...] (flattened for the fit); labels [N], 0/1 or scores.
    Scores keep only the top and bottom `chosen_fraction` (InterFaceGAN: 0.02) as positives and negatives.

    The boundary is a linear SVM (squared hinge loss + l2/2 |w|^2, as a C=1/l2 SVC would), fitted by L-BFGS on a
    random `train_fraction` of the data and checked on the rest. Returns (direction shaped like one latent,
    validation accuracy or None)."""
    import scipy.optimize
    latents = np.asarray(latents, np.float64)
    labels = np.asarray(labels, np.float64).reshape(-1)
    if len(latents) != len(labels):
        raise dnnlib.util.UserError(f"{len(latents)} latents but {len(labels)} labels")
    if chosen_fraction is not None:
        num = max(1, int(len(labels) * chosen_fraction))
        order = np.argsort(labels)
        keep = np.concatenate([order[-num:], order[:num]])
        latents, labels = latents[keep], np.concatenate([np.ones(num), np.zeros(num)])
    elif not np.all((labels == 0) | (labels == 1)):
        raise dnnlib.util.UserError("labels must be 0 or 1 (or give scores with a chosen fraction)")
    if labels.min() == labels.max():
        raise dnnlib.util.UserError("all labels are the same: a boundary needs examples of both classes")

    x = latents.reshape(len(latents), -1)
    x_mean, x_std = x.mean(0), x.std(0) + 1e-8
    xn = (x - x_mean) / x_std
    y = labels * 2 - 1
    order = np.random.RandomState(seed).permutation(len(x))
    split = max(1, min(len(x) - 1, int(len(x) * train_fraction))) if len(x) > 1 else len(x)
    train, val = order[:split], order[split:]

    def loss_and_grad(params):
        w, b = params[:-1], params[-1]
        margin = 1 - y[train] * (xn[train] @ w + b)
        active = np.maximum(margin, 0)
        loss = np.sum(active ** 2) + 0.5 * l2 * w @ w
        g = -2 * (active * y[train])
        return loss, np.concatenate([xn[train].T @ g + l2 * w, [g.sum()]])

    params = scipy.optimize.minimize(loss_and_grad, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B").x
    w = params[:-1] / x_std  # back to the latents' own coordinates
    accuracy = None
    if len(val):
        accuracy = float(np.mean(np.sign(xn[val] @ params[:-1] + params[-1]) == y[val]))
    return (w / np.linalg.norm(w)).reshape(latents.shape[1:]).astype(np.float32), accuracy


# ----------------------------------------------------------------------------------------------------------------
# Network blending.


_SYNTHESIS_BLOCK_VAR = re.compile(r"G_synthesis/(\d+)x\1/.+")


def blend_weights(resolution_log2, switch_resolution, blend_width=None):
    """Share of the second network for each synthesis block (log2 resolution -> weight): 0 below the switch
    resolution, 1 from it on; with a blend width, a sigmoid in log2 resolution centred between the two."""
    switch = np.log2(switch_resolution)
    out = {}
    for res in range(2, resolution_log2 + 1):
        if blend_width is None:
            out[res] = float(res >= switch)
        else:
            out[res] = float(1 / (1 + np.exp(-(res - switch + 0.5) / blend_width)))
    return out


def blend_networks(low_net, high_net, switch_resolution, blend_width=None):
    """Resolution-dependent blending (Pinkney & Adler 2020, "toonify"): a copy of `low_net` whose synthesis blocks
    from `switch_resolution` up take their weights from `high_net` (smoothly with `blend_width`). Mapping, W average
    and everything outside the synthesis blocks stay from `low_net`. Both must be the same architecture."""
    if set(low_net.vars) != set(high_net.vars) or any(
            low_net.vars[name].shape.as_list() != high_net.vars[name].shape.as_list() for name in low_net.vars):
        raise dnnlib.util.UserError("the two networks differ in architecture: blending needs the same layers and "
                                    "shapes (e.g. a network and its fine-tuned copy)")
    resolution_log2 = int(np.log2(low_net.output_shape[-1]))
    if not 4 <= switch_resolution <= 2 ** resolution_log2 or switch_resolution & (switch_resolution - 1):
        raise dnnlib.util.UserError(f"--resolution must be a power of two from 4 to {2 ** resolution_log2}")
    weights = blend_weights(resolution_log2, switch_resolution, blend_width)
    out = low_net.clone()
    for name in out.vars:
        match = _SYNTHESIS_BLOCK_VAR.fullmatch(name)
        t = weights[int(np.log2(int(match.group(1))))] if match else 0
        if t:
            out.set_var(name, (1 - t) * low_net.get_var(name) + t * high_net.get_var(name))
    return out


# ----------------------------------------------------------------------------------------------------------------
# Text-driven editing.


def text_edit(Gs, clip, text_features, dlatents, num_steps=300, initial_learning_rate=0.1, l2_lambda=0.008,
              keep_lambda=0.0, lpips=None, progress=None):
    """StyleCLIP latent optimisation (Patashnik et al. 2021): move W+ latents [N, num_layers, D] so that the images
    match a text under CLIP, minimising (1 - cos(CLIP image, CLIP text)) + l2_lambda * |w - w0|^2 (a sum of squares,
    as StyleCLIP) + keep_lambda * LPIPS(image, original image). Adam with the projector's learning-rate ramp;
    the network's stored noise. Returns (edited latents as NumPy, per-step mean CLIP loss)."""
    synthesis = Gs.components.synthesis.module
    device = Gs.device
    w0 = torch.as_tensor(np.asarray(dlatents, np.float32), device=device)
    w = w0.clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=initial_learning_rate)
    text_features = text_features.to(device)
    originals = None
    if keep_lambda:
        with torch.no_grad():
            originals = lpips.features((synthesis(w0, randomize_noise=False) + 1) * 127.5)
    history = []
    for step in range(num_steps):
        for group in opt.param_groups:
            group["lr"] = learning_rate_schedule(step / num_steps, initial_learning_rate)
        images = synthesis(w, randomize_noise=False)
        clip_loss = cosine_distance(clip.encode_generator_images(images), text_features)  # [N]
        loss = clip_loss + l2_lambda * (w - w0).square().sum(dim=[1, 2])
        if keep_lambda:
            loss = loss + keep_lambda * lpips.distance(lpips.features((images + 1) * 127.5), originals)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        history.append(float(clip_loss.detach().mean()))
        if progress is not None:
            progress.set_postfix(clip=f"{history[-1]:.4f}", refresh=False)
            progress.update(1)
    return w.detach().cpu().numpy(), history
