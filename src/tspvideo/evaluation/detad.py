"""DETAD's sensitivity analysis (average mAP_N per bucket of an instance characteristic), as DETAD computes it.

DETAD (Alwassel et al., ECCV 2018) is what the TSP paper's Table 8 uses. Its rules, all reproduced here:

* **Instances.** Ground truth of the evaluated videos; instances of zero length (``start >= end``) and
  instances whose coverage (length over video duration) is above 1, or unknown, are dropped.
* **Characteristics.** ``length`` (end - start, seconds), ``coverage`` (length / video duration) and
  ``num-instances`` (annotations of the video, of any class, counted before the drops). Binned as
  ``pandas.cut`` does: ``(lo, hi]``, the first bin also takes ``lo``. When every evaluated annotation
  carries DETAD's precomputed ``length`` / ``coverage`` / ``num-instances`` fields (DETAD's annotation
  files do), those values are used, as DETAD uses them.
* **Matching** (per class, once, against every kept instance): predictions in the order of numpy's
  default ``argsort`` of their scores, reversed (so tied scores follow numpy's sort, as in DETAD);
  each takes the first instance of its video and class, in decreasing tIoU (ties: numpy's argsort of
  the tIoUs, reversed), that is not taken yet and has ``tIoU >= threshold`` (no tolerance).
  Predictions for videos without ground truth (another subset, or an unknown id when asked) are false
  positives.
* **Normalized precision.** ``precision = R*N / (R*N + FP)`` with ``R`` the recall and ``N`` the average
  number of instances per class over the evaluated set (kept instances / classes annotated in it).
  AP is VOC's interpolated AP of these precision/recall points. ``plain`` uses ``TP / (TP + FP)``.
* **Per bucket** of a characteristic: for each class with instances in the bucket, its predictions in
  decreasing score (pandas' ``sort_values`` order), without every prediction that matched an instance
  *outside* the bucket at *any* tIoU; the rest are true positives where they matched a bucket instance
  and false positives elsewhere. Positives are the bucket's instances of the class. Class AP is averaged
  over tIoUs, then over the classes with instances in the bucket (a class without any prediction: 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tspvideo.core.errors import TspVideoError
from tspvideo.evaluation.detection import _map_videos
from tspvideo.evaluation.io import (
    GroundTruth,
    JsonSource,
    Predictions,
    load_json,
    load_predictions,
    parse_ground_truth,
    segment_tiou,
)

__all__ = [
    "Characteristic",
    "DetadSettings",
    "DETAD_SETTINGS",
    "DetadData",
    "prepare_detad",
    "interpolated_ap",
    "sensitivity_analysis",
    "format_sensitivity_table",
]

SIZE_NAMES = ("XS", "S", "M", "L", "XL")


@dataclass(frozen=True)
class Characteristic:
    """A ground-truth characteristic and its bins: bucket i is ``(edges[i], edges[i+1]]`` (the first also
    takes ``edges[0]``), named ``names[i]``."""

    name: str
    edges: tuple[float, ...]
    names: tuple[str, ...]


@dataclass(frozen=True)
class DetadSettings:
    """tIoU thresholds and characteristic bins of one of DETAD's dataset settings."""

    name: str
    tious: tuple[float, ...]
    characteristics: tuple[Characteristic, ...]


# DETAD's settings (src/sensitivity_analysis.py). The tIoUs are np.linspace(0.5, 0.95, 10) bit for bit
# (its 0.9 is 0.8999999999999999): DETAD compares tIoUs with them exactly, without tolerance.
DETAD_SETTINGS: dict[str, DetadSettings] = {
    "activitynet": DetadSettings("activitynet", tuple(float(t) for t in np.linspace(0.5, 0.95, 10)), (
        Characteristic("coverage", tuple(float(e) for e in np.linspace(0.0, 1.0, 6)), SIZE_NAMES),
        Characteristic("length", (0.0, 30.0, 60.0, 120.0, 180.0, np.inf), SIZE_NAMES),
        Characteristic("num-instances", (-1.0, 1.0, 4.0, 8.0, np.inf), SIZE_NAMES[:4]),
    )),
    "thumos14": DetadSettings("thumos14", (0.5,), (
        Characteristic("coverage", (0.0, 0.02, 0.04, 0.06, 0.08, 1.0), SIZE_NAMES),
        Characteristic("length", (0.0, 3.0, 6.0, 12.0, 18.0, np.inf), SIZE_NAMES),
        Characteristic("num-instances", (-1.0, 1.0, 40.0, 80.0, np.inf), SIZE_NAMES[:4]),
    )),
}
CHARACTERISTIC_NAMES = ("coverage", "length", "num-instances")
PRECISIONS = ("normalized", "plain")
# Prediction-instance cells per chunk when ordering each prediction's candidate instances.
CELL_CHUNK = 1 << 21


@dataclass
class DetadData:
    """Kept instances, scored predictions and the matching, as DETAD's analyses need them.

    Instance arrays (``gt_*``, ``values``) hold the kept instances in ground-truth order. Prediction
    arrays hold the scored predictions in input order; ``pred_video`` is a ground-truth video index or,
    for videos without ground truth, an index past ``len(gt.video_ids)``. ``matched[i, k]`` is the kept
    instance matched by prediction i at ``tious[k]``, or -1. ``match_order`` lists the predictions class
    by class in DETAD's matching order.
    """

    gt: GroundTruth
    tious: np.ndarray
    gt_video: np.ndarray
    gt_label: np.ndarray
    gt_start: np.ndarray
    gt_end: np.ndarray
    values: dict[str, np.ndarray]
    num_classes: int
    average_instances_per_class: float
    pred_video: np.ndarray
    pred_label: np.ndarray
    pred_start: np.ndarray
    pred_end: np.ndarray
    pred_score: np.ndarray
    matched: np.ndarray
    match_order: np.ndarray
    dropped: dict[str, int]
    characteristics_source: str
    warnings: list[str]

    @property
    def num_instances(self) -> int:
        return int(self.gt_label.size)

    def class_counts(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Kept instances per class (of those in ``mask``)."""
        labels = self.gt_label if mask is None else self.gt_label[mask]
        return np.bincount(labels, minlength=self.num_classes)


# ------------------------------------------------------------------------------------------ input
def _annotation_values(obj: Any, subset: str | None, num_instances: int) -> tuple[dict[str, np.ndarray] | None, bool]:
    """DETAD's precomputed characteristics of the evaluated annotations, in ground-truth order, or
    ``None`` unless every one of them carries all three as numbers; and whether some carry them."""
    if not isinstance(obj, dict) or not isinstance(obj.get("database"), dict):
        return None, False
    columns: dict[str, list[float]] = {name: [] for name in CHARACTERISTIC_NAMES}
    complete, some = True, False
    for info in obj["database"].values():
        if not isinstance(info, dict) or (subset is not None and info.get("subset") != subset):
            continue
        for ann in info.get("annotations") or []:
            for name in CHARACTERISTIC_NAMES:
                value = ann.get(name) if isinstance(ann, dict) else None
                if isinstance(value, bool) or not isinstance(value, int | float):
                    complete = False
                    continue
                some = True
                columns[name].append(float(value))
    if not complete or len(columns["length"]) != num_instances:
        return None, some
    return {name: np.asarray(col, dtype=np.float64) for name, col in columns.items()}, some


def _computed_values(gt: GroundTruth) -> dict[str, np.ndarray]:
    """length, coverage and num-instances of every instance, from the segments and video durations."""
    length = gt.end - gt.start
    duration = gt.durations[gt.video]
    missing = np.flatnonzero(np.isnan(duration))
    if missing.size:
        vid = gt.video_ids[int(gt.video[missing[0]])]
        raise TspVideoError(f"ground truth: database[{vid!r}] has no 'duration': DETAD's coverage "
                            "(instance length / video duration) needs every video's duration")
    with np.errstate(divide="ignore", invalid="ignore"):
        coverage = length / duration
    per_video = np.bincount(gt.video, minlength=len(gt.video_ids))
    return {"length": length, "coverage": coverage, "num-instances": per_video[gt.video].astype(np.float64)}


def prepare_detad(ground_truth: JsonSource | GroundTruth, predictions: JsonSource | Predictions,
                  tious: Any, subset: str | None = None, unknown_videos: str = "error",
                  annotations: dict | None = None) -> DetadData:
    """Load, filter and match as DETAD does (see the module doc); the common first step of its analyses.

    With an already parsed :class:`GroundTruth`, ``annotations`` may pass the JSON object it was parsed
    from, so that DETAD's precomputed characteristics in it are used.
    """
    obj = annotations
    if isinstance(ground_truth, GroundTruth):
        gt = ground_truth
    else:
        obj = ground_truth if isinstance(ground_truth, dict) else load_json(ground_truth, "ground-truth file")
        name = "ground truth" if isinstance(ground_truth, dict) else f"ground truth {ground_truth}"
        gt = parse_ground_truth(obj, subset=subset, source=name)
    pred = predictions if isinstance(predictions, Predictions) else load_predictions(predictions)
    if pred.label is None:
        raise TspVideoError("predictions have no 'label': DETAD's analysis needs a class label per prediction")
    if not gt.classes:
        raise TspVideoError("the ground truth has no annotated instance" + (f" in subset {gt.subset!r}"
                            if gt.subset else "") + ": DETAD's analysis is undefined")
    tious = np.atleast_1d(np.asarray(tious, dtype=np.float64))
    if tious.ndim != 1 or tious.size == 0 or not np.all((tious > 0) & (tious <= 1)):
        raise TspVideoError(f"tIoU thresholds must be one or more numbers in (0, 1], got {tious.tolist()}")
    warnings: list[str] = []

    values, some = _annotation_values(obj, gt.subset, gt.num_instances)
    source = "annotations" if values is not None else "computed"
    if values is None:
        if some:
            warnings.append("some annotations carry DETAD's length / coverage / num-instances fields but not all: "
                            "all three are computed from the segments and video durations instead")
        values = _computed_values(gt)
    # DETAD's drops: coverage above 1 (or unknown), then zero length.
    positive = gt.start < gt.end
    covered = values["coverage"] <= 1.0
    keep = positive & covered
    dropped = {"zero_length": int((~positive).sum()), "coverage_above_1": int((positive & ~covered).sum())}

    video, usable = _map_videos(gt, pred, unknown_videos, warnings, other_subsets="false_positive")
    class_index = {c: i for i, c in enumerate(gt.classes)}
    label = np.asarray([class_index.get(lab, -1) for lab in pred.label], dtype=np.int64).reshape(-1)
    unlabeled = usable & (label < 0)
    if unlabeled.any():
        names = sorted({pred.label[i] for i in np.flatnonzero(unlabeled)})
        shown = ", ".join(map(repr, names[:5])) + (" ..." if len(names) > 5 else "")
        warnings.append(f"{len(names)} predicted labels with no ground-truth instance ({shown}); "
                        f"their {int(unlabeled.sum())} predictions are left out")
    scored = np.flatnonzero(usable & (label >= 0))

    data = DetadData(
        gt=gt, tious=tious, gt_video=gt.video[keep], gt_label=gt.label[keep], gt_start=gt.start[keep],
        gt_end=gt.end[keep], values={k: v[keep] for k, v in values.items()}, num_classes=len(gt.classes),
        average_instances_per_class=float(keep.sum()) / len(gt.classes),
        pred_video=video[scored], pred_label=label[scored], pred_start=pred.start[scored],
        pred_end=pred.end[scored], pred_score=pred.score[scored],
        matched=np.zeros((0, tious.size), dtype=np.int64), match_order=np.zeros(0, dtype=np.int64),
        dropped=dropped, characteristics_source=source, warnings=warnings)
    data.match_order = score_order(data.pred_label, data.pred_score, data.num_classes, style="numpy")
    data.matched = match_predictions(data, data.match_order)
    return data


# --------------------------------------------------------------------------------------- ordering
def score_order(label: np.ndarray, score: np.ndarray, num_classes: int, style: str) -> np.ndarray:
    """Prediction indices class by class, each class by decreasing score with DETAD's tie order.

    ``style="numpy"``: ``np.argsort(scores)[::-1]`` (DETAD's matching); ``style="pandas"``: what
    ``DataFrame.sort_values(ascending=False)`` gives (DETAD's per-bucket AP): argsort of the reversed
    scores, mapped back and reversed. Scores of a class are taken in input order.
    """
    by_class = np.argsort(label, kind="stable")
    bounds = np.searchsorted(label[by_class], np.arange(num_classes + 1), side="left")
    parts = []
    for c in range(num_classes):
        idx = by_class[bounds[c]:bounds[c + 1]]
        scores = np.ascontiguousarray(score[idx])
        if style == "numpy":
            parts.append(idx[np.argsort(scores)[::-1]])
        else:
            reverse_rank = np.argsort(np.ascontiguousarray(scores[::-1]))
            parts.append(idx[(idx.size - 1 - reverse_rank)[::-1]])
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


# --------------------------------------------------------------------------------------- matching
def _candidate_pairs(data: DetadData, order: np.ndarray, gt_mask: np.ndarray | None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(position in ``order``, kept instance, tIoU, priority) of each prediction-instance pair of the same
    video and class with tIoU >= the lowest threshold. ``priority`` is the instance's place in DETAD's
    order for that prediction: ``np.argsort(tious)[::-1]`` over the video's instances of the class."""
    stride = int(max(data.pred_video.max(initial=0), data.gt_video.max(initial=0))) + 1
    key = data.pred_label[order] * stride + data.pred_video[order]
    gt_ids = np.arange(data.num_instances) if gt_mask is None else np.flatnonzero(gt_mask)
    gt_key = data.gt_label[gt_ids] * stride + data.gt_video[gt_ids]
    gt_order = gt_ids[np.argsort(gt_key, kind="stable")]  # instances grouped by key, in ground-truth order
    sorted_keys = data.gt_label[gt_order] * stride + data.gt_video[gt_order]
    lo = np.searchsorted(sorted_keys, key, side="left")
    count = np.searchsorted(sorted_keys, key, side="right") - lo
    min_tiou = float(data.tious.min())
    out: list[tuple[np.ndarray, ...]] = []
    for k in np.unique(count[count > 0]):
        rows = np.flatnonzero(count == k)
        step = max(1, CELL_CHUNK // int(k))
        for a in range(0, rows.size, step):
            r = rows[a:a + step]
            gts = gt_order[lo[r][:, None] + np.arange(k)[None, :]]
            p = order[r]
            iou = segment_tiou(data.pred_start[p][:, None], data.pred_end[p][:, None],
                               data.gt_start[gts], data.gt_end[gts])
            ranked = np.argsort(iou, axis=1)[:, ::-1]
            priority = np.empty_like(ranked)
            np.put_along_axis(priority, ranked, np.broadcast_to(np.arange(k), ranked.shape), axis=1)
            rr, cc = np.nonzero(iou >= min_tiou)
            out.append((r[rr], gts[rr, cc], iou[rr, cc], priority[rr, cc]))
    if not out:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0), empty
    return tuple(np.concatenate(col) for col in zip(*out, strict=True))  # type: ignore[return-value]


def match_predictions(data: DetadData, order: np.ndarray, gt_mask: np.ndarray | None = None) -> np.ndarray:
    """DETAD's greedy matching of the predictions ``order`` lists (processing order), for every threshold.

    Returns ``matched`` of shape ``(num_predictions, num_tious)`` indexed like the prediction arrays:
    the kept instance each prediction took, or -1. Only instances in ``gt_mask`` can be taken.
    Predictions of different (video, class) groups never compete, so step r matches the r-th prediction
    of every group at once.
    """
    num_thr = data.tious.size
    matched = np.full((data.pred_label.size, num_thr), -1, dtype=np.int64)
    pos, gts, ious, priority = _candidate_pairs(data, order, gt_mask)
    if pos.size == 0:
        return matched
    # Rank of each prediction within its group, in processing order.
    stride = int(max(data.pred_video.max(initial=0), data.gt_video.max(initial=0))) + 1
    key = data.pred_label[order] * stride + data.pred_video[order]
    by_key = np.argsort(key, kind="stable")
    new_group = np.r_[True, key[by_key][1:] != key[by_key][:-1]]
    first = np.maximum.accumulate(np.where(new_group, np.arange(key.size), 0))
    rank = np.empty(key.size, dtype=np.int64)
    rank[by_key] = np.arange(key.size) - first

    sort = np.lexsort((priority, pos, rank[pos]))
    pos, gts, ious, priority = pos[sort], gts[sort], ious[sort], priority[sort]
    above = ious[:, None] >= data.tious[None, :]
    pair_rank = rank[pos]
    steps = np.searchsorted(pair_rank, np.arange(int(pair_rank[-1]) + 2), side="left")
    taken = np.zeros((data.num_instances, num_thr), dtype=bool)
    for r in range(steps.size - 1):
        a, b = steps[r], steps[r + 1]
        if a == b:
            continue
        owner_start = np.flatnonzero(np.r_[True, pos[a + 1:b] != pos[a:b - 1]])
        free = above[a:b] & ~taken[gts[a:b]]
        # Pairs are sorted by priority within each prediction: the first free one wins.
        n = b - a
        first_free = np.minimum.reduceat(np.where(free, np.arange(n)[:, None], n), owner_start, axis=0)
        rows, cols = np.nonzero(first_free < n)
        won = a + first_free[rows, cols]
        taken[gts[won], cols] = True
        matched[order[pos[won]], cols] = gts[won]
    return matched


# --------------------------------------------------------------------------------------------- AP
def interpolated_ap(tp: np.ndarray, num_positives: int, normalizer: float | None) -> np.ndarray:
    """VOC interpolated AP per column of a ``(num_predictions, num_tious)`` true-positive table in rank order.

    ``normalizer`` N gives DETAD's normalized precision ``R*N / (R*N + FP)``; ``None`` gives plain
    ``TP / (TP + FP)``. No predictions: AP 0.
    """
    tp = np.ascontiguousarray(np.asarray(tp, dtype=bool).T)  # (num_tious, num_predictions): rows are contiguous
    tp_cum = np.cumsum(tp, axis=1, dtype=np.float64)
    fp_cum = np.arange(1, tp.shape[1] + 1, dtype=np.float64)[None, :] - tp_cum
    recall = tp_cum / num_positives
    scale = float(num_positives) if normalizer is None else float(normalizer)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = recall * scale / (recall * scale + fp_cum)
    zeros, ones = np.zeros((tp.shape[0], 1)), np.ones((tp.shape[0], 1))
    m_precision = np.hstack([zeros, precision, zeros])
    m_recall = np.hstack([zeros, recall, ones])
    envelope = np.maximum.accumulate(m_precision[:, ::-1], axis=1)[:, ::-1]
    steps = m_recall[:, 1:] - m_recall[:, :-1]
    return np.where(steps != 0, steps * envelope[:, 1:], 0.0).sum(axis=1)


def _bucket_of(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Bucket index per value as ``pandas.cut(..., include_lowest=True)`` bins it; -1 outside."""
    edges_arr = np.asarray(edges, dtype=np.float64)
    ids = np.searchsorted(edges_arr, values, side="left")
    ids[values == edges_arr[0]] = 1
    ids -= 1
    ids[(ids < 0) | (ids >= edges_arr.size - 1) | np.isnan(values)] = -1
    return ids


def overall_average_map(data: DetadData, normalized: bool = True) -> float:
    """DETAD's overall average mAP(_N): every kept instance, predictions in matching order."""
    counts = data.class_counts()
    normalizer = data.average_instances_per_class if normalized else None
    bounds = np.searchsorted(data.pred_label[data.match_order], np.arange(data.num_classes + 1))
    aps = []
    for c in np.flatnonzero(counts):
        idx = data.match_order[bounds[c]:bounds[c + 1]]
        aps.append(interpolated_ap(data.matched[idx] >= 0, int(counts[c]), normalizer).mean())
    return float(np.mean(aps))


def bucket_map(data: DetadData, in_bucket: np.ndarray, ap_order: np.ndarray,
               normalized: bool = True, ordered_matches: np.ndarray | None = None) -> np.ndarray | None:
    """mAP(_N) per tIoU of one bucket (``in_bucket`` over kept instances) with DETAD's ignore rule;
    ``None`` for an empty bucket. ``ap_order`` is :func:`score_order` with ``style="pandas"``;
    ``ordered_matches`` may pass ``data.matched[ap_order]`` when it is already at hand."""
    counts = data.class_counts(in_bucket)
    if not counts.any():
        return None
    normalizer = data.average_instances_per_class if normalized else None
    bounds = np.searchsorted(data.pred_label[ap_order], np.arange(data.num_classes + 1))
    ordered = data.matched[ap_order] if ordered_matches is None else ordered_matches
    aps = []
    for c in np.flatnonzero(counts):
        m = ordered[bounds[c]:bounds[c + 1]]
        hit = m >= 0
        inside = np.zeros_like(hit)
        inside[hit] = in_bucket[m[hit]]
        # Matched outside the bucket at any tIoU: ignored at every tIoU.
        keep = ~(hit & ~inside).any(axis=1)
        aps.append(interpolated_ap(inside[keep], int(counts[c]), normalizer))
    return np.mean(aps, axis=0)


def bucket_rows(data: DetadData, char: Characteristic, ap_order: np.ndarray,
                normalized: bool = True) -> list[dict[str, Any]]:
    """One row per bucket of ``char``: name, range, instances, share, average mAP(_N) and mAP per tIoU."""
    bucket = _bucket_of(data.values[char.name], char.edges)
    total = max(data.num_instances, 1)
    ordered = data.matched[ap_order]
    rows = []
    for b, name in enumerate(char.names):
        in_bucket = bucket == b
        count = int(in_bucket.sum())
        m_ap = bucket_map(data, in_bucket, ap_order, normalized, ordered)
        rows.append({"name": name, "min": float(char.edges[b]), "max": float(char.edges[b + 1]),
                     "num_instances": count, "share": count / total,
                     "average_mAP": None if m_ap is None else float(m_ap.mean()),
                     "mAP": None if m_ap is None else [float(x) for x in m_ap]})
    return rows


# ------------------------------------------------------------------------------------ the analysis
def _resolve_settings(settings: str | DetadSettings) -> DetadSettings:
    if isinstance(settings, DetadSettings):
        return settings
    if settings not in DETAD_SETTINGS:
        raise TspVideoError(f"unknown DETAD settings {settings!r}; use one of {sorted(DETAD_SETTINGS)}")
    return DETAD_SETTINGS[settings]


def sensitivity_analysis(ground_truth: JsonSource | GroundTruth | DetadData,
                         predictions: JsonSource | Predictions | None = None,
                         settings: str | DetadSettings = "activitynet", tious: Any = None,
                         characteristics: list[str] | tuple[str, ...] | None = None,
                         precision: str = "normalized", subset: str | None = None,
                         unknown_videos: str = "error") -> dict[str, Any]:
    """DETAD's sensitivity analysis: average mAP_N per bucket of each characteristic (module doc).

    ``settings`` is ``"activitynet"`` or ``"thumos14"`` (DETAD's tIoUs and bins) or a
    :class:`DetadSettings`; ``tious`` overrides its thresholds; ``characteristics`` picks some of
    ``coverage``, ``length``, ``num-instances``; ``precision`` is ``"normalized"`` (DETAD) or
    ``"plain"``. Pass a :class:`DetadData` from :func:`prepare_detad` to reuse a matching. Returns
    ``{"settings", "tiou", "precision", "N", "average_mAP", "num_instances", "dropped_instances",
    "characteristics_source", "characteristics": {name: [{"name", "min", "max", "num_instances",
    "share", "average_mAP", "mAP"}]}, "warnings"}``; values are fractions, ``average_mAP`` ``None``
    for an empty bucket.
    """
    config = _resolve_settings(settings)
    if precision not in PRECISIONS:
        raise TspVideoError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    wanted = config.characteristics
    if characteristics is not None:
        known = {c.name: c for c in config.characteristics}
        unknown = [name for name in characteristics if name not in known]
        if unknown:
            raise TspVideoError(f"unknown DETAD characteristic(s) {unknown}; use {sorted(known)}")
        wanted = tuple(known[name] for name in characteristics)
    if isinstance(ground_truth, DetadData):
        data = ground_truth
    else:
        if predictions is None:
            raise TspVideoError("sensitivity_analysis needs predictions")
        data = prepare_detad(ground_truth, predictions, config.tious if tious is None else tious, subset,
                             unknown_videos)
    normalized = precision == "normalized"
    ap_order = score_order(data.pred_label, data.pred_score, data.num_classes, style="pandas")
    result = {char.name: bucket_rows(data, char, ap_order, normalized) for char in wanted}
    return {
        "settings": config.name, "tiou": [float(t) for t in data.tious], "precision": precision,
        "N": data.average_instances_per_class,
        "average_mAP": overall_average_map(data, normalized) if data.num_instances else None,
        "num_instances": data.num_instances, "num_classes": data.num_classes,
        "dropped_instances": dict(data.dropped), "characteristics_source": data.characteristics_source,
        "characteristics": result, "warnings": list(data.warnings),
    }


def _range(row: dict[str, Any], first: bool) -> str:
    """``(lo,hi]`` as pandas.cut bins it (``[lo,hi]`` for the first bucket, ``>lo`` when open)."""
    if np.isinf(row["max"]):
        return f">{row['min']:g}"
    return f"{'[' if first else '('}{row['min']:g},{row['max']:g}]"


def format_sensitivity_table(analysis: dict[str, Any]) -> str:
    """One block per characteristic, as Table 8: average mAP(_N) % and share of instances % per bucket."""
    label = "avg mAP_N %" if analysis["precision"] == "normalized" else "avg mAP %  "
    lines = [f"DETAD sensitivity ({analysis['settings']} settings, {analysis['precision']} precision, "
             f"N = {analysis['N']:.2f} instances per class; overall {label.strip()}: "
             + ("n/a" if analysis["average_mAP"] is None else f"{100 * analysis['average_mAP']:.2f}") + ")"]
    for name, rows in analysis["characteristics"].items():
        width = max(9, *(len(_range(r, i == 0)) + 2 for i, r in enumerate(rows)))
        lines.append(f"{name:<13}" + "".join(f"{r['name']:>{width}}" for r in rows))
        lines.append(f"{'  range':<13}" + "".join(
            f"{_range(r, i == 0):>{width}}" for i, r in enumerate(rows)))
        lines.append(f"{label:<13}" + "".join(
            f"{'n/a' if r['average_mAP'] is None else format(100 * r['average_mAP'], '.2f'):>{width}}"
            for r in rows))
        lines.append(f"{'instances %':<13}" + "".join(f"{100 * r['share']:>{width}.1f}" for r in rows))
    dropped = analysis["dropped_instances"]
    if dropped["zero_length"] or dropped["coverage_above_1"]:
        lines.append(f"dropped as DETAD does: {dropped['zero_length']} zero-length instances, "
                     f"{dropped['coverage_above_1']} with coverage above 1")
    return "\n".join(lines)
