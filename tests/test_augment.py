"""Tests for training.augment (the ADA augmentation pipe) and dnnlib.ops.grid_sample_gradfix.

Each augmentation is checked against what it must do to an image (mirror,
rotate, shift, scale a smooth blob, shift brightness, preserve luma, ...),
with the probability p = 0, p = 1 and in between; the pipe and the
resampling op are checked for first and second derivatives.
"""


import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dnnlib.ops.grid_sample_gradfix import grid_sample
from training import augment
from training.augment import SYM2, SYM6, AugmentPipe, augpipe_specs, band_filters

GEOMETRIC = ('xflip', 'rotate90', 'xint', 'scale', 'rotate', 'aniso', 'xfrac')
COLOR = ('brightness', 'contrast', 'lumaflip', 'hue', 'saturation')


pytestmark = pytest.mark.usefixtures('single_thread')


def make_pipe(p=1.0, **kwargs):
    pipe = AugmentPipe(**kwargs)
    pipe.p.copy_(torch.as_tensor(p))
    return pipe


def noise_images(n=4, c=3, h=32, w=32, seed=0):
    """Uniform noise in [-1, 1]."""
    return torch.rand([n, c, h, w], generator=torch.Generator().manual_seed(seed)) * 2 - 1


def smooth_images(n=4, c=3, h=32, w=32, seed=0):
    """Low-frequency images in about [-1, 1], for which resampling is nearly exact.

    Not exact: the sym6 filter is not symmetric, and the half-pixel delay that
    the pipe assumes for it (as the original does) is 0.1 upsampled pixels
    off, so a mirrored image ends up about 0.1 pixel off: errors of a few
    percent on these images.
    """
    coarse = torch.rand([n, c, 4, 4], generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return F.interpolate(coarse, size=(h, w), mode='bicubic', align_corners=True)


def blob(h, w, cx, cy, sx, sy):
    """[1, 1, H, W] Gaussian blob at (cx, cy) with std (sx, sy), in pixel coordinates."""
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing='ij')
    return torch.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))[None, None]


def debug_normal(q):
    """stylegan2-ada's debug value for a standard normal draw at percentile q: erfinv(2q - 1)."""
    return torch.erfinv(torch.tensor(2 * q - 1, dtype=torch.float64)).item()


def max_err(a, b):
    return (a - b).abs().max().item()

# ----------------------------------------------------------------------------
# Constants and construction.


def test_augpipe_specs():
    blit = {'xflip', 'rotate90', 'xint'}
    geom = {'scale', 'rotate', 'aniso', 'xfrac'}
    color = set(COLOR)
    expected = {
        'blit': blit, 'geom': geom, 'color': color, 'filter': {'imgfilter'}, 'noise': {'noise'},
        'cutout': {'cutout'}, 'bg': blit | geom, 'bgc': blit | geom | color,
        'bgcf': blit | geom | color | {'imgfilter'}, 'bgcfn': blit | geom | color | {'imgfilter', 'noise'},
        'bgcfnc': blit | geom | color | {'imgfilter', 'noise', 'cutout'},
    }
    assert list(augpipe_specs) == list(expected)
    for name, keys in expected.items():
        assert augpipe_specs[name] == {k: 1 for k in keys}, name
        AugmentPipe(**augpipe_specs[name])


def test_defaults_and_p_buffer():
    pipe = AugmentPipe()
    defaults = dict(xint_max=0.125, scale_std=0.2, rotate_max=1, aniso_std=0.2, xfrac_std=0.125, brightness_std=0.2,
                    contrast_std=0.5, hue_max=1, saturation_std=1, imgfilter_bands=[1, 1, 1, 1], imgfilter_std=1,
                    noise_std=0.1, cutout_size=0.5)
    for name, value in defaults.items():
        assert getattr(pipe, name) == value, name
    for name in GEOMETRIC + COLOR + ('imgfilter', 'noise', 'cutout'):
        assert getattr(pipe, name) == 0, name
    assert list(pipe.state_dict()) == ['p']
    assert pipe.p.shape == () and pipe.p.dtype == torch.float32 and pipe.p.item() == 1
    pipe.p.copy_(torch.as_tensor(0.25))
    assert pipe.p.item() == 0.25
    assert 'xflip=1' in repr(AugmentPipe(**augpipe_specs['blit']))


@pytest.mark.parametrize('coeffs', [SYM2, SYM6], ids=['sym2', 'sym6'])
def test_wavelets_are_orthonormal(coeffs):
    """Orthonormal low-pass: sum sqrt(2), unit norm, orthogonal to its even shifts."""
    h = np.asarray(coeffs)
    assert np.isclose(h.sum(), np.sqrt(2), atol=1e-12)
    autocorr = np.correlate(h, h, mode='full')
    centre = h.size - 1
    assert np.isclose(autocorr[centre], 1, atol=1e-12)
    assert np.allclose(autocorr[centre + 2::2], 0, atol=1e-12)


def test_band_filters():
    bank = band_filters()
    assert bank.shape == (4, 43)
    impulse = np.zeros(43)
    impulse[21] = 1
    assert np.allclose(bank.sum(axis=0), impulse, atol=1e-12)
    assert np.allclose(bank, bank[:, ::-1], atol=1e-12)  # Zero phase.

    def response(omega):  # Real (zero-phase) frequency response of each band.
        return bank @ np.cos(omega * (np.arange(43) - 21))

    omegas = np.linspace(0, np.pi, 257)
    responses = np.stack([response(w) for w in omegas])
    assert responses.min() > -1e-9
    assert np.allclose(response(0), [1, 0, 0, 0], atol=1e-9)
    assert np.allclose(response(np.pi), [0, 0, 0, 1], atol=1e-9)
    # Each band dominates in its octave of the Nyquist frequency.
    for band, (lo, hi) in enumerate([(0, 1 / 8), (1 / 8, 1 / 4), (1 / 4, 1 / 2), (1 / 2, 1)]):
        inside = (omegas > np.pi * (lo + 0.02)) & (omegas < np.pi * (hi - 0.02))
        assert (responses[inside].argmax(axis=1) == band).all(), band


def test_reflect_pad_beyond_image_size():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    for pad in ([1, 2, 3, 0], [4, 9, 3, 7], [13, 0, 0, 11]):
        x0, x1, y0, y1 = pad
        expected = np.pad(x.numpy(), [(0, 0), (0, 0), (y0, y1), (x0, x1)], mode='reflect')
        assert np.array_equal(augment._reflect_pad(x, pad).numpy(), expected), pad

# ----------------------------------------------------------------------------
# Probability: p = 0 is the identity, p in between applies each op as often as it should.


@pytest.mark.parametrize('name', list(augpipe_specs))
def test_p0_is_exact_identity(name):
    pipe = make_pipe(0, **augpipe_specs[name])
    for x in (noise_images(), noise_images(c=1, h=24, w=40), noise_images(n=2).double()):
        x = torch.cat([x, -torch.zeros_like(x[:1])])  # -0.0 must stay -0.0.
        y = pipe(x)
        assert y.dtype == x.dtype and y.shape == x.shape
        bits = torch.int64 if x.dtype == torch.float64 else torch.int32
        assert torch.equal(y.view(bits), x.view(bits)), name


@pytest.mark.parametrize('kwargs, expected', [
    (dict(xflip=1), 0.25),                    # Half the chosen images keep their orientation.
    (dict(rotate90=1), 0.375),
    (dict(rotate=1), 0.5),                    # Either of the two rotations, with probability p overall.
    (dict(scale=1, aniso=1), 0.75),
    (dict(brightness=1), 0.5),
    (dict(lumaflip=1), 0.25),
    (dict(imgfilter=1), 1 - 0.5 ** 4),        # Each of the four bands with probability p.
    (dict(imgfilter=1, imgfilter_bands=[0, 1, 0, 0]), 0.5),
    (dict(noise=1), 0.5),
    (dict(cutout=1), 0.5),
    (dict(xflip=0.5, brightness=1), 1 - (1 - 0.125) * (1 - 0.5)),  # Multipliers scale p.
])
def test_probability_of_change(kwargs, expected):
    torch.manual_seed(1)
    x = noise_images(n=2000, h=4, w=4)
    y = make_pipe(0.5, **kwargs)(x)
    changed = (y != x).flatten(1).any(dim=1).float().mean().item()
    assert abs(changed - expected) < 0.04

# ----------------------------------------------------------------------------
# Pixel blitting and general geometric transformations.


def test_xflip():
    torch.manual_seed(0)
    x = smooth_images(n=16)
    y = make_pipe(xflip=1)(x)
    same = (y == x).flatten(1).all(dim=1)
    mirrored = ((y - x.flip(3)).flatten(1).abs().amax(dim=1) < 0.05)
    assert (same | mirrored).all() and same.any() and mirrored.any()
    assert not (same & mirrored).any()


def test_rotate90():
    torch.manual_seed(0)
    x = smooth_images(n=16)
    y = make_pipe(rotate90=1)(x)
    found = set()
    for i in range(len(x)):
        errs = [max_err(y[i], torch.rot90(x[i], k, dims=(1, 2))) for k in range(4)]
        k = int(np.argmin(errs))
        assert errs[k] < 0.05 and sorted(errs)[1] > 0.3
        assert (k == 0) == torch.equal(y[i], x[i])
        found.add(k)
    assert len(found) >= 3


def test_rotate90_debug_direction():
    x = smooth_images(n=1)
    assert max_err(make_pipe(rotate90=1)(x, debug_percentile=0.3), torch.rot90(x, 1, dims=(2, 3))) < 0.05


def test_xint_is_shift_with_reflect_padding():
    torch.manual_seed(0)
    x = noise_images(n=8)  # Integer shifts are exact even for noise.
    y = make_pipe(xint=1)(x)
    r = round(0.125 * 32)
    padded = F.pad(x, [r] * 4, mode='reflect')
    shifts = []
    for i in range(len(x)):
        errs = {(dx, dy): max_err(y[i], padded[i, :, r - dy:r - dy + 32, r - dx:r - dx + 32])
                for dx in range(-r, r + 1) for dy in range(-r, r + 1)}
        best = min(errs, key=errs.get)
        assert errs[best] < 1e-5
        shifts.append(best)
    assert len(set(shifts)) > 4
    # The debug percentile 0.9 shifts by round(0.1 * 32) = 3 pixels right and down.
    y = make_pipe(xint=1)(x, debug_percentile=0.9)
    assert max_err(y, F.pad(x, [3, 0, 3, 0], mode='reflect')[:, :, :32, :32]) < 1e-5


def test_identity_warp_is_exact():
    """The sym6 up/down filter pair reconstructs the image (the padding is large enough)."""
    x = noise_images(n=2, h=20, w=28)
    y = AugmentPipe()._warp(x, torch.eye(3).expand(2, 3, 3))
    assert max_err(y, x) < 1e-5


def test_rotate_quarter_turn():
    x = smooth_images(n=2, h=24, w=24)
    y = make_pipe(rotate=1)(x, debug_percentile=0.75)  # Rotation by +pi/2 (the second one stays off).
    assert max_err(y, torch.rot90(x, 1, dims=(2, 3))) < 0.05


def test_scale_aniso_xfrac_move_a_blob():
    h = w = 32
    c = (w - 1) / 2
    x = blob(h, w, c, c, 3, 3)
    s = 2 ** (0.2 * debug_normal(0.8))
    y = make_pipe(scale=1)(x, debug_percentile=0.8)
    assert max_err(y, blob(h, w, c, c, 3 * s, 3 * s)) < 0.01
    y = make_pipe(aniso=1)(x, debug_percentile=0.8)
    assert max_err(y, blob(h, w, c, c, 3 * s, 3 / s)) < 0.01
    t = 0.125 * debug_normal(0.55) * w  # About half a pixel.
    y = make_pipe(xfrac=1)(x, debug_percentile=0.55)
    assert max_err(y, blob(h, w, c + t, c + t, 3, 3)) < 0.01


def test_geometric_ops_on_gray_match_rgb():
    """Geometry acts on each channel alike: a gray image and its RGB copy warp the same way."""
    gray = smooth_images(n=4, c=1, h=24, w=40)
    torch.manual_seed(3)
    y_gray = make_pipe(**augpipe_specs['bg'])(gray)
    torch.manual_seed(3)
    y_rgb = make_pipe(**augpipe_specs['bg'])(gray.repeat(1, 3, 1, 1))
    assert y_gray.shape == gray.shape
    assert max_err(y_rgb, y_gray.repeat(1, 3, 1, 1)) < 1e-6
    assert max_err(y_gray, gray) > 0.1


@pytest.mark.parametrize('shape', [(3, 3, 32, 32), (2, 3, 24, 40), (2, 1, 17, 9), (2, 5, 8, 8)])
def test_shapes_and_dtypes(shape):
    """Everything at p = 1 on odd sizes; 5 channels: all but the color ops."""
    torch.manual_seed(0)
    spec = {k: v for k, v in augpipe_specs['bgcfnc'].items() if shape[1] in (1, 3) or k not in COLOR}
    pipe = make_pipe(**spec)
    for dtype in (torch.float32, torch.float64, torch.float16):
        x = noise_images(*shape).to(dtype)
        y = pipe(x)
        assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
        assert torch.isfinite(y).all() and not torch.equal(y, x)

# ----------------------------------------------------------------------------
# Color transformations.


def luma(x):
    return x.mean(dim=1, keepdim=True)


def test_brightness_and_contrast():
    torch.manual_seed(0)
    x = noise_images(n=8) * 0.25 + 0.75  # Away from zero, for ratios.
    d = make_pipe(brightness=1)(x) - x
    assert (d.flatten(1).amax(dim=1) - d.flatten(1).amin(dim=1)).max() < 1e-6  # One offset per image.
    assert d.flatten(1)[:, 0].abs().min() > 0
    r = make_pipe(contrast=1)(x) / x
    assert (r.flatten(1).amax(dim=1) - r.flatten(1).amin(dim=1)).max() < 1e-5  # One factor per image.
    assert (r.flatten(1)[:, 0] - 1).abs().min() > 0
    # The debug percentile sets the parameter to that quantile.
    b = 0.2 * debug_normal(0.8)
    assert max_err(make_pipe(brightness=1)(x, debug_percentile=0.8), x + b) < 1e-6
    c = 2 ** (0.5 * debug_normal(0.8))
    assert max_err(make_pipe(contrast=1)(x, debug_percentile=0.8), x * c) < 1e-6


def test_lumaflip():
    torch.manual_seed(0)
    x = noise_images(n=16)
    y = make_pipe(lumaflip=1)(x)
    same = (y == x).flatten(1).all(dim=1)
    flipped = (y - (x - 2 * luma(x))).flatten(1).abs().amax(dim=1) < 1e-5
    assert (same | flipped).all() and same.any() and flipped.any()


def test_hue_and_saturation_keep_luma():
    torch.manual_seed(0)
    x = noise_images(n=8)
    chroma = x - luma(x)
    y = make_pipe(hue=1)(x)
    assert max_err(luma(y), luma(x)) < 1e-5
    assert max_err((y - luma(y)).norm(dim=1), chroma.norm(dim=1)) < 1e-5  # A rotation about the luma axis.
    assert max_err(y, x) > 0.1
    y = make_pipe(saturation=1)(x)
    assert max_err(luma(y), luma(x)) < 1e-5
    s = (y - luma(y)).flatten(1) / chroma.flatten(1)
    assert (s.amax(dim=1) - s.amin(dim=1)).max() < 1e-3 and (s > 0).all()  # Chroma scaled per image.
    assert (s[:, 0] - 1).abs().max() > 0.1


def test_color_spec_changes_every_image():
    torch.manual_seed(0)
    x = noise_images(n=8)
    y = make_pipe(**augpipe_specs['color'])(x)
    assert y.shape == x.shape
    assert ((y - x).flatten(1).abs().amax(dim=1) > 1e-3).all()


def test_color_on_gray():
    x = noise_images(n=2, c=1)
    assert max_err(make_pipe(lumaflip=1)(x, debug_percentile=0.7), -x) < 1e-6
    b = 0.2 * debug_normal(0.3)
    assert max_err(make_pipe(brightness=1)(x, debug_percentile=0.3), x + b) < 1e-6
    assert torch.equal(make_pipe(hue=1, saturation=1)(x, debug_percentile=0.9), x)  # Gray has no hue.
    with pytest.raises(ValueError):
        make_pipe(brightness=1)(noise_images(c=2))

# ----------------------------------------------------------------------------
# Image-space filtering and corruptions.


def test_imgfilter_gains_dc_and_nyquist():
    """Boosting the top band scales a checkerboard by gain^2 (both axes) and DC by the normalisation."""
    h = w = 32
    checker = ((torch.arange(h)[:, None] + torch.arange(w)[None, :]) % 2 * 2 - 1).float()
    x = (0.5 + 0.25 * checker)[None, None].repeat(2, 3, 1, 1)
    g = 2 ** debug_normal(0.84)
    t = np.array([1, 1, 1, g])
    gains = t / np.sqrt((np.array([10, 1, 1, 1]) / 13 * t ** 2).sum())
    y = make_pipe(imgfilter=1, imgfilter_bands=[0, 0, 0, 1])(x, debug_percentile=0.84)
    expected = 0.5 * gains[0] ** 2 + 0.25 * checker * gains[3] ** 2
    assert max_err(y, expected.expand_as(y)) < 1e-5


def test_imgfilter_random_gains_keep_mean_level():
    torch.manual_seed(0)
    x = smooth_images(n=8)
    y = make_pipe(imgfilter=1)(x)
    assert y.shape == x.shape and max_err(y, x) > 0.01
    assert torch.isfinite(y).all() and y.abs().max() < 10
    y = make_pipe(imgfilter=1)(noise_images(n=2, h=8, w=8))  # Smaller than the filter: mirrored padding.
    assert y.shape == (2, 3, 8, 8)


def test_noise():
    torch.manual_seed(0)
    x = noise_images(n=4)
    sigma = 0.1 * debug_normal(0.5 + 0.6 / 2)  # erfinv(0.6), as the original.
    d = make_pipe(noise=1)(x, debug_percentile=0.6) - x
    assert abs(d.std().item() / sigma - 1) < 0.05 and abs(d.mean().item()) < 0.01
    d = make_pipe(noise=1)(x) - x
    stds = d.flatten(1).std(dim=1)
    assert (stds > 0).all() and stds.max() / stds.min() > 1.1  # One random strength per image.


def test_cutout():
    x = noise_images(n=2) * 0.5 + 1.5  # No zeros.
    y = make_pipe(cutout=1)(x, debug_percentile=0.5)  # Centre (0.5, 0.5), side 0.5.
    mask = torch.ones(32, 32)
    mask[8:24, 8:24] = 0
    assert torch.equal(y, x * mask)
    torch.manual_seed(0)
    y = make_pipe(cutout=1)(noise_images(n=16) * 0.5 + 1.5)
    for img in y:
        zero = (img == 0).all(dim=0)
        rows, cols = zero.any(dim=1), zero.any(dim=0)
        assert torch.equal(zero, rows[:, None] & cols[None, :])  # A rectangle.
        assert 8 <= rows.sum() <= 16 and 8 <= cols.sum() <= 16
        assert ((img == 0).all(dim=0) == (img == 0).any(dim=0)).all()  # Across all channels.

# ----------------------------------------------------------------------------
# Determinism.


@pytest.mark.parametrize('name', [name for name in augpipe_specs if 'noise' not in augpipe_specs[name]])
def test_debug_percentile_is_deterministic(name):
    """Whatever the seed (but the noise pattern, which stays random as in the original)."""
    pipe = make_pipe(0, **augpipe_specs[name])  # Debug mode ignores p.
    x = noise_images()
    torch.manual_seed(0)
    y1 = pipe(x, debug_percentile=0.5)
    torch.manual_seed(1)
    y2 = pipe(x, debug_percentile=0.5)
    assert torch.equal(y1, y2)


def test_same_seed_same_augmentation():
    pipe = make_pipe(**augpipe_specs['bgcfnc'])
    x = noise_images()
    torch.manual_seed(5)
    y1 = pipe(x)
    state = torch.get_rng_state()
    y2 = pipe(x)
    torch.manual_seed(5)
    assert torch.equal(pipe(x), y1)
    torch.set_rng_state(state)
    assert torch.equal(pipe(x), y2)
    assert not torch.equal(y1, y2)

# ----------------------------------------------------------------------------
# grid_sample_gradfix.


def test_grid_sample_matches_torch():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 6, requires_grad=True)
    grid = (torch.rand(2, 4, 7, 2) * 2.4 - 1.2).requires_grad_()  # Some points outside: zero padding.
    y = grid_sample(x, grid)
    y_ref = F.grid_sample(x, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    assert torch.equal(y, y_ref)
    dy = torch.randn_like(y)
    grads = torch.autograd.grad(y, [x, grid], dy)
    grads_ref = torch.autograd.grad(y_ref, [x, grid], dy)
    for g, g_ref in zip(grads, grads_ref):
        assert torch.allclose(g, g_ref, atol=1e-6)


def test_grid_sample_gradcheck():
    torch.manual_seed(0)
    x = torch.randn(2, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    grid = torch.rand(2, 3, 4, 2, dtype=torch.float64) * 2.4 - 1.2
    assert torch.autograd.gradcheck(grid_sample, (x, grid))
    assert torch.autograd.gradgradcheck(grid_sample, (x, grid))
    assert torch.autograd.gradcheck(grid_sample, (x, grid.clone().requires_grad_()))


def test_grid_sample_second_order_matches_torch():
    """Where torch has its own double backward of grid_sample, both agree."""
    torch.manual_seed(0)
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    grid = torch.rand(1, 3, 4, 2, dtype=torch.float64) * 2 - 1
    w = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)

    def penalty(sample):
        gx, = torch.autograd.grad((sample(x, grid) * w).square().sum(), x, create_graph=True)
        return torch.autograd.grad(gx.square().sum(), [x, w])

    ours = penalty(grid_sample)
    try:
        ref = penalty(lambda a, b: F.grid_sample(a, b, align_corners=False))
    except RuntimeError:
        pytest.skip('this torch has no double backward for grid_sample')
    for a, b in zip(ours, ref):
        assert torch.allclose(a, b, atol=1e-10)


def test_grid_sample_grid_is_first_order_only():
    x = torch.randn(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    grid = (torch.rand(1, 3, 3, 2, dtype=torch.float64) * 2 - 1).requires_grad_()
    gx, = torch.autograd.grad(grid_sample(x, grid).square().sum(), x, create_graph=True)
    with pytest.raises(NotImplementedError):
        torch.autograd.grad(gx.sum(), grid)

# ----------------------------------------------------------------------------
# Gradients through the whole pipe.


class TinyD(torch.nn.Module):
    def __init__(self, channels, dtype=torch.float32):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(4, channels, 3, 3, dtype=dtype) * 0.3)

    def forward(self, x):
        return F.softplus(F.conv2d(x, self.weight)).sum()


def test_r1_penalty_through_bgc():
    """R1: d/dD of |d D(augment(x)) / dx|^2, which differentiates through the resampling's gradient."""
    torch.manual_seed(0)
    D = TinyD(3)
    x = smooth_images(n=4).requires_grad_()
    pipe = make_pipe(**augpipe_specs['bgc'])
    gx, = torch.autograd.grad(D(pipe(x)), x, create_graph=True)
    gx.square().sum().backward()
    assert torch.isfinite(D.weight.grad).all() and D.weight.grad.abs().sum() > 0
    assert torch.isfinite(x.grad).all()


def seeded(fn, seed=0):
    """fn with the torch seed reset on each call, so the augmentation is fixed."""
    def wrapped(*args):
        torch.manual_seed(seed)
        return fn(*args)
    return wrapped


def test_pipe_gradcheck():
    torch.manual_seed(0)
    pipe = make_pipe(**augpipe_specs['bgcfnc'])
    x = noise_images(n=2, h=8, w=8).double().requires_grad_()
    assert torch.autograd.gradcheck(seeded(pipe), (x,), fast_mode=True)
    assert torch.autograd.gradgradcheck(seeded(pipe), (x,), fast_mode=True)


def test_r1_penalty_gradcheck():
    """The R1 penalty's gradient with respect to D's weights is right through the pipe."""
    torch.manual_seed(0)
    pipe = make_pipe(**augpipe_specs['bgcf'])
    x = smooth_images(n=2, h=12, w=12).double().requires_grad_()
    D = TinyD(3, dtype=torch.float64)

    def r1(weight):
        y = pipe(x)
        score = F.softplus(F.conv2d(y, weight)).sum()
        gx, = torch.autograd.grad(score, x, create_graph=True)
        return gx.square().sum()

    assert torch.autograd.gradcheck(seeded(r1), (D.weight.detach().clone().requires_grad_(),), fast_mode=True)
