"""Evaluation of one feature set of the experiment: the localization probe, average mAP per instance length,
temporal-sensitivity scores, and the similarity figures of one validation video."""

from __future__ import annotations

import json
from pathlib import Path

from tspvideo.core.errors import TspVideoError
from tspvideo.datasets.activitynet_json import load_json, read_annotation_database
from tspvideo.evaluation.lengths import length_breakdown
from tspvideo.evaluation.similarity import dataset_temporal_sensitivity, load_features, plot_similarity
from tspvideo.localization import run_probe
from tspvideo.localization.probe import ProbeConfig
from tspvideo.runs.experiment.config import VARIANT_TITLES, ExperimentConfig


def read_ground_truth(path: Path) -> dict:
    """The annotation JSON, checked like every command checks one."""
    ground_truth = load_json(path, "annotations")
    read_annotation_database(ground_truth, what=f"annotations {path}")
    return ground_truth


def pick_figure_video(ground_truth: dict, subset: str = "validation") -> str:
    """The validation video with the most instances (ties: the first by name): the most to look at."""
    videos = [(vid, len(info.get("annotations", []))) for vid, info in ground_truth["database"].items()
              if info.get("subset") == subset]
    if not videos:
        raise TspVideoError(f"no {subset} video in the synthetic annotations")
    return sorted(videos, key=lambda item: (-item[1], item[0]))[0][0]


def bucket_keys(config: ExperimentConfig) -> list[str]:
    """Names of the length buckets in results: ``short`` / ``long`` for one edge, else ``le<edge>`` / ``gt<edge>``."""
    edges = list(config.length_edges)
    if len(edges) == 1:
        return ["short", "long"]
    return [f"le{e:g}" for e in edges] + [f"gt{edges[-1]:g}"]


def evaluate_features(feature_dir: Path, probe_dir: Path, annotations: Path, ground_truth: dict,
                      config: ExperimentConfig, seed: int) -> dict[str, float]:
    """Probe (outputs in ``probe_dir``; reused when there) + length breakdown + temporal-sensitivity scores.

    ``ground_truth`` is :func:`read_ground_truth` of ``annotations``. Returns ``{metric: value}``.
    """
    metrics_path = probe_dir / "metrics.json"
    if metrics_path.is_file() and (probe_dir / "predictions.json").is_file():
        probe = json.loads(metrics_path.read_text(encoding="utf-8"))
    else:
        probe_config = ProbeConfig(temporal_size=config.probe_temporal_size, epochs=config.probe_epochs, seed=seed)
        probe = run_probe(feature_dir, annotations, probe_dir, seed=seed, epochs=config.probe_epochs,
                          config=probe_config)
    detection = probe["detection"]
    by_tiou = {round(float(t), 2): float(m) for t, m in zip(detection["tiou"], detection["mAP"], strict=True)}
    result = {"mAP@0.5": by_tiou[0.5], "mAP@0.75": by_tiou[0.75], "mAP@0.95": by_tiou[0.95],
              "mAP_avg": float(detection["average_mAP"]), "AUC": float(probe["proposals"]["AUC"]),
              "AR@100": float(probe["proposals"]["AR@100"] or 0.0)}

    predictions = json.loads((probe_dir / "predictions.json").read_text(encoding="utf-8"))
    # Plain AP (not DETAD's mAP_N) keeps these short/long averages comparable with the mAP columns.
    breakdown = length_breakdown(ground_truth, predictions, buckets=tuple(config.length_edges),
                                 subset="validation", precision="plain")
    for bucket, name in zip(breakdown["buckets"], bucket_keys(config), strict=True):
        result[f"mAP_avg_{name}"] = bucket["average_mAP"]

    scores = dataset_temporal_sensitivity(feature_dir, ground_truth, subset="validation",
                                          clip_len=config.clip_len, fps=config.fps, stride=config.stride,
                                          per_video_probe=True, seed=seed)["summary"]
    result.update({"fg_fg_within": scores["fg_fg_within"], "fg_bg": scores["fg_bg"],
                   "contrast": scores["contrast"], "fg_bg_probe_auc": scores["pooled_probe_auc"],
                   "fg_bg_probe_auc_per_video": scores["probe_auc"]})
    return result


def similarity_figures(features_dir: Path, ground_truth: dict, figure_dir: Path, seed: int,
                       config: ExperimentConfig, variants: list[str] | None = None) -> list[str]:
    """Similarity figures of one validation video (``features_dir/<variant>/``, default: every variant): one per
    variant and all of them side by side; returns the files written."""
    video = pick_figure_video(ground_truth)
    segments = [tuple(a["segment"]) for a in ground_truth["database"][video]["annotations"]]
    written = []
    panels = []
    for variant in variants or [*config.variants, "init"]:
        features, times = load_features(features_dir / variant / f"{video}.npy", config.clip_len, config.fps,
                                        config.stride)
        panels.append((VARIANT_TITLES[variant], features, times))
        path = figure_dir / f"seed{seed}_{variant}_{video}.{config.figure_format}"
        plot_similarity([panels[-1]], segments, path, title=f"{VARIANT_TITLES[variant]}, seed {seed}: {video}")
        written.append(str(path))
    path = figure_dir / f"seed{seed}_all_{video}.{config.figure_format}"
    plot_similarity(panels, segments, path, title=f"seed {seed}: {video}")
    written.append(str(path))
    return written
