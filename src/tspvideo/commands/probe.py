"""``tspvideo probe``: measure feature quality with a light temporal localization probe."""

from __future__ import annotations

from tspvideo.commands import add_command
from tspvideo.commands._feature_args import SOURCE_HELP, add_grid_args, grid_from_args


def register(subparsers) -> None:
    """Add the ``probe`` subcommand."""
    parser = add_command(
        subparsers, "probe", "train a light localization probe on features and report mAP / AR@AN",
        description="Train a small temporal-convolution localizer on FEATURES (the --train-subset "
                    "videos of ANN.json), predict the --eval-subset videos, write predictions.json "
                    "(detections), proposals.json, metrics.json and probe_model.pt to --out, and print "
                    "detection mAP and proposal AR@AN / AUC. Deterministic for a given --seed on CPU.",
    )
    parser.add_argument("feature_dir", metavar="FEATURES", help=SOURCE_HELP)
    parser.add_argument("--annotations", required=True, metavar="ANN.json",
                        help="ActivityNet-style ground truth JSON")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seeds initialisation, shuffling and dropout")
    parser.add_argument("--epochs", type=int, default=30, help="training epochs of the probe")
    parser.add_argument("--train-subset", default="training", help="subset the probe trains on")
    parser.add_argument("--eval-subset", default="validation", help="subset it is evaluated on")
    parser.add_argument("--temporal-size", type=int, default=100,
                        help="fixed temporal grid; 0 keeps each video's native feature grid")
    parser.add_argument("--quiet", action="store_true", help="do not print the loss per epoch")
    add_grid_args(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    """Train, predict, evaluate, print the metrics; 0 on success."""
    from tspvideo.localization.probe import ProbeConfig, run_probe

    config = ProbeConfig(temporal_size=args.temporal_size or None)
    metrics = run_probe(args.feature_dir, args.annotations, args.out, seed=args.seed, epochs=args.epochs,
                        train_subset=args.train_subset, eval_subset=args.eval_subset, config=config,
                        verbose=not args.quiet, grid=grid_from_args(args))
    print(f"features: {metrics['feature_match']['summary']}")
    det, prop = metrics["detection"], metrics["proposals"]
    print(f"evaluated {metrics['num_eval_videos']} '{args.eval_subset}' videos "
          f"({metrics['num_eval_videos_without_features']} without features left out)")
    tious = det.get("tiou", [])
    maps = det.get("mAP", [])
    print("detection mAP: " + "  ".join(f"{t:.2f}:{100 * m:.2f}" for t, m in zip(tious, maps, strict=False)))
    if "average_mAP" in det:
        print(f"detection average mAP: {100 * det['average_mAP']:.2f}")
    print("proposals: " + "  ".join(f"{k} {100 * v:.2f}" for k, v in prop.items()
                                    if (k.startswith("AR@") or k == "AUC") and v is not None))
    print(f"written to {args.out}: predictions.json proposals.json metrics.json probe_model.pt")
    return 0
