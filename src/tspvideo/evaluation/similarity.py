"""How temporally sensitive are clip features? Cosine similarity inside a video (the paper's Figure 2).

For a video's features ``[T, C]`` with centre times ``[T]`` and its ground-truth segments:

- a feature is **foreground** when its centre lies inside a ground-truth segment (ends included);
  overlapping or touching segments are merged into one instance first;
- ``fg_fg_within``: mean cosine similarity over pairs of distinct foreground features of the same
  instance (consensus; high is good); ``fg_fg_across``: pairs from different instances;
  ``fg_bg``: foreground-background pairs (low is good); ``bg_bg``: pairs of distinct background
  features; ``contrast = fg_fg_within - fg_bg`` (the sharpness the paper describes);
- ``probe_auc``: ROC AUC of an L2-regularised logistic-regression probe that tells foreground from
  background features, cross-validated with deterministic stratified folds (k = 5, fewer when a class
  has fewer than 5 features; ``None`` below 2). Over a dataset, a second probe pools features of all
  videos and folds *by video*, so it measures separability on unseen videos.

Pair means are computed from sums of unit vectors (sum of cosines over A x B = (sum_A u) . (sum_B u)),
so no T x T matrix is built except for plotting. Each dataset figure averages per-video values
(each video weighs the same).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from tspvideo.core.errors import TspVideoError
from tspvideo.core.fileio import atomic_path
from tspvideo.core.grid import DEFAULT_CLIP_LEN, DEFAULT_FPS, DEFAULT_STRIDE, clip_centers
from tspvideo.core.plotting import pyplot
from tspvideo.evaluation.io import GroundTruth, JsonSource, load_ground_truth
from tspvideo.features.folder import (
    FeatureSource,
    Grid,
    VideoFeatures,
    match_annotations,
    match_report,
    read_features,
    read_sidecar,
)

__all__ = [
    "SCORE_KEYS",
    "feature_times",
    "gt_video_lookup",
    "video_segments",
    "load_features",
    "cosine_similarity_matrix",
    "instance_ids",
    "roc_auc",
    "probe_auc",
    "temporal_sensitivity_scores",
    "dataset_temporal_sensitivity",
    "compare_feature_sets",
    "format_comparison_table",
    "format_scores_table",
    "plot_similarity",
    "colour_limits",
]

PROBE_L2 = 1.0  # ridge strength on standardized features; the probe is a measuring stick, not a model
SCORE_KEYS = ("fg_fg_within", "fg_fg_across", "fg_bg", "bg_bg", "contrast", "probe_auc")


# ----------------------------------------------------------------------------------------- loading
def feature_times(num_features: int, clip_len: int = DEFAULT_CLIP_LEN, fps: float = DEFAULT_FPS,
                  stride: int = DEFAULT_STRIDE) -> np.ndarray:
    """Centre time (s) of each feature: clip i covers frames [i*stride, i*stride + L) at ``fps``."""
    if clip_len <= 0 or fps <= 0 or stride <= 0:
        raise TspVideoError(f"clip_len, fps and stride must be positive, got {clip_len}, {fps}, {stride}")
    return clip_centers(num_features, clip_len, stride, fps)


def load_features(path: str | Path, clip_len: int = DEFAULT_CLIP_LEN, fps: float = DEFAULT_FPS,
                  stride: int = DEFAULT_STRIDE) -> tuple[np.ndarray, np.ndarray]:
    """Load a ``[T, C]`` ``.npy`` feature file and the centre time of each feature.

    Times come from the JSON sidecar ``<stem>.json`` beside the file when it exists (its
    ``feature_times``, else its ``clip_len`` / ``fps`` / ``stride``); otherwise from the arguments.
    """
    path = Path(path)
    if not path.is_file():
        raise TspVideoError(f"feature file {path} does not exist")
    try:
        features = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise TspVideoError(f"feature file {path} is not a readable .npy array: {error}") from error
    if features.ndim != 2 or features.shape[0] == 0:
        raise TspVideoError(f"feature file {path}: expected a [T, C] array with T >= 1, got shape "
                            f"{features.shape}")
    if not np.issubdtype(features.dtype, np.number) or not np.all(np.isfinite(features)):
        raise TspVideoError(f"feature file {path}: features must be finite numbers")
    sidecar = path.with_suffix(".json")
    num = features.shape[0]
    meta = read_sidecar(path)
    if meta:
        if meta.get("feature_times") is not None:
            times = np.asarray(meta["feature_times"], dtype=np.float64)
            if times.shape != (num,):
                raise TspVideoError(f"sidecar {sidecar}: 'feature_times' has {times.size} entries, the "
                                    f"features have {num}")
            return features.astype(np.float32, copy=False), times
        clip_len = meta.get("clip_len", clip_len)
        fps = meta.get("fps", fps)
        stride = meta.get("stride", stride)
    return features.astype(np.float32, copy=False), feature_times(num, clip_len, fps, stride)


# ------------------------------------------------------------------------------------------ scores
def _unit_rows(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    # A zero feature has no direction: its cosine with anything is taken as 0.
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def cosine_similarity_matrix(features: np.ndarray) -> np.ndarray:
    """``[T, T]`` cosine similarity between the rows of ``features``."""
    unit = _unit_rows(features)
    return unit @ unit.T


def _merge(segments: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for start, end in sorted((float(s), float(e)) for s, e in segments):
        if end < start:
            raise TspVideoError(f"segment end {end} < start {start}")
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def instance_ids(times: np.ndarray, segments: list[tuple[float, float]]) -> np.ndarray:
    """Index of the (merged) instance containing each time, or -1 for background."""
    merged = _merge(segments)
    ids = np.full(np.asarray(times).shape, -1, dtype=np.int64)
    for m, (start, end) in enumerate(merged):
        ids[(times >= start) & (times <= end)] = m
    return ids


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties count 1/2); NaN without both classes."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    mid_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based average rank of each distinct value
    ranks = mid_rank[inverse]
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by damped Newton steps; returns (weights, bias).

    With more dimensions than samples the problem is solved in the row space of ``x`` (the optimum
    lies there for a ridge penalty), which keeps each Newton step small and exact. The row space comes
    from an eigendecomposition of the Gram matrix ``x x^T`` (much cheaper than an SVD of ``x``).
    """
    n, d = x.shape
    if d > n:
        eigval, eigvec = np.linalg.eigh(x @ x.T)
        keep = eigval > 1e-10 * max(float(eigval[-1]), 1e-300)
        sqrt_val = np.sqrt(eigval[keep])
        z = eigvec[:, keep] * sqrt_val  # = x @ basis, coordinates in an orthonormal basis of the row space
        basis = x.T @ (eigvec[:, keep] / sqrt_val)  # (d, r), orthonormal columns
    else:
        basis, z = None, x
    design = np.hstack([z, np.ones((n, 1))])
    penalty = np.full(design.shape[1], l2)
    penalty[-1] = 1e-9  # the bias is (almost) not penalised

    def loss(w: np.ndarray) -> float:
        margin = design @ w
        return float(np.sum(np.logaddexp(0.0, margin) - y * margin) + 0.5 * np.sum(penalty * w * w))

    w = np.zeros(design.shape[1])
    current = loss(w)
    for _ in range(100):
        p = _sigmoid(design @ w)
        grad = design.T @ (p - y) + penalty * w
        hess = (design.T * (p * (1.0 - p))) @ design + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while True:  # backtracking keeps Newton monotone on nearly separable data
            candidate = w - t * step
            trial = loss(candidate)
            if trial <= current or t < 1e-6:
                break
            t *= 0.5
        if trial > current:
            break
        gain = current - trial
        w, current = candidate, trial
        if gain <= 1e-10 * max(1.0, abs(current)):
            break
    weights = w[:-1] if basis is None else basis @ w[:-1]
    return weights, float(w[-1])


def probe_auc(features: np.ndarray, labels: np.ndarray, folds: np.ndarray, l2: float = PROBE_L2) -> float | None:
    """Mean held-out ROC AUC of a logistic probe over the given fold assignment.

    ``folds[i]`` is the fold of sample i. Features are standardized with the training folds' statistics.
    Folds whose held-out part lacks either class are skipped; ``None`` when no fold can be scored.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels).astype(np.float64)
    aucs = []
    for k in np.unique(folds):
        test = folds == k
        train = ~test
        if len(np.unique(y[train])) < 2 or len(np.unique(y[test])) < 2:
            continue
        mean = x[train].mean(axis=0)
        std = x[train].std(axis=0)
        std[std < 1e-12] = 1.0
        w, b = _fit_logistic((x[train] - mean) / std, y[train], l2)
        aucs.append(roc_auc(((x[test] - mean) / std) @ w + b, y[test]))
    return float(np.mean(aucs)) if aucs else None


def _stratified_folds(labels: np.ndarray, k: int) -> np.ndarray:
    # Deterministic: the j-th sample of each class (in time order) goes to fold j mod k.
    folds = np.empty(labels.size, dtype=np.int64)
    for value in (False, True):
        idx = np.flatnonzero(labels == value)
        folds[idx] = np.arange(idx.size) % k
    return folds


def _pair_mean(total: float, pairs: float) -> float | None:
    return float(total / pairs) if pairs > 0 else None


def temporal_sensitivity_scores(features: np.ndarray, feature_times: np.ndarray,
                                segments: list[tuple[float, float]], probe_folds: int = 5) -> dict[str, Any]:
    """Similarity and separability of foreground / background features of one video.

    Returns ``fg_fg_within``, ``fg_fg_across``, ``fg_bg``, ``bg_bg``, ``contrast`` (mean cosine
    similarities, ``None`` where no pair exists), ``probe_auc`` (``None`` when a class has fewer than
    2 features or ``probe_folds`` is 0) and the counts ``num_features``, ``num_foreground``,
    ``num_instances``.
    """
    features = np.asarray(features)
    times = np.asarray(feature_times, dtype=np.float64)
    if features.ndim != 2 or times.shape != (features.shape[0],):
        raise TspVideoError(f"features must be [T, C] with one time per row; got features {features.shape}"
                            f" and times {times.shape}")
    unit = _unit_rows(features)
    self_sim = np.einsum("ij,ij->i", unit, unit)  # 1, or 0 for a zero feature
    inst = instance_ids(times, segments)
    fg = inst >= 0
    bg = ~fg
    sum_fg, sum_bg = unit[fg].sum(axis=0), unit[bg].sum(axis=0)
    n_fg, n_bg = int(fg.sum()), int(bg.sum())

    within_total, within_pairs = 0.0, 0
    for m in np.unique(inst[fg]):
        members = inst == m
        s = unit[members].sum(axis=0)
        within_total += float(s @ s - self_sim[members].sum())
        within_pairs += int(members.sum()) * (int(members.sum()) - 1)
    all_fg_total = float(sum_fg @ sum_fg - self_sim[fg].sum())
    all_fg_pairs = n_fg * (n_fg - 1)

    scores: dict[str, Any] = {
        "num_features": int(features.shape[0]),
        "num_foreground": n_fg,
        "num_instances": int(len(np.unique(inst[fg]))),
        "fg_fg_within": _pair_mean(within_total, within_pairs),
        "fg_fg_across": _pair_mean(all_fg_total - within_total, all_fg_pairs - within_pairs),
        "fg_bg": _pair_mean(float(sum_fg @ sum_bg), n_fg * n_bg),
        "bg_bg": _pair_mean(float(sum_bg @ sum_bg - self_sim[bg].sum()), n_bg * (n_bg - 1)),
    }
    within, fg_bg = scores["fg_fg_within"], scores["fg_bg"]
    scores["contrast"] = None if within is None or fg_bg is None else within - fg_bg
    k = min(probe_folds, n_fg, n_bg)
    scores["probe_auc"] = probe_auc(features, fg, _stratified_folds(fg, k)) if k >= 2 else None
    return scores


# ----------------------------------------------------------------------------------------- dataset
def gt_video_lookup(gt: GroundTruth) -> dict[str, int]:
    """Map video ids and file stems to ground-truth video indices.

    ActivityNet ids are "abc" in the annotations but "v_abc" in file names; both spellings resolve.
    """
    # ActivityNet ids are "abc" in the annotations but "v_abc" in file names; accept both spellings.
    lookup: dict[str, int] = {}
    for i, vid in enumerate(gt.video_ids):
        lookup.setdefault(vid, i)
    for i, vid in enumerate(gt.video_ids):
        lookup.setdefault(vid[2:] if vid.startswith("v_") else f"v_{vid}", i)
    return lookup


def video_segments(gt: GroundTruth, index: int) -> list[tuple[float, float]]:
    """Ground-truth segments (start, end) of the video at ``index``."""
    rows = np.flatnonzero(gt.video == index)
    return list(zip(gt.start[rows].tolist(), gt.end[rows].tolist(), strict=True))


def _finite_features(video: VideoFeatures) -> np.ndarray:
    try:
        features = video.load()
    except (OSError, ValueError, KeyError) as error:
        raise TspVideoError(f"feature file {video.location} is not readable: {error}") from error
    if not np.all(np.isfinite(features)):
        raise TspVideoError(f"feature file {video.location}: features must be finite numbers")
    return features


def _mean_or_none(values: list[Any]) -> float | None:
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(kept)) if kept else None


def dataset_temporal_sensitivity(feature_dir: str | Path, ground_truth: JsonSource | GroundTruth,
                                 subset: str | None = None, videos: list[str] | None = None,
                                 clip_len: int | None = None, fps: float | None = None,
                                 stride: int | None = None, probe_folds: int = 5,
                                 probe_max_samples: int = 5000, per_video_probe: bool = False,
                                 seed: int = 0) -> dict[str, Any]:
    """:func:`temporal_sensitivity_scores` for every video of a feature source that the ground truth knows.

    ``feature_dir`` is a feature folder, an HDF5 file of features or a downloaded released file's name;
    ``clip_len`` / ``fps`` / ``stride`` are explicit grid flags (see :func:`tspvideo.features.folder.read_features`;
    a folder without sidecars falls back to the extraction defaults). ``videos`` restricts to those stems.
    Returns ``summary`` (per-video means of each score, ``num_videos``, and ``pooled_probe_auc``: one
    probe over features of all videos, at most ``probe_max_samples`` of them drawn with ``seed``, folds by
    video), ``per_video`` and ``skipped``
    (stems not in the ground truth), and ``feature_match`` (annotated videos without features and the
    reverse, one line). The per-video probe costs tens of milliseconds a video, so over a
    dataset it only runs with ``per_video_probe=True`` (otherwise ``probe_auc`` is ``None``).
    """
    gt = ground_truth if isinstance(ground_truth, GroundTruth) else load_ground_truth(ground_truth, subset)
    lookup = gt_video_lookup(gt)
    files = {v.stem: v for v in read_features(feature_dir, Grid(clip_len=clip_len, fps=fps, stride=stride))}
    stems = sorted(files) if videos is None else sorted(videos)
    missing = [s for s in stems if s not in files]
    if missing:
        raise TspVideoError(f"{feature_dir}: no feature file for {len(missing)} videos, e.g. {missing[0]!r}")
    skipped = [s for s in stems if s not in lookup]
    per_video: dict[str, dict[str, Any]] = {}
    pooled_x, pooled_y, pooled_group = [], [], []
    for stem in stems:
        if stem not in lookup:
            continue
        features, times = _finite_features(files[stem]), files[stem].feature_times
        segments = video_segments(gt, lookup[stem])
        per_video[stem] = temporal_sensitivity_scores(features, times, segments,
                                                      probe_folds if per_video_probe else 0)
        pooled_x.append(features)
        pooled_y.append(instance_ids(times, segments) >= 0)
        pooled_group.append(np.full(features.shape[0], len(per_video) - 1))
    if not per_video:
        raise TspVideoError(f"{feature_dir}: none of the {len(stems)} feature files matches a ground-truth "
                            "video id")
    summary: dict[str, Any] = {"num_videos": len(per_video)}
    for key in SCORE_KEYS:
        summary[key] = _mean_or_none([s[key] for s in per_video.values()])
    summary["pooled_probe_auc"] = None
    if probe_folds >= 2 and len(per_video) >= 2:
        x = np.concatenate(pooled_x)
        y = np.concatenate(pooled_y)
        group = np.concatenate(pooled_group)
        if x.shape[0] > probe_max_samples:
            pick = np.sort(np.random.default_rng(seed).choice(x.shape[0], probe_max_samples, replace=False))
            x, y, group = x[pick], y[pick], group[pick]
        summary["pooled_probe_auc"] = probe_auc(x, y, group % min(probe_folds, len(per_video)))
    report = match_report(gt.video_ids, files, match_annotations(gt.video_ids, files))
    return {"feature_dir": str(feature_dir), "summary": summary, "per_video": per_video, "skipped": skipped,
            "feature_match": report.summary()}


def compare_feature_sets(feature_dirs: list[str | Path], ground_truth: JsonSource | GroundTruth,
                         subset: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """Run :func:`dataset_temporal_sensitivity` on several folders over the videos they all have.

    Videos are matched through the ground truth, so one source's ``v_<id>`` (released files, ActivityNet file
    names) and another's ``<id>`` are the same video. Returns ``{"videos": [...common ground-truth ids...],
    "sets": {folder: result}}``; each result's ``per_video`` is keyed by that source's own stems.
    """
    if not feature_dirs:
        raise TspVideoError("no feature folder to compare")
    gt = ground_truth if isinstance(ground_truth, GroundTruth) else load_ground_truth(ground_truth, subset)
    lookup = gt_video_lookup(gt)
    stems_by_video: list[dict[int, str]] = []  # per source: ground-truth index -> its stem of that video
    for folder in feature_dirs:
        by_video: dict[int, str] = {}
        for stem in FeatureSource(folder).stems():
            if stem in lookup:
                by_video.setdefault(lookup[stem], stem)
        if not by_video:
            raise TspVideoError(f"{folder}: none of its videos is in the ground truth (with or without the v_ "
                                "prefix)")
        stems_by_video.append(by_video)
    common = set.intersection(*(set(by_video) for by_video in stems_by_video))
    if not common:
        raise TspVideoError("the feature folders have no ground-truth video in common (each matches some)")
    sets = {str(folder): dataset_temporal_sensitivity(folder, gt, videos=[by_video[i] for i in sorted(common)],
                                                      **kwargs)
            for folder, by_video in zip(feature_dirs, stems_by_video, strict=True)}
    return {"videos": [gt.video_ids[i] for i in sorted(common)], "sets": sets}


_TABLE_ROWS = (
    ("videos", "num_videos"), ("features", "num_features"), ("foreground features", "num_foreground"),
    ("fg-fg (same instance)", "fg_fg_within"), ("fg-fg (other instance)", "fg_fg_across"),
    ("fg-bg", "fg_bg"), ("bg-bg", "bg_bg"), ("contrast (fg-fg - fg-bg)", "contrast"),
    ("probe AUC (per video)", "probe_auc"), ("probe AUC (across videos)", "pooled_probe_auc"),
)


def format_scores_table(columns: dict[str, dict[str, Any]]) -> str:
    """Scores side by side, one column per feature set; rows no column has are left out."""
    labels = list(columns)
    width = max(10, *(len(label) + 2 for label in labels))
    lines = [f"{'':<26}" + "".join(f"{label:>{width}}" for label in labels)]
    for title, key in _TABLE_ROWS:
        if not any(key in col for col in columns.values()):
            continue
        cells = []
        for col in columns.values():
            value = col.get(key)
            cells.append("n/a" if value is None else (str(value) if isinstance(value, int) else f"{value:.4f}"))
        lines.append(f"{title:<26}" + "".join(f"{c:>{width}}" for c in cells))
    return "\n".join(lines)


def format_comparison_table(comparison: dict[str, Any]) -> str:
    """The summaries of :func:`compare_feature_sets` side by side, one column per folder."""
    columns: dict[str, dict[str, Any]] = {}
    for name, result in comparison["sets"].items():
        label = Path(name).name or name
        while label in columns:  # two folders with the same base name
            label += "'"
        columns[label] = result["summary"]
    return format_scores_table(columns)


# ---------------------------------------------------------------------------------------- plotting
def colour_limits(matrices: list[np.ndarray], vmin: float | None = None,
                  vmax: float | None = None) -> tuple[float, float]:
    """One colour range for all matrices: the given limits, else the range of their off-diagonal values.

    The diagonal (always 1) is left out so that near-flat features, e.g. from random weights whose cosines
    all lie around 0.99, still show their structure instead of a flat square.
    """
    off = [sim[~np.eye(sim.shape[0], dtype=bool)] for sim in matrices if sim.shape[0] > 1]
    values = np.concatenate(off) if off else np.ones(1)
    low = float(values.min()) if vmin is None else float(vmin)
    high = float(values.max()) if vmax is None else float(vmax)
    if not high > low:  # one value everywhere: a small range around it
        low, high = (low - 1e-3, low + 1e-3) if vmin is None and vmax is None else (low, low + 1e-3)
    return low, high


def _title_above(fig: Any, axes: list[Any], title: str) -> None:
    """``title`` centred just above the panels (with their titles), not at the top of the figure: square panels
    leave the figure's top band empty, and a title there floats far from what it names."""
    fig.canvas.draw()  # where the panels and their titles are is known once drawn
    to_figure = fig.transFigure.inverted()
    boxes = [ax.get_tightbbox(fig.canvas.get_renderer()).transformed(to_figure) for ax in axes]
    left, right = min(b.x0 for b in boxes), max(b.x1 for b in boxes)
    fig.suptitle(title, x=(left + right) / 2, y=max(b.y1 for b in boxes) + 0.02, va="bottom")


def plot_similarity(panels: list[tuple[str, np.ndarray, np.ndarray]], segments: list[tuple[float, float]],
                    out_path: str | Path, title: str | None = None, max_size: int = 1500,
                    vmin: float | None = None, vmax: float | None = None) -> tuple[float, float]:
    """Save a figure with one similarity matrix per ``(label, features, times)`` panel.

    Ground-truth extents are drawn as green bars left of and above each matrix, as in Figure 2.
    Matrices longer than ``max_size`` features are subsampled evenly for drawing only. All panels share
    one colour scale (:func:`colour_limits`: the data's range unless ``vmin``/``vmax`` are given), which
    is returned. Needs matplotlib (``pip install tspvideo[plot]``); drawn with the Agg backend.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.4), squeeze=False)
    merged = _merge(segments)
    matrices = []
    for label, features, times in panels:
        if features.shape[0] > max_size:
            keep = np.linspace(0, features.shape[0] - 1, max_size).round().astype(int)
            features, times = features[keep], times[keep]
        matrices.append((label, cosine_similarity_matrix(features), times))
    # One colour scale for all panels so that they can be compared.
    vmin, vmax = colour_limits([sim for _, sim, _ in matrices], vmin, vmax)
    image = None
    for ax, (label, sim, times) in zip(axes[0], matrices, strict=True):
        half = (times[1] - times[0]) / 2 if times.size > 1 else 0.5
        t0, t1 = float(times[0] - half), float(times[-1] + half)
        image = ax.imshow(sim, cmap="viridis", vmin=vmin, vmax=vmax, extent=(t0, t1, t1, t0),
                          interpolation="nearest")
        pad = 0.03 * (t1 - t0)
        for start, end in merged:
            s, e = max(start, t0), min(end, t1)
            if e < s:
                continue
            ax.plot([t0 - pad, t0 - pad], [s, e], color="limegreen", linewidth=3, clip_on=False,
                    solid_capstyle="butt")
            ax.plot([s, e], [t0 - pad, t0 - pad], color="limegreen", linewidth=3, clip_on=False,
                    solid_capstyle="butt")
        ax.set_xlim(t0 - 2 * pad, t1)
        ax.set_ylim(t1, t0 - 2 * pad)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("time (s)")
    axes[0][0].set_ylabel("time (s)")
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="cosine similarity")
    if title:
        _title_above(fig, axes[0].tolist(), title)
    out_path = Path(out_path)
    suffix = out_path.suffix.lstrip(".") or "png"
    with atomic_path(out_path) as tmp:
        # "tight": square panels in a wider figure leave empty bands above and below; they are cut off.
        fig.savefig(tmp, format=suffix, dpi=120, bbox_inches="tight", pad_inches=0.1)
    plt.close(fig)
    return vmin, vmax
