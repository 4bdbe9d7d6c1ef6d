"""`tspvideo experiment`: TSP vs TAC vs TSP w/o GVF from the same initial encoder, on synthetic data."""

from __future__ import annotations

import argparse
import dataclasses

from tspvideo.commands import add_command, add_num_videos


def register(subparsers) -> None:
    """Add the ``experiment`` subcommand."""
    from tspvideo.experiment import ExperimentConfig

    defaults = ExperimentConfig()
    parser = add_command(
        subparsers, "experiment", "pretrain TSP, TAC and TSP w/o GVF on synthetic data and compare their features",
        "For each seed: one initial encoder, trained as TSP, TAC and TSP without GVF with the same data and "
        "schedule; features of every video with each (and with the initial encoder); the localization probe, "
        "length breakdown and temporal-sensitivity scores of each; a table like the paper's Table 1 (mean +- std "
        "over seeds), OUT/results.json ({variant: {metric: [one value per seed]}}) and similarity figures in "
        "OUT/figures. Rerunning with the same --out continues an interrupted run. Without --weights every seed "
        "starts from random weights (nothing is downloaded).")
    parser.add_argument("--out", required=True, help="folder for everything the experiment writes")
    parser.add_argument("--quick", action="store_true",
                        help="the smallest configuration that runs every step (2 seeds, 6 tiny videos, 1 epoch); "
                             "other size options are ignored")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(defaults.seeds), help="seeds (one run each)")
    add_num_videos(parser, defaults.num_videos, "number of synthetic videos")
    parser.add_argument("--classes", type=int, default=defaults.num_classes, help="number of synthetic classes")
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="training epochs of every variant")
    parser.add_argument("--backbone", default=defaults.backbone, help="encoder architecture")
    parser.add_argument("--weights", default=None,
                        help="initial backbone weights (registered name, URL or file, e.g. Kinetics ones); "
                             "default: seeded random weights")
    parser.add_argument("--probe-epochs", type=int, default=defaults.probe_epochs, help="localization probe epochs")
    parser.add_argument("--workers", type=int, default=defaults.workers, help="data loading processes")
    parser.add_argument("--device", default=defaults.device, help="auto, cpu, cuda")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run (or continue) the experiment and print its table; exit code 0."""
    from tspvideo.experiment import QUICK_CONFIG, ExperimentConfig, run_experiment

    runtime = {"device": args.device, "progress": not args.no_progress, "weights": args.weights}
    if args.quick:
        config = dataclasses.replace(QUICK_CONFIG, **runtime)
    else:
        config = ExperimentConfig(seeds=tuple(args.seeds), num_videos=args.num_videos, num_classes=args.classes,
                                  epochs=args.epochs, backbone=args.backbone, probe_epochs=args.probe_epochs,
                                  workers=args.workers, **runtime)
    run_experiment(args.out, config)
    return 0
