"""Detection mAP broken down by ground-truth instance length (DETAD buckets, the paper's Table 8).

For a bucket, only the ground-truth instances of that length count as positives. Predictions are
matched once against *all* instances (the protocol of :mod:`tspvideo.evaluation.detection`); those
matched to an instance of another bucket are ignored for this bucket — neither true nor false
positives — as DETAD does, so a good detection of a long action does not count against the short
ones. Unmatched predictions stay false positives in every bucket. AP is averaged over the classes
that have instances in the bucket (plain AP, not DETAD's normalized AP), then over tIoUs.

Buckets are half-open on the left, ``(lo, hi]``; zero-length instances go to the first bucket.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tspvideo.errors import TspVideoError
from tspvideo.evaluation.detection import ACTIVITYNET_TIOUS, match_detections, per_class_ap
from tspvideo.evaluation.io import GroundTruth, JsonSource, Predictions

__all__ = ["LENGTH_BUCKETS", "length_breakdown", "format_length_table"]

# Upper edges in seconds of XS, S, M, L; XL is everything longer.
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


def length_breakdown(ground_truth: JsonSource | GroundTruth, predictions: JsonSource | Predictions,
                     buckets: str | tuple[float, ...] = "activitynet", tious: Any = ACTIVITYNET_TIOUS,
                     subset: str | None = None, unknown_videos: str = "error") -> dict[str, Any]:
    """Average mAP per instance-length bucket and each bucket's share of the instances.

    ``buckets`` is ``"activitynet"`` (XS (0,30], S (30,60], M (60,120], L (120,180], XL >180 s),
    ``"thumos14"`` (edges 3/6/12/18 s) or increasing upper edges in seconds. Returns
    ``{"buckets": [{"name", "min_s", "max_s", "num_instances", "share", "average_mAP", "mAP"}], "tiou"}``;
    ``average_mAP`` is ``None`` for an empty bucket. Shares are fractions in [0, 1].
    """
    if isinstance(buckets, str):
        if buckets not in LENGTH_BUCKETS:
            raise TspVideoError(f"unknown length buckets {buckets!r}; use one of {sorted(LENGTH_BUCKETS)} "
                                "or a list of edges in seconds")
        edges = LENGTH_BUCKETS[buckets]
    else:
        edges = tuple(float(e) for e in buckets)
        if not edges or any(b <= a for a, b in zip(edges[:-1], edges[1:], strict=True)) or edges[0] <= 0:
            raise TspVideoError(f"length bucket edges must be positive and increasing, got {list(edges)}")
    matches = match_detections(ground_truth, predictions, tious, subset, unknown_videos)
    gt = matches.gt
    length = gt.end - gt.start
    # side="left" makes each bucket (lo, hi]; a zero length lands in bucket 0.
    bucket_of = np.searchsorted(np.asarray(edges), length, side="left")
    total = max(gt.num_instances, 1)
    names = _bucket_names(edges)
    bounds = [0.0, *edges, None]
    rows = []
    for b, name in enumerate(names):
        mask = bucket_of == b
        count = int(mask.sum())
        row: dict[str, Any] = {"name": name, "min_s": bounds[b], "max_s": bounds[b + 1],
                               "num_instances": count, "share": count / total,
                               "average_mAP": None, "mAP": None}
        if count:
            ap = per_class_ap(matches, gt_mask=mask)
            present = np.bincount(gt.label[mask], minlength=len(gt.classes)) > 0
            m_ap = ap[present].mean(axis=0)
            row["mAP"] = [float(x) for x in m_ap]
            row["average_mAP"] = float(m_ap.mean())
        rows.append(row)
    return {"tiou": [float(t) for t in matches.tious], "buckets": rows, "warnings": matches.warnings}


def format_length_table(breakdown: dict[str, Any]) -> str:
    """Two rows, as in Table 8: average mAP (%) and share of instances (%) per bucket."""
    rows = breakdown["buckets"]
    width = max(7, *(len(r["name"]) + 1 for r in rows))
    header = "length      " + "".join(f"{r['name']:>{width}}" for r in rows)
    amap = "avg mAP %   " + "".join(
        f"{'n/a' if r['average_mAP'] is None else format(100 * r['average_mAP'], '.2f'):>{width}}" for r in rows)
    share = "instances % " + "".join(f"{100 * r['share']:>{width}.1f}" for r in rows)
    return "\n".join([header, amap, share])
