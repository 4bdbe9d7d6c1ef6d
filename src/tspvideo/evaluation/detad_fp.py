"""DETAD's false-positive profile: what the top predictions are, and what removing each error would gain.

As DETAD's ``false_positive_analysis.py`` computes it, on the data of :func:`tspvideo.evaluation.detad.prepare_detad`:

1. each class keeps its ``int(10 * G_j)`` best predictions (``G_j``: its kept instances), which are then
   matched again (DETAD's matching, module :mod:`~tspvideo.evaluation.detad`);
2. at each tIoU, a prediction that matched is a **true positive**; otherwise, with ``t`` the highest tIoU
   with any instance of its video (of any class) and ``y`` that instance's label (the first such
   instance): ``t >= tIoU`` → **double detection** when ``y`` is the predicted label, else **wrong label**;
   ``0.1 <= t < tIoU`` → **localization** error (same label) or **confusion** (other label); otherwise,
   or when the video has no instance, **background**;
3. the profile: per class, its kept predictions by decreasing score cut in blocks of ``G_j``; block g of
   every class forms ``(g+1)G``; the share of each type in it is averaged over tIoUs;
4. the gain of an error type: average mAP_N with the predictions of that type at each tIoU removed,
   minus the average mAP_N of the kept predictions.

Ties in score follow the numpy / pandas sort calls DETAD makes; its ``nlargest`` cut keeps, among equal
scores, the earlier prediction (input order), as current pandas does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tspvideo.evaluation.detad import (
    DetadData,
    interpolated_ap,
    match_predictions,
    overall_average_map,
    score_order,
)
from tspvideo.evaluation.io import segment_tiou

__all__ = ["ERROR_TYPES", "false_positive_profile", "format_false_positive_table"]

ERROR_TYPES = ("True Positive", "Double Detection Err", "Wrong Label Err", "Localization Err", "Confusion Err",
               "Background Err")
LIMIT_FACTOR = 10
MIN_TIOU = 0.1


def limit_predictions(data: DetadData, factor: int = LIMIT_FACTOR) -> DetadData:
    """Keep each class's ``int(factor * G_j)`` best predictions, ordered class by class as DETAD's
    ``nlargest`` leaves them, and match them again."""
    counts = data.class_counts()
    by_class = np.argsort(data.pred_label, kind="stable")
    bounds = np.searchsorted(data.pred_label[by_class], np.arange(data.num_classes + 1))
    parts = []
    for c in _detad_class_order(data):
        if not counts[c]:
            continue
        idx = by_class[bounds[c]:bounds[c + 1]]
        # nlargest: a stable sort of the decreasing scores, so equal scores keep their input order.
        parts.append(idx[np.argsort(-data.pred_score[idx], kind="stable")[:int(counts[c] * factor)]])
    keep = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    limited = dataclasses.replace(
        data, pred_video=data.pred_video[keep], pred_label=data.pred_label[keep],
        pred_start=data.pred_start[keep], pred_end=data.pred_end[keep], pred_score=data.pred_score[keep])
    limited.match_order = score_order(limited.pred_label, limited.pred_score, limited.num_classes, "numpy")
    limited.matched = match_predictions(limited, limited.match_order)
    return limited


def _detad_class_order(data: DetadData) -> np.ndarray:
    """Classes in DETAD's index order: by first appearance in the ground truth (it numbers them so)."""
    first = np.full(data.num_classes, data.gt.num_instances, dtype=np.int64)
    np.minimum.at(first, data.gt.label, np.arange(data.gt.num_instances))
    return np.argsort(first, kind="stable")


def error_types(data: DetadData, min_tiou: float = MIN_TIOU) -> np.ndarray:
    """``(num_predictions, num_tious)`` index into :data:`ERROR_TYPES` of each prediction at each tIoU."""
    num_pred = data.pred_label.size
    # Best tIoU with any instance of the prediction's video, and that instance's label (first on ties).
    top = np.full(num_pred, -1.0)
    top_label = np.full(num_pred, -1, dtype=np.int64)
    gt_order = np.argsort(data.gt_video, kind="stable")
    sorted_video = data.gt_video[gt_order]
    lo = np.searchsorted(sorted_video, data.pred_video, side="left")
    count = np.searchsorted(sorted_video, data.pred_video, side="right") - lo
    for k in np.unique(count[count > 0]):
        rows = np.flatnonzero(count == k)
        gts = gt_order[lo[rows][:, None] + np.arange(k)[None, :]]
        iou = segment_tiou(data.pred_start[rows][:, None], data.pred_end[rows][:, None],
                           data.gt_start[gts], data.gt_end[gts])
        best = np.argmax(iou, axis=1)
        top[rows] = iou[np.arange(rows.size), best]
        top_label[rows] = data.gt_label[gts[np.arange(rows.size), best]]
    same = (top_label == data.pred_label)[:, None]
    t = top[:, None]
    kinds = np.where(t >= data.tious[None, :], np.where(same, 1, 2),
                     np.where(t >= min_tiou, np.where(same, 3, 4), 5))
    kinds[count == 0] = 5
    return np.where(data.matched >= 0, 0, kinds)


def false_positive_profile(data: DetadData, factor: int = LIMIT_FACTOR) -> dict[str, Any]:
    """DETAD's false-positive profile and the average-mAP_N gain of removing each error type (module doc).

    Returns ``{"limit_factor", "tiou", "average_mAP", "profile": [{"top": "1G", "num_predictions",
    "shares": {type: fraction}}], "removing_gain": {type: fraction}}``.
    """
    limited = limit_predictions(data, factor)
    kinds = error_types(limited)
    counts = limited.class_counts()
    # Profile blocks: all predictions by decreasing score (pandas order), then per class, cut every G_j.
    overall = score_order(np.zeros_like(limited.pred_label), limited.pred_score, 1, "pandas")
    ranked = overall[np.argsort(limited.pred_label[overall], kind="stable")]
    bounds = np.searchsorted(limited.pred_label[ranked], np.arange(limited.num_classes + 1))
    block = np.full(limited.pred_label.size, -1, dtype=np.int64)
    for c in np.flatnonzero(counts):
        idx = ranked[bounds[c]:bounds[c + 1]]
        block[idx] = np.arange(idx.size) // int(counts[c])
    profile = []
    for g in range(factor):
        members = kinds[block == g]
        shares = {name: None if members.shape[0] == 0 else float((members == e).sum(axis=0).mean() / members.shape[0])
                  for e, name in enumerate(ERROR_TYPES)}
        profile.append({"top": f"{g + 1}G", "num_predictions": int(members.shape[0]), "shares": shares})

    base = overall_average_map(limited) if limited.num_instances else float("nan")
    normalizer = limited.average_instances_per_class
    order_bounds = np.searchsorted(limited.pred_label[limited.match_order], np.arange(limited.num_classes + 1))
    gain = {}
    for e, name in enumerate(ERROR_TYPES[1:], start=1):
        aps = []
        for c in np.flatnonzero(counts):
            idx = limited.match_order[order_bounds[c]:order_bounds[c + 1]]
            per_tiou = [interpolated_ap((limited.matched[idx, k] >= 0)[kinds[idx, k] != e][:, None],
                                        int(counts[c]), normalizer)[0] for k in range(limited.tious.size)]
            aps.append(per_tiou)
        gain[name] = float(np.mean(aps) - base) if aps else None
    return {"limit_factor": factor, "tiou": [float(t) for t in limited.tious], "average_mAP": base,
            "num_predictions": int(limited.pred_label.size), "profile": profile, "removing_gain": gain}


def format_false_positive_table(fp: dict[str, Any]) -> str:
    """Shares (%) of each prediction type in the top 1G..10G blocks, and the gain of removing each error."""
    names = ERROR_TYPES
    short = ["TP", "double", "wrong lbl", "localiz.", "confusion", "backgr."]
    lines = [f"DETAD false-positive profile (top predictions per class in blocks of G = its instances; "
             f"average mAP_N of the top {fp['limit_factor']}G: {100 * fp['average_mAP']:.2f}%)",
             "block " + "".join(f"{s:>11}" for s in short)]
    for row in fp["profile"]:
        if row["num_predictions"]:
            lines.append(f"{row['top']:<6}" + "".join(f"{100 * row['shares'][n]:>11.1f}" for n in names))
    lines.append("gain  " + " " * 11 + "".join(
        f"{'n/a' if fp['removing_gain'][n] is None else format(100 * fp['removing_gain'][n], '+.2f'):>11}"
        for n in names[1:]) + "   (average mAP_N points gained by removing that error type)")
    return "\n".join(lines)
