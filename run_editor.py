"""Edit latents: find semantic directions (GANSpace, SeFa), learn one from labels (InterFaceGAN), apply directions to
seeds or projected latents, edit by a text prompt (StyleCLIP), and blend two networks by resolution (toonify).

    python run_editor.py find-directions --network=ffhq.pkl --method=sefa --layers=all
    python run_editor.py train-direction --network=ffhq.pkl --seeds=0-9999 --labels=smile.csv --name=smile
    python run_editor.py apply-direction --network=ffhq.pkl --latents=projected/ --direction=smile.npy \\
        --coeffs=-4,-2,0,2,4 --layers=0-7
    python run_editor.py apply-direction --seeds=1-4 --direction=results/00000-find-directions/sefa.npz --component=0
    python run_editor.py text-edit --network=ffhq.pkl --latents=me.npy --prompt="a smiling face" --clip=ViT-B-32.pt
    python run_editor.py blend-networks --base=toons.pkl --fine=ffhq.pkl --resolution=32 --output=toonify.pkl

Directions are `.npy` files of shape [dlatent_size] or [num_layers, dlatent_size], the layouts of the popular
repositories (Puzer's, InterFaceGAN's, GANSpace exports); component sets are `.npz` files (`lat_comp`, as GANSpace
names them). Each run writes into a new folder <result-dir>/<NNNNN>-<subcommand>.
"""

import argparse
import csv
import os

import numpy as np
import PIL.Image
import torch
import tqdm

import dnnlib
import dnnlib.ops
import dnnlib.tflib as tflib
import pretrained_networks
import run_generator
from dnnlib.tflib.network import default_device
from dnnlib.tflib.network_pickle import save_network_pkl
from training import clip as clip_lib
from training import editing, projector
from training import lpips as lpips_lib

# ----------------------------------------------------------------------------------------------------------------
# Latents in and images out.


def load_generator(network_pkl):
    print('Loading networks from "%s"...' % network_pkl)
    return pretrained_networks.load_networks(network_pkl)


def source_latents(Gs, seeds, latents, truncation_psi, class_idx=None):
    """(names, W+ latents [N, num_layers, dlatent_size]) from seeds (mapped, truncated) or latent files."""
    num_layers, dlatent_size = Gs.components.synthesis.input_shape[1:]
    if latents is not None:
        names, out = [], []
        for path in run_generator.latent_files(latents):
            w, _noises = projector.load_latents(path, num_layers, dlatent_size)
            stem = os.path.splitext(os.path.basename(path))[0]
            names += [stem] if len(w) == 1 else [f"{stem}-{i:04d}" for i in range(len(w))]
            out.append(w)
        return names, np.concatenate(out)
    z = np.stack([np.random.RandomState(seed).randn(*Gs.input_shape[1:]) for seed in seeds])
    labels = run_generator.make_labels(Gs, class_idx, len(seeds))
    return ["seed%04d" % seed for seed in seeds], run_generator.map_to_w(Gs, z, labels, truncation_psi, 8)


def render(Gs, dlatents, minibatch_size=8):
    """W+ [N, num_layers, D] -> uint8 [N, H, W, C] with the network's stored noise (edits do not flicker)."""
    return Gs.components.synthesis.run(np.asarray(dlatents, np.float32), randomize_noise=False,
                                       minibatch_size=minibatch_size,
                                       output_transform=dict(func=tflib.convert_images_to_uint8, nchw_to_nhwc=True))


def save_grid(rows, path):
    """Images [rows][cols] of equal size (uint8 [H, W, C]) pasted into one PNG, written atomically."""
    height, width = rows[0][0].shape[:2]
    canvas = PIL.Image.new("RGB", (width * len(rows[0]), height * len(rows)), "black")
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            canvas.paste(run_generator.to_pil(image).convert("RGB"), (width * c, height * r))
    with dnnlib.util.atomic_write(path) as f:
        canvas.save(f, format="PNG")


def load_direction(path, component=None, scale_by_stdev=True):
    """A direction from a `.npy` file, or row `component` of a component set (`.npz` with lat_comp or components).
    GANSpace components are scaled by their standard deviation, so coefficients count standard deviations."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise dnnlib.util.UserError(f"cannot read the direction {path}: {e}") from None
    if isinstance(data, np.ndarray):
        if component is not None:
            raise dnnlib.util.UserError(f"--component applies to component sets (.npz); {path} is one direction")
        return data.astype(np.float64)
    with data:
        key = next((k for k in ("lat_comp", "components") if k in data.files), None)
        if key is None:
            raise dnnlib.util.UserError(f"{path} holds no components ('lat_comp' or 'components')")
        components = data[key]
        if component is None or not 0 <= component < len(components):
            raise dnnlib.util.UserError(f"{path} holds {len(components)} components: pick one with --component=N, "
                                        f"N in 0..{len(components) - 1}")
        direction = components[component].astype(np.float64)
        if scale_by_stdev and "lat_stdev" in data.files:
            direction = direction * float(data["lat_stdev"][component])
        return direction


# ----------------------------------------------------------------------------------------------------------------
# Subcommands.


def find_directions(network_pkl, method, layers, num_samples, num_components, seed, preview_seed, coeffs):
    """GANSpace or SeFa components of the network, saved as <method>.npz, with a preview grid of the first ten
    (rows: components; columns: coefficients applied to one seed)."""
    _G, _D, Gs = load_generator(network_pkl)
    num_layers = Gs.components.synthesis.input_shape[1]
    chosen = editing.parse_layers(layers, num_layers)
    if method == "ganspace":
        print(f"PCA of {num_samples} W samples...")
        with tqdm.tqdm(total=num_samples, desc="Sampling W", unit="w") as progress:
            result = editing.ganspace(Gs, num_samples, num_components, seed, progress=progress)
        components, scales = result.lat_comp, result.lat_stdev
    else:
        result = editing.sefa(Gs, chosen)
        result.components = result.components[:num_components]
        result.eigenvalues = result.eigenvalues[:num_components]
        components, scales = result.components, np.ones(len(result.components))
    result.layers = np.array(chosen)
    path = dnnlib.make_run_dir_path(method + ".npz")
    with dnnlib.util.atomic_write(path) as f:
        np.savez(f, **result)

    _names, w = source_latents(Gs, [preview_seed], None, 0.7)
    rows = []
    for component, scale in tqdm.tqdm(list(zip(components[:10], scales[:10])), desc="Preview", unit="component"):
        rows.append(list(render(Gs, editing.apply_direction(w, component * scale, coeffs, chosen)[0])))
    save_grid(rows, dnnlib.make_run_dir_path(method + "-preview.png"))
    print(f"Done: {len(components)} components in {path}; preview of the first {len(rows)} (rows) at coefficients "
          f"{', '.join(f'{c:g}' for c in coeffs)} in {dnnlib.make_run_dir_path(method + '-preview.png')}")


def read_labels(path, names):
    """Labels for latents named `names` (seed numbers or latent file stems): a .npy [N] in their order, or a CSV of
    'name,label' rows (a header row is allowed) or of one label per row in order."""
    if path.lower().endswith(".npy"):
        try:
            labels = np.load(path, allow_pickle=False).reshape(-1)
        except (OSError, ValueError) as e:
            raise dnnlib.util.UserError(f"cannot read labels from {path}: {e}") from None
    else:
        try:
            with open(path, newline="", encoding="utf-8") as f:
                rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
        except (OSError, UnicodeDecodeError) as e:
            raise dnnlib.util.UserError(f"cannot read labels from {path}: {e}") from None
        try:
            float(rows[0][-1])
        except (ValueError, IndexError):
            rows = rows[1:]  # a header
        try:
            if rows and len(rows[0]) >= 2:
                by_key = {row[0].strip(): float(row[1]) for row in rows}
                missing = [name for name in names if name not in by_key]
                if missing:
                    raise dnnlib.util.UserError(f"{path} has no label for {', '.join(missing[:5])}"
                                                + (" ..." if len(missing) > 5 else ""))
                labels = np.array([by_key[name] for name in names])
            else:
                labels = np.array([float(row[0]) for row in rows])
        except ValueError as e:
            raise dnnlib.util.UserError(f"{path}: labels must be numbers ({e})") from None
    if len(labels) != len(names):
        raise dnnlib.util.UserError(f"{path} has {len(labels)} labels for {len(names)} latents")
    return labels


def train_direction(network_pkl, seeds, latents, labels, space, chosen_fraction, name, truncation_psi):
    """InterFaceGAN: the unit normal of a linear boundary between latents labelled 1 and 0, saved as <name>.npy."""
    _G, _D, Gs = load_generator(network_pkl)
    names, w = source_latents(Gs, seeds, latents, truncation_psi)
    y = read_labels(labels, [str(seed) for seed in seeds] if seeds else names)
    x = w.mean(axis=1) if space == "w" else w  # W latents are the same on every layer
    print(f"Fitting a linear boundary to {len(x)} latents...")
    direction, accuracy = editing.train_direction(x, y, chosen_fraction=chosen_fraction)
    path = dnnlib.make_run_dir_path(name + ".npy")
    with dnnlib.util.atomic_write(path) as f:
        np.save(f, direction)
    if accuracy is not None:
        print(f"Validation accuracy on the held-out 30%: {accuracy:.3f}")
    print(f"Done: direction of shape {list(direction.shape)} in {path}")


def apply_direction(network_pkl, seeds, latents, direction, component, coeffs, layers, truncation_psi):
    """Each latent moved along the direction by each coefficient: grid.png (rows: latents; columns: coefficients,
    as Puzer's move_and_show) and the edited latents, <name>-edited.npy [len(coeffs), num_layers, dlatent_size]."""
    _G, _D, Gs = load_generator(network_pkl)
    num_layers = Gs.components.synthesis.input_shape[1]
    chosen = editing.parse_layers(layers, num_layers)
    names, w = source_latents(Gs, seeds, latents, truncation_psi)
    edited = editing.apply_direction(w, load_direction(direction, component), coeffs, chosen)
    rows = []
    for name, row in tqdm.tqdm(list(zip(names, edited)), desc="Editing", unit="latent"):
        rows.append(list(render(Gs, row)))
        with dnnlib.util.atomic_write(dnnlib.make_run_dir_path(f"{name}-edited.npy")) as f:
            np.save(f, row.astype(np.float32))
    save_grid(rows, dnnlib.make_run_dir_path("grid.png"))
    print(f"Done: {len(names)} x {len(coeffs)} edits in {dnnlib.make_run_dir_path('grid.png')} and "
          "<name>-edited.npy")


def text_edit(network_pkl, seeds, latents, truncation_psi, prompt, num_steps, learning_rate, l2_lambda, keep_lambda,
              clip, clip_vocab, vgg16):
    """StyleCLIP latent optimisation in W+ towards a text prompt. Per latent: <name>-edited.png, <name>-edited.npy
    and <name>-strip.png (original | edited)."""
    _G, _D, Gs = load_generator(network_pkl)
    names, w = source_latents(Gs, seeds, latents, truncation_psi)
    print("Loading CLIP...")
    clip_model = clip_lib.load_clip(clip, device=Gs.device)
    tokens = clip_lib.tokenize([prompt], context_length=clip_model.context_length, bpe_path=clip_vocab)
    with torch.no_grad():
        text_features = clip_model.encode_text(tokens.to(Gs.device))
    lpips = lpips_lib.load_lpips(vgg16).to(Gs.device) if keep_lambda else None
    for name, w0 in zip(names, w):
        with tqdm.tqdm(total=num_steps, desc=f"Editing {name}", unit="step") as progress:
            edited, history = editing.text_edit(Gs, clip_model, text_features, w0[np.newaxis], num_steps,
                                                learning_rate, l2_lambda, keep_lambda, lpips, progress)
        before, after = render(Gs, np.concatenate([w0[np.newaxis], edited]))
        run_generator.save_image(after, dnnlib.make_run_dir_path(f"{name}-edited.png"))
        save_grid([[before, after]], dnnlib.make_run_dir_path(f"{name}-strip.png"))
        with dnnlib.util.atomic_write(dnnlib.make_run_dir_path(f"{name}-edited.npy")) as f:
            np.save(f, edited[0])
        print(f"{name}: CLIP loss {history[0]:.4f} -> {history[-1]:.4f}")
    print(f"Done: {len(names)} edits towards \"{prompt}\" in {dnnlib.make_run_dir_path()}")


def blend_networks(base, fine, resolution, blend_width, smooth, output, seeds):
    """Resolution-dependent blend: blocks below --resolution from --base, from it up from --fine. Writes the blended
    (G, D, Gs) pickle and a preview grid (rows: seeds; columns: base, blend, fine)."""
    if smooth and blend_width is None:
        blend_width = 1.0
    G_base, D_base, Gs_base = load_generator(base)
    G_fine, _D_fine, Gs_fine = load_generator(fine)
    G_blend = editing.blend_networks(G_base, G_fine, resolution, blend_width)
    Gs_blend = editing.blend_networks(Gs_base, Gs_fine, resolution, blend_width)
    output = output or dnnlib.make_run_dir_path("blended.pkl")
    save_network_pkl((G_blend, D_base, Gs_blend), output)
    rows = []
    for seed in seeds:
        _names, w = source_latents(Gs_base, [seed], None, 0.7)
        rows.append([render(net, w)[0] for net in (Gs_base, Gs_blend, Gs_fine)])
    save_grid(rows, dnnlib.make_run_dir_path("blend-preview.png"))
    print(f"Done: blended network in {output}; preview (base | blend | fine) in "
          f"{dnnlib.make_run_dir_path('blend-preview.png')}")


# ----------------------------------------------------------------------------------------------------------------


def _fraction(s):
    try:
        value = float(s)
    except ValueError:
        value = -1
    if not 0 < value <= 0.5:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 0.5], got '{s}'")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(description="StyleGAN2 latent editing: directions, text edits, blending.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    subparsers = parser.add_subparsers(help="Sub-commands", dest="command")

    def add_common(p, network=True):
        if network:
            p.add_argument("--network", default=pretrained_networks.DEFAULT_NETWORK,
                           help="Network pickle: path, URL or name (default: the shipped emoji network)")
        p.add_argument("--result-dir", default="results", metavar="DIR",
                       help="Root directory for run results (default: %(default)s)")
        p.add_argument("--cache-dir", metavar="DIR", help="Download cache (default: $DNNLIB_CACHE_DIR or "
                       "~/.cache/dnnlib)")

    def add_sources(p):
        source = p.add_mutually_exclusive_group(required=True)
        source.add_argument("--seeds", type=dnnlib.util.num_range_arg, help="Seeds whose W to use")
        source.add_argument("--latents", "--latent", metavar="PATH",
                            help="Latent file(s): .npy/.npz, or a folder of them")
        p.add_argument("--truncation-psi", type=float, default=0.7,
                       help="Truncation of seed latents (default: %(default)s)")

    p = subparsers.add_parser("find-directions", help="GANSpace or SeFa components")
    p.add_argument("--method", choices=["ganspace", "sefa"], required=True)
    p.add_argument("--layers", default="all", help="SeFa: W+ layers whose styles to factorise, and the layers the "
                   "preview edits, e.g. 0-3 (default: %(default)s)")
    p.add_argument("--num-samples", type=dnnlib.util.positive_int, default=300000,
                   help="GANSpace: W samples for the PCA (default: %(default)s)")
    p.add_argument("--num-components", type=dnnlib.util.positive_int, default=80,
                   help="Components to keep (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="GANSpace sampling seed (default: %(default)s)")
    p.add_argument("--preview-seed", type=int, default=0, help="Seed of the preview grid (default: %(default)s)")
    p.add_argument("--coeffs", type=dnnlib.util.float_list, default="-3,-1.5,0,1.5,3",
                   help="Preview coefficients (GANSpace: standard deviations) (default: %(default)s)")
    add_common(p)

    p = subparsers.add_parser("train-direction", help="InterFaceGAN: a direction from labelled latents")
    add_sources(p)
    p.add_argument("--labels", required=True, help=".npy or .csv of labels (0/1, or scores with --chosen-fraction)")
    p.add_argument("--space", choices=["w", "w+"], default="w",
                   help="Fit one W (direction [D]) or all layers (direction [num_layers, D]) (default: %(default)s)")
    p.add_argument("--chosen-fraction", type=_fraction,
                   help="Labels are scores: use the top and bottom fraction (InterFaceGAN: 0.02)")
    p.add_argument("--name", default="direction", help="Output file name (default: %(default)s)")
    add_common(p)

    p = subparsers.add_parser("apply-direction", help="Move latents along a direction, as a grid")
    add_sources(p)
    p.add_argument("--direction", required=True, help=".npy direction or .npz component set")
    p.add_argument("--component", type=int, help="Which component of a .npz set")
    p.add_argument("--coeffs", type=dnnlib.util.float_list, default="-4,-2,0,2,4",
                   help="Coefficients, one column each (default: %(default)s)")
    p.add_argument("--layers", default="all", help="W+ layers to move, e.g. 0-7 (default: %(default)s)")
    add_common(p)

    p = subparsers.add_parser("text-edit", help="StyleCLIP: edit latents towards a text prompt")
    add_sources(p)
    p.add_argument("--prompt", required=True, help='The target description, e.g. "a smiling face"')
    p.add_argument("--num-steps", type=dnnlib.util.positive_int, default=300,
                   help="Optimisation steps (default: %(default)s)")
    p.add_argument("--learning-rate", type=float, default=0.1, help="Initial learning rate (default: %(default)s)")
    p.add_argument("--l2-lambda", type=float, default=0.008,
                   help="Weight of |w - w0|^2, which keeps the edit close to the start (default: %(default)s)")
    p.add_argument("--keep-lambda", type=float, default=0.0,
                   help="Weight of LPIPS to the original image, a stand-in for StyleCLIP's face-identity term "
                        "(default: %(default)s, off)")
    p.add_argument("--clip", metavar="PATH", help="CLIP ViT-B/32 weights: OpenAI's ViT-B-32.pt or open_clip's "
                   "checkpoint, path or URL (default: download OpenAI's)")
    p.add_argument("--clip-vocab", metavar="PATH", help="CLIP's bpe_simple_vocab_16e6.txt.gz (default: from an "
                   "installed open_clip_torch, else downloaded from OpenAI)")
    p.add_argument("--vgg16", metavar="PATH", help="LPIPS weights for --keep-lambda (as run_projector.py)")
    add_common(p)

    p = subparsers.add_parser("blend-networks", help="Coarse layers from one network, fine from another")
    p.add_argument("--base", required=True, help="Network for the layers below --resolution, the mapping and D")
    p.add_argument("--fine", required=True, help="Network for the layers from --resolution up")
    p.add_argument("--resolution", type=int, required=True, help="Resolution where --fine takes over, e.g. 32")
    p.add_argument("--blend-width", type=float, help="Smooth transition over this many octaves (default: a hard "
                   "switch)")
    p.add_argument("--smooth", action="store_true", help="A smooth transition of width 1 (same as --blend-width=1)")
    p.add_argument("--output", help="Output pickle (default: blended.pkl in the run directory)")
    p.add_argument("--seeds", type=dnnlib.util.num_range_arg, default="0-3", help="Preview seeds (default: %(default)s)")
    add_common(p, network=False)

    command, args = dnnlib.util.parse_command(parser, argv)
    if args.get("latents") is not None:
        run_generator.latent_files(args["latents"])  # a bad path fails before the run directory is made
    func = {"find-directions": find_directions, "train-direction": train_direction,
            "apply-direction": apply_direction, "text-edit": text_edit, "blend-networks": blend_networks}[command]
    run_dir = dnnlib.util.make_run_dir(args.pop("result_dir"), command)
    dnnlib.util.set_run_dir(run_dir)
    network = args.pop("network", None)
    with dnnlib.util.Logger(), dnnlib.ops.precision("fp32", default_device()):
        func(**args) if network is None else func(network, **args)


if __name__ == "__main__":
    dnnlib.util.cli_main(main)
