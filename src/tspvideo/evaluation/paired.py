"""Paired comparison of two methods measured on the same seeds: mean difference, bootstrap CI, sign test.

With a handful of seeds the spread of each method's numbers mixes what the seeds share (the initial
encoder, the probe's seed) with what differs between the methods; the per-seed difference removes the
shared part. Two summaries of it, both with few assumptions:

- a percentile bootstrap confidence interval of the mean difference (seeds resampled with replacement);
  with 5 seeds it is rough (it cannot be wider than the observed differences), so it is read together with
- an exact two-sided sign test: under "no difference" each seed is equally likely to favour either
  method; ties are dropped. With 5 seeds the smallest possible p-value is 2 / 32 = 0.0625.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class PairedComparison:
    """The per-seed differences ``a - b`` and their summaries (NaN where there are no pairs)."""

    differences: tuple[float, ...]
    mean: float
    std: float  # sample std of the differences (ddof 1; 0 for one pair)
    ci_low: float
    ci_high: float
    confidence: float
    wins: int  # seeds where a > b
    losses: int  # seeds where a < b
    sign_test_p: float  # exact two-sided binomial p-value over the seeds that are not ties

    def to_dict(self) -> dict:
        """JSON-ready values."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided sign-test p-value for ``wins`` against ``losses`` (ties already dropped); 1 without data."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0 ** n
    return float(min(1.0, 2.0 * tail))


def bootstrap_ci(values: Sequence[float], confidence: float = 0.95, resamples: int = 10000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (deterministic for ``seed``)."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = data[rng.integers(data.size, size=(resamples, data.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def paired_comparison(a: Sequence[float | None], b: Sequence[float | None], confidence: float = 0.95,
                      resamples: int = 10000, seed: int = 0) -> PairedComparison:
    """Compare ``a`` and ``b`` seed by seed (same order); seeds where either value is missing or NaN are left out."""
    if len(a) != len(b):
        raise ValueError(f"paired values need the same seeds: {len(a)} vs {len(b)} values")
    diffs = [float(x) - float(y) for x, y in zip(a, b, strict=True)
             if x is not None and y is not None and not math.isnan(x) and not math.isnan(y)]
    if not diffs:
        return PairedComparison((), math.nan, math.nan, math.nan, math.nan, confidence, 0, 0, 1.0)
    wins = sum(d > 0 for d in diffs)
    losses = sum(d < 0 for d in diffs)
    std = float(np.std(diffs, ddof=1)) if len(diffs) > 1 else 0.0
    low, high = bootstrap_ci(diffs, confidence, resamples, seed)
    return PairedComparison(tuple(diffs), float(np.mean(diffs)), std, low, high, confidence, wins, losses,
                            sign_test(wins, losses))
