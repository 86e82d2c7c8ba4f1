"""StyleGAN2 generator and discriminator (Karras et al., "Analyzing and Improving the Image Quality of StyleGAN").

Same keyword arguments, variable names, variable shapes (TensorFlow layout: conv [k, k, in, out], dense [in, out])
and arithmetic as the original TensorFlow release, so that official pickles load into these modules and give the
same images. Each class is registered under the original build-function name (G_main, G_mapping,
G_synthesis_stylegan2, D_stylegan2) and each TensorFlow variable scope is a submodule of the same name, so a
variable's name is its parameter path with '/' for '.'.
"""

import functools

import numpy as np
import torch
from torch import nn

from dnnlib.ops import compiling_enabled, forced_fp16, reference_path_enabled
from dnnlib.ops.bias_act import bias_act
from dnnlib.ops.upfirdn2d import conv2d, conv_downsample_2d, downsample_2d, upsample_2d, upsample_conv_2d
from dnnlib.tflib.network import Network, register_build_func


def make_nf(fmap_base, fmap_decay, fmap_min, fmap_max):
    """Feature maps at a stage (stage 1 = 4x4), as the original computes them."""
    return lambda stage: int(np.clip(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_min, fmap_max))


def check_resolution_and_architecture(resolution, architecture):
    """log2 of the resolution, after checking both arguments as the original does."""
    resolution_log2 = int(np.log2(resolution))
    assert resolution == 2 ** resolution_log2 and resolution >= 4, "resolution must be a power of two >= 4"
    assert architecture in ("orig", "skip", "resnet"), f"unknown architecture '{architecture}'"
    return resolution_log2


def choose_fused_modconv(fused_modconv, network_default, device):
    """The modulated convolution of a synthesis pass: the caller's choice; else on the CPU the unfused one in
    channels-last, which is faster there (docs/performance.md) with the same images; else, and always on the
    reference path, the network's own (the original's default: fused)."""
    if fused_modconv is not None:
        return fused_modconv
    return network_default if device.type != "cpu" or reference_path_enabled() else False


def fast_layout(x):
    """On the CPU, off the reference path: x in channels-last, oneDNN's fastest layout for these convolutions (and
    3-6x faster for the depthwise FIR filters), which the layers that follow keep. Same values either way."""
    if x.device.type == "cpu" and not reference_path_enabled():
        return x.contiguous(memory_format=torch.channels_last)
    return x


def block_dtype(use_fp16, device):
    """Mixed precision as in StyleGAN2-ADA: float16 for the blocks marked `use_fp16`, on GPUs only."""
    return torch.float16 if use_fp16 and device.type == "cuda" else torch.float32


def fp16_resolutions(resolution_log2, num_fp16_res):
    """log2 of the resolutions that run in float16: the `num_fp16_res` highest, never below 8x8."""
    return range(max(resolution_log2 + 1 - num_fp16_res, 3), resolution_log2 + 1) if num_fp16_res else range(0)


def new_weight(shape, gain=1, use_wscale=True, lrmul=1):
    """A weight variable and its runtime coefficient (equalised learning rate with a learning-rate multiplier)."""
    fan_in = np.prod(shape[:-1])  # [k, k, in, out] or [in, out]
    he_std = gain / np.sqrt(fan_in)
    if use_wscale:
        init_std, runtime_coef = 1.0 / lrmul, he_std * lrmul
    else:
        init_std, runtime_coef = he_std / lrmul, lrmul
    return nn.Parameter(torch.randn(list(shape)) * init_std), float(runtime_coef)


# ----------------------------------------------------------------------------------------------------------------
# Layers: one module per variable scope of the original.

class Dense(nn.Module):
    """Fully connected layer with `weight` [in, out] and `bias` [out], then an activation."""

    def __init__(self, in_features, out_features, act="linear", lrmul=1, gain=1):
        super().__init__()
        self.weight, self.weight_coef = new_weight([in_features, out_features], gain=gain, lrmul=lrmul)
        self.bias = nn.Parameter(torch.zeros([out_features]))
        self.act = act
        self.lrmul = lrmul

    def forward(self, x):
        x = x.reshape(x.shape[0], -1) @ (self.weight * self.weight_coef)
        return bias_act(x, self.bias * self.lrmul, act=self.act)


class Conv2dLayer(nn.Module):
    """Convolution with `weight` [k, k, in, out] (and `bias`), optionally with 2x FIR up- or downsampling."""

    def __init__(self, in_channels, out_channels, kernel, act="linear", bias=True, up=False, down=False,
                 resample_kernel=(1, 3, 3, 1), conv_clamp=None):
        super().__init__()
        assert not (up and down)
        self.weight, self.weight_coef = new_weight([kernel, kernel, in_channels, out_channels])
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None
        self.act, self.up, self.down, self.resample_kernel = act, up, down, resample_kernel
        self.conv_clamp = conv_clamp

    def forward(self, x):
        w = (self.weight * self.weight_coef).to(x.dtype)
        if self.up:
            x = upsample_conv_2d(x, w, k=self.resample_kernel)
        elif self.down:
            x = conv_downsample_2d(x, w, k=self.resample_kernel)
        else:
            x = conv2d(x, w)
        return x if self.bias is None else bias_act(x, self.bias.to(x.dtype), act=self.act, clamp=self.conv_clamp)


def modulated_conv2d(x, weight, styles, demodulate=True, up=False, resample_kernel=None, fused_modconv=True,
                     weight_key=None):
    """The StyleGAN2 convolution: weights scaled per sample by `styles`, then normalised ("demodulated").

    x: [N, I, H, W]; weight: [k, k, I, O], already multiplied by its runtime coefficient; styles: [N, I].
    fused_modconv=True runs one grouped convolution with per-sample weights, as the original; False scales the
    activations instead and runs one plain convolution for the batch (any memory format, e.g. channels-last), with
    the demodulation coefficients from one small matrix product. The two agree up to float rounding. Weights and
    styles are float32; the convolution runs in x's dtype. `weight_key`: the parameter `weight` was computed
    from, which lets the unfused path cache what it derives from the weight (`dnnlib.ops.upfirdn2d.conv2d`)."""
    batch, in_channels, height, width = x.shape
    kernel, _, _, out_channels = weight.shape
    assert styles.shape == (batch, in_channels)
    if fused_modconv:
        # Per-sample weights in PyTorch's [N*O, I, k, k] memory order, handed to the ops as a TF-layout view
        # [k, k, I, N*O] (which is how the original reshapes them); the ops' layout change is then free.
        ww = weight.permute(3, 2, 0, 1)[np.newaxis] * styles[:, np.newaxis, :, np.newaxis, np.newaxis]  # [NOIkk]
        if demodulate:
            d = torch.rsqrt(ww.square().sum(dim=[2, 3, 4]) + 1e-8)  # [NO]
            ww = ww * d[:, :, np.newaxis, np.newaxis, np.newaxis]
        x = x.reshape(1, batch * in_channels, height, width)
        w = ww.reshape(batch * out_channels, in_channels, kernel, kernel).permute(2, 3, 1, 0).to(x.dtype)
    else:
        if demodulate:
            # sum over k, k, i of (w * s_i)^2 = (s^2) @ (w^2 summed over the kernel taps): [N, O].
            d = torch.rsqrt(styles.square() @ weight.square().sum(dim=[0, 1]).to(styles.dtype) + 1e-8).to(x.dtype)
        x = fast_layout(x * styles.to(x.dtype)[:, :, np.newaxis, np.newaxis])
        w = weight.to(x.dtype)

    x = upsample_conv_2d(x, w, k=resample_kernel) if up else conv2d(x, w, key=None if fused_modconv else weight_key)

    if fused_modconv:
        x = x.reshape(batch, out_channels, x.shape[2], x.shape[3])
    elif demodulate:
        d = d[:, :, np.newaxis, np.newaxis]
        x = x.mul_(d) if not torch.is_grad_enabled() else x * d  # x is the convolution's fresh output
    return x


class ModulatedConv2dLayer(nn.Module):
    """Modulated convolution layer: `weight`, `mod_weight`, `mod_bias`, `noise_strength` (if it takes noise),
    `bias`, registered in the original's variable order. ToRGB is one with demodulate=False, no noise, linear."""

    def __init__(self, in_channels, out_channels, kernel, dlatent_size, up=False, demodulate=True, use_noise=True,
                 act="lrelu", resample_kernel=(1, 3, 3, 1), fused_modconv=True, conv_clamp=None):
        super().__init__()
        self.weight, self.weight_coef = new_weight([kernel, kernel, in_channels, out_channels])
        self.mod_weight, self.mod_weight_coef = new_weight([dlatent_size, in_channels])
        self.mod_bias = nn.Parameter(torch.zeros([in_channels]))  # styles start at 1 (the +1 below)
        self.noise_strength = nn.Parameter(torch.zeros([])) if use_noise else None
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.up, self.demodulate, self.act = up, demodulate, act
        self.resample_kernel, self.fused_modconv, self.conv_clamp = resample_kernel, fused_modconv, conv_clamp

    def forward(self, x, dlatent, noise=None, fused_modconv=None, conv_clamp=None):
        """conv_clamp: a clamp for this call where the layer has none of its own (--precision fp16)."""
        styles = bias_act(dlatent @ (self.mod_weight * self.mod_weight_coef), self.mod_bias) + 1
        weight, weight_key = self.weight * self.weight_coef, self.weight
        if x.dtype == torch.float16 and self.demodulate:
            # Keep float16 products in range; demodulation cancels any per-output and per-sample scale.
            weight = weight / (np.sqrt(weight[..., 0].numel()) * weight.abs().amax(dim=[0, 1, 2], keepdim=True))
            styles, weight_key = styles / styles.abs().amax(dim=1, keepdim=True), None
        x = modulated_conv2d(x, weight, styles, demodulate=self.demodulate, up=self.up,
                             resample_kernel=self.resample_kernel, weight_key=weight_key,
                             fused_modconv=self.fused_modconv if fused_modconv is None else fused_modconv)
        if self.noise_strength is not None and noise is not None:
            noise = (noise * self.noise_strength).to(x.dtype)
            x = x.add_(noise) if not torch.is_grad_enabled() else x + noise  # x is modulated_conv2d's fresh output
        clamp = conv_clamp if self.conv_clamp is None else self.conv_clamp
        return bias_act(x, self.bias.to(x.dtype), act=self.act, clamp=clamp)


class ConstInput(nn.Module):
    """The learned 4x4 input of the synthesis network (`const` [1, C, 4, 4])."""

    def __init__(self, channels):
        super().__init__()
        self.const = nn.Parameter(torch.randn([1, channels, 4, 4]))

    def forward(self, batch_size):
        return self.const.expand(batch_size, -1, -1, -1)


def normalize_2nd_moment(x, eps=1e-8):
    """x scaled to unit mean square over dim 1 (the mapping networks' latent normalisation)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


# How labels condition the networks: "stylegan2" (the original release: `LabelConcat` in G, an `Output` score per
# label dotted with the label in D) or "ada" (StyleGAN2-ADA: G's `LabelEmbed` dense layer, normalised separately from
# Z; D's `LabelEmbed` + `Mapping{i}` label mapping and a projection `Output` of mapping_fmaps features).
LABEL_CONDITIONING = ("stylegan2", "ada")


class LabelEmbedding(nn.Module):
    """`LabelConcat/weight` [label_size, latent_size]: labels projected to latent size (no learning-rate scaling)."""

    def __init__(self, label_size, latent_size):
        super().__init__()
        self.weight = nn.Parameter(torch.randn([label_size, latent_size]))

    def forward(self, labels):
        return labels @ self.weight


# ----------------------------------------------------------------------------------------------------------------
# Generator.

@register_build_func("G_mapping")
class MappingNetwork(nn.Module):
    """Z (+ labels) -> W: normalisation and `mapping_layers` dense layers with a learning-rate multiplier;
    the output is broadcast to [N, dlatent_broadcast, dlatent_size] for the synthesis network."""

    def __init__(self, latent_size=512, label_size=0, dlatent_size=512, dlatent_broadcast=None, mapping_layers=8,
                 mapping_fmaps=512, mapping_lrmul=0.01, mapping_nonlinearity="lrelu", normalize_latents=True,
                 dtype="float32", label_conditioning="stylegan2", label_fmaps=None, **_kwargs):
        super().__init__()
        assert label_conditioning in LABEL_CONDITIONING, f"unknown label_conditioning '{label_conditioning}'"
        self.latent_size, self.label_size, self.dlatent_size = latent_size, label_size, dlatent_size
        self.dlatent_broadcast, self.normalize_latents = dlatent_broadcast, normalize_latents
        self.mapping_layers, self.label_conditioning = mapping_layers, label_conditioning
        in_features = latent_size
        if label_size and label_conditioning == "ada":  # StyleGAN2-ADA: dense embedding, label_fmaps wide
            label_fmaps = latent_size if label_fmaps is None else label_fmaps
            self.LabelEmbed = Dense(label_size, label_fmaps)
            in_features += label_fmaps
        elif label_size:
            self.LabelConcat = LabelEmbedding(label_size, latent_size)
            in_features += latent_size
        for layer_idx in range(mapping_layers):
            out_features = dlatent_size if layer_idx == mapping_layers - 1 else mapping_fmaps
            self.add_module(f"Dense{layer_idx}", Dense(in_features, out_features, act=mapping_nonlinearity,
                                                       lrmul=mapping_lrmul))
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
        if self.label_size and self.label_conditioning == "ada":  # Z and the embedded label normalised separately
            x = normalize_2nd_moment(x) if self.normalize_latents else x
            x = torch.cat([x, normalize_2nd_moment(self.LabelEmbed(labels_in.to(torch.float32)))], dim=1)
        else:
            if self.label_size:
                x = torch.cat([x, self.LabelConcat(labels_in.to(torch.float32))], dim=1)
            if self.normalize_latents:
                x = normalize_2nd_moment(x)
        for layer_idx in range(self.mapping_layers):
            x = getattr(self, f"Dense{layer_idx}")(x)
        if self.dlatent_broadcast is not None:
            x = x[:, np.newaxis].repeat(1, self.dlatent_broadcast, 1)
        return x


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network. At 4x4: Const, Conv; above: Conv0_up, Conv1 (and Skip for
    'resnet'); then ToRGB where the architecture has one ('skip': every resolution; otherwise the last)."""

    def __init__(self, res, in_channels, out_channels, dlatent_size, num_channels, architecture, has_torgb,
                 nonlinearity, resample_kernel, fused_modconv, use_fp16=False, conv_clamp=None):
        super().__init__()
        self.res, self.architecture, self.resample_kernel = res, architecture, resample_kernel
        self.use_fp16 = use_fp16
        layer = dict(dlatent_size=dlatent_size, act=nonlinearity, resample_kernel=resample_kernel,
                     fused_modconv=fused_modconv, conv_clamp=conv_clamp)
        if res == 2:
            self.Const = ConstInput(out_channels)
            self.Conv = ModulatedConv2dLayer(out_channels, out_channels, 3, **layer)
        else:
            self.Conv0_up = ModulatedConv2dLayer(in_channels, out_channels, 3, up=True, **layer)
            self.Conv1 = ModulatedConv2dLayer(out_channels, out_channels, 3, **layer)
            if architecture == "resnet":
                self.Skip = Conv2dLayer(in_channels, out_channels, 1, bias=False, up=True,
                                        resample_kernel=resample_kernel)
        if has_torgb:
            self.ToRGB = ModulatedConv2dLayer(out_channels, num_channels, 1, dlatent_size, demodulate=False,
                                              use_noise=False, act="linear", fused_modconv=fused_modconv,
                                              conv_clamp=conv_clamp)

    def forward(self, x, y, dlatents, noises, fused_modconv, forced_fp16_clamp=None):
        """x: features from the block below (None at 4x4); y: RGB so far (None until the first ToRGB), float32.
        forced_fp16_clamp: run this block in float16 with that clamp (--precision fp16), whatever its own settings."""
        res, clamp = self.res, forced_fp16_clamp
        dtype = block_dtype(self.use_fp16 or clamp is not None, dlatents.device)
        if res == 2:
            x = self.Const(dlatents.shape[0]).to(dtype)
            x = self.Conv(x, dlatents[:, 0], noises[0], fused_modconv, clamp)
        else:
            x = t = x.to(dtype)
            x = self.Conv0_up(x, dlatents[:, res * 2 - 5], noises[res * 2 - 5], fused_modconv, clamp)
            x = self.Conv1(x, dlatents[:, res * 2 - 4], noises[res * 2 - 4], fused_modconv, clamp)
            if self.architecture == "resnet":
                x = (x + self.Skip(t)) * (1 / np.sqrt(2))
            if self.architecture == "skip":
                y = upsample_2d(y, k=self.resample_kernel)
        if hasattr(self, "ToRGB"):
            t = self.ToRGB(x, dlatents[:, res * 2 - 3], fused_modconv=fused_modconv, conv_clamp=clamp)
            t = t.to(torch.float32)
            y = t if y is None else y + t
        return x, y


@register_build_func("G_synthesis_stylegan2")
class SynthesisNetwork(nn.Module):
    """W [N, num_layers, dlatent_size] -> images [N, num_channels, resolution, resolution] in [-1, 1].

    Noise inputs: `noise{i}` buffers [1, 1, r, r] used when randomize_noise=False, fresh Gaussian noise when True,
    or the caller's `noise_inputs` (a list with one [N or 1, 1, r, r] tensor per layer), which take precedence."""

    def __init__(self, dlatent_size=512, num_channels=3, resolution=1024, fmap_base=16 << 10, fmap_decay=1.0,
                 fmap_min=1, fmap_max=512, randomize_noise=True, architecture="skip", nonlinearity="lrelu",
                 dtype="float32", resample_kernel=(1, 3, 3, 1), fused_modconv=True, num_fp16_res=0, conv_clamp=None,
                 **_kwargs):
        super().__init__()
        resolution_log2 = check_resolution_and_architecture(resolution, architecture)
        fp16 = fp16_resolutions(resolution_log2, num_fp16_res)
        nf = make_nf(fmap_base, fmap_decay, fmap_min, fmap_max)
        self.resolution_log2, self.dlatent_size = resolution_log2, dlatent_size
        self.num_layers = resolution_log2 * 2 - 2
        self.randomize_noise, self.fused_modconv = randomize_noise, fused_modconv

        for layer_idx in range(self.num_layers - 1):  # the last ToRGB takes no noise
            size = 2 ** ((layer_idx + 5) // 2)
            self.register_buffer(f"noise{layer_idx}", torch.randn([1, 1, size, size]))
        for res in range(2, resolution_log2 + 1):
            block = SynthesisBlock(res, nf(res - 2), nf(res - 1), dlatent_size, num_channels, architecture,
                                   has_torgb=architecture == "skip" or res == resolution_log2,
                                   nonlinearity=nonlinearity, resample_kernel=list(resample_kernel),
                                   fused_modconv=fused_modconv, use_fp16=res in fp16, conv_clamp=conv_clamp)
            self.add_module(f"{2 ** res}x{2 ** res}", block)

        self.input_names = ["dlatents_in"]
        self.input_shapes = [[None, self.num_layers, dlatent_size]]
        self.output_names = ["images_out"]
        self.output_shapes = [[None, num_channels, resolution, resolution]]

    def noise_shapes(self):
        """Shape of each layer's noise input, [1, 1, r, r], in layer order."""
        return [list(getattr(self, f"noise{i}").shape) for i in range(self.num_layers - 1)]

    def forward(self, dlatents_in, randomize_noise=None, noise_inputs=None, fused_modconv=None):
        assert dlatents_in.shape[1:] == (self.num_layers, self.dlatent_size), dlatents_in.shape
        dlatents_in = dlatents_in.to(torch.float32)
        randomize_noise = self.randomize_noise if randomize_noise is None else randomize_noise
        fused_modconv = choose_fused_modconv(fused_modconv, self.fused_modconv, dlatents_in.device)
        if noise_inputs is None:
            batch = dlatents_in.shape[0]
            noise_inputs = [torch.randn([batch] + shape[1:], device=dlatents_in.device) if randomize_noise
                            else getattr(self, f"noise{i}") for i, shape in enumerate(self.noise_shapes())]
        assert len(noise_inputs) == self.num_layers - 1
        run_blocks = SynthesisNetwork.run_blocks
        if compiling_enabled() and not torch.is_grad_enabled():
            run_blocks = compiled_run_blocks()
        return run_blocks(self, dlatents_in, noise_inputs, fused_modconv, forced_fp16())

    def run_blocks(self, dlatents_in, noise_inputs, fused_modconv, forced):
        forced_res = fp16_resolutions(self.resolution_log2, forced[0]) if forced else ()
        x = y = None
        for res in range(2, self.resolution_log2 + 1):
            clamp = forced[1] if res in forced_res else None
            x, y = getattr(self, f"{2 ** res}x{2 ** res}")(x, y, dlatents_in, noise_inputs, fused_modconv, clamp)
        return y.contiguous()  # NCHW, whichever layout the layers ran in


@functools.cache
def compiled_run_blocks():
    """SynthesisNetwork.run_blocks through torch.compile (--compile); it compiles again for each network and shape."""
    return torch.compile(SynthesisNetwork.run_blocks, dynamic=False)


# Arguments of G_main itself; everything else in its kwargs goes to the components, as in the original.
_G_MAIN_ARGS = ("truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val",
                "dlatent_avg_beta", "style_mixing_prob", "is_training", "is_validation", "return_dlatents",
                "is_template_graph")


@register_build_func("G_main")
class Generator(nn.Module):
    """Mapping + synthesis with the truncation trick; in training, W-average tracking and style mixing.

    Variables of its own: `lod` (copied into a progressive synthesis network's `lod` on each run, as the original
    assigns it; unused by G_synthesis_stylegan2) and `dlatent_avg`."""

    def __init__(self, components, mapping_func="G_mapping", synthesis_func="G_synthesis_stylegan2", **kwargs):
        super().__init__()
        kwargs = {key: value for key, value in kwargs.items() if key not in _G_MAIN_ARGS}
        if "synthesis" not in components:
            components.synthesis = Network("G_synthesis", func_name=synthesis_func, **kwargs)
        self.num_layers = components.synthesis.input_shape[1]
        dlatent_size = components.synthesis.input_shape[2]
        if "mapping" not in components:
            components.mapping = Network("G_mapping", func_name=mapping_func, dlatent_broadcast=self.num_layers,
                                         **kwargs)
        self.mapping = components.mapping.module
        self.synthesis = components.synthesis.module
        self.register_buffer("lod", torch.zeros([]))
        self.register_buffer("dlatent_avg", torch.zeros([dlatent_size]))

        self.input_names = ["latents_in", "labels_in"]
        self.input_shapes = [list(shape) for shape in components.mapping.input_shapes]
        self.output_names = ["images_out"]
        self.output_shapes = [list(components.synthesis.output_shape)]

    def forward(self, latents_in, labels_in=None, truncation_psi=0.5, truncation_cutoff=None,
                truncation_psi_val=None, truncation_cutoff_val=None, dlatent_avg_beta=0.995, style_mixing_prob=0.9,
                is_training=False, is_validation=False, return_dlatents=False, randomize_noise=None,
                noise_inputs=None, fused_modconv=None):
        assert not (is_training and is_validation)
        if is_validation:
            truncation_psi, truncation_cutoff = truncation_psi_val, truncation_cutoff_val
        if is_training or truncation_psi == 1:
            truncation_psi = None
        if is_training:
            truncation_cutoff = None
        if not is_training or dlatent_avg_beta == 1:
            dlatent_avg_beta = None
        if not is_training or (style_mixing_prob is not None and style_mixing_prob <= 0):
            style_mixing_prob = None

        dlatents = self.mapping(latents_in, labels_in).to(torch.float32)

        if dlatent_avg_beta is not None:
            with torch.no_grad():
                batch_avg = dlatents[:, 0].mean(dim=0)
                self.dlatent_avg.copy_(batch_avg + (self.dlatent_avg - batch_avg) * dlatent_avg_beta)

        layer_idx = torch.arange(self.num_layers, device=dlatents.device)[np.newaxis, :, np.newaxis]
        if style_mixing_prob is not None:
            dlatents2 = self.mapping(torch.randn_like(latents_in), labels_in).to(torch.float32)
            cur_layers = self.num_layers - int(self.lod) * 2
            mixing_cutoff = cur_layers
            if torch.rand([]).item() < style_mixing_prob:
                mixing_cutoff = int(torch.randint(1, cur_layers, []))
            dlatents = torch.where(layer_idx < mixing_cutoff, dlatents, dlatents2)

        if truncation_psi is not None:
            layer_psi = torch.ones(layer_idx.shape, device=dlatents.device)
            if truncation_cutoff is None:
                layer_psi = layer_psi * truncation_psi
            else:
                layer_psi = torch.where(layer_idx < truncation_cutoff, layer_psi * truncation_psi, layer_psi)
            dlatents = self.dlatent_avg + (dlatents - self.dlatent_avg) * layer_psi

        if hasattr(self.synthesis, "lod"):  # a progressive synthesis network follows G's lod, as in the original
            with torch.no_grad():
                self.synthesis.lod.copy_(self.lod)
        images = self.synthesis(dlatents, randomize_noise=randomize_noise, noise_inputs=noise_inputs,
                                fused_modconv=fused_modconv)
        return (images, dlatents) if return_dlatents else images


# ----------------------------------------------------------------------------------------------------------------
# Discriminator.

def minibatch_stddev(x, group_size=4, num_new_features=1):
    """Append the average standard deviation over groups of `group_size` samples as `num_new_features` maps.
    Sample n belongs to group n % (N / group_size), as in the original's reshape."""
    batch, channels, height, width = x.shape
    group_size = min(group_size, batch)
    assert batch % group_size == 0, f"minibatch size {batch} must be a multiple of mbstd_group_size {group_size}"
    y = x.reshape(group_size, -1, num_new_features, channels // num_new_features, height, width).to(torch.float32)
    y = y - y.mean(dim=0, keepdim=True)
    y = (y.square().mean(dim=0) + 1e-8).sqrt()  # [M, n, c, H, W]
    y = y.mean(dim=[2, 3, 4])  # [M, n]
    y = y.to(x.dtype).reshape(-1, num_new_features, 1, 1).repeat(group_size, 1, height, width)
    return torch.cat([x, y], dim=1)


class DiscriminatorBlock(nn.Module):
    """One resolution of the discriminator: FromRGB (first block, or every block for 'skip'), Conv0, Conv1_down,
    and Skip for 'resnet'."""

    def __init__(self, res, nf, num_channels, architecture, has_fromrgb, nonlinearity, resample_kernel,
                 use_fp16=False, conv_clamp=None):
        super().__init__()
        self.architecture, self.resample_kernel, self.use_fp16 = architecture, resample_kernel, use_fp16
        if has_fromrgb:
            self.FromRGB = Conv2dLayer(num_channels, nf(res - 1), 1, act=nonlinearity, conv_clamp=conv_clamp)
        self.Conv0 = Conv2dLayer(nf(res - 1), nf(res - 1), 3, act=nonlinearity, conv_clamp=conv_clamp)
        self.Conv1_down = Conv2dLayer(nf(res - 1), nf(res - 2), 3, act=nonlinearity, down=True,
                                      resample_kernel=resample_kernel, conv_clamp=conv_clamp)
        if architecture == "resnet":
            self.Skip = Conv2dLayer(nf(res - 1), nf(res - 2), 1, bias=False, down=True, resample_kernel=resample_kernel)

    def forward(self, x, y):
        """x: features from the block above (None for the first); y: the image (float32, downsampled by 'skip')."""
        dtype = block_dtype(self.use_fp16, y.device)
        x = None if x is None else x.to(dtype)
        if hasattr(self, "FromRGB"):
            t = self.FromRGB(y.to(dtype))
            x = t if x is None else x + t
        t = x
        x = self.Conv0(x)
        x = self.Conv1_down(x)
        if self.architecture == "resnet":
            x = (x + self.Skip(t)) * (1 / np.sqrt(2))
        if self.architecture == "skip":
            y = downsample_2d(y, k=self.resample_kernel)
        return x, y


class DiscriminatorEpilogue(nn.Module):
    """The 4x4 end of the discriminator: FromRGB ('skip'), minibatch stddev, Conv, Dense0."""

    def __init__(self, nf, num_channels, has_fromrgb, mbstd_group_size, mbstd_num_features, nonlinearity,
                 conv_clamp=None):
        super().__init__()
        self.mbstd_group_size, self.mbstd_num_features = mbstd_group_size, mbstd_num_features
        if has_fromrgb:
            self.FromRGB = Conv2dLayer(num_channels, nf(1), 1, act=nonlinearity, conv_clamp=conv_clamp)
        extra = mbstd_num_features if mbstd_group_size > 1 else 0
        self.Conv = Conv2dLayer(nf(1) + extra, nf(1), 3, act=nonlinearity, conv_clamp=conv_clamp)
        self.Dense0 = Dense(nf(1) * 16, nf(0), act=nonlinearity)

    def forward(self, x, y):
        x = None if x is None else x.to(torch.float32)
        if hasattr(self, "FromRGB"):
            t = self.FromRGB(y)
            x = t if x is None else x + t
        if self.mbstd_group_size > 1:
            x = minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_features)
        return self.Dense0(self.Conv(x))


@register_build_func("D_stylegan2")
class Discriminator(nn.Module):
    """Images [N, C, H, W] (+ labels) -> scores [N, 1]; architectures 'orig', 'skip', 'resnet' (default)."""

    def __init__(self, num_channels=3, resolution=1024, label_size=0, fmap_base=16 << 10, fmap_decay=1.0,
                 fmap_min=1, fmap_max=512, architecture="resnet", nonlinearity="lrelu", mbstd_group_size=4,
                 mbstd_num_features=1, dtype="float32", resample_kernel=(1, 3, 3, 1), num_fp16_res=0,
                 conv_clamp=None, label_conditioning="stylegan2", mapping_layers=0, mapping_fmaps=None,
                 mapping_lrmul=0.1, **_kwargs):
        super().__init__()
        resolution_log2 = check_resolution_and_architecture(resolution, architecture)
        assert label_conditioning in LABEL_CONDITIONING, f"unknown label_conditioning '{label_conditioning}'"
        fp16 = fp16_resolutions(resolution_log2, num_fp16_res)
        nf = make_nf(fmap_base, fmap_decay, fmap_min, fmap_max)
        self.resolution_log2, self.label_size = resolution_log2, label_size
        # StyleGAN2-ADA's projection discriminator: labels mapped to cmap_dim = mapping_fmaps features.
        self.cmap_dim = (nf(0) if mapping_fmaps is None else mapping_fmaps) \
            if label_size and label_conditioning == "ada" else 0
        self.mapping_layers = mapping_layers if self.cmap_dim else 0
        if self.cmap_dim:
            self.LabelEmbed = Dense(label_size, self.cmap_dim)
            for idx in range(self.mapping_layers):
                self.add_module(f"Mapping{idx}", Dense(self.cmap_dim, self.cmap_dim, act=nonlinearity,
                                                       lrmul=mapping_lrmul))
        for res in range(resolution_log2, 2, -1):
            block = DiscriminatorBlock(res, nf, num_channels, architecture,
                                       has_fromrgb=architecture == "skip" or res == resolution_log2,
                                       nonlinearity=nonlinearity, resample_kernel=list(resample_kernel),
                                       use_fp16=res in fp16, conv_clamp=conv_clamp)
            self.add_module(f"{2 ** res}x{2 ** res}", block)
        # At 4x4 resolution nothing above reads the image, so the epilogue must.
        self.add_module("4x4", DiscriminatorEpilogue(nf, num_channels, architecture == "skip" or resolution_log2 == 2,
                                                     mbstd_group_size, mbstd_num_features, nonlinearity,
                                                     conv_clamp))
        self.Output = Dense(nf(0), self.cmap_dim or max(label_size, 1))

        self.input_names = ["images_in", "labels_in"]
        self.input_shapes = [[None, num_channels, resolution, resolution], [None, label_size]]
        self.output_names = ["scores_out"]
        self.output_shapes = [[None, 1]]

    def forward(self, images_in, labels_in=None):
        if self.cmap_dim:  # the label mapping, done first as in the original
            cmap = normalize_2nd_moment(self.LabelEmbed(labels_in.to(torch.float32)))
            for idx in range(self.mapping_layers):
                cmap = getattr(self, f"Mapping{idx}")(cmap)
        x, y = None, fast_layout(images_in.to(torch.float32))
        for res in range(self.resolution_log2, 1, -1):
            block = getattr(self, f"{2 ** res}x{2 ** res}")
            if res > 2:
                x, y = block(x, y)
            else:
                x = block(x, y)
        x = self.Output(x)
        if self.cmap_dim:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        elif self.label_size:
            x = (x * labels_in.to(torch.float32)).sum(dim=1, keepdim=True)
        return x


# ----------------------------------------------------------------------------------------------------------------
# Progressive growing (configs b-d of the paper): the revised StyleGAN synthesis network and the StyleGAN
# discriminator, driven by the `lod` variable as StyleGAN's networks are (0 = full resolution; a fraction blends
# the two adjacent levels; images always have the full resolution).

def _lod_blend(a, b, t):
    return a + (b - a) * t


@register_build_func("G_synthesis_stylegan_revised")
class SynthesisNetworkRevised(nn.Module):
    """StyleGAN's synthesis network with StyleGAN2's layers (Figure 2d; configs b-d): weight (de)modulation, noise
    and bias as G_synthesis_stylegan2's 'orig' architecture, with progressive growing. Variables: `lod`,
    `noise{i}`, '4x4/Const', '4x4/Conv', '{r}x{r}/Conv0_up', '{r}x{r}/Conv1', and `ToRGB_lod{n}` (a modulated 1x1
    convolution without demodulation) for each level of detail.

    structure: 'auto' / 'recursive' (the original's choice at run time) and 'linear' give the same images for a lod
    in [0, log2(resolution) - 2] ('linear' clamps the blend factor); 'fixed' ignores lod."""

    def __init__(self, dlatent_size=512, num_channels=3, resolution=1024, fmap_base=16 << 10, fmap_decay=1.0,
                 fmap_min=1, fmap_max=512, randomize_noise=True, nonlinearity="lrelu", dtype="float32",
                 resample_kernel=(1, 3, 3, 1), fused_modconv=True, structure="auto", **_kwargs):
        super().__init__()
        resolution_log2 = check_resolution_and_architecture(resolution, "orig")
        assert structure in ("auto", "fixed", "linear", "recursive"), f"unknown structure '{structure}'"
        nf = make_nf(fmap_base, fmap_decay, fmap_min, fmap_max)
        self.resolution_log2, self.dlatent_size, self.structure = resolution_log2, dlatent_size, structure
        self.num_layers = resolution_log2 * 2 - 2
        self.randomize_noise, self.fused_modconv = randomize_noise, fused_modconv

        self.register_buffer("lod", torch.zeros([]))
        for layer_idx in range(self.num_layers - 1):
            size = 2 ** ((layer_idx + 5) // 2)
            self.register_buffer(f"noise{layer_idx}", torch.randn([1, 1, size, size]))
        for res in range(2, resolution_log2 + 1):  # the order of the original's 'linear' template graph
            block = SynthesisBlock(res, nf(res - 2), nf(res - 1), dlatent_size, num_channels, "orig",
                                   has_torgb=False, nonlinearity=nonlinearity, resample_kernel=list(resample_kernel),
                                   fused_modconv=fused_modconv)
            self.add_module(f"{2 ** res}x{2 ** res}", block)
            self.add_module(f"ToRGB_lod{resolution_log2 - res}",
                            ModulatedConv2dLayer(nf(res - 1), num_channels, 1, dlatent_size, demodulate=False,
                                                 use_noise=False, act="linear", fused_modconv=fused_modconv))

        self.input_names = ["dlatents_in"]
        self.input_shapes = [[None, self.num_layers, dlatent_size]]
        self.output_names = ["images_out"]
        self.output_shapes = [[None, num_channels, resolution, resolution]]

    noise_shapes = SynthesisNetwork.noise_shapes  # the same noise{i} buffers, one per layer but the last

    def _torgb(self, res, x, dlatents, fused_modconv):
        layer = getattr(self, f"ToRGB_lod{self.resolution_log2 - res}")
        return layer(x, dlatents[:, res * 2 - 3], fused_modconv=fused_modconv)

    def forward(self, dlatents_in, randomize_noise=None, noise_inputs=None, fused_modconv=None,
                force_clean_graph=False, is_template_graph=False):
        assert dlatents_in.shape[1:] == (self.num_layers, self.dlatent_size), dlatents_in.shape
        dlatents = dlatents_in.to(torch.float32)
        randomize_noise = self.randomize_noise if randomize_noise is None else randomize_noise
        fused_modconv = self.fused_modconv if fused_modconv is None else fused_modconv
        if is_template_graph or force_clean_graph:
            randomize_noise = False
        structure = self.structure
        if structure == "auto":
            structure = "linear" if is_template_graph or force_clean_graph else "recursive"
        if noise_inputs is None:
            batch = dlatents.shape[0]
            noise_inputs = [torch.randn([batch] + shape[1:], device=dlatents.device) if randomize_noise
                            else getattr(self, f"noise{i}") for i, shape in enumerate(self.noise_shapes())]
        assert len(noise_inputs) == self.num_layers - 1
        block = lambda res, x: getattr(self, f"{2 ** res}x{2 ** res}")(x, None, dlatents, noise_inputs,
                                                                        fused_modconv)[0]
        L = self.resolution_log2
        x = block(2, None)
        if structure == "fixed" or L == 2:
            for res in range(3, L + 1):
                x = block(res, x)
            return self._torgb(L, x, dlatents, fused_modconv)

        # Grow while the requested level is finer than the current one, then blend the last level's ToRGB with the
        # nearest-upsampled ToRGB of the level below (the original's 'recursive' structure, for a given lod).
        lod_in = float(self.lod)
        res = 3
        while True:
            lod = L - res
            y = block(res, x)
            if lod > 0 and lod_in < lod:
                x, res = y, res + 1
                continue
            images = self._torgb(res, y, dlatents, fused_modconv)
            if lod_in > lod:
                t = min(lod_in - lod, 1.0) if structure == "linear" else lod_in - lod
                images = _lod_blend(images, upsample_2d(self._torgb(res - 1, x, dlatents, fused_modconv)), t)
            return upsample_2d(images, factor=2 ** lod) if lod else images


@register_build_func("D_stylegan")
class DiscriminatorProgressive(nn.Module):
    """The StyleGAN discriminator with StyleGAN2's layers (configs b-d): `lod`, `FromRGB_lod{n}` (1x1 conv),
    '{r}x{r}/Conv0', '{r}x{r}/Conv1_down' (FIR-filtered downsampling), '4x4/Conv', '4x4/Dense0' after the
    minibatch stddev, and `Output`. The images are averaged down to the level of detail `lod` asks for."""

    def __init__(self, num_channels=3, resolution=1024, label_size=0, fmap_base=16 << 10, fmap_decay=1.0,
                 fmap_min=1, fmap_max=512, nonlinearity="lrelu", mbstd_group_size=4, mbstd_num_features=1,
                 dtype="float32", resample_kernel=(1, 3, 3, 1), structure="auto", **_kwargs):
        super().__init__()
        resolution_log2 = check_resolution_and_architecture(resolution, "orig")
        assert structure in ("auto", "fixed", "linear", "recursive"), f"unknown structure '{structure}'"
        nf = make_nf(fmap_base, fmap_decay, fmap_min, fmap_max)
        self.resolution_log2, self.label_size, self.structure = resolution_log2, label_size, structure
        self.register_buffer("lod", torch.zeros([]))
        for res in range(resolution_log2, 2, -1):  # the order of the original's 'linear' template graph
            if res == resolution_log2:
                self.add_module(f"FromRGB_lod{resolution_log2 - res}",
                                Conv2dLayer(num_channels, nf(res - 1), 1, act=nonlinearity))
            block = nn.Module()
            block.Conv0 = Conv2dLayer(nf(res - 1), nf(res - 1), 3, act=nonlinearity)
            block.Conv1_down = Conv2dLayer(nf(res - 1), nf(res - 2), 3, act=nonlinearity, down=True,
                                           resample_kernel=list(resample_kernel))
            self.add_module(f"{2 ** res}x{2 ** res}", block)
            self.add_module(f"FromRGB_lod{resolution_log2 - res + 1}",
                            Conv2dLayer(num_channels, nf(res - 2), 1, act=nonlinearity))
        if resolution_log2 == 2:
            self.add_module("FromRGB_lod0", Conv2dLayer(num_channels, nf(1), 1, act=nonlinearity))
        self.add_module("4x4", DiscriminatorEpilogue(nf, num_channels, False, mbstd_group_size, mbstd_num_features,
                                                     nonlinearity))
        self.Output = Dense(nf(0), max(label_size, 1))

        self.input_names = ["images_in", "labels_in"]
        self.input_shapes = [[None, num_channels, resolution, resolution], [None, label_size]]
        self.output_names = ["scores_out"]
        self.output_shapes = [[None, 1]]

    def _fromrgb(self, images, res):
        lod = self.resolution_log2 - res
        return getattr(self, f"FromRGB_lod{lod}")(downsample_2d(images, factor=2 ** lod) if lod else images)

    def _block(self, x, res):
        block = getattr(self, f"{2 ** res}x{2 ** res}")
        return block.Conv1_down(block.Conv0(x))

    def forward(self, images_in, labels_in=None, is_template_graph=False):
        L = self.resolution_log2
        images = images_in.to(torch.float32)
        structure = self.structure
        if structure == "auto":
            structure = "linear" if is_template_graph else "recursive"
        if L == 2:
            x = self._fromrgb(images, 2)
        elif structure == "fixed":
            x = self._fromrgb(images, L)
            for res in range(L, 2, -1):
                x = self._block(x, res)
        else:
            # Start at the finest level the requested level of detail reaches; blend its output with FromRGB of the
            # images at the next coarser level (the original's 'recursive' structure, for a given lod).
            lod_in = float(self.lod)
            first = min(L, max(3, int(np.ceil(L - lod_in))))
            t = lod_in - (L - first)
            if structure == "linear":
                t = min(t, 1.0)
            x = self._block(self._fromrgb(images, first), first)
            if t > 0:
                x = _lod_blend(x, self._fromrgb(images, first - 1), t)
            for res in range(first - 1, 2, -1):
                x = self._block(x, res)
        x = self.Output(getattr(self, "4x4")(x, None))
        if self.label_size:
            x = (x * labels_in.to(torch.float32)).sum(dim=1, keepdim=True)
        return x
