"""Feature similarity: pair means, instance assignment, ROC AUC, the probe, folders, plot and CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from tspvideo.commands import similarity as similarity_command
from tspvideo.core.errors import TspVideoError
from tspvideo.evaluation.similarity import (
    compare_feature_sets,
    cosine_similarity_matrix,
    dataset_temporal_sensitivity,
    feature_times,
    instance_ids,
    load_features,
    probe_auc,
    roc_auc,
    temporal_sensitivity_scores,
)


def test_feature_times_are_clip_centres():
    np.testing.assert_allclose(feature_times(3), [8 / 15, 24 / 15, 40 / 15])
    np.testing.assert_allclose(feature_times(2, clip_len=8, fps=30, stride=4), [4 / 30, 8 / 30])


def test_instance_ids_merge_overlaps_and_include_ends():
    times = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    ids = instance_ids(times, [(1.0, 2.5), (2.0, 3.0), (5.0, 5.0)])
    assert ids.tolist() == [-1, 0, 0, 0, -1, 1, -1]


def test_hand_computed_pair_means():
    times = np.arange(6, dtype=float)
    # Instance 0 covers t=0,1; instance 1 covers t=2; t=3..5 is background.
    features = np.array([[1, 0, 0], [2, 0, 0], [1, 1, 0], [0, 0, 1], [0, 0, 3], [0, 1, 0]], dtype=float)
    s = temporal_sensitivity_scores(features, times, [(0, 1), (2, 2)], probe_folds=0)
    assert s["fg_fg_within"] == pytest.approx(1.0)  # only pair: (0, 1), parallel
    assert s["fg_fg_across"] == pytest.approx(1 / np.sqrt(2))  # (0,2), (1,2)
    # fg-bg: rows 0,1 vs 3,4,5 are 0; row 2 vs 5 is 1/sqrt(2) -> mean over 9 pairs.
    assert s["fg_bg"] == pytest.approx((1 / np.sqrt(2)) / 9)
    assert s["bg_bg"] == pytest.approx(1 / 3)  # (3,4)=1, (3,5)=0, (4,5)=0
    assert s["contrast"] == pytest.approx(1 - (1 / np.sqrt(2)) / 9)
    assert s["probe_auc"] is None
    assert (s["num_features"], s["num_foreground"], s["num_instances"]) == (6, 3, 2)


def test_pair_means_agree_with_the_similarity_matrix():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 8))
    times = feature_times(40)
    segments = [(3.0, 10.0), (20.0, 30.0)]
    s = temporal_sensitivity_scores(features, times, segments, probe_folds=0)
    sim = cosine_similarity_matrix(features)
    inst = instance_ids(times, segments)
    fg, bg = inst >= 0, inst < 0
    off = ~np.eye(40, dtype=bool)
    same = (inst[:, None] == inst[None, :]) & fg[:, None] & off
    assert s["fg_fg_within"] == pytest.approx(sim[same].mean())
    assert s["fg_bg"] == pytest.approx(sim[np.ix_(fg, bg)].mean())
    bg_block = sim[np.ix_(bg, bg)]
    assert s["bg_bg"] == pytest.approx(bg_block[~np.eye(int(bg.sum()), dtype=bool)].mean())


def test_no_foreground_gives_none():
    s = temporal_sensitivity_scores(np.eye(4), feature_times(4), [])
    assert s["fg_fg_within"] is None and s["fg_bg"] is None and s["probe_auc"] is None
    assert s["bg_bg"] == pytest.approx(0.0)


def test_roc_auc_hand_cases_and_ties():
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert roc_auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert roc_auc([0.5, 0.5, 0.5], [0, 1, 1]) == 0.5
    assert roc_auc([0.1, 0.5, 0.5, 0.9], [0, 0, 1, 1]) == pytest.approx(0.875)
    assert np.isnan(roc_auc([1, 2], [1, 1]))


def test_roc_auc_matches_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    scores, labels = rng.normal(size=200).round(1), rng.random(200) < 0.3
    assert roc_auc(scores, labels) == pytest.approx(metrics.roc_auc_score(labels, scores))


def _toy_video(rng, num=120, dim=32, signal=2.0):
    times = feature_times(num)
    segments = [(20.0, 45.0), (80.0, 100.0)]
    fg = instance_ids(times, segments) >= 0
    # The same "foreground" direction in every video, as a temporally-sensitive encoder would give.
    direction = np.random.default_rng(123).normal(size=dim)
    features = rng.normal(size=(num, dim)) + signal * fg[:, None] * direction
    return features.astype(np.float32), times, segments


def test_probe_separates_and_is_deterministic():
    rng = np.random.default_rng(0)
    features, times, segments = _toy_video(rng, signal=3.0)
    a = temporal_sensitivity_scores(features, times, segments)
    b = temporal_sensitivity_scores(features, times, segments)
    assert a["probe_auc"] == b["probe_auc"]
    assert a["probe_auc"] > 0.95
    noise, _, _ = _toy_video(np.random.default_rng(1), signal=0.0)
    chance = temporal_sensitivity_scores(noise, times, segments)
    assert chance["probe_auc"] < 0.8
    assert a["contrast"] > chance["contrast"]


def test_probe_with_more_dimensions_than_samples():
    rng = np.random.default_rng(2)
    y = np.arange(20) % 2 == 0
    x = rng.normal(size=(20, 300)) + 2.0 * y[:, None]
    assert probe_auc(x, y, (np.arange(20) // 2) % 4) > 0.9


def _write_folder(folder: Path, videos: dict, signal: float, seed: int, sidecar: bool = False):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for stem in videos:
        features, times, _ = _toy_video(rng, signal=signal)
        np.save(folder / f"{stem}.npy", features)
        if sidecar:
            (folder / f"{stem}.json").write_text(json.dumps({"clip_len": 16, "fps": 15, "stride": 16,
                                                              "feature_times": times.tolist()}))


def _gt(stems):
    return {"database": {s: {"subset": "validation", "annotations": [
        {"segment": [20.0, 45.0], "label": "x"}, {"segment": [80.0, 100.0], "label": "x"}]} for s in stems}}


def test_load_features_reads_sidecar(tmp_path):
    np.save(tmp_path / "v.npy", np.ones((3, 2), dtype=np.float32))
    (tmp_path / "v.json").write_text(json.dumps({"clip_len": 8, "fps": 30, "stride": 8}))
    _, times = load_features(tmp_path / "v.npy")
    np.testing.assert_allclose(times, [4 / 30, 12 / 30, 20 / 30])
    (tmp_path / "v.json").write_text(json.dumps({"feature_times": [1.0, 2.0]}))
    with pytest.raises(TspVideoError, match="feature_times"):
        load_features(tmp_path / "v.npy")
    np.save(tmp_path / "bad.npy", np.ones(3))
    with pytest.raises(TspVideoError, match=r"\[T, C\]"):
        load_features(tmp_path / "bad.npy")


def test_dataset_scores_and_comparison(tmp_path):
    ids = ["aaa", "bbb", "ccc", "ddd"]
    # File stems with the ActivityNet "v_" prefix must resolve to ids without it.
    _write_folder(tmp_path / "tsp", [f"v_{i}" for i in ids] + ["v_unknown"], signal=3.0, seed=0, sidecar=True)
    _write_folder(tmp_path / "tac", [f"v_{i}" for i in ids[:3]], signal=0.3, seed=1)
    single = dataset_temporal_sensitivity(tmp_path / "tsp", _gt(ids))
    assert single["summary"]["num_videos"] == 4
    assert single["skipped"] == ["v_unknown"]
    assert single["summary"]["pooled_probe_auc"] > 0.9
    assert single["summary"]["probe_auc"] is None  # per-video probes are opt-in over a dataset
    comparison = compare_feature_sets([tmp_path / "tsp", tmp_path / "tac"], _gt(ids), per_video_probe=True)
    assert comparison["videos"] == ["aaa", "bbb", "ccc"]  # ground-truth ids: sources may spell them differently
    tsp = comparison["sets"][str(tmp_path / "tsp")]["summary"]
    tac = comparison["sets"][str(tmp_path / "tac")]["summary"]
    assert tsp["num_videos"] == tac["num_videos"] == 3
    assert tsp["contrast"] > tac["contrast"]
    assert tsp["probe_auc"] > tac["probe_auc"]


def test_comparison_matches_released_v_names_with_bare_names(tmp_path):
    # Released files name videos v_<id>; one's own extraction of files named <id>.mp4 does not.
    ids = ["aaa", "bbb", "ccc"]
    _write_folder(tmp_path / "released", [f"v_{i}" for i in ids], signal=3.0, seed=0)
    _write_folder(tmp_path / "mine", ids[1:] + ["zzz"], signal=0.3, seed=1)
    comparison = compare_feature_sets([tmp_path / "released", tmp_path / "mine"], _gt(ids))
    assert comparison["videos"] == ["bbb", "ccc"]
    assert sorted(comparison["sets"][str(tmp_path / "released")]["per_video"]) == ["v_bbb", "v_ccc"]
    assert sorted(comparison["sets"][str(tmp_path / "mine")]["per_video"]) == ["bbb", "ccc"]
    with pytest.raises(TspVideoError, match="none of its videos is in the ground truth"):
        compare_feature_sets([tmp_path / "released", tmp_path / "mine"], _gt(["qqq"]))


def _cli(argv):
    parser = argparse.ArgumentParser(prog="tspvideo")
    similarity_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_single_video_plot_and_json(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    _write_folder(tmp_path / "tsp", ["v_aaa"], signal=3.0, seed=0)
    _write_folder(tmp_path / "tac", ["v_aaa"], signal=0.3, seed=1)
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(_gt(["aaa"])))
    fig, out = tmp_path / "fig.png", tmp_path / "scores.json"
    code = _cli(["similarity", str(tmp_path / "tac" / "v_aaa.npy"), str(tmp_path / "tsp" / "v_aaa.npy"),
                 "--annotations", str(gt_path), "--out", str(fig), "--json", str(out)])
    assert code == 0
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(out.read_text())
    assert set(data["scores"]) == {"tac", "tsp"}
    assert data["scores"]["tsp"]["contrast"] > data["scores"]["tac"]["contrast"]
    assert "fg-bg" in capsys.readouterr().out


def test_cli_compare_and_errors(tmp_path, capsys):
    _write_folder(tmp_path / "a", ["v_x1", "v_x2"], signal=3.0, seed=0)
    _write_folder(tmp_path / "b", ["v_x1", "v_x2"], signal=0.0, seed=1)
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(_gt(["x1", "x2"])))
    assert _cli(["similarity", "--compare", str(tmp_path / "a"), str(tmp_path / "b"),
                 "--annotations", str(gt_path)]) == 0
    printed = capsys.readouterr().out
    assert "probe AUC (across videos)" in printed and "2 videos" in printed
    with pytest.raises(TspVideoError, match="--annotations"):
        _cli(["similarity", "--compare", str(tmp_path / "a")])
    with pytest.raises(TspVideoError, match="not in"):
        _cli(["similarity", str(tmp_path / "a" / "v_x1.npy"), "--annotations", str(gt_path), "--video", "zz"])


def test_figure_colours_follow_the_data_or_the_given_limits(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from tspvideo.evaluation.similarity import colour_limits, cosine_similarity_matrix, plot_similarity

    # Near-flat features (as from random weights): every cosine is about 0.99, which a fixed [0, 1]
    # scale draws as one flat colour.
    rng = np.random.default_rng(0)
    flat = (1.0 + 0.05 * rng.standard_normal((30, 16))).astype(np.float32)
    times = np.arange(30, dtype=np.float64)
    sim = cosine_similarity_matrix(flat)
    off_diagonal = sim[~np.eye(30, dtype=bool)]
    low, high = plot_similarity([("random", flat, times)], [(3.0, 9.0)], tmp_path / "f.png")
    assert (low, high) == pytest.approx((off_diagonal.min(), off_diagonal.max()))
    assert 0.9 < low < high < 1.0
    assert plot_similarity([("random", flat, times)], [], tmp_path / "g.png", vmin=0.0, vmax=1.0) == (0.0, 1.0)
    assert colour_limits([np.ones((3, 3))]) == pytest.approx((1 - 1e-3, 1 + 1e-3))  # constant: still a range

    np.save(tmp_path / "v.npy", flat)
    assert _cli(["similarity", str(tmp_path / "v.npy"), "--out", str(tmp_path / "cli.png"),
                 "--vmin", "-1", "--vmax", "1"]) == 0
    assert "colour scale -1 to 1" in capsys.readouterr().out
