"""``tspvideo eval detection|proposals``: score localization results against ActivityNet-style ground truth."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tspvideo.commands import add_command
from tspvideo.errors import TspVideoError
from tspvideo.evaluation.detection import (
    PROTOCOLS,
    THUMOS14_REPORTED_TIOUS,
    evaluate_detection,
    format_detection_table,
)
from tspvideo.evaluation.io import GroundTruth, load_ground_truth, load_predictions, parse_tious
from tspvideo.evaluation.lengths import LENGTH_BUCKETS, format_length_table, length_breakdown
from tspvideo.evaluation.proposals import evaluate_proposals, format_proposal_table
from tspvideo.fileio import save_json_atomic


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt", required=True, metavar="ANNOTATIONS.json",
                        help="ground truth in the ActivityNet format {\"database\": {video: {...}}}")
    parser.add_argument("--pred", required=True, metavar="PREDICTIONS.json",
                        help="results in the ActivityNet format {\"results\": {video: [...]}}")
    parser.add_argument("--subset", default=None,
                        help="evaluate the ground-truth videos of this subset only (e.g. validation); "
                             "default: all videos")
    parser.add_argument("--out", metavar="FILE.json", default=None, help="also write the numbers as JSON")


def register(subparsers) -> None:
    """Add ``eval`` with its ``detection`` and ``proposals`` subcommands."""
    parser = add_command(subparsers, "eval", help="evaluate detections (mAP) or proposals (AR-AN, AUC)")
    inner = parser.add_subparsers(dest="eval_command", metavar="TASK")
    parser.set_defaults(func=lambda args: _missing_task(parser))

    det = add_command(inner, "detection", help="temporal action detection mAP (ActivityNet / THUMOS14 protocol)")
    _add_common(det)
    which = det.add_mutually_exclusive_group()
    which.add_argument("--tiou", default=None, metavar="SPEC",
                       help="tIoU thresholds: start:step:stop (stop included), a comma list or one value")
    which.add_argument("--protocol", choices=sorted(PROTOCOLS), default="activitynet",
                       help="activitynet: tIoU 0.5:0.05:0.95, average mAP; thumos14: tIoU 0.1:0.1:0.7, "
                            "mAP@0.5 (0.3..0.7 shown)")
    det.add_argument("--by-length", action="store_true",
                     help="also break average mAP down by instance length (DETAD buckets)")
    det.add_argument("--length-buckets", default=None, metavar="NAME|EDGES",
                     help="activitynet (30,60,120,180 s), thumos14 (3,6,12,18 s) or comma-separated upper "
                          "edges in seconds; default: the protocol's")
    det.add_argument("--unknown-videos", choices=["error", "false_positive", "ignore"], default="error",
                     help="predictions for videos missing from the ground truth: stop with an error, count "
                          "them as false positives (official ActivityNet behaviour) or ignore them")
    det.add_argument("--per-class", action="store_true", help="also print AP per class")
    det.set_defaults(func=run_detection)

    prop = add_command(inner, "proposals", help="proposal average recall vs number of proposals (AR@AN, AUC)")
    _add_common(prop)
    prop.add_argument("--tiou", default="0.5:0.05:0.95", metavar="SPEC", help="tIoU thresholds averaged in AR")
    prop.add_argument("--max-proposals", type=int, default=100,
                      help="maximum average number of proposals per video (the curve's AN range)")
    prop.add_argument("--unknown-videos", choices=["error", "ignore"], default="error",
                      help="proposals for videos missing from the ground truth: error or ignore")
    prop.set_defaults(func=run_proposals)


def _missing_task(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _load_gt(args: argparse.Namespace) -> GroundTruth:
    gt = load_ground_truth(args.gt, subset=args.subset)
    if args.subset is None and len(gt.subsets) > 1:
        print(f"note: evaluating all {len(gt.video_ids)} videos of subsets {', '.join(gt.subsets)}; "
              "pass --subset to choose one", file=sys.stderr)
    return gt


def _print_warnings(warnings: list[str]) -> None:
    for line in warnings:
        print(f"warning: {line}", file=sys.stderr)


def _length_buckets(args: argparse.Namespace) -> str | tuple[float, ...]:
    if args.length_buckets is None:
        return "thumos14" if args.protocol == "thumos14" and args.tiou is None else "activitynet"
    if args.length_buckets in LENGTH_BUCKETS:
        return args.length_buckets
    try:
        return tuple(float(x) for x in args.length_buckets.split(",") if x.strip())
    except ValueError:
        raise TspVideoError(f"bad --length-buckets {args.length_buckets!r}: use activitynet, thumos14 or "
                            "comma-separated edges in seconds") from None


def run_detection(args: argparse.Namespace) -> int:
    """Print the mAP table (and optionally the length breakdown); write JSON with ``--out``."""
    protocol = None if args.tiou is not None else args.protocol
    tious = parse_tious(args.tiou) if args.tiou is not None else PROTOCOLS[args.protocol]["tious"]
    gt = _load_gt(args)
    pred = load_predictions(args.pred)
    result = evaluate_detection(gt, pred, tious=tious, unknown_videos=args.unknown_videos)
    _print_warnings(result.warnings)
    name = {"activitynet": "ActivityNet", "thumos14": "THUMOS14"}.get(protocol or "", "custom tIoUs")
    print(f"Detection ({name} protocol){f', subset {args.subset}' if args.subset else ''}: "
          f"{result.num_videos} videos, {result.num_instances} instances, {len(gt.classes)} classes, "
          f"{result.num_predictions} predictions scored"
          + (f", {result.videos_without_predictions} videos without predictions"
             if result.videos_without_predictions else ""))
    print(format_detection_table(result, protocol))
    out: dict[str, Any] = {"protocol": protocol or "custom", "subset": args.subset, **result.to_dict()}
    if protocol == "thumos14":
        out["mAP@0.5"] = result.mAP_at(0.5)
        out["average_mAP_0.3:0.7"] = result.average_over(THUMOS14_REPORTED_TIOUS)
    if args.per_class:
        print("\nAP % per class (average over tIoUs):")
        for cls, ap in sorted(result.per_class.items()):
            print(f"  {cls:<40} {100 * float(ap.mean()):6.2f}")
    if args.by_length:
        # Averaged over the thresholds the table shows (THUMOS14: 0.3..0.7).
        shown = THUMOS14_REPORTED_TIOUS if protocol == "thumos14" else tious
        breakdown = length_breakdown(gt, pred, buckets=_length_buckets(args), tious=shown,
                                     unknown_videos=args.unknown_videos)
        print("\nBy instance length (average mAP over the tIoUs above; DETAD buckets):")
        print(format_length_table(breakdown))
        out["by_length"] = {"tiou": breakdown["tiou"], "buckets": breakdown["buckets"]}
    if args.out:
        save_json_atomic(args.out, out)
        print(f"wrote {args.out}")
    return 0


def run_proposals(args: argparse.Namespace) -> int:
    """Print AR@1/10/100 and AUC; write them and the AR-AN curve as JSON with ``--out``."""
    gt = _load_gt(args)
    proposals = load_predictions(args.pred, require_label=False)
    result = evaluate_proposals(gt, proposals, max_avg_proposals=args.max_proposals,
                                tious=parse_tious(args.tiou), unknown_videos=args.unknown_videos)
    _print_warnings(result["warnings"])
    print(f"Proposals (ActivityNet AR-AN protocol){f', subset {args.subset}' if args.subset else ''}: "
          f"{result['num_videos']} videos, {result['num_instances']} instances, "
          f"{result['num_proposals_used']} of {result['num_proposals']} proposals used "
          f"(at most {args.max_proposals} per video on average)")
    print(format_proposal_table(result))
    if args.out:
        save_json_atomic(args.out, {"subset": args.subset, **result})
        print(f"wrote {args.out}")
    return 0
