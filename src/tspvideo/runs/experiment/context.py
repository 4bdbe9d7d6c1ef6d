"""How much of the foreground/background decision the clip alone carries, measured on the generator's plans.

For every frame of the validation videos (a clip centred there sees the same), the *visible pattern* is the
class pattern some object performs then (an instance's, or the video's decoy in a background stretch with
``SyntheticConfig.decoy_background``). A rule maps what it is given to foreground or background: the majority
label of the training videos' frames with the same key (unseen keys fall back to the clip-only rule).
Keys: the visible pattern alone (the clip); with whether it is the video's most frequent pattern (what an
average over the video can carry); with the set of patterns the video shows (what a max over the video can
carry). The accuracies bound what a clip-level classifier can do with each.

TSP's region head is *linear* over the clip feature concatenated with the GVF, so it can use the video only as a
per-video offset, not to compare the clip with the video. :func:`linear_context` measures that bound: a logistic
regression over the one-hot visible pattern and the video's pattern shares (what an average carries) or its
pattern set (what a max carries), fitted on the training frames.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Hashable

import numpy as np

from tspvideo.video.synthetic import SyntheticConfig, VideoPlan, plan_dataset

NONE = -1  # no object performs a pattern at this frame


def visible_patterns(plan: VideoPlan) -> np.ndarray:
    """Per frame, the class of the pattern performed then (instance or decoy), else :data:`NONE`."""
    t = plan.frame_times()
    pattern = np.full(plan.num_frames, NONE)
    for motion in [*plan.decoys, *plan.instances]:  # instances last: they win where a fade overlaps
        pattern[(t >= motion.start) & (t < motion.end)] = motion.label_id
    return pattern


def _frames(plan: VideoPlan) -> list[tuple[dict[str, Hashable], bool]]:
    pattern = visible_patterns(plan)
    counts = Counter(int(p) for p in pattern if p != NONE)
    dominant = counts.most_common(1)[0][0] if counts else NONE
    shown = frozenset(counts)
    foreground = plan.action_mask()
    return [({"clip": int(p), "clip+dominant": (int(p), int(p) == dominant), "clip+set": (int(p), shown)}, bool(f))
            for p, f in zip(pattern, foreground, strict=True)]


def _rule(frames: list[tuple[dict[str, Hashable], bool]], key: str) -> Callable[[Hashable], bool | None]:
    votes: dict[Hashable, list[int]] = defaultdict(lambda: [0, 0])
    for keys, foreground in frames:
        votes[keys[key]][int(foreground)] += 1
    return lambda k: (votes[k][1] >= votes[k][0]) if k in votes else None


def context_ambiguity(cfg: SyntheticConfig) -> dict[str, float]:
    """Accuracy on the validation videos' frames of the best rule of each key (``clip``, ``clip+dominant``,
    ``clip+set``) fitted on the training videos, the validation share of foreground frames, and the linear
    classifiers' accuracies of :func:`linear_context`."""
    plans, subsets = plan_dataset(cfg)
    train = [f for p, s in zip(plans, subsets, strict=True) if s == "training" for f in _frames(p)]
    valid = [f for p, s in zip(plans, subsets, strict=True) if s == "validation" for f in _frames(p)]
    clip_rule = _rule(train, "clip")
    result = {"foreground_share": float(np.mean([f for _, f in valid]))}
    for key in ("clip", "clip+dominant", "clip+set"):
        rule = _rule(train, key)
        hits = [(rule(k[key]) if rule(k[key]) is not None else clip_rule(k["clip"])) == f for k, f in valid]
        result[key] = float(np.mean(hits))
    return {**result, **_linear_context(plans, subsets, cfg.num_classes)}


def _linear_inputs(plan: VideoPlan, num_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: the one-hot visible pattern (the last column: none), the video's pattern shares and its
    pattern set (each the same for every frame), and whether the frame is foreground."""
    pattern = visible_patterns(plan)
    clip = np.eye(num_classes + 1)[np.where(pattern == NONE, num_classes, pattern)]
    shown = pattern[pattern != NONE]
    shares = np.bincount(shown, minlength=num_classes)[:num_classes] / max(len(shown), 1)
    frames = len(pattern)
    return clip, np.tile(shares, (frames, 1)), np.tile(shares > 0, (frames, 1)).astype(float), plan.action_mask()


def _fit_logistic(x: np.ndarray, y: np.ndarray, steps: int = 50, ridge: float = 1e-3) -> np.ndarray:
    """Weights of a logistic regression (Newton's method, a small ridge for separable data; deterministic)."""
    x = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        hessian = (x * (p * (1 - p))[:, None]).T @ x + ridge * np.eye(len(w))
        w -= np.linalg.solve(hessian, x.T @ (p - y) + ridge * w)
    return w


def linear_context(cfg: SyntheticConfig) -> dict[str, float]:
    """Validation frame accuracy of a linear foreground/background classifier (fitted on the training frames) of
    ``linear:clip`` (the one-hot visible pattern), ``linear:clip+avg`` (with the video's pattern shares) and
    ``linear:clip+max`` (with the set of patterns it shows): what TSP's linear region head could reach with
    perfect clip features and a perfect GVF."""
    plans, subsets = plan_dataset(cfg)
    return _linear_context(plans, subsets, cfg.num_classes)


def _linear_context(plans: list[VideoPlan], subsets: list[str], num_classes: int) -> dict[str, float]:
    columns = {}  # subset -> (clip one-hot, pattern shares, pattern set, foreground), frames of all its videos
    for subset in ("training", "validation"):
        rows = [_linear_inputs(p, num_classes) for p, s in zip(plans, subsets, strict=True) if s == subset]
        columns[subset] = [np.concatenate(parts) for parts in zip(*rows, strict=True)]
    result = {}
    for name, video in (("linear:clip", []), ("linear:clip+avg", [1]), ("linear:clip+max", [2])):
        train_x, valid_x = (np.hstack([columns[s][i] for i in [0, *video]]) for s in ("training", "validation"))
        w = _fit_logistic(train_x, columns["training"][3].astype(float))
        scores = np.hstack([valid_x, np.ones((len(valid_x), 1))]) @ w
        result[name] = float(np.mean((scores > 0) == columns["validation"][3]))
    return result
