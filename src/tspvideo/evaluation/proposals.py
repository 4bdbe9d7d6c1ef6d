"""Action proposal evaluation: average recall vs average number of proposals per video (AR-AN).

The ActivityNet proposal protocol, as its official evaluation computes it:

1. each video's proposals are sorted by score, highest first (ties keep the input order);
2. the proposals are thinned so that the *average* number per video is at most ``max_avg_proposals``
   (100): with V ground-truth videos and N proposals in all, each video keeps its top
   ``floor(n_v * 100 V / N)`` proposals (never more than it has); N_kept is the total kept;
3. the curve has 100 points: at point k (k = 1..100) each video uses its top
   ``floor(n_v_kept * k/100 * 100 V / N_kept)`` proposals, which makes the average number of proposals
   per video AN_k = k (1..100);
4. at each point and tIoU threshold (0.5:0.05:0.95), recall = share of ground-truth instances
   with at least one used proposal of tIoU >= threshold (a proposal may cover several instances:
   no one-to-one matching, as in the official code); the average recall (AR) averages over thresholds;
5. AR@1, AR@10, AR@100 are the AR at AN = 1, 10, 100; AUC is the trapezoidal area under the AR-AN
   curve (from AN=1 to AN=100) divided by 100, so it is a fraction in [0, 1] (papers print it x100);
   as in the official code the curve starts at AN=1, so perfect proposals give an AUC of 0.99.

Counts use floating-point products truncated to integers, in the same order as the official code,
so that AR values agree with it to the last digit. Labels are ignored. Ground-truth videos without
proposals count with zero recall. Predictions for unknown videos are an error by default.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tspvideo.core.errors import TspVideoError
from tspvideo.evaluation.detection import ACTIVITYNET_TIOUS, TIOU_TOLERANCE, _map_videos
from tspvideo.evaluation.io import (
    GroundTruth,
    JsonSource,
    Predictions,
    check_tious,
    load_ground_truth,
    load_predictions,
    segment_tiou,
)

__all__ = ["evaluate_proposals", "format_proposal_table"]

CURVE_POINTS = 100
# Instances processed per chunk when counting recall: bounds memory to ~chunk * tious * points bytes.
_CHUNK = 4096


def _first_hits(gt: GroundTruth, video_first: np.ndarray, n_keep: np.ndarray, start: np.ndarray,
                end: np.ndarray, tious: np.ndarray) -> np.ndarray:
    """For each instance and threshold, the rank of the best-ranked kept proposal of its video with
    tIoU >= threshold (``n_keep`` of the video + 1 when there is none)."""
    never = np.iinfo(np.int64).max
    hits = np.full((gt.num_instances, tious.size), never, dtype=np.int64)
    counts = n_keep[gt.video]
    has = np.flatnonzero(counts > 0)
    if has.size == 0:
        return hits
    counts = counts[has]
    offsets = np.cumsum(counts) - counts
    owner = np.repeat(np.arange(has.size), counts)
    rank = np.arange(int(counts.sum())) - offsets[owner]
    gi = has[owner]
    prop = video_first[gt.video[gi]] + rank
    iou = segment_tiou(start[prop], end[prop], gt.start[gi], gt.end[gi])
    hit = (iou[:, None] >= tious[None, :] - TIOU_TOLERANCE) & (iou[:, None] > 0)
    ranked = np.where(hit, rank[:, None], never)
    hits[has] = np.minimum.reduceat(ranked, offsets, axis=0)
    return hits


def evaluate_proposals(ground_truth: JsonSource | GroundTruth, proposals: JsonSource | Predictions,
                       max_avg_proposals: int = 100, tious: Any = ACTIVITYNET_TIOUS,
                       subset: str | None = None, unknown_videos: str = "error") -> dict[str, Any]:
    """AR-AN curve, AR@1/10/100 and AUC (fractions in [0, 1]) by the ActivityNet proposal protocol.

    ``proposals`` is ``{"results": {video: [{"segment": [s, e], "score": x}, ...]}}`` (labels are
    optional and ignored) or a path to such a file. ``unknown_videos``: ``"error"`` (default) or
    ``"ignore"`` for proposals of videos absent from the ground truth. Returns a dict with keys
    ``AR@1``, ``AR@10``, ``AR@100`` (``None`` beyond ``max_avg_proposals``), ``AUC``, ``curve``
    (``average_number_of_proposals``, ``average_recall``, ``recall`` per tIoU, ``tiou``) and counts.
    """
    if unknown_videos not in ("error", "ignore"):
        raise TspVideoError(f"unknown_videos must be 'error' or 'ignore' for proposals, got {unknown_videos!r}")
    if not (isinstance(max_avg_proposals, int | np.integer) and max_avg_proposals >= 1):
        raise TspVideoError(f"max_avg_proposals must be a positive integer, got {max_avg_proposals!r}")
    tious = check_tious(tious)
    gt = ground_truth if isinstance(ground_truth, GroundTruth) else load_ground_truth(ground_truth, subset)
    pred = (proposals if isinstance(proposals, Predictions)
            else load_predictions(proposals, require_label=False))
    if gt.num_instances == 0:
        raise TspVideoError("the ground truth has no annotated instance"
                            + (f" in subset {subset!r}" if subset else "") + ": recall is undefined")
    warnings: list[str] = []
    video, keep = _map_videos(gt, pred, unknown_videos, warnings)
    num_videos = len(gt.video_ids)

    idx = np.flatnonzero(keep)
    idx = idx[np.lexsort((idx, -pred.score[idx], video[idx]))]  # by video, score (desc), input order
    start, end = pred.start[idx], pred.end[idx]
    n_all = np.bincount(video[idx], minlength=num_videos)
    video_first = np.cumsum(n_all) - n_all
    total_all = int(n_all.sum())

    points = np.arange(1, CURVE_POINTS + 1) / float(CURVE_POINTS)
    if total_all == 0:
        warnings.append("no proposal for any ground-truth video: recall is 0")
        n_keep = np.zeros(num_videos, dtype=np.int64)
        total_kept = 0
        scale = np.zeros_like(points)
    else:
        ratio = max_avg_proposals * float(num_videos) / total_all
        n_keep = np.minimum((n_all * ratio).astype(np.int64), n_all)
        total_kept = int(n_keep.sum())
        scale = points * (max_avg_proposals * float(num_videos) / max(total_kept, 1))
    without = int((n_all == 0).sum())
    if without:
        warnings.append(f"{without} of {num_videos} ground-truth videos have no proposal (recall 0 there)")

    hits = _first_hits(gt, video_first, n_keep, start, end, tious)
    recalled = np.zeros((tious.size, CURVE_POINTS), dtype=np.int64)
    for c0 in range(0, gt.num_instances, _CHUNK):
        sl = slice(c0, c0 + _CHUNK)
        n_v = n_keep[gt.video[sl]]
        used = np.minimum((n_v[:, None] * scale[None, :]).astype(np.int64), n_v[:, None])  # (G, points)
        recalled += (hits[sl][:, :, None] < used[:, None, :]).sum(axis=0)
    recall = recalled / float(gt.num_instances)
    average_recall = recall.mean(axis=0)
    avg_num = scale * (total_kept / float(num_videos))

    if total_kept > 0:
        area = float(np.sum((avg_num[1:] - avg_num[:-1]) * (average_recall[1:] + average_recall[:-1]) / 2))
        auc = area / float(avg_num[-1])
    else:
        auc = 0.0

    def ar_at(n: int) -> float | None:
        if n > max_avg_proposals:
            return None
        if total_kept == 0:
            return 0.0
        return float(np.interp(n, avg_num, average_recall))

    return {
        "AR@1": ar_at(1),
        "AR@10": ar_at(10),
        "AR@100": ar_at(100),
        "AUC": auc,
        "curve": {
            "average_number_of_proposals": [float(x) for x in avg_num],
            "average_recall": [float(x) for x in average_recall],
            "tiou": [float(t) for t in tious],
            "recall": [[float(x) for x in row] for row in recall],
        },
        "max_avg_proposals": int(max_avg_proposals),
        "num_videos": num_videos,
        "num_instances": gt.num_instances,
        "num_proposals": total_all,
        "num_proposals_used": total_kept,
        "warnings": warnings,
    }


def format_proposal_table(result: dict[str, Any]) -> str:
    """AR@1 / AR@10 / AR@100 / AUC in percent, as papers print them."""
    cells = []
    for key in ("AR@1", "AR@10", "AR@100", "AUC"):
        value = result.get(key)
        cells.append((key, "n/a" if value is None else f"{100 * value:.2f}"))
    header = "  ".join(f"{k:>7}" for k, _ in cells)
    values = "  ".join(f"{v:>7}" for _, v in cells)
    return f"{header}\n{values}   (%)"
