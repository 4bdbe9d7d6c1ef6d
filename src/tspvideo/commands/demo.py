"""`tspvideo demo`: the whole pipeline on a small synthetic dataset, offline, in a few minutes on a CPU."""

from __future__ import annotations

import argparse

from tspvideo.commands import add_command, add_device, add_num_videos


def register(subparsers) -> None:
    """Add the ``demo`` subcommand."""
    parser = add_command(
        subparsers, "demo", "run the whole pipeline on a small synthetic dataset (offline, CPU, minutes)",
        "Synthetic untrimmed videos -> segment tables -> GVF from the initial encoder -> TSP training -> "
        "feature extraction with the trained encoder -> a summary. The same code as full training, with small "
        "clips and frames. Without --weights the encoder starts from random weights (nothing is downloaded).")
    parser.add_argument("--out", default="tspvideo-demo", help="folder for everything the demo writes")
    parser.add_argument("--weights", default=None,
                        help="initial backbone weights (registered name, URL or file); default: random")
    parser.add_argument("--backbone", default="r2plus1d_18", help="backbone (small ones keep the demo short)")
    add_num_videos(parser, 12, "number of synthetic videos")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs")
    add_device(parser)
    parser.add_argument("--seed", type=int, default=0, help="random seed (dataset and training)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print its summary; exit code 0."""
    from tspvideo.runs.demo import DemoConfig, run_demo

    config = DemoConfig(num_videos=args.num_videos, epochs=args.epochs, backbone=args.backbone, weights=args.weights,
                        device=args.device, seed=args.seed, progress=not args.no_progress)
    run_demo(args.out, config)
    return 0
