"""Network pickles: official-format files load bit-exactly, our files round-trip, and nothing in a pickle runs."""

import collections
import io
import os
import pickle
import pickletools

import numpy as np
import pytest

import dnnlib
from dnnlib.tflib.network import Network
from dnnlib.tflib.network_pickle import dump_network_pkl, load_network_pkl, save_network_pkl
import pretrained_networks
from conftest import SMALL_G_KWARGS, make_networks

def stream_globals(data):
    """The 'module.name' globals a pickle stream resolves."""
    found = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            found.add(f"{module}.{name}")
            return super().find_class(module, name)
    Recorder(io.BytesIO(data)).load()
    return found


# ----------------------------------------------------------------------------------------------------------------
# An official pickle, written the way the TensorFlow release writes one, from names and shapes derived here from
# the original's rules (independently of training/networks_stylegan2.py).


def OfficialNetwork(state):
    """An object that pickles as a `dnnlib.tflib.network.Network` with the given state, as the original's do."""
    net = Network.__new__(Network)
    net.state = state
    net.__getstate__ = lambda: state  # an instance attribute wins over the class's __getstate__
    return net


def _nf(stage, fmap_base, fmap_max):
    return int(np.clip(int(fmap_base / (2.0 ** stage)), 1, fmap_max))


def official_g_variables(rnd, resolution, fmap_base, fmap_max, latent_size, dlatent_size, mapping_fmaps,
                         mapping_layers, label_size, num_channels):
    """(mapping vars, synthesis vars) in the original's names, order and TF shapes, with random values."""
    def var(*shape):  # TF returns scalar variables as NumPy scalars
        return rnd.randn(*shape).astype(np.float32) if shape else np.float32(rnd.randn())
    mapping = []
    if label_size:
        mapping.append(("LabelConcat/weight", var(label_size, latent_size)))
    fan_in = latent_size * (2 if label_size else 1)
    for i in range(mapping_layers):
        fmaps = dlatent_size if i == mapping_layers - 1 else mapping_fmaps
        mapping += [(f"Dense{i}/weight", var(fan_in, fmaps)), (f"Dense{i}/bias", var(fmaps))]
        fan_in = fmaps

    log2 = int(np.log2(resolution))
    num_layers = log2 * 2 - 2
    nf = lambda stage: _nf(stage, fmap_base, fmap_max)
    synthesis = [(f"noise{i}", var(1, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2))) for i in range(num_layers - 1)]

    def modconv(scope, fmaps_in, fmaps_out, kernel, noise=True):
        out = [(f"{scope}/weight", var(kernel, kernel, fmaps_in, fmaps_out)),
               (f"{scope}/mod_weight", var(dlatent_size, fmaps_in)), (f"{scope}/mod_bias", var(fmaps_in))]
        if noise:
            out.append((f"{scope}/noise_strength", var()))
        return out + [(f"{scope}/bias", var(fmaps_out))]

    synthesis.append(("4x4/Const/const", var(1, nf(1), 4, 4)))
    synthesis += modconv("4x4/Conv", nf(1), nf(1), 3)
    synthesis += modconv("4x4/ToRGB", nf(1), num_channels, 1, noise=False)
    for res in range(3, log2 + 1):
        scope = f"{2 ** res}x{2 ** res}"
        synthesis += modconv(f"{scope}/Conv0_up", nf(res - 2), nf(res - 1), 3)
        synthesis += modconv(f"{scope}/Conv1", nf(res - 1), nf(res - 1), 3)
        synthesis += modconv(f"{scope}/ToRGB", nf(res - 1), num_channels, 1, noise=False)
    return mapping, synthesis


def official_d_variables(rnd, resolution, fmap_base, fmap_max, label_size, num_channels):
    """D_stylegan2 (resnet) variables in the original's names, order and shapes."""
    def var(*shape):
        return rnd.randn(*shape).astype(np.float32)
    nf = lambda stage: _nf(stage, fmap_base, fmap_max)
    log2 = int(np.log2(resolution))
    out = [(f"{resolution}x{resolution}/FromRGB/weight", var(1, 1, num_channels, nf(log2 - 1))),
           (f"{resolution}x{resolution}/FromRGB/bias", var(nf(log2 - 1)))]
    for res in range(log2, 2, -1):
        scope = f"{2 ** res}x{2 ** res}"
        out += [(f"{scope}/Conv0/weight", var(3, 3, nf(res - 1), nf(res - 1))), (f"{scope}/Conv0/bias", var(nf(res - 1))),
                (f"{scope}/Conv1_down/weight", var(3, 3, nf(res - 1), nf(res - 2))),
                (f"{scope}/Conv1_down/bias", var(nf(res - 2))),
                (f"{scope}/Skip/weight", var(1, 1, nf(res - 1), nf(res - 2)))]
    out += [("4x4/Conv/weight", var(3, 3, nf(1) + 1, nf(1))), ("4x4/Conv/bias", var(nf(1))),
            ("4x4/Dense0/weight", var(nf(1) * 16, nf(0))), ("4x4/Dense0/bias", var(nf(0))),
            ("Output/weight", var(nf(0), max(label_size, 1))), ("Output/bias", var(max(label_size, 1)))]
    return out


def official_state(name, func_name, static_kwargs, variables, components=None, marker=None):
    # Source that would announce itself if anything executed it.
    src = "raise RuntimeError('build_module_src was executed')\n"
    if marker:
        src = f"open({str(marker)!r}, 'w').write('executed')\n" + src
    return dict(version=4, name=name, static_kwargs=dict(static_kwargs), components=components or {},
                build_module_src=src, build_func_name=func_name, variables=variables)


def official_networks(marker, label_size=0, seed=1):
    """An official-format (G, D, Gs) tuple of OfficialNetwork objects, and the variables written into Gs."""
    rnd = np.random.RandomState(seed)
    # Official files carry some kwargs as NumPy integers (they come from dataset shapes).
    kw = dict(SMALL_G_KWARGS, label_size=label_size, resolution=np.int64(32), num_channels=np.int64(3))
    g_args = {key: kw[key] for key in ("resolution", "fmap_base", "fmap_max", "latent_size", "dlatent_size",
                                       "mapping_fmaps", "mapping_layers", "label_size", "num_channels")}
    num_layers = int(np.log2(kw["resolution"])) * 2 - 2

    def generator(name):
        mapping_vars, synthesis_vars = official_g_variables(rnd, **g_args)
        top_vars = [("lod", np.float32(0)), ("dlatent_avg", rnd.randn(kw["dlatent_size"]).astype(np.float32))]
        synthesis = OfficialNetwork(official_state("G_synthesis", "G_synthesis_stylegan2", kw, synthesis_vars, marker=marker))
        mapping = OfficialNetwork(official_state("G_mapping", "G_mapping", dict(kw, dlatent_broadcast=num_layers),
                                                 mapping_vars, marker=marker))
        net = OfficialNetwork(official_state(name, "G_main", kw, top_vars, dict(synthesis=synthesis, mapping=mapping),
                                             marker=marker))
        expected = dict(top_vars)
        expected.update(("G_synthesis/" + n, v) for n, v in synthesis_vars)
        expected.update(("G_mapping/" + n, v) for n, v in mapping_vars)
        return net, expected

    G, _ = generator("G")
    Gs, expected = generator("Gs")
    d_kwargs = {key: kw[key] for key in ("resolution", "fmap_base", "fmap_max", "label_size", "num_channels")}
    D = OfficialNetwork(official_state("D", "D_stylegan2", d_kwargs, official_d_variables(rnd, **d_kwargs), marker=marker))
    return (G, D, Gs), expected


def test_official_pickle_loads_bit_exact_and_never_runs_its_source(tmp_path):
    marker = tmp_path / "marker.txt"
    nets, expected = official_networks(marker)
    data = pickle.dumps(nets, protocol=4)
    assert "dnnlib.tflib.network.Network" in stream_globals(data)
    path = tmp_path / "official.pkl"
    path.write_bytes(data)

    G, D, Gs = pretrained_networks.load_networks(str(path))
    assert not marker.exists(), "build_module_src was executed"
    assert list(Gs.vars) == list(expected), "variable names or order differ from the original's"
    for name, value in expected.items():
        got = Gs.get_var(name)
        assert got.dtype == np.float32 and got.shape == value.shape and np.array_equal(got, value), name
    assert Gs.components.synthesis.name == "G_synthesis" and Gs.components.mapping.name == "G_mapping"
    assert Gs.input_shape == [None, 32] and Gs.output_shape == [None, 3, 32, 32]
    assert D.output_shape == [None, 1]
    images = Gs.run(np.random.RandomState(0).randn(2, 32), None, truncation_psi=0.5, randomize_noise=False)
    assert images.shape == (2, 3, 32, 32) and np.isfinite(images).all()

    # Saved again, the file references NumPy only by its NumPy-1 paths and holds no source code.
    resaved = tmp_path / "resaved.pkl"
    save_network_pkl((G, D, Gs), str(resaved))
    data = resaved.read_bytes()
    assert {g for g in stream_globals(data) if g.startswith("numpy.")} == {
        "numpy.core.multiarray._reconstruct", "numpy.core.multiarray.scalar", "numpy.ndarray", "numpy.dtype"}
    assert b"build_module_src was executed" not in data
    with open(resaved, "rb") as f:
        Gs2 = load_network_pkl(f)[2]
    assert all(np.array_equal(Gs.get_var(name), Gs2.get_var(name)) for name in Gs.vars)


def test_numpy1_array_paths_load(tmp_path):
    """2019 files reference numpy.core.multiarray; our writer emits that path too."""
    G, D, Gs = make_networks()
    buf = io.BytesIO()
    dump_network_pkl((G, D, Gs), buf)
    data = buf.getvalue()
    assert b"numpy.core.multiarray" in data and b"numpy._core" not in data
    buf.seek(0)
    _G2, _D2, Gs2 = load_network_pkl(buf)
    assert all(np.array_equal(Gs.get_var(name), Gs2.get_var(name)) for name in Gs.vars)


def test_round_trip_is_bit_identical_and_holds_no_code(tmp_path):
    G, D, Gs = make_networks()
    path = str(tmp_path / "ours.pkl")
    save_network_pkl((G, D, Gs), path)
    data = open(path, "rb").read()
    # Only data: the Network class and NumPy's array reconstruction; no source text.
    assert stream_globals(data) == {"dnnlib.tflib.network.Network", "numpy.core.multiarray._reconstruct",
                                    "numpy.ndarray", "numpy.dtype"}
    strings = [arg for _op, arg, _ in pickletools.genops(data) if isinstance(arg, str)]
    assert not any("def " in s or "import " in s for s in strings)
    with open(path, "rb") as f:
        G2, D2, Gs2 = load_network_pkl(f)
    for a, b in ((G, G2), (D, D2), (Gs, Gs2)):
        assert list(a.vars) == list(b.vars)
        for name in a.vars:
            assert np.array_equal(a.get_var(name), b.get_var(name)), name
        assert a.static_kwargs == b.static_kwargs and a.name == b.name
    z = np.random.RandomState(3).randn(3, 32)
    assert np.array_equal(Gs.run(z, None, randomize_noise=False), Gs2.run(z, None, randomize_noise=False))
    scores = D.run(np.random.RandomState(4).randn(4, 3, 32, 32), None)
    assert np.array_equal(scores, D2.run(np.random.RandomState(4).randn(4, 3, 32, 32), None))
    # The state is the original's version 4, with a source placeholder rather than code.
    state = Gs2.__getstate__()
    assert state["version"] == 4 and state["build_func_name"] == "G_main"
    assert set(state) == {"version", "name", "static_kwargs", "components", "build_module_src", "build_func_name",
                          "variables"}
    assert state["build_module_src"].startswith("#") and state["build_module_src"].count("\n") == 1


def test_plain_pickle_load_after_import_works_like_the_original(small_pkl):
    """Scripts of the original do `import dnnlib.tflib; G, D, Gs = pickle.load(f)`."""
    import dnnlib.tflib as tflib
    tflib.init_tf()
    with open(small_pkl, "rb") as f:
        _G, _D, Gs = pickle.load(f)
    images = Gs.run(np.zeros([1, 32]), None, truncation_psi=0.5, randomize_noise=False,
                    output_transform=dict(func=tflib.convert_images_to_uint8, nchw_to_nhwc=True))
    assert images.shape == (1, 32, 32, 3) and images.dtype == np.uint8


# ----------------------------------------------------------------------------------------------------------------
# Security: nothing in a pickle runs.


class _Payload:
    """Pickles as a call of `func(*args)`: what a malicious pickle does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker):
    import builtins
    import subprocess
    touch = f"open({str(marker)!r}, 'w').write('pwned')"
    return {
        "os.system": _Payload(os.system, f"touch {marker}"),
        "subprocess.call": _Payload(subprocess.call, ["touch", str(marker)]),
        "builtins.eval": _Payload(builtins.eval, touch),
        "builtins.exec": _Payload(builtins.exec, touch),
        "builtins.getattr": _Payload(getattr, _Payload(__import__, "os"), "system"),
        "unknown global": _Payload(collections.Counter, "abc"),
    }


@pytest.mark.parametrize("kind", ["os.system", "subprocess.call", "builtins.eval", "builtins.exec",
                                  "builtins.getattr", "unknown global"])
@pytest.mark.parametrize("where", ["top", "static_kwargs", "variables"])
def test_malicious_pickles_are_refused_and_never_run(tmp_path, kind, where):
    marker = tmp_path / "marker.txt"
    payload = _payloads(marker)[kind]
    if where == "top":
        obj = payload
    else:
        nets, _ = official_networks(None)
        state = nets[2].state
        if where == "static_kwargs":
            state["static_kwargs"]["resolution"] = payload
        else:
            state["variables"].append(("evil", payload))
        obj = nets
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=4))
    with pytest.raises(dnnlib.util.UserError, match="refusing to load .*not network data"):
        pretrained_networks.load_networks(str(path))
    assert not marker.exists(), "the payload ran"


def test_unknown_build_function_is_refused(tmp_path):
    nets, _ = official_networks(None)
    nets[2].state["build_func_name"] = "os.system"
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(nets, protocol=4))
    with pytest.raises(dnnlib.util.UserError, match="unsupported network build function 'os.system'"):
        pretrained_networks.load_networks(str(path))


@pytest.mark.parametrize("corrupt", ["truncated", "garbage", "empty", "not networks", "wrong shape"])
def test_bad_pickles_give_one_clear_error(tmp_path, small_pkl, corrupt):
    path = tmp_path / f"{corrupt}.pkl"
    data = open(small_pkl, "rb").read()
    if corrupt == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif corrupt == "garbage":
        path.write_bytes(np.random.RandomState(0).bytes(5000))
    elif corrupt == "empty":
        path.write_bytes(b"")
    elif corrupt == "not networks":
        path.write_bytes(pickle.dumps({"a": np.zeros(3)}, protocol=4))
    else:
        nets, _ = official_networks(None)
        variables = nets[2].state["components"]["mapping"].state["variables"]
        variables[0] = (variables[0][0], np.zeros([3, 3], np.float32))
        path.write_bytes(pickle.dumps(nets, protocol=4))
    with pytest.raises(dnnlib.util.UserError) as info:
        pretrained_networks.load_networks(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message or "variable" in message


def test_missing_file_and_unknown_gdrive_name():
    with pytest.raises(dnnlib.util.UserError):
        pretrained_networks.load_networks("/nonexistent/network.pkl")
    with pytest.raises(dnnlib.util.UserError, match="unknown network"):
        pretrained_networks.load_networks("gdrive:networks/stylegan2-nothing-config-z.pkl")


def test_official_names_map_to_nvidia_hosting():
    url = pretrained_networks.get_path_or_url("gdrive:networks/stylegan2-ffhq-config-f.pkl")
    assert url == "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/stylegan2-ffhq-config-f.pkl"
    assert len(pretrained_networks.gdrive_urls) == 36


def test_official_config_b_to_d_pickle_loads():
    """Configs b-d: G_main with G_synthesis_stylegan_revised and D_stylegan, in the original's variable names,
    order and shapes (written here from the TF source's rules), load bit-exactly and run at any lod."""
    rnd = np.random.RandomState(2)
    kw = dict(SMALL_G_KWARGS, resolution=np.int64(32), num_channels=np.int64(3),
              synthesis_func="G_synthesis_stylegan_revised")
    var = lambda *shape: rnd.randn(*shape).astype(np.float32) if shape else np.float32(rnd.randn())
    nf = lambda stage: _nf(stage, kw["fmap_base"], kw["fmap_max"])
    mapping_vars, stylegan2_vars = official_g_variables(rnd, **{k: kw[k] for k in (
        "resolution", "fmap_base", "fmap_max", "latent_size", "dlatent_size", "mapping_fmaps", "mapping_layers",
        "label_size", "num_channels")})
    by_name = dict(stylegan2_vars)
    synthesis_vars = [("lod", np.float32(0))] + [(n, v) for n, v in stylegan2_vars if n.startswith("noise")]
    for res in range(2, 6):  # the 'linear' template graph: each level's layers, then its ToRGB_lod at top level
        scope = f"{2 ** res}x{2 ** res}"
        synthesis_vars += [(n, v) for n, v in stylegan2_vars if n.startswith(scope + "/") and "/ToRGB/" not in n]
        synthesis_vars += [(n.replace(f"{scope}/ToRGB", f"ToRGB_lod{5 - res}"), v) for n, v in stylegan2_vars
                           if n.startswith(f"{scope}/ToRGB/")]
    assert len(synthesis_vars) == len(by_name) + 1
    d_vars = [("lod", np.float32(0)), ("FromRGB_lod0/weight", var(1, 1, 3, nf(4))), ("FromRGB_lod0/bias", var(nf(4)))]
    for res in range(5, 2, -1):
        scope = f"{2 ** res}x{2 ** res}"
        d_vars += [(f"{scope}/Conv0/weight", var(3, 3, nf(res - 1), nf(res - 1))), (f"{scope}/Conv0/bias",
                   var(nf(res - 1))), (f"{scope}/Conv1_down/weight", var(3, 3, nf(res - 1), nf(res - 2))),
                   (f"{scope}/Conv1_down/bias", var(nf(res - 2))),
                   (f"FromRGB_lod{6 - res}/weight", var(1, 1, 3, nf(res - 2))), (f"FromRGB_lod{6 - res}/bias",
                                                                                var(nf(res - 2)))]
    d_vars += [("4x4/Conv/weight", var(3, 3, nf(1) + 1, nf(1))), ("4x4/Conv/bias", var(nf(1))),
               ("4x4/Dense0/weight", var(nf(1) * 16, nf(0))), ("4x4/Dense0/bias", var(nf(0))),
               ("Output/weight", var(nf(0), 1)), ("Output/bias", var(1))]
    synthesis = OfficialNetwork(official_state("G_synthesis", "G_synthesis_stylegan_revised", kw, synthesis_vars))
    mapping = OfficialNetwork(official_state("G_mapping", "G_mapping", dict(kw, dlatent_broadcast=8), mapping_vars))
    top_vars = [("lod", np.float32(0)), ("dlatent_avg", var(kw["dlatent_size"]))]
    Gs = OfficialNetwork(official_state("Gs", "G_main", kw, top_vars, dict(synthesis=synthesis, mapping=mapping)))
    d_kwargs = {k: kw[k] for k in ("resolution", "fmap_base", "fmap_max", "label_size", "num_channels")}
    D = OfficialNetwork(official_state("D", "D_stylegan", d_kwargs, d_vars))
    _, D, Gs = load_network_pkl(io.BytesIO(pickle.dumps((Gs, D, Gs), protocol=4)))
    expected = dict(top_vars, **{"G_synthesis/" + n: v for n, v in synthesis_vars},
                    **{"G_mapping/" + n: v for n, v in mapping_vars})
    assert list(Gs.vars) == list(expected) and list(D.vars) == [n for n, _ in d_vars]
    for name, value in expected.items():
        assert np.array_equal(Gs.get_var(name), value), name
    for name, value in d_vars:
        assert np.array_equal(D.get_var(name), value), name
    latents = rnd.randn(4, 32)
    for lod in (0.0, 1.5, 3.0):
        Gs.set_var("lod", lod)
        D.set_var("lod", lod)
        images = Gs.run(latents, None, truncation_psi=0.5, randomize_noise=False)
        assert images.shape == (4, 3, 32, 32) and np.isfinite(images).all()
        assert D.run(images, None).shape == (4, 1)
