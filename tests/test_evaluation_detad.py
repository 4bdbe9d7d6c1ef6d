"""DETAD's sensitivity analysis and false-positive profile on small hand-made inputs, values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from tspvideo.core.errors import TspVideoError
from tspvideo.evaluation.detad import (
    DETAD_SETTINGS,
    format_sensitivity_table,
    interpolated_ap,
    prepare_detad,
    sensitivity_analysis,
)
from tspvideo.evaluation.detad_fp import error_types, false_positive_profile, format_false_positive_table
from tspvideo.evaluation.lengths import length_breakdown

ANET_TIOUS = DETAD_SETTINGS["activitynet"].tious


def _gt(videos, duration=1000.0):
    """videos: {video: [(start, end, label) or (start, end, label, extra_fields)]}."""
    database = {}
    for vid, anns in videos.items():
        entries = []
        for ann in anns:
            entry = {"segment": [ann[0], ann[1]], "label": ann[2]}
            if len(ann) > 3:
                entry.update(ann[3])
            entries.append(entry)
        database[vid] = {"subset": "validation", "duration": duration, "annotations": entries}
    return {"database": database}


def _pred(videos):
    return {"results": {vid: [{"segment": [s, e], "label": lab, "score": sc} for s, e, lab, sc in preds]
                        for vid, preds in videos.items()}}


def _bucket(analysis, characteristic, name):
    return next(row for row in analysis["characteristics"][characteristic] if row["name"] == name)


# ------------------------------------------------------------------------------------ normalized precision
def test_normalized_precision_uses_average_instances_per_class():
    # Class x: 2 instances; class y: 4 instances (no predictions) -> N = 6 / 2 = 3.
    gt = _gt({"a": [(0, 10, "x"), (20, 30, "x"), (100, 110, "y"), (120, 130, "y"), (140, 150, "y"),
                    (160, 170, "y")]})
    pred = _pred({"a": [(0, 10, "x", 0.9), (500, 510, "x", 0.8), (20, 30, "x", 0.7)]})
    analysis = sensitivity_analysis(gt, pred, characteristics=["length"])
    assert analysis["N"] == 3.0
    # x: TP (R=1/2, P = 1.5/1.5 = 1), FP, TP (R=1, P = 3/(3+1) = 0.75) -> AP = 1/2*1 + 1/2*0.75.
    ap_x = 0.5 * 1.0 + 0.5 * 0.75
    assert analysis["average_mAP"] == pytest.approx(ap_x / 2)  # y has instances and no prediction: AP 0
    assert _bucket(analysis, "length", "XS")["average_mAP"] == pytest.approx(ap_x / 2)
    # Plain precision: TP, FP, TP -> 1, 1/2, 2/3 -> AP = 1/2*1 + 1/2*2/3.
    plain = sensitivity_analysis(gt, pred, characteristics=["length"], precision="plain")
    assert _bucket(plain, "length", "XS")["average_mAP"] == pytest.approx((0.5 + 0.5 * 2 / 3) / 2)


def test_interpolated_ap_is_vocs_and_zero_without_predictions():
    tp = np.array([[False], [True], [False], [True]])
    # Plain precision 0, 1/2, 1/3, 1/2 -> envelope at the TPs 1/2, 1/2 -> AP 1/2.
    assert interpolated_ap(tp, 2, None)[0] == pytest.approx(0.5)
    # N = 4: R = 1/2 at rank 2 -> P = 2/(2+1); R = 1 at rank 4 -> P = 4/(4+2).
    assert interpolated_ap(tp, 2, 4.0)[0] == pytest.approx(0.5 * 2 / 3 + 0.5 * 2 / 3)
    assert interpolated_ap(np.zeros((0, 3), dtype=bool), 2, 4.0).tolist() == [0.0, 0.0, 0.0]


# ------------------------------------------------------------------------------------------ ignore rule
def test_prediction_matched_outside_the_bucket_at_any_tiou_is_ignored_at_every_tiou():
    # A: 10 s (XS); B: 200 s (XL). p1 overlaps B with tIoU 144/200 = 0.72: a match at 0.5..0.7 only.
    gt = _gt({"a": [(0, 10, "x"), (100, 300, "x")]})
    pred = _pred({"a": [(100, 244, "x", 0.9), (0, 10, "x", 0.8)]})
    analysis = sensitivity_analysis(gt, pred, characteristics=["length"])
    # XS: p1 matched B at some tIoU, so it is ignored at all ten; p2 is the only, true, positive: AP 1.
    # (Ignoring p1 only where it matched would leave it a false positive above p2 at 0.75..0.95.)
    assert _bucket(analysis, "length", "XS")["average_mAP"] == pytest.approx(1.0)
    # XL: p2 matched A everywhere -> ignored; p1 is a TP at 5 tIoUs (AP 1) and an FP at 5 (AP 0).
    xl = _bucket(analysis, "length", "XL")
    assert xl["average_mAP"] == pytest.approx(0.5)
    assert xl["mAP"] == pytest.approx([1.0] * 5 + [0.0] * 5)
    assert _bucket(analysis, "length", "M")["average_mAP"] is None


# ------------------------------------------------------------------------------------ instance filters
def test_zero_length_instance_and_instance_longer_than_its_video_are_dropped():
    # Video of 100 s. Z has zero length; L is 150 s long (coverage 1.5): both dropped.
    # E runs past the video end but is 20 s long (coverage 0.2): kept, as DETAD keeps it.
    gt = _gt({"a": [(0, 10, "x"), (50, 50, "x"), (90, 110, "x"), (0, 150, "x")]}, duration=100.0)
    pred = _pred({"a": [(50, 50, "x", 0.9), (0, 150, "x", 0.8), (0, 10, "x", 0.7), (90, 110, "x", 0.6)]})
    analysis = sensitivity_analysis(gt, pred)
    assert analysis["dropped_instances"] == {"zero_length": 1, "coverage_above_1": 1}
    assert analysis["num_instances"] == 2 and analysis["N"] == 2.0
    # Predictions on the dropped instances are false positives: FP, FP, TP (R=1/2, P=1/(1+2)),
    # TP (R=1, P=2/(2+2)) -> envelope 1/2 at both TPs -> AP 1/2 at every tIoU.
    assert analysis["average_mAP"] == pytest.approx(0.5)
    assert _bucket(analysis, "length", "XS")["share"] == 1.0
    # Coverage 0.1 and exactly 0.2 are both XS: bins are closed on the right.
    assert _bucket(analysis, "coverage", "XS")["num_instances"] == 2
    # num-instances counts the video's annotations before the drops: 4 -> S (1, 4].
    assert _bucket(analysis, "num-instances", "S")["num_instances"] == 2
    assert _bucket(analysis, "num-instances", "XS")["average_mAP"] is None
    table = format_sensitivity_table(analysis)
    assert "1 zero-length instances, 1 with coverage above 1" in table and "(0.2,0.4]" in table


def test_characteristics_from_detad_annotation_fields_win_over_computed_ones():
    fields = {"length": 45.0, "coverage": 0.5, "num-instances": 9}
    gt = _gt({"a": [(0, 10, "x", fields)]})
    pred = _pred({"a": [(0, 10, "x", 0.9)]})
    analysis = sensitivity_analysis(gt, pred)
    assert analysis["characteristics_source"] == "annotations"
    assert _bucket(analysis, "length", "S")["num_instances"] == 1  # 45 s by the file, not 10 s
    assert _bucket(analysis, "coverage", "M")["num_instances"] == 1
    assert _bucket(analysis, "num-instances", "L")["num_instances"] == 1
    assert sensitivity_analysis(_gt({"a": [(0, 10, "x")]}), pred)["characteristics_source"] == "computed"
    partial = sensitivity_analysis(_gt({"a": [(0, 10, "x", fields), (20, 30, "x")]}), pred)
    assert partial["characteristics_source"] == "computed"
    assert any("not all" in w for w in partial["warnings"])
    assert _bucket(partial, "length", "XS")["num_instances"] == 2


def test_missing_duration_is_an_error_naming_the_video():
    gt = {"database": {"v1": {"subset": "validation", "annotations": [{"segment": [0, 5], "label": "x"}]}}}
    with pytest.raises(TspVideoError, match=r"database\['v1'\] has no 'duration'"):
        sensitivity_analysis(gt, _pred({"v1": [(0, 5, "x", 0.5)]}))


def test_predictions_of_other_subsets_are_false_positives_and_unknown_ids_follow_the_policy():
    gt = _gt({"a": [(0, 10, "x")]})
    gt["database"]["t"] = {"subset": "training", "duration": 50.0, "annotations": [{"segment": [0, 5], "label": "x"}]}
    pred = _pred({"t": [(0, 5, "x", 0.9)], "a": [(0, 10, "x", 0.8)]})
    analysis = sensitivity_analysis(gt, pred, subset="validation", characteristics=["length"])
    # FP (other subset) then TP: N = 1, R = 1, P = 1/(1+1).
    assert analysis["average_mAP"] == pytest.approx(0.5)
    assert any("outside subset" in w for w in analysis["warnings"])
    unknown = _pred({"zzz": [(0, 5, "x", 0.9)], "a": [(0, 10, "x", 0.8)]})
    with pytest.raises(TspVideoError, match="not in the ground truth"):
        sensitivity_analysis(gt, unknown, subset="validation")
    assert sensitivity_analysis(gt, unknown, subset="validation",
                                unknown_videos="ignore")["average_mAP"] == pytest.approx(1.0)


def test_thumos_settings_use_tiou_05_and_thumos_bins():
    gt = _gt({"a": [(0, 2, "x"), (10, 30, "x")]}, duration=200.0)
    pred = _pred({"a": [(0, 1.2, "x", 0.9), (10, 30, "x", 0.8)]})  # tIoU 0.6 with the 2 s instance
    analysis = sensitivity_analysis(gt, pred, settings="thumos14")
    assert analysis["tiou"] == [0.5]
    assert _bucket(analysis, "length", "XS")["average_mAP"] == pytest.approx(1.0)  # (0, 3]
    assert _bucket(analysis, "length", "XL")["num_instances"] == 1  # 20 s > 18
    assert _bucket(analysis, "coverage", "XS")["num_instances"] == 1  # 2/200 = 0.01 <= 0.02
    assert [r["name"] for r in analysis["characteristics"]["num-instances"]] == ["XS", "S", "M", "L"]


def test_length_breakdown_with_custom_edges_and_exact_thresholds():
    # tIoU exactly 0.6: a match at 0.5, 0.55 and 0.6 (no tolerance needed: equality matches).
    gt = _gt({"a": [(0, 10, "x")]})
    result = length_breakdown(gt, _pred({"a": [(0, 6, "x", 0.9)]}), buckets=(5.0, 20.0))
    row = {r["name"]: r for r in result["buckets"]}["(5,20]"]
    assert row["mAP"] == pytest.approx([1.0] * 3 + [0.0] * 7)
    assert [r["name"] for r in result["buckets"]] == ["(0,5]", "(5,20]", ">20"]
    assert result["buckets"][-1]["max_s"] is None


# ------------------------------------------------------------------------------------ false positives
def _fp_case():
    # x at [0, 10], y at [20, 30]; predictions of class x only.
    gt = _gt({"a": [(0, 10, "x"), (20, 30, "y")]}, duration=100.0)
    pred = _pred({"a": [(50, 60, "x", 0.95),  # background
                        (0, 10, "x", 0.9),    # true positive
                        (0, 10, "x", 0.8),    # double detection
                        (20, 30, "x", 0.7),   # wrong label (the y instance, tIoU 1)
                        (0, 6, "x", 0.6),     # tIoU 0.6 with x: double up to 0.6, then localization
                        (22, 26, "x", 0.5)]})  # tIoU 0.4 with y: confusion
    return gt, pred


def test_error_types_at_each_tiou():
    gt, pred = _fp_case()
    data = prepare_detad(gt, pred, ANET_TIOUS)
    kinds = error_types(data)
    order = np.argsort(-data.pred_score)
    assert kinds[order, 0].tolist() == [5, 0, 1, 2, 1, 4]
    # tIoU 0.6: a double detection up to the 0.6 threshold, a localization error above it.
    assert kinds[order[4]].tolist() == [1, 1, 1] + [3] * 7


def test_false_positive_profile_and_removal_gain():
    gt, pred = _fp_case()
    data = prepare_detad(gt, pred, DETAD_SETTINGS["thumos14"].tious)
    fp = false_positive_profile(data)
    # G = 1 instance per class: each block holds one prediction of class x.
    tops = [max(row["shares"], key=row["shares"].get) for row in fp["profile"][:6]]
    assert tops == ["Background Err", "True Positive", "Double Detection Err", "Wrong Label Err",
                    "Double Detection Err", "Confusion Err"]
    assert all(row["num_predictions"] == 0 for row in fp["profile"][6:])
    # N = 2 instances / 2 classes = 1. x: FP then TP (R = 1, P = 1/(1+1)) -> AP 1/2; y: no prediction, 0.
    assert fp["average_mAP"] == pytest.approx(0.25)
    # Without the background error x's AP is 1: +0.25; the others come after the TP: +0.
    assert fp["removing_gain"]["Background Err"] == pytest.approx(0.25)
    assert fp["removing_gain"]["Double Detection Err"] == pytest.approx(0.0)
    table = format_false_positive_table(fp)
    assert "\n6G " in table and "\n7G " not in table and "+25.00" in table


def test_false_positive_profile_keeps_the_top_ten_g_per_class():
    gt = _gt({"a": [(0, 10, "x")]})
    pred = _pred({"a": [(100 + i, 110 + i, "x", 1 - i / 100) for i in range(15)] + [(0, 10, "x", 0.5)]})
    fp = false_positive_profile(prepare_detad(gt, pred, [0.5]))
    # G = 1: the 10 best predictions only, all background; the TP (16th) is cut.
    assert fp["num_predictions"] == 10
    assert fp["average_mAP"] == 0.0
    assert [row["shares"]["Background Err"] for row in fp["profile"]] == [1.0] * 10
