"""Proposal AR-AN / AUC: hand-computed cases, a loop-by-loop reference, bad input and the CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from tspvideo.commands import eval as eval_command
from tspvideo.core.errors import TspVideoError
from tspvideo.evaluation.proposals import evaluate_proposals


def gt_json(videos: dict[str, list[tuple[float, float]]]) -> dict:
    return {"database": {vid: {"subset": "validation", "duration": 100.0,
                               "annotations": [{"segment": [s, e], "label": "a"} for s, e in segs]}
                         for vid, segs in videos.items()}}


def prop_json(videos: dict[str, list[tuple[float, float, float]]]) -> dict:
    return {"results": {vid: [{"segment": [s, e], "score": sc} for s, e, sc in props]
                        for vid, props in videos.items()}}


def test_hand_computed_curve():
    # Two videos, one instance each; each has a wrong top proposal and a right second one.
    # V=2, N=4 -> all kept; at point k each video uses min(k, 2) proposals and AN = k.
    gt = gt_json({"a": [(10, 20)], "b": [(30, 40)]})
    props = prop_json({"a": [(50, 60, 0.9), (10, 20, 0.8)], "b": [(0, 5, 0.7), (30, 40, 0.6)]})
    result = evaluate_proposals(gt, props)
    assert result["AR@1"] == 0.0
    assert result["AR@10"] == 1.0 and result["AR@100"] == 1.0
    # Trapezoid from AN=1 to 100: 0.5 on [1, 2] then 1 on 98 unit steps, divided by 100.
    assert result["AUC"] == pytest.approx(0.985)
    an = np.asarray(result["curve"]["average_number_of_proposals"])
    np.testing.assert_allclose(an, np.arange(1, 101))
    assert len(result["curve"]["recall"]) == 10


def test_perfect_single_proposals_give_full_recall():
    gt = gt_json({"a": [(10, 20)], "b": [(30, 40)]})
    result = evaluate_proposals(gt, prop_json({"a": [(10, 20, 1.0)], "b": [(30, 40, 1.0)]}))
    assert result["AR@1"] == result["AR@100"] == 1.0
    # The official curve starts at AN=1, so the area over [1, 100] / 100 tops out at 0.99.
    assert result["AUC"] == pytest.approx(0.99)


def test_perfect_proposals_of_several_instances_stay_below_099():
    # 0.99 needs one instance per video: with 3, one proposal a video finds a third of them at AN=1 and
    # two thirds at AN=2, so the area is (0.5 + 0.8333 + 97) / 100.
    segments = [(10, 20), (30, 40), (50, 60)]
    gt = gt_json({"a": segments, "b": segments})
    props = {v: [(s, e, 1.0 - 0.1 * i) for i, (s, e) in enumerate(segments)] for v in ("a", "b")}
    result = evaluate_proposals(gt, prop_json(props))
    assert result["AR@1"] == pytest.approx(1 / 3) and result["AR@100"] == 1.0
    assert result["AUC"] == pytest.approx((0.5 + 5 / 6 + 97) / 100)


def test_recall_averages_over_thresholds():
    gt = gt_json({"a": [(0, 10)]})
    # tIoU 0.7: recalled at 0.5..0.7 (5 of 10 thresholds).
    result = evaluate_proposals(gt, prop_json({"a": [(0, 7, 1.0)]}))
    assert result["AR@1"] == pytest.approx(0.5)


def test_video_without_proposals_counts_zero_recall():
    gt = gt_json({"a": [(10, 20)], "b": [(30, 40)]})
    result = evaluate_proposals(gt, prop_json({"a": [(10, 20, 1.0)]}))
    assert result["AR@100"] == pytest.approx(0.5)
    assert any("no proposal" in w for w in result["warnings"])


def test_empty_results_give_zero():
    result = evaluate_proposals(gt_json({"a": [(10, 20)]}), {"results": {}})
    assert result["AR@1"] == result["AR@100"] == result["AUC"] == 0.0


def test_ties_keep_input_order():
    gt = gt_json({"a": [(10, 20)]})
    wrong_first = evaluate_proposals(gt, prop_json({"a": [(50, 60, 0.5), (10, 20, 0.5)]}))
    right_first = evaluate_proposals(gt, prop_json({"a": [(10, 20, 0.5), (50, 60, 0.5)]}))
    # With 2 proposals in one video, AN=1 uses the first of the two.
    assert wrong_first["AR@1"] == 0.0 and right_first["AR@1"] == 1.0


def test_labels_are_optional_and_unknown_videos_reported():
    gt = gt_json({"a": [(10, 20)]})
    with_label = {"results": {"a": [{"segment": [10, 20], "score": 1.0, "label": "whatever"}]}}
    assert evaluate_proposals(gt, with_label)["AR@1"] == 1.0
    unknown = prop_json({"a": [(10, 20, 1.0)], "zzz": [(0, 1, 1.0)]})
    with pytest.raises(TspVideoError, match="'zzz'"):
        evaluate_proposals(gt, unknown)
    ignored = evaluate_proposals(gt, unknown, unknown_videos="ignore")
    assert ignored["AR@1"] == 1.0 and any("'zzz'" in w for w in ignored["warnings"])


@pytest.mark.parametrize("props, fragment", [
    ({"results": {"a": [{"segment": [5, 1], "score": 1.0}]}}, r"results\['a'\]\[0\]: segment end 1 < start 5"),
    ({"results": {"a": [{"segment": [1, 5]}]}}, r"results\['a'\]\[0\]: missing key 'score'"),
    ({"results": {"a": [{"segment": [1, 5], "score": float("inf")}]}}, "finite number"),
])
def test_malformed_proposals(props, fragment):
    with pytest.raises(TspVideoError, match=fragment):
        evaluate_proposals(gt_json({"a": [(10, 20)]}), props)


def test_small_max_avg_proposals_has_no_ar_at_100():
    result = evaluate_proposals(gt_json({"a": [(10, 20)]}), prop_json({"a": [(10, 20, 1.0)]}),
                                max_avg_proposals=10)
    assert result["AR@100"] is None and result["AR@10"] == 1.0


# ---------------------------------------------------------------------------------- loop reference
def _iou_matrix(props, gts):
    p, g = np.asarray(props, float).reshape(-1, 2), np.asarray(gts, float).reshape(-1, 2)
    inter = np.clip(np.minimum(p[:, None, 1], g[None, :, 1]) - np.maximum(p[:, None, 0], g[None, :, 0]), 0, None)
    union = (p[:, 1] - p[:, 0])[:, None] + (g[:, 1] - g[:, 0])[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0)


def reference_ar_an(gts, props, tious, max_avg):
    """The official algorithm, video by video and point by point."""
    num_videos = len(gts)
    total = sum(len(p) for p in props)
    ratio = max_avg * float(num_videos) / total
    kept = []
    for plist in props:
        ordered = sorted(range(len(plist)), key=lambda i: (-plist[i][2], i))
        n = min(int(len(plist) * ratio), len(plist))
        kept.append([plist[i][:2] for i in ordered[:n]])
    total_kept = sum(len(k) for k in kept)
    pcn = np.arange(1, 101) / 100.0 * (max_avg * float(num_videos) / total_kept)
    num_gt = sum(len(g) for g in gts)
    recall = np.zeros((len(tious), 100))
    for ti, thr in enumerate(tious):
        for j in range(100):
            hits = 0
            for g, k in zip(gts, kept, strict=True):
                if not k or not g:
                    continue
                n = min(int(len(k) * pcn[j]), len(k))
                iou = _iou_matrix(k[:n], g) if n else np.zeros((0, len(g)))
                hits += int((iou >= thr - 1e-9).any(axis=0).sum())
            recall[ti, j] = hits / num_gt
    ar = recall.mean(axis=0)
    an = pcn * total_kept / num_videos
    auc = float(np.sum((an[1:] - an[:-1]) * (ar[1:] + ar[:-1]) / 2) / an[-1])
    return ar, an, auc


@pytest.mark.parametrize("seed", [0, 1])
def test_vectorized_matches_loop_reference(seed):
    rng = np.random.default_rng(seed)
    gts, props, gt_videos, prop_videos = [], [], {}, {}
    for v in range(8):
        segs = [(s, s + int(rng.integers(2, 20))) for s in rng.integers(0, 60, size=rng.integers(1, 4))]
        # Uneven proposal counts (some videos have none, some many) exercise the thinning.
        count = int(rng.choice([0, 3, 15, 40]))
        plist = []
        for _ in range(count):
            s0, e0 = segs[rng.integers(0, len(segs))]
            s = int(s0 + rng.integers(-4, 5))
            plist.append((s, max(s + 1, int(e0 + rng.integers(-4, 5))), round(float(rng.random()), 1)))
        gts.append(segs)
        props.append(plist)
        gt_videos[f"v{v}"] = segs
        prop_videos[f"v{v}"] = plist
    tious = [0.5, 0.6, 0.7, 0.8, 0.9]
    result = evaluate_proposals(gt_json(gt_videos), prop_json(prop_videos), max_avg_proposals=5, tious=tious)
    ar, an, auc = reference_ar_an(gts, props, tious, max_avg=5)
    np.testing.assert_allclose(result["curve"]["average_recall"], ar, atol=1e-12)
    np.testing.assert_allclose(result["curve"]["average_number_of_proposals"], an, atol=1e-12)
    assert result["AUC"] == pytest.approx(auc, abs=1e-12)
    assert 0 < auc < 1


def test_cli_proposals_writes_json(tmp_path, capsys):
    gt_path, pred_path, out = tmp_path / "gt.json", tmp_path / "p.json", tmp_path / "r.json"
    gt_path.write_text(json.dumps(gt_json({"a": [(10, 20)], "b": [(30, 40)]})))
    pred_path.write_text(json.dumps(prop_json({"a": [(50, 60, 0.9), (10, 20, 0.8)],
                                               "b": [(0, 5, 0.7), (30, 40, 0.6)]})))
    parser = argparse.ArgumentParser(prog="tspvideo")
    eval_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["eval", "proposals", "--gt", str(gt_path), "--pred", str(pred_path),
                              "--out", str(out)])
    assert args.func(args) == 0
    data = json.loads(out.read_text())
    assert {"AR@1", "AR@10", "AR@100", "AUC", "curve"} <= set(data)
    assert data["AUC"] == pytest.approx(0.985)
    assert "AUC" in capsys.readouterr().out
