"""`tspvideo evaluate`: clip accuracies of a checkpoint on a segment table."""

from __future__ import annotations

import argparse
import math
import os

from tspvideo.commands import add_command
from tspvideo.fileio import save_json_atomic


def register(subparsers) -> None:
    """Add the ``evaluate`` subcommand."""
    from tspvideo.train import add_evaluate_arguments

    parser = add_command(
        subparsers, "evaluate", "clip accuracies of a checkpoint on a segment table",
        "Accuracy of each head on evenly spaced clips of every segment (action head: foreground clips only) "
        "and their mean, the model-selection score of the paper. Clip length, fps, clips per segment and "
        "input size default to those the checkpoint was trained with.")
    add_evaluate_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the accuracies (and write --json); exit code 0."""
    from tspvideo.train import evaluate_checkpoint

    stats = evaluate_checkpoint(args)
    if os.environ.get("RANK", "0") != "0":  # under torchrun every process has the same summed numbers
        return 0
    for key in ("acc_action", "acc_region", "acc_mean"):
        if key in stats and not math.isnan(stats[key]):
            print(f"{key:<12} {stats[key]:.4f}")
    print(f"{'clips':<12} {stats['clips']} ({stats['replaced']} undecodable replaced)")
    if args.json:
        save_json_atomic(args.json, {"checkpoint": args.checkpoint, "valid_csv": args.valid_csv, **stats})
    return 0
