"""Train the localization probe on extracted features, predict, and evaluate.

The probe is a measuring instrument for feature quality: the same small, seeded model trained on two
feature sets tells which set carries more temporal localization signal. Defaults are visible here.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tspvideo.core.errors import TspVideoError
from tspvideo.core.fileio import atomic_path, check_folder_writable, save_json_atomic
from tspvideo.datasets.activitynet_json import class_names as dataset_class_names
from tspvideo.datasets.activitynet_json import load_json, read_annotation_database
from tspvideo.evaluation.detection import evaluate_detection
from tspvideo.evaluation.proposals import evaluate_proposals
from tspvideo.features.folder import FeatureSource, Grid, match_annotations, match_report
from tspvideo.localization.data import (
    ProbeVideo,
    ground_truth_database,
    load_probe_videos,
    make_targets,
)
from tspvideo.localization.model import ProbeNet
from tspvideo.localization.postprocess import classify_proposals, generate_proposals

PREDICTION_VERSION = "VERSION 1.3"


@dataclass
class ProbeConfig:
    """Probe hyper-parameters (the defaults are the documented probe)."""

    temporal_size: int | None = 100  # fixed grid (None: native feature grid)
    hidden: int = 128
    num_layers: int = 3
    dropout: float = 0.1
    epochs: int = 30
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    class_loss_weight: float = 1.0
    max_proposals: int = 100
    top_classes: int = 2
    max_detections: int = 100
    seed: int = 0


@dataclass
class ProbeModel:
    """A trained probe: network, input normalization, class names and config."""

    net: ProbeNet
    mean: np.ndarray
    std: np.ndarray
    class_names: list[str]
    config: ProbeConfig
    history: list[float] = field(default_factory=list)  # mean training loss per epoch

    def save(self, path: str | os.PathLike) -> None:
        """Write a checkpoint dict (``state_dict``, normalization, classes, config) atomically."""
        payload = {"model": self.net.state_dict(), "mean": torch.from_numpy(self.mean),
                   "std": torch.from_numpy(self.std), "class_names": self.class_names,
                   "config": asdict(self.config), "history": self.history}
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ProbeModel:
        """Read a checkpoint written by ``save`` (plain tensors and lists: ``weights_only`` safe)."""
        payload = torch.load(path, map_location="cpu", weights_only=True)
        config = ProbeConfig(**payload["config"])
        mean = payload["mean"].numpy()
        net = ProbeNet(len(mean), len(payload["class_names"]), config.hidden, config.num_layers, config.dropout)
        net.load_state_dict(payload["model"])
        net.eval()
        return cls(net, mean, payload["std"].numpy(), list(payload["class_names"]), config,
                   list(payload["history"]))


@contextlib.contextmanager
def _deterministic(seed: int) -> Iterator[torch.Generator]:
    """Seed everything and require deterministic kernels; restore the caller's setting afterwards."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    try:
        yield generator
    finally:
        torch.use_deterministic_algorithms(previous)


def _batch(videos: list[ProbeVideo], mean: np.ndarray, std: np.ndarray, with_targets: bool = True):
    """Pad a list of videos to ``[B, C, T]`` with a validity mask (and targets)."""
    length = max(len(v.times) for v in videos)
    channels = len(mean)
    x = np.zeros((len(videos), channels, length), dtype=np.float32)
    mask = np.zeros((len(videos), length), dtype=np.float32)
    targets = np.zeros((len(videos), 3, length), dtype=np.float32)
    labels = np.full((len(videos), length), -1, dtype=np.int64)
    for b, video in enumerate(videos):
        t = len(video.times)
        x[b, :, :t] = ((video.features - mean) / std).T
        mask[b, :t] = 1.0
        if with_targets:
            tg = make_targets(video)
            targets[b, 0, :t], targets[b, 1, :t], targets[b, 2, :t] = tg["actionness"], tg["start"], tg["end"]
            labels[b, :t] = tg["label"]
    return torch.from_numpy(x), torch.from_numpy(mask), torch.from_numpy(targets), torch.from_numpy(labels)


def _balanced_bce(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BCE with positives (target > 0.5) and negatives weighted equally (BSN/BMN style).

    Boundaries and, on ActivityNet, background are rare; without the balance the probe would learn
    to predict the majority everywhere.
    """
    positive = (target > 0.5).float() * mask
    negative = (target <= 0.5).float() * mask
    n_pos, n_neg = positive.sum().clamp(min=1.0), negative.sum().clamp(min=1.0)
    weight = 0.5 * positive / n_pos + 0.5 * negative / n_neg
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (loss * weight).sum()


def train_probe(feature_dir: str | os.PathLike, ground_truth: dict[str, Any], train_subset: str = "training",
                seed: int = 0, epochs: int | None = None, config: ProbeConfig | None = None,
                video_ids: list[str] | None = None, verbose: bool = False, grid: Grid | None = None) -> ProbeModel:
    """Train the probe on the ``train_subset`` videos of ``ground_truth`` that have features.

    Args:
        feature_dir: folder of ``<stem>.npy`` + sidecars (``tspvideo extract`` output), an HDF5 file of
            features, or a downloaded released file's name.
        ground_truth: ActivityNet-style dict ``{"database": {id: {subset, duration, annotations}}}``.
        train_subset: subset to train on.
        seed: seeds initialization, shuffling and dropout (results are reproducible on CPU).
        epochs: overrides ``config.epochs``.
        config: hyper-parameters (``ProbeConfig()`` by default).
        video_ids: explicit training ids instead of ``train_subset``.
        verbose: print the loss per epoch.
        grid: explicit clip_len / fps / stride for features whose files do not state them.
    """
    config = ProbeConfig(**asdict(config)) if config is not None else ProbeConfig()
    config.seed = seed
    if epochs is not None:
        config.epochs = epochs
    database = ground_truth_database(ground_truth)
    read_annotation_database({"database": database}, subsets=None if video_ids is not None else {train_subset},
                             what="ground truth")
    class_names = dataset_class_names(database)
    if not class_names:
        raise TspVideoError("ground truth has no annotated segments to train on")
    if video_ids is None:
        video_ids = [vid for vid, info in database.items() if info.get("subset") == train_subset]
    videos = load_probe_videos(feature_dir, ground_truth, video_ids, class_names, config.temporal_size, grid)
    videos = [v for v in videos if len(v.segments)]
    if not videos:
        raise TspVideoError(f"no annotated '{train_subset}' video has features in {feature_dir}")

    stacked = np.concatenate([v.features for v in videos], axis=0).astype(np.float64)
    mean = stacked.mean(0).astype(np.float32)
    std = (stacked.std(0) + 1e-6).astype(np.float32)

    with _deterministic(seed) as generator:
        net = ProbeNet(len(mean), len(class_names), config.hidden, config.num_layers, config.dropout)
        optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, config.epochs))
        batches = [_batch(videos[i:i + 1], mean, std) for i in range(len(videos))]  # targets once
        history = []
        net.train()
        for epoch in range(config.epochs):
            order = torch.randperm(len(videos), generator=generator).tolist()
            total = 0.0
            for first in range(0, len(order), config.batch_size):
                chunk = order[first:first + config.batch_size]
                x, mask, targets, labels = _collate([batches[i] for i in chunk])
                boundary_logits, class_logits = net(x)
                loss = sum(_balanced_bce(boundary_logits[:, k], targets[:, k], mask) for k in range(3))
                if (labels >= 0).any():
                    loss = loss + config.class_loss_weight * F.cross_entropy(class_logits, labels, ignore_index=-1)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(chunk)
            scheduler.step()
            history.append(total / len(videos))
            if verbose:
                print(f"probe epoch {epoch + 1}/{config.epochs}: loss {history[-1]:.4f}")
    net.eval()
    return ProbeModel(net, mean, std, class_names, config, history)


def _collate(items):
    """Concatenate single-video batches, padding to the longest."""
    length = max(item[0].shape[-1] for item in items)

    def pad(t: torch.Tensor, value: float) -> torch.Tensor:
        return F.pad(t, (0, length - t.shape[-1]), value=value)

    x = torch.cat([pad(item[0], 0.0) for item in items])
    mask = torch.cat([pad(item[1], 0.0) for item in items])
    targets = torch.cat([pad(item[2], 0.0) for item in items])
    labels = torch.cat([pad(item[3], -1) for item in items])
    return x, mask, targets, labels


@torch.no_grad()
def predict(model: ProbeModel, feature_dir: str | os.PathLike, video_ids: list[str],
            ground_truth: dict[str, Any] | None = None, grid: Grid | None = None) -> dict[str, Any]:
    """Detections and proposals for ``video_ids``.

    Returns ``{"detection": <ActivityNet prediction JSON>, "proposals": <same, class-agnostic>}``;
    each is ``{"version", "results": {id: [{"segment", "label"?, "score"}]}, "external_data": {}}``.
    ``ground_truth`` (optional) only helps match ids to feature files; without it ids must be stems.
    """
    config = model.config
    lookup = ground_truth if ground_truth is not None else {"database": {vid: {} for vid in video_ids}}
    videos = load_probe_videos(feature_dir, lookup, video_ids, model.class_names, config.temporal_size, grid)
    detections: dict[str, list[dict[str, Any]]] = {}
    proposals: dict[str, list[dict[str, Any]]] = {}
    model.net.eval()
    for video in videos:
        x, _, _, _ = _batch([video], model.mean, model.std, with_targets=False)
        boundary_logits, class_logits = model.net(x)
        probs = torch.sigmoid(boundary_logits[0]).numpy().astype(np.float64)
        class_probs = torch.softmax(class_logits[0], dim=0).numpy().T.astype(np.float64)  # [T, K]
        segments, scores = generate_proposals(probs[0], probs[1], probs[2], video.times, video.step,
                                              video.duration, max_proposals=config.max_proposals)
        proposals[video.video_id] = [{"segment": [round(float(s), 3), round(float(e), 3)], "score": float(p)}
                                     for (s, e), p in zip(segments, scores, strict=True)]
        dets = classify_proposals(segments, scores, class_probs, probs[0], video.times,
                                  config.top_classes, config.max_detections)
        detections[video.video_id] = [{"segment": [round(s, 3), round(e, 3)], "label": model.class_names[c],
                                       "score": p} for s, e, c, p in dets]
    return {"detection": _prediction_json(detections), "proposals": _prediction_json(proposals)}


def _prediction_json(results: dict[str, Any]) -> dict[str, Any]:
    return {"version": PREDICTION_VERSION, "results": results, "external_data": {}}


def run_probe(feature_dir: str | os.PathLike, annotations_path: str | os.PathLike, out_dir: str | os.PathLike,
              seed: int = 0, epochs: int | None = None, train_subset: str = "training",
              eval_subset: str = "validation", config: ProbeConfig | None = None,
              verbose: bool = False, grid: Grid | None = None) -> dict[str, Any]:
    """Train on ``train_subset``, predict ``eval_subset``, evaluate, write results to ``out_dir``.

    Writes ``predictions.json`` (detection), ``proposals.json``, ``metrics.json`` and
    ``probe_model.pt``. The ground truth used for scoring is restricted to the evaluated videos that
    have features (the count of those without is reported), so missing files do not read as misses.
    Returns the metrics dict (detection mAP per tIoU and average, proposal AR@AN and AUC).
    """
    if epochs is not None and epochs < 1:
        raise TspVideoError(f"--epochs must be at least 1, got {epochs}")
    if config is not None and config.temporal_size is not None and config.temporal_size < 1:
        raise TspVideoError(f"--temporal-size must be 1 or more (0: each video's own grid), got {config.temporal_size}")
    annotations_path = Path(annotations_path)
    # The check every command applies (a reversed or malformed instance stops here, all of them listed).
    ground_truth = load_json(annotations_path, "annotations")
    database = read_annotation_database(ground_truth, subsets={train_subset, eval_subset},
                                        what=f"annotations {annotations_path}")
    out_dir = Path(out_dir)
    FeatureSource(feature_dir)  # a missing source stops here, before anything is created
    check_folder_writable(out_dir)
    eval_ids = sorted(vid for vid, info in database.items() if info.get("subset") == eval_subset)
    if not eval_ids:
        raise TspVideoError(f"{annotations_path}: no video in subset '{eval_subset}'")

    model = train_probe(feature_dir, ground_truth, train_subset=train_subset, seed=seed, epochs=epochs,
                        config=config, verbose=verbose, grid=grid)
    out_dir.mkdir(parents=True, exist_ok=True)  # only now: a refused probe leaves no empty folder
    model.save(out_dir / "probe_model.pt")
    outputs = predict(model, feature_dir, eval_ids, ground_truth, grid)
    save_json_atomic(out_dir / "predictions.json", outputs["detection"], indent=None)
    save_json_atomic(out_dir / "proposals.json", outputs["proposals"], indent=None)

    evaluated = set(outputs["detection"]["results"])
    eval_gt = {"version": ground_truth.get("version", ""),
               "database": {vid: database[vid] for vid in eval_ids if vid in evaluated}}
    if not eval_gt["database"]:
        raise TspVideoError(f"no '{eval_subset}' video has features in {feature_dir}")
    detection = evaluate_detection(eval_gt, outputs["detection"], subset=eval_subset)
    proposal_metrics = evaluate_proposals(eval_gt, outputs["proposals"], subset=eval_subset)
    metrics = {
        "seed": seed, "train_subset": train_subset, "eval_subset": eval_subset,
        "num_eval_videos": len(eval_gt["database"]), "num_eval_videos_without_features": len(eval_ids) - len(evaluated),
        "detection": _jsonable(detection.to_dict()),
        "proposals": _jsonable({k: v for k, v in proposal_metrics.items() if k != "curve"}),
        "config": asdict(model.config), "train_loss": model.history,
        "feature_match": _feature_match(feature_dir, database),
    }
    save_json_atomic(out_dir / "metrics.json", metrics)
    return metrics


def _feature_match(feature_dir: str | os.PathLike, database: dict[str, Any]) -> dict[str, Any]:
    """How annotation ids and feature keys matched (``v_`` prefix accepted either way)."""
    stems = FeatureSource(feature_dir).stems()
    report = match_report(database, stems, match_annotations(database, stems))
    return {"annotations_without_features": len(report.annotations_without_features),
            "features_without_annotations": len(report.features_without_annotations),
            "summary": report.summary()}


def _jsonable(obj: Any) -> Any:
    """numpy scalars/arrays -> plain Python, recursively."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
