"""Detection mAP broken down by ground-truth instance length (DETAD's length characteristic, the paper's Table 8).

Computed as DETAD computes it (:mod:`tspvideo.evaluation.detad`): normalized mAP_N by default, a
prediction matched to an instance of another bucket at any tIoU is ignored at every tIoU, zero-length
instances and instances longer than their video are dropped. ``precision="plain"`` gives plain AP
(``TP / (TP + FP)``) with the same rules. Buckets are ``(lo, hi]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tspvideo.core.errors import TspVideoError
from tspvideo.evaluation.detad import (
    DETAD_SETTINGS,
    Characteristic,
    DetadData,
    bucket_rows,
    prepare_detad,
    score_order,
)
from tspvideo.evaluation.io import GroundTruth, JsonSource, Predictions

__all__ = ["LENGTH_BUCKETS", "length_breakdown", "length_characteristic", "bucket_rows_in_seconds",
           "format_length_table"]

# Upper edges in seconds of XS, S, M, L; XL is everything longer (DETAD's ActivityNet and THUMOS14 bins).
LENGTH_BUCKETS: dict[str, tuple[float, ...]] = {
    "activitynet": (30.0, 60.0, 120.0, 180.0),
    "thumos14": (3.0, 6.0, 12.0, 18.0),
}
BUCKET_NAMES = ("XS", "S", "M", "L", "XL")


def _bucket_names(edges: tuple[float, ...]) -> list[str]:
    if len(edges) + 1 == len(BUCKET_NAMES):
        return list(BUCKET_NAMES)
    bounds = [0.0, *edges]
    names = [f"({lo:g},{hi:g}]" for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    return [*names, f">{edges[-1]:g}"]


def length_characteristic(buckets: str | tuple[float, ...] = "activitynet") -> Characteristic:
    """The length characteristic for named buckets or increasing upper edges in seconds."""
    if isinstance(buckets, str):
        if buckets not in LENGTH_BUCKETS:
            raise TspVideoError(f"unknown length buckets {buckets!r}; use one of {sorted(LENGTH_BUCKETS)} "
                                "or a list of edges in seconds")
        edges = LENGTH_BUCKETS[buckets]
    else:
        edges = tuple(float(e) for e in buckets)
        if not edges or any(b <= a for a, b in zip(edges[:-1], edges[1:], strict=True)) or edges[0] <= 0:
            raise TspVideoError(f"length bucket edges must be positive and increasing, got {list(edges)}")
    return Characteristic("length", (0.0, *edges, np.inf), tuple(_bucket_names(edges)))


def length_breakdown(ground_truth: JsonSource | GroundTruth, predictions: JsonSource | Predictions,
                     buckets: str | tuple[float, ...] = "activitynet", tious: Any = None,
                     subset: str | None = None, unknown_videos: str = "error",
                     precision: str = "normalized") -> dict[str, Any]:
    """Average mAP_N per instance-length bucket and each bucket's share of the instances, as DETAD does.

    ``buckets`` is ``"activitynet"`` (XS (0,30], S (30,60], M (60,120], L (120,180], XL >180 s),
    ``"thumos14"`` (edges 3/6/12/18 s) or increasing upper edges in seconds. ``tious`` defaults to
    DETAD's for the named buckets (ActivityNet: ``np.linspace(0.5, 0.95, 10)``; THUMOS14: 0.5).
    ``precision`` is ``"normalized"`` (DETAD's mAP_N) or ``"plain"``. Returns ``{"tiou", "precision",
    "N", "buckets": [{"name", "min_s", "max_s", "num_instances", "share", "average_mAP", "mAP"}],
    "dropped_instances", "warnings"}``; ``average_mAP`` is ``None`` for an empty bucket; shares are
    fractions of the kept instances.
    """
    if precision not in ("normalized", "plain"):
        raise TspVideoError(f"precision must be normalized or plain, got {precision!r}")
    char = length_characteristic(buckets)
    if tious is None:
        tious = DETAD_SETTINGS["thumos14" if buckets == "thumos14" else "activitynet"].tious
    data = prepare_detad(ground_truth, predictions, tious, subset, unknown_videos)
    ap_order = score_order(data.pred_label, data.pred_score, data.num_classes, style="pandas")
    rows = bucket_rows_in_seconds(data, char, ap_order, precision)
    return {"tiou": [float(t) for t in data.tious], "precision": precision, "N": data.average_instances_per_class,
            "buckets": rows, "dropped_instances": dict(data.dropped), "warnings": list(data.warnings)}


def bucket_rows_in_seconds(data: DetadData, char: Characteristic, ap_order: np.ndarray,
                           precision: str = "normalized") -> list[dict[str, Any]]:
    """:func:`~tspvideo.evaluation.detad.bucket_rows` with the range as ``min_s`` / ``max_s`` (``None``: open)."""
    rows = bucket_rows(data, char, ap_order, normalized=precision == "normalized")
    for row in rows:
        low, high = row.pop("min"), row.pop("max")
        row["min_s"], row["max_s"] = low, (None if np.isinf(high) else high)
    return rows


def format_length_table(breakdown: dict[str, Any]) -> str:
    """Two rows, as in Table 8: average mAP_N (%) and share of instances (%) per bucket."""
    rows = breakdown["buckets"]
    width = max(7, *(len(r["name"]) + 1 for r in rows))
    label = "avg mAP_N % " if breakdown.get("precision", "normalized") == "normalized" else "avg mAP %   "
    header = "length      " + "".join(f"{r['name']:>{width}}" for r in rows)
    amap = label + "".join(
        f"{'n/a' if r['average_mAP'] is None else format(100 * r['average_mAP'], '.2f'):>{width}}" for r in rows)
    share = "instances % " + "".join(f"{100 * r['share']:>{width}.1f}" for r in rows)
    return "\n".join([header, amap, share])
