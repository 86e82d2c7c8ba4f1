"""Differentiable discriminator augmentations of StyleGAN2-ADA.

`AugmentPipe` is the augmentation pipeline of Karras et al., "Training
Generative Adversarial Networks with Limited Data" (NeurIPS 2020), with the
parameters, defaults, probabilities and order of operations of NVIDIA's
stylegan2-ada-pytorch release. Stages, in order:

  1. geometric: x-flip, 90-degree rotation, integer translation (pixel
     blitting), isotropic scaling, rotation, anisotropic scaling, fractional
     translation; composed into one inverse transform per image and applied
     in one resampling step at 2x resolution with the orthogonal sym6 wavelet
     filter, reflect-padding whatever the warp reads outside the image;
  2. color: brightness, contrast, luma flip, hue rotation, saturation;
     composed into one affine color matrix per image;
  3. image-space filtering: random gains for four octave bands;
  4. corruptions: additive Gaussian noise, cutout.

Each augmentation is applied to each image independently with probability
`multiplier * p`, where `p` is the pipe's buffer that the training loop
adapts. An image that draws no augmentation of a stage leaves that stage
bit-exactly unchanged, so `p = 0` is the identity. All randomness comes
from torch's global RNG on the images' device. The pipe is differentiable
with respect to the images to any order (R1 regularisation differentiates
through the gradient): the resampling uses `grid_sample_gradfix`.
"""

import statistics

import numpy as np
import torch
import torch.nn.functional as F

from dnnlib.ops.grid_sample_gradfix import grid_sample
from dnnlib.ops.upfirdn2d import setup_filter, upfirdn2d

# Decomposition low-pass filters of two orthogonal Daubechies symlets, as
# PyWavelets lists them (`pywt.Wavelet(name).dec_lo`).
SYM2 = [-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025]
SYM6 = [0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148]

# The ADA paper's pipelines by name (train.py --augpipe): blit = pixel
# blitting, g = general geometric, c = color, f = image-space filtering,
# n = noise, c(utout) last; 'bgc' is the default.
_BLIT = dict(xflip=1, rotate90=1, xint=1)
_GEOM = dict(scale=1, rotate=1, aniso=1, xfrac=1)
_COLOR = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
augpipe_specs = {
    'blit':   dict(_BLIT),
    'geom':   dict(_GEOM),
    'color':  dict(_COLOR),
    'filter': dict(imgfilter=1),
    'noise':  dict(noise=1),
    'cutout': dict(cutout=1),
    'bg':     dict(**_BLIT, **_GEOM),
    'bgc':    dict(**_BLIT, **_GEOM, **_COLOR),
    'bgcf':   dict(**_BLIT, **_GEOM, **_COLOR, imgfilter=1),
    'bgcfn':  dict(**_BLIT, **_GEOM, **_COLOR, imgfilter=1, noise=1),
    'bgcfnc': dict(**_BLIT, **_GEOM, **_COLOR, imgfilter=1, noise=1, cutout=1),
}

# Relative power of the four filter bands (lowest first) in a typical image:
# a 1/f spectrum. Band gains are normalised to keep this total power.
_BAND_POWER = [10 / 13, 1 / 13, 1 / 13, 1 / 13]

# ----------------------------------------------------------------------------


def band_filters():
    """[4, 43] float64 zero-phase FIR filters splitting a 1-D spectrum into octaves.

    Rows, lowest band first, pass 0-1/8, 1/8-1/4, 1/4-1/2 and 1/2-1 of the
    Nyquist frequency; their responses are non-negative and the rows sum to
    a centred unit impulse. Built from the sym2 quadrature mirror pair:
    lo2 = H(z)H(1/z)/2 and hi2 = H(-z)H(-1/z)/2 sum to an impulse, and each
    level dilates the bank built so far (one octave down), low-passes it
    with lo2 and adds hi2 as the new top band.
    """
    lo = np.asarray(SYM2)
    hi = lo * (-1.0) ** np.arange(lo.size)
    lo2 = np.convolve(lo, lo[::-1]) / 2
    hi2 = np.convolve(hi, hi[::-1]) / 2
    bank = np.ones([1, 1])
    for _ in range(3):
        dilated = np.zeros([bank.shape[0], bank.shape[1] * 2 - 1])
        dilated[:, ::2] = bank
        bank = np.stack([np.convolve(row, lo2) for row in dilated])
        top = np.zeros([1, bank.shape[1]])
        start = (bank.shape[1] - hi2.size) // 2
        top[0, start:start + hi2.size] = hi2
        bank = np.concatenate([bank, top])
    return bank


_BAND_FILTERS = band_filters()
_band_filter_cache = {}  # (device, dtype) -> tensor of _BAND_FILTERS.


def _band_filter_tensor(device, dtype):
    key = (device, dtype)
    if key not in _band_filter_cache:
        with torch.inference_mode(False):  # usable by autograd even when first made under inference_mode
            _band_filter_cache[key] = torch.as_tensor(_BAND_FILTERS, dtype=dtype, device=device)
    return _band_filter_cache[key]

# ----------------------------------------------------------------------------
# Batched homogeneous transforms. Entries are numbers or [N] tensors; `like`
# is an [N] tensor (or [1] for a constant matrix) giving N, dtype and device.


def _matrix(rows, like):
    """[N, R, C] matrices from R rows of C entries."""
    entries = [e if isinstance(e, torch.Tensor) else torch.full_like(like, e) for row in rows for e in row]
    return torch.stack(entries, dim=1).reshape(like.shape[0], len(rows), len(rows[0]))


def _translate2d(tx, ty, like):
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], like)


def _scale2d(sx, sy, like):
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], like)


def _rotate2d(cos, sin, like):
    return _matrix([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]], like)


def _reflect_pad(x, pad):
    """Pad NCHW `x` by (x0, x1, y0, y1) with its mirror image (edge pixel not repeated).

    Unlike F.pad(mode='reflect') a pad may exceed the image size; the image is
    then mirrored repeatedly, as a periodic symmetric extension.
    """
    x0, x1, y0, y1 = pad
    h, w = x.shape[2], x.shape[3]
    if max(x0, x1) < w and max(y0, y1) < h:
        return F.pad(x, [x0, x1, y0, y1], mode='reflect')
    x = x.index_select(3, _mirror_indices(w, x0, x1, x.device))
    return x.index_select(2, _mirror_indices(h, y0, y1, x.device))


def _mirror_indices(size, before, after, device):
    """Source index of each pixel of a row padded by `before` and `after` (periodic symmetric extension)."""
    idx = torch.arange(-before, size + after, device=device)
    if size == 1:
        return torch.zeros_like(idx)
    period = 2 * (size - 1)
    idx = idx.remainder(period)
    return torch.where(idx < size, idx, period - idx)

# ----------------------------------------------------------------------------


class _Sampler:
    """Per-image augmentation parameters drawn from torch's global RNG.

    Each method draws values for N images, then one uniform number per image
    that decides whether the image gets the augmentation (probability
    `prob`); the others get the neutral value (0). Values are drawn in
    float32 whatever the compute dtype, so the random stream does not depend
    on it. With `debug_percentile` q set, every image gets the original's
    debug value instead (the draws still happen): the q-quantile of a uniform
    value, erfinv(2q - 1) x std for a normal one (stylegan2-ada's choice: the
    quantile of a normal of std / sqrt(2)).
    """

    def __init__(self, n, device, dtype, debug_percentile):
        self.n, self.device, self.dtype = n, device, dtype
        self.q = debug_percentile

    def _gate(self, value, prob, debug_value):
        """`value` where the image draws the augmentation, else 0; debug_value(q) in debug mode."""
        chosen = torch.rand([self.n] + [1] * (value.ndim - 1), device=self.device) < prob
        if self.q is not None:
            value = torch.full_like(value, debug_value(self.q))
        else:
            value = torch.where(chosen, value, torch.zeros_like(value))
        return value.to(self.dtype)

    def integer(self, k, prob):
        """Uniform on {0, ..., k-1}, as floats."""
        value = torch.floor(torch.rand([self.n], device=self.device) * k)
        return self._gate(value, prob, lambda q: min(np.floor(q * k), k - 1))

    def uniform(self, half_range, prob, shape=(), debug=True):
        """Uniform on [-half_range, half_range]; `debug=False`: 0 in debug mode."""
        value = (torch.rand([self.n, *shape], device=self.device) * 2 - 1) * half_range
        return self._gate(value, prob, lambda q: (q * 2 - 1) * half_range if debug else 0)

    def normal(self, std, prob, shape=(), debug=True):
        """Normal(0, std); `debug=False`: 0 in debug mode."""
        value = torch.randn([self.n, *shape], device=self.device) * std
        return self._gate(value, prob, lambda q: _debug_normal(q) * std if debug else 0)

    def half_normal(self, std, prob):
        """|Normal(0, std)|."""
        value = torch.randn([self.n], device=self.device).abs() * std
        return self._gate(value, prob, lambda q: _debug_normal((1 + q) / 2) * std)

    def flag(self, prob):
        """1 where the image draws the augmentation, else 0 (1 in debug mode)."""
        return self._gate(torch.ones([self.n], device=self.device), prob, lambda q: 1)

    def unit(self, shape=()):
        """Uniform on [0, 1] for every image, no gate (q in debug mode)."""
        value = torch.rand([self.n, *shape], device=self.device)
        return (value if self.q is None else torch.full_like(value, self.q)).to(self.dtype)


def _debug_normal(q):
    """The original's debug value for a standard normal draw: erfinv(2q - 1), the q-quantile of N(0, 1/2)."""
    return statistics.NormalDist().inv_cdf(q) / np.sqrt(2)

# ----------------------------------------------------------------------------


class AugmentPipe(torch.nn.Module):
    """The ADA augmentation pipeline; see the module docstring.

    An argument named after an augmentation is its probability multiplier
    (0 disables it, 1 applies it with probability p); the `*_max`, `*_std`,
    `*_size` and `imgfilter_bands` arguments set strengths, with the paper's
    defaults. `augpipe_specs[name]` gives the multipliers of the paper's
    named pipelines. `p` (a float32 scalar buffer, the module's only state,
    initially 1) is the overall augmentation probability; the training loop
    sets it with `pipe.p.copy_(torch.as_tensor(new_p))`.
    """

    def __init__(self,
                 xflip=0, rotate90=0, xint=0, xint_max=0.125,
                 scale=0, rotate=0, aniso=0, xfrac=0, scale_std=0.2, rotate_max=1, aniso_std=0.2, xfrac_std=0.125,
                 brightness=0, contrast=0, lumaflip=0, hue=0, saturation=0,
                 brightness_std=0.2, contrast_std=0.5, hue_max=1, saturation_std=1,
                 imgfilter=0, imgfilter_bands=(1, 1, 1, 1), imgfilter_std=1,
                 noise=0, cutout=0, noise_std=0.1, cutout_size=0.5):
        super().__init__()
        self.register_buffer('p', torch.ones([]))

        # Pixel blitting.
        self.xflip = float(xflip)                # Mirror left-right.
        self.rotate90 = float(rotate90)          # Rotate by a multiple of 90 degrees.
        self.xint = float(xint)                  # Translate by whole pixels, U(-xint_max, xint_max) x image size.
        self.xint_max = float(xint_max)

        # General geometric transformations.
        self.scale = float(scale)                # Isotropic scaling by 2^N(0, scale_std).
        self.rotate = float(rotate)              # Rotation by U(-rotate_max, rotate_max) half-turns.
        self.aniso = float(aniso)                # Stretch x by 2^N(0, aniso_std), squeeze y by the same.
        self.xfrac = float(xfrac)                # Translation by N(0, xfrac_std) times the image size.
        self.scale_std = float(scale_std)
        self.rotate_max = float(rotate_max)
        self.aniso_std = float(aniso_std)
        self.xfrac_std = float(xfrac_std)

        # Color transformations.
        self.brightness = float(brightness)      # Add N(0, brightness_std) to every channel.
        self.contrast = float(contrast)          # Multiply by 2^N(0, contrast_std).
        self.lumaflip = float(lumaflip)          # Negate the luma component (mean of RGB), with prob. 1/2.
        self.hue = float(hue)                    # Rotate about the luma axis by U(-hue_max, hue_max) half-turns.
        self.saturation = float(saturation)      # Scale the chroma (RGB minus luma) by 2^N(0, saturation_std).
        self.brightness_std = float(brightness_std)
        self.contrast_std = float(contrast_std)
        self.hue_max = float(hue_max)
        self.saturation_std = float(saturation_std)

        # Image-space filtering.
        self.imgfilter = float(imgfilter)        # Scale each octave band by 2^N(0, imgfilter_std) ...
        self.imgfilter_bands = [float(b) for b in imgfilter_bands]  # ... with its own multiplier, lowest first.
        self.imgfilter_std = float(imgfilter_std)
        assert len(self.imgfilter_bands) == _BAND_FILTERS.shape[0]

        # Image-space corruptions.
        self.noise = float(noise)                # Add Gaussian noise whose std is |N(0, noise_std)|.
        self.cutout = float(cutout)              # Zero a rectangle of cutout_size x the image size, centre U(0, 1).
        self.noise_std = float(noise_std)
        self.cutout_size = float(cutout_size)

    def extra_repr(self):
        names = ['xflip', 'rotate90', 'xint', 'scale', 'rotate', 'aniso', 'xfrac', 'brightness', 'contrast',
                 'lumaflip', 'hue', 'saturation', 'imgfilter', 'noise', 'cutout']
        return ', '.join(f'{name}={getattr(self, name):g}' for name in names if getattr(self, name) != 0)

    def forward(self, images, debug_percentile=None):
        """Augment float NCHW `images`; returns a tensor of the same shape, dtype and device.

        Geometric ops, filtering and corruptions take any channel count;
        color ops need 1 (gray: hue and saturation are skipped) or 3 (RGB).
        `debug_percentile` in (0, 1): apply every enabled augmentation to every
        image, whatever p, with its parameters at the original's debug values
        for that percentile (the second rotation then stays off); the result is
        deterministic but for the noise pattern. Computes in float32 (float64
        for float64 input).
        """
        assert isinstance(images, torch.Tensor) and images.ndim == 4 and images.is_floating_point()
        if debug_percentile is not None:
            debug_percentile = float(debug_percentile)
            assert 0 < debug_percentile < 1, 'debug_percentile must be in (0, 1)'
        n = images.shape[0]
        dtype = torch.float64 if images.dtype == torch.float64 else torch.float32
        sampler = _Sampler(n, images.device, dtype, debug_percentile)
        p = self.p.to(device=images.device, dtype=torch.float32)

        x = images.to(dtype)
        x = self._geometric(x, sampler, p)
        x = self._color(x, sampler, p)
        x = self._filter(x, sampler, p)
        x = self._corruptions(x, sampler, p)
        return x.to(images.dtype)

    # ------------------------------------------------------------------------

    def _geometric(self, x, sampler, p):
        """Compose the inverse geometric transform per image, then resample once."""
        n, _, h, w = x.shape
        like = torch.zeros([n], device=x.device, dtype=x.dtype)
        G_inv = None  # [N, 3, 3]: output pixel -> input pixel, centred pixel coordinates.

        def then(m):
            nonlocal G_inv
            G_inv = m if G_inv is None else G_inv @ m

        if self.xflip > 0:
            i = sampler.integer(2, self.xflip * p)
            then(_scale2d(1 - 2 * i, 1, like))
        if self.rotate90 > 0:
            k = sampler.integer(4, self.rotate90 * p).long()
            cos = torch.tensor([1, 0, -1, 0], device=x.device, dtype=x.dtype)[k]  # Exact at quarter turns.
            sin = torch.tensor([0, 1, 0, -1], device=x.device, dtype=x.dtype)[k]
            then(_rotate2d(cos, sin, like))
        if self.xint > 0:
            t = sampler.uniform(self.xint_max, self.xint * p, shape=[2])
            then(_translate2d(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h), like))
        if self.scale > 0:
            s = torch.exp2(sampler.normal(self.scale_std, self.scale * p))
            then(_scale2d(1 / s, 1 / s, like))
        # Rotate before and after the anisotropic scaling, each with probability
        # p_rot, so that at least one of them happens with probability rotate * p.
        p_rot = 1 - torch.sqrt((1 - self.rotate * p).clamp(0, 1))
        if self.rotate > 0:
            theta = sampler.uniform(np.pi * self.rotate_max, p_rot)
            then(_rotate2d(torch.cos(theta), torch.sin(theta), like))
        if self.aniso > 0:
            s = torch.exp2(sampler.normal(self.aniso_std, self.aniso * p))
            then(_scale2d(1 / s, s, like))
        if self.rotate > 0:
            theta = sampler.uniform(np.pi * self.rotate_max, p_rot, debug=False)
            then(_rotate2d(torch.cos(theta), torch.sin(theta), like))
        if self.xfrac > 0:
            t = sampler.normal(self.xfrac_std, self.xfrac * p, shape=[2])
            then(_translate2d(-t[:, 0] * w, -t[:, 1] * h, like))

        if G_inv is None:
            return x
        eye = torch.eye(3, device=x.device, dtype=x.dtype)
        active = (G_inv != eye).any(dim=2).any(dim=1)
        if not bool(active.any()):
            return x
        warped = self._warp(x, G_inv)
        return torch.where(active.reshape(n, 1, 1, 1), warped, x)

    def _warp(self, x, G_inv):
        """Resample NCHW `x` by the inverse transforms G_inv [N, 3, 3] (centred pixel coordinates).

        Reflect-pad the image by what the warp reads beyond its edges (at most
        the image size less one), upsample 2x with the sym6 low-pass, sample
        bilinearly, then filter with the time-reversed sym6 and downsample 2x.
        The filter pair is orthogonal, so an identity warp returns the input.
        """
        n, c, h, w = x.shape
        one = torch.ones([1], device=x.device, dtype=x.dtype)
        f = setup_filter(SYM6, device=x.device, dtype=x.dtype)
        taps = f.shape[0]
        border = taps // 4  # Input pixels kept around the output for the down-sampling filter.

        # Where the output corners read from, hence how much to pad on each side.
        cx, cy = (w - 1) / 2, (h - 1) / 2
        corners = torch.tensor([[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1, 1, 1, 1]], device=x.device, dtype=x.dtype)
        reach = (G_inv @ corners)[:, :2, :]                                 # [N, xy, corner]
        reach = torch.cat([-reach, reach], dim=1).amax(dim=2).amax(dim=0)  # left, top, right, bottom
        margin = reach + torch.tensor([2 * border - cx, 2 * border - cy] * 2, device=x.device, dtype=x.dtype)
        margin = torch.minimum(margin.clamp(min=0), torch.tensor([w - 1, h - 1] * 2, device=x.device, dtype=x.dtype))
        mx0, my0, mx1, my1 = [int(v) for v in margin.ceil().tolist()]
        x = F.pad(x, [mx0, mx1, my0, my1], mode='reflect')
        G_inv = _translate2d((mx0 - mx1) / 2, (my0 - my1) / 2, one) @ G_inv

        # Upsample 2x and move the transform to the upsampled grid. sym6 is not
        # symmetric: as in the original, its delay is taken as half an
        # upsampled pixel (its true low-frequency delay is about 0.4), so a
        # mirrored image lands about 0.1 pixel off (see the tests).
        x = upfirdn2d(x, f, up=2, padding=[(taps + 1) // 2, (taps - 2) // 2] * 2, gain=4)
        G_inv = _scale2d(2, 2, one) @ G_inv @ _scale2d(0.5, 0.5, one)
        G_inv = _translate2d(-0.5, -0.5, one) @ G_inv @ _translate2d(0.5, 0.5, one)

        # Sample an output of (image + border) at 2x, in grid_sample's [-1, 1] coordinates.
        out_h, out_w = (h + 2 * border) * 2, (w + 2 * border) * 2
        G_inv = _scale2d(2 / x.shape[3], 2 / x.shape[2], one) @ G_inv @ _scale2d(out_w / 2, out_h / 2, one)
        grid = F.affine_grid(G_inv[:, :2, :], [n, c, out_h, out_w], align_corners=False)
        x = grid_sample(x, grid)

        # Downsample 2x and crop the border.
        crop = [-2 * border + (taps - 1) // 2, -2 * border + (taps - 2) // 2] * 2
        x = upfirdn2d(x, f, down=2, padding=crop, flip_filter=True)
        assert x.shape == (n, c, h, w)
        return x

    # ------------------------------------------------------------------------

    def _color(self, x, sampler, p):
        """Compose an affine color transform C [N, 4, 4] per image, then apply it."""
        n, c, h, w = x.shape
        enabled = [self.brightness, self.contrast, self.lumaflip] + ([self.hue, self.saturation] if c > 1 else [])
        if not any(m > 0 for m in enabled):
            return x
        if c not in (1, 3):
            raise ValueError(f'color augmentations need 1 or 3 channels, got {c}')

        eye = torch.eye(4, device=x.device, dtype=x.dtype)
        rgb = torch.diag(torch.tensor([1, 1, 1, 0], device=x.device, dtype=x.dtype))
        v = torch.tensor([1, 1, 1, 0], device=x.device, dtype=x.dtype) / np.sqrt(3)  # Luma axis.
        luma = torch.outer(v, v)  # Projection onto the luma axis.
        shift = torch.zeros([4, 4], device=x.device, dtype=x.dtype)
        shift[:3, 3] = 1  # Adds the same offset to R, G and B.
        C = eye.expand(n, 4, 4)

        def per_image(t):
            return t.reshape(n, 1, 1)

        if self.brightness > 0:
            b = sampler.normal(self.brightness_std, self.brightness * p)
            C = (eye + per_image(b) * shift) @ C
        if self.contrast > 0:
            s = torch.exp2(sampler.normal(self.contrast_std, self.contrast * p))
            C = (eye + per_image(s - 1) * rgb) @ C
        if self.lumaflip > 0:
            i = sampler.integer(2, self.lumaflip * p)
            C = (eye - 2 * per_image(i) * luma) @ C  # Householder reflection across the chroma plane.
        if self.hue > 0 and c > 1:
            theta = sampler.uniform(np.pi * self.hue_max, self.hue * p)
            cross = torch.tensor([[0, -1, 1, 0], [1, 0, -1, 0], [-1, 1, 0, 0], [0, 0, 0, 0]],
                                 device=x.device, dtype=x.dtype) / np.sqrt(3)  # v x (.)
            cos, sin = per_image(torch.cos(theta)), per_image(torch.sin(theta))
            C = (eye - rgb + cos * rgb + sin * cross + (1 - cos) * luma) @ C  # Rodrigues' rotation about v.
        if self.saturation > 0 and c > 1:
            s = torch.exp2(sampler.normal(self.saturation_std, self.saturation * p))
            C = (eye + per_image(s - 1) * (rgb - luma)) @ C

        active = (C != eye).any(dim=2).any(dim=1)
        if not bool(active.any()):
            return x
        pixels = x.reshape(n, c, h * w)
        if c == 3:
            pixels = C[:, :3, :3] @ pixels + C[:, :3, 3:]
        else:  # Gray g acts as RGB (g, g, g); the result is the mean of the transformed RGB.
            M = C[:, :3, :].mean(dim=1)  # [N, 4]
            pixels = pixels * M[:, :3].sum(dim=1).reshape(n, 1, 1) + M[:, 3:].reshape(n, 1, 1)
        return torch.where(active.reshape(n, 1, 1, 1), pixels.reshape(n, c, h, w), x)

    # ------------------------------------------------------------------------

    def _filter(self, x, sampler, p):
        """Scale the four octave bands by random gains, keeping the expected power."""
        if self.imgfilter <= 0:
            return x
        n, c, h, w = x.shape
        bank = _band_filter_tensor(x.device, x.dtype)                             # [band, tap]
        power = torch.tensor(_BAND_POWER, device=x.device, dtype=x.dtype)
        gains = torch.ones([n, bank.shape[0]], device=x.device, dtype=x.dtype)
        active = torch.zeros([n], device=x.device, dtype=torch.bool)
        for band, strength in enumerate(self.imgfilter_bands):
            g = torch.exp2(sampler.normal(self.imgfilter_std, self.imgfilter * p * strength, debug=strength > 0))
            t = torch.ones_like(gains)
            t[:, band] = g
            gains = gains * t / (power * t.square()).sum(dim=1, keepdim=True).sqrt()
            active = active | (g != 1)
        if not bool(active.any()):
            return x

        # One zero-phase filter per image, applied separably to every channel.
        kernel = (gains @ bank).repeat_interleave(c, dim=0)                       # [N * C, tap]
        half = bank.shape[1] // 2
        y = x.reshape(1, n * c, h, w)
        y = F.conv2d(_reflect_pad(y, [half, half, 0, 0]), kernel.reshape(n * c, 1, 1, -1), groups=n * c)
        y = F.conv2d(_reflect_pad(y, [0, 0, half, half]), kernel.reshape(n * c, 1, -1, 1), groups=n * c)
        return torch.where(active.reshape(n, 1, 1, 1), y.reshape(n, c, h, w), x)

    # ------------------------------------------------------------------------

    def _corruptions(self, x, sampler, p):
        """Additive Gaussian noise, then cutout."""
        n, c, h, w = x.shape
        if self.noise > 0:
            sigma = sampler.half_normal(self.noise_std, self.noise * p).reshape(n, 1, 1, 1)
            pattern = torch.randn([n, c, h, w], device=x.device)  # random in debug mode too, as the original
            x = torch.where(sigma > 0, x + pattern.to(x.dtype) * sigma, x)

        if self.cutout > 0:
            size = sampler.flag(self.cutout * p) * self.cutout_size              # [N]; 0 where off.
            centre = sampler.unit([2])                                          # [N, xy]
            px = (torch.arange(w, device=x.device, dtype=x.dtype) + 0.5) / w   # Pixel centres in (0, 1).
            py = (torch.arange(h, device=x.device, dtype=x.dtype) + 0.5) / h
            outside_x = (px.reshape(1, w) - centre[:, 0:1]).abs() >= size.reshape(n, 1) / 2  # [N, W]
            outside_y = (py.reshape(1, h) - centre[:, 1:2]).abs() >= size.reshape(n, 1) / 2  # [N, H]
            keep = outside_x.reshape(n, 1, 1, w) | outside_y.reshape(n, 1, h, 1)
            x = x * keep.to(x.dtype)
        return x
