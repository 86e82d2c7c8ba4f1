"""Draw the figures of the StyleGAN paper with any network pickle, laid out as the original StyleGAN release's
generate_figures.py draws them for FFHQ.

    python generate_figures.py --network=gdrive:networks/stylegan2-ffhq-config-f.pkl
    python generate_figures.py --figures=style-mixing,truncation

Each run writes into a new folder <result-dir>/<NNNNN>-generate-figures.

The original's arguments are for a 1024x1024 network with 18 style layers and 18 noise inputs. Pixel sizes and crops
are scaled to the network's resolution. A layer range [a, b) becomes [round(a * L / 18), round(b * L / 18)) for a
network with L style layers (for noise ranges, L is its number of noise inputs), so that coarse (0-4), middle (4-8)
and fine (8-18) styles keep their share of the layers; at 64x64 (12 layers) they are 0-3, 3-5 and 5-12. The
truncation cutoff of the uncurated figure (8 of 18 layers, the original generator's default) is mapped the same way.
"""

import argparse
import functools
import os
import re
import urllib.parse

import numpy as np
import PIL.Image
import torch
import tqdm

import dnnlib
import dnnlib.ops
import dnnlib.tflib as tflib
import pretrained_networks
from dnnlib.tflib.network import default_device
from run_generator import make_labels, save_image, to_pil

FIGURES = ("uncurated", "style-mixing", "noise-detail", "noise-components", "truncation")

REFERENCE_RESOLUTION = 1024  # the original's pixel arguments are for FFHQ at 1024x1024...
REFERENCE_LAYERS = 18  # ...and its style and noise ranges for 18 layers

synthesis_kwargs = dict(output_transform=dict(func=tflib.convert_images_to_uint8, nchw_to_nhwc=True),
                        minibatch_size=8)

# ----------------------------------------------------------------------------------------------------------------
# From the original's 1024x1024, 18-layer arguments to the network at hand.


def scale_pixels(value, resolution):
    """A pixel position or size of the original's 1024x1024 layouts at `resolution` (rounded half up)."""
    return int(value * resolution / REFERENCE_RESOLUTION + 0.5)


def scale_layers(boundary, count):
    """A layer boundary of the original's 18 layers as the same share of `count` layers (rounded half up)."""
    return int(boundary * count / REFERENCE_LAYERS + 0.5)


def map_range(layers, count):
    """A range over the original's 18 layers mapped onto `count` layers; it may be empty for tiny networks."""
    return range(scale_layers(layers.start, count), scale_layers(layers.stop, count))


# ----------------------------------------------------------------------------------------------------------------
# Helpers.


def latents_for(Gs, seeds):
    """One z per seed, drawn as the original does: the first randn of the seed's RandomState."""
    return np.stack([np.random.RandomState(seed).randn(*Gs.input_shape[1:]) for seed in seeds])


def repeat_label(label, num):
    """`num` copies of a [1, label_size] one-hot label, or None for an unconditional network."""
    return None if label is None else np.repeat(label, num, axis=0)


def noise_names(Gs):
    """Names of the synthesis network's noise variables, in layer order."""
    return [name for name in Gs.components.synthesis.vars if name.startswith("noise")]


def stored_noise(Gs):
    """Copies of the network's own noise inputs (what randomize_noise=False uses), one [1, 1, r, r] per layer."""
    synthesis = Gs.components.synthesis
    return [torch.as_tensor(synthesis.get_var(name), device=Gs.device) for name in noise_names(Gs)]


def synthesize(Gs, dlatents):
    """Images from W with the network's stored noise, as the original's style-mixing and truncation figures."""
    return Gs.components.synthesis.run(dlatents, randomize_noise=False, **synthesis_kwargs)


# ----------------------------------------------------------------------------------------------------------------
# The figures; the arguments are the original's, in the network's pixels and layers.


def draw_uncurated_result_figure(png, Gs, cx, cy, cw, ch, rows, lods, seed, truncation_psi=0.7, truncation_cutoff=8,
                                 label=None):
    """Figures 2, 10-12: images cropped to (cx, cy, cw, ch), in columns of rows * 2**lod images shrunk 2**lod times.
    Columns whose images would shrink below one pixel (a 4x4 network) are left out. Truncation: the original
    generator's default (psi 0.7 on the first 8 of 18 layers)."""
    lods = [lod for lod in lods if min(cw, ch) // 2**lod > 0]
    latents = np.random.RandomState(seed).randn(sum(rows * 2**lod for lod in lods), *Gs.input_shape[1:])
    torch.manual_seed(seed)  # random noise as in the original, but the same figure on every run
    images = Gs.run(latents, repeat_label(label, len(latents)), truncation_psi=truncation_psi,
                    truncation_cutoff=truncation_cutoff, randomize_noise=True, **synthesis_kwargs)

    canvas = PIL.Image.new("RGB", (sum(cw // 2**lod for lod in lods), ch * rows), "white")
    image_iter = iter(images)
    x = 0
    for lod in lods:
        size = (cw // 2**lod, ch // 2**lod)
        for row in range(rows * 2**lod):
            image = to_pil(next(image_iter)).crop((cx, cy, cx + cw, cy + ch)).resize(size, PIL.Image.LANCZOS)
            canvas.paste(image, (x, row * ch // 2**lod))
        x += size[0]
    save_image(np.array(canvas), png)


def draw_style_mixing_figure(png, Gs, w, h, src_seeds, dst_seeds, style_ranges, label=None):
    """Figure 3: source images across the top, destination images down the left; each cell is its row's
    destination W with the layers style_ranges[row] taken from its column's source. No truncation."""
    src_dlatents = Gs.components.mapping.run(latents_for(Gs, src_seeds), repeat_label(label, len(src_seeds)))
    dst_dlatents = Gs.components.mapping.run(latents_for(Gs, dst_seeds), repeat_label(label, len(dst_seeds)))

    canvas = PIL.Image.new("RGB", (w * (len(src_seeds) + 1), h * (len(dst_seeds) + 1)), "white")
    for col, src_image in enumerate(synthesize(Gs, src_dlatents)):
        canvas.paste(to_pil(src_image), ((col + 1) * w, 0))
    for row, dst_image in enumerate(synthesize(Gs, dst_dlatents)):
        canvas.paste(to_pil(dst_image), (0, (row + 1) * h))
        row_dlatents = np.stack([dst_dlatents[row]] * len(src_seeds))
        row_dlatents[:, style_ranges[row]] = src_dlatents[:, style_ranges[row]]
        for col, image in enumerate(synthesize(Gs, row_dlatents)):
            canvas.paste(to_pil(image), ((col + 1) * w, (row + 1) * h))
    save_image(np.array(canvas), png)


def draw_noise_detail_figure(png, Gs, w, h, num_samples, seeds, label=None):
    """Figure 4: per seed, one image, four enlarged crops of the same z under different random noise, and the
    per-pixel standard deviation over num_samples (>= 5) such images (times 4, as grayscale)."""
    box = tuple(scale_pixels(v, Gs.output_shape[3]) for v in (650, 180, 906, 436))  # the original's 1024px crop
    canvas = PIL.Image.new("RGB", (w * 3, h * len(seeds)), "white")
    for row, seed in enumerate(seeds):
        latents = np.repeat(latents_for(Gs, [seed]), num_samples, axis=0)
        torch.manual_seed(seed)  # random noise as in the original, but the same figure on every run
        images = Gs.run(latents, repeat_label(label, num_samples), truncation_psi=1, randomize_noise=True,
                        **synthesis_kwargs)
        canvas.paste(to_pil(images[0]), (0, row * h))
        for i in range(4):
            crop = to_pil(images[i + 1]).crop(box).resize((w // 2, h // 2), PIL.Image.NEAREST)
            canvas.paste(crop, (w + (i % 2) * w // 2, row * h + (i // 2) * h // 2))
        diff = np.std(np.mean(images, axis=3), axis=0) * 4
        diff = np.clip(diff + 0.5, 0, 255).astype(np.uint8)
        canvas.paste(PIL.Image.fromarray(diff, "L"), (w * 2, row * h))
    save_image(np.array(canvas), png)


def draw_noise_components_figure(png, Gs, w, h, seeds, noise_ranges, flips, label=None):
    """Figure 5: a column per seed made of four half images, one per noise range (top left, top right, bottom left,
    bottom right), each with the network's stored noise in the layers of its range and zero noise elsewhere.
    Images of the seeds at the indices `flips` are mirrored. No truncation."""
    latents = latents_for(Gs, seeds)
    stored = stored_noise(Gs)
    all_images = []
    for noise_range in noise_ranges:
        # Zeroed through the noise inputs: the network's own buffers stay as they are.
        noise_inputs = [noise if i in noise_range else torch.zeros_like(noise) for i, noise in enumerate(stored)]
        range_images = Gs.run(latents, repeat_label(label, len(seeds)), truncation_psi=1, noise_inputs=noise_inputs,
                              **synthesis_kwargs)
        range_images[flips] = range_images[flips, :, ::-1]
        all_images.append(range_images)

    halves = [(0, 0, w // 2, h), (w // 2, 0, w, h)]
    canvas = PIL.Image.new("RGB", (w * len(seeds), h * 2), "white")
    for quadrant, range_images in enumerate(all_images):
        box = halves[quadrant % 2]
        for col, image in enumerate(range_images):
            canvas.paste(to_pil(image).crop(box), (col * w + box[0], quadrant // 2 * h))
    save_image(np.array(canvas), png)


def draw_truncation_trick_figure(png, Gs, w, h, seeds, psis, label=None):
    """Figure 8: a row per seed, a column per psi: W moved towards (psi < 1) or past (psi < 0) the average W."""
    dlatents = Gs.components.mapping.run(latents_for(Gs, seeds), repeat_label(label, len(seeds)))
    dlatent_avg = Gs.get_var("dlatent_avg")  # [component]

    canvas = PIL.Image.new("RGB", (w * len(psis), h * len(seeds)), "white")
    for row, dlatent in enumerate(dlatents):
        row_dlatents = (dlatent[np.newaxis] - dlatent_avg) * np.reshape(psis, [-1, 1, 1]) + dlatent_avg
        for col, image in enumerate(synthesize(Gs, row_dlatents)):
            canvas.paste(to_pil(image), (col * w, row * h))
    save_image(np.array(canvas), png)


# ----------------------------------------------------------------------------------------------------------------
# Main program.


def figure_calls(Gs, stem):
    """The original main()'s FFHQ figures as {name: (file name, draw function, arguments)}, with pixel sizes
    scaled to the network's resolution and layer ranges mapped onto its layers. `stem` replaces 'ffhq'."""
    px = functools.partial(scale_pixels, resolution=Gs.output_shape[3])
    num_layers = Gs.components.synthesis.input_shape[1]
    style = functools.partial(map_range, count=num_layers)
    noise = functools.partial(map_range, count=len(noise_names(Gs)))
    return {
        "uncurated": (f"figure02-uncurated-{stem}.png", draw_uncurated_result_figure,
                      dict(cx=0, cy=0, cw=px(1024), ch=px(1024), rows=3, lods=[0, 1, 2, 2, 3, 3], seed=5,
                           truncation_cutoff=scale_layers(8, num_layers))),
        "style-mixing": ("figure03-style-mixing.png", draw_style_mixing_figure,
                         dict(w=px(1024), h=px(1024), src_seeds=[639, 701, 687, 615, 2268],
                              dst_seeds=[888, 829, 1898, 1733, 1614, 845],
                              style_ranges=[style(range(0, 4))] * 3 + [style(range(4, 8))] * 2
                              + [style(range(8, 18))])),
        "noise-detail": ("figure04-noise-detail.png", draw_noise_detail_figure,
                         dict(w=px(1024), h=px(1024), num_samples=100, seeds=[1157, 1012])),
        "noise-components": ("figure05-noise-components.png", draw_noise_components_figure,
                             dict(w=px(1024), h=px(1024), seeds=[1967, 1555], flips=[1],
                                  noise_ranges=[noise(range(0, 18)), noise(range(0, 0)), noise(range(8, 18)),
                                                noise(range(0, 8))])),
        "truncation": ("figure08-truncation-trick.png", draw_truncation_trick_figure,
                       dict(w=px(1024), h=px(1024), seeds=[91, 388], psis=[1, 0.7, 0.5, 0, -0.5, -1])),
    }


def network_stem(network_pkl):
    """The pickle's file name without extension, safe in a file name: 'stylegan2-ffhq-config-f' for the official
    FFHQ network, whether named by path, URL or gdrive: name."""
    path = urllib.parse.urlsplit(network_pkl).path if dnnlib.util.is_url(network_pkl) else network_pkl
    stem = os.path.splitext(os.path.basename(path))[0]
    return re.sub(r"[^0-9A-Za-z._-]", "_", stem) or "network"


def parse_figures(text):
    """--figures: 'all' or a comma-separated list of FIGURES, returned in the original's order."""
    names = [name.strip() for name in text.split(",")]
    if names == ["all"]:
        return list(FIGURES)
    for name in names:
        if name not in FIGURES:
            raise dnnlib.util.UserError(f"--figures: unknown figure '{name}'; use 'all' or a comma-separated list "
                                        f"of {', '.join(FIGURES)}")
    return [name for name in FIGURES if name in names]


def generate_figures(network_pkl, figures, class_idx=None):
    print('Loading networks from "%s"...' % network_pkl)
    _G, _D, Gs = pretrained_networks.load_networks(network_pkl)
    label = make_labels(Gs, class_idx, 1)
    calls = figure_calls(Gs, network_stem(network_pkl))
    for name in tqdm.tqdm(figures, desc="Drawing figures", unit="figure"):
        file_name, draw, kwargs = calls[name]
        draw(dnnlib.make_run_dir_path(file_name), Gs, label=label, **kwargs)
    print(f"Done: {len(figures)} figures in {dnnlib.make_run_dir_path()}")


_examples = """examples:

  # All figures for the official FFHQ network (paper figures 2, 3, 4, 5, 8)
  python %(prog)s --network=gdrive:networks/stylegan2-ffhq-config-f.pkl

  # Style mixing and truncation only, for the shipped 64x64 network
  python %(prog)s --figures=style-mixing,truncation
"""


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Draw the StyleGAN paper's figures (uncurated, style mixing, noise detail, noise components, "
                    "truncation trick) with a network pickle.",
        epilog=_examples, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", default=pretrained_networks.DEFAULT_NETWORK,
                        help="Network pickle: path, URL or gdrive:networks/<file>.pkl (default: the shipped 64x64 "
                             "emoji network, networks/stylegan2-emoji64.pkl)")
    parser.add_argument("--figures", default="all",
                        help="'all' (default) or a comma-separated list of " + ", ".join(FIGURES))
    parser.add_argument("--class", dest="class_idx", type=int, metavar="N",
                        help="Class label for a conditional network")
    parser.add_argument("--result-dir", default="results", metavar="DIR",
                        help="Root directory for run results (default: %(default)s)")
    parser.add_argument("--cache-dir", metavar="DIR", help="Download cache (default: $DNNLIB_CACHE_DIR or "
                                                            "~/.cache/dnnlib)")
    args = parser.parse_args(argv)

    figures = parse_figures(args.figures)  # a bad name fails before the run directory is made
    if args.cache_dir is not None:
        dnnlib.util.set_cache_dir(args.cache_dir)
    dnnlib.util.set_run_dir(dnnlib.util.make_run_dir(args.result_dir, "generate-figures"))
    with dnnlib.util.Logger(), dnnlib.ops.precision("fp32", default_device()):
        generate_figures(args.network, figures, args.class_idx)


if __name__ == "__main__":
    dnnlib.util.cli_main(main)
