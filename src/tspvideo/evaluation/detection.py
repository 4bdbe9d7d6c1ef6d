"""Temporal action detection mAP, as the ActivityNet challenge evaluation defines it.

Protocol (per class, for each tIoU threshold):

1. the class's predictions over all videos are sorted by score, highest first. **Ties** in score keep
   the input order: videos in the order of the predictions JSON, then the order of each video's list;
2. each prediction, in that order, is matched to the unmatched ground-truth instance of the same video
   and class with the highest tIoU, provided that tIoU >= threshold (equality counts as a match, with a
   1e-9 tolerance for floating-point rounding). Equal tIoUs go to the instance listed first in the
   ground truth. A matched prediction is a true positive, any other a false positive, so a duplicate
   of an already matched detection is a false positive;
3. AP is the interpolated average precision of the official evaluation: precision is made monotone
   (the maximum precision at any equal or higher recall) and summed over the recall steps, i.e.
   ``AP = sum over true positives of envelope_precision / number_of_ground_truth_instances``.

**Zero-length instances** (``start == end``, a few in ActivityNet v1.3) follow the official code by
default (``zero_length="official"``): its tIoU of a zero-length prediction and a zero-length instance is
0/0 = NaN, which its descending sort puts first and its threshold test never rejects, so such a
prediction matches any unmatched zero-length instance of its video and class, wherever both lie, at
every threshold. With ``zero_length="strict"`` such a pair has tIoU 0 and zero-length instances can
never be matched (they stay in the number of positives, capping recall below 1).

mAP is the mean AP over the classes present in the ground truth (of the chosen subset); the average
mAP is the mean of mAP over the thresholds. Predictions whose label is not a ground-truth class
cannot be scored and are left out (reported in ``warnings``). Predictions for videos that are not in
the ground truth at all are an error by default (``unknown_videos``); predictions for videos of
another subset are left out and reported.

Vectorized: predictions of different (video, class) groups never compete for the same instance, so
the greedy matching runs in rank steps — step r matches the r-th best prediction of every group at
once, for every threshold — and the loop length is the largest number of predictions in one group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tspvideo.core.errors import TspVideoError
from tspvideo.evaluation.io import (
    GroundTruth,
    JsonSource,
    Predictions,
    check_tious,
    load_ground_truth,
    load_predictions,
    segment_tiou,
)

__all__ = [
    "ACTIVITYNET_TIOUS",
    "THUMOS14_TIOUS",
    "THUMOS14_REPORTED_TIOUS",
    "PROTOCOLS",
    "TIOU_TOLERANCE",
    "DetectionResult",
    "DetectionMatches",
    "UnknownVideosError",
    "evaluate_detection",
    "match_detections",
    "average_precision",
    "greedy_match",
    "format_detection_table",
]

ACTIVITYNET_TIOUS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 10) for i in range(10))  # 0.5:0.05:0.95
THUMOS14_TIOUS: tuple[float, ...] = tuple(round(0.1 * i, 10) for i in range(1, 8))  # 0.1:0.1:0.7
THUMOS14_REPORTED_TIOUS: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7)
# A tIoU that equals the threshold counts as a match; this absorbs rounding such as 0.6 vs 0.6000000000000001.
TIOU_TOLERANCE = 1e-9

# Headline numbers of each benchmark: ActivityNet reports the average mAP over 0.5:0.05:0.95,
# THUMOS14 the mAP at 0.5 (tables show 0.3..0.7 and their average).
PROTOCOLS: dict[str, dict[str, Any]] = {
    "activitynet": {"tious": ACTIVITYNET_TIOUS, "reported": ACTIVITYNET_TIOUS, "headline": "average_mAP"},
    "thumos14": {"tious": THUMOS14_TIOUS, "reported": THUMOS14_REPORTED_TIOUS, "headline": "mAP@0.5"},
}

UNKNOWN_VIDEO_POLICIES = ("error", "false_positive", "ignore")
ZERO_LENGTH_RULES = ("official", "strict")
# tIoU given to a zero-length prediction on a zero-length instance under the official rule: above any
# real tIoU, as the official code's NaN sorts first and passes every threshold.
ZERO_LENGTH_MATCH_TIOU = 2.0
# Prediction-instance pairs examined per chunk (bounds memory to ~100 MB on dense THUMOS14-like input).
PAIR_CHUNK = 1 << 21


@dataclass
class DetectionResult:
    """mAP per tIoU threshold (fractions in [0, 1]), their average, and AP per class."""

    tiou: np.ndarray
    mAP: np.ndarray
    average_mAP: float
    per_class: dict[str, np.ndarray]
    num_videos: int = 0
    num_instances: int = 0
    num_predictions: int = 0
    videos_without_predictions: int = 0
    warnings: list[str] = field(default_factory=list)

    def mAP_at(self, tiou: float) -> float:
        """mAP at one of the evaluated thresholds (KeyError if it was not evaluated)."""
        hits = np.flatnonzero(np.isclose(self.tiou, tiou, atol=1e-9))
        if hits.size == 0:
            raise KeyError(f"tIoU {tiou} was not evaluated (evaluated: {self.tiou.tolist()})")
        return float(self.mAP[hits[0]])

    def average_over(self, tious: Any) -> float:
        """Mean mAP over a subset of the evaluated thresholds (e.g. THUMOS14's 0.3..0.7)."""
        return float(np.mean([self.mAP_at(t) for t in np.atleast_1d(tious)]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers: ``tiou``, ``mAP`` (one per tIoU), ``average_mAP``, ``per_class``, counts."""
        return {
            "tiou": [float(t) for t in self.tiou],
            "mAP": [float(m) for m in self.mAP],
            "average_mAP": float(self.average_mAP),
            "per_class": {name: [float(a) for a in ap] for name, ap in self.per_class.items()},
            "num_videos": self.num_videos,
            "num_instances": self.num_instances,
            "num_predictions": self.num_predictions,
            "videos_without_predictions": self.videos_without_predictions,
            "warnings": list(self.warnings),
        }


@dataclass
class DetectionMatches:
    """Everything the matching step produced, in processing order (class, then score, then input).

    ``matched[i, k]`` is the ground-truth instance (index into ``gt`` arrays) matched by the i-th
    prediction at threshold ``tious[k]``, or -1 for a false positive. ``pred_class`` indexes
    ``gt.classes``; ``class_bounds[c]:class_bounds[c+1]`` is class c's slice.
    """

    gt: GroundTruth
    tious: np.ndarray
    pred_class: np.ndarray
    pred_video: np.ndarray
    pred_score: np.ndarray
    matched: np.ndarray
    class_bounds: np.ndarray
    num_predictions: int
    videos_without_predictions: int
    warnings: list[str]


def greedy_match(pred_key: np.ndarray, pred_start: np.ndarray, pred_end: np.ndarray,
                 gt_key: np.ndarray, gt_start: np.ndarray, gt_end: np.ndarray,
                 tious: np.ndarray, tolerance: float = TIOU_TOLERANCE, zero_length: str = "official") -> np.ndarray:
    """Greedy one-to-one matching of predictions to ground truth within groups, for every threshold.

    Predictions must be given in processing order (best first within each group); a group is a
    (video, class) key. Each prediction takes the unmatched instance of its group with the highest
    tIoU >= threshold (ties: lowest instance index). ``zero_length`` is the rule for zero-length
    pairs (see the module doc). Returns ``matched`` of shape ``(num_predictions, num_tious)`` with
    instance indices or -1.
    """
    if zero_length not in ZERO_LENGTH_RULES:
        raise TspVideoError(f"unknown zero-length rule {zero_length!r}; choose one of {', '.join(ZERO_LENGTH_RULES)}")
    num_pred, num_thr = pred_key.size, tious.size
    matched = np.full((num_pred, num_thr), -1, dtype=np.int64)
    if num_pred == 0 or gt_key.size == 0:
        return matched
    gt_order = np.argsort(gt_key, kind="stable")
    gt_sorted_keys = gt_key[gt_order]
    lo = np.searchsorted(gt_sorted_keys, pred_key, side="left")
    n_gt = np.searchsorted(gt_sorted_keys, pred_key, side="right") - lo

    # Rank of each prediction inside its group, in processing order.
    by_key = np.argsort(pred_key, kind="stable")
    keys = pred_key[by_key]
    new_group = np.r_[True, keys[1:] != keys[:-1]]
    group_first = np.maximum.accumulate(np.where(new_group, np.arange(num_pred), 0))
    rank = np.empty(num_pred, dtype=np.int64)
    rank[by_key] = np.arange(num_pred) - group_first

    # Only predictions whose group has instances can match; order them by rank so each step is a slice.
    cand = np.flatnonzero(n_gt > 0)
    if cand.size == 0:
        return matched
    cand = cand[np.argsort(rank[cand], kind="stable")]
    pair_owner, pair_gt, pair_iou = _overlapping_pairs(cand, lo, n_gt, gt_order, pred_start, pred_end,
                                                       gt_start, gt_end, float(tious.min()) - tolerance,
                                                       zero_length_match=zero_length == "official")
    if pair_owner.size == 0:
        return matched
    # Keep the predictions that overlap some instance enough to match at the lowest threshold.
    counts = np.bincount(pair_owner, minlength=cand.size)
    alive = counts > 0
    pair_owner = (np.cumsum(alive) - 1)[pair_owner]
    cand, counts = cand[alive], counts[alive]
    offsets = np.cumsum(counts) - counts
    total = int(counts.sum())
    above = pair_iou[:, None] >= tious[None, :] - tolerance

    cand_rank = rank[cand]
    steps = np.searchsorted(cand_rank, np.arange(int(cand_rank[-1]) + 2), side="left")
    pair_steps = np.r_[offsets, total][steps]
    taken = np.zeros((gt_key.size, num_thr), dtype=bool)
    for r in range(steps.size - 1):
        c0, c1 = steps[r], steps[r + 1]
        if c0 == c1:
            continue
        p0, p1 = pair_steps[r], pair_steps[r + 1]
        n = p1 - p0
        seg_starts = offsets[c0:c1] - p0
        owner = pair_owner[p0:p1] - c0
        gts = pair_gt[p0:p1]
        free = above[p0:p1] & ~taken[gts]
        value = np.where(free, pair_iou[p0:p1, None], -1.0)
        best = np.maximum.reduceat(value, seg_starts, axis=0)
        is_best = free & (value == best[owner])
        first = np.minimum.reduceat(np.where(is_best, np.arange(n)[:, None], n), seg_starts, axis=0)
        rows, cols = np.nonzero(first < n)
        won = gts[first[rows, cols]]
        taken[won, cols] = True
        matched[cand[c0 + rows], cols] = won
    return matched


def _overlapping_pairs(cand: np.ndarray, lo: np.ndarray, n_gt: np.ndarray, gt_order: np.ndarray,
                       pred_start: np.ndarray, pred_end: np.ndarray, gt_start: np.ndarray, gt_end: np.ndarray,
                       min_iou: float, chunk: int | None = None,
                       zero_length_match: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(candidate index, instance, tIoU) of every prediction-instance pair of the same group with
    tIoU >= ``min_iou``, in candidate order. Built in chunks of about ``chunk`` pairs: dense videos
    (THUMOS14: thousands of predictions, dozens of instances per class) would otherwise need all
    pairs in memory at once, though most of them do not overlap at all."""
    chunk = chunk or PAIR_CHUNK
    counts = n_gt[cand]
    ends = np.cumsum(counts)
    bounds = np.unique(np.r_[0, np.searchsorted(ends, np.arange(chunk, int(ends[-1]), chunk)), cand.size])
    owners, gts, ious = [], [], []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        c_counts = counts[a:b]
        offsets = np.cumsum(c_counts) - c_counts
        owner = np.repeat(np.arange(a, b), c_counts)
        pred = cand[owner]
        gt = gt_order[lo[pred] + np.arange(int(c_counts.sum())) - offsets[owner - a]]
        iou = segment_tiou(pred_start[pred], pred_end[pred], gt_start[gt], gt_end[gt])
        if zero_length_match:
            both_empty = (pred_end[pred] == pred_start[pred]) & (gt_end[gt] == gt_start[gt])
            iou = np.where(both_empty, ZERO_LENGTH_MATCH_TIOU, iou)
        keep = (iou >= min_iou) & (iou > 0)  # no overlap never matches, however small the threshold
        owners.append(owner[keep])
        gts.append(gt[keep])
        ious.append(iou[keep])
    return np.concatenate(owners), np.concatenate(gts), np.concatenate(ious)


def average_precision(matched_tp: np.ndarray, num_positives: int | np.ndarray,
                      keep: np.ndarray | None = None) -> np.ndarray:
    """Interpolated AP per column of a ``(num_predictions, num_tious)`` true-positive table.

    Rows are in score order (best first). ``keep`` (same shape) drops rows from a column entirely —
    neither true nor false positive — as the length breakdown needs. AP is 0 without predictions
    and NaN when there are no positives.
    """
    tp = matched_tp if keep is None else (matched_tp & keep)
    num_positives = np.asarray(num_positives, dtype=np.float64)
    if tp.shape[0] == 0:
        return np.where(num_positives > 0, 0.0, np.nan) * np.ones(tp.shape[1])
    seen = np.arange(1, tp.shape[0] + 1)[:, None] if keep is None else np.cumsum(keep, axis=0)
    precision = np.cumsum(tp, axis=0) / np.maximum(seen, 1)
    if keep is not None:
        precision = np.where(keep, precision, 0.0)  # dropped rows must not raise the envelope
    envelope = np.maximum.accumulate(precision[::-1], axis=0)[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(num_positives > 0, (envelope * tp).sum(axis=0) / num_positives, np.nan)


def _summarise(names: list[str], what: str, limit: int = 5) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{len(names)} {what}: {shown}{more}"


class UnknownVideosError(TspVideoError):
    """Predictions for videos the ground truth does not have, under the ``unknown_videos="error"`` policy.

    ``summary`` says which; the message adds what to do in the library's terms (the CLI words it in its own).
    """

    def __init__(self, summary: str) -> None:
        self.summary = summary
        super().__init__(f"{summary} (check the ids, e.g. a 'v_' prefix, or choose another unknown_videos "
                         "policy)")


def _map_videos(gt: GroundTruth, pred: Predictions, unknown_videos: str, warnings: list[str],
                other_subsets: str = "ignore") -> tuple[np.ndarray, np.ndarray]:
    """Map prediction videos onto ground-truth video indices; returns (video index, keep mask).

    Videos without ground truth that are scored get their own index past the ground truth's. Predictions for
    videos of another subset are ignored, or counted as false positives (``other_subsets="false_positive"``,
    as DETAD does).
    """
    if unknown_videos not in UNKNOWN_VIDEO_POLICIES:
        raise TspVideoError(f"unknown_videos must be one of {UNKNOWN_VIDEO_POLICIES}, got {unknown_videos!r}")
    index = {vid: i for i, vid in enumerate(gt.video_ids)}
    mapping = np.empty(len(pred.video_ids), dtype=np.int64)
    usable = np.ones(len(pred.video_ids), dtype=bool)
    unknown: list[str] = []
    other: list[str] = []
    # Only videos that carry predictions matter: an empty list for any id is harmless.
    has_predictions = np.bincount(pred.video, minlength=len(pred.video_ids)) > 0
    for k, vid in enumerate(pred.video_ids):
        if vid in index:
            mapping[k] = index[vid]
            continue
        # As false positives they need a video with no instances: give each one past the end.
        mapping[k] = len(gt.video_ids) + k
        if not has_predictions[k]:
            usable[k] = False
        elif vid in gt.other_videos:
            other.append(vid)
            usable[k] = other_subsets == "false_positive"
        else:
            unknown.append(vid)
            usable[k] = unknown_videos == "false_positive"
    if unknown:
        message = _summarise(unknown, "prediction video ids not in the ground truth")
        if unknown_videos == "error":
            raise UnknownVideosError(message)
        action = "counted as false positives" if unknown_videos == "false_positive" else "ignored"
        warnings.append(f"{message}; {action}")
    if other:
        action = "false positives (as in DETAD)" if other_subsets == "false_positive" else "ignored"
        warnings.append(_summarise(other, f"prediction videos outside subset {gt.subset!r}") + f"; {action}")
    return mapping[pred.video], usable[pred.video]


def match_detections(ground_truth: JsonSource | GroundTruth, predictions: JsonSource | Predictions,
                     tious: Any = ACTIVITYNET_TIOUS, subset: str | None = None,
                     unknown_videos: str = "error", zero_length: str = "official") -> DetectionMatches:
    """Validate inputs and run the matching step of :func:`evaluate_detection`."""
    tious = check_tious(tious)
    gt = ground_truth if isinstance(ground_truth, GroundTruth) else load_ground_truth(ground_truth, subset)
    pred = predictions if isinstance(predictions, Predictions) else load_predictions(predictions)
    if pred.label is None:
        raise TspVideoError("predictions have no 'label': detection needs a class label per prediction")
    warnings: list[str] = []
    video, keep = _map_videos(gt, pred, unknown_videos, warnings)

    class_index = {c: i for i, c in enumerate(gt.classes)}
    label = np.asarray([class_index.get(lab, -1) for lab in pred.label], dtype=np.int64).reshape(-1)
    no_gt = keep & (label < 0)
    if no_gt.any():
        names = sorted({pred.label[i] for i in np.flatnonzero(no_gt)})
        warnings.append(_summarise(names, "predicted labels with no ground-truth instance")
                        + f"; their {int(no_gt.sum())} predictions are left out of mAP")
    keep &= label >= 0
    idx = np.flatnonzero(keep)
    # Processing order: class, then score (highest first), then input order (the tie rule).
    idx = idx[np.lexsort((idx, -pred.score[idx], label[idx]))]
    pred_class, pred_video = label[idx], video[idx]

    stride = len(gt.video_ids) + len(pred.video_ids) + 1
    matched = greedy_match(pred_class * stride + pred_video, pred.start[idx], pred.end[idx],
                           gt.label * stride + gt.video, gt.start, gt.end, tious, zero_length=zero_length)
    with_pred = np.zeros(len(gt.video_ids), dtype=bool)
    with_pred[pred_video[pred_video < len(gt.video_ids)]] = True
    return DetectionMatches(
        gt=gt, tious=tious, pred_class=pred_class, pred_video=pred_video, pred_score=pred.score[idx],
        matched=matched,
        class_bounds=np.searchsorted(pred_class, np.arange(len(gt.classes) + 1), side="left"),
        num_predictions=int(idx.size),
        videos_without_predictions=int((~with_pred).sum()),
        warnings=warnings,
    )


def per_class_ap(matches: DetectionMatches, gt_mask: np.ndarray | None = None) -> np.ndarray:
    """AP table ``(num_classes, num_tious)``; with ``gt_mask`` only those instances count as positives
    and predictions matched to other instances are ignored (neither true nor false positives)."""
    gt = matches.gt
    in_scope = np.ones(gt.num_instances, dtype=bool) if gt_mask is None else gt_mask
    npos = np.bincount(gt.label[in_scope], minlength=len(gt.classes))
    matched = matches.matched
    hit = matched >= 0
    scoped = np.zeros_like(hit)
    scoped[hit] = in_scope[matched[hit]]
    keep = None if gt_mask is None else ~(hit & ~scoped)
    ap = np.full((len(gt.classes), matches.tious.size), np.nan)
    for c in range(len(gt.classes)):
        lo, hi = matches.class_bounds[c], matches.class_bounds[c + 1]
        ap[c] = average_precision(scoped[lo:hi], npos[c], None if keep is None else keep[lo:hi])
    return ap


def evaluate_detection(ground_truth: JsonSource | GroundTruth, predictions: JsonSource | Predictions,
                       tious: Any = ACTIVITYNET_TIOUS, subset: str | None = None,
                       unknown_videos: str = "error", zero_length: str = "official") -> DetectionResult:
    """Detection mAP per tIoU, their average and AP per class (ActivityNet protocol, see module doc).

    ``ground_truth`` / ``predictions`` are the parsed ActivityNet JSON objects (or paths to them).
    ``subset`` keeps the ground-truth videos of that subset (e.g. ``"validation"``); ``None`` keeps
    all. ``unknown_videos`` says what to do with predictions for videos absent from the ground truth:
    ``"error"`` (default), ``"false_positive"`` (what the official code does) or ``"ignore"``.
    ``zero_length``: ``"official"`` (default) or ``"strict"``, how zero-length instances are matched
    (see the module doc).
    """
    matches = match_detections(ground_truth, predictions, tious, subset, unknown_videos, zero_length)
    gt = matches.gt
    if not gt.classes:
        raise TspVideoError("the ground truth has no annotated instance"
                            + (f" in subset {subset!r}" if subset else "") + ": mAP is undefined")
    ap = per_class_ap(matches)
    mean_ap = ap.mean(axis=0)
    return DetectionResult(
        tiou=matches.tious, mAP=mean_ap, average_mAP=float(mean_ap.mean()),
        per_class={name: ap[c] for c, name in enumerate(gt.classes)},
        num_videos=len(gt.video_ids), num_instances=gt.num_instances,
        num_predictions=matches.num_predictions,
        videos_without_predictions=matches.videos_without_predictions,
        warnings=matches.warnings,
    )


def format_detection_table(result: DetectionResult, protocol: str | None = None) -> str:
    """A plain-text table of mAP (%) per tIoU and the headline number(s)."""
    if protocol == "thumos14":
        shown = [t for t in THUMOS14_REPORTED_TIOUS if np.isclose(result.tiou, t, atol=1e-9).any()]
    else:
        shown = [float(t) for t in result.tiou]
    header = "tIoU  " + " ".join(f"{t:>6.2f}" for t in shown) + "     avg"
    avg = result.average_over(shown) if shown else result.average_mAP
    values = "mAP % " + " ".join(f"{100 * result.mAP_at(t):>6.2f}" for t in shown) + f"  {100 * avg:>6.2f}"
    lines = [header, values]
    if protocol == "thumos14" and np.isclose(result.tiou, 0.5, atol=1e-9).any():
        lines.append(f"mAP@0.5: {100 * result.mAP_at(0.5):.2f}%   (average mAP over 0.3:0.1:0.7: "
                     f"{100 * avg:.2f}%)")
    else:
        lines.append(f"average mAP: {100 * result.average_mAP:.2f}%")
    return "\n".join(lines)
