"""Convert features into what a downstream localizer reads.

Input: any feature source of ``tspvideo.features.folder`` (a folder written by ``tspvideo extract``, an HDF5 of
features such as the released TSP files); for a folder, one float32 ``[T, C]`` ``.npy`` per video plus its
JSON sidecar (``clip_len`` L, ``fps``, ``stride``, ``feature_times``, ``video_duration``). Feature i is the
clip of 15 fps frames ``[i*stride, i*stride + L)``, centred at ``(i*stride + L/2) / fps`` seconds.

Formats (what each consumer's public data loader opens; see ``docs/export.md`` for the details):

- ``actionformer`` / ``tridet``: ``<prefix><id>.npy`` ``[T, C]`` + ``annotations.json``
  (``database`` with ``subset``, ``duration``, ``fps``, ``annotations[{segment, label, label_id}]``).
- ``opentad``: ``<prefix><id>.npy`` ``[T, C]`` + ``annotations.json`` (adds ``frame``) + ``category_idx.txt``.
- ``gtad``: one HDF5 with one ``[S, C]`` dataset per ``v_<id>`` (S = ``temporal_size``, 100 on
  ActivityNet) + ``video_info_new.csv`` + ``anet_anno_action.json``.
- ``bmn``: ``csv_mean_<S>/v_<id>.csv`` (header row, S rows, C columns) + the same two annotation files.
- ``pdvc``: ``v_<id>.npy`` ``[T, C]`` (PDVC resizes itself) + caption-style JSON per subset.

Fixed-length outputs are resized along time only: position k of S stands for time
``(k + 0.5) * D / S`` (D = video duration) and takes the linear interpolation of the feature sequence
over its centre times (held constant before the first and after the last centre).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tspvideo.core.errors import TspVideoError, WriteFailure
from tspvideo.core.fileio import (
    H5_WRITE_OPTIONS,
    atomic_path,
    check_folder_writable,
    save_json_atomic,
    save_npy_atomic,
    save_text_atomic,
)
from tspvideo.datasets.activitynet_json import class_names, read_annotation_database
from tspvideo.features.folder import (  # noqa: F401  (re-exported: export was where these lived first)
    ACTIVITYNET_PREFIX,
    Grid,
    VideoFeatures,
    match_annotations,
    match_report,
    read_feature_folder,
    read_features,
    read_video_features,
    strip_prefix,
)

FORMATS = ("actionformer", "tridet", "opentad", "gtad", "bmn", "pdvc")

# ACTIVITYNET_PREFIX ("v_", imported above): BMN's and G-TAD's post-processing drop the first two
# characters of a video name to get the ActivityNet id; PDVC keeps the first 13 ("v_" + 11-character id).


# --------------------------------------------------------------------------------------------------
# Temporal resizing
# --------------------------------------------------------------------------------------------------


def resized_times(duration: float, size: int) -> np.ndarray:
    """Times (s) that the ``size`` positions of a resized sequence stand for: bin centres over [0, D]."""
    return (np.arange(size, dtype=np.float64) + 0.5) * (float(duration) / size)


def resize_temporal(features: np.ndarray, feature_times: np.ndarray, duration: float, size: int) -> np.ndarray:
    """Resize ``[T, C]`` features to ``[size, C]`` along time only.

    Position k takes the value at time ``(k + 0.5) * duration / size``, linearly interpolated between
    the two nearest feature centre times; before the first / after the last centre the edge feature
    is held. Channels are never mixed.
    """
    features = np.asarray(features, dtype=np.float32)
    times = np.asarray(feature_times, dtype=np.float64)
    if features.ndim != 2 or times.shape != (features.shape[0],):
        raise ValueError(f"features {features.shape} and feature_times {times.shape} do not match")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    targets = resized_times(duration, size)
    if features.shape[0] == 1:
        return np.repeat(features, size, axis=0)
    # Index of the right neighbour of each target, then a convex combination of two rows.
    right = np.clip(np.searchsorted(times, targets, side="right"), 1, len(times) - 1)
    left = right - 1
    span = times[right] - times[left]
    weight = np.clip((targets - times[left]) / np.where(span > 0, span, 1.0), 0.0, 1.0)[:, None]
    out = (1.0 - weight) * features[left].astype(np.float64) + weight * features[right].astype(np.float64)
    return out.astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Annotations
# --------------------------------------------------------------------------------------------------


def load_annotations(source: str | os.PathLike | dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The checked ``database`` of an ActivityNet-style annotation JSON (a path, the loaded object, or
    its ``database`` alone); every video needs a ``subset``. The check is the one every command applies
    (:mod:`tspvideo.datasets.activitynet_json`): a bad entry is an error listing every one."""
    if isinstance(source, dict) and "database" not in source:
        source = {"database": source}
    return read_annotation_database(source, require_subset=True, what="annotations")


# --------------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------------


@dataclass
class ExportResult:
    """What an export wrote: files, consumer config values, missing videos and failures."""

    format: str
    out_dir: Path
    num_videos: int
    config: dict[str, Any]
    files: list[str]
    missing_features: list[str]
    failures: list[tuple[str, str]]
    notes: list[str]
    renamed: str = ""  # how names differ from the feature stems ("a -> v_a"), said on the summary line

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (what ``export_info.json`` holds)."""
        return {"format": self.format, "out_dir": str(self.out_dir), "num_videos": self.num_videos,
                "config": self.config, "files": self.files, "missing_features": self.missing_features,
                "failures": [{"file": f, "error": e} for f, e in self.failures], "notes": self.notes,
                "renamed": self.renamed}


def _common_grid(videos: list[VideoFeatures]) -> tuple[int, float, int, int]:
    """(clip_len, fps, stride, channels) shared by all videos; a consumer config holds one value each."""
    grids = {(v.clip_len, v.fps, v.stride) for v in videos}
    if len(grids) > 1:
        raise TspVideoError(f"videos were extracted with different (clip_len, fps, stride): {sorted(grids)}; "
                            "export them separately")
    channels = {v.num_channels for v in videos}
    if len(channels) > 1:
        raise TspVideoError(f"videos have different feature sizes C: {sorted(channels)}")
    clip_len, fps, stride = grids.pop()
    return clip_len, fps, stride, channels.pop()


def _segments(info: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in info.get("annotations", []) if "segment" in a and "label" in a]


def _duration(info: dict[str, Any], video: VideoFeatures) -> float:
    return float(info.get("duration") or video.duration)


def _write_csv_atomic(path: Path, header: list[str], rows: Iterable[Iterable[Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    save_text_atomic(path, buffer.getvalue())


def _bmn_frames(duration: float, fps: float) -> int:
    """A frame count for BMN/G-TAD's ``duration_frame``/``feature_frame``.

    Both are only used as ratios, except that BMN's post-processing rescales the duration by
    ``duration_frame // 16 * 16 / duration_frame``; a multiple of 16 keeps that factor exactly 1.
    """
    return 16 * max(1, round(duration * fps / 16))


# Formats whose training code crashes on a training video without any instance (ActionFormer/TriDet assert
# that segments exist; G-TAD/BMN build their targets from the instance list): such videos are left out of
# their annotation files. PDVC's writer skips them itself; OpenTAD filters them in its own loader.
NEEDS_INSTANCES_IN_TRAINING = ("actionformer", "tridet", "gtad", "bmn")
DEFAULT_TRAIN_SUBSETS = ("training",)
LEFT_OUT_FILE = "left_out_without_instances.txt"
# ActionFormer's and TriDet's ActivityNet loaders drop, in training, every instance that starts after the features
# end or lies mostly (trunc_thresh 0.5 in their configs) beyond them; a video left with none crashes the loader
# ("stack expects a non-empty TensorList"). Such videos are left out of the annotation file too, and listed.
BEYOND_FEATURES_FILE = "left_out_instances_beyond_features.txt"
ACTIONFORMER_TRUNC_THRESH = 0.5
EXPORT_INFO = "export_info.json"
README_FILE = "README_export.txt"


def export_features(feature_dir: str | os.PathLike, fmt: str, out_dir: str | os.PathLike,
                    annotations: str | os.PathLike | dict[str, Any] | None = None, prefix: str | None = None,
                    temporal_size: int = 100, label_map: list[str] | None = None,
                    grid: Grid | None = None, train_subsets: Iterable[str] | None = None,
                    overwrite: bool = False) -> ExportResult:
    """Write the features of ``feature_dir`` (and annotation files) in the layout ``fmt`` reads.

    Args:
        feature_dir: folder of ``<stem>.npy`` + ``<stem>.json`` written by ``tspvideo extract``, an HDF5
            file of ``[T, C]`` datasets, or a downloaded released file's name (see ``tspvideo.features.folder``).
        fmt: one of ``FORMATS``.
        out_dir: output folder, created once the inputs are checked; every file is written atomically. A folder
            that already holds anything (an earlier export) is refused unless ``overwrite``.
        annotations: ActivityNet-style JSON (path or loaded dict); when given, the consumer's
            annotation/metadata files are written too, for the videos that have features.
        prefix: prepended to each stem for file names / keys unless the stem already starts with it.
            Default ``""``, but ``"v_"`` for ``gtad``/``bmn``/``pdvc`` whose code assumes it.
        temporal_size: fixed length S for ``gtad`` and ``bmn`` (100 on ActivityNet).
        label_map: class names in id order (default: sorted names found in the annotations).
        grid: explicit ``clip_len`` / ``fps`` / ``stride`` (needed for an HDF5 without grid attributes).
        train_subsets: subsets the localizer trains on (default ``training``; named ones must exist in the
            annotations); for the formats in ``NEEDS_INSTANCES_IN_TRAINING`` their videos without any instance
            are left out of the annotation files (and listed), for ``actionformer``/``tridet`` also those whose
            instances all lie beyond their features.
        overwrite: write into an ``out_dir`` that already holds files (files of the same name are replaced;
            the others stay, and a note lists them).

    Returns:
        An ``ExportResult``; ``export_info.json`` and ``README_export.txt`` in ``out_dir`` say the same.
    """
    if fmt not in FORMATS:
        raise TspVideoError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if temporal_size < 1:
        raise TspVideoError(f"--temporal-size must be >= 1, got {temporal_size}")
    if prefix is None:
        prefix = ACTIVITYNET_PREFIX if fmt in ("gtad", "bmn", "pdvc") else ""
    # Every input is checked before anything is created: a refused export leaves no folder behind.
    database = load_annotations(annotations) if annotations is not None else None
    train_subsets = _check_train_subsets(train_subsets, database)
    out_dir = Path(out_dir)
    if not overwrite and (held := _folder_contents(out_dir)):
        raise TspVideoError(f"{out_dir} already holds {held}; pass --overwrite to write over it, or choose "
                            "another --out")
    failures: list[tuple[str, str]] = []
    videos = read_features(feature_dir, grid, failures)
    if not videos:
        raise TspVideoError(_nothing_readable(feature_dir, failures))
    clip_len, fps, stride, channels = _common_grid(videos)
    check_folder_writable(out_dir)
    before = _file_stamps(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        result = _export(videos, fmt, out_dir, database, prefix, temporal_size, label_map, train_subsets, failures,
                         (clip_len, fps, stride, channels))
    except WriteFailure as error:
        raise WriteFailure(f"{error}; the export in {out_dir} is unfinished: rerun it with --overwrite") from error
    after = _file_stamps(out_dir)
    rewritten_last = {out_dir / EXPORT_INFO, out_dir / README_FILE}
    if kept := sorted(p for p, stamp in before.items() if after.get(p) == stamp and p not in rewritten_last):
        result.notes.append(f"{len(kept)} file(s) in {out_dir} are from before and were not rewritten by this export "
                            f"(e.g. {', '.join(str(p.relative_to(out_dir)) for p in kept[:3])}); remove them if "
                            "they belong to an earlier export")
    save_json_atomic(out_dir / EXPORT_INFO, result.to_dict())
    save_text_atomic(out_dir / README_FILE, _readme(result, (clip_len, fps, stride)))
    return result


def _check_train_subsets(train_subsets: Iterable[str] | None, database: dict[str, Any] | None) -> set[str]:
    """The training subsets; named ones must be subsets of the annotations (a typo would leave nothing out)."""
    if train_subsets is None:
        return set(DEFAULT_TRAIN_SUBSETS)
    train_subsets = set(train_subsets)
    if database is None:
        raise TspVideoError("--train-subset says which annotated videos are for training: it needs --annotations")
    present = {info["subset"] for info in database.values()}
    if unknown := sorted(train_subsets - present):
        raise TspVideoError(f"no annotated video is in subset {', '.join(map(repr, unknown))} (--train-subset); "
                            f"the annotations' subsets are {', '.join(sorted(present))}")
    return train_subsets


def _folder_contents(out_dir: Path) -> str | None:
    """What an output folder already holds, in words (None: it does not exist or is empty)."""
    if not out_dir.is_dir():
        return None  # missing, or a file (refused by the write check with its own message)
    entries = sorted(p.name for p in out_dir.iterdir() if not p.name.startswith("."))
    if not entries:
        return None
    try:
        info = json.loads((out_dir / EXPORT_INFO).read_text(encoding="utf-8"))
        return f"an earlier {info['format']} export of {info['num_videos']} videos ({EXPORT_INFO})"
    except (OSError, ValueError, KeyError, TypeError):
        return (f"{len(entries)} file(s) or folder(s) (e.g. {', '.join(entries[:3])}) and no {EXPORT_INFO} "
                "(an unfinished export, or another folder?)")


def _file_stamps(out_dir: Path) -> dict[Path, tuple[int, int]]:
    """(inode, modification time) of every file under ``out_dir``: an atomic rewrite changes both."""
    if not out_dir.is_dir():
        return {}
    stamps = {}
    for path in out_dir.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            stat = path.stat()
            stamps[path] = (stat.st_ino, stat.st_mtime_ns)
    return stamps


def _nothing_readable(feature_dir: str | os.PathLike, failures: list[tuple[str, str]]) -> str:
    """Why no feature file could be read: the first failure's reason, and how many share it."""
    first = failures[0][1]
    same = sum(1 for _, error in failures if error.split(": ", 1)[-1] == first.split(": ", 1)[-1])
    others = f" ({same} of them for this reason)" if same != len(failures) else ""
    return f"{feature_dir}: none of its {len(failures)} feature file(s) could be read{others}, e.g. {first}"


def _export(videos, fmt, out_dir, database, prefix, temporal_size, label_map, train_subsets, failures,
            grid) -> ExportResult:
    """The files of one export into the existing ``out_dir`` (all but ``export_info.json`` and the README)."""
    clip_len, fps, stride, channels = grid
    by_stem = {v.stem: v for v in videos}

    matched = match_annotations(database, by_stem, prefix) if database is not None else {}
    missing = sorted(set(database) - set(matched)) if database is not None else []
    unannotated = match_report(database, by_stem, matched).features_without_annotations if database else []
    left_out: list[str] = []
    beyond: list[str] = []
    if database is not None and fmt in NEEDS_INSTANCES_IN_TRAINING:
        left_out, matched = _leave_out_training_videos_without_instances(database, matched, train_subsets)
    if database is not None and fmt in ("actionformer", "tridet"):
        beyond = _instances_beyond_features(database, matched, by_stem, train_subsets)
        matched = {vid: stem for vid, stem in matched.items() if vid not in set(beyond)}

    def name_of(stem: str) -> str:
        return stem if prefix and stem.startswith(prefix) else prefix + stem

    notes: list[str] = []
    files: list[str] = []
    writer = {"actionformer": _export_actionformer, "tridet": _export_actionformer,
              "opentad": _export_opentad, "gtad": _export_gtad, "bmn": _export_bmn,
              "pdvc": _export_pdvc}[fmt]
    config = writer(videos=videos, out_dir=out_dir, name_of=name_of, prefix=prefix, database=database,
                    matched=matched, temporal_size=temporal_size, label_map=label_map, grid=(clip_len, fps, stride),
                    channels=channels, files=files, notes=notes, failures=failures)

    if fmt in ("gtad", "bmn", "pdvc"):
        odd = [name_of(v.stem) for v in videos if not name_of(v.stem).startswith(ACTIVITYNET_PREFIX)]
        if odd:
            notes.append(f"{len(odd)} names do not start with 'v_' (e.g. {odd[0]!r}); {fmt}'s code assumes "
                         "ActivityNet names 'v_<id>'")
    if fmt == "pdvc":
        long_names = [name_of(v.stem) for v in videos if len(name_of(v.stem)) != 13]
        if long_names:
            notes.append(f"PDVC opens '<key[:13]>.npy'; {len(long_names)} names are not 13 characters long "
                         f"(e.g. {long_names[0]!r}): rename them or adapt PDVC's get_feats")
    if database is not None and fmt in NEEDS_INSTANCES_IN_TRAINING:
        _note_videos_without_instances(database, matched, left_out, train_subsets, fmt, out_dir, files, notes)
    if beyond:
        _note_instances_beyond_features(beyond, fmt, out_dir, files, notes)
    if missing:
        save_text_atomic(out_dir / "missing_features.txt", "".join(f"{m}\n" for m in missing))
        files.append("missing_features.txt")
        notes.append(f"{len(missing)} annotated videos have no features and were left out of the annotation "
                     "files (listed in missing_features.txt; OpenTAD can take it as block_list)")
    if unannotated:
        notes.append(f"{len(unannotated)} of {len(videos)} feature videos match no annotated video "
                     f"(e.g. {', '.join(unannotated[:3])}); their features are written, without annotations")
    if failures:
        save_text_atomic(out_dir / "failures.txt", "".join(f"{f}\t{e}\n" for f, e in failures))
        files.append("failures.txt")

    renamed = [v.stem for v in videos if name_of(v.stem) != v.stem]
    return ExportResult(format=fmt, out_dir=out_dir, num_videos=len(videos) - _count_failed(failures, videos),
                        config=config, files=files, missing_features=missing, failures=failures, notes=notes,
                        renamed=f"{len(renamed)} named with the prefix '{prefix}' (e.g. {renamed[0]} -> "
                                f"{name_of(renamed[0])})" if renamed else "")


def _instances_beyond_features(database: dict[str, Any], matched: dict[str, str], by_stem: dict[str, VideoFeatures],
                               train_subsets: set[str]) -> list[str]:
    """Training videos whose every instance ActionFormer's loader would drop as lying beyond the features.

    Its loader keeps, in training, an instance that starts before the features end and lies at least
    ``trunc_thresh`` inside them; the end is taken where the last clip ends, ``((T - 1) * stride + L) / fps``
    (its resizing mode's end; the native mode's is one stride later).
    """
    beyond = []
    for vid, stem in sorted(matched.items()):
        info = database[vid]
        if info["subset"] not in train_subsets or not _segments(info):
            continue
        video = by_stem[stem]
        end = float(video.feature_times[-1]) + video.clip_len / (2 * video.fps)
        if not any(_kept_by_actionformer(a["segment"], end) for a in _segments(info)):
            beyond.append(vid)
    return beyond


def _kept_by_actionformer(segment: list[float], end: float) -> bool:
    start, stop = float(segment[0]), float(segment[1])
    if start >= end or stop <= start:  # a zero-length instance gives 0 / 0 there, which is not kept either
        return False
    return (min(stop, end) - start) / (stop - start) >= ACTIONFORMER_TRUNC_THRESH


def _note_instances_beyond_features(beyond: list[str], fmt: str, out_dir: Path, files: list[str],
                                    notes: list[str]) -> None:
    save_text_atomic(out_dir / BEYOND_FEATURES_FILE, "".join(f"{vid}\n" for vid in beyond))
    files.append(BEYOND_FEATURES_FILE)
    shown = ", ".join(beyond[:10]) + (", ..." if len(beyond) > 10 else "")
    notes.append(f"{len(beyond)} training video(s) whose every instance lies after (or mostly after) their last "
                 f"feature were left out of the annotation files ({fmt}'s training loader drops such instances and "
                 f"then crashes: 'stack expects a non-empty TensorList'; their features are written): {shown} "
                 f"(all in {BEYOND_FEATURES_FILE})")


def _leave_out_training_videos_without_instances(database: dict[str, Any], matched: dict[str, str],
                                                 train_subsets: set[str]) -> tuple[list[str], dict[str, str]]:
    """(ids left out, the remaining matches): training videos with features but no instance."""
    left_out = sorted(vid for vid in matched
                      if database[vid]["subset"] in train_subsets and not database[vid]["annotations"])
    return left_out, {vid: stem for vid, stem in matched.items() if vid not in set(left_out)}


def _note_videos_without_instances(database, matched, left_out, train_subsets, fmt, out_dir, files, notes) -> None:
    """Say which training videos were left out (and write them down), and where else empty videos remain."""
    if left_out:
        save_text_atomic(out_dir / LEFT_OUT_FILE, "".join(f"{vid}\n" for vid in left_out))
        files.append(LEFT_OUT_FILE)
        shown = ", ".join(left_out[:10]) + (", ..." if len(left_out) > 10 else "")
        notes.append(f"{len(left_out)} training video(s) without any instance were left out of the annotation "
                     f"files ({fmt}'s training crashes on them; their features are written): {shown} "
                     f"(all in {LEFT_OUT_FILE})")
    elsewhere = sorted({database[vid]["subset"] for vid in matched
                        if database[vid]["subset"] not in train_subsets and not database[vid]["annotations"]})
    if elsewhere:
        notes.append(f"subset(s) {', '.join(elsewhere)} hold videos without instances, kept (fine for evaluation); "
                     f"if {fmt} trains on one of them (ActionFormer's THUMOS14 configs train on 'validation'), "
                     "export again with --train-subset naming it")


def _count_failed(failures: list[tuple[str, str]], videos: list[VideoFeatures]) -> int:
    paths = {v.location for v in videos}
    return sum(1 for f, _ in failures if f in paths)


def _load_or_fail(video: VideoFeatures, failures: list[tuple[str, str]]) -> np.ndarray | None:
    try:
        return video.load()
    except (OSError, ValueError, KeyError) as error:
        failures.append((video.location, f"cannot load features ({error})"))
        return None


def _annotated(database, matched, videos, failures):
    """(annotation info, video) for annotated videos whose features were written, in id order."""
    failed = {f for f, _ in failures}
    by_stem = {v.stem: v for v in videos if v.location not in failed}
    return [(database[vid], by_stem[matched[vid]]) for vid in sorted(matched) if matched[vid] in by_stem]


def _write_npy_per_video(videos, out_dir: Path, name_of, failures) -> None:
    """Copy each readable feature file as ``<name>.npy`` (``[T, C]``); unreadable ones go to ``failures``."""
    for video in videos:
        feats = _load_or_fail(video, failures)
        if feats is not None:
            save_npy_atomic(out_dir / f"{name_of(video.stem)}.npy", feats)


# ---- ActionFormer / TriDet -----------------------------------------------------------------------


def _export_actionformer(*, videos, out_dir, name_of, prefix, database, matched, label_map, grid, channels,
                         files, failures, notes, **_):
    clip_len, fps, stride = grid
    _write_npy_per_video(videos, out_dir, name_of, failures)  # [T, C]: the loader transposes
    files.append("<name>.npy")
    config = {"feat_folder": str(out_dir), "file_prefix": prefix or None, "file_ext": ".npy",
              "input_dim": channels, "feat_stride": stride, "num_frames": clip_len, "default_fps": fps,
              "max_seq_len": _suggest_max_seq_len(videos), "force_upsampling": False}
    if database is not None:
        names = class_names(database, label_map)
        out_db = {}
        for info, video in _annotated(database, matched, videos, failures):
            key = strip_prefix(name_of(video.stem), prefix)  # the loader opens prefix + key + ext
            out_db[key] = {"subset": info["subset"], "duration": _duration(info, video), "fps": fps,
                           "annotations": [{"segment": [float(s) for s in a["segment"]], "label": a["label"],
                                            "label_id": names.index(a["label"])} for a in _segments(info)]}
        save_json_atomic(out_dir / "annotations.json", {"version": "tspvideo-export", "database": out_db},
                         indent=None)
        files.append("annotations.json")
        config.update(json_file=str(out_dir / "annotations.json"), num_classes=len(names))
        notes.append("num_classes: use 1 for class-agnostic proposals (ActionFormer's ActivityNet setting) or "
                     f"{len(names)} for multi-class detection")
    notes.append("ActionFormer maps seconds to feature index as (t * fps - num_frames / 2) / feat_stride, i.e. "
                 "feature i is centred at (i * feat_stride + num_frames / 2) / fps: exactly the extraction grid")
    notes.append(f"max_seq_len {config['max_seq_len']} (a multiple of {ACTIONFORMER_SEQ_MULTIPLE}, covering the "
                 "longest video) passes the model's check that max_seq_len is divisible by fpn_stride x (window - 1) "
                 "at every level: a multiple of 576 with the THUMOS14 configs (window 19), of 96 with the ActivityNet "
                 "one (windows [7,7,7,7,7,-1]); here with force_upsampling: False (native grid, as above). Both "
                 "shipped configs crop every training video at random to 90-100 % of its length (crop_ratio: "
                 "[0.9, 1.0]; crop_ratio: ~ keeps them whole) and a longer one to max_seq_len. ActionFormer's "
                 f"ActivityNet config instead resizes every video to max_seq_len: keep max_seq_len: "
                 f"{ACTIONFORMER_ANET_RESIZE} and force_upsampling: True there (see docs/export.md)")
    return config


# ActionFormer asserts max_seq_len % (fpn_stride * (window // 2) * 2) == 0 at every pyramid level (strides
# 1..32 with its (2, 2, 5) backbone; full attention, window -1: fpn_stride). Its THUMOS14 configs use window 19
# (largest step 32 * 18 = 576), its ActivityNet TSP config windows [7, 7, 7, 7, 7, -1] (steps 6, 12, 24, 48, 96
# and 32: a multiple of 96, e.g. 192 or 288): a multiple of 576 passes both checks.
ACTIONFORMER_SEQ_MULTIPLE = 576
# ActivityNet config (anet_tsp.yaml): every video resized to this length (force_upsampling: True).
ACTIONFORMER_ANET_RESIZE = 192


def _suggest_max_seq_len(videos: list[VideoFeatures]) -> int:
    """The smallest multiple of 576 covering the longest video: passes the divisibility check of both shipped
    ActionFormer configs, and no training video is longer (its random crop to 90-100 % still applies)."""
    longest = max(v.num_features for v in videos)
    return int(ACTIONFORMER_SEQ_MULTIPLE * max(1, math.ceil(longest / ACTIONFORMER_SEQ_MULTIPLE)))


# ---- OpenTAD -------------------------------------------------------------------------------------


def _export_opentad(*, videos, out_dir, name_of, prefix, database, matched, label_map, grid, channels,
                    files, failures, notes, **_):
    clip_len, fps, stride = grid
    _write_npy_per_video(videos, out_dir, name_of, failures)  # LoadFeats(feat_format="npy"): [T, C]
    files.append("<name>.npy")
    if clip_len % 2:
        notes.append(f"clip_len {clip_len} is odd: OpenTAD's integer offset_frames cannot hold {clip_len / 2}")
    config = {"data_path": str(out_dir) + os.sep, "feat_format": "npy", "prefix": prefix, "suffix": "",
              "feature_stride": stride, "sample_stride": 1, "offset_frames": clip_len // 2, "fps": fps,
              "in_channels": channels}
    if database is not None:
        names = class_names(database, label_map)
        out_db = {}
        for info, video in _annotated(database, matched, videos, failures):
            key = strip_prefix(name_of(video.stem), prefix)  # LoadFeats opens prefix + key + suffix.npy
            duration = _duration(info, video)
            out_db[key] = {"subset": info["subset"], "duration": duration,
                           # frame / duration is the fps OpenTAD's THUMOS datasets use
                           "frame": int(round(duration * fps)),
                           "annotations": [{"segment": [float(s) for s in a["segment"]], "label": a["label"]}
                                           for a in _segments(info)]}
        save_json_atomic(out_dir / "annotations.json", {"version": "tspvideo-export", "database": out_db},
                         indent=None)
        save_text_atomic(out_dir / "category_idx.txt", "".join(f"{n}\n" for n in names))
        files += ["annotations.json", "category_idx.txt"]
        config.update(ann_file=str(out_dir / "annotations.json"), class_map=str(out_dir / "category_idx.txt"),
                      num_classes=len(names))
    notes.append("OpenTAD maps seconds to feature index as (t * fps - offset_frames) / feature_stride; with "
                 f"fps={fps:g}, offset_frames={clip_len // 2}, feature_stride={stride} this is the extraction grid")
    return config


# ---- G-TAD and BMN (BSN-style ActivityNet files) -------------------------------------------------


def _write_bsn_annotations(out_dir, name_of, database, matched, videos, fps, files, failures):
    """``video_info_new.csv`` (video, subset, ...) and ``anet_anno_action.json`` keyed by ``v_<id>``."""
    rows, anno = [], {}
    for info, video in _annotated(database, matched, videos, failures):
        name = name_of(video.stem)
        # The resized grid spans the decoded duration, so duration_second is that duration and
        # feature_frame == duration_frame (BMN's "corrected_second" is then the duration itself).
        frames = _bmn_frames(video.duration, fps)
        rows.append([name, frames, video.duration, fps, fps, info["subset"], frames])
        anno[name] = {"duration_second": video.duration, "duration_frame": frames, "feature_frame": frames,
                      "subset": info["subset"],
                      "annotations": [{"segment": [float(s) for s in a["segment"]], "label": a["label"]}
                                      for a in _segments(info)]}
    _write_csv_atomic(out_dir / "video_info_new.csv",
                      ["video", "numFrame", "seconds", "fps", "rfps", "subset", "featureFrame"], rows)
    save_json_atomic(out_dir / "anet_anno_action.json", anno, indent=None)
    files += ["video_info_new.csv", "anet_anno_action.json"]


def _finish_bsn_export(config, temporal_size, notes, out_dir, name_of, database, matched, videos, fps, files,
                       failures) -> dict:
    """What G-TAD and BMN exports share: BSN-style annotation files (given a database) and the grid note."""
    if database is not None:
        _write_bsn_annotations(out_dir, name_of, database, matched, videos, fps, files, failures)
        config.update(video_info=str(out_dir / "video_info_new.csv"),
                      video_anno=str(out_dir / "anet_anno_action.json"))
    notes.append(f"resized to {temporal_size} positions; position k stands for time (k + 0.5) * duration / "
                 f"{temporal_size} (linear interpolation over feature centre times)")
    return config


def _export_gtad(*, videos, out_dir, name_of, database, matched, temporal_size, grid, channels, files,
                 failures, notes, **_):
    clip_len, fps, stride = grid
    h5_name = f"gtad_features_{temporal_size}.hdf5"
    import h5py  # here only: exports to .npy folders (and the CLI's parser) do without it

    with atomic_path(out_dir / h5_name) as tmp, h5py.File(tmp, "w", **H5_WRITE_OPTIONS) as h5:
        for video in videos:
            feats = _load_or_fail(video, failures)
            if feats is None:
                continue
            # G-TAD reads h5[video_name][()] as [T, C] and transposes; resized here so its own
            # F.interpolate (which ignores feature times) is skipped.
            # one chunk per video: written (or failing) right here, see H5_WRITE_OPTIONS
            h5.create_dataset(name_of(video.stem), chunks=(temporal_size, feats.shape[1]),
                              data=resize_temporal(feats, video.feature_times, video.duration, temporal_size))
    files.append(h5_name)
    config = {"feature_path": str(out_dir / h5_name), "temporal_scale": temporal_size, "feat_dim": channels,
              "max_duration": temporal_size}
    return _finish_bsn_export(config, temporal_size, notes, out_dir, name_of, database, matched, videos, fps,
                              files, failures)


def _export_bmn(*, videos, out_dir, name_of, database, matched, temporal_size, grid, channels, files,
                failures, notes, **_):
    clip_len, fps, stride = grid
    sub = f"csv_mean_{temporal_size}"
    header = [f"f{c}" for c in range(channels)]
    for video in videos:
        feats = _load_or_fail(video, failures)
        if feats is None:
            continue
        resized = resize_temporal(feats, video.feature_times, video.duration, temporal_size)
        # pandas.read_csv takes the first line as the header; the S rows below are the sequence.
        _write_csv_atomic(out_dir / sub / f"{name_of(video.stem)}.csv", header,
                          ([f"{x:.7g}" for x in row] for row in resized))
    files.append(f"{sub}/<name>.csv")
    config = {"feature_path": str(out_dir) + os.sep, "temporal_scale": temporal_size, "feat_dim": channels}
    notes.append(f"BMN opens feature_path + 'csv_mean_{temporal_size}/' + name + '.csv'; set feat_dim to "
                 f"{channels} (400 for the original TSN features)")
    return _finish_bsn_export(config, temporal_size, notes, out_dir, name_of, database, matched, videos, fps,
                              files, failures)


# ---- PDVC ----------------------------------------------------------------------------------------


def _export_pdvc(*, videos, out_dir, name_of, database, matched, grid, channels, files, failures, notes, **_):
    _write_npy_per_video(videos, out_dir, name_of, failures)  # [T, C]; PDVC resizes to 100
    files.append("<name>.npy")
    config = {"visual_feature_type": ["tsp"], "visual_feature_folder": [str(out_dir)],
              "feature_dim": channels, "data_rescale": 1, "frame_embedding_num": 100}
    if channels != 512:
        notes.append(f"PDVC's 'tsp' feature type asserts 512 channels; these have {channels}")
    if database is not None:
        per_subset: dict[str, dict[str, Any]] = {}
        for info, video in _annotated(database, matched, videos, failures):
            segs = _segments(info)
            if not segs:
                continue
            per_subset.setdefault(info["subset"], {})[name_of(video.stem)] = {
                "duration": _duration(info, video),
                "timestamps": [[float(s) for s in a["segment"]] for a in segs],
                # no captions in an ActivityNet-style file: the class name stands in for the sentence
                "sentences": [a["label"] for a in segs]}
        for subset, anno in sorted(per_subset.items()):
            save_json_atomic(out_dir / f"pdvc_{subset}.json", anno, indent=None)
            files.append(f"pdvc_{subset}.json")
        notes.append("pdvc_<subset>.json use class names as sentences (event localization only); for dense "
                     "captioning use the ActivityNet Captions files, whose keys 'v_<id>' match these features")
    return config


# ---- README --------------------------------------------------------------------------------------


def _readme(result: ExportResult, grid: tuple[int, float, int]) -> str:
    clip_len, fps, stride = grid
    lines = [
        f"tspvideo export --format {result.format}",
        f"{result.num_videos} videos written to {result.out_dir}" + (f"; {result.renamed}" if result.renamed else ""),
        "",
        "Time grid of the source features: feature i covers 15 fps frames [i*stride, i*stride + L) and is",
        f"centred at (i*stride + L/2)/fps s, with L={clip_len}, stride={stride}, fps={fps:g}.",
        "",
        "Values for the consumer's config:",
    ]
    lines += [f"  {key}: {json.dumps(value)}" for key, value in result.config.items()]
    lines += ["", "Files:"] + [f"  {f}" for f in result.files]
    if result.notes:
        lines += ["", "Notes:"] + [f"  - {n}" for n in result.notes]
    if result.failures:
        lines += ["", f"{len(result.failures)} files failed (failures.txt)."]
    return "\n".join(lines) + "\n"
