"""The experiment's results over seeds: collected per variant, paired comparisons, the Table-1-like table, and
the files ``results.json``, ``comparison.json``, ``table.txt`` and ``figures/comparison.<format>``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from tspvideo.core.fileio import save_json_atomic, save_text_atomic
from tspvideo.evaluation.paired import PairedComparison, paired_comparison
from tspvideo.runs.experiment.config import MATCHED_VARIANTS, VARIANT_TITLES, VARIANTS, ExperimentConfig
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
# Paired comparisons written to comparison.json, where both variants ran: (a, b) means a - b per seed.
COMPARISONS = (("tsp", "tac"), ("tsp_matched", "tac_matched"), ("tsp", "tsp_no_gvf"), ("tsp_avg_gvf", "tsp_no_gvf"),
               ("tsp", "tsp_avg_gvf"), ("tsp", "init"), ("tac", "init"))
# The gaps each table prints under its rows, where both variants ran.
TABLE_GAPS = (("tsp", "tac"), ("tsp", "tsp_no_gvf"), ("tsp_avg_gvf", "tsp_no_gvf"))
# Short names of the variants in the gap rows (at most 17 characters for a pair).
GAP_NAMES = {"tsp": "TSP", "tac": "TAC", "tsp_no_gvf": "no GVF", "tsp_avg_gvf": "avg GVF", "init": "init",
             "tsp_matched": "TSP", "tac_matched": "TAC"}
ACCURACY = "valid_acc_action"
LOCALIZATION = "mAP_avg"


def collect(per_seed: dict[int, dict[str, dict[str, Any]]]) -> dict[str, dict[str, list]]:
    """``{seed: {variant: {metric: value}}}`` -> ``{variant: {metric: [one value per seed, in seed order]}}``,
    for the variants every seed has (in :data:`VARIANTS` order)."""
    seeds = list(per_seed)
    present = [v for v in VARIANTS if all(v in per_seed[s] for s in seeds)]
    results: dict[str, dict[str, list]] = {}
    for variant in present:
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


def accuracy_vs_localization(results: dict[str, dict[str, list]], a: str, b: str) -> dict[str, Any] | None:
    """Per seed, a - b in best validation action accuracy and in average mAP, and their Pearson correlation
    (None when a variant has no accuracy, e.g. the initial encoder; r is NaN when a gap does not vary)."""
    acc_a, acc_b = results[a].get(ACCURACY), results[b].get(ACCURACY)
    if not acc_a or not acc_b or None in acc_a or None in acc_b:
        return None
    acc_gap = [x - y for x, y in zip(acc_a, acc_b, strict=True)]
    map_gap = [x - y for x, y in zip(results[a][LOCALIZATION], results[b][LOCALIZATION], strict=True)]
    r = math.nan
    if len(acc_gap) > 1 and np.std(acc_gap) > 0 and np.std(map_gap) > 0:
        r = float(np.corrcoef(acc_gap, map_gap)[0, 1])
    return {"accuracy_gap": acc_gap, "mAP_avg_gap": map_gap, "pearson_r": r}


def _pairs(results: dict[str, dict[str, list]], pairs: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    return [(a, b) for a, b in pairs if a in results and b in results]


def comparisons(results: dict[str, dict[str, list]]) -> dict[str, dict[str, dict]]:
    """``{"tsp-tac": {metric: {differences, mean, std, ci_low, ci_high, wins, losses, sign_test_p}, ...,
    "accuracy_vs_localization": {...} or None}}`` for the comparisons whose variants ran."""
    return {f"{a}-{b}": {**{k: v.to_dict() for k, v in compare(results, a, b).items()},
                         "accuracy_vs_localization": accuracy_vs_localization(results, a, b)}
            for a, b in _pairs(results, COMPARISONS)}


def _cell(mean: float, std: float, n: int, scale: float) -> str:
    if n == 0:
        return "n/a"
    return f"{mean * scale:.1f} ± {std * scale:.1f}" if scale != 1.0 else f"{mean:.3f} ± {std:.3f}"


def _gap_rows(results: dict[str, dict[str, list]], a: str, b: str, width: int) -> list[str]:
    """The paired a - b rows: mean (wins / seeds), bootstrap interval, sign test; and the accuracy relation."""
    gaps = compare(results, a, b)
    title = f"{GAP_NAMES[a]} - {GAP_NAMES[b]}"
    rows: dict[str, list[str]] = {title: [], "  95% CI (boot.)": [], "  sign test p": []}
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
    lines = [f"{name:<18}" + "".join(f"{c:>{width}}" for c in cells) for name, cells in rows.items()]
    relation = accuracy_vs_localization(results, a, b)
    if relation is not None:
        lines.append(f"  per seed, {title}: action accuracy gap "
                     + " ".join(f"{g:+.3f}" for g in relation["accuracy_gap"]) + "; avg mAP gap "
                     + " ".join(f"{g * 100:+.1f}" for g in relation["mAP_avg_gap"])
                     + f"; correlation r = {relation['pearson_r']:+.2f}")
    return lines


def _table(results: dict[str, dict[str, list]], rows: list[str], gaps: list[tuple[str, str]]) -> list[str]:
    width = 17
    header = f"{'features':<18}" + "".join(f"{title:>{width}}" for _, title, _ in TABLE_COLUMNS)
    lines = [header, "-" * len(header)]
    for variant in rows:
        cells = [_cell(*mean_std(results[variant].get(key, [])), scale) for key, _, scale in TABLE_COLUMNS]
        lines.append(f"{VARIANT_TITLES[variant]:<18}" + "".join(f"{c:>{width}}" for c in cells))
    # Paired over seeds (same initial encoder and probe seed): the spread of the gap, not of each number.
    for a, b in gaps:
        lines += _gap_rows(results, a, b, width)
    return lines


def format_table(results: dict[str, dict[str, list]], config: ExperimentConfig | None = None) -> str:
    """The Table-1-like table: one row per variant, mean ± std over seeds, plus the paired gaps (TSP - TAC and
    the GVF's); then, when the run has them, the same for TSP and TAC at matched validation action accuracy."""
    seeds = len(next(iter(results["init"].values())))
    main = [v for v in VARIANTS if v in results and v not in MATCHED_VARIANTS]
    lines = _table(results, main, _pairs(results, TABLE_GAPS))
    if all(v in results for v in MATCHED_VARIANTS):
        lines += ["", "At matched validation action accuracy (each variant's first epoch reaching the lower of "
                      "the two best accuracies):"]
        lines += _table(results, list(MATCHED_VARIANTS), [MATCHED_VARIANTS])
        lines.append("  epochs (TSP / TAC) per seed: " + " ".join(
            f"{int(t)}/{int(c)}" for t, c in zip(results["tsp_matched"]["epoch"], results["tac_matched"]["epoch"],
                                                 strict=True)))
    edge = f"{(config or ExperimentConfig()).length_edges[0]:g}"
    lines.append("")
    lines.append(f"mean ± sample std over {seeds} seed(s); mAP and AUC in %: detection mAP of the localization "
                 "probe at tIoU 0.5 / 0.75 / 0.95 and averaged over 0.5:0.05:0.95; AUC of AR-AN (proposals);")
    lines.append(f"avg mAP short / long: ground-truth instances <= {edge} s / > {edge} s (validation videos); "
                 "contrast = within-instance minus fg-bg cosine similarity;")
    lines.append("fg/bg AUC: a linear foreground/background probe over the validation videos' features, "
                 "folds by video. A - B: the per-seed difference, mean (seeds where A is ahead / seeds),")
    lines.append("a 95 % percentile-bootstrap interval of its mean over seeds and the exact two-sided sign test's p "
                 f"(ties dropped; with {seeds} seed(s) p >= {min(1.0, 2 / 2 ** seeds):.4g}); action accuracy: "
                 "best epoch's validation clip accuracy.")
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
    plot_metric_bars(results, list(TABLE_COLUMNS), {v: VARIANT_TITLES[v] for v in results},
                     out / "figures" / f"comparison.{config.figure_format}",
                     f"{len(config.seeds)} seed(s): bars = mean, points = seeds (lines join one seed)")
    return results, table
