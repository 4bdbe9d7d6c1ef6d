"""Speed of the evaluation suite on an ActivityNet-sized synthetic benchmark.

Builds ground truth (default 5,000 videos, 200 classes, 1-3 instances each) and predictions (100 per
video, most near an instance, some random), then times parsing/validation, detection mAP over 10
tIoUs, the length breakdown and proposal AR-AN, plus a dense THUMOS14-like case (213 videos, 2,000
detections and 50 instances each), and prints the median of a few runs.

    python benchmarks/eval_speed.py [--num-videos 5000] [--per-video 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from tspvideo.commands import add_num_videos
from tspvideo.evaluation.detad import DETAD_SETTINGS, prepare_detad, sensitivity_analysis
from tspvideo.evaluation.detad_fp import false_positive_profile
from tspvideo.evaluation.detection import THUMOS14_TIOUS, evaluate_detection
from tspvideo.evaluation.io import load_ground_truth, load_predictions
from tspvideo.evaluation.lengths import length_breakdown
from tspvideo.evaluation.proposals import evaluate_proposals


def synthetic(num_videos: int, per_video: int, num_classes: int = 200, seed: int = 0) -> tuple[dict, dict]:
    """ActivityNet-like ground truth and detections (plain Python dicts, as json.load returns)."""
    rng = np.random.default_rng(seed)
    database, results = {}, {}
    for v in range(num_videos):
        vid = f"v{v:06d}"
        duration = float(rng.uniform(30, 240))
        label = f"class_{rng.integers(num_classes):03d}"
        anns = []
        for _ in range(int(rng.integers(1, 4))):
            length = float(rng.uniform(2, duration / 2))
            start = float(rng.uniform(0, duration - length))
            anns.append({"segment": [start, start + length], "label": label})
        database[vid] = {"subset": "validation", "duration": duration, "annotations": anns}
        near = rng.random(per_video) < 0.7
        which = rng.integers(len(anns), size=per_video)
        base = np.array([anns[i]["segment"] for i in which])
        jitter = rng.normal(scale=0.15, size=(per_video, 2)) * (base[:, 1:] - base[:, :1])
        rand_start = rng.uniform(0, duration, size=per_video)
        rand = np.stack([rand_start, rand_start + rng.uniform(1, duration / 2, size=per_video)], axis=1)
        segs = np.where(near[:, None], base + jitter, rand)
        segs = np.sort(np.clip(segs, 0, duration), axis=1)
        labels = np.where(rng.random(per_video) < 0.8, label, [f"class_{c:03d}" for c in
                                                               rng.integers(num_classes, size=per_video)])
        scores = rng.random(per_video)
        results[vid] = [{"segment": [float(s), float(e)], "label": str(lab), "score": float(sc)}
                        for (s, e), lab, sc in zip(segs, labels, scores, strict=True)]
    return {"database": database}, {"results": results}


def dense(num_videos: int = 213, per_video: int = 2000, instances: int = 50, seed: int = 0) -> tuple[dict, dict]:
    """THUMOS14-like density: long videos, dozens of instances and thousands of detections each."""
    rng = np.random.default_rng(seed)
    database, results = {}, {}
    for v in range(num_videos):
        label = f"class_{v % 20:02d}"
        starts = rng.uniform(0, 1500, size=instances)
        database[f"t{v:04d}"] = {"subset": "test", "annotations": [
            {"segment": [float(s), float(s + rng.uniform(1, 20))], "label": label} for s in starts]}
        starts = rng.uniform(0, 1500, size=per_video)
        results[f"t{v:04d}"] = [{"segment": [float(s), float(s + rng.uniform(1, 20))], "label": label,
                                 "score": float(rng.random())} for s in starts]
    return {"database": database}, {"results": results}


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_num_videos(parser, 5000, "synthetic videos")
    parser.add_argument("--per-video", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    gt_obj, pred_obj = synthetic(args.num_videos, args.per_video)
    num_pred = args.num_videos * args.per_video
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        gt_path, pred_path = Path(tmp) / "gt.json", Path(tmp) / "pred.json"
        gt_path.write_text(json.dumps(gt_obj))
        pred_path.write_text(json.dumps(pred_obj))
        t, (gt, pred) = timed(lambda: (load_ground_truth(gt_path), load_predictions(pred_path)), args.repeats)
        rows.append(("read + validate JSON files", t, ""))
    t, det = timed(lambda: evaluate_detection(gt, pred), args.repeats)
    rows.append(("detection mAP, 10 tIoUs", t, f"average mAP {100 * det.average_mAP:.2f}%"))
    t, _ = timed(lambda: length_breakdown(gt, pred), args.repeats)
    rows.append(("length breakdown (DETAD, 5 buckets)", t, ""))
    t, _ = timed(lambda: sensitivity_analysis(gt, pred), args.repeats)
    rows.append(("DETAD sensitivity (14 buckets)", t, ""))
    data = prepare_detad(gt, pred, DETAD_SETTINGS["activitynet"].tious)
    t, _ = timed(lambda: false_positive_profile(data), args.repeats)
    rows.append(("DETAD false-positive profile", t, ""))
    t, prop = timed(lambda: evaluate_proposals(gt, pred), args.repeats)
    rows.append(("proposals AR-AN, 100 points", t, f"AUC {100 * prop['AUC']:.2f}%"))
    t, _ = timed(lambda: evaluate_detection(gt_obj, pred_obj), args.repeats)
    rows.append(("detection from dicts (parse + mAP)", t, ""))

    dense_gt, dense_pred = dense()
    dense_gt, dense_pred = load_ground_truth(dense_gt), load_predictions(dense_pred)
    t, dense_det = timed(lambda: evaluate_detection(dense_gt, dense_pred, tious=THUMOS14_TIOUS), args.repeats)
    rows.append(("dense THUMOS14-like mAP, 7 tIoUs", t,
                 f"{len(dense_pred)} predictions, {dense_gt.num_instances} instances"))

    print(f"{args.num_videos} videos, {gt.num_instances} instances, {num_pred} predictions, "
          f"median of {args.repeats} runs")
    print(f"{'step':<36}{'seconds':>9}  result")
    for name, seconds, note in rows:
        print(f"{name:<36}{seconds:>9.3f}  {note}")


if __name__ == "__main__":
    main()
