"""``tspvideo similarity``: clip-to-clip cosine similarity of features (Figure 2) and fg/bg scores."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tspvideo.commands import add_command
from tspvideo.commands._feature_args import grid_from_args
from tspvideo.core.errors import TspVideoError
from tspvideo.core.fileio import save_json_atomic
from tspvideo.core.grid import DEFAULT_CLIP_LEN, DEFAULT_FPS, DEFAULT_STRIDE
from tspvideo.evaluation.io import load_ground_truth


def register(subparsers) -> None:
    """Add the ``similarity`` subcommand."""
    parser = add_command(
        subparsers, "similarity",
        help="feature similarity matrix with ground truth (Figure 2) and fg/bg separability scores",
        description="Single video: tspvideo similarity A.npy [B.npy ...] --annotations GT.json --out FIG.png "
                    "(one matrix per feature file of the same video). Dataset: tspvideo similarity "
                    "--compare A_DIR B_DIR --annotations GT.json (scores side by side).",
    )
    parser.add_argument("features", nargs="*", metavar="FEATURES",
                        help="[T, C] feature files of one video (e.g. the same video with two encoders): .npy "
                             "files, or HDF5 files / released names from which --video is taken")
    parser.add_argument("--compare", nargs="+", metavar="SOURCE", default=None,
                        help="feature folders, HDF5 files or downloaded released names to score over a dataset")
    parser.add_argument("--annotations", metavar="GT.json", default=None,
                        help="ActivityNet-style ground truth giving the foreground segments")
    parser.add_argument("--subset", default=None, help="ground-truth subset to use (default: all)")
    parser.add_argument("--video", default=None,
                        help="ground-truth video id of the feature files (default: the file name stem)")
    parser.add_argument("--out", metavar="FIG.png", default=None, help="save the similarity figure here")
    parser.add_argument("--json", metavar="FILE.json", default=None, help="write the scores as JSON")
    parser.add_argument("--vmin", type=float, default=None,
                        help="lowest value of the figure's colour scale (default: the lowest off-diagonal cosine)")
    parser.add_argument("--vmax", type=float, default=None,
                        help="highest value of the colour scale (default: the highest off-diagonal cosine)")
    parser.add_argument("--clip-len", type=int, default=None,
                        help=f"frames per clip, when the files do not say (a .npy without sidecar: {DEFAULT_CLIP_LEN})")
    parser.add_argument("--fps", type=float, default=None,
                        help=f"sampling rate, when the files do not say (a .npy without sidecar: {DEFAULT_FPS:g})")
    parser.add_argument("--stride", type=int, default=None,
                        help=f"clip stride (frames), when the files do not say (a .npy without sidecar: "
                             f"{DEFAULT_STRIDE})")
    parser.add_argument("--probe-folds", type=int, default=5, help="cross-validation folds of the fg/bg probe")
    parser.add_argument("--probe-max-samples", type=int, default=5000,
                        help="features drawn (seed 0) for the probe across videos in --compare")
    parser.add_argument("--per-video-probe", action="store_true",
                        help="with --compare, also fit a probe per video (slower: tens of ms a video)")
    parser.set_defaults(func=run)


def _labels(paths: list[Path]) -> list[str]:
    # Feature files of one video usually share the stem, so label them by their folder.
    labels = [p.parent.name or p.stem for p in paths]
    return labels if len(set(labels)) == len(labels) else [str(p) for p in paths]


def _load_one(path: Path, video: str, args: argparse.Namespace) -> tuple[Any, Any]:
    """(features, centre times) of ``video`` from a .npy file, or from an HDF5 / released file by key."""
    from tspvideo.evaluation.similarity import load_features
    from tspvideo.features.folder import FeatureSource, match_annotations

    if path.suffix == ".npy":
        return load_features(path, *_grid_or_defaults(args))
    source = FeatureSource(path)  # first: a file that holds no features (e.g. a video) is said so
    stems = source.stems()
    if not args.video:
        listed = ", ".join(stems[:5]) + (f", ... ({len(stems)} in all)" if len(stems) > 5 else "")
        raise TspVideoError(f"{path}: pass --video KEY to say which video of the file to show; its keys: "
                            f"{listed or 'none'}")
    matched = match_annotations([video], stems)
    if video not in matched:
        raise TspVideoError(f"{source.path}: no features for video {video!r} (with or without the v_ prefix)")
    found = [v for v in source.videos(grid_from_args(args)) if v.stem == matched[video]][0]
    return found.load(), found.feature_times


def _grid_or_defaults(args: argparse.Namespace) -> tuple[int, float, int]:
    """(clip_len, fps, stride) of the flags given, the extraction defaults for the others."""
    return (args.clip_len if args.clip_len is not None else DEFAULT_CLIP_LEN,
            args.fps if args.fps is not None else DEFAULT_FPS,
            args.stride if args.stride is not None else DEFAULT_STRIDE)


def _check_values(args: argparse.Namespace) -> None:
    """Numbers that cannot work stop here, before anything is read or drawn (0 would have meant the default)."""
    from tspvideo.core.grid import ClipGrid

    clip_len, fps, stride = _grid_or_defaults(args)
    ClipGrid(clip_len=clip_len, fps=fps, stride=stride)  # says which is not positive
    if args.probe_folds == 1 or args.probe_folds < 0:
        raise TspVideoError(f"--probe-folds must be 2 or more (0: no probe), got {args.probe_folds}")
    if args.probe_max_samples < 1:
        raise TspVideoError(f"--probe-max-samples must be 1 or more, got {args.probe_max_samples}")
    if args.vmin is not None and args.vmax is not None and not args.vmin < args.vmax:
        raise TspVideoError(f"--vmin {args.vmin:g} must be below --vmax {args.vmax:g}")


def run(args: argparse.Namespace) -> int:
    """Score (and plot) one video's feature files, or compare feature folders over a dataset."""
    from tspvideo.evaluation.similarity import (
        compare_feature_sets,
        format_comparison_table,
        format_scores_table,
        gt_video_lookup,
        plot_similarity,
        temporal_sensitivity_scores,
        video_segments,
    )

    if args.compare and args.features:
        raise TspVideoError("give either feature files or --compare folders, not both")
    _check_values(args)
    if args.compare:
        if args.annotations is None:
            raise TspVideoError("--compare needs --annotations (the ground truth defines foreground)")
        result = compare_feature_sets(args.compare, args.annotations, subset=args.subset,
                                      clip_len=args.clip_len, fps=args.fps, stride=args.stride,
                                      probe_folds=args.probe_folds, probe_max_samples=args.probe_max_samples,
                                      per_video_probe=args.per_video_probe)
        print(f"{len(result['videos'])} videos present in every folder and in the ground truth")
        for name, scored in result["sets"].items():
            print(f"{name}: {scored['feature_match']}")
        print(format_comparison_table(result))
        if args.json:
            save_json_atomic(args.json, result)
            print(f"wrote {args.json}")
        return 0

    if not args.features:
        raise TspVideoError("give one or more FEATURES.npy files, or --compare DIR DIR ...")
    if args.out is None and args.annotations is None:
        raise TspVideoError("nothing to do: pass --out FIG.png and/or --annotations GT.json")
    paths = [Path(p) for p in args.features]
    video = args.video or paths[0].stem
    loaded = [_load_one(p, video, args) for p in paths]
    segments: list[tuple[float, float]] = []
    scores: dict[str, Any] = {}
    if args.annotations is not None:
        gt = load_ground_truth(args.annotations, subset=args.subset)
        lookup = gt_video_lookup(gt)
        if video not in lookup:
            raise TspVideoError(f"video {video!r} is not in {args.annotations}"
                                + (f" (subset {args.subset})" if args.subset else "")
                                + "; pass --video with its ground-truth id")
        segments = video_segments(gt, lookup[video])
        labels = _labels(paths)
        for label, (features, times) in zip(labels, loaded, strict=True):
            scores[label] = temporal_sensitivity_scores(features, times, segments, args.probe_folds)
        print(f"video {video}: {len(segments)} ground-truth segments")
        print(format_scores_table(scores))
    if args.out:
        panels = [(label, f, t) for label, (f, t) in zip(_labels(paths), loaded, strict=True)]
        low, high = plot_similarity(panels, segments, args.out, title=video, vmin=args.vmin, vmax=args.vmax)
        print(f"wrote {args.out} (colour scale {low:.4g} to {high:.4g})")
    if args.json:
        save_json_atomic(args.json, {"video": video, "segments": segments, "scores": scores})
        print(f"wrote {args.json}")
    return 0
