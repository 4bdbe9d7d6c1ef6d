"""The localization probe: learns an easy synthetic signal, fails on time-shuffled features, deterministic."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from tspvideo.commands import probe as probe_command
from tspvideo.evaluation.detection import evaluate_detection
from tspvideo.evaluation.proposals import evaluate_proposals
from tspvideo.localization import (
    ProbeConfig,
    ProbeModel,
    ProbeVideo,
    make_targets,
    predict,
    soft_nms,
    train_probe,
)

EPOCHS = 30


def make_synthetic_features(root: Path, num_videos: int = 30, channels: int = 32, num_classes: int = 3,
                            seed: int = 0, shuffle_time: bool = False, signal: float = 2.0) -> dict:
    """Feature folder whose clips inside an action carry ``fg + class prototype`` on top of noise.

    A clip's signal is proportional to its overlap with the action, as a real encoder's would blur at
    boundaries. ``shuffle_time`` permutes each video's features along time: the per-video content
    (and so the class) stays, the temporal alignment with the ground truth is destroyed.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    fg = rng.normal(size=channels)
    fg /= np.linalg.norm(fg)
    protos = rng.normal(size=(num_classes, channels))
    protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    database = {}
    for v in range(num_videos):
        duration = float(rng.uniform(40, 80))
        t = (int(duration * 15) - 16) // 16 + 1
        clip_start = np.arange(t) * 16 / 15
        centres = (np.arange(t) * 16 + 8) / 15
        segments, cursor = [], rng.uniform(2, 10)
        for _ in range(int(rng.integers(1, 3))):
            length = rng.uniform(8, 22)
            if cursor + length > duration - 2:
                break
            segments.append((cursor, cursor + length, int(rng.integers(num_classes))))
            cursor += length + rng.uniform(4, 12)
        feats = rng.normal(size=(t, channels))
        for s, e, c in segments:
            overlap = np.clip(np.minimum(clip_start + 16 / 15, e) - np.maximum(clip_start, s), 0, None) / (16 / 15)
            feats += signal * overlap[:, None] * (fg + protos[c])[None]
        if shuffle_time:
            feats = feats[rng.permutation(t)]
        stem = f"video_{v:03d}"
        np.save(root / f"{stem}.npy", feats.astype(np.float32))
        (root / f"{stem}.json").write_text(json.dumps({
            "model": "synthetic", "weights": None, "clip_len": 16, "fps": 15, "stride": 16, "num_features": t,
            "feature_times": centres.tolist(), "video_duration": duration}))
        database[stem] = {"subset": "training" if v < 2 * num_videos // 3 else "validation", "duration": duration,
                          "annotations": [{"segment": [round(s, 3), round(e, 3)], "label": f"class_{c}"}
                                          for s, e, c in segments]}
    gt = {"version": "synthetic", "database": database}
    (root / "annotations.json").write_text(json.dumps(gt))
    return gt


def _validation_ids(gt: dict) -> list[str]:
    return sorted(k for k, v in gt["database"].items() if v["subset"] == "validation")


def _fit_and_score(root: Path, gt: dict, config: ProbeConfig | None = None, epochs: int = EPOCHS):
    model = train_probe(root, gt, seed=0, epochs=epochs, config=config)
    outputs = predict(model, root, _validation_ids(gt), gt)
    detection = evaluate_detection(gt, outputs["detection"], subset="validation")
    proposals = evaluate_proposals(gt, outputs["proposals"], subset="validation")
    return model, outputs, detection, proposals


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    gt = make_synthetic_features(root)
    return root, gt, _fit_and_score(root, gt)


def test_probe_learns_easy_signal(clean):
    _, _, (model, outputs, detection, proposals) = clean
    assert detection.mAP_at(0.5) > 0.7
    assert proposals["AUC"] > 0.6
    assert model.history[-1] < model.history[0]
    results = outputs["detection"]["results"]
    assert outputs["detection"]["version"] and outputs["detection"]["external_data"] == {}
    entry = next(iter(results.values()))[0]
    assert set(entry) == {"segment", "label", "score"} and entry["label"].startswith("class_")
    assert all("label" not in p for ps in outputs["proposals"]["results"].values() for p in ps)


def test_probe_fails_on_time_shuffled_features(clean, tmp_path):
    _, _, (_, _, clean_detection, _) = clean
    root = tmp_path / "shuffled"
    gt = make_synthetic_features(root, shuffle_time=True)
    _, _, detection, _ = _fit_and_score(root, gt)
    assert detection.mAP_at(0.5) < 0.3
    assert detection.mAP_at(0.5) < 0.5 * clean_detection.mAP_at(0.5)


def test_probe_is_deterministic_on_native_grid(clean, tmp_path):
    root, gt, _ = clean
    config = ProbeConfig(temporal_size=None)
    first = predict(train_probe(root, gt, seed=3, epochs=5, config=config), root, _validation_ids(gt), gt)
    model = train_probe(root, gt, seed=3, epochs=5, config=config)
    assert predict(model, root, _validation_ids(gt), gt) == first
    model.save(tmp_path / "probe.pt")
    assert predict(ProbeModel.load(tmp_path / "probe.pt"), root, _validation_ids(gt), gt) == first


def test_cli_writes_predictions_proposals_and_metrics(clean, tmp_path, capsys):
    root, _, _ = clean
    parser = argparse.ArgumentParser()
    probe_command.register(parser.add_subparsers(dest="command"))
    out = tmp_path / "run"
    args = parser.parse_args(["probe", str(root), "--annotations", str(root / "annotations.json"),
                              "--out", str(out), "--epochs", "3", "--quiet"])
    assert args.func(args) == 0
    for name in ("predictions.json", "proposals.json", "metrics.json", "probe_model.pt"):
        assert (out / name).is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_eval_videos"] == 10 and len(metrics["detection"]["mAP"]) == 10
    assert {"AR@1", "AR@10", "AR@100", "AUC"} <= set(metrics["proposals"])
    printed = capsys.readouterr().out
    assert "average mAP" in printed and "AUC" in printed


def test_targets_follow_ground_truth():
    times = np.arange(20) + 0.5  # 1 s cells
    video = ProbeVideo("v", np.zeros((20, 4), np.float32), times, 1.0, 20.0,
                       segments=np.array([[5.0, 10.5]]), labels=np.array([2]))
    targets = make_targets(video)
    np.testing.assert_allclose(targets["actionness"][5:10], 1.0)
    assert targets["actionness"][10] == pytest.approx(0.5) and targets["actionness"][:5].sum() == 0
    assert targets["start"].argmax() in (4, 5) and targets["start"][12:].sum() == 0
    assert targets["end"].argmax() in (9, 10)
    assert set(targets["label"][5:10]) == {2} and targets["label"][0] == -1


def test_soft_nms_decays_overlaps():
    segments = np.array([[0.0, 10.0], [0.0, 10.0], [20.0, 30.0]])
    kept, scores = soft_nms(segments, np.array([0.9, 0.8, 0.5]))
    assert scores[0] == pytest.approx(0.9)
    assert kept[1].tolist() == [20.0, 30.0]  # the duplicate fell below the disjoint segment
    assert scores[2] == pytest.approx(0.8 * np.exp(-1 / 0.5))
