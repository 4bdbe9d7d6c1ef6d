"""Length breakdown (DETAD's length characteristic): bucket edges, shares and the ignore rule."""

from __future__ import annotations

import numpy as np
import pytest

from tspvideo.core.errors import TspVideoError
from tspvideo.evaluation.lengths import format_length_table, length_breakdown


def _gt(anns):
    return {"database": {"a": {"subset": "validation", "duration": 1000.0,
                               "annotations": [{"segment": [s, e], "label": "x"} for s, e in anns]}}}


def _pred(preds):
    return {"results": {"a": [{"segment": [s, e], "label": "x", "score": sc} for s, e, sc in preds]}}


def _by_name(breakdown):
    return {row["name"]: row for row in breakdown["buckets"]}


def test_predictions_matched_to_other_buckets_are_ignored():
    gt = _gt([(0, 10), (20, 220)])  # 10 s -> XS, 200 s -> XL
    # FP (0.95), XL match (0.9), XS match (0.8).
    preds = _pred([(300, 310, 0.95), (20, 220, 0.9), (0, 10, 0.8)])
    rows = _by_name(length_breakdown(gt, preds, tious=[0.5]))
    # N = 2 instances / 1 class. XS: FP kept, XL match ignored, TP: R = 1, P = 2/(2+1) (normalized).
    assert rows["XS"]["average_mAP"] == pytest.approx(2 / 3)
    # XL: FP, TP (P = 2/3), XS match ignored.
    assert rows["XL"]["average_mAP"] == pytest.approx(2 / 3)
    plain = _by_name(length_breakdown(gt, preds, tious=[0.5], precision="plain"))
    assert plain["XS"]["average_mAP"] == plain["XL"]["average_mAP"] == pytest.approx(0.5)
    assert rows["S"]["average_mAP"] is None and rows["S"]["num_instances"] == 0
    assert rows["XS"]["share"] == rows["XL"]["share"] == 0.5


def test_bucket_edges_are_closed_on_the_right():
    gt = _gt([(0, 30), (0, 30.5), (0, 60), (0, 120), (0, 180), (0, 180.1), (5, 5)])
    result = length_breakdown(gt, _pred([]), tious=[0.5])
    rows = _by_name(result)
    counts = {name: row["num_instances"] for name, row in rows.items()}
    assert counts == {"XS": 1, "S": 2, "M": 1, "L": 1, "XL": 1}  # the zero-length instance is dropped
    assert result["dropped_instances"]["zero_length"] == 1
    np.testing.assert_allclose(sum(r["share"] for r in rows.values()), 1.0)


def test_thumos_buckets_and_table():
    gt = _gt([(0, 2), (0, 5), (0, 20)])
    result = length_breakdown(gt, _pred([(0, 2, 0.9), (0, 5, 0.8), (0, 20, 0.7)]), buckets="thumos14")
    rows = _by_name(result)
    assert rows["XS"]["max_s"] == 3.0 and rows["XL"]["min_s"] == 18.0
    assert rows["XS"]["average_mAP"] == rows["S"]["average_mAP"] == rows["XL"]["average_mAP"] == 1.0
    table = format_length_table(result)
    assert "avg mAP_N %" in table and "n/a" in table and "100.00" in table
    assert result["tiou"] == [0.5]  # DETAD's THUMOS14 setting


def test_custom_edges_and_bad_edges():
    result = length_breakdown(_gt([(0, 5), (0, 15)]), _pred([]), buckets=(10.0,), tious=[0.5])
    assert [r["name"] for r in result["buckets"]] == ["(0,10]", ">10"]
    with pytest.raises(TspVideoError):
        length_breakdown(_gt([(0, 5)]), _pred([]), buckets=(10.0, 5.0))
    with pytest.raises(TspVideoError):
        length_breakdown(_gt([(0, 5)]), _pred([]), buckets="nope")
    with pytest.raises(TspVideoError):
        length_breakdown(_gt([(0, 5)]), _pred([]), precision="nope")
