"""training/editing.py: interpolation paths and loops."""

import numpy as np
import pytest

import dnnlib
from training import editing


def test_slerp_stays_on_the_sphere_and_hits_the_ends():
    rnd = np.random.RandomState(0)
    a, b = rnd.randn(512), rnd.randn(512)
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    t = np.linspace(0, 1, 11)[:, None]
    path = editing.slerp(a, b, t)
    np.testing.assert_allclose(path[0], a, atol=1e-12)
    np.testing.assert_allclose(path[-1], b, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(a), rtol=1e-12)
    angles = np.arccos(np.clip(np.sum(path[:-1] * path[1:], 1) / np.linalg.norm(a) ** 2, -1, 1))
    np.testing.assert_allclose(angles, angles[0], rtol=1e-6)  # constant angular speed
    np.testing.assert_allclose(editing.slerp(a, a, 0.3), a)  # parallel vectors fall back to lerp


def test_keyframe_paths_visit_every_keyframe():
    keys = np.random.RandomState(1).randn(3, 4, 8)
    path = editing.keyframe_path(keys, 5, "linear")
    assert path.shape == (11, 4, 8)
    for i in range(3):
        np.testing.assert_allclose(path[5 * i], keys[i])
    looped = editing.keyframe_path(keys, 5, "slerp", loop=True)
    assert looped.shape == (15, 4, 8)
    # The frame after the last would be the first keyframe again: continuing the path closes it.
    np.testing.assert_allclose(editing.slerp(looped[-1], keys[0], 1.0), keys[0])
    step = np.linalg.norm(looped[-1] - keys[0])
    assert 0 < step < np.linalg.norm(keys[0] - keys[2])
    with pytest.raises(dnnlib.util.UserError):
        editing.keyframe_path(keys[:1], 5)


@pytest.mark.parametrize("kind", ["noiseloop", "circularloop"])
def test_loops_close_exactly(kind):
    frames = 48
    if kind == "noiseloop":
        pytest.importorskip("opensimplex")
        make = lambda n: editing.noise_loop(7, [16], n, diameter=2.0)  # noqa: E731
    else:
        make = lambda n: editing.circular_loop(np.random.RandomState(7), [16], n)  # noqa: E731
    path = make(frames)
    assert path.shape == (frames, 16)
    # Sampling the same loop twice as densely puts frame 2k on frame k, and the frame after the last on frame 0.
    dense = make(2 * frames)
    np.testing.assert_allclose(dense[::2], path, atol=1e-12)
    closing = np.linalg.norm(path[-1] - path[0])
    neighbours = np.linalg.norm(np.diff(path, axis=0), axis=1)
    assert closing < 2 * neighbours.max()  # the seam is no bigger a step than the others
    assert np.all(np.ptp(path, axis=0) > 0)  # and the latent really moves


def test_truncation_path():
    w, avg = np.ones([3, 4]), np.zeros(4)
    path = editing.truncation_path(w, avg, [0, 0.5, 1, -1])
    assert path.shape == (4, 3, 4)
    np.testing.assert_allclose(path[:, 0, 0], [0, 0.5, 1, -1])


# ----------------------------------------------------------------------------------------------------------------
# Directions and blending, on small random-weight networks.

@pytest.fixture(scope="module")
def nets():
    from conftest import make_networks
    return make_networks()


def test_ganspace_components_are_orthonormal_and_ordered_by_variance(nets, single_thread):
    _G, _D, Gs = nets
    result = editing.ganspace(Gs, num_samples=3000, num_components=10, seed=1, batch_size=1000)
    comp = result.lat_comp.astype(np.float64)
    assert comp.shape == (10, 32)
    np.testing.assert_allclose(comp @ comp.T, np.eye(10), atol=1e-5)
    assert np.all(np.diff(result.lat_stdev) <= 1e-6)
    # The spread of fresh samples along each component follows the recorded standard deviations.
    w = editing.sample_w(Gs, 3000, seed=5)
    spread = ((w - result.lat_mean) @ comp.T).std(axis=0)
    np.testing.assert_allclose(spread, result.lat_stdev, rtol=0.15)
    assert spread[0] > spread[-1]


def test_sefa_vectors_are_unit_eigenvectors_of_the_normalised_style_weights(nets):
    _G, _D, Gs = nets
    layers = [0, 1, 2]
    # The style weights of the convolutions fed by W+ rows 0-2: 4x4/Conv, 8x8/Conv0_up, 8x8/Conv1.
    weights = [Gs.get_var(f"G_synthesis/{name}/mod_weight") for name in ("4x4/Conv", "8x8/Conv0_up", "8x8/Conv1")]
    a = np.concatenate([w / np.linalg.norm(w, axis=0) for w in weights], axis=1).astype(np.float64)
    result = editing.sefa(Gs, layers)
    for vector, value in zip(result.components[:5].astype(np.float64), result.eigenvalues[:5]):
        assert np.linalg.norm(vector) == pytest.approx(1, abs=1e-5)
        np.testing.assert_allclose(a @ (a.T @ vector), value * vector, atol=1e-3 * value)
    assert np.all(np.diff(result.eigenvalues) <= 1e-9)
    # A different choice of layers factorises a different matrix.
    assert not np.allclose(np.abs(editing.sefa(Gs, [5, 6]).components[0]), np.abs(result.components[0]))


def test_apply_direction_moves_only_the_chosen_layers():
    rnd = np.random.RandomState(0)
    w, direction = rnd.randn(2, 8, 32), rnd.randn(32)
    edited = editing.apply_direction(w, direction, [-2, 0, 3], layers=[1, 2])
    assert edited.shape == (2, 3, 8, 32)
    np.testing.assert_array_equal(edited[:, 1], w)  # coefficient 0 is the identity
    np.testing.assert_array_equal(edited[:, :, [0, 3, 4, 5, 6, 7]], np.repeat(w[:, None], 3, 1)[:, :, [0, 3, 4, 5, 6, 7]])
    np.testing.assert_allclose(edited[:, 2, 1:3] - w[:, 1:3], 3 * np.broadcast_to(direction, (2, 2, 32)))
    per_layer = rnd.randn(8, 32)
    np.testing.assert_allclose(editing.apply_direction(w, per_layer, [1])[:, 0] - w, np.broadcast_to(per_layer, w.shape))
    with pytest.raises(dnnlib.util.UserError, match="does not fit"):
        editing.apply_direction(w, rnd.randn(31), [1])
    with pytest.raises(dnnlib.util.UserError, match="layer range"):
        editing.parse_layers("0-8", 8)
    assert editing.parse_layers("6-7,0", 8) == [0, 6, 7]


@pytest.mark.parametrize("scores", [False, True])
def test_interfacegan_separates_a_synthetic_labelled_set(scores):
    rnd = np.random.RandomState(0)
    hidden = rnd.randn(32)
    hidden /= np.linalg.norm(hidden)
    latents = rnd.randn(2000, 32) * rnd.uniform(0.5, 2, size=32)  # anisotropic, like real W
    projection = latents @ hidden + 0.3
    if scores:
        direction, accuracy = editing.train_direction(latents, projection, chosen_fraction=0.1)
    else:
        direction, accuracy = editing.train_direction(latents, (projection > 0).astype(float))
    assert np.linalg.norm(direction) == pytest.approx(1, abs=1e-5)
    assert accuracy > 0.95
    assert direction @ hidden > 0.9
    with pytest.raises(dnnlib.util.UserError, match="both classes"):
        editing.train_direction(latents[:10], np.ones(10))


def test_blended_network_layers_come_from_the_right_parents(nets):
    from conftest import make_networks
    _G, _D, low = nets
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    high = low.clone()
    with torch.no_grad():
        for var in high.vars.values():
            var.tensor.add_(torch.randn(var.tensor.shape))
    hard = editing.blend_networks(low, high, 16)
    for name in hard.vars:
        value = hard.get_var(name)
        if name.startswith(("G_synthesis/16x16/", "G_synthesis/32x32/")):
            np.testing.assert_array_equal(value, high.get_var(name))
        else:  # coarse blocks, noise buffers, mapping and W average
            np.testing.assert_array_equal(value, low.get_var(name))
    smooth = editing.blend_networks(low, high, 16, blend_width=0.5)
    weights = editing.blend_weights(5, 16, 0.5)
    assert weights[2] < weights[3] < 0.5 < weights[4] < weights[5]
    name = "G_synthesis/8x8/Conv1/weight"
    np.testing.assert_allclose(smooth.get_var(name), (1 - weights[3]) * low.get_var(name) +
                               weights[3] * high.get_var(name), rtol=1e-6, atol=1e-6)
    with pytest.raises(dnnlib.util.UserError, match="architecture"):
        editing.blend_networks(low, make_networks(resolution=16)[2], 8)
    with pytest.raises(dnnlib.util.UserError, match="power of two"):
        editing.blend_networks(low, high, 12)


# ----------------------------------------------------------------------------------------------------------------
# Text-driven editing with a tiny random-weight CLIP.

def tiny_clip(vocab_size=100):
    from training import clip
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return clip.CLIP(embed_dim=32, image_size=32, patch_size=8, vision_width=64, vision_layers=2, context_length=16,
                     vocab_size=vocab_size, text_width=64, text_layers=2).eval().requires_grad_(False)


def test_text_edit_lowers_its_loss_and_respects_the_l2_weight(nets, single_thread):
    import torch
    _G, _D, Gs = nets
    model = tiny_clip()
    tokens = torch.randint(1, 98, [1, 16], generator=torch.Generator().manual_seed(0))
    tokens[0, 6:] = 0
    tokens[0, 5] = 99  # the end token, where the text embedding is read
    text = model.encode_text(tokens)
    w0 = np.repeat(Gs.components.mapping.run(np.random.RandomState(3).randn(1, 32), None), 1, axis=0)
    distances = {}
    for l2 in (0.0, 0.5):
        edited, history = editing.text_edit(Gs, model, text, w0, num_steps=25, l2_lambda=l2)
        assert edited.shape == w0.shape
        assert history[-1] < history[0]
        distances[l2] = np.square(edited - w0).sum()
    assert 0 < distances[0.5] < distances[0.0]  # a larger weight keeps the edit closer to where it started
