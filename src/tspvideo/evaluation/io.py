"""Loading and validating the ActivityNet-style JSON files that the evaluations read.

Ground truth (the ActivityNet challenge format, also written by ``tspvideo synth``)::

    {"database": {VIDEO_ID: {"subset": "validation", "duration": 120.5,
                             "annotations": [{"segment": [START, END], "label": "Class"}, ...]}}}

Predictions (detections; for proposals ``label`` may be left out)::

    {"results": {VIDEO_ID: [{"segment": [START, END], "label": "Class", "score": 0.9}, ...]}}

Both load into flat NumPy arrays (one row per instance / prediction) so that the evaluations can be
vectorized. Every check that fails raises :class:`tspvideo.core.errors.TspVideoError` with a message that
names the offending entry, e.g. ``results["v_abc"][3]: segment end 4.0 < start 7.5``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tspvideo.core.errors import TspVideoError
from tspvideo.datasets.activitynet_json import (
    AnnotationError,
    bad_annotations_message,
    database_of,
    find_bad_annotations,
    is_finite_number,
    label_text,
    load_json,
    segment_problem,
    top_level_mapping,
)

__all__ = [
    "GroundTruth",
    "Predictions",
    "load_json",
    "parse_ground_truth",
    "parse_predictions",
    "load_ground_truth",
    "load_predictions",
    "parse_tious",
    "segment_tiou",
]

JsonSource = dict | str | os.PathLike


def _as_obj(source: JsonSource, what: str) -> Any:
    return source if isinstance(source, dict) else load_json(source, what)


def _finite(value: Any) -> bool:
    return is_finite_number(value)


def _label(value: Any, where: str) -> str:
    # Labels are class names; integer class ids are accepted and compared as their decimal text.
    text = label_text(value)
    if text is None:
        raise TspVideoError(f"{where}: label must be a string (class name), got {value!r}")
    return text


def _segment(entry: Any, where: str) -> tuple[float, float]:
    problem = segment_problem(entry)
    if problem is not None:
        raise TspVideoError(f"{where}: {problem}")
    start, end = entry["segment"]
    return float(start), float(end)


@dataclass
class GroundTruth:
    """Ground-truth instances of the selected videos, as flat arrays (one entry per instance).

    ``video`` indexes ``video_ids``, ``label`` indexes ``classes`` (sorted class names). Videos of the
    database outside the selected subset are listed in ``other_videos`` so that predictions for them
    can be told apart from predictions for videos that do not exist at all.
    """

    video_ids: list[str]
    classes: list[str]
    video: np.ndarray
    start: np.ndarray
    end: np.ndarray
    label: np.ndarray
    durations: np.ndarray
    subset: str | None = None
    other_videos: set[str] = field(default_factory=set)
    subsets: list[str] = field(default_factory=list)

    @property
    def num_instances(self) -> int:
        return int(self.video.size)


@dataclass
class Predictions:
    """Predictions as flat arrays in input order; ``label`` is ``None`` for unlabeled proposals."""

    video_ids: list[str]
    video: np.ndarray
    start: np.ndarray
    end: np.ndarray
    score: np.ndarray
    label: list[str] | None

    def __len__(self) -> int:
        return int(self.video.size)


def parse_ground_truth(obj: Any, subset: str | None = None, source: str = "ground truth") -> GroundTruth:
    """Validate an ActivityNet-style ground-truth object and keep the videos of ``subset``.

    ``subset=None`` keeps every video. Raises :class:`TspVideoError` listing every bad entry.
    """
    database = database_of(obj, source)
    # The one check every command applies (tspvideo.datasets.activitynet_json), listing every bad entry.
    bad = find_bad_annotations(database, None if subset is None else {subset})
    if bad:
        raise AnnotationError(bad_annotations_message(source, bad), bad)
    video_ids: list[str] = []
    durations: list[float] = []
    rows_video: list[int] = []
    rows_start: list[float] = []
    rows_end: list[float] = []
    rows_label: list[str] = []
    other: set[str] = set()
    subsets: set[str] = set()
    for vid, info in database.items():
        where = f"{source}: database[{vid!r}]"
        video_subset = info.get("subset")
        if video_subset is not None:
            subsets.add(str(video_subset))
        if subset is not None and video_subset != subset:
            other.add(vid)
            continue
        annotations = info["annotations"]
        # The duration is optional (only the length breakdown could use it).
        duration = info.get("duration")
        v = len(video_ids)
        video_ids.append(vid)
        durations.append(float("nan") if duration is None else float(duration))
        for j, ann in enumerate(annotations):
            aw = f"{where}['annotations'][{j}]"
            start, end = _segment(ann, aw)
            rows_video.append(v)
            rows_start.append(start)
            rows_end.append(end)
            rows_label.append(_label(ann["label"], aw))
    if subset is not None and not video_ids:
        known = ", ".join(sorted(subsets)) or "none"
        raise TspVideoError(f"{source}: no video has subset {subset!r} (subsets present: {known})")
    classes = sorted(set(rows_label))
    class_index = {c: i for i, c in enumerate(classes)}
    return GroundTruth(
        video_ids=video_ids,
        classes=classes,
        video=np.asarray(rows_video, dtype=np.int64),
        start=np.asarray(rows_start, dtype=np.float64),
        end=np.asarray(rows_end, dtype=np.float64),
        label=np.asarray([class_index[c] for c in rows_label], dtype=np.int64),
        durations=np.asarray(durations, dtype=np.float64),
        subset=subset,
        other_videos=other,
        subsets=sorted(subsets),
    )


def parse_predictions(obj: Any, require_label: bool = True, source: str = "predictions") -> Predictions:
    """Validate an ActivityNet-style results object (``{"results": {video: [...]}}``).

    Each entry needs ``segment`` ([start, end], end >= start, finite) and a finite ``score``;
    ``label`` is required when ``require_label`` (detection) and optional otherwise (proposals).
    """
    results = top_level_mapping(obj, "results", source, "lists", "[...]")
    fast = _parse_predictions_fast(results, require_label)
    if fast is not None:
        return fast
    # Something is wrong somewhere: walk entry by entry to name the first bad one.
    video_ids: list[str] = []
    rows_video: list[int] = []
    rows_start: list[float] = []
    rows_end: list[float] = []
    rows_score: list[float] = []
    rows_label: list[str] = []
    any_label = False
    for vid, entries in results.items():
        where = f"{source}: results[{vid!r}]"
        if not isinstance(entries, list):
            raise TspVideoError(f"{where}: expected a list of predictions, got {type(entries).__name__}")
        v = len(video_ids)
        video_ids.append(vid)
        for j, entry in enumerate(entries):
            ew = f"{where}[{j}]"
            start, end = _segment(entry, ew)
            if "score" not in entry:
                raise TspVideoError(f"{ew}: missing key 'score'")
            score = entry["score"]
            if not _finite(score):
                raise TspVideoError(f"{ew}: score must be a finite number, got {score!r}")
            if "label" in entry:
                rows_label.append(_label(entry["label"], ew))
                any_label = True
            elif require_label:
                raise TspVideoError(f"{ew}: missing key 'label'")
            else:
                rows_label.append("")
            rows_video.append(v)
            rows_start.append(start)
            rows_end.append(end)
            rows_score.append(float(score))
    return Predictions(
        video_ids=video_ids,
        video=np.asarray(rows_video, dtype=np.int64),
        start=np.asarray(rows_start, dtype=np.float64),
        end=np.asarray(rows_end, dtype=np.float64),
        score=np.asarray(rows_score, dtype=np.float64),
        label=rows_label if (require_label or any_label) else None,
    )


def _parse_predictions_fast(results: dict, require_label: bool) -> Predictions | None:
    """Parse valid predictions with list comprehensions and whole-array checks (several times faster
    than checking entry by entry); ``None`` when anything is off, so the slow path can name it."""
    video_ids = list(results)
    lists = list(results.values())
    if not all(isinstance(entries, list) for entries in lists):
        return None
    counts = np.fromiter((len(entries) for entries in lists), dtype=np.int64, count=len(lists))
    flat = [entry for entries in lists for entry in entries]
    try:
        segments = [entry["segment"] for entry in flat]
        scores = [entry["score"] for entry in flat]
        if require_label:
            labels = [entry["label"] for entry in flat]
        else:
            labels = [entry.get("label", "") for entry in flat]
    except (KeyError, TypeError, AttributeError):
        return None
    if not all(type(label) is str for label in labels):
        return None  # integer labels are fine but rare: the slow path converts them
    try:
        seg = np.asarray(segments) if flat else np.zeros((0, 2))
        score = np.asarray(scores) if flat else np.zeros(0)
    except (ValueError, TypeError):
        return None
    if (seg.dtype.kind not in "iuf" or score.dtype.kind not in "iuf" or seg.shape != (len(flat), 2)
            or score.shape != (len(flat),)):
        return None
    seg = seg.astype(np.float64, copy=False)
    score = score.astype(np.float64, copy=False)
    if not (np.isfinite(seg).all() and np.isfinite(score).all() and (seg[:, 1] >= seg[:, 0]).all()):
        return None
    any_label = any(labels)
    return Predictions(
        video_ids=video_ids,
        video=np.repeat(np.arange(len(video_ids), dtype=np.int64), counts),
        start=np.ascontiguousarray(seg[:, 0]),
        end=np.ascontiguousarray(seg[:, 1]),
        score=score,
        label=labels if (require_label or any_label) else None,
    )


def load_ground_truth(source: JsonSource, subset: str | None = None) -> GroundTruth:
    """Parse ground truth from a dict or a JSON file path (see :func:`parse_ground_truth`)."""
    name = "ground truth" if isinstance(source, dict) else f"ground truth {source}"
    return parse_ground_truth(_as_obj(source, "ground-truth file"), subset=subset, source=name)


def load_predictions(source: JsonSource, require_label: bool = True) -> Predictions:
    """Parse predictions from a dict or a JSON file path (see :func:`parse_predictions`)."""
    name = "predictions" if isinstance(source, dict) else f"predictions {source}"
    return parse_predictions(_as_obj(source, "predictions file"), require_label=require_label, source=name)


def parse_tious(text: str) -> np.ndarray:
    """Parse ``"0.5:0.05:0.95"`` (start:step:stop, stop included), ``"0.3,0.5,0.7"`` or ``"0.5"``.

    Thresholds are rounded to 10 decimals so that ``0.6`` is the same float however it was produced.
    """
    text = text.strip()
    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) != 3:
                raise ValueError
            start, step, stop = parts
            if step <= 0 or stop < start:
                raise ValueError
            count = int(math.floor((stop - start) / step + 1e-9)) + 1
            values = start + step * np.arange(count)
        else:
            values = np.asarray([float(p) for p in text.split(",") if p.strip()])
    except ValueError:
        raise TspVideoError(f"bad tIoU thresholds {text!r}: use start:step:stop (e.g. 0.5:0.05:0.95), "
                            "a comma list (0.3,0.5,0.7) or one number") from None
    return check_tious(values)


def check_tious(tious: Any) -> np.ndarray:
    """Return thresholds as a rounded float array; each must lie in (0, 1]."""
    values = np.round(np.atleast_1d(np.asarray(tious, dtype=np.float64)), 10)
    if values.size == 0 or values.ndim != 1:
        raise TspVideoError("at least one tIoU threshold is needed")
    if not np.all((values > 0) & (values <= 1)):
        raise TspVideoError(f"tIoU thresholds must lie in (0, 1], got {values.tolist()}")
    return values


def segment_tiou(a_start: np.ndarray, a_end: np.ndarray, b_start: np.ndarray, b_end: np.ndarray) -> np.ndarray:
    """Element-wise temporal IoU of segments ``a`` and ``b`` (broadcasting); 0 where the union is 0."""
    inter = np.clip(np.minimum(a_end, b_end) - np.maximum(a_start, b_start), 0.0, None)
    union = (a_end - a_start) + (b_end - b_start) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
