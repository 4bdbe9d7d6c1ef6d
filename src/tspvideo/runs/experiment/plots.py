"""Figures of `tspvideo experiment`: training curves per seed and bars with per-seed points per metric."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from tspvideo.core.fileio import atomic_path
from tspvideo.core.plotting import pyplot  # imports matplotlib (optional) only when a figure is drawn


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=110)


def read_metrics_csv(path: Path) -> list[dict[str, float]]:
    """Rows of a run's ``metrics.csv`` as floats (empty cells are left out)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(handle)]


# (metrics.csv column, panel title, y-axis label)
CURVE_PANELS = (
    ("train_loss", "training loss", "loss"),
    ("valid_acc_action", "validation action clip accuracy", "accuracy"),
    ("valid_acc_region", "validation region clip accuracy", "accuracy"),
)


def plot_training_curves(runs: dict[str, Path], out_path: Path, title: str) -> None:
    """One figure of the trained variants' curves (``{title: metrics.csv}``): loss, valid action and region accuracy."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(CURVE_PANELS), figsize=(4.2 * len(CURVE_PANELS), 3.6))
    last_epoch = 0
    for index, (label, path) in enumerate(runs.items()):
        rows = read_metrics_csv(path)
        for ax, (key, _, _) in zip(axes, CURVE_PANELS, strict=True):
            points = [(row["epoch"], row[key]) for row in rows if key in row]
            if points:  # one colour per run in every panel, also where an earlier run has no curve (TAC's region)
                last_epoch = max(last_epoch, int(max(epoch for epoch, _ in points)))
                # a lone point (a one-epoch run) is a dot of its own, not a line's small marker
                ax.plot(*zip(*points, strict=True), marker="o", markersize=3 if len(points) > 1 else 7, label=label,
                        color=f"C{index}")
    for ax, (_, panel, ylabel) in zip(axes, CURVE_PANELS, strict=True):
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if last_epoch:  # whole epochs, half an epoch of margin: one epoch is not drawn on an axis of 0.96 to 1.04
            ax.set_xlim(0.5, last_epoch + 0.5)
            ax.set_xticks(range(1, last_epoch + 1, max(1, last_epoch // 10)))
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, out_path)
    plt.close(fig)


def plot_metric_bars(results: dict[str, dict[str, list]], columns: list[tuple[str, str, float]],
                     variants: dict[str, str], out_path: Path, title: str) -> None:
    """One panel per metric: a bar per variant (mean over seeds) with every seed's value as a point.

    The points of one seed are joined by a thin line across the variants, so the paired differences
    (same initial encoder, same probe seed) can be followed by eye.
    """
    plt = pyplot()
    cols = min(4, len(columns))
    rows = -(-len(columns) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False)
    names = list(variants)
    x = np.arange(len(names))
    for ax, (key, label, scale) in zip(axes.flat, columns, strict=False):
        values = [[v * scale if v is not None else np.nan for v in results[name].get(key, [])] for name in names]
        means = [np.nanmean(v) if v else np.nan for v in values]
        ax.bar(x, means, color="#c6dbef", edgecolor="#3182bd")
        seeds = max(len(v) for v in values)
        for seed in range(seeds):
            ys = [v[seed] if seed < len(v) else np.nan for v in values]
            ax.plot(x, ys, color="0.5", linewidth=0.6, alpha=0.6)
            ax.scatter(x, ys, s=12, color="k", zorder=3)
        ax.set_xticks(x, [variants[n] for n in names], rotation=30, ha="right", fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(columns):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, out_path)
    plt.close(fig)
