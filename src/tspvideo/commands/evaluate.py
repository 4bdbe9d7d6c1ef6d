"""`tspvideo eval clips`: clip accuracies of a checkpoint on a segment table.

`tspvideo evaluate` is its deprecated spelling: the same options and output, and a one-line note.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import TYPE_CHECKING

from tspvideo.commands import _DeprecatedAlias, add_command, add_device
from tspvideo.commands.train import add_data_arguments
from tspvideo.core.fileio import save_json_atomic

if TYPE_CHECKING:
    from tspvideo.train.validate import ClipAccuracyConfig

DESCRIPTION = ("Accuracy of each head on evenly spaced clips of every segment (action head: foreground clips only) "
               "and their mean, the model-selection score of the paper. Clip length, fps, clips per segment and "
               "input size default to those the checkpoint was trained with.")


def register(subparsers) -> None:
    """Add the deprecated ``evaluate`` subcommand (``eval clips`` is registered by ``tspvideo.commands.eval``)."""
    parser = add_command(subparsers, "evaluate", "deprecated spelling of `tspvideo eval clips`",
                         "Deprecated: use `tspvideo eval clips` (same options). " + DESCRIPTION)
    add_evaluate_arguments(parser, deprecated_command=True)
    parser.set_defaults(func=run_deprecated)


def register_clips(subparsers) -> None:
    """Add ``clips`` to the ``eval`` subcommands."""
    parser = add_command(subparsers, "clips", "clip accuracies of a checkpoint on a segment table", DESCRIPTION)
    add_evaluate_arguments(parser)
    parser.set_defaults(func=run)


def add_evaluate_arguments(parser: argparse.ArgumentParser, deprecated_command: bool = False) -> None:
    """Options of ``tspvideo evaluate``; the clip grid defaults to the one the checkpoint was trained with."""
    parser.add_argument("--checkpoint", required=True, help="a tspvideo run's best.pth / checkpoint.pth, a "
                                                            "released file, or a registered name")
    add_data_arguments(parser, train=False)
    parser.add_argument("--gvf-pool", choices=["max", "avg"], default=None,
                        help="GVF pooling of a released checkpoint (its file does not say)")
    parser.add_argument("--batch-size", type=int, default=32, help="clips per forward pass and process")
    add_device(parser)
    parser.add_argument("--amp", choices=["bf16", "fp16"], default=None, help="autocast dtype (default float32)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last_3d memory format")
    parser.add_argument("--seed", type=int, default=0, help="only picks replacements for undecodable clips")
    parser.add_argument("--out", metavar="FILE.json", default=None, help="also write the accuracies to this JSON file")
    # --json: the old name of --out (the deprecated command keeps it without a second note)
    parser.add_argument("--json", dest="out", default=argparse.SUPPRESS, help=argparse.SUPPRESS,
                        **({} if deprecated_command else {"action": _DeprecatedAlias, "new_option": "--out"}))
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace) -> ClipAccuracyConfig:
    """The parsed flags as a :class:`ClipAccuracyConfig`."""
    from tspvideo.train.validate import ClipAccuracyConfig

    names = ClipAccuracyConfig.__dataclass_fields__
    return ClipAccuracyConfig(**{name: getattr(args, name) for name in names})


def run_deprecated(args: argparse.Namespace) -> int:
    """``tspvideo evaluate``: a one-line note, then exactly ``eval clips``."""
    print("tspvideo evaluate: deprecated; use `tspvideo eval clips` (same options)", file=sys.stderr)
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Print the accuracies (and write --out); exit code 0."""
    from tspvideo.train.validate import evaluate_checkpoint

    stats = evaluate_checkpoint(config_from_args(args))
    if os.environ.get("RANK", "0") != "0":  # under torchrun every process has the same summed numbers
        return 0
    for key in ("acc_action", "acc_region", "acc_mean"):
        if key in stats and not math.isnan(stats[key]):
            print(f"{key:<12} {stats[key]:.4f}")
    print(f"{'clips':<12} {stats['clips']} ({stats['replaced']} undecodable replaced)")
    if args.out:
        save_json_atomic(args.out, {"checkpoint": args.checkpoint, "valid_csv": args.valid_csv, **stats})
    return 0
