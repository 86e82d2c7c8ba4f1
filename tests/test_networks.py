"""The Network API of the original and the StyleGAN2 networks behind it."""

import numpy as np
import pytest
import torch

import dnnlib.tflib as tflib
from dnnlib.tflib.network import Network
from conftest import SMALL_G_KWARGS, make_networks


@pytest.fixture(scope="module")
def nets():
    return make_networks()


def test_shapes_names_and_components(nets):
    G, D, Gs = nets
    assert Gs.input_names == ["latents_in", "labels_in"] and Gs.input_shapes == [[None, 32], [None, 0]]
    assert Gs.output_shape == [None, 3, 32, 32]
    mapping, synthesis = Gs.components.mapping, Gs.components.synthesis
    assert list(Gs.components) == ["synthesis", "mapping"]  # the original builds synthesis first
    assert mapping.output_shape == [None, 8, 32] and synthesis.input_shape == [None, 8, 32]
    assert mapping.static_kwargs.dlatent_broadcast == 8
    assert D.input_shapes == [[None, 3, 32, 32], [None, 0]] and D.output_shape == [None, 1]
    assert list(Gs.own_vars) == ["lod", "dlatent_avg"]
    assert not any(name.startswith("G_synthesis/noise") for name in Gs.trainables)
    assert "G_mapping/Dense0/weight" in Gs.trainables and "G_synthesis/4x4/Const/const" in Gs.trainables
    # The component Networks share the module's parameters.
    assert Gs.components.synthesis.vars["4x4/Conv/weight"].tensor is Gs.module.synthesis.get_submodule("4x4.Conv").weight


def test_run_minibatches_none_inputs_and_transforms(nets):
    _G, _D, Gs = nets
    z = np.random.RandomState(0).randn(5, 32)
    full = Gs.run(z, None, randomize_noise=False)
    assert full.dtype == np.float32 and full.shape == (5, 3, 32, 32)
    assert np.allclose(Gs.run(z, None, randomize_noise=False, minibatch_size=2), full, atol=1e-5)
    uint8 = Gs.run(z, None, randomize_noise=False, output_transform=dict(func=tflib.convert_images_to_uint8,
                                                                         nchw_to_nhwc=True))
    expected = np.clip(full.transpose(0, 2, 3, 1) * 127.5 + 128, 0, 255).astype(np.uint8)
    assert uint8.dtype == np.uint8 and np.abs(uint8.astype(int) - expected).max() <= 1
    legacy = Gs.run(z, None, randomize_noise=False, out_mul=127.5, out_add=127.5, out_dtype=np.uint8)
    assert legacy.dtype == np.uint8 and np.abs(legacy.astype(int) - np.clip(np.round(full * 127.5 + 127.5), 0, 255)).max() <= 1
    halved = Gs.run(z, None, randomize_noise=False, input_transform=dict(func=lambda zz, ll, s: (zz * s, ll), s=0.5))
    assert np.allclose(halved, Gs.run(z * 0.5, None, randomize_noise=False), atol=1e-5)
    images, dlatents = Gs.run(z, None, randomize_noise=False, return_dlatents=True)
    assert dlatents.shape == (5, 8, 32)


def test_truncation(nets):
    _G, _D, Gs = nets
    z = np.random.RandomState(1).randn(3, 32)
    w = Gs.components.mapping.run(z, None)
    w_avg = Gs.get_var("dlatent_avg")
    synthesis = Gs.components.synthesis
    for psi, cutoff in [(0.5, None), (0.7, 3), (1.0, None), (None, None)]:
        got = Gs.run(z, None, truncation_psi=psi, truncation_cutoff=cutoff, randomize_noise=False)
        wt = w.copy()
        layers = slice(None) if cutoff is None else slice(0, cutoff)
        if psi is not None:
            wt[:, layers] = w_avg + (w[:, layers] - w_avg) * psi
        assert np.allclose(got, synthesis.run(wt, randomize_noise=False), atol=1e-5), (psi, cutoff)
    # is_validation switches to the *_val arguments.
    val = Gs.run(z, None, is_validation=True, truncation_psi_val=0.5, randomize_noise=False)
    assert np.allclose(val, Gs.run(z, None, truncation_psi=0.5, randomize_noise=False), atol=1e-5)


def test_noise(nets):
    _G, _D, Gs = nets
    z = np.random.RandomState(2).randn(2, 32)
    const = Gs.run(z, None, randomize_noise=False)
    assert np.array_equal(const, Gs.run(z, None, randomize_noise=False))
    assert not np.allclose(Gs.run(z, None, randomize_noise=True), Gs.run(z, None, randomize_noise=True))
    stored = [torch.as_tensor(var.eval()) for name, var in Gs.components.synthesis.vars.items()
              if name.startswith("noise")]
    assert np.allclose(Gs.run(z, None, noise_inputs=stored), const, atol=1e-6)


def test_set_get_clone_copy(nets):
    G, _D, Gs = nets
    clone = Gs.clone("Gs2")
    assert clone.name == "Gs2" and list(clone.vars) == list(Gs.vars)
    name = "G_synthesis/4x4/Conv/bias"
    value = clone.get_var(name) + 1
    clone.set_var(name, value)
    assert np.array_equal(clone.get_var(name), value) and not np.array_equal(Gs.get_var(name), value)
    tflib.set_vars({clone.vars["dlatent_avg"]: np.ones(32)})
    assert np.array_equal(tflib.run(clone.vars["dlatent_avg"]), np.ones(32, np.float32))
    clone.copy_vars_from(Gs)
    assert all(np.array_equal(clone.get_var(n), Gs.get_var(n)) for n in Gs.vars)
    # copy_trainables_from leaves non-trainables (noise, dlatent_avg) alone.
    other = Gs.clone()
    other.set_var("dlatent_avg", np.zeros(32))
    with torch.no_grad():
        for var in G.trainables.values():
            var.tensor.add_(1)
    other.copy_trainables_from(G)
    assert np.array_equal(other.get_var("dlatent_avg"), np.zeros(32))
    assert np.array_equal(other.get_var("G_mapping/Dense0/weight"), G.get_var("G_mapping/Dense0/weight"))
    # New static kwargs rebuild the network (here: the unfused convolution) with the same variables.
    unfused = Gs.clone(fused_modconv=False)
    assert unfused.static_kwargs.fused_modconv is False
    z = np.random.RandomState(3).randn(2, 32)
    assert np.allclose(unfused.run(z, None, randomize_noise=False), Gs.run(z, None, randomize_noise=False), atol=1e-4)
    with pytest.raises(ValueError, match="shape"):
        clone.set_var("dlatent_avg", np.zeros(5))
    # reset_own_vars re-initialises the network's own variables only.
    clone.set_var("dlatent_avg", np.ones(32))
    clone.reset_own_vars()
    assert np.array_equal(clone.get_var("dlatent_avg"), np.zeros(32))
    assert np.array_equal(clone.get_var("G_mapping/Dense0/weight"), Gs.get_var("G_mapping/Dense0/weight"))


def test_print_layers(nets, capsys):
    G, D, _Gs = nets
    G.print_layers()
    D.print_layers()
    out = capsys.readouterr().out
    total = sum(int(np.prod(var.shape)) for var in G.trainables.values())
    assert f"Total" in out and str(total) in out
    assert "G_synthesis/32x32/ToRGB" in out and "G_mapping/Dense0" in out and "[None, 3, 32, 32]" in out and "Output" in out


def test_training_mode_updates_w_average_and_mixes_styles():
    G, _D, _Gs = make_networks()
    z = torch.randn(4, 32)
    avg_before = G.get_var("dlatent_avg")
    images = G.get_output_for(z, None, is_training=True, style_mixing_prob=0.9)
    w = G.components.mapping.get_output_for(z, None).detach().numpy()
    expected = w[:, 0].mean(0) + (avg_before - w[:, 0].mean(0)) * 0.995
    assert np.allclose(G.get_var("dlatent_avg"), expected, atol=1e-6)
    assert images.requires_grad and images.shape == (4, 3, 32, 32)
    # No truncation in training: with mixing off, training output = untruncated output (noise aside).
    torch.manual_seed(5)
    a = G.get_output_for(z, None, is_training=True, style_mixing_prob=0, randomize_noise=False)
    b = G.get_output_for(z, None, truncation_psi=None, randomize_noise=False)
    assert torch.allclose(a, b, atol=1e-5)


def test_second_derivatives_through_d_and_g():
    """R1 (gradient of D w.r.t. images) and path-length regularisation need double backward."""
    _G, D, Gs = make_networks()
    images = torch.randn(4, 3, 32, 32, requires_grad=True)
    scores = D.get_output_for(images, None)
    (grad,) = torch.autograd.grad(scores.sum(), images, create_graph=True)
    grad.square().sum().backward()
    # Every weight gets a gradient (biases need not: R1 does not depend on the output bias).
    assert all(var.tensor.grad is not None for name, var in D.trainables.items() if name.endswith("weight"))
    w = torch.randn(2, 8, 32, requires_grad=True)
    out = Gs.components.synthesis.get_output_for(w, randomize_noise=False)
    (gw,) = torch.autograd.grad((out * torch.randn_like(out)).sum(), w, create_graph=True)
    gw.square().sum().backward()
    assert Gs.components.synthesis.trainables["4x4/Conv/weight"].tensor.grad is not None


@pytest.mark.parametrize("overrides", [
    dict(resolution=4), dict(resolution=8, architecture="resnet"), dict(architecture="orig", num_channels=1),
    dict(label_size=5, fused_modconv=False), dict(resolution=16, resample_kernel=[1, 2, 1], mapping_layers=2),
])
def test_other_configurations(overrides):
    G, D, Gs = make_networks(**overrides)
    res = overrides.get("resolution", 32)
    channels = overrides.get("num_channels", 3)
    label_size = overrides.get("label_size", 0)
    labels = np.eye(max(label_size, 2))[[0, 1, 0, 1]][:, :label_size]
    images = Gs.run(np.random.randn(4, 32), labels, randomize_noise=False)
    assert images.shape == (4, channels, res, res) and np.isfinite(images).all()
    scores = D.run(images, labels)
    assert scores.shape == (4, 1) and np.isfinite(scores).all()
    if label_size:  # labels matter
        other = np.eye(label_size)[[2, 3, 2, 3]]
        assert not np.allclose(Gs.run(np.zeros([4, 32]), labels, randomize_noise=False),
                               Gs.run(np.zeros([4, 32]), other, randomize_noise=False))


def test_fused_and_unfused_agree_for_every_architecture():
    for arch in ("orig", "skip", "resnet"):
        _G, _D, Gs = make_networks(architecture=arch)
        z = np.random.RandomState(4).randn(3, 32)
        a = Gs.run(z, None, randomize_noise=False, fused_modconv=True)
        b = Gs.run(z, None, randomize_noise=False, fused_modconv=False)
        assert np.abs(a - b).max() <= 1e-4 * max(1, np.abs(a).max()), arch


def test_unknown_kwargs_warn_once(nets):
    _G, _D, Gs = nets
    with pytest.warns(UserWarning, match="ignoring argument 'no_such_option'"):
        Gs.run(np.zeros([1, 32]), None, no_such_option=1)


def test_network_from_func_name_variants():
    a = Network("G_mapping", func_name="training.networks_stylegan2.G_mapping", latent_size=8, dlatent_size=8,
                mapping_fmaps=8)
    b = Network(func_name="G_mapping", latent_size=8, dlatent_size=8, mapping_fmaps=8)
    assert a.name == "G_mapping" and b.name == "G_mapping" and list(a.vars) == list(b.vars)
    assert SMALL_G_KWARGS["latent_size"] == 32
