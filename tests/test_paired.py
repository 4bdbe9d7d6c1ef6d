"""Paired comparison over seeds: sign test, bootstrap interval, missing values."""

from __future__ import annotations

import math

import pytest

from tspvideo.evaluation.paired import bootstrap_ci, paired_comparison, sign_test


def test_sign_test_exact_values():
    assert sign_test(5, 0) == pytest.approx(2 / 32)  # the smallest p with 5 seeds
    assert sign_test(0, 5) == pytest.approx(2 / 32)
    assert sign_test(4, 1) == pytest.approx(2 * 6 / 32)
    assert sign_test(3, 2) == 1.0
    assert sign_test(0, 0) == 1.0
    assert sign_test(10, 0) == pytest.approx(2 / 1024)


def test_bootstrap_interval_is_deterministic_and_brackets_the_mean():
    values = [0.1, 0.3, -0.2, 0.5, 0.2]
    low, high = bootstrap_ci(values, seed=0)
    assert (low, high) == bootstrap_ci(values, seed=0)
    assert min(values) <= low < sum(values) / len(values) < high <= max(values)
    assert bootstrap_ci([0.4] * 5) == pytest.approx((0.4, 0.4))


def test_paired_comparison_pairs_by_seed_and_skips_missing():
    gap = paired_comparison([0.5, 0.6, None, 0.7, float("nan")], [0.4, 0.7, 0.1, 0.5, 0.2])
    assert gap.differences == pytest.approx((0.1, -0.1, 0.2))
    assert gap.mean == pytest.approx(0.2 / 3)
    assert (gap.wins, gap.losses) == (2, 1)
    assert gap.sign_test_p == 1.0
    assert gap.to_dict()["differences"] == pytest.approx([0.1, -0.1, 0.2])
    empty = paired_comparison([None], [0.1])
    assert math.isnan(empty.mean) and empty.sign_test_p == 1.0
    with pytest.raises(ValueError):
        paired_comparison([0.1, 0.2], [0.1])
