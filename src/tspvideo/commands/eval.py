"""``tspvideo eval detection|proposals|clips``: score localization results against ActivityNet-style ground
truth, or a checkpoint's clip accuracy on a segment table (``clips``, :mod:`tspvideo.commands.evaluate`)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tspvideo.commands import add_command
from tspvideo.commands.evaluate import register_clips
from tspvideo.core.errors import TspVideoError
from tspvideo.core.fileio import save_json_atomic
from tspvideo.evaluation.detad import (
    DETAD_SETTINGS,
    DetadSettings,
    format_sensitivity_table,
    prepare_detad,
    score_order,
    sensitivity_analysis,
)
from tspvideo.evaluation.detad_fp import false_positive_profile, format_false_positive_table
from tspvideo.evaluation.detection import (
    PROTOCOLS,
    THUMOS14_REPORTED_TIOUS,
    ZERO_LENGTH_RULES,
    UnknownVideosError,
    evaluate_detection,
    format_detection_table,
)
from tspvideo.evaluation.io import (
    GroundTruth,
    load_ground_truth,
    load_json,
    load_predictions,
    parse_ground_truth,
    parse_tious,
)
from tspvideo.evaluation.lengths import (
    LENGTH_BUCKETS,
    bucket_rows_in_seconds,
    format_length_table,
    length_characteristic,
)
from tspvideo.evaluation.proposals import evaluate_proposals, format_proposal_table


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
    parser = add_command(subparsers, "eval",
                         help="evaluate detections (mAP), proposals (AR-AN, AUC) or a checkpoint's clip accuracy")
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
                     help="also break average mAP_N down by instance length, as DETAD computes it (Table 8)")
    det.add_argument("--length-buckets", default=None, metavar="NAME|EDGES",
                     help="activitynet (30,60,120,180 s), thumos14 (3,6,12,18 s) or comma-separated upper "
                          "edges in seconds; default: the DETAD settings'")
    det.add_argument("--detad", action="store_true",
                     help="DETAD's sensitivity analysis (coverage, length, instances per video) and its "
                          "false-positive profile")
    det.add_argument("--detad-settings", choices=sorted(DETAD_SETTINGS), default=None,
                     help="DETAD's tIoUs and bins: activitynet (tIoU 0.5:0.05:0.95) or thumos14 (tIoU 0.5); "
                          "default: thumos14 with --protocol thumos14, else activitynet; --tiou overrides the tIoUs")
    det.add_argument("--plain-ap", action="store_true",
                     help="DETAD breakdowns with plain precision TP/(TP+FP) instead of DETAD's normalized mAP_N")
    det.add_argument("--figures", metavar="DIR", default=None,
                     help="with --by-length / --detad: save DETAD-style figures (PNG) in this folder "
                          "(needs matplotlib)")
    det.add_argument("--unknown-videos", choices=["error", "false_positive", "ignore"], default="error",
                     help="predictions for videos missing from the ground truth: stop with an error, count "
                          "them as false positives (official ActivityNet behaviour) or ignore them")
    det.add_argument("--zero-length", choices=list(ZERO_LENGTH_RULES), default="official",
                     help="zero-length ground-truth instances: official (default; as the official ActivityNet "
                          "code, a zero-length prediction matches them) or strict (they can never be matched)")
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

    register_clips(inner)


@contextlib.contextmanager
def _unknown_videos_in_cli_terms(choices: str) -> Iterator[None]:
    """The library's "unknown videos" error, with the option that changes it (``choices``) in CLI words."""
    try:
        yield
    except UnknownVideosError as error:
        raise TspVideoError(f"{error.summary} (check the ids, e.g. a 'v_' prefix; or pass {choices})") from None


def _missing_task(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _load_gt(args: argparse.Namespace) -> GroundTruth:
    gt = load_ground_truth(args.gt, subset=args.subset)
    _note_subsets(args, gt)
    return gt


def _note_subsets(args: argparse.Namespace, gt: GroundTruth) -> None:
    if args.subset is None and len(gt.subsets) > 1:
        print(f"note: evaluating all {len(gt.video_ids)} videos of subsets {', '.join(gt.subsets)}; "
              "pass --subset to choose one", file=sys.stderr)


def _print_warnings(warnings: list[str]) -> None:
    for line in warnings:
        print(f"warning: {line}", file=sys.stderr)


def _length_buckets(args: argparse.Namespace, settings: str) -> str | tuple[float, ...]:
    if args.length_buckets is None:
        return settings
    if args.length_buckets in LENGTH_BUCKETS:
        return args.length_buckets
    try:
        return tuple(float(x) for x in args.length_buckets.split(",") if x.strip())
    except ValueError:
        raise TspVideoError(f"bad --length-buckets {args.length_buckets!r}: use activitynet, thumos14 or "
                            "comma-separated edges in seconds") from None


def _detad_settings(args: argparse.Namespace) -> DetadSettings:
    """DETAD's settings for this run: named by --detad-settings or the protocol; --tiou overrides the tIoUs."""
    name = args.detad_settings or ("thumos14" if args.protocol == "thumos14" and args.tiou is None else "activitynet")
    settings = DETAD_SETTINGS[name]
    if args.tiou is not None:
        settings = DetadSettings(name, tuple(float(t) for t in parse_tious(args.tiou)), settings.characteristics)
    return settings


def run_detection(args: argparse.Namespace) -> int:
    """Print the mAP table (and optionally DETAD's breakdowns); write JSON with ``--out``."""
    if args.figures and not (args.by_length or args.detad):
        raise TspVideoError("--figures draws the DETAD breakdowns: add --by-length or --detad")
    protocol = None if args.tiou is not None else args.protocol
    tious = parse_tious(args.tiou) if args.tiou is not None else PROTOCOLS[args.protocol]["tious"]
    raw_gt = load_json(args.gt, "ground-truth file")
    gt = parse_ground_truth(raw_gt, subset=args.subset, source=f"ground truth {args.gt}")
    _note_subsets(args, gt)
    pred = load_predictions(args.pred)
    with _unknown_videos_in_cli_terms("--unknown-videos false_positive to count them as false positives, or "
                                      "--unknown-videos ignore"):
        result = evaluate_detection(gt, pred, tious=tious, unknown_videos=args.unknown_videos,
                                    zero_length=args.zero_length)
    _print_warnings(result.warnings)
    name = {"activitynet": "ActivityNet", "thumos14": "THUMOS14"}.get(protocol or "", "custom tIoUs")
    print(f"Detection ({name} protocol){f', subset {args.subset}' if args.subset else ''}: "
          f"{result.num_videos} videos, {result.num_instances} instances, {len(gt.classes)} classes, "
          f"{result.num_predictions} predictions scored"
          + (f", {result.videos_without_predictions} videos without predictions"
             if result.videos_without_predictions else ""))
    print(format_detection_table(result, protocol))
    out: dict[str, Any] = {"protocol": protocol or "custom", "subset": args.subset,
                           "zero_length": args.zero_length, **result.to_dict()}
    if protocol == "thumos14":
        out["mAP@0.5"] = result.mAP_at(0.5)
        out["average_mAP_0.3:0.7"] = result.average_over(THUMOS14_REPORTED_TIOUS)
    if args.per_class:
        print("\nAP % per class (average over tIoUs):")
        for cls, ap in sorted(result.per_class.items()):
            print(f"  {cls:<40} {100 * float(ap.mean()):6.2f}")
    if args.by_length or args.detad:
        out.update(_run_detad(args, raw_gt, gt, pred))
    if args.out:
        save_json_atomic(args.out, out)
        print(f"wrote {args.out}")
    return 0


def _run_detad(args: argparse.Namespace, raw_gt: dict, gt: GroundTruth, pred: Any) -> dict[str, Any]:
    """DETAD's breakdowns asked for (--by-length, --detad): printed, drawn with --figures, returned for JSON."""
    settings = _detad_settings(args)
    precision = "plain" if args.plain_ap else "normalized"
    data = prepare_detad(gt, pred, settings.tious, unknown_videos=args.unknown_videos, annotations=raw_gt)
    _print_warnings([f"DETAD analysis: {w}" for w in data.warnings])
    if data.tious.size < 4:
        tiou_text = ", ".join(f"{t:g}" for t in data.tious)
    else:
        tiou_text = f"{data.tious[0]:g}..{data.tious[-1]:g} ({data.tious.size} thresholds)"
    out: dict[str, Any] = {}
    figures = Path(args.figures) if args.figures else None
    if args.by_length:
        char = length_characteristic(_length_buckets(args, settings.name))
        ap_order = score_order(data.pred_label, data.pred_score, data.num_classes, style="pandas")
        rows = bucket_rows_in_seconds(data, char, ap_order, precision)
        breakdown = {"tiou": [float(t) for t in data.tious], "precision": precision,
                     "N": data.average_instances_per_class, "buckets": rows,
                     "dropped_instances": dict(data.dropped)}
        print(f"\nBy instance length (DETAD: average mAP{'_N' if precision == 'normalized' else ''} over tIoU "
              f"{tiou_text}; N = {data.average_instances_per_class:.2f} instances per class):")
        print(format_length_table(breakdown))
        out["by_length"] = breakdown
    if args.detad:
        analysis = sensitivity_analysis(data, settings=settings, precision=precision)
        print("\n" + format_sensitivity_table(analysis))
        fp = false_positive_profile(data)
        print("\n" + format_false_positive_table(fp))
        out["detad"] = {"sensitivity": analysis, "false_positive": fp}
        if figures is not None:
            from tspvideo.evaluation.detad_plot import plot_false_positive_profile, plot_sensitivity

            plot_sensitivity(analysis, figures / "sensitivity_analysis.png")
            plot_false_positive_profile(fp, figures / "false_positive_analysis.png")
            print(f"wrote {figures / 'sensitivity_analysis.png'} and {figures / 'false_positive_analysis.png'}")
    elif figures is not None:
        from tspvideo.evaluation.detad_plot import plot_sensitivity

        length_only = {"characteristics": {"length": out["by_length"]["buckets"]}, "settings": settings.name,
                       "precision": precision, "average_mAP": None}
        plot_sensitivity(length_only, figures / "length_analysis.png")
        print(f"wrote {figures / 'length_analysis.png'}")
    return out


def run_proposals(args: argparse.Namespace) -> int:
    """Print AR@1/10/100 and AUC; write them and the AR-AN curve as JSON with ``--out``."""
    gt = _load_gt(args)
    proposals = load_predictions(args.pred, require_label=False)
    with _unknown_videos_in_cli_terms("--unknown-videos ignore"):
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
