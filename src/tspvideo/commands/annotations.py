"""``tspvideo annotations``: build segment tables from ActivityNet / THUMOS14 / custom annotations, or check one.

Outputs in ``--out`` (``NAME`` is ``activitynet_v1-3``, ``thumos14`` or ``--name``):
``NAME_<split>_tsp_groundtruth.csv`` (segment table), ``NAME_<split>_metadata.csv``,
``NAME_action_label_mapping.json``, ``temporal_region_label_mapping.json`` and, when anything was
wrong, ``NAME_annotation_problems.csv``. Exit 1 when videos were missing or unreadable, else 0.
A bad annotation entry (reversed or malformed segment...) is exit 2 with every such entry listed and
nothing written, unless ``--drop-bad-videos`` leaves the affected videos out.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from tspvideo.commands import add_command
from tspvideo.core.errors import TspVideoError
from tspvideo.core.fileio import save_json_atomic
from tspvideo.datasets import annotations as ann
from tspvideo.datasets.segments import (
    BACKGROUND_RULES,
    CLIP_SECONDS,
    MIN_BACKGROUND,
    REGION_LABELS,
    read_label_map,
    write_segment_table,
)

MAX_PRINTED_PER_KIND = 20


def _add_build_arguments(parser: argparse.ArgumentParser, dataset: str) -> None:
    source = parser.add_argument_group("video metadata (one of)")
    source.add_argument("--video-dir", action="append", default=[], metavar="DIR",
                        help="folder of the videos, searched recursively; repeat for several; each video is "
                             "probed (duration, fps, frames)")
    source.add_argument("--metadata", action="append", default=[], metavar="CSV",
                        help="metadata CSV(s) in the original format (filename,video-duration,fps,video-frames) "
                             "instead of probing, e.g. the original published ones; repeat for several")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--background-rule", choices=BACKGROUND_RULES, default="merged",
                        help="merged: gaps between merged instances, never overlapping an action; original: "
                             "reproduce the original published files (see docs/datasets.md)")
    parser.add_argument("--min-background", type=float, default=MIN_BACKGROUND[dataset],
                        help="shortest background segment kept, seconds")
    parser.add_argument("--drop-bad-videos", action="store_true",
                        help="leave videos with a bad annotation (reversed or malformed segment, missing label...) "
                             "out of every table and list them, instead of stopping with exit 2")
    parser.add_argument("--workers", type=int, default=8, help="parallel probes")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(subparsers) -> None:
    """Add ``annotations`` and its sub-commands."""
    parser = add_command(subparsers, "annotations",
                         "build segment tables (foreground + background) from annotations, or check one")
    sub = parser.add_subparsers(dest="annotations_command", metavar="FORMAT")
    parser.set_defaults(func=lambda args: parser.print_help() or 2)

    p = add_command(sub, "activitynet", "ActivityNet v1.3 JSON -> train/valid segment tables")
    p.add_argument("annotations", type=Path, help="activity_net.v1-3.min.json")
    _add_build_arguments(p, "activitynet")
    p.add_argument("--name", default="activitynet_v1-3", help="prefix of the output files")
    p.set_defaults(func=run_activitynet)

    p = add_command(sub, "thumos14", "THUMOS14 per-class files -> train (validation set) / test tables")
    p.add_argument("annotation_dirs", type=Path, nargs="+", metavar="ANNOTATION_DIR",
                   help="folder(s) holding <Class>_val.txt and/or <Class>_test.txt (searched recursively)")
    _add_build_arguments(p, "thumos14")
    p.add_argument("--name", default="thumos14", help="prefix of the output files")
    p.set_defaults(func=run_thumos14)

    p = add_command(sub, "generic", "any ActivityNet-style JSON (your own dataset) -> segment tables")
    p.add_argument("annotations", type=Path, help="JSON with database -> id -> subset, annotations")
    p.add_argument("--subset-map", default=None, metavar="SUBSET=SPLIT,...",
                   help="which subsets to write and under which split name, e.g. training=train,validation=valid "
                        "(default: every subset under its own name)")
    p.add_argument("--label-map", default=None, metavar="JSON",
                   help="class order (JSON list); default: the sorted labels found in the file")
    p.add_argument("--ambiguous-label", default=None, metavar="LABEL",
                   help="instances with this label are neither action nor background")
    _add_build_arguments(p, "generic")
    p.add_argument("--name", default="dataset", help="prefix of the output files")
    p.set_defaults(func=run_generic)

    p = add_command(sub, "check", "validate a segment table; exit 1 when any problem is fatal")
    p.add_argument("segments", type=Path, help="segment table CSV")
    p.add_argument("--label-map", default=None, metavar="JSON|activitynet|thumos14",
                   help="label map to check action labels against (default: the only "
                        "*action_label_mapping.json beside the table, if any)")
    p.add_argument("--video-dir", action="append", default=[], metavar="DIR",
                   help="check that every filename exists in this folder (repeatable)")
    p.add_argument("--probe", action="store_true", help="also open each video and compare its metadata")
    p.add_argument("--clip-seconds", type=float, default=CLIP_SECONDS,
                   help="clip length; shorter segments are reported")
    p.add_argument("--workers", type=int, default=8, help="parallel probes")
    p.set_defaults(func=run_check)


def _metadata(args, videos) -> tuple[dict[str, ann.VideoMeta], list[ann.Problem], bool]:
    if args.metadata:
        return ann.read_metadata_csv(args.metadata), [], True
    metadata, problems = ann.metadata_from_videos(videos, args.video_dir, workers=args.workers,
                                                 progress=not args.no_progress)
    return metadata, problems, False


def _without_bad_videos(args, videos: list[ann.VideoAnnotation],
                        problems: list[ann.Problem]) -> tuple[list[ann.VideoAnnotation], list[ann.Problem]]:
    """Stop (exit 2, nothing written) when any annotation entry is bad, listing every one; with
    ``--drop-bad-videos`` leave the affected videos out entirely, never partly, and say which."""
    bad = ann.bad_input_videos(problems)
    if not bad:
        return videos, problems
    entries = [p for listed in bad.values() for p in listed]
    if not args.drop_bad_videos:
        listing = "\n".join(f"  video {p.video!r}: {p.detail}" for p in entries)
        raise TspVideoError(f"{len(entries)} bad annotation entr{'y' if len(entries) == 1 else 'ies'} in "
                            f"{len(bad)} video(s); nothing written. Fix them, or pass --drop-bad-videos to "
                            f"leave those videos out:\n{listing}")
    print(f"--drop-bad-videos: left out {len(bad)} video(s) with bad annotations: {', '.join(sorted(bad))}")
    for p in entries:
        print(f"  video {p.video!r}: {p.detail}")
    # Left out as asked: listed as dropped (a warning), not as errors, since the tables written are right.
    dropped = {id(p) for p in entries}
    problems = [dataclasses.replace(p, kind="dropped-video", detail=f"{p.kind}: {p.detail}", fatal=False)
                if id(p) in dropped else p for p in problems]
    return [v for v in videos if v.video_name not in bad], problems


def _build_and_write(args, videos, problems, label_map: list[str]) -> int:
    if bool(args.video_dir) == bool(args.metadata):
        raise TspVideoError("give either --video-dir (probe the videos) or --metadata (a metadata CSV)")
    if args.min_background < 0 or args.workers < 1:
        raise TspVideoError(f"--min-background must be 0 or more and --workers 1 or more, got "
                            f"{args.min_background:g} and {args.workers}")
    ann.require_known_labels(videos, label_map)
    if not videos:
        raise TspVideoError("no annotated video in the selected subsets")
    metadata, metadata_problems, from_csv = _metadata(args, videos)
    result = ann.build_segment_tables(videos, metadata, rule=args.background_rule,
                                      min_background=args.min_background, follow_metadata_order=from_csv)
    problems = problems + metadata_problems + result.problems
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for split, segments in result.tables.items():
        ann.write_metadata_csv(result.metadata[split], out / f"{args.name}_{split}_metadata.csv")
        table = out / f"{args.name}_{split}_tsp_groundtruth.csv"
        write_segment_table(segments, table)
        n_fg = sum(s.is_action for s in segments)
        short = sum(s.is_action and s.duration < CLIP_SECONDS for s in segments)
        print(f"{table}: {len(result.metadata[split])} videos, {n_fg} action segments "
              f"({short} shorter than one clip), {len(segments) - n_fg} background segments")
    save_json_atomic(out / f"{args.name}_action_label_mapping.json", list(label_map))
    save_json_atomic(out / "temporal_region_label_mapping.json", list(REGION_LABELS))
    problems_path = out / f"{args.name}_annotation_problems.csv"
    if problems:
        ann.write_problems_csv(problems, problems_path)
        print(f"problems ({len(problems)}, listed in {problems_path}):")
        print(ann.summarize_problems(problems))
    elif problems_path.exists():
        problems_path.unlink()  # a stale list from an earlier run would mislead
    failed = [p for p in problems if p.kind in ("missing-video", "unreadable-video")]
    return 1 if failed else 0


def run_activitynet(args) -> int:
    """ActivityNet v1.3: training -> train, validation -> valid, built-in 200-class label map."""
    videos, problems = ann.read_activitynet_style_json(args.annotations, ann.ACTIVITYNET_SUBSETS)
    videos, problems = _without_bad_videos(args, videos, problems)
    return _build_and_write(args, videos, problems, read_label_map("activitynet"))


def run_thumos14(args) -> int:
    """THUMOS14: validation -> train, test -> test, built-in 20-class label map, Ambiguous spans apart."""
    label_map = read_label_map("thumos14")
    videos, problems = ann.read_thumos14_annotations(args.annotation_dirs, label_map)
    videos, problems = _without_bad_videos(args, videos, problems)
    return _build_and_write(args, videos, problems, label_map)


def run_generic(args) -> int:
    """Any ActivityNet-style JSON; the label map is given or made of the sorted labels found."""
    videos, problems = ann.read_activitynet_style_json(
        args.annotations, ann.parse_subset_map(args.subset_map), ambiguous_label=args.ambiguous_label)
    videos, problems = _without_bad_videos(args, videos, problems)
    # A subset whose videos carry no instance at all (e.g. a hidden test set) would be all background.
    annotated = {v.split for v in videos if v.instances}
    for split in sorted({v.split for v in videos} - annotated):
        print(f"skipping subset/split {split!r}: none of its videos has an annotation")
    videos = [v for v in videos if v.split in annotated]
    if args.label_map:
        label_map = read_label_map(args.label_map)
    else:
        label_map = sorted({inst.label for v in videos for inst in v.instances})
    return _build_and_write(args, videos, problems, label_map)


def run_check(args) -> int:
    """Print every problem with its line; exit 1 when any is fatal."""
    if args.clip_seconds <= 0 or args.workers < 1:
        raise TspVideoError(f"--clip-seconds must be positive and --workers 1 or more, got {args.clip_seconds:g} "
                            f"and {args.workers}")
    label_map = None
    if args.label_map:
        label_map = read_label_map(args.label_map)
    else:
        beside = sorted(args.segments.parent.glob("*action_label_mapping.json"))
        if len(beside) == 1:
            label_map = read_label_map(beside[0])
            print(f"labels checked against {beside[0]}")
        else:
            print("labels not checked: give --label-map")
    problems = ann.check_segment_table(args.segments, label_map=label_map, video_dirs=args.video_dir,
                                       clip_seconds=args.clip_seconds, probe=args.probe, workers=args.workers)
    printed: dict[str, int] = {}
    for p in problems:
        printed[p.kind] = printed.get(p.kind, 0) + 1
        if printed[p.kind] <= MAX_PRINTED_PER_KIND:
            print(f"{args.segments}:{p.line}: {'error' if p.fatal else 'warning'}: {p.kind}: {p.detail}")
    for kind, n in printed.items():
        if n > MAX_PRINTED_PER_KIND:
            print(f"... {n - MAX_PRINTED_PER_KIND} more {kind}")
    fatal = sum(p.fatal for p in problems)
    if problems:
        print("summary:\n" + ann.summarize_problems(problems))
    print(f"{args.segments}: {fatal} error(s), {len(problems) - fatal} warning(s)")
    return 1 if fatal else 0
