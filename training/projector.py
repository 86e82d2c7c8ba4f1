"""Project images into the latent space of a StyleGAN2 generator.

NVIDIA's algorithm (Karras et al. 2020, Sec. 5; `projector.py` of the TensorFlow release): optimise one W vector,
tiled over all layers, together with the per-layer noise maps, so that the generated image matches the target under
the LPIPS distance (VGG16, images box-downsampled to at most 256x256). Gaussian noise added to W early on explores
the space, the learning rate ramps up then down along a cosine, and the noise maps are kept normalised and
penalised for spatial autocorrelation at every scale, so that they cannot carry the image themselves.

Options beyond the original: optimise W+ (one vector per layer, as in Image2StyleGAN) instead of W, add or use a
pixel MSE term, start from a given latent, and project a batch of images at once. Every image draws its random
numbers from its own generator seeded with `seed`, so its result does not depend on the batch it is in.

The class keeps the original's interface (`set_network`, `start`, `step`, `get_cur_step`, `get_images`,
`get_dlatents`, `get_noises`, hyper-parameters as attributes) so scripts written for the original run unchanged.
"""

import copy

import numpy as np
import torch
import torch.nn.functional as F

import dnnlib

SPACES = ("w", "w+")
LOSSES = ("lpips", "mse", "lpips+mse")


def dlatent_statistics(Gs, num_samples=10000, seed=123, batch_size=1000):
    """Mean W [dlatent_size] and the RMS distance of a W sample from it (a scalar), from `num_samples` mapped z.

    As in the original: z from np.random.RandomState(123); the spread is the square root of the summed squared
    deviations over all W dimensions, divided by the number of samples."""
    mapping = Gs.components.mapping
    rnd = np.random.RandomState(seed)
    z = rnd.randn(num_samples, *Gs.input_shape[1:])
    label_size = Gs.input_shapes[1][1]
    labels = None
    if label_size:  # a conditional network: average over uniformly drawn classes
        labels = np.eye(label_size, dtype=np.float32)[rnd.randint(label_size, size=num_samples)]
    w = np.concatenate([mapping.run(z[i:i + batch_size], None if labels is None else labels[i:i + batch_size])[:, 0]
                        for i in range(0, num_samples, batch_size)]).astype(np.float64)  # [N, dlatent_size]
    w_avg = w.mean(axis=0)
    w_std = (np.sum((w - w_avg) ** 2) / num_samples) ** 0.5
    return w_avg.astype(np.float32), float(w_std)


def learning_rate_schedule(t, initial_learning_rate=0.1, lr_rampup_length=0.05, lr_rampdown_length=0.25):
    """Learning rate at fraction t of the run: linear ramp-up, then a cosine ramp-down over the last part."""
    ramp = min(1.0, (1.0 - t) / lr_rampdown_length)
    ramp = 0.5 - 0.5 * np.cos(ramp * np.pi)
    return initial_learning_rate * ramp * min(1.0, t / lr_rampup_length)


def noise_regularization(noises):
    """Per-image sum over layers and scales of the squared autocorrelation of each noise map with itself shifted by
    one pixel (horizontally and vertically), down to 8x8 by 2x2 averaging. noises: [N, 1, r, r] each -> [N]."""
    reg = 0
    for v in noises:
        while True:
            reg = reg + v.mul(v.roll(1, dims=3)).mean(dim=[1, 2, 3]) ** 2
            reg = reg + v.mul(v.roll(1, dims=2)).mean(dim=[1, 2, 3]) ** 2
            if v.shape[2] <= 8:
                break
            v = F.avg_pool2d(v, 2)
    return reg


def downsample_for_lpips(images, size=256):
    """Images larger than `size` box-averaged by an integer factor (VGG16 works best near 224x224)."""
    if images.shape[2] > size:
        factor = images.shape[2] // size
        images = F.avg_pool2d(images, factor)
    return images


class Projector:
    """Finds the latent (and noise) that reproduces target images. See the module docstring.

    `fused_modconv` picks the synthesis network's modulated convolution: unfused by default, which gives the same
    images and is faster here, because the fused path's per-sample weights depend on W and so add a weight gradient
    to every layer's backward pass (bench/project.py, docs/performance.md)."""

    def __init__(self, lpips=None, space="w", loss="lpips", lpips_weight=1.0, mse_weight=1.0, seed=303,
                 fused_modconv=False, verbose=False):
        if space not in SPACES:
            raise dnnlib.util.UserError(f"unknown latent space '{space}': use one of {', '.join(SPACES)}")
        if loss not in LOSSES:
            raise dnnlib.util.UserError(f"unknown projection loss '{loss}': use one of {', '.join(LOSSES)}")
        # The original's hyper-parameters, as attributes so callers can change them before start().
        self.num_steps = 1000
        self.dlatent_avg_samples = 10000
        self.initial_learning_rate = 0.1
        self.initial_noise_factor = 0.05
        self.lr_rampdown_length = 0.25
        self.lr_rampup_length = 0.05
        self.noise_ramp_length = 0.75
        self.regularize_noise_weight = 1e5
        self.verbose = verbose

        self.space, self.loss = space, loss
        self.lpips_weight, self.mse_weight = lpips_weight, mse_weight
        self.seed, self.fused_modconv = seed, fused_modconv
        self._lpips = lpips
        self._Gs = None
        self._cur_step = None

    def _info(self, *args):
        if self.verbose:
            print("Projector:", *args)

    @property
    def uses_lpips(self):
        return self.loss in ("lpips", "lpips+mse")

    def set_network(self, Gs, minibatch_size=1):
        """Use generator Gs: compute its W statistics and prepare a private copy of its synthesis network.

        `minibatch_size` is accepted for the original's interface; start() takes any number of targets."""
        del minibatch_size
        self._Gs = Gs
        self._info(f"Finding W midpoint and stddev using {self.dlatent_avg_samples} samples...")
        w_avg, self._dlatent_std = dlatent_statistics(Gs, self.dlatent_avg_samples)
        self._info(f"std = {self._dlatent_std:g}")
        self._synthesis = copy.deepcopy(Gs.components.synthesis.module).eval().requires_grad_(False)
        self._device = Gs.device
        self._dlatent_avg = torch.as_tensor(w_avg, device=self._device)
        self._num_layers = self._synthesis.num_layers
        self._noise_shapes = self._synthesis.noise_shapes()
        if self.uses_lpips:
            if self._lpips is None:
                raise dnnlib.util.UserError("the LPIPS loss needs a VGG16 perceptual network: pass one to Projector "
                                            "(training.lpips.load_lpips()) or use loss='mse'")
            self._lpips = self._lpips.to(self._device).eval().requires_grad_(False)

    # ------------------------------------------------------------------------------------------------------------

    def start(self, target_images, init_dlatents=None):
        """Begin projecting target images [N, C, H, W] in [-1, 1] (NumPy or torch), optionally from given latents
        ([N, num_layers, dlatent_size] or [N, dlatent_size]; default: the mean W)."""
        assert self._Gs is not None, "call set_network() first"
        target = torch.as_tensor(np.asarray(target_images, dtype=np.float32), device=self._device)
        expected = list(self._Gs.output_shape[1:])
        if target.ndim != 4 or list(target.shape[1:]) != expected:
            raise dnnlib.util.UserError(f"target images have shape {list(target.shape)}, the network makes "
                                        f"[N, {', '.join(map(str, expected))}]")
        num = target.shape[0]
        self._target = target
        if self.uses_lpips:  # the target's LPIPS features, computed once
            self._target_features = self._lpips.features(downsample_for_lpips((target + 1) * (255 / 2)))
        self._generators = [torch.Generator().manual_seed(self.seed) for _ in range(num)]

        layers = self._num_layers if self.space == "w+" else 1
        self._dlatents = self._initial_dlatents(init_dlatents, num, layers).requires_grad_(True)
        self._noises = [torch.cat([torch.randn(shape, generator=g) for g in self._generators]).to(self._device)
                        .requires_grad_(True) for shape in self._noise_shapes]
        self._opt = torch.optim.Adam([self._dlatents] + self._noises, lr=self.initial_learning_rate,
                                     betas=(0.9, 0.999), eps=1e-8)
        self._cur_step = 0
        self.dist = self.loss_value = None

    def _initial_dlatents(self, init, num, layers):
        if init is None:
            return self._dlatent_avg.expand(num, layers, -1).clone()
        init = torch.as_tensor(np.asarray(init, dtype=np.float32), device=self._device)
        if init.ndim == 2:
            init = init[:, None]
        if init.ndim != 3 or init.shape[0] != num or init.shape[1] not in (1, self._num_layers) \
                or init.shape[2] != self._dlatent_avg.shape[0]:
            raise dnnlib.util.UserError(f"initial latents have shape {list(init.shape)}; expected [{num}, "
                                        f"{self._num_layers} or 1, {self._dlatent_avg.shape[0]}]")
        if layers == 1 and init.shape[1] > 1:
            if not torch.allclose(init, init[:, :1].expand_as(init)):
                raise dnnlib.util.UserError("the initial latent has a different W per layer (W+); project in 'w+' "
                                            "space to start from it")
            init = init[:, :1]
        return init.expand(num, layers, -1).clone()

    def _synthesize(self, dlatents):
        dlatents = dlatents.expand(-1, self._num_layers, -1)
        return self._synthesis(dlatents, noise_inputs=self._noises, fused_modconv=self.fused_modconv)

    def step(self):
        """One optimisation step. Returns the per-image distance [N] (LPIPS, or MSE for loss='mse')."""
        assert self._cur_step is not None, "call start() first"
        t = self._cur_step / self.num_steps
        noise_strength = self._dlatent_std * self.initial_noise_factor * \
            max(0.0, 1.0 - t / self.noise_ramp_length) ** 2
        lr = learning_rate_schedule(t, self.initial_learning_rate, self.lr_rampup_length, self.lr_rampdown_length)
        for group in self._opt.param_groups:
            group["lr"] = lr

        w_noise = torch.stack([torch.randn(self._dlatents.shape[1:], generator=g) for g in self._generators])
        images = self._synthesize(self._dlatents + w_noise.to(self._device) * noise_strength)

        loss = 0
        if self.uses_lpips:
            features = self._lpips.features(downsample_for_lpips((images + 1) * (255 / 2)))
            dist = self._lpips.distance(features, self._target_features)  # [N]
            loss = loss + self.lpips_weight * dist
        if self.loss != "lpips":
            mse = (images - self._target).square().mean(dim=[1, 2, 3])
            loss = loss + self.mse_weight * mse
            if self.loss == "mse":
                dist = mse
        loss = loss + noise_regularization(self._noises) * self.regularize_noise_weight

        self._opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        self._opt.step()
        with torch.no_grad():  # keep every noise map at zero mean and unit variance, per image
            for v in self._noises:
                v -= v.mean(dim=[1, 2, 3], keepdim=True)
                v /= v.square().mean(dim=[1, 2, 3], keepdim=True).sqrt()

        self._cur_step += 1
        self.dist, self.loss_value = dist.detach().cpu().numpy(), loss.detach().cpu().numpy()
        if self._cur_step == self.num_steps or self._cur_step % 10 == 0:
            self._info(f"{self._cur_step:<8d}{float(self.dist.mean()):<12g}{float(self.loss_value.mean()):<12g}")
        return self.dist

    def get_cur_step(self):
        return self._cur_step

    def get_dlatents(self):
        """The projected latents without exploration noise, [N, num_layers, dlatent_size] (W is tiled)."""
        return self._dlatents.detach().expand(-1, self._num_layers, -1).cpu().numpy()

    def get_noises(self):
        """The noise maps, one [N, 1, r, r] array per layer."""
        return [v.detach().cpu().numpy() for v in self._noises]

    @torch.no_grad()
    def get_images(self):
        """The current projections [N, C, H, W] in [-1, 1], without exploration noise."""
        return self._synthesize(self._dlatents).cpu().numpy()


# ----------------------------------------------------------------------------------------------------------------
# Latent files: `.npy` with the latent alone, `.npz` with the latent under 'w' (as stylegan2-ada-pytorch's
# projected_w.npz) and the noise maps under 'noise0', 'noise1', ...

LATENT_EXTENSIONS = (".npy", ".npz")


def save_latents(path_stem, dlatents, noises=None):
    """Write one image's latent [num_layers, dlatent_size] to `<stem>.npy` and, with its noise maps (one [1, 1, r, r]
    array per layer), to `<stem>.npz` as w [1, num_layers, dlatent_size]. Both written atomically."""
    dlatents = np.asarray(dlatents, dtype=np.float32)
    assert dlatents.ndim == 2, dlatents.shape
    with dnnlib.util.atomic_write(path_stem + ".npy") as f:
        np.save(f, dlatents)
    if noises is not None:
        arrays = {f"noise{i}": np.asarray(v, dtype=np.float32) for i, v in enumerate(noises)}
        with dnnlib.util.atomic_write(path_stem + ".npz") as f:
            np.savez(f, w=dlatents[np.newaxis], **arrays)


def load_latents(path, num_layers, dlatent_size):
    """Latents from a `.npy`/`.npz` file as ([N, num_layers, dlatent_size] float32, noise list or None).

    Accepted layouts: [dlatent_size] (one W), [num_layers, dlatent_size] (one W+, as projections are saved),
    [K, dlatent_size] with K != num_layers (K W vectors), [N, 1 or num_layers, dlatent_size]. An `.npz` holds the
    latent under 'w' (or 'dlatents') and optionally its noise maps 'noise0'...; noise maps go with one latent."""
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.ndarray):
            latents, noises = data, None
        else:
            with data:
                key = next((k for k in ("w", "dlatents", "latents") if k in data.files), None)
                if key is None:
                    raise dnnlib.util.UserError(f"{path} has no latent array: expected 'w' or 'dlatents', found "
                                                f"{', '.join(data.files) or 'nothing'}")
                latents = data[key]
                count = sum(1 for k in data.files if k.startswith("noise"))
                noises = [data[f"noise{i}"] for i in range(count)] if count else None
    except (OSError, ValueError, EOFError) as e:
        raise dnnlib.util.UserError(f"cannot read latents from {path}: {e}") from None

    latents = np.asarray(latents, dtype=np.float32)
    if latents.ndim == 1:
        latents = latents[np.newaxis, np.newaxis]
    elif latents.ndim == 2:
        latents = latents[np.newaxis] if latents.shape[0] == num_layers else latents[:, np.newaxis]
    if latents.ndim != 3 or latents.shape[1] not in (1, num_layers) or latents.shape[2] != dlatent_size:
        raise dnnlib.util.UserError(f"{path}: latents of shape {list(np.shape(latents))} do not fit this network "
                                    f"({num_layers} layers of {dlatent_size})")
    if noises is not None and latents.shape[0] != 1:
        raise dnnlib.util.UserError(f"{path}: noise maps are stored for one latent but the file has "
                                    f"{latents.shape[0]}")
    return np.ascontiguousarray(np.broadcast_to(latents, (latents.shape[0], num_layers, dlatent_size))), noises
