"""The experiment's results over seeds: collected per variant, paired comparisons, the Table-1-like table, and
the files ``results.json``, ``comparison.json``, ``table.txt`` and ``figures/comparison.<format>``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from tspvideo.core.fileio import save_json_atomic, save_text_atomic
from tspvideo.evaluation.paired import PairedComparison, paired_comparison
from tspvideo.runs.experiment.config import VARIANT_TITLES, VARIANTS, ExperimentConfig
from tspvideo.runs.experiment.plots import plot_metric_bars

# (metric key, column title, scale for printing): mAP / AUC in %, as the paper prints them.
TABLE_COLUMNS = (
    ("mAP@0.5", "mAP@0.5", 100.0),
    ("mAP@0.75", "mAP@0.75", 100.0),
    ("mAP@0.95", "mAP@0.95", 100.0),
    ("mAP_avg", "avg mAP", 100.0),
    ("AUC", "AUC", 100.0),
    ("mAP_avg_short", "avg mAP short", 100.0),
    ("mAP_avg_long", "avg mAP long", 100.0),
    ("contrast", "contrast", 1.0),
    ("fg_bg_probe_auc", "fg/bg AUC", 1.0),
)
# Paired comparisons written to comparison.json: (a, b) means a - b per seed.
COMPARISONS = (("tsp", "tac"), ("tsp", "tsp_no_gvf"), ("tsp", "init"), ("tac", "init"))


def collect(per_seed: dict[int, dict[str, dict[str, Any]]]) -> dict[str, dict[str, list]]:
    """``{seed: {variant: {metric: value}}}`` -> ``{variant: {metric: [one value per seed, in seed order]}}``."""
    seeds = list(per_seed)
    results: dict[str, dict[str, list]] = {}
    for variant in VARIANTS:
        metrics = list(per_seed[seeds[0]][variant])
        results[variant] = {m: [per_seed[s][variant].get(m) for s in seeds] for m in metrics}
    return results


def mean_std(values: list[float | None]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof 1; 0 for one value) and count of the values that are numbers."""
    kept = np.array([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    if kept.size == 0:
        return math.nan, math.nan, 0
    std = float(kept.std(ddof=1)) if kept.size > 1 else 0.0
    return float(kept.mean()), std, int(kept.size)


def compare(results: dict[str, dict[str, list]], a: str, b: str) -> dict[str, PairedComparison]:
    """``{metric: PairedComparison of a - b}`` for every table column (the same seeds, in the same order)."""
    return {key: paired_comparison(results[a].get(key, []), results[b].get(key, [])) for key, _, _ in TABLE_COLUMNS}


def comparisons(results: dict[str, dict[str, list]]) -> dict[str, dict[str, dict]]:
    """``{"tsp-tac": {metric: {differences, mean, std, ci_low, ci_high, wins, losses, sign_test_p}}}``."""
    return {f"{a}-{b}": {k: v.to_dict() for k, v in compare(results, a, b).items()} for a, b in COMPARISONS}


def format_table(results: dict[str, dict[str, list]], config: ExperimentConfig | None = None) -> str:
    """The Table-1-like table: one row per variant, mean ± std over seeds, plus the paired TSP - TAC gap."""
    seeds = len(next(iter(results["tsp"].values())))
    width = 17
    header = f"{'features':<18}" + "".join(f"{title:>{width}}" for _, title, _ in TABLE_COLUMNS)
    lines = [header, "-" * len(header)]
    for variant in VARIANTS:
        cells = []
        for key, _, scale in TABLE_COLUMNS:
            mean, std, n = mean_std(results[variant].get(key, []))
            cells.append("n/a" if n == 0 else f"{mean * scale:.1f} ± {std * scale:.1f}" if scale != 1.0
                         else f"{mean:.3f} ± {std:.3f}")
        lines.append(f"{VARIANT_TITLES[variant]:<18}" + "".join(f"{c:>{width}}" for c in cells))
    # Paired over seeds (same initial encoder and probe seed): the spread of the gap, not of each number.
    gaps = compare(results, "tsp", "tac")
    rows: dict[str, list[str]] = {"TSP - TAC (wins)": [], "  95% CI (boot.)": [], "  sign test p": []}
    for key, _, scale in TABLE_COLUMNS:
        gap = gaps[key]
        n = gap.wins + gap.losses + sum(d == 0 for d in gap.differences)
        if not gap.differences:
            cells = ["n/a"] * 3
        elif scale != 1.0:
            cells = [f"{gap.mean * scale:+.1f} ({gap.wins}/{n})",
                     f"[{gap.ci_low * scale:+.1f}, {gap.ci_high * scale:+.1f}]", f"{gap.sign_test_p:.3f}"]
        else:
            cells = [f"{gap.mean:+.3f} ({gap.wins}/{n})", f"[{gap.ci_low:+.3f}, {gap.ci_high:+.3f}]",
                     f"{gap.sign_test_p:.3f}"]
        for row, cell in zip(rows.values(), cells, strict=True):
            row.append(cell)
    for title, cells in rows.items():
        lines.append(f"{title:<18}" + "".join(f"{c:>{width}}" for c in cells))
    edge = f"{(config or ExperimentConfig()).length_edges[0]:g}"
    lines.append("")
    lines.append(f"mean ± sample std over {seeds} seed(s); mAP and AUC in %: detection mAP of the localization "
                 "probe at tIoU 0.5 / 0.75 / 0.95 and averaged over 0.5:0.05:0.95; AUC of AR-AN (proposals);")
    lines.append(f"avg mAP short / long: ground-truth instances <= {edge} s / > {edge} s (validation videos); "
                 "contrast = within-instance minus fg-bg cosine similarity;")
    lines.append("fg/bg AUC: a linear foreground/background probe over the validation videos' features, "
                 "folds by video. TSP - TAC: the per-seed difference, mean (seeds where TSP is ahead / seeds),")
    lines.append("a 95 % percentile-bootstrap interval of its mean over seeds and the exact two-sided sign test's p "
                 f"(ties dropped; with {seeds} seed(s) p >= {min(1.0, 2 / 2 ** seeds):.4g}).")
    return "\n".join(lines)


def write_report(out: Path, per_seed: dict[int, dict[str, dict[str, Any]]],
                 config: ExperimentConfig) -> tuple[dict[str, dict[str, list]], str]:
    """Write ``results.json``, ``comparison.json``, ``table.txt`` and the comparison figure into ``out``.

    Returns the results (``{variant: {metric: [one value per seed]}}``) and the table.
    """
    results = collect(per_seed)
    save_json_atomic(out / "results.json", results)
    save_json_atomic(out / "comparison.json", {"seeds": list(config.seeds), **comparisons(results)})
    table = format_table(results, config)
    save_text_atomic(out / "table.txt", table + "\n")
    plot_metric_bars(results, list(TABLE_COLUMNS), VARIANT_TITLES,
                     out / "figures" / f"comparison.{config.figure_format}",
                     f"{len(config.seeds)} seed(s): bars = mean, points = seeds (lines join one seed)")
    return results, table
