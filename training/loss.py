"""StyleGAN2 losses: non-saturating logistic loss, lazy R1 and path-length regularisation.

The formulas are those of the original `G_logistic_ns_pathreg` and `D_logistic_r1`. Every random input of a
phase (latents, mixing latents, style-mixing cutoff, noise, path-length noise) is drawn for the *global*
minibatch from a generator that all processes share, and each process takes its slice, so a step gives the same
result however the minibatch is split over processes and accumulation rounds."""

import numpy as np
import torch
import torch.nn.functional as F

from dnnlib.util import EasyDict


def random_inputs(G, batch_size, generator, device, style_mixing_prob=0.9):
    """All random inputs of one generator pass over the global minibatch (CPU draws, moved to `device`)."""
    synthesis = G.module.synthesis
    latent_size, num_layers = G.input_shape[1], synthesis.num_layers
    draw = lambda *shape: torch.randn(list(shape), generator=generator).to(device)
    inputs = EasyDict(latents=draw(batch_size, latent_size), mixing_latents=draw(batch_size, latent_size),
                      mixing_cutoff=num_layers)
    # One cutoff per minibatch, as in the original G_main: among the layers in use at G's level of detail.
    cur_layers = num_layers - int(G.module.lod) * 2 if hasattr(G.module, "lod") else num_layers
    if style_mixing_prob > 0 and torch.rand([], generator=generator).item() < style_mixing_prob:
        inputs.mixing_cutoff = int(torch.randint(1, cur_layers, [], generator=generator))
    inputs.noise = [draw(batch_size, *shape[1:]) for shape in synthesis.noise_shapes()]
    return inputs


def slice_inputs(inputs, start, stop):
    """The rows [start, stop) of a batch of random inputs."""
    return EasyDict(latents=inputs.latents[start:stop], mixing_latents=inputs.mixing_latents[start:stop],
                    mixing_cutoff=inputs.mixing_cutoff, noise=[n[start:stop] for n in inputs.noise])


class StyleGAN2Loss:
    """Loss terms per sample; the training loop scales, sums and backpropagates them.

    G: the training generator (a Network wrapping G_main); D: the discriminator Network; augment_pipe: an
    AugmentPipe applied to every image D sees (reals and fakes), or None. fused_modconv: the generator's modulated
    convolution; the unfused one is faster with gradients (the fused one is kept for benchmarking)."""

    def __init__(self, G, D, augment_pipe=None, r1_gamma=10.0, pl_batch_shrink=2, pl_decay=0.01, pl_weight=2.0,
                 style_mixing_prob=0.9, dlatent_avg_beta=0.995, fused_modconv=False):
        self.G, self.D, self.augment_pipe = G, D, augment_pipe
        self.r1_gamma, self.pl_weight, self.pl_decay = r1_gamma, pl_weight, pl_decay
        self.pl_batch_shrink, self.style_mixing_prob, self.dlatent_avg_beta = pl_batch_shrink, style_mixing_prob, \
            dlatent_avg_beta
        self.fused_modconv = fused_modconv
        self.pl_mean = torch.zeros([], device=G.device)

    def run_G(self, inputs, labels):
        """Images and the dlatents that produced them (after style mixing), as G_main does in training."""
        G = self.G.module
        dlatents = G.mapping(inputs.latents, labels)
        if inputs.mixing_cutoff < G.num_layers:
            mixed = G.mapping(inputs.mixing_latents, labels)
            layer = torch.arange(G.num_layers, device=dlatents.device)[None, :, None]
            dlatents = torch.where(layer < inputs.mixing_cutoff, dlatents, mixed)
        images = G.synthesis(dlatents, noise_inputs=inputs.noise, fused_modconv=self.fused_modconv)
        return images, dlatents

    def run_D(self, images, labels):
        if self.augment_pipe is not None:
            images = self.augment_pipe(images)
        return self.D.module(images, labels)

    def G_main(self, inputs, labels):
        """softplus(-D(G(z))): the non-saturating generator loss. Returns (loss [N], dlatents [N, L, C])."""
        images, dlatents = self.run_G(inputs, labels)
        return F.softplus(-self.run_D(images, labels)).flatten(), dlatents

    def pl_lengths(self, inputs, labels, pl_noise, create_graph=True):
        """Path lengths |J_w^T y| per sample, differentiable (with create_graph) for the penalty.

        y is Gaussian noise scaled by 1/sqrt(H*W) (`pl_noise`, drawn by the caller for the global batch)."""
        images, dlatents = self.run_G(inputs, labels)
        assert pl_noise.shape == images.shape
        grads, = torch.autograd.grad((images * pl_noise).sum(), dlatents, create_graph=create_graph)
        return grads.square().sum(dim=2).mean(dim=1).sqrt()

    def pl_penalty(self, lengths, mean_length):
        """The penalty (|J_w^T y| - a)^2 per sample, and a surrogate of penalty * pl_weight to backpropagate.

        As in the original, a = pl_mean moved toward this step's mean length (`mean_length`, over the global
        batch) and the gradient flows through that mean too. The surrogate has exactly that gradient with `a`
        and the mean held constant, so each process and accumulation round can backpropagate its own samples."""
        mean_length = mean_length.detach()
        target = self.moved_pl_mean(mean_length)
        penalty = (lengths - target).square()
        through_mean = 2 * self.pl_decay * (mean_length - target) * lengths
        return penalty.detach(), (penalty - through_mean) * self.pl_weight

    def moved_pl_mean(self, mean_length):
        return self.pl_mean.lerp(mean_length, self.pl_decay)

    def update_pl_mean(self, mean_length):
        self.pl_mean = self.moved_pl_mean(mean_length)

    def D_main(self, reals, real_labels, inputs, fake_labels):
        """softplus(D(G(z))) + softplus(-D(x)) per sample, and D's raw outputs on the reals (for ADA)."""
        with torch.no_grad():
            fakes, _ = self.run_G(inputs, fake_labels)
        fake_scores = self.run_D(fakes, fake_labels).flatten()
        real_scores = self.run_D(reals, real_labels).flatten()
        return F.softplus(fake_scores) + F.softplus(-real_scores), real_scores.detach()

    def D_r1(self, reals, labels):
        """The R1 penalty |grad_x D(x)|^2 per sample, taken through the augmentation, and the regulariser
        (gamma / 2) * penalty to backpropagate."""
        reals = reals.detach().requires_grad_(True)
        scores = self.run_D(reals, labels)
        grads, = torch.autograd.grad(scores.sum(), reals, create_graph=True)
        penalty = grads.square().sum(dim=[1, 2, 3])
        return penalty.detach(), penalty * (self.r1_gamma * 0.5)

    def pl_noise(self, batch_size, generator, device):
        shape = [batch_size] + list(self.G.output_shape[1:])
        return (torch.randn(shape, generator=generator) / np.sqrt(np.prod(shape[2:]))).to(device)

    def update_dlatent_avg(self, mean_dlatent):
        """Track the average W (G_main's `dlatent_avg`) from this step's global-batch mean."""
        avg = self.G.module.dlatent_avg
        avg.copy_(mean_dlatent + (avg - mean_dlatent) * self.dlatent_avg_beta)
