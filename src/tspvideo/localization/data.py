"""Probe inputs: features on a temporal grid plus the ground truth mapped onto that grid."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tspvideo.core.errors import TspVideoError
from tspvideo.features.folder import Grid, match_annotations, read_features
from tspvideo.localization.export import resize_temporal, resized_times


@dataclass
class ProbeVideo:
    """One video on the probe's grid: ``features[k]`` stands for time ``times[k]`` (cells of ``step`` s)."""

    video_id: str  # the annotation id (what predictions are keyed by)
    features: np.ndarray  # [T, C] float32
    times: np.ndarray  # [T] seconds
    step: float  # seconds between grid positions
    duration: float  # seconds
    segments: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # [N, 2] seconds
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), dtype=np.int64))  # [N] class ids


def ground_truth_database(ground_truth: dict[str, Any]) -> dict[str, Any]:
    """The ``database`` of an ActivityNet-style ground truth (accepts the database itself too)."""
    database = ground_truth.get("database", ground_truth)
    if not isinstance(database, dict):
        raise TspVideoError("ground truth must be an ActivityNet-style dict with a 'database' object")
    return database


def load_probe_videos(feature_dir: str | os.PathLike, ground_truth: dict[str, Any], video_ids: list[str] | None,
                      class_names: list[str], temporal_size: int | None = 100,
                      grid: Grid | None = None) -> list[ProbeVideo]:
    """Features of ``video_ids`` (annotation ids; all matched ones when None) on the probe grid.

    With ``temporal_size`` S the features are resized to S cells over [0, duration] (cell k at
    ``(k + 0.5) * duration / S``, as ``tspvideo export`` does for BMN/G-TAD); with None they keep
    their native grid, the clip centre times of the sidecar. Videos without features are skipped.
    ``feature_dir`` is any feature source (folder, HDF5, released name); ``grid`` holds explicit flags.
    """
    database = ground_truth_database(ground_truth)
    videos = read_features(feature_dir, grid)
    by_stem = {v.stem: v for v in videos}
    wanted = {vid: database.get(vid, {}) for vid in (video_ids if video_ids is not None else database)}
    matched = match_annotations(wanted, by_stem)
    out = []
    for video_id in sorted(matched):
        source = by_stem[matched[video_id]]
        info = wanted[video_id]
        feats = source.load()
        if temporal_size:
            feats = resize_temporal(feats, source.feature_times, source.duration, temporal_size)
            times = resized_times(source.duration, temporal_size)
            step = source.duration / temporal_size
        else:
            times = source.feature_times.astype(np.float64)
            step = source.stride / source.fps
        annotations = [a for a in info.get("annotations", []) if a.get("label") in class_names]
        segments = np.array([[float(a["segment"][0]), float(a["segment"][1])] for a in annotations],
                            dtype=np.float64).reshape(-1, 2)
        labels = np.array([class_names.index(a["label"]) for a in annotations], dtype=np.int64)
        out.append(ProbeVideo(video_id=video_id, features=feats, times=times, step=float(step),
                              duration=float(source.duration), segments=segments, labels=labels))
    return out


def _coverage(times: np.ndarray, step: float, start: float, end: float) -> np.ndarray:
    """Fraction of each cell ``[t - step/2, t + step/2]`` covered by ``[start, end]``."""
    lo = np.maximum(times - step / 2, start)
    hi = np.minimum(times + step / 2, end)
    return np.clip(hi - lo, 0.0, None) / step


def make_targets(video: ProbeVideo, boundary_cells: float = 1.5) -> dict[str, np.ndarray]:
    """Per-cell training targets from the ground-truth segments.

    - ``actionness``: fraction of the cell inside an action (soft label in [0, 1]);
    - ``start`` / ``end``: fraction of the cell inside a region of ``boundary_cells`` cells either side
      of a boundary (BMN-style, so a boundary is a small bump rather than one cell);
    - ``label``: class of the action covering the cell centre, -1 on background.
    """
    times, step = video.times, video.step
    actionness = np.zeros(len(times))
    start = np.zeros(len(times))
    end = np.zeros(len(times))
    label = np.full(len(times), -1, dtype=np.int64)
    half = boundary_cells * step
    for (s, e), c in zip(video.segments, video.labels, strict=True):
        actionness = np.maximum(actionness, _coverage(times, step, s, e))
        start = np.maximum(start, _coverage(times, step, s - half, s + half))
        end = np.maximum(end, _coverage(times, step, e - half, e + half))
        label[(times >= s) & (times <= e)] = c
    return {"actionness": actionness.astype(np.float32), "start": start.astype(np.float32),
            "end": end.astype(np.float32), "label": label}
