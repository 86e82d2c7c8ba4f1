"""Our PyTorch networks against golden outputs of NVIDIA's original TensorFlow StyleGAN2 code.

The .npz files in tests/data/tf_golden/ were produced by running the original `training/networks_stylegan2.py`
(with its reference, non-CUDA ops) under TensorFlow 2 in tf.compat.v1 graph mode; see the README there. Each file
holds the static kwargs, every variable under its original name, the inputs and the original's outputs. Here we
build our network from the same kwargs, assign every variable by name and compare outputs. No TensorFlow needed.
"""

import glob
import json
import os

import numpy as np
import pytest

from dnnlib.tflib.network import Network
from dnnlib.tflib.tfutil import convert_images_to_uint8

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "tf_golden")
GOLDEN_FILES = sorted(glob.glob(os.path.join(GOLDEN_DIR, "*.npz")))
G_FILES = [f for f in GOLDEN_FILES if os.path.basename(f).startswith("G_")]
D_FILES = [f for f in GOLDEN_FILES if os.path.basename(f).startswith("D_")]

# float32 on both sides, different op orders (TF reference ops vs torch): a few ulps per layer, amplified by the
# depth of the network. 1e-4 relative to the largest golden magnitude (at least 1) leaves ample room for that and
# none for a real bug (a wrong filter tap, padding or scale gives errors of order 1e-2 and above).
RTOL = 1e-4


def _id(path):
    return os.path.splitext(os.path.basename(path))[0]


def load_golden(path):
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    kind = str(arrays.pop("kind"))
    kwargs = json.loads(str(arrays.pop("kwargs")))
    variables = {key[len("var/"):]: arrays.pop(key) for key in list(arrays) if key.startswith("var/")}
    return kind, kwargs, variables, arrays


def build_network(kind, kwargs, variables, **overrides):
    """Our network for the golden kwargs, with every variable assigned from the golden file by name."""
    func_name = {"G": "G_main", "D": "D_stylegan2"}[kind]
    net = Network(kind, func_name=func_name, **dict(kwargs, **overrides))
    ours, theirs = set(net.vars), set(variables)
    assert not theirs - ours, f"variables of the original missing in ours: {sorted(theirs - ours)}"
    assert not ours - theirs, f"variables of ours missing in the original: {sorted(ours - theirs)}"
    for name, value in variables.items():
        var = net.vars[name]
        assert tuple(var.shape) == value.shape, f"{name}: our shape {tuple(var.shape)} != original {value.shape}"
        var.assign(value)
    for name, value in variables.items():  # the assignment really took
        np.testing.assert_array_equal(net.vars[name].eval(), value, err_msg=name)
    return net


def assert_close(ours, golden, what):
    ours, golden = np.asarray(ours), np.asarray(golden)
    assert ours.shape == golden.shape, f"{what}: shape {ours.shape} != golden {golden.shape}"
    err = np.abs(ours.astype(np.float64) - golden.astype(np.float64)).max()
    tol = RTOL * max(1.0, float(np.abs(golden).max()))
    assert err <= tol, f"{what}: max abs error {err:.3g} > {tol:.3g} (golden max |x| {np.abs(golden).max():.3g})"


def assert_uint8_close(ours, golden, what):
    ours, golden = np.asarray(ours), np.asarray(golden)
    assert ours.dtype == np.uint8 and ours.shape == golden.shape, f"{what}: {ours.dtype} {ours.shape} vs {golden.shape}"
    diff = np.abs(ours.astype(np.int32) - golden.astype(np.int32))
    assert diff.max() <= 1, f"{what}: {int((diff > 1).sum())} pixels differ by more than 1 (max {diff.max()})"


UINT8 = dict(func=convert_images_to_uint8, nchw_to_nhwc=True)


def test_golden_files_present():
    assert len(G_FILES) >= 3 and len(D_FILES) >= 3, f"golden files missing in {GOLDEN_DIR}"


@pytest.mark.parametrize("fused_modconv", [True, False], ids=["fused", "unfused"])
@pytest.mark.parametrize("path", G_FILES, ids=_id)
def test_generator_matches_tf(path, fused_modconv):
    kind, kwargs, variables, gold = load_golden(path)
    assert kind == "G"
    G = build_network(kind, kwargs, variables, fused_modconv=fused_modconv)
    z, labels = gold["z"], gold["labels"]

    # Mapping network alone: Z (+ labels) -> W, broadcast to every layer.
    assert_close(G.components.mapping.run(z, labels), gold["mapping_dlatents"], "mapping dlatents")

    # Synthesis network alone, on dlatents that differ per layer (catches a layer using the wrong style).
    synthesis = G.components.synthesis
    w = gold["synth_dlatents_in"]
    assert_close(synthesis.run(w, randomize_noise=False, fused_modconv=fused_modconv), gold["synth_images"],
                 "synthesis images")
    assert_uint8_close(synthesis.run(w, randomize_noise=False, fused_modconv=fused_modconv, output_transform=UINT8),
                       gold["synth_images_uint8"], "synthesis uint8 images")

    # Whole generator with the truncation trick.
    for i, (psi, cutoff) in enumerate(json.loads(str(gold["truncations"]))):
        what = f"G(truncation_psi={psi}, truncation_cutoff={cutoff})"
        run_kwargs = dict(truncation_psi=psi, truncation_cutoff=cutoff, randomize_noise=False,
                          fused_modconv=fused_modconv)
        images, dlatents = G.run(z, labels, return_dlatents=True, **run_kwargs)
        assert_close(dlatents, gold[f"trunc{i}_dlatents"], what + " dlatents")
        assert_close(images, gold[f"trunc{i}_images"], what + " images")
        assert_uint8_close(G.run(z, labels, output_transform=UINT8, **run_kwargs), gold[f"trunc{i}_images_uint8"],
                           what + " uint8 images")


@pytest.mark.parametrize("path", D_FILES, ids=_id)
def test_discriminator_matches_tf(path):
    kind, kwargs, variables, gold = load_golden(path)
    assert kind == "D"
    D = build_network(kind, kwargs, variables)
    assert_close(D.run(gold["images"], gold["labels"]), gold["scores"], "D scores")
