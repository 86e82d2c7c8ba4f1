"""Perceptual path length (PPL, StyleGAN, Karras et al. 2019) as StyleGAN2's perceptual_path_length.py computes it.

For random latent pairs (z0, z1) and t ~ U(0, 1) ('full') or t = 0 ('end'), the images at t and t + epsilon along
the path (slerp in Z, or lerp of the mapped W in W) are compared with LPIPS, divided by epsilon^2; the metric is the
mean after discarding values below the 1st and above the 99th percentile. The images are those of the full network
in float32 without truncation; both ends of a pair share one set of noise inputs and one label. With `crop` (all
but ppl2_wend) only the face region is kept (rows 3/8 to 7/8, columns 2/8 to 6/8); images larger than 256 pixels
are box-downsampled by the integer factor that brings them to 256 (computed after the crop, as the original does),
scaled from [-1, 1] to [0, 255] and grayscale repeated to RGB, then measured by training/lpips.py.
"""

import numpy as np
import torch

from metrics import metric_base


def slerp(a, b, t):
    """Spherical interpolation of vector batches [N, D] at t [N, 1], on the unit sphere, as the original."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    d = (a * b).sum(dim=-1, keepdim=True)
    p = t * torch.acos(d)
    c = b - d * a
    c = c / c.norm(dim=-1, keepdim=True)
    d = a * torch.cos(p) + c * torch.sin(p)
    return d / d.norm(dim=-1, keepdim=True)


def path_inputs(ctx, indices, sampling):
    """z0, z1 [N, latent_size], t [N], labels or None, noise inputs (list of [N, 1, r, r]) of PPL items."""
    items = []
    for index in indices:
        cpu, device = metric_base.item_generators(ctx, index)
        z = torch.randn([2, ctx.Gs.input_shape[1]], generator=cpu)
        t = torch.rand([], generator=cpu) * (1 if sampling == "full" else 0)
        items.append((z[0], z[1], t, metric_base.random_label(ctx, cpu), metric_base.random_noise(ctx, device)))
    return metric_base.stack_items(items, ctx.device)


def lpips_input(images, crop):
    """Generator images [N, C, H, W] in [-1, 1] -> LPIPS input: face crop, box-downsampled to 256, [0, 255], RGB."""
    if crop:
        assert images.shape[2] == images.shape[3], "the face crop needs square images"
        c = images.shape[2] // 8
        images = images[:, :, c * 3:c * 7, c * 2:c * 6]
    factor = images.shape[2] // 256
    if factor > 1:
        n, ch, h, w = images.shape
        images = images.reshape(n, ch, h // factor, factor, w // factor, factor).mean(dim=[3, 5])
    images = (images + 1) * (255 / 2)
    return images.repeat(1, 3, 1, 1) if images.shape[1] == 1 else images


def path_lengths(G, lpips, inputs, epsilon, space, crop):
    """LPIPS(image(t), image(t + epsilon)) / epsilon^2 [N] for inputs from path_inputs()."""
    z0, z1, t, labels, noise = inputs
    mapping, synthesis = G.components.mapping, G.components.synthesis
    if space == "w":
        w0, w1 = mapping.get_output_for(z0, labels), mapping.get_output_for(z1, labels)
        t = t.view(-1, 1, 1)
        w_e0, w_e1 = torch.lerp(w0, w1, t), torch.lerp(w0, w1, t + epsilon)
    else:
        t = t.view(-1, 1)
        w_e0 = mapping.get_output_for(slerp(z0, z1, t), labels)
        w_e1 = mapping.get_output_for(slerp(z0, z1, t + epsilon), labels)
    images = synthesis.get_output_for(torch.cat([w_e0, w_e1]), noise_inputs=[torch.cat([n, n]) for n in noise])
    images_e0, images_e1 = lpips_input(images.to(torch.float32), crop).chunk(2)
    return lpips(images_e0, images_e1) / epsilon ** 2


def filtered_mean(distances):
    """Mean of the distances between the 1st ('lower') and the 99th ('higher') percentile, inclusive."""
    distances = np.asarray(distances, np.float64)
    lo = np.percentile(distances, 1, method="lower")
    hi = np.percentile(distances, 99, method="higher")
    return float(distances[(lo <= distances) & (distances <= hi)].mean())


def compute_ppl(ctx, num_samples, epsilon, space, sampling, crop, batch_size):
    """PPL over `num_samples` paths in `space` ('z' or 'w') with `sampling` 'full' or 'end'. Returns {'': ppl} on
    process 0, None on the others."""
    assert space in ("z", "w") and sampling in ("full", "end")
    G = ctx.Gs
    if G.static_kwargs.get("num_fp16_res"):  # float32 throughout, as the original's Gs_overrides
        G = G.clone(num_fp16_res=0).to(ctx.device)
    lpips = ctx.net("lpips")
    out = metric_base.map_batches(
        ctx, num_samples, batch_size,
        lambda indices: dict(d=path_lengths(G, lpips, path_inputs(ctx, indices, sampling), epsilon, space, crop)),
        "PPL paths", unit="path")
    return None if out is None else {"": filtered_mean(out["d"])}
