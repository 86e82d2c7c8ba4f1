"""StyleGAN generator and discriminator (Karras et al., "A Style-Based Generator Architecture for Generative
Adversarial Networks", 2019): the build functions G_style, G_mapping, G_synthesis and D_basic of NVIDIA's
`training/networks_stylegan.py` (NVlabs/stylegan; StyleGAN2's config-a uses the same file).

Same keyword arguments, variable names, variable shapes (TensorFlow layout: conv [k, k, in, out], dense [in, out])
and arithmetic as the original, so that the official StyleGAN pickles (`karras2019stylegan-*.pkl`) and StyleGAN2's
config-a pickles load into these modules and give the same images. Each TensorFlow variable scope is a submodule of
the same name ('4x4/Const', '8x8/Conv0_up', 'ToRGB_lod0', ...).

Differences from StyleGAN2 that matter for the numbers: the activation gain sqrt(2) is in the weights, not after the
activation (so StyleGAN's G_mapping is not StyleGAN2's, although both are named 'G_mapping' with the same
variables); styles act through AdaIN (instance norm, then x * (scale + 1) + bias from a `StyleMod` dense layer);
noise has a per-channel `Noise/weight`; resampling is nearest-neighbour with a [1, 2, 1] blur, and at 128x128 and
above the upsampling (downsampling) is fused into a transposed (strided) convolution.

Progressive growing: the level of detail comes from the `lod` variable (0 = full resolution; a fraction blends the
two adjacent levels; the image always has the full resolution). structure='recursive' (the original's choice at run
time) and 'linear' compute the same images; 'linear' clamps the blend factor, which only matters for a lod outside
[0, log2(resolution) - 2]; 'fixed' ignores lod and has only the full-resolution ToRGB/FromRGB.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dnnlib.ops.bias_act import bias_act
from dnnlib.ops.upfirdn2d import conv2d, downsample_2d, setup_filter, upfirdn2d, upsample_2d
from dnnlib.tflib.network import Network, register_build_func
from training.networks_stylegan2 import LabelEmbedding, make_nf, minibatch_stddev, new_weight

# The original's activations, and the gain that the weights of a layer followed by one take.
_ACTIVATIONS = {"relu": np.sqrt(2), "lrelu": np.sqrt(2)}
_STRUCTURES = ("auto", "fixed", "linear", "recursive")


def _check_args(resolution, structure, nonlinearity):
    resolution_log2 = int(np.log2(resolution))
    assert resolution == 2 ** resolution_log2 and resolution >= 4, "resolution must be a power of two >= 4"
    assert structure in _STRUCTURES, f"unknown structure '{structure}'"
    assert nonlinearity in _ACTIVATIONS, f"unknown nonlinearity '{nonlinearity}'"
    return resolution_log2


# ----------------------------------------------------------------------------------------------------------------
# Resampling, as the original's blur2d, upscale2d, downscale2d, upscale2d_conv2d and conv2d_downscale2d.

def blur2d(x, f):
    """Depthwise 'SAME' correlation with the normalised filter f (1-D taps mean outer(f, f)); f=None: no blur."""
    if not f:
        return x
    f = setup_filter(f, device=x.device)
    p0, p1 = (f.shape[0] - 1) // 2, (f.shape[0] - 1) - (f.shape[0] - 1) // 2
    q0, q1 = (f.shape[1] - 1) // 2, (f.shape[1] - 1) - (f.shape[1] - 1) // 2
    return upfirdn2d(x, f, padding=(q0, q1, p0, p1), flip_filter=True)


def upscale2d(x, factor=2):
    """Nearest-neighbour upsampling (the original tiles each pixel)."""
    return x if factor == 1 else upsample_2d(x, factor=factor)


def downscale2d(x, factor=2):
    """Average pooling over factor x factor blocks."""
    return x if factor == 1 else downsample_2d(x, factor=factor)


def _fuse_kernel(w):
    """[k, k, ...] -> [k + 1, k + 1, ...]: the sum of the kernel at the four offsets of a 2x2 block."""
    w = F.pad(w.permute(2, 3, 0, 1), [1, 1, 1, 1])  # pad the spatial dims
    w = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]
    return w.permute(2, 3, 0, 1)


def upscale2d_conv2d(x, w, fused):
    """Nearest 2x upsampling then a 'SAME' conv with TF-layout w; fused: a stride-2 transposed convolution with the
    fused 4x4 kernel, as TensorFlow's conv2d_transpose computes it (the kernel acts mirrored there, so the two are
    not the same function of w: a network trained with one needs that one)."""
    if not fused:
        return conv2d(upscale2d(x), w)
    kernel = w.shape[0]
    w = _fuse_kernel(w.permute(0, 1, 3, 2))  # [k+1, k+1, out, in], conv2d_transpose's filter layout
    return F.conv_transpose2d(x, w.permute(3, 2, 0, 1), stride=2, padding=(kernel - 1) // 2)


def conv2d_downscale2d(x, w, fused):
    """A 'SAME' conv with TF-layout w then 2x average pooling; fused: a stride-2 convolution with the fused,
    quartered kernel."""
    if not fused:
        return downscale2d(conv2d(x, w))
    kernel = w.shape[0]
    w = _fuse_kernel(w) * 0.25
    return F.conv2d(x, w.permute(3, 2, 0, 1), stride=2, padding=(kernel - 1) // 2)


def _use_fused(fused_scale, out_res):
    """fused_scale 'auto' fuses where the high-resolution side of the resampling is 128x128 or more."""
    assert fused_scale in (True, False, "auto")
    return out_res >= 128 if fused_scale == "auto" else fused_scale


def _lerp(a, b, t):
    return a + (b - a) * t


# ----------------------------------------------------------------------------------------------------------------
# Layers: one module per variable scope of the original.

class Dense(nn.Module):
    """`weight` [in, out] (runtime gain in the weight) and `bias` [out], then the activation without a gain."""

    def __init__(self, in_features, out_features, gain, use_wscale=True, lrmul=1, act="linear"):
        super().__init__()
        self.weight, self.weight_coef = new_weight([in_features, out_features], gain=gain, use_wscale=use_wscale,
                                                   lrmul=lrmul)
        self.bias = nn.Parameter(torch.zeros([out_features]))
        self.lrmul, self.act = lrmul, act

    def forward(self, x):
        x = x.reshape(x.shape[0], -1) @ (self.weight * self.weight_coef)
        return bias_act(x, self.bias * self.lrmul, act=self.act, gain=1)


class Conv(nn.Module):
    """`weight` [k, k, in, out] and `bias`, then the activation: the discriminator's and ToRGB's layers. down=True
    blurs, then convolves and downsamples (Conv1_down)."""

    def __init__(self, in_channels, out_channels, kernel, gain, use_wscale=True, act="linear", down=False,
                 fused=False, blur_filter=None):
        super().__init__()
        self.weight, self.weight_coef = new_weight([kernel, kernel, in_channels, out_channels], gain=gain,
                                                   use_wscale=use_wscale)
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.act, self.down, self.fused, self.blur_filter = act, down, fused, blur_filter

    def forward(self, x):
        w = self.weight * self.weight_coef
        x = conv2d_downscale2d(blur2d(x, self.blur_filter), w, self.fused) if self.down else conv2d(x, w)
        return bias_act(x, self.bias, act=self.act, gain=1)


class Noise(nn.Module):
    """Per-channel noise strength `weight` [C]."""

    def __init__(self, channels):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros([channels]))

    def forward(self, x, noise):
        return x + noise * self.weight.reshape(1, -1, 1, 1)


class SynthesisLayer(nn.Module):
    """A layer of G_synthesis and its epilogue: the layer's own op ('const': `const` [1, C, 4, 4]; 'dense':
    `weight` [dlatent_size, C * 16]; 'conv' / 'conv_up': `weight` [3, 3, in, C]), then noise (`Noise/weight`),
    `bias`, activation, pixel norm, instance norm and AdaIN (`StyleMod/weight` [dlatent_size, 2C], `StyleMod/bias`),
    in the original's order."""

    def __init__(self, kind, in_channels, channels, dlatent_size, act, use_wscale, use_noise, use_pixel_norm,
                 use_instance_norm, use_styles, fused=False, blur_filter=None):
        super().__init__()
        gain = _ACTIVATIONS[act]
        self.kind, self.channels, self.act, self.fused, self.blur_filter = kind, channels, act, fused, blur_filter
        self.use_pixel_norm, self.use_instance_norm = use_pixel_norm, use_instance_norm
        if kind == "const":
            self.const = nn.Parameter(torch.ones([1, channels, 4, 4]))
        elif kind == "dense":  # the original tweaks the gain to match Progressive GAN
            self.weight, self.weight_coef = new_weight([dlatent_size, channels * 16], gain=gain / 4,
                                                       use_wscale=use_wscale)
        else:
            self.weight, self.weight_coef = new_weight([3, 3, in_channels, channels], gain=gain,
                                                       use_wscale=use_wscale)
        if use_noise:
            self.Noise = Noise(channels)
        self.bias = nn.Parameter(torch.zeros([channels]))
        if use_styles:
            self.StyleMod = Dense(dlatent_size, channels * 2, gain=1, use_wscale=use_wscale)

    def forward(self, x, dlatent, noise):
        """x: the previous layer's output (for 'const' and 'dense': the dlatents [N, num_styles, dlatent_size]);
        dlatent: this layer's [N, dlatent_size]; noise: [N or 1, 1, H, W], or None without noise."""
        if self.kind == "const":
            x = self.const.expand(x.shape[0], -1, -1, -1)
        elif self.kind == "dense":
            x = (x[:, 0] @ (self.weight * self.weight_coef)).reshape(-1, self.channels, 4, 4)
        elif self.kind == "conv_up":
            x = blur2d(upscale2d_conv2d(x, self.weight * self.weight_coef, self.fused), self.blur_filter)
        else:
            x = conv2d(x, self.weight * self.weight_coef)
        if hasattr(self, "Noise"):
            x = self.Noise(x, noise)
        x = bias_act(x, self.bias, act=self.act, gain=1)
        if self.use_pixel_norm:
            x = x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)
        if self.use_instance_norm:
            x = x - x.mean(dim=[2, 3], keepdim=True)
            x = x * torch.rsqrt(x.square().mean(dim=[2, 3], keepdim=True) + 1e-8)
        if hasattr(self, "StyleMod"):
            style = self.StyleMod(dlatent)
            scale, bias = style[:, :self.channels], style[:, self.channels:]
            x = x * (scale[:, :, np.newaxis, np.newaxis] + 1) + bias[:, :, np.newaxis, np.newaxis]
        return x


# ----------------------------------------------------------------------------------------------------------------
# Generator.

@register_build_func("G_mapping")
class MappingNetwork(nn.Module):
    """Z (+ labels) -> W: label embedding (`LabelConcat/weight`), pixel norm, `mapping_layers` dense layers
    (`Dense{i}`) with the learning-rate multiplier on weights and biases; broadcast to
    [N, dlatent_broadcast, dlatent_size] for the synthesis network."""

    def __init__(self, latent_size=512, label_size=0, dlatent_size=512, dlatent_broadcast=None, mapping_layers=8,
                 mapping_fmaps=512, mapping_lrmul=0.01, mapping_nonlinearity="lrelu", use_wscale=True,
                 normalize_latents=True, dtype="float32", **_kwargs):
        super().__init__()
        assert mapping_nonlinearity in _ACTIVATIONS, f"unknown nonlinearity '{mapping_nonlinearity}'"
        self.latent_size, self.label_size, self.dlatent_size = latent_size, label_size, dlatent_size
        self.dlatent_broadcast, self.normalize_latents = dlatent_broadcast, normalize_latents
        self.mapping_layers = mapping_layers
        if label_size:
            self.LabelConcat = LabelEmbedding(label_size, latent_size)
        in_features = latent_size * 2 if label_size else latent_size
        for layer_idx in range(mapping_layers):
            out_features = dlatent_size if layer_idx == mapping_layers - 1 else mapping_fmaps
            self.add_module(f"Dense{layer_idx}", Dense(in_features, out_features,
                                                       gain=_ACTIVATIONS[mapping_nonlinearity], use_wscale=use_wscale,
                                                       lrmul=mapping_lrmul, act=mapping_nonlinearity))
            in_features = out_features

        self.input_names = ["latents_in", "labels_in"]
        self.input_shapes = [[None, latent_size], [None, label_size]]
        self.output_names = ["dlatents_out"]
        self.output_shapes = [[None, dlatent_size] if dlatent_broadcast is None
                              else [None, dlatent_broadcast, dlatent_size]]

    def forward(self, latents_in, labels_in=None):
        assert latents_in.ndim == 2 and latents_in.shape[1] == self.latent_size, latents_in.shape
        x = latents_in.to(torch.float32)
        if self.label_size:
            assert labels_in is not None and labels_in.shape == (x.shape[0], self.label_size), \
                f"expected labels of shape [N, {self.label_size}]"
            x = torch.cat([x, self.LabelConcat(labels_in.to(torch.float32))], dim=1)
        if self.normalize_latents:
            x = x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)
        for layer_idx in range(self.mapping_layers):
            x = getattr(self, f"Dense{layer_idx}")(x)
        if self.dlatent_broadcast is not None:
            x = x[:, np.newaxis].repeat(1, self.dlatent_broadcast, 1)
        return x


@register_build_func("G_synthesis")
class SynthesisNetwork(nn.Module):
    """W [N, num_layers, dlatent_size] -> images [N, num_channels, resolution, resolution].

    Variables: `lod`, `noise{i}` [1, 1, r, r] for every layer (used when randomize_noise=False), '4x4/Const'
    (or '4x4/Dense'), '4x4/Conv', '{r}x{r}/Conv0_up', '{r}x{r}/Conv1', and `ToRGB_lod{n}` for each level of detail.
    `noise_inputs` (one [N or 1, 1, r, r] tensor per layer) take precedence over both kinds of noise."""

    def __init__(self, dlatent_size=512, num_channels=3, resolution=1024, fmap_base=8192, fmap_decay=1.0,
                 fmap_max=512, use_styles=True, const_input_layer=True, use_noise=True, randomize_noise=True,
                 nonlinearity="lrelu", use_wscale=True, use_pixel_norm=False, use_instance_norm=True,
                 dtype="float32", fused_scale="auto", blur_filter=(1, 2, 1), structure="auto", **_kwargs):
        super().__init__()
        resolution_log2 = _check_args(resolution, structure, nonlinearity)
        nf = make_nf(fmap_base, fmap_decay, 0, fmap_max)
        self.resolution_log2, self.dlatent_size, self.structure = resolution_log2, dlatent_size, structure
        self.num_layers = resolution_log2 * 2 - 2
        self.num_styles = self.num_layers if use_styles else 1
        self.randomize_noise, self.use_noise, self.use_styles = randomize_noise, bool(use_noise), use_styles

        self.register_buffer("lod", torch.zeros([]))
        if use_noise:
            for layer_idx in range(self.num_layers):
                size = 2 ** (layer_idx // 2 + 2)
                self.register_buffer(f"noise{layer_idx}", torch.randn([1, int(use_noise), size, size]))
        layer = dict(dlatent_size=dlatent_size, act=nonlinearity, use_wscale=use_wscale, use_noise=use_noise,
                     use_pixel_norm=use_pixel_norm, use_instance_norm=use_instance_norm, use_styles=use_styles)
        blur_filter = list(blur_filter) if blur_filter else None
        levels = [resolution_log2] if structure == "fixed" else range(2, resolution_log2 + 1)
        for res in range(2, resolution_log2 + 1):
            block = nn.Module()
            if res == 2:
                first = "const" if const_input_layer else "dense"
                setattr(block, first.capitalize(), SynthesisLayer(first, dlatent_size, nf(1), **layer))
                block.Conv = SynthesisLayer("conv", nf(1), nf(1), **layer)
            else:
                block.Conv0_up = SynthesisLayer("conv_up", nf(res - 2), nf(res - 1),
                                                fused=_use_fused(fused_scale, 2 ** res), blur_filter=blur_filter,
                                                **layer)
                block.Conv1 = SynthesisLayer("conv", nf(res - 1), nf(res - 1), **layer)
            self.add_module(f"{2 ** res}x{2 ** res}", block)
            if res in levels:
                self.add_module(f"ToRGB_lod{resolution_log2 - res}",
                                Conv(nf(res - 1), num_channels, 1, gain=1, use_wscale=use_wscale))

        self.input_names = ["dlatents_in"]
        self.input_shapes = [[None, self.num_styles, dlatent_size]]
        self.output_names = ["images_out"]
        self.output_shapes = [[None, int(num_channels), 2 ** resolution_log2, 2 ** resolution_log2]]

    def noise_shapes(self):
        """Shape of each layer's noise input, [1, 1, r, r], in layer order (none without noise)."""
        return [list(getattr(self, f"noise{i}").shape) for i in range(self.num_layers)] if self.use_noise else []

    def _block(self, res, x, dlatents, noises):
        block = getattr(self, f"{2 ** res}x{2 ** res}")
        style = (lambda idx: dlatents[:, idx]) if self.use_styles else (lambda idx: None)
        if res == 2:
            x = (block.Const if hasattr(block, "Const") else block.Dense)(dlatents, style(0), noises[0])
            return block.Conv(x, style(1), noises[1])
        x = block.Conv0_up(x, style(res * 2 - 4), noises[res * 2 - 4])
        return block.Conv1(x, style(res * 2 - 3), noises[res * 2 - 3])

    def _torgb(self, res, x):
        return getattr(self, f"ToRGB_lod{self.resolution_log2 - res}")(x)

    def forward(self, dlatents_in, randomize_noise=None, noise_inputs=None, fused_modconv=None,
                force_clean_graph=False, is_template_graph=False):
        """fused_modconv (StyleGAN2's) is accepted and ignored, so that tools can call either generator alike."""
        del fused_modconv
        assert dlatents_in.shape[1:] == (self.num_styles, self.dlatent_size), dlatents_in.shape
        dlatents = dlatents_in.to(torch.float32)
        randomize_noise = self.randomize_noise if randomize_noise is None else randomize_noise
        structure = self.structure
        if is_template_graph or force_clean_graph:
            randomize_noise = False
        if structure == "auto":
            structure = "linear" if is_template_graph or force_clean_graph else "recursive"
        batch, device = dlatents.shape[0], dlatents.device
        if not self.use_noise:
            noises = [None] * self.num_layers
        elif noise_inputs is not None:
            assert len(noise_inputs) == self.num_layers, f"expected {self.num_layers} noise inputs"
            noises = list(noise_inputs)
        elif randomize_noise:  # drawn per layer when the layer runs: layers above the level of detail draw none
            noises = _LazyNoise(self.noise_shapes(), batch, device)
        else:
            noises = [getattr(self, f"noise{i}") for i in range(self.num_layers)]

        L = self.resolution_log2
        x = self._block(2, dlatents, dlatents, noises)
        if structure == "fixed" or L == 2:
            for res in range(3, L + 1):
                x = self._block(res, x, dlatents, noises)
            return self._torgb(L, x)

        # The level of detail: grow from 8x8 while the requested level is finer than the current one, then blend
        # the last level with the one below it (the original's 'recursive' structure, for a fixed lod).
        lod_in = float(self.lod)
        res = 3
        while True:
            lod = L - res
            y = self._block(res, x, dlatents, noises)
            if lod > 0 and lod_in < lod:
                x, res = y, res + 1
                continue
            images = self._torgb(res, y)
            if lod_in > lod:
                t = min(lod_in - lod, 1.0) if structure == "linear" else lod_in - lod
                images = _lerp(images, upscale2d(self._torgb(res - 1, x)), t)
            return upscale2d(images, 2 ** lod)


class _LazyNoise:
    """Fresh Gaussian noise [N, 1, r, r] for layer i, drawn on first access."""

    def __init__(self, shapes, batch, device):
        self.shapes, self.batch, self.device = shapes, batch, device

    def __getitem__(self, i):
        return torch.randn([self.batch] + self.shapes[i][1:], device=self.device)


# Arguments of G_style itself; everything else in its kwargs goes to the components, as in the original.
_G_STYLE_ARGS = ("truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val",
                 "dlatent_avg_beta", "style_mixing_prob", "is_training", "is_validation", "is_template_graph")


@register_build_func("G_style")
class Generator(nn.Module):
    """Mapping + synthesis with the truncation trick (psi 0.7 on the first 8 layers by default); in training,
    W-average tracking and style mixing. Variables of its own: `lod` (copied into the synthesis network's `lod` on
    each run, as the original assigns it) and `dlatent_avg`."""

    def __init__(self, components, **kwargs):
        super().__init__()
        kwargs = {key: value for key, value in kwargs.items() if key not in _G_STYLE_ARGS}
        if "synthesis" not in components:
            components.synthesis = Network("G_synthesis", func_name=f"{__name__}.G_synthesis", **kwargs)
        self.num_layers = components.synthesis.input_shape[1]
        dlatent_size = components.synthesis.input_shape[2]
        if "mapping" not in components:
            components.mapping = Network("G_mapping", func_name=f"{__name__}.G_mapping",
                                         dlatent_broadcast=self.num_layers, **kwargs)
        if not isinstance(components.mapping.module, MappingNetwork):
            # G_style always runs its own module's G_mapping; a pickle whose source text did not tell which
            # 'G_mapping' it holds got StyleGAN2's, which has the same variables.
            components.mapping = components.mapping.convert(f"{__name__}.G_mapping")
        self.mapping = components.mapping.module
        self.synthesis = components.synthesis.module
        self.register_buffer("lod", torch.zeros([]))
        self.register_buffer("dlatent_avg", torch.zeros([dlatent_size]))

        self.input_names = ["latents_in", "labels_in"]
        self.input_shapes = [list(shape) for shape in components.mapping.input_shapes]
        self.output_names = ["images_out"]
        self.output_shapes = [list(components.synthesis.output_shape)]

    def forward(self, latents_in, labels_in=None, truncation_psi=0.7, truncation_cutoff=8, truncation_psi_val=None,
                truncation_cutoff_val=None, dlatent_avg_beta=0.995, style_mixing_prob=0.9, is_training=False,
                is_validation=False, is_template_graph=False, return_dlatents=False, randomize_noise=None,
                noise_inputs=None, fused_modconv=None):
        assert not (is_training and is_validation)
        if is_validation:
            truncation_psi, truncation_cutoff = truncation_psi_val, truncation_cutoff_val
        if is_training or (truncation_psi is not None and truncation_psi == 1):
            truncation_psi = None
        if is_training or (truncation_cutoff is not None and truncation_cutoff <= 0):
            truncation_cutoff = None
        if not is_training or (dlatent_avg_beta is not None and dlatent_avg_beta == 1):
            dlatent_avg_beta = None
        if not is_training or (style_mixing_prob is not None and style_mixing_prob <= 0):
            style_mixing_prob = None

        dlatents = self.mapping(latents_in, labels_in)

        if dlatent_avg_beta is not None:
            with torch.no_grad():
                batch_avg = dlatents[:, 0].mean(dim=0)
                self.dlatent_avg.copy_(_lerp(batch_avg, self.dlatent_avg, dlatent_avg_beta))

        layer_idx = torch.arange(self.num_layers, device=dlatents.device)[np.newaxis, :, np.newaxis]
        if style_mixing_prob is not None:
            dlatents2 = self.mapping(torch.randn_like(latents_in, dtype=torch.float32), labels_in)
            cur_layers = self.num_layers - int(self.lod) * 2
            mixing_cutoff = cur_layers
            if torch.rand([]).item() < style_mixing_prob:
                mixing_cutoff = int(torch.randint(1, cur_layers, []))
            dlatents = torch.where(layer_idx < mixing_cutoff, dlatents, dlatents2)

        # Unlike StyleGAN2's G_main, no truncation at all without a cutoff.
        if truncation_psi is not None and truncation_cutoff is not None:
            ones = torch.ones(layer_idx.shape, device=dlatents.device)
            coefs = torch.where(layer_idx < truncation_cutoff, truncation_psi * ones, ones)
            dlatents = _lerp(self.dlatent_avg, dlatents, coefs)

        with torch.no_grad():
            self.synthesis.lod.copy_(self.lod)
        images = self.synthesis(dlatents, randomize_noise=randomize_noise, noise_inputs=noise_inputs,
                                force_clean_graph=is_template_graph)
        return (images, dlatents) if return_dlatents else images


# ----------------------------------------------------------------------------------------------------------------
# Discriminator.

@register_build_func("D_basic")
class Discriminator(nn.Module):
    """Images [N, C, H, W] (+ labels) -> scores [N, 1]: the StyleGAN / Progressive GAN discriminator.

    Variables: `lod`, `FromRGB_lod{n}` (1x1 conv), '{r}x{r}/Conv0', '{r}x{r}/Conv1_down' (blur, then a conv with
    2x downsampling), and at 4x4: minibatch stddev, `Conv`, `Dense0`, `Dense1` (the scores)."""

    def __init__(self, num_channels=1, resolution=32, label_size=0, fmap_base=8192, fmap_decay=1.0, fmap_max=512,
                 nonlinearity="lrelu", use_wscale=True, mbstd_group_size=4, mbstd_num_features=1, dtype="float32",
                 fused_scale="auto", blur_filter=(1, 2, 1), structure="auto", **_kwargs):
        super().__init__()
        resolution_log2 = _check_args(resolution, structure, nonlinearity)
        nf = make_nf(fmap_base, fmap_decay, 0, fmap_max)
        gain = _ACTIVATIONS[nonlinearity]
        self.resolution_log2, self.label_size, self.structure = resolution_log2, label_size, structure
        self.mbstd_group_size, self.mbstd_num_features = mbstd_group_size, mbstd_num_features
        blur_filter = list(blur_filter) if blur_filter else None
        conv = dict(gain=gain, use_wscale=use_wscale, act=nonlinearity)

        self.register_buffer("lod", torch.zeros([]))
        levels = [resolution_log2] if structure == "fixed" else range(resolution_log2, 1, -1)
        for res in range(resolution_log2, 1, -1):
            if res in levels:
                self.add_module(f"FromRGB_lod{resolution_log2 - res}", Conv(num_channels, nf(res - 1), 1, **conv))
            block = nn.Module()
            if res >= 3:
                block.Conv0 = Conv(nf(res - 1), nf(res - 1), 3, **conv)
                block.Conv1_down = Conv(nf(res - 1), nf(res - 2), 3, down=True,
                                        fused=_use_fused(fused_scale, 2 ** res), blur_filter=blur_filter, **conv)
            else:
                extra = mbstd_num_features if mbstd_group_size > 1 else 0
                block.Conv = Conv(nf(1) + extra, nf(1), 3, **conv)
                block.Dense0 = Dense(nf(1) * 16, nf(0), gain=gain, use_wscale=use_wscale, act=nonlinearity)
                block.Dense1 = Dense(nf(0), max(label_size, 1), gain=1, use_wscale=use_wscale)
            self.add_module(f"{2 ** res}x{2 ** res}", block)

        self.input_names = ["images_in", "labels_in"]
        self.input_shapes = [[None, int(num_channels), 2 ** resolution_log2, 2 ** resolution_log2],
                             [None, int(label_size)]]
        self.output_names = ["scores_out"]
        self.output_shapes = [[None, 1]]

    def _fromrgb(self, images, res):
        """FromRGB of the level `res`, on the full-resolution images averaged down to that level."""
        lod = self.resolution_log2 - res
        return getattr(self, f"FromRGB_lod{lod}")(downscale2d(images, 2 ** lod))

    def _block(self, x, res):
        block = getattr(self, f"{2 ** res}x{2 ** res}")
        if res >= 3:
            return block.Conv1_down(block.Conv0(x))
        if self.mbstd_group_size > 1:
            x = minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_features)
        return block.Dense1(block.Dense0(block.Conv(x)))

    def forward(self, images_in, labels_in=None, is_template_graph=False):
        L = self.resolution_log2
        images = images_in.to(torch.float32)
        structure = self.structure
        if structure == "auto":
            structure = "linear" if is_template_graph else "recursive"
        if structure == "fixed":
            first, t = L, 0.0
        else:
            # Start at the finest level the requested level of detail reaches; blend its features with those
            # of the images at the next coarser level (the original's 'recursive' structure, for a fixed lod).
            lod_in = float(self.lod)
            first = min(L, max(2, int(np.ceil(L - lod_in))))
            t = lod_in - (L - first)
            if structure == "linear":
                t = min(t, 1.0)
        x = self._block(self._fromrgb(images, first), first)
        if first > 2 and t > 0:
            x = _lerp(x, self._fromrgb(images, first - 1), t)
        for res in range(first - 1, 1, -1):
            x = self._block(x, res)
        if self.label_size:
            x = (x * labels_in.to(torch.float32)).sum(dim=1, keepdim=True)
        return x
