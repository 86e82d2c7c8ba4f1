"""generate_figures.py: the original's canvas layouts at any resolution, cells that are the images they claim to be,
and one clear line for bad input."""

import os
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest

import dnnlib.tflib as tflib
import generate_figures
from conftest import REPO_ROOT, make_networks
from dnnlib.tflib.network_pickle import load_network_pkl, save_network_pkl
from run_generator import noise_kwargs

RES = 32  # the small network of conftest: 32x32, 8 style layers, 7 noise inputs
TO_UINT8 = dict(func=tflib.convert_images_to_uint8, nchw_to_nhwc=True)


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, "generate_figures.py"), *args], env=env,
                          capture_output=True, text=True, timeout=300)


def draw_all(network_pkl, result_dir, *args):
    """Run the command; return {file name: image array} of its run directory."""
    result = run_cli(f"--network={network_pkl}", f"--result-dir={result_dir}", *args)
    assert result.returncode == 0, result.stderr
    (run_name,) = os.listdir(result_dir)
    assert run_name == "00000-generate-figures"
    run_dir = os.path.join(result_dir, run_name)
    assert run_dir in result.stdout.strip().splitlines()[-1]
    return {name: np.array(PIL.Image.open(os.path.join(run_dir, name)))
            for name in os.listdir(run_dir) if name.endswith(".png")}


def expected_sizes(res, stem):
    """(width, height) of each figure from the original's layouts with 1024 pixels scaled to `res`."""
    lods = [lod for lod in (0, 1, 2, 2, 3, 3) if res // 2**lod > 0]  # a column of 0-pixel images is left out
    return {f"figure02-uncurated-{stem}.png": (sum(res // 2**lod for lod in lods), 3 * res),
            "figure03-style-mixing.png": ((5 + 1) * res, (6 + 1) * res),
            "figure04-noise-detail.png": (3 * res, 2 * res),
            "figure05-noise-components.png": (2 * res, 2 * res),
            "figure08-truncation-trick.png": (6 * res, 2 * res)}


def cell(figure, row, col, res=RES):
    return figure[row * res:(row + 1) * res, col * res:(col + 1) * res]


def assert_close(a, b):
    """Equal to within 1/255: a different batch composition may move a value across a rounding step."""
    assert a.shape == b.shape
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def z(seeds):
    return np.stack([np.random.RandomState(seed).randn(32) for seed in seeds])


@pytest.fixture(scope="module")
def figures(small_pkl, tmp_path_factory):
    return draw_all(small_pkl, tmp_path_factory.mktemp("figures"))


@pytest.fixture(scope="module")
def Gs(small_pkl):
    with open(small_pkl, "rb") as f:
        return load_network_pkl(f)[2]


def test_layer_ranges_keep_their_share_of_the_layers():
    for r in (range(0, 4), range(4, 8), range(8, 18), range(0, 0)):
        assert generate_figures.map_range(r, 18) == r
    assert [generate_figures.map_range(range(a, b), 8) for a, b in ((0, 4), (4, 8), (8, 18))] == \
        [range(0, 2), range(2, 4), range(4, 8)]
    assert [generate_figures.map_range(range(a, b), 12) for a, b in ((0, 4), (4, 8), (8, 18))] == \
        [range(0, 3), range(3, 5), range(5, 12)]
    assert generate_figures.scale_pixels(650, 32) == 20 and generate_figures.scale_pixels(1024, 64) == 64


def test_canvas_sizes(figures):
    assert {name: (image.shape[1], image.shape[0]) for name, image in figures.items()} == expected_sizes(RES, "small")


def test_style_mixing_cells_are_the_mixed_images(figures, Gs):
    figure = figures["figure03-style-mixing.png"]
    src = Gs.components.mapping.run(z([639, 701, 687, 615, 2268]), None)
    dst = Gs.components.mapping.run(z([888, 829, 1898, 1733, 1614, 845]), None)
    synthesis = Gs.components.synthesis
    # Coarse 0-4, middle 4-8 and fine 8-18 of 18 layers are 0-2, 2-4 and 4-8 of the small network's 8.
    for row, layers in enumerate([slice(0, 2)] * 3 + [slice(2, 4)] * 2 + [slice(4, 8)]):
        assert_close(cell(figure, row + 1, 0), synthesis.run(dst[row:row + 1], randomize_noise=False,
                                                             output_transform=TO_UINT8)[0])
        for col in range(len(src)):
            w = dst[row].copy()
            w[layers] = src[col, layers]
            expected = synthesis.run(w[np.newaxis], randomize_noise=False, output_transform=TO_UINT8)[0]
            assert_close(cell(figure, row + 1, col + 1), expected)
    assert (cell(figure, 0, 0) == 255).all()  # the empty corner stays white


def test_truncation_psi_zero_is_the_average_for_every_seed(figures, Gs):
    figure = figures["figure08-truncation-trick.png"]
    avg = np.tile(Gs.get_var("dlatent_avg"), [1, 8, 1])
    expected = Gs.components.synthesis.run(avg, randomize_noise=False, output_transform=TO_UINT8)[0]
    psi_zero = 3  # psis = [1, 0.7, 0.5, 0, -0.5, -1]
    assert np.array_equal(cell(figure, 0, psi_zero), cell(figure, 1, psi_zero))
    assert_close(cell(figure, 0, psi_zero), expected)
    plain = Gs.run(z([91, 388]), None, truncation_psi=1, randomize_noise=False, output_transform=TO_UINT8)
    for row in range(2):
        assert_close(cell(figure, row, 0), plain[row])
        assert not np.array_equal(cell(figure, row, 0), cell(figure, row, psi_zero))


def test_noise_components_quadrants(figures, Gs):
    figure = figures["figure05-noise-components.png"]
    latents, half = z([1967, 1555]), RES // 2
    stored = Gs.run(latents, None, truncation_psi=1, randomize_noise=False, output_transform=TO_UINT8)
    zero = Gs.run(latents, None, truncation_psi=1, output_transform=TO_UINT8, **noise_kwargs(Gs, "none", num=2))
    assert not np.array_equal(stored, zero)
    for col, flip in enumerate([False, True]):  # flips=[1]: the second seed is mirrored
        if flip:
            stored[col], zero[col] = stored[col, :, ::-1], zero[col, :, ::-1]
        x = col * RES
        assert_close(figure[:RES, x:x + half], stored[col, :, :half])  # top left: all noise
        assert_close(figure[:RES, x + half:x + RES], zero[col, :, half:])  # top right: no noise


def test_noise_components_leave_the_network_alone(tmp_path, Gs):
    before = {name: Gs.components.synthesis.get_var(name) for name in generate_figures.noise_names(Gs)}
    generate_figures.draw_noise_components_figure(str(tmp_path / "f.png"), Gs, RES, RES, [1, 2],
                                                  [range(0, 7), range(0, 0), range(4, 7), range(0, 4)], [1])
    for name, value in before.items():
        assert np.array_equal(Gs.components.synthesis.get_var(name), value), name


def test_noise_detail_shows_noise_variation(figures):
    figure = figures["figure04-noise-detail.png"]
    for row in range(2):
        std_map = cell(figure, row, 2)
        assert std_map.max() > 0 and (std_map[..., 0] == std_map[..., 1]).all()  # gray, not blank


def test_a_4x4_network(tmp_path):
    """Two style layers and one noise input: ranges may be empty, the smallest uncurated column is left out."""
    path = tmp_path / "tiny.pkl"
    save_network_pkl(make_networks(resolution=4), str(path))
    images = draw_all(path, tmp_path / "out")
    assert {name: (image.shape[1], image.shape[0]) for name, image in images.items()} == expected_sizes(4, "tiny")


def test_conditional_network(tmp_path, conditional_pkl):
    missing = run_cli(f"--network={conditional_pkl}", f"--result-dir={tmp_path / 'a'}")
    assert_one_clear_line(missing, "conditional", "--class")
    images = draw_all(conditional_pkl, tmp_path / "b", "--class=1", "--figures=truncation")
    assert list(images) == ["figure08-truncation-trick.png"]


def assert_one_clear_line(result, *words):
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if "error:" in line]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], result.stderr


def test_bad_figure_name(tmp_path, small_pkl):
    result = run_cli(f"--network={small_pkl}", "--figures=uncurated,bogus", f"--result-dir={tmp_path}")
    assert_one_clear_line(result, "--figures", "bogus")
    assert not os.listdir(tmp_path)  # no run directory for a run that never started
