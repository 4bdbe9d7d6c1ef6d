"""How much of the foreground/background decision the clip alone carries, measured on the generator's plans.

For every frame of the validation videos (a clip centred there sees the same), the *visible pattern* is the
class pattern some object performs then (an instance's, or the video's decoy in a background stretch with
``SyntheticConfig.decoy_background``). A rule maps what it is given to foreground or background: the majority
label of the training videos' frames with the same key (unseen keys fall back to the clip-only rule).
Keys: the visible pattern alone (the clip); with whether it is the video's most frequent pattern (what an
average over the video can carry); with the set of patterns the video shows (what a max over the video can
carry). The accuracies bound what a clip-level classifier can do with each.
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
    ``clip+set``) fitted on the training videos, and the validation share of foreground frames."""
    plans, subsets = plan_dataset(cfg)
    train = [f for p, s in zip(plans, subsets, strict=True) if s == "training" for f in _frames(p)]
    valid = [f for p, s in zip(plans, subsets, strict=True) if s == "validation" for f in _frames(p)]
    clip_rule = _rule(train, "clip")
    result = {"foreground_share": float(np.mean([f for _, f in valid]))}
    for key in ("clip", "clip+dominant", "clip+set"):
        rule = _rule(train, key)
        hits = [(rule(k[key]) if rule(k[key]) is not None else clip_rule(k["clip"])) == f for k, f in valid]
        result[key] = float(np.mean(hits))
    return result
