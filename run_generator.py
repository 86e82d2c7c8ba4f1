"""Generate images and style-mixing grids from a StyleGAN2 network pickle, as the original run_generator.py does.

    python run_generator.py generate-images --network=gdrive:networks/stylegan2-ffhq-config-f.pkl \\
        --seeds=6600-6625 --truncation-psi=0.5
    python run_generator.py style-mixing-example --network=gdrive:networks/stylegan2-ffhq-config-f.pkl \\
        --row-seeds=85,100,75,458,1500 --col-seeds=55,821,1789,293 --truncation-psi=1.0

Each run writes into a new folder <result-dir>/<NNNNN>-<subcommand>.
"""

import argparse
import os

import numpy as np
import PIL.Image
import torch
import tqdm

import dnnlib
import dnnlib.ops
import dnnlib.tflib as tflib
import dnnlib.video
import pretrained_networks
from dnnlib.tflib.network import default_device
from training import editing, projector

# ----------------------------------------------------------------------------------------------------------------


def make_labels(Gs, class_idx, num):
    """One-hot labels for a conditional network, None for an unconditional one (with a note if a class was given)."""
    label_size = Gs.input_shapes[1][1]
    if label_size == 0:
        if class_idx is not None:
            print(f"warning: --class={class_idx} ignored: the network is unconditional")
        return None
    if class_idx is None:
        raise dnnlib.util.UserError(f"the network is conditional ({label_size} classes): pass --class=N "
                                    f"with N in 0..{label_size - 1}")
    if not 0 <= class_idx < label_size:
        raise dnnlib.util.UserError(f"--class={class_idx} is out of range: the network has classes 0..{label_size - 1}")
    labels = np.zeros([num, label_size], np.float32)
    labels[:, class_idx] = 1
    return labels


def seed_noise(Gs, rnds):
    """Per-sample noise inputs drawn the original's way: after z, each noise variable of the synthesis network in
    order, `rnd.randn(*shape)` from the seed's RandomState."""
    shapes = [var.shape.as_list() for name, var in Gs.components.synthesis.vars.items() if name.startswith("noise")]
    per_seed = [[rnd.randn(*shape) for shape in shapes] for rnd in rnds]
    return [torch.as_tensor(np.concatenate(layer), dtype=torch.float32, device=Gs.device) for layer in zip(*per_seed)]


def noise_kwargs(Gs, noise_mode, rnds=None, num=None):
    """Synthesis keyword arguments for a noise mode: 'seed' (drawn from each seed, the original generate-images),
    'const' (the network's stored noise), 'random' (fresh every call), 'none' (zero)."""
    if noise_mode == "seed":
        return dict(noise_inputs=seed_noise(Gs, rnds))
    if noise_mode == "none":
        shapes = Gs.components.synthesis.module.noise_shapes()
        return dict(noise_inputs=[torch.zeros([num] + shape[1:], device=Gs.device) for shape in shapes])
    return dict(randomize_noise=noise_mode == "random")


def to_pil(image):
    """A [H, W, C] uint8 image as a PIL image: RGB, or grayscale for one channel."""
    return PIL.Image.fromarray(image[:, :, 0], "L") if image.shape[2] == 1 else PIL.Image.fromarray(image, "RGB")


def save_image(image, path):
    """Write a [H, W, C] uint8 image atomically as PNG."""
    with dnnlib.util.atomic_write(path) as f:
        to_pil(image).save(f, format="PNG")


def batches(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


# ----------------------------------------------------------------------------------------------------------------


def generate_images(network_pkl, seeds, truncation_psi, noise_mode="seed", class_idx=None, minibatch_size=8):
    print('Loading networks from "%s"...' % network_pkl)
    _G, _D, Gs = pretrained_networks.load_networks(network_pkl)
    labels = make_labels(Gs, class_idx, minibatch_size)
    Gs_kwargs = dnnlib.EasyDict(output_transform=dict(func=tflib.convert_images_to_uint8, nchw_to_nhwc=True))
    if truncation_psi is not None:
        Gs_kwargs.truncation_psi = truncation_psi

    with tqdm.tqdm(total=len(seeds), desc="Generating images", unit="img") as progress:
        for batch_seeds in batches(seeds, minibatch_size):
            rnds = [np.random.RandomState(seed) for seed in batch_seeds]
            z = np.concatenate([rnd.randn(1, *Gs.input_shape[1:]) for rnd in rnds])  # [minibatch, component]
            batch_labels = None if labels is None else labels[:len(batch_seeds)]
            images = Gs.run(z, batch_labels, **noise_kwargs(Gs, noise_mode, rnds, len(batch_seeds)), **Gs_kwargs)
            for seed, image in zip(batch_seeds, images):
                save_image(image, dnnlib.make_run_dir_path("seed%04d.png" % seed))
            progress.update(len(batch_seeds))
    print(f"Done: {len(seeds)} images in {dnnlib.make_run_dir_path()}")


def latent_files(path):
    """Latent files named by --latents: one file, or every .npy/.npz in a folder (sorted)."""
    if os.path.isdir(path):
        files = sorted(os.path.join(path, name) for name in os.listdir(path)
                       if name.lower().endswith(projector.LATENT_EXTENSIONS))
        if not files:
            raise dnnlib.util.UserError(f"no .npy or .npz latent files in {path}")
        return files
    if not os.path.isfile(path):
        raise dnnlib.util.UserError(f"--latents not found: {path}")
    return [path]


def generate_from_latents(network_pkl, latents, noise_mode="seed", minibatch_size=8):
    """Render saved latents (W or W+, e.g. from run_projector.py) through the synthesis network, one PNG per latent.
    Noise: the maps stored with a latent when its file has them, else the network's own ('seed' and 'const'),
    fresh ('random') or zero ('none'). Truncation does not apply: the latents are already in W."""
    print('Loading networks from "%s"...' % network_pkl)
    _G, _D, Gs = pretrained_networks.load_networks(network_pkl)
    synthesis = Gs.components.synthesis
    num_layers, dlatent_size = synthesis.input_shape[1:]
    output_transform = dict(func=tflib.convert_images_to_uint8, nchw_to_nhwc=True)
    files = latent_files(latents)
    count = 0
    with tqdm.tqdm(total=len(files), desc="Rendering latents", unit="file") as progress:
        for path in files:
            dlatents, noises = projector.load_latents(path, num_layers, dlatent_size)
            stem = os.path.splitext(os.path.basename(path))[0]
            names = [stem] if len(dlatents) == 1 else [f"{stem}-{i:04d}" for i in range(len(dlatents))]
            if noises is not None and noise_mode in ("seed", "const"):
                kwargs = dict(noise_inputs=[torch.as_tensor(v, device=Gs.device) for v in noises])
            else:
                kwargs = noise_kwargs(Gs, "const" if noise_mode == "seed" else noise_mode, num=len(dlatents))
            images = synthesis.run(dlatents, minibatch_size=minibatch_size, output_transform=output_transform,
                                   **kwargs)
            for name, image in zip(names, images):
                save_image(image, dnnlib.make_run_dir_path(name + ".png"))
            count += len(names)
            progress.update(1)
    print(f"Done: {count} images in {dnnlib.make_run_dir_path()}")


def style_mixing_example(network_pkl, row_seeds, col_seeds, truncation_psi, col_styles, noise_mode="const",
                         class_idx=None, minibatch_size=4):
    print('Loading networks from "%s"...' % network_pkl)
    _G, _D, Gs = pretrained_networks.load_networks(network_pkl)
    num_layers = Gs.components.synthesis.input_shape[1]
    if any(style >= num_layers for style in col_styles):
        raise dnnlib.util.UserError(f"--col-styles must be in 0..{num_layers - 1}: the network has {num_layers} "
                                    "style layers")
    Gs_syn_kwargs = dnnlib.EasyDict(output_transform=dict(func=tflib.convert_images_to_uint8, nchw_to_nhwc=True),
                                    minibatch_size=minibatch_size)
    Gs_syn_kwargs.update(noise_kwargs(Gs, noise_mode, num=1))

    print("Generating W vectors...")
    all_seeds = list(set(row_seeds + col_seeds))
    all_z = np.stack([np.random.RandomState(seed).randn(*Gs.input_shape[1:]) for seed in all_seeds])
    all_w = Gs.components.mapping.run(all_z, make_labels(Gs, class_idx, len(all_seeds)))  # [minibatch, layer, component]
    w_avg = Gs.get_var("dlatent_avg")  # [component]
    all_w = w_avg + (all_w - w_avg) * truncation_psi
    w_dict = {seed: w for seed, w in zip(all_seeds, list(all_w))}  # [layer, component]

    image_dict = {}
    pairs = [(seed, seed) for seed in all_seeds] + [(row, col) for row in row_seeds for col in col_seeds]
    with tqdm.tqdm(total=len(pairs), desc="Generating images", unit="img") as progress:
        for batch_pairs in batches(pairs, minibatch_size):
            ws = []
            for row_seed, col_seed in batch_pairs:
                w = w_dict[row_seed].copy()
                w[col_styles] = w_dict[col_seed][col_styles]
                ws.append(w)
            if noise_mode == "none":  # zero noise is per sample; resize it to this batch
                Gs_syn_kwargs.update(noise_kwargs(Gs, noise_mode, num=len(batch_pairs)))
            images = Gs.components.synthesis.run(np.stack(ws), **Gs_syn_kwargs)
            image_dict.update(zip(batch_pairs, images))
            progress.update(len(batch_pairs))

    print("Saving images...")
    for (row_seed, col_seed), image in image_dict.items():
        save_image(image, dnnlib.make_run_dir_path("%d-%d.png" % (row_seed, col_seed)))

    print("Saving image grid...")
    _N, _C, H, W = Gs.output_shape
    canvas = PIL.Image.new("RGB", (W * (len(col_seeds) + 1), H * (len(row_seeds) + 1)), "black")
    for row_idx, row_seed in enumerate([None] + row_seeds):
        for col_idx, col_seed in enumerate([None] + col_seeds):
            if row_seed is None and col_seed is None:
                continue
            key = (row_seed, col_seed)
            if row_seed is None:
                key = (col_seed, col_seed)
            if col_seed is None:
                key = (row_seed, row_seed)
            canvas.paste(to_pil(image_dict[key]), (W * col_idx, H * row_idx))
    with dnnlib.util.atomic_write(dnnlib.make_run_dir_path("grid.png")) as f:
        canvas.save(f, format="PNG")
    print(f"Done: {len(image_dict)} images and grid.png in {dnnlib.make_run_dir_path()}")


def render_video(Gs, dlatents, fps, save_frames, noise_mode, minibatch_size, name):
    """Render W frames [F, num_layers, dlatent_size] into <name>.mp4 (or .gif) in the run dir, and each frame as
    frameNNNNN.png on request. The same noise for every frame ('const' or 'none') keeps the video from flickering."""
    synthesis = Gs.components.synthesis
    output_transform = dict(func=tflib.convert_images_to_uint8, nchw_to_nhwc=True)
    with dnnlib.video.VideoWriter(dnnlib.make_run_dir_path(name + ".mp4"), fps=fps) as video, \
            tqdm.tqdm(total=len(dlatents), desc="Rendering frames", unit="frame") as progress:
        for start in range(0, len(dlatents), minibatch_size):
            batch = dlatents[start:start + minibatch_size]
            images = synthesis.run(batch.astype(np.float32), output_transform=output_transform,
                                   **noise_kwargs(Gs, noise_mode, num=len(batch)))
            for i, image in enumerate(images, start):
                video.append(image)
                if save_frames:
                    save_image(image, dnnlib.make_run_dir_path("frame%05d.png" % i))
            progress.update(len(batch))
    print(f"Done: {len(dlatents)} frames in {video.path}" + (" and frameNNNNN.png" if save_frames else ""))


def map_to_w(Gs, z, labels, truncation_psi, minibatch_size):
    """Z [N, latent_size] -> W [N, num_layers, dlatent_size] through the mapping network and the truncation trick."""
    mapping = Gs.components.mapping
    w = np.concatenate([mapping.run(z[i:i + minibatch_size], None if labels is None else labels[:len(z[i:i + minibatch_size])])
                        for i in range(0, len(z), minibatch_size)])
    if truncation_psi is None:
        return w
    return editing.truncation_path(w, Gs.get_var("dlatent_avg"), [truncation_psi])[0]


def interpolate(network_pkl, seeds, latents, space, kind, frames, fps, truncation_psi, loop, save_frames, diameter,
                noise_mode="const", class_idx=None, minibatch_size=8):
    """A video through keyframes (seeds or saved latents), or a seamless loop (noiseloop, circularloop) from the
    first seed. Z paths go through the mapping network frame by frame; W/W+ paths go straight to synthesis."""
    print('Loading networks from "%s"...' % network_pkl)
    _G, _D, Gs = pretrained_networks.load_networks(network_pkl)
    num_layers, dlatent_size = Gs.components.synthesis.input_shape[1:]
    loops = kind in ("noiseloop", "circularloop")
    if latents is not None and (space == "z" or loops):
        raise dnnlib.util.UserError("saved latents are in W: use --space=w or w+ with --kind=linear or slerp")
    if loops and space != "z":
        raise dnnlib.util.UserError(f"--kind={kind} draws its loop in Z: use --space=z")
    labels = make_labels(Gs, class_idx, minibatch_size)

    if latents is not None:
        keyframes = np.concatenate([projector.load_latents(path, num_layers, dlatent_size)[0]
                                    for path in latent_files(latents)])
    else:
        keyframes = np.stack([np.random.RandomState(seed).randn(*Gs.input_shape[1:]) for seed in seeds])
        if space != "z":
            keyframes = map_to_w(Gs, keyframes, labels, truncation_psi, minibatch_size)

    if kind == "noiseloop":
        path = editing.noise_loop(seeds[0], Gs.input_shape[1:], frames, diameter)
    elif kind == "circularloop":
        path = editing.circular_loop(np.random.RandomState(seeds[0]), Gs.input_shape[1:], frames, diameter / 2)
    else:
        path = editing.keyframe_path(keyframes, frames, kind, loop)
    if space == "z":
        path = map_to_w(Gs, path, labels, truncation_psi, minibatch_size)
    render_video(Gs, path, fps, save_frames, noise_mode, minibatch_size, "interpolation")


def truncation_traversal(network_pkl, seed, start, stop, frames, fps, save_frames, noise_mode="const",
                         class_idx=None, minibatch_size=8):
    """One seed's W pulled from psi=start to psi=stop in `frames` steps: a video and optionally the frames."""
    print('Loading networks from "%s"...' % network_pkl)
    _G, _D, Gs = pretrained_networks.load_networks(network_pkl)
    z = np.random.RandomState(seed).randn(1, *Gs.input_shape[1:])
    w = map_to_w(Gs, z, make_labels(Gs, class_idx, 1), None, 1)[0]
    psis = np.linspace(start, stop, frames)
    print("psi: " + ", ".join(f"{psi:g}" for psi in psis))
    path = editing.truncation_path(w, Gs.get_var("dlatent_avg"), psis)
    render_video(Gs, path, fps, save_frames, noise_mode, minibatch_size, "truncation-traversal")


# ----------------------------------------------------------------------------------------------------------------


_examples = """examples:

  # Generate ffhq uncurated images (matches paper Figure 12)
  python %(prog)s generate-images --network=gdrive:networks/stylegan2-ffhq-config-f.pkl --seeds=6600-6625 --truncation-psi=0.5

  # Generate ffhq curated images (matches paper Figure 11)
  python %(prog)s generate-images --network=gdrive:networks/stylegan2-ffhq-config-f.pkl --seeds=66,230,389,1518 --truncation-psi=1.0

  # Generate uncurated car images
  python %(prog)s generate-images --network=gdrive:networks/stylegan2-car-config-f.pkl --seeds=6000-6025 --truncation-psi=0.5

  # Render latents saved by run_projector.py
  python %(prog)s generate-images --network=gdrive:networks/stylegan2-ffhq-config-f.pkl --latents=results/00001-project-images

  # Interpolation video through four seeds, looping back to the first
  python %(prog)s interpolate --seeds=1,2,3,4 --kind=slerp --frames=60 --loop

  # Seamless OpenSimplex noise loop of 240 frames
  python %(prog)s interpolate --seeds=7 --kind=noiseloop --frames=240 --diameter=2

  # Truncation traversal of one seed from psi -1 to 1
  python %(prog)s truncation-traversal --seed=42 --start=-1 --stop=1 --frames=21

  # Generate style mixing example (matches style mixing video clip)
  python %(prog)s style-mixing-example --network=gdrive:networks/stylegan2-ffhq-config-f.pkl --row-seeds=85,100,75,458,1500 --col-seeds=55,821,1789,293 --truncation-psi=1.0
"""


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="StyleGAN2 generator: images, style-mixing grids and videos from a network pickle.",
        epilog=_examples, formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(help="Sub-commands", dest="command")

    def add_common(p, noise_default, noise_choices, batch_default):
        p.add_argument("--network", default=pretrained_networks.DEFAULT_NETWORK,
                       help="Network pickle: path, URL or gdrive:networks/<file>.pkl (default: the shipped "
                            "64x64 emoji network, networks/stylegan2-emoji64.pkl)")
        p.add_argument("--truncation-psi", type=float, help="Truncation psi (default: %(default)s)", default=0.5)
        p.add_argument("--noise-mode", choices=noise_choices, default=noise_default,
                       help="Noise inputs: " + ", ".join(noise_choices) + " (default: %(default)s)")
        p.add_argument("--class", dest="class_idx", type=int, metavar="N",
                       help="Class label for a conditional network")
        p.add_argument("--batch-size", dest="minibatch_size", type=dnnlib.util.positive_int, default=batch_default,
                       help="Images per forward pass (default: %(default)s); results do not depend on it")
        p.add_argument("--result-dir", help="Root directory for run results (default: %(default)s)",
                       default="results", metavar="DIR")
        p.add_argument("--cache-dir", help="Download cache (default: $DNNLIB_CACHE_DIR or ~/.cache/dnnlib)",
                       metavar="DIR")
        dnnlib.ops.add_compute_args(p, compile_flag=True)

    p = subparsers.add_parser("generate-images", help="Generate images")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--seeds", type=dnnlib.util.num_range_arg, help="List of random seeds, e.g. 6600-6625 or 66,230,389")
    source.add_argument("--latents", metavar="PATH",
                        help="Render saved latents instead: a .npy/.npz file (e.g. from run_projector.py) or a "
                             "folder of them")
    add_common(p, "seed", ["seed", "const", "random", "none"], 8)

    p = subparsers.add_parser("style-mixing-example", help="Generate style mixing video")
    p.add_argument("--row-seeds", type=dnnlib.util.num_range_arg, help="Random seeds to use for image rows", required=True)
    p.add_argument("--col-seeds", type=dnnlib.util.num_range_arg, help="Random seeds to use for image columns", required=True)
    p.add_argument("--col-styles", type=dnnlib.util.num_range_arg, help="Style layer range (default: %(default)s)", default="0-6")
    add_common(p, "const", ["const", "random", "none"], 4)

    p = subparsers.add_parser("interpolate", help="Interpolation video through seeds or saved latents, or a loop")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--seeds", type=dnnlib.util.num_range_arg, help="Keyframe seeds in order (loops use the first)")
    source.add_argument("--latents", metavar="PATH", help="Keyframe latents: .npy/.npz files in a folder (sorted) "
                        "or one file holding several")
    p.add_argument("--space", choices=["z", "w", "w+"], default="z",
                   help="Interpolate in Z (then map) or in W/W+ (default: %(default)s)")
    p.add_argument("--kind", choices=editing.INTERPOLATION_KINDS, default="slerp",
                   help="Path between keyframes, or a seamless loop (default: %(default)s)")
    p.add_argument("--frames", type=dnnlib.util.positive_int, default=60,
                   help="Frames per transition, or in the whole loop (default: %(default)s)")
    p.add_argument("--loop", action="store_true", help="Return to the first keyframe (seamless repeat)")
    p.add_argument("--diameter", type=float, default=2.0,
                   help="Size of a noiseloop/circularloop: larger wanders further (default: %(default)s)")
    p.add_argument("--fps", type=dnnlib.util.positive_int, default=30, help="Frame rate (default: %(default)s)")
    p.add_argument("--save-frames", action="store_true", help="Also write every frame as frameNNNNN.png")
    add_common(p, "const", ["const", "none"], 8)

    p = subparsers.add_parser("truncation-traversal", help="Video of one seed over a range of truncation psi")
    p.add_argument("--seed", type=int, required=True, help="The seed")
    p.add_argument("--start", type=float, default=-1.0, help="First psi (default: %(default)s)")
    p.add_argument("--stop", type=float, default=1.0, help="Last psi (default: %(default)s)")
    p.add_argument("--frames", type=dnnlib.util.positive_int, default=21, help="Number of psi values (default: %(default)s)")
    p.add_argument("--fps", type=dnnlib.util.positive_int, default=10, help="Frame rate (default: %(default)s)")
    p.add_argument("--save-frames", action="store_true", help="Also write every frame as frameNNNNN.png")
    add_common(p, "const", ["const", "none"], 8)

    command, args = dnnlib.util.parse_command(parser, argv)
    func = {"generate-images": generate_images, "style-mixing-example": style_mixing_example,
            "interpolate": interpolate, "truncation-traversal": truncation_traversal}[command]
    if command == "truncation-traversal":
        args.pop("truncation_psi")  # the traversal sets psi itself
    if args.get("latents") is not None:
        latent_files(args["latents"])  # a bad path fails before the run directory is made
    if command == "generate-images" and args.get("latents") is not None:
        func = generate_from_latents
        for unused in ("seeds", "truncation_psi", "class_idx"):
            args.pop(unused)
    elif command == "generate-images":
        args.pop("latents")
    compute = dnnlib.ops.compute_mode(args.pop("precision"), args.pop("reference_path"), default_device(),
                                      args.pop("compile"))
    run_dir = dnnlib.util.make_run_dir(args.pop("result_dir"), command)
    dnnlib.util.set_run_dir(run_dir)
    network = args.pop("network")
    with dnnlib.util.Logger(), compute:
        func(network, **args)


if __name__ == "__main__":
    dnnlib.util.cli_main(main)
