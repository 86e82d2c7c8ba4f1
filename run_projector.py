"""Project images into the latent space of a StyleGAN2 network, as the original run_projector.py does, and any
image files beyond it.

    python run_projector.py project-generated-images --network=gdrive:networks/stylegan2-car-config-f.pkl \\
        --seeds=0,1,5
    python run_projector.py project-real-images --network=gdrive:networks/stylegan2-car-config-f.pkl \\
        --dataset=car --data-dir=~/datasets
    python run_projector.py project-images --network=ffhq-config-f.pkl --target=aligned/ --space=w+ --save-video

Each run writes into a new folder <result-dir>/<NNNNN>-<subcommand>: the target and snapshots of the projection
(`<name>-target.png`, `<name>-stepNNNN.png`, as the original), the final projection (`<name>-projected.png`) and
its latent (`<name>.npy`, num_layers x dlatent_size, and `<name>.npz` with the noise maps) and, with --save-video,
`<name>-proj.mp4` (target | projection at every step). `run_generator.py generate-images --latents` renders saved latents.
"""

import argparse
import contextlib
import os

import numpy as np
import PIL.Image
import tqdm

import dataset_tool
import dnnlib
import dnnlib.tflib as tflib
import dnnlib.ops
import dnnlib.video
import pretrained_networks
import run_generator
from dnnlib.tflib.network import default_device
from training import dataset as dataset_lib
from training import lpips as lpips_lib
from training import projector

# ----------------------------------------------------------------------------------------------------------------


def to_uint8_hwc(images):
    """[N, C, H, W] in [-1, 1] -> uint8 [N, H, W, C]."""
    return tflib.convert_images_to_uint8(images, drange=[-1, 1], nchw_to_nhwc=True)


def save_images(images, paths):
    for image, path in zip(to_uint8_hwc(images), paths):
        run_generator.save_image(image, path)


def project_batch(proj, targets, names, num_snapshots, save_video=False, fps=30, init_dlatents=None):
    """Project targets [N, C, H, W] in [-1, 1]; write `<name>-target.png`, the snapshots, the latents and videos."""
    out = dnnlib.make_run_dir_path
    snapshot_steps = set(proj.num_steps - np.linspace(0, proj.num_steps, num_snapshots, endpoint=False, dtype=int))
    save_images(targets, [out(f"{name}-target.png") for name in names])
    target_frames = to_uint8_hwc(targets)
    proj.start(targets, init_dlatents)
    desc = "Projecting " + (names[0] if len(names) == 1 else f"{len(names)} images")
    with contextlib.ExitStack() as stack:
        videos = [stack.enter_context(dnnlib.video.VideoWriter(out(f"{name}-proj.mp4"), fps=fps))
                  for name in names] if save_video else []
        bar = stack.enter_context(tqdm.tqdm(total=proj.num_steps, desc=desc, unit="step"))
        while proj.get_cur_step() < proj.num_steps:
            dist = proj.step()
            bar.set_postfix(dist=f"{float(np.mean(dist)):.4f}", refresh=False)
            bar.update(1)
            step = proj.get_cur_step()
            if step in snapshot_steps or videos:
                images = proj.get_images()
                if step in snapshot_steps:
                    save_images(images, [out(f"{name}-step{step:04d}.png") for name in names])
                for video, target, image in zip(videos, target_frames, to_uint8_hwc(images)):
                    video.append(np.concatenate([target, image], axis=1))
    save_images(proj.get_images(), [out(f"{name}-projected.png") for name in names])
    dlatents, noises = proj.get_dlatents(), proj.get_noises()
    for i, name in enumerate(names):
        projector.save_latents(out(name), dlatents[i], [v[i:i + 1] for v in noises])
    return dlatents


def make_projector(Gs, args):
    """A Projector for Gs from the command-line options, loading the LPIPS network only when the loss uses it."""
    lpips = None
    if args.loss != "mse":
        print("Loading the VGG16 perceptual network...")
        lpips = lpips_lib.load_lpips(args.vgg16)
    proj = projector.Projector(lpips=lpips, space=args.space, loss=args.loss, lpips_weight=args.lpips_weight,
                               mse_weight=args.mse_weight, seed=args.seed)
    proj.num_steps = args.num_steps
    proj.set_network(Gs)
    return proj


def load_generator(network_pkl):
    print('Loading networks from "%s"...' % network_pkl)
    _G, _D, Gs = pretrained_networks.load_networks(network_pkl)
    return Gs


def project_generated_images(args):
    Gs = load_generator(args.network)
    proj = make_projector(Gs, args)
    labels = run_generator.make_labels(Gs, args.class_idx, 1)
    for seed in args.seeds:
        print("Projecting seed %d ..." % seed)
        rnd = np.random.RandomState(seed)
        z = rnd.randn(1, *Gs.input_shape[1:])
        images = Gs.run(z, labels, truncation_psi=args.truncation_psi,
                        noise_inputs=run_generator.seed_noise(Gs, [rnd]))
        project_batch(proj, images, ["seed%04d" % seed], args.num_snapshots, args.save_video, args.fps)
    print(f"Done: {len(args.seeds)} projections in {dnnlib.make_run_dir_path()}")


def project_real_images(args):
    Gs = load_generator(args.network)
    dataset = dataset_lib.load_dataset(tfrecord_dir=args.dataset, data_dir=args.data_dir, use_labels=False)
    if list(dataset.image_shape) != list(Gs.output_shape[1:]):
        raise dnnlib.util.UserError(f"dataset images are {list(dataset.image_shape)} but the network makes "
                                    f"{list(Gs.output_shape[1:])}: use a dataset at the network's resolution, or "
                                    "project-images, which resizes")
    num_images = min(args.num_images, len(dataset))
    proj = make_projector(Gs, args)
    for image_idx in range(num_images):
        print("Projecting image %d/%d ..." % (image_idx, num_images))
        image = dataset[image_idx][0][np.newaxis].astype(np.float32) / 127.5 - 1
        project_batch(proj, image, ["image%04d" % image_idx], args.num_snapshots, args.save_video, args.fps)
    print(f"Done: {num_images} projections in {dnnlib.make_run_dir_path()}")


def list_targets(target):
    """Image files named by --target: one file, or every image in a folder (recursively, sorted)."""
    if os.path.isdir(target):
        return dataset_tool.list_images(target)
    if not os.path.isfile(target):
        raise dnnlib.util.UserError(f"--target not found: {target}")
    return [target]


def load_target(path, Gs):
    """An image file as [C, H, W] in [-1, 1] for Gs: centre-cropped to a square, resized to its resolution, converted
    to its channel count. None (with a note naming the file) when the file cannot be read as an image."""
    channels, resolution = Gs.output_shape[1], Gs.output_shape[2]
    try:
        img = dataset_tool.open_image(path)
        if img.size != (resolution, resolution):
            print(f"note: {path} is {img.size[0]}x{img.size[1]}; centre-cropped and resized to {resolution}x"
                  f"{resolution}")
        array = dataset_tool.prepare_image(img, channels, transform="center-crop", resolution=resolution)
    except (OSError, ValueError, PIL.Image.DecompressionBombError) as e:
        print(f"skipping {path}: not a readable image ({e})")
        return None
    return array.astype(np.float32) / 127.5 - 1


def project_images(args):
    paths = args.target_paths
    init = None
    Gs = load_generator(args.network)
    num_layers, dlatent_size = Gs.components.synthesis.input_shape[1:]
    if args.init is not None:
        init, _noises = projector.load_latents(args.init, num_layers, dlatent_size)
        if init.shape[0] != 1:
            raise dnnlib.util.UserError(f"--init {args.init} holds {init.shape[0]} latents; give a file with one")
    proj = make_projector(Gs, args)

    stems = [os.path.splitext(os.path.basename(path))[0] for path in paths]
    names = [stem if stems.count(stem) == 1 else f"{stem}-{i:04d}" for i, stem in enumerate(stems)]
    targets = [(name, load_target(path, Gs)) for name, path in zip(names, paths)]
    targets = [(name, image) for name, image in targets if image is not None]
    skipped = len(paths) - len(targets)
    for batch in run_generator.batches(targets, args.minibatch_size):
        batch_names = [name for name, _ in batch]
        images = np.stack([image for _, image in batch])
        batch_init = None if init is None else np.repeat(init, len(batch), axis=0)
        project_batch(proj, images, batch_names, args.num_snapshots, args.save_video, args.fps, batch_init)
    print(f"Done: {len(targets)} projections in {dnnlib.make_run_dir_path()}" +
          (f"; {skipped} file(s) skipped, named above" if skipped else ""))
    if not targets:
        raise dnnlib.util.UserError("none of the target files could be read as images")


# ----------------------------------------------------------------------------------------------------------------


_examples = """examples:

  # Project generated images
  python %(prog)s project-generated-images --network=gdrive:networks/stylegan2-car-config-f.pkl --seeds=0,1,5

  # Project real images
  python %(prog)s project-real-images --network=gdrive:networks/stylegan2-car-config-f.pkl --dataset=car --data-dir=~/datasets

  # Project your own (aligned) photos into W+, with a video of each projection
  python %(prog)s project-images --network=gdrive:networks/stylegan2-ffhq-config-f.pkl --target=aligned/ --space=w+ --save-video
"""


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="StyleGAN2 projector: find the latents of generated, dataset or your own images.",
        epilog=_examples, formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(help="Sub-commands", dest="command")

    def add_common(p):
        p.add_argument("--network", default=pretrained_networks.DEFAULT_NETWORK,
                       help="Network pickle: path, URL or name (default: the shipped emoji network)")
        p.add_argument("--num-snapshots", type=dnnlib.util.nonnegative_int, default=5,
                       help="Number of snapshots (default: %(default)s)")
        p.add_argument("--num-steps", type=dnnlib.util.positive_int, default=1000,
                       help="Optimisation steps (default: %(default)s)")
        p.add_argument("--space", choices=projector.SPACES, default="w",
                       help="Optimise one W for all layers (the original) or one per layer (default: %(default)s)")
        p.add_argument("--loss", choices=projector.LOSSES, default="lpips",
                       help="Distance to the target: LPIPS (the original), pixel MSE, or both (default: "
                            "%(default)s)")
        p.add_argument("--lpips-weight", type=float, default=1.0, help="Weight of LPIPS (default: %(default)s)")
        p.add_argument("--mse-weight", type=float, default=1.0,
                       help="Weight of the pixel MSE, images in [-1, 1] (default: %(default)s)")
        p.add_argument("--vgg16", metavar="PATH",
                       help="VGG16 perceptual network: vgg16_zhang_perceptual.pkl, or torchvision's "
                            "vgg16-397923af.pth with the lpips package (path or URL; default: download NVIDIA's)")
        p.add_argument("--seed", type=int, default=303, help="Random seed of the optimisation (default: %(default)s)")
        p.add_argument("--save-video", action="store_true",
                       help="Also write <name>-proj.mp4: target | projection at every step")
        p.add_argument("--fps", type=dnnlib.util.positive_int, default=30,
                       help="Frame rate of the videos (default: %(default)s)")
        p.add_argument("--result-dir", help="Root directory for run results (default: %(default)s)",
                       default="results", metavar="DIR")
        p.add_argument("--cache-dir", help="Download cache (default: $DNNLIB_CACHE_DIR or ~/.cache/dnnlib)",
                       metavar="DIR")
        dnnlib.ops.add_compute_args(p)

    p = subparsers.add_parser("project-generated-images", help="Project generated images")
    p.add_argument("--seeds", type=dnnlib.util.num_range_arg, help="List of random seeds (default: %(default)s)",
                   default="0,1,2")
    p.add_argument("--truncation-psi", type=float, help="Truncation psi (default: %(default)s)", default=1.0)
    p.add_argument("--class", dest="class_idx", type=int, metavar="N",
                   help="Class label for a conditional network")
    add_common(p)

    p = subparsers.add_parser("project-real-images", help="Project real images")
    p.add_argument("--data-dir", help="Dataset root directory", required=True)
    p.add_argument("--dataset", help="Training dataset", dest="dataset", required=True)
    p.add_argument("--num-images", type=dnnlib.util.positive_int, help="Number of images to project "
                   "(default: %(default)s)", default=3)
    add_common(p)

    p = subparsers.add_parser("project-images", help="Project image files (one file, or a folder)")
    p.add_argument("--target", required=True, help="An image file, or a folder of them")
    p.add_argument("--init", metavar="FILE",
                   help="Start from this latent (.npy/.npz) instead of the mean W")
    p.add_argument("--batch-size", dest="minibatch_size", type=dnnlib.util.positive_int, default=1,
                   help="Images projected together (default: %(default)s); results do not depend on it")
    add_common(p)

    command, args = dnnlib.util.parse_command(parser, argv)
    args = argparse.Namespace(command=command, **args)
    if args.loss != "mse" and not 0 < args.lpips_weight:
        raise dnnlib.util.UserError("--lpips-weight must be positive (use --loss=mse to drop LPIPS)")
    if args.command == "project-images":
        args.target_paths = list_targets(args.target)  # before the run directory exists, so a typo leaves nothing
    compute = dnnlib.ops.compute_mode(args.precision, args.reference_path, default_device())
    run_dir = dnnlib.util.make_run_dir(args.result_dir, args.command)
    dnnlib.util.set_run_dir(run_dir)
    func = {"project-generated-images": project_generated_images, "project-real-images": project_real_images,
            "project-images": project_images}[args.command]
    with dnnlib.util.Logger(), compute:
        func(args)


if __name__ == "__main__":
    dnnlib.util.cli_main(main)
