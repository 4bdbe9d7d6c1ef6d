"""`tspvideo experiment`: TSP vs TAC vs TSP w/o GVF from the same initial encoder, on synthetic data."""

from __future__ import annotations

import argparse
import dataclasses

from tspvideo.commands import add_command, add_device, add_num_videos, add_renamed, add_workers
from tspvideo.runs.experiment.config import PRESETS, QUICK_STAGE0, TRAINED_VARIANTS, ExperimentConfig, Stage0Config

# Options that override a field of the preset's configuration (option dest -> ExperimentConfig field).
OVERRIDES = {"seeds": "seeds", "epochs": "epochs", "backbone": "backbone", "clip_len": "clip_len", "fps": "fps",
             "resize": "resize", "crop": "crop", "stride": "feature_stride", "batch_size": "batch_size",
             "probe_epochs": "probe_epochs", "workers": "workers", "jobs": "jobs", "bn_momentum": "bn_momentum",
             "early_stop_patience": "early_stop_patience", "variants": "variants"}
# ... and of its synthetic dataset (option dest -> SyntheticConfig field of ExperimentConfig.data).
DATA_OVERRIDES = {"num_videos": "num_videos", "num_classes": "num_classes"}


def register(subparsers) -> None:
    """Add the ``experiment`` subcommand."""
    cpu, gpu, scratch = PRESETS["cpu"], PRESETS["gpu"], PRESETS["scratch"]
    parser = add_command(
        subparsers, "experiment", "pretrain TSP, TAC and TSP w/o GVF on synthetic data and compare their features",
        "For each seed: one initial encoder, trained as TSP, TAC and TSP without GVF with the same data and "
        "schedule; features of every video with each (and with the initial encoder); the localization probe, "
        "length breakdown and temporal-sensitivity scores of each; a table like the paper's Table 1 (mean +- std "
        "over seeds, paired TSP - TAC differences with a bootstrap interval and a sign test), OUT/results.json "
        "({variant: {metric: [one value per seed]}}), OUT/comparison.json and figures in OUT/figures. Rerunning "
        "with the same --out continues an interrupted run (and may add seeds or variants). Every seed starts from "
        "the encoder of stage 0 (action classification of four other synthetic classes: the stand-in for Kinetics, "
        "as nothing is downloaded), or with --no-stage0 from seeded random weights, or from --weights.")
    parser.add_argument("--out", required=True, help="folder for everything the experiment writes")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu",
                        help=f"sizes: cpu (default: stage 0, then {cpu.backbone} fine-tuned, {len(cpu.seeds)} seeds, "
                             "minutes a seed on 2 cores), scratch (as cpu from seeded random weights, at most "
                             f"{scratch.epochs} epochs), context (the cpu preset's data with a decoy pattern in every "
                             "background stretch: TSP with max GVF, avg GVF and without GVF), gpu "
                             f"({gpu.backbone} from random weights, {gpu.data.num_videos} videos, {gpu.epochs} epochs, "
                             f"{len(gpu.seeds)} seeds: one H100/H200), quick (a smoke test: every step at toy sizes, "
                             "numbers mean nothing)")
    parser.add_argument("--quick", action="store_true", help="same as --preset quick")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="seeds (one run each; default: the preset's)")
    add_num_videos(parser, None, "number of synthetic videos (default: the preset's)")
    add_renamed(parser, "--num-classes", "--classes", type=int, default=None,
                help="number of synthetic classes (default: 4)")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"most training epochs of every variant (default: the preset's, {cpu.epochs})")
    parser.add_argument("--early-stop-patience", type=int, default=None, metavar="N",
                        help="stop a training when its validation accuracy has not improved for N epochs "
                             f"(default: the preset's, {cpu.early_stop_patience})")
    parser.add_argument("--no-early-stop", action="store_true", help="train every variant for --epochs epochs")
    parser.add_argument("--variants", nargs="+", choices=TRAINED_VARIANTS, default=None,
                        help="the trained variants (default: the preset's; tsp, tac and tsp_no_gvf for cpu); with tsp "
                             "and tac, also the two at matched validation action accuracy")
    stage0 = parser.add_mutually_exclusive_group()
    stage0.add_argument("--stage0", action="store_true",
                        help="pretrain the initial encoder on trimmed clips of four other synthetic classes first "
                             "(the cpu and context presets do; for scratch, gpu and quick)")
    stage0.add_argument("--no-stage0", action="store_true",
                        help="start every seed from seeded random weights instead of stage 0's encoder")
    parser.add_argument("--decoy-background", action="store_true",
                        help="the context task's data: a decoy pattern in every background stretch (as the context "
                             "preset; needs more classes than instances per video)")
    parser.add_argument("--backbone", default=None,
                        help=f"encoder architecture (default: the preset's, {cpu.backbone} / {gpu.backbone})")
    # Backbones with fixed input sizes need these, e.g. s3d: --clip-len 16 --fps 15 --resize 240 240 --crop 224.
    parser.add_argument("--clip-len", type=int, default=None, help="frames per clip (default: the preset's)")
    parser.add_argument("--fps", type=float, default=None, help="frame rate clips are sampled at")
    parser.add_argument("--resize", type=int, nargs=2, default=None, metavar=("H", "W"), help="frames resized to")
    parser.add_argument("--crop", type=int, default=None, help="square crop size")
    add_renamed(parser, "--stride", "--feature-stride", type=int, default=None,
                help="frames (at --fps) between features (default: half a clip)")
    parser.add_argument("--batch-size", type=int, default=None, help="training clips per step")
    parser.add_argument("--weights", default=None,
                        help="initial backbone weights (registered name, URL or file, e.g. Kinetics ones); "
                             "they replace the preset's stage 0; default: stage 0's encoder (cpu, context) or "
                             "seeded random weights (scratch, gpu, quick)")
    parser.add_argument("--probe-epochs", type=int, default=None, help="localization probe epochs")
    parser.add_argument("--bn-momentum", type=float, default=None, metavar="M",
                        help="batch-norm momentum of the trainings (default: the architecture's own; s3d's 0.001 "
                             "is too slow from random weights: use 0.1)")
    add_workers(parser, None, "data loading processes (default: the preset's)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="seeds run at once, one process each, sharing the device and the cores (default: the "
                             "preset's; the numbers do not depend on it); each seed's output goes to "
                             "OUT/seed_N/log.txt")
    parser.add_argument("--no-frame-cache", action="store_true",
                        help="decode every training clip from its video instead of decoding each video once into "
                             "OUT/frame_cache (the same frames and numbers; slower)")
    add_device(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def _given(args: argparse.Namespace, fields: dict[str, str]) -> dict:
    """``{field: value}`` of the options in ``fields`` that were given."""
    return {field: getattr(args, dest) for dest, field in fields.items() if getattr(args, dest) is not None}


def build_config(args: argparse.Namespace) -> ExperimentConfig:
    """The experiment configuration of the parsed options: the preset, then each option given."""
    config = PRESETS["quick" if args.quick else args.preset]
    changes = _given(args, OVERRIDES)
    for key in ("seeds", "resize", "variants"):
        if key in changes:
            changes[key] = tuple(changes[key])
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, **_given(args, DATA_OVERRIDES)),
                                 device=args.device, progress=not args.no_progress, weights=args.weights, **changes)
    if args.no_frame_cache:
        config = dataclasses.replace(config, frame_cache=False)
    if args.no_early_stop:
        config = dataclasses.replace(config, early_stop_patience=None)
    if args.no_stage0 or (args.weights and not args.stage0):  # given weights are the initial encoder
        config = dataclasses.replace(config, stage0=None)
    if args.stage0 and config.stage0 is None:
        config = dataclasses.replace(config, stage0=QUICK_STAGE0 if args.quick or args.preset == "quick"
                                     else Stage0Config())
    if args.decoy_background:
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, decoy_background=True))
    return config


def run(args: argparse.Namespace) -> int:
    """Run (or continue) the experiment and print its table; exit code 0."""
    from tspvideo.runs.experiment import run_experiment


    quick = args.quick or args.preset == "quick"
    if quick:
        print("--quick: a smoke test of every step at toy sizes; its numbers mean nothing", flush=True)
    run_experiment(args.out, build_config(args))
    if quick:
        print("(--quick: a smoke test; the numbers above mean nothing)", flush=True)
    return 0
