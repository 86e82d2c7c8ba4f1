"""Convert a network file between the formats of the StyleGAN tools.

    python convert_network.py --input stylegan2-ffhq-config-f.pt --to ours --output ffhq.pkl
    python convert_network.py --input network-snapshot-000200.pkl --to ada-pytorch-state --output G.pt
    python convert_network.py --input ffhq --to rosinality --output stylegan2-ffhq-config-f.pt

The input is a path, URL or official name in any format load_networks reads (TensorFlow and PyTorch pickles of
StyleGAN, StyleGAN2, StyleGAN2-ADA, stylegan2-ada-pytorch and stylegan3 (StyleGAN2 architecture), rosinality
checkpoints, our safetensors), told apart by content; it is read as data, never run. Outputs are written atomically
and load back through load_networks. See training/checkpoint_formats.py.
"""

import argparse

import dnnlib
import pretrained_networks
from training.checkpoint_formats import EXPORT_FORMATS, save_networks


def convert_network(input, to, output):  # pylint: disable=redefined-builtin
    nets = pretrained_networks.load_networks(input)
    how = save_networks(nets, output, to)
    print(f"wrote {output} ({to}); {how}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--input", required=True, metavar="PATH", help="Network file, URL or official name")
    parser.add_argument("--from", dest="input_format", choices=["any"], default="any",
                        help="Input format: 'any', detected from the file's content (never its name)")
    parser.add_argument("--to", required=True, choices=EXPORT_FORMATS,
                        help="ours: our (and the original's) network pickle; ada-pytorch-state: torch.save'd state "
                             "dicts 'G', 'D', 'G_ema' for stylegan2-ada-pytorch / stylegan3, with their constructor "
                             "kwargs; rosinality: {'g_ema', 'g', 'd', 'latent_avg'} for rosinality's stylegan2-pytorch; "
                             "safetensors: tensors under our variable names (needs the safetensors package)")
    parser.add_argument("--output", required=True, metavar="PATH", help="File to write")
    args = parser.parse_args(argv)
    convert_network(args.input, args.to, args.output)


if __name__ == "__main__":
    dnnlib.util.cli_main(main)
