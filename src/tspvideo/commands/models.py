"""`tspvideo models`: the backbones and the known weights (released checkpoints and base weights)."""

from __future__ import annotations

import argparse

from tspvideo.commands import add_command
from tspvideo.models.backbones import available_backbones
from tspvideo.models.weights import WEIGHTS, cache_dir


def register(subparsers) -> None:
    """Add the ``models`` subcommand."""
    parser = add_command(subparsers, "models", "list backbones and known weights")
    parser.add_argument("--urls", action="store_true", help="also print each file's URL")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the registry and whether each file is already in the cache."""
    print(f"backbones: {', '.join(available_backbones())}")
    print(f"weights cache: {cache_dir()} (set TSPVIDEO_CACHE to change it)\n")
    header = f"{'name':42} {'heads':14} {'classes':>7} {'gvf':5} cached"
    print(header)
    print("-" * len(header))
    for info in WEIGHTS.values():
        cached = "yes" if (cache_dir() / info.filename).is_file() else "no"
        print(f"{info.name:42} {'+'.join(info.heads):14} {info.num_classes:>7} {info.gvf or '-':5} {cached}")
        if args.urls:
            print(f"    {info.url}")
    return 0
