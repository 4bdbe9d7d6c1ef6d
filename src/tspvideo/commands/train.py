"""`tspvideo train`: TSP / TAC pretraining of a video encoder (one process or under torchrun)."""

from __future__ import annotations

import argparse

from tspvideo.commands import add_command


def register(subparsers) -> None:
    """Add the ``train`` subcommand."""
    from tspvideo.train import add_train_arguments

    parser = add_command(
        subparsers, "train", "pretrain a video encoder with TSP (or TAC) on segment tables",
        "Train on clips of the segments of --train-csv, validate on --valid-csv after every epoch, and keep "
        "OUT/checkpoint.pth (resume with --resume), OUT/best.pth (for `tspvideo extract --checkpoint`), "
        "OUT/metrics.csv and OUT/train.log. Several GPUs or machines: torchrun --nproc-per-node N -m "
        "tspvideo.cli train ... (learning rates are per process and scaled by their number).")
    add_train_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train; exit code 0."""
    from tspvideo.train import main

    result = main(args)
    best = result["best"]
    if best["epoch"] >= 0 and "valid_acc_mean" in best:
        print(f"train: best epoch {best['epoch'] + 1}, valid mean clip accuracy {best['valid_acc_mean']:.4f} "
              f"-> {result['out']}/best.pth")
    return 0
