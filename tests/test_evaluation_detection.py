"""Detection mAP: hand-computed cases, the tie rules, a naive reference, malformed input and the CLI."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest

from tspvideo.commands import eval as eval_command
from tspvideo.core.errors import TspVideoError
from tspvideo.evaluation import detection
from tspvideo.evaluation.detection import (
    ACTIVITYNET_TIOUS,
    THUMOS14_TIOUS,
    evaluate_detection,
)
from tspvideo.evaluation.io import parse_tious


def gt_json(videos: dict[str, list[tuple[float, float, str]]], subset: str = "validation") -> dict:
    return {"database": {
        vid: {"subset": subset, "duration": 1000.0,
              "annotations": [{"segment": [s, e], "label": lab} for s, e, lab in anns]}
        for vid, anns in videos.items()}}


def pred_json(videos: dict[str, list[tuple[float, float, str, float]]]) -> dict:
    return {"results": {vid: [{"segment": [s, e], "label": lab, "score": sc} for s, e, lab, sc in preds]
                        for vid, preds in videos.items()}}


GT = gt_json({"a": [(0, 10, "x"), (20, 40, "y")], "b": [(5, 15, "x")]})


# ------------------------------------------------------------------------------------ hand-computed
def test_perfect_predictions_give_100_percent():
    pred = pred_json({"a": [(0, 10, "x", 0.9), (20, 40, "y", 0.8)], "b": [(5, 15, "x", 0.7)]})
    result = evaluate_detection(GT, pred)
    np.testing.assert_allclose(result.mAP, 1.0)
    assert result.average_mAP == pytest.approx(1.0)
    assert set(result.per_class) == {"x", "y"}
    assert result.tiou.tolist() == list(ACTIVITYNET_TIOUS)


def test_duplicate_detection_is_a_false_positive():
    # x: a-TP (0.9), a-duplicate (0.8) -> FP, b-TP (0.7): precision at the TPs 1 and 2/3.
    pred = pred_json({"a": [(0, 10, "x", 0.9), (0, 10, "x", 0.8), (20, 40, "y", 0.5)],
                      "b": [(5, 15, "x", 0.7)]})
    result = evaluate_detection(GT, pred)
    np.testing.assert_allclose(result.per_class["x"], (1 + 2 / 3) / 2)
    np.testing.assert_allclose(result.per_class["y"], 1.0)
    assert result.average_mAP == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)


def test_predictions_for_a_class_without_ground_truth_are_left_out_and_reported():
    base = pred_json({"a": [(0, 10, "x", 0.9), (20, 40, "y", 0.8)], "b": [(5, 15, "x", 0.7)]})
    extra = pred_json({"a": [(0, 10, "x", 0.9), (20, 40, "y", 0.8), (0, 10, "z", 0.99)],
                       "b": [(5, 15, "x", 0.7)]})
    plain, with_z = evaluate_detection(GT, base), evaluate_detection(GT, extra)
    np.testing.assert_allclose(with_z.mAP, plain.mAP)
    assert "z" not in with_z.per_class
    assert any("'z'" in w for w in with_z.warnings)
    assert with_z.num_predictions == 3


@pytest.mark.parametrize("results", [{}, {"a": [], "b": []}])
def test_empty_predictions_give_zero(results):
    result = evaluate_detection(GT, {"results": results})
    np.testing.assert_allclose(result.mAP, 0.0)
    assert result.videos_without_predictions == 2


def test_video_missing_from_predictions_costs_recall():
    gt = gt_json({"a": [(0, 10, "x")], "b": [(0, 10, "x")]})
    result = evaluate_detection(gt, pred_json({"a": [(0, 10, "x", 0.9)]}))
    np.testing.assert_allclose(result.mAP, 0.5)
    assert result.videos_without_predictions == 1


def test_tiou_exactly_at_threshold_counts_as_match():
    gt = gt_json({"a": [(0, 10, "x")]})
    # tIoU 0.5 and 0.6 exactly; thresholds parsed from text as a user writes them.
    tious = parse_tious("0.5:0.05:0.95")
    half = evaluate_detection(gt, pred_json({"a": [(0, 5, "x", 1.0)]}), tious=tious)
    assert half.mAP_at(0.5) == 1.0 and half.mAP_at(0.55) == 0.0
    six = evaluate_detection(gt, pred_json({"a": [(2, 8, "x", 1.0)]}), tious=tious)
    assert six.mAP_at(0.6) == 1.0 and six.mAP_at(0.65) == 0.0


def test_equal_scores_keep_input_order():
    gt = gt_json({"a": [(0, 10, "x")]})
    fp_first = pred_json({"a": [(50, 60, "x", 0.5), (0, 10, "x", 0.5)]})
    tp_first = pred_json({"a": [(0, 10, "x", 0.5), (50, 60, "x", 0.5)]})
    np.testing.assert_allclose(evaluate_detection(gt, fp_first).mAP, 0.5)
    np.testing.assert_allclose(evaluate_detection(gt, tp_first).mAP, 1.0)
    # Across videos: the order of the videos in the predictions JSON.
    gt2 = gt_json({"a": [(0, 10, "x")], "b": [(0, 10, "x")]})
    b_fp_first = {"results": {"b": [{"segment": [50, 60], "label": "x", "score": 0.5}],
                              "a": [{"segment": [0, 10], "label": "x", "score": 0.5}]}}
    # FP then TP: precision 1/2 at recall 1/2; recall never reaches 1.
    np.testing.assert_allclose(evaluate_detection(gt2, b_fp_first).mAP, 0.25)


def test_equal_tiou_goes_to_the_first_listed_instance():
    gt = gt_json({"a": [(0, 10, "x"), (10, 20, "x")]})
    # p1 has tIoU 1/3 with both instances -> takes the first; p2 then finds its only match taken.
    pred = pred_json({"a": [(5, 15, "x", 0.9), (0, 10, "x", 0.8)]})
    np.testing.assert_allclose(evaluate_detection(gt, pred, tious=[0.3]).mAP, 0.5)


def test_prediction_takes_the_highest_tiou_unmatched_instance():
    gt = gt_json({"a": [(0, 10, "x"), (4, 14, "x")]})
    # p1 overlaps g0 by 0.6/... and g1 more; it must take g1 so that p2 can take g0.
    pred = pred_json({"a": [(3, 13, "x", 0.9), (0, 10, "x", 0.8)]})
    np.testing.assert_allclose(evaluate_detection(gt, pred, tious=[0.5]).mAP, 1.0)


def test_subset_selects_videos_and_reports_other_subset_predictions():
    gt = gt_json({"a": [(0, 10, "x")]})
    gt["database"]["t"] = {"subset": "training", "annotations": [{"segment": [0, 10], "label": "x"}]}
    pred = pred_json({"a": [(0, 10, "x", 0.9)], "t": [(0, 10, "x", 0.95)]})
    result = evaluate_detection(gt, pred, subset="validation")
    np.testing.assert_allclose(result.mAP, 1.0)
    assert result.num_videos == 1
    assert any("outside subset" in w for w in result.warnings)
    with pytest.raises(TspVideoError, match="subset 'testing'"):
        evaluate_detection(gt, pred, subset="testing")


# ---------------------------------------------------------------------------------- naive reference
def _tiou(a, b):
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def naive_map(gt_rows, pred_rows, tious):
    """The protocol written as plainly as possible, with the official interpolated-AP formula."""
    classes = sorted({g[1] for g in gt_rows})
    table = np.zeros((len(classes), len(tious)))
    for ci, cls in enumerate(classes):
        gts = [(k, g) for k, g in enumerate(gt_rows) if g[1] == cls]
        preds = [p for p in pred_rows if p[1] == cls]
        order = sorted(range(len(preds)), key=lambda i: (-preds[i][4], i))
        for ti, thr in enumerate(tious):
            used, tp = set(), []
            for i in order:
                p = preds[i]
                best, best_iou = None, -1.0
                for k, g in gts:
                    if g[0] != p[0] or k in used:
                        continue
                    iou = _tiou((p[2], p[3]), (g[2], g[3]))
                    if iou >= thr - 1e-9 and iou > best_iou:
                        best, best_iou = k, iou
                if best is not None:
                    used.add(best)
                tp.append(best is not None)
            tp_arr = np.asarray(tp, dtype=float)
            ctp, cfp = np.cumsum(tp_arr), np.cumsum(1 - tp_arr)
            rec = ctp / len(gts)
            prec = ctp / np.maximum(ctp + cfp, 1e-12)
            mprec = np.concatenate([[0.0], prec, [0.0]])
            mrec = np.concatenate([[0.0], rec, [1.0]])
            for i in range(len(mprec) - 2, -1, -1):
                mprec[i] = max(mprec[i], mprec[i + 1])
            idx = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
            table[ci, ti] = np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx])
    return table


@pytest.mark.parametrize("seed, pair_chunk", [(0, None), (1, None), (2, 7)])
def test_vectorized_matches_naive_reference(seed, pair_chunk, monkeypatch):
    if pair_chunk:  # tiny chunks exercise the chunked pair building
        monkeypatch.setattr(detection, "PAIR_CHUNK", pair_chunk)
    rng = np.random.default_rng(seed)
    classes = ["c0", "c1", "c2", "c3"]
    gt_rows, videos = [], {}
    for v in range(12):
        vid = f"vid{v}"
        anns = []
        for _ in range(rng.integers(1, 5)):
            s = int(rng.integers(0, 40))
            anns.append((s, s + int(rng.integers(1, 15)), classes[rng.integers(0, 4)]))
        videos[vid] = anns
        gt_rows += [(vid, lab, s, e) for s, e, lab in anns]
    pred_rows, preds = [], {}
    for v in range(12):
        vid = f"vid{v}"
        entries = []
        for _ in range(rng.integers(0, 25)):
            # Integer ends and 0.1-step scores make exact tIoU and score ties common; half of the
            # predictions are jittered copies of instances so that many compete for the same one.
            score = round(float(rng.integers(0, 10)) / 10, 1)
            if rng.random() < 0.5:
                s0, e0, lab = videos[vid][rng.integers(0, len(videos[vid]))]
                s = s0 + int(rng.integers(-2, 3))
                entries.append((s, max(s + 1, e0 + int(rng.integers(-2, 3))), lab, score))
            else:
                s = int(rng.integers(0, 45))
                entries.append((s, s + int(rng.integers(1, 15)), classes[rng.integers(0, 4)], score))
        preds[vid] = entries
        pred_rows += [(vid, lab, s, e, sc) for s, e, lab, sc in entries]
    tious = [0.1, 0.3, 0.5, 0.7, 0.9]
    result = evaluate_detection(gt_json(videos), pred_json(preds), tious=tious)
    expected = naive_map(gt_rows, pred_rows, tious)
    present = sorted({g[1] for g in gt_rows})
    got = np.stack([result.per_class[c] for c in present])
    np.testing.assert_allclose(got, expected, atol=1e-12)
    np.testing.assert_allclose(result.mAP, expected.mean(axis=0), atol=1e-12)


# -------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("pred, fragment", [
    ({"videos": {}}, "missing top-level key 'results'"),
    ({"results": {"a": [{"label": "x", "score": 1}]}}, r"results\['a'\]\[0\]: missing key 'segment'"),
    ({"results": {"a": [{"segment": [5, 3], "label": "x", "score": 1}]}}, r"\['a'\]\[0\]: segment end 3 < start 5"),
    ({"results": {"a": [{"segment": [0, 3], "label": "x", "score": float("nan")}]}}, "finite number"),
    ({"results": {"a": [{"segment": [0, 3], "score": 1}]}}, "missing key 'label'"),
    ({"results": {"a": [{"segment": [0, "x"], "label": "x", "score": 1}]}}, "two finite numbers"),
    ({"results": {"a": {"segment": [0, 1]}}}, "expected a list"),
])
def test_malformed_predictions_name_the_entry(pred, fragment):
    with pytest.raises(TspVideoError, match=fragment):
        evaluate_detection(GT, pred)


@pytest.mark.parametrize("gt, fragment", [
    ({"results": {}}, "missing top-level key 'database'"),
    ({"database": {"a": {"subset": "validation"}}}, r"database\['a'\]: missing key 'annotations'"),
    ({"database": {"a": {"annotations": [{"segment": [2, 1], "label": "x"}]}}},
     r"\['annotations'\]\[0\]: segment end 1 < start 2"),
    ({"database": {"a": {"annotations": [{"segment": [0, 1]}]}}}, "missing key 'label'"),
    ({"database": {"a": {"annotations": []}}}, "no annotated instance"),
])
def test_malformed_ground_truth_names_the_entry(gt, fragment):
    with pytest.raises(TspVideoError, match=fragment):
        evaluate_detection(gt, {"results": {}})


def test_nan_score_from_a_json_file_names_the_entry(tmp_path):
    path = tmp_path / "pred.json"
    path.write_text('{"results": {"a": [{"segment": [0, 10], "label": "x", "score": NaN}]}}')
    with pytest.raises(TspVideoError, match=r"results\['a'\]\[0\]: score must be a finite number, got nan"):
        evaluate_detection(GT, str(path))


def test_unknown_videos_are_reported_not_dropped():
    pred = pred_json({"a": [(0, 10, "x", 0.5), (20, 40, "y", 0.5)], "b": [(5, 15, "x", 0.5)],
                      "nope": [(0, 10, "x", 0.9)]})
    with pytest.raises(TspVideoError, match="1 prediction video ids not in the ground truth: 'nope'"):
        evaluate_detection(GT, pred)
    as_fp = evaluate_detection(GT, pred, unknown_videos="false_positive")
    # x: FP (0.9) then two TPs: precisions 1/2 and 2/3, interpolated to 2/3 and 2/3.
    np.testing.assert_allclose(as_fp.per_class["x"], 2 / 3)
    assert any("false positives" in w for w in as_fp.warnings)
    ignored = evaluate_detection(GT, pred, unknown_videos="ignore")
    np.testing.assert_allclose(ignored.mAP, 1.0)
    assert any("'nope'" in w and "ignored" in w for w in ignored.warnings)


def test_missing_or_invalid_files_are_clear_errors(tmp_path):
    with pytest.raises(TspVideoError, match="does not exist"):
        evaluate_detection(str(tmp_path / "missing.json"), {"results": {}})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(TspVideoError, match="not valid JSON"):
        evaluate_detection(str(bad), {"results": {}})


def test_parse_tious():
    np.testing.assert_allclose(parse_tious("0.5:0.05:0.95"), ACTIVITYNET_TIOUS)
    np.testing.assert_allclose(parse_tious("0.1:0.1:0.7"), THUMOS14_TIOUS)
    assert parse_tious("0.3,0.5").tolist() == [0.3, 0.5]
    assert parse_tious("0.6").tolist() == [0.6]
    for bad in ("0.5:0.95", "abc", "0:0.1:0.5", "1.5"):
        with pytest.raises(TspVideoError):
            parse_tious(bad)


# --------------------------------------------------------------------------------------------- CLI
def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tspvideo")
    eval_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_detection_writes_json(tmp_path, capsys):
    gt_path, pred_path, out = tmp_path / "gt.json", tmp_path / "pred.json", tmp_path / "out" / "r.json"
    gt_path.write_text(json.dumps(GT))
    pred_path.write_text(json.dumps(pred_json({"a": [(0, 10, "x", 0.9), (0, 10, "x", 0.8), (20, 40, "y", 0.5)],
                                               "b": [(5, 15, "x", 0.7)]})))
    code = _cli(["eval", "detection", "--gt", str(gt_path), "--pred", str(pred_path), "--subset", "validation",
                 "--out", str(out), "--by-length"])
    assert code == 0
    data = json.loads(out.read_text())
    assert set(data) >= {"tiou", "mAP", "average_mAP", "per_class", "by_length"}
    assert len(data["mAP"]) == len(data["tiou"]) == 10
    assert all(0 <= m <= 1 for m in data["mAP"])
    assert data["average_mAP"] == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)
    buckets = {b["name"]: b for b in data["by_length"]["buckets"]}
    assert buckets["XS"]["num_instances"] == 3 and buckets["XS"]["share"] == 1.0
    # DETAD's mAP_N, N = 3 instances / 2 classes: x: TP (P = .75/.75), FP, TP (P = 1.5/2.5) -> 0.8; y: 1.
    assert data["by_length"]["N"] == 1.5
    assert buckets["XS"]["average_mAP"] == pytest.approx((0.8 + 1.0) / 2)
    out_text = capsys.readouterr().out
    assert "average mAP:" in out_text and "avg mAP_N %" in out_text
    # Plain precision, one bucket with everything: the official average mAP again.
    assert _cli(["eval", "detection", "--gt", str(gt_path), "--pred", str(pred_path), "--subset", "validation",
                 "--out", str(out), "--by-length", "--plain-ap"]) == 0
    data = json.loads(out.read_text())
    assert data["by_length"]["buckets"][0]["average_mAP"] == pytest.approx(data["average_mAP"])


def test_cli_detad_analysis_json_table_and_figures(tmp_path, capsys):
    gt_path, pred_path, out = tmp_path / "gt.json", tmp_path / "pred.json", tmp_path / "r.json"
    gt_path.write_text(json.dumps(GT))
    pred_path.write_text(json.dumps(pred_json({"a": [(0, 10, "x", 0.9), (0, 10, "x", 0.8), (20, 40, "y", 0.5)],
                                               "b": [(5, 15, "x", 0.7), (50, 60, "x", 0.6)]})))
    figures = tmp_path / "figures"
    assert _cli(["eval", "detection", "--gt", str(gt_path), "--pred", str(pred_path), "--out", str(out),
                 "--detad", "--figures", str(figures)]) == 0
    data = json.loads(out.read_text())["detad"]
    assert set(data["sensitivity"]["characteristics"]) == {"coverage", "length", "num-instances"}
    assert data["sensitivity"]["tiou"] == pytest.approx(list(np.linspace(0.5, 0.95, 10)))
    assert data["false_positive"]["profile"][0]["top"] == "1G"
    assert (figures / "sensitivity_analysis.png").stat().st_size > 0
    assert (figures / "false_positive_analysis.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "num-instances" in printed and "false-positive profile" in printed
    with pytest.raises(TspVideoError, match="--figures"):
        _cli(["eval", "detection", "--gt", str(gt_path), "--pred", str(pred_path), "--figures", str(figures)])


def test_cli_thumos_protocol_reports_map_at_05(tmp_path, capsys):
    gt_path, pred_path, out = tmp_path / "gt.json", tmp_path / "pred.json", tmp_path / "r.json"
    gt_path.write_text(json.dumps(gt_json({"a": [(0, 10, "x")]})))
    pred_path.write_text(json.dumps(pred_json({"a": [(0, 6, "x", 0.9)]})))  # tIoU 0.6
    assert _cli(["eval", "detection", "--gt", str(gt_path), "--pred", str(pred_path),
                 "--protocol", "thumos14", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["tiou"] == pytest.approx(list(THUMOS14_TIOUS))
    assert data["mAP@0.5"] == 1.0
    assert data["average_mAP_0.3:0.7"] == pytest.approx(4 / 5)
    assert "mAP@0.5: 100.00%" in capsys.readouterr().out


def test_cli_malformed_input_raises_user_error(tmp_path):
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(GT))
    pred_path.write_text(json.dumps({"results": {"a": [{"segment": [3, 1], "label": "x", "score": 1}]}}))
    with pytest.raises(TspVideoError, match=r"pred.json: results\['a'\]\[0\]"):
        _cli(["eval", "detection", "--gt", str(gt_path), "--pred", str(pred_path)])


def test_result_to_dict_is_json_serialisable():
    result = evaluate_detection(GT, pred_json({"a": [(0, 10, "x", 0.9)]}))
    text = json.dumps(result.to_dict())
    assert not math.isnan(json.loads(text)["average_mAP"])


def test_integer_labels_and_numpy_numbers_are_accepted():
    # Integer labels take the entry-by-entry path, string labels the vectorized one: same numbers.
    gt = gt_json({"a": [(0, 10, "3"), (20, 30, "4")]})
    as_text = pred_json({"a": [(0, 10, "3", 0.9), (21, 30, "4", 0.8), (50, 60, "3", 0.95)]})
    as_int = {"results": {"a": [{"segment": [np.float64(s), np.int64(e)], "label": int(lab),
                                 "score": np.float32(sc)} for s, e, lab, sc in
                                [(0, 10, "3", 0.9), (21, 30, "4", 0.8), (50, 60, "3", 0.95)]]}}
    text_result, int_result = evaluate_detection(gt, as_text), evaluate_detection(gt, as_int)
    np.testing.assert_allclose(int_result.mAP, text_result.mAP)
    assert 0 < text_result.average_mAP < 1


def test_console_entry_point_exits_2_with_the_entry_named(tmp_path, capsys):
    from tspvideo.cli import main

    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(GT))
    pred_path.write_text(json.dumps({"results": {"a": [{"segment": [0, 1], "label": "x"}]}}))
    assert main(["eval", "detection", "--gt", str(gt_path), "--pred", str(pred_path)]) == 2
    assert "results['a'][0]: missing key 'score'" in capsys.readouterr().err


# ------------------------------------------------------------------------------ zero-length instances
def official_map(gt_rows, pred_rows, tious):
    """The official ActivityNet matching written out, NaN and all: tIoU = inter / union (0/0 = NaN for two
    zero-length segments), instances visited in descending ``argsort`` order (NaN first), a tIoU below the
    threshold ends the search (a NaN never does)."""
    classes = sorted({g[1] for g in gt_rows})
    table = np.zeros((len(classes), len(tious)))
    for ci, cls in enumerate(classes):
        gts = [g for g in gt_rows if g[1] == cls]
        preds = sorted((p for p in pred_rows if p[1] == cls), key=lambda p: -p[4])
        lock = np.full((len(tious), len(gts)), -1)
        tp = np.zeros((len(tious), len(preds)))
        fp = np.zeros((len(tious), len(preds)))
        for i, p in enumerate(preds):
            mine = [k for k, g in enumerate(gts) if g[0] == p[0]]
            if not mine:
                fp[:, i] = 1
                continue
            starts, ends = np.array([gts[k][2] for k in mine], float), np.array([gts[k][3] for k in mine], float)
            inter = (np.minimum(p[3], ends) - np.maximum(p[2], starts)).clip(0)
            with np.errstate(invalid="ignore", divide="ignore"):
                iou = inter / ((ends - starts) + (p[3] - p[2]) - inter)
            for t, thr in enumerate(tious):
                for j in iou.argsort()[::-1]:
                    if iou[j] < thr:
                        fp[t, i] = 1
                        break
                    if lock[t, mine[j]] >= 0:
                        continue
                    tp[t, i], lock[t, mine[j]] = 1, i
                    break
                if tp[t, i] == 0:
                    fp[t, i] = 1
        for t in range(len(tious)):
            ctp, cfp = np.cumsum(tp[t]), np.cumsum(fp[t])
            rec, prec = ctp / len(gts), ctp / np.maximum(ctp + cfp, 1e-12)
            mprec, mrec = np.r_[0.0, prec, 0.0], np.r_[0.0, rec, 1.0]
            for i in range(len(mprec) - 2, -1, -1):
                mprec[i] = max(mprec[i], mprec[i + 1])
            idx = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
            table[ci, t] = np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx])
    return table


ZERO_GT = gt_json({"a": [(0, 10, "x"), (12.5, 12.5, "x"), (20, 40, "y")], "b": [(5, 15, "x"), (0, 0, "y")]})


def test_predictions_equal_to_the_ground_truth_score_one_as_the_official_code():
    """ActivityNet v1.3 has zero-length instances: the official code scores them as matched by an equal
    prediction (its 0/0 tIoU is NaN, which passes); the strict rule can never match them."""
    pred = pred_json({"a": [(0, 10, "x", 0.9), (12.5, 12.5, "x", 0.85), (20, 40, "y", 0.8)],
                      "b": [(5, 15, "x", 0.7), (0, 0, "y", 0.6)]})
    result = evaluate_detection(ZERO_GT, pred)
    np.testing.assert_allclose(result.mAP, 1.0)
    gt_rows = [(v, lab, s, e) for v, info in ZERO_GT["database"].items()
               for s, e, lab in ((a["segment"][0], a["segment"][1], a["label"]) for a in info["annotations"])]
    pred_rows = [(v, p["label"], p["segment"][0], p["segment"][1], p["score"]) for v, ps in pred["results"].items()
                 for p in ps]
    np.testing.assert_allclose(official_map(gt_rows, pred_rows, list(ACTIVITYNET_TIOUS)).mean(axis=0), 1.0)
    strict = evaluate_detection(ZERO_GT, pred, zero_length="strict")
    np.testing.assert_allclose(strict.per_class["x"], (1 + 2 / 3) / 3)  # the zero-length x instance: a miss
    np.testing.assert_allclose(strict.per_class["y"], 1 / 2)
    with pytest.raises(TspVideoError, match="zero-length rule"):
        evaluate_detection(ZERO_GT, pred, zero_length="lenient")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_official_rule_matches_the_official_algorithm_with_zero_length_segments(seed):
    """Random ground truth and predictions, a third of them zero-length (two zero-length segments match
    wherever they lie, as the official NaN does); distinct scores and real-valued times avoid tie rules."""
    rng = np.random.default_rng(seed)
    classes = ["c0", "c1", "c2"]
    videos, gt_rows = {}, []
    for v in range(8):
        anns = []
        for _ in range(rng.integers(1, 5)):
            s = float(rng.uniform(0, 40))
            anns.append((s, s if rng.random() < 0.35 else s + float(rng.uniform(1, 15)), classes[rng.integers(0, 3)]))
        videos[f"v{v}"] = anns
        gt_rows += [(f"v{v}", lab, s, e) for s, e, lab in anns]
    scores = iter(rng.permutation(1000) / 1000)
    preds, pred_rows = {}, []
    for v in range(8):
        entries = []
        for _ in range(rng.integers(0, 12)):
            if rng.random() < 0.5:
                s0, e0, lab = videos[f"v{v}"][rng.integers(0, len(videos[f"v{v}"]))]
                s = s0 + float(rng.uniform(-1, 1))
                e = s if e0 == s0 and rng.random() < 0.7 else max(s + 0.5, e0 + float(rng.uniform(-1, 1)))
            else:
                s, lab = float(rng.uniform(0, 45)), classes[rng.integers(0, 3)]
                e = s if rng.random() < 0.3 else s + float(rng.uniform(1, 15))
            entries.append((s, e, lab, float(next(scores))))
        preds[f"v{v}"] = entries
        pred_rows += [(f"v{v}", lab, s, e, sc) for s, e, lab, sc in entries]
    tious = [0.1, 0.3, 0.5, 0.7, 0.9]
    result = evaluate_detection(gt_json(videos), pred_json(preds), tious=tious)
    expected = official_map(gt_rows, pred_rows, tious)
    got = np.stack([result.per_class[c] for c in sorted({g[1] for g in gt_rows})])
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_cli_zero_length_option(tmp_path):
    from tspvideo.cli import main

    (tmp_path / "gt.json").write_text(json.dumps(ZERO_GT))
    pred = pred_json({"a": [(0, 10, "x", 0.9), (12.5, 12.5, "x", 0.85), (20, 40, "y", 0.8)],
                      "b": [(5, 15, "x", 0.7), (0, 0, "y", 0.6)]})
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    common = ["eval", "detection", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "pred.json")]
    assert main([*common, "--out", str(tmp_path / "o.json")]) == 0
    out = json.loads((tmp_path / "o.json").read_text())
    assert out["average_mAP"] == pytest.approx(1.0) and out["zero_length"] == "official"
    assert main([*common, "--zero-length", "strict", "--out", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["average_mAP"] == pytest.approx(((1 + 2 / 3) / 3 + 1 / 2) / 2)
