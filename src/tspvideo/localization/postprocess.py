"""From per-cell probabilities to scored proposals and class detections."""

from __future__ import annotations

import numpy as np


def _peaks(prob: np.ndarray, rel_threshold: float = 0.5, top_k: int = 32) -> np.ndarray:
    """Cells that are local maxima or above ``rel_threshold * max`` (BSN's rule), best ``top_k``."""
    n = len(prob)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    left = np.concatenate([[-np.inf], prob[:-1]])
    right = np.concatenate([prob[1:], [-np.inf]])
    keep = ((prob >= left) & (prob >= right)) | (prob >= rel_threshold * prob.max())
    idx = np.flatnonzero(keep)
    return idx[np.argsort(-prob[idx], kind="stable")[:top_k]]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (first, last) index of each run of True."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    diff = np.diff(padded)
    starts, ends = np.flatnonzero(diff == 1), np.flatnonzero(diff == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _max3(prob: np.ndarray) -> np.ndarray:
    """Maximum over each cell and its two neighbours (no wrap-around at the ends)."""
    padded = np.concatenate([[-np.inf], prob, [-np.inf]])
    return np.maximum(np.maximum(padded[:-2], padded[1:-1]), padded[2:])


def _tiou(segment: np.ndarray, segments: np.ndarray) -> np.ndarray:
    inter = np.clip(np.minimum(segment[1], segments[:, 1]) - np.maximum(segment[0], segments[:, 0]), 0, None)
    union = (segment[1] - segment[0]) + (segments[:, 1] - segments[:, 0]) - inter
    return inter / np.maximum(union, 1e-9)


def soft_nms(segments: np.ndarray, scores: np.ndarray, sigma: float = 0.5, top_k: int = 100,
             min_score: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian soft-NMS: each pick decays the others' scores by ``exp(-tiou^2 / sigma)``."""
    segments = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    scores = np.asarray(scores, dtype=np.float64).copy()
    kept_segments, kept_scores = [], []
    remaining = np.arange(len(scores))
    while len(remaining) and len(kept_scores) < top_k:
        best = remaining[np.argmax(scores[remaining])]
        if scores[best] < min_score:
            break
        kept_segments.append(segments[best])
        kept_scores.append(scores[best])
        remaining = remaining[remaining != best]
        if len(remaining):
            scores[remaining] *= np.exp(-_tiou(segments[best], segments[remaining]) ** 2 / sigma)
    return np.array(kept_segments).reshape(-1, 2), np.array(kept_scores)


def generate_proposals(actionness: np.ndarray, start: np.ndarray, end: np.ndarray, times: np.ndarray,
                       step: float, duration: float, max_proposals: int = 100,
                       max_length: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Scored class-agnostic proposals ``([N, 2] seconds, [N] scores)`` after soft-NMS.

    Candidates come from boundary matching (every start peak i paired with every end peak j >= i,
    spanning ``[times[i], times[j]]``) and from actionness runs above 0.3/0.5/0.7 (spanning whole
    cells). Each is scored start-probability x end-probability x mean actionness inside, where the
    boundary probabilities are the best within one cell of the candidate's edges.
    """
    n = len(actionness)
    if n == 0:
        return np.zeros((0, 2)), np.zeros(0)
    cands: list[tuple[int, int, float, float]] = []
    for i in _peaks(start):
        for j in _peaks(end):
            if j >= i:
                cands.append((int(i), int(j), float(times[i]), float(times[j])))
    for threshold in (0.3, 0.5, 0.7):
        for i, j in _runs(actionness >= threshold):
            cands.append((i, j, float(times[i] - step / 2), float(times[j] + step / 2)))
    if not cands:
        return np.zeros((0, 2)), np.zeros(0)
    # Best boundary probability within one cell: tolerant to a one-cell peak offset.
    start_near, end_near = _max3(start), _max3(end)
    cumulative = np.concatenate([[0.0], np.cumsum(actionness)])
    segments, scores = [], []
    for i, j, t0, t1 in cands:
        t0, t1 = max(0.0, t0), min(duration, t1)
        if t1 - t0 < step / 2 or (max_length is not None and t1 - t0 > max_length):
            continue
        mean_act = (cumulative[j + 1] - cumulative[i]) / (j - i + 1)
        segments.append((t0, t1))
        scores.append(start_near[i] * end_near[j] * mean_act)
    if not segments:
        return np.zeros((0, 2)), np.zeros(0)
    segments_arr, scores_arr = np.array(segments), np.array(scores)
    # Identical candidates from both generators: keep one (soft-NMS would only decay the copy).
    _, unique = np.unique(np.round(segments_arr, 6), axis=0, return_index=True)
    return soft_nms(segments_arr[unique], scores_arr[unique], top_k=max_proposals)


def classify_proposals(segments: np.ndarray, scores: np.ndarray, class_probs: np.ndarray,
                       actionness: np.ndarray, times: np.ndarray, top_classes: int = 2,
                       max_detections: int = 100) -> list[tuple[float, float, int, float]]:
    """Detections ``(start, end, class id, score)``: each proposal with its top classes.

    A proposal's class distribution is the actionness-weighted mean of the per-cell class
    probabilities inside it (the whole video's when it covers no cell centre); the detection score is
    proposal score x class probability.
    """
    video_dist = (class_probs * actionness[:, None]).sum(0) / max(actionness.sum(), 1e-6)
    detections = []
    for (t0, t1), score in zip(segments, scores, strict=True):
        inside = (times >= t0) & (times <= t1)
        if inside.any():
            w = actionness[inside][:, None] + 1e-6
            dist = (class_probs[inside] * w).sum(0) / w.sum()
        else:
            dist = video_dist
        for c in np.argsort(-dist, kind="stable")[:top_classes]:
            detections.append((float(t0), float(t1), int(c), float(score * dist[c])))
    detections.sort(key=lambda d: -d[3])
    return detections[:max_detections]
