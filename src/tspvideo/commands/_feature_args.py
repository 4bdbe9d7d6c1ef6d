"""Arguments shared by the commands that read features: the source and its time grid."""

from __future__ import annotations

import argparse

from tspvideo.features.folder import Grid

SOURCE_HELP = ("feature folder (<stem>.npy + <stem>.json), HDF5 file of [T, C] datasets, or the name of a "
               "downloaded released file (tspvideo features list)")


def add_grid_args(parser: argparse.ArgumentParser) -> None:
    """``--clip-len --stride --fps``: the grid of features whose files do not state it."""
    group = parser.add_argument_group(
        "time grid", "only needed for an HDF5 without grid attributes that is not a registered released file; "
                     "must agree with what the files state")
    group.add_argument("--clip-len", type=int, default=None, help="frames per clip (L)")
    group.add_argument("--stride", type=int, default=None, help="frames between clip starts")
    group.add_argument("--fps", type=float, default=None, help="frame rate the clips were sampled at")


def grid_from_args(args: argparse.Namespace) -> Grid:
    """The grid the flags give (components not given stay ``None``)."""
    return Grid(clip_len=args.clip_len, fps=args.fps, stride=args.stride)
