"""Figures of DETAD's analyses, laid out like DETAD's: sensitivity bars per bucket, false-positive profile.

Needs matplotlib (``pip install 'tspvideo[plot]'``); drawn with the Agg backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tspvideo.core.fileio import atomic_path
from tspvideo.core.plotting import pyplot
from tspvideo.evaluation.detad_fp import ERROR_TYPES

__all__ = ["false_positive_figure", "plot_sensitivity", "plot_false_positive_profile"]

CHARACTERISTIC_COLOURS = {"coverage": "#386cb0", "length": "#f0027f", "num-instances": "#bf5b17"}
CHARACTERISTIC_TITLES = {"coverage": "Coverage", "length": "Length", "num-instances": "# Instances"}
ERROR_COLOURS = ("#33a02c", "#b2df8a", "#1f78b4", "#fb9a99", "#e31a1c", "#a6cee3")


def _save(fig: Any, out_path: str | Path) -> None:
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format=out_path.suffix.lstrip(".") or "png", dpi=120, bbox_inches="tight")


def plot_sensitivity(analysis: dict[str, Any], out_path: str | Path) -> None:
    """Average mAP_N per bucket of each characteristic (bars, overall value dashed) and, right, each
    characteristic's lowest and highest bucket relative to the overall value, as DETAD draws them."""
    plt = pyplot()
    chars = analysis["characteristics"]
    base = analysis["average_mAP"]
    metric = "average mAP$_N$ (%)" if analysis["precision"] == "normalized" else "average mAP (%)"
    width = 3.2 + 1.6 * len(chars) + 0.45 * sum(map(len, chars.values()))
    fig, (left, right) = plt.subplots(1, 2, figsize=(width, 4.2), gridspec_kw={"width_ratios": [3, 1]})
    x, ticks, labels = 0, [], []
    for name, rows in chars.items():
        colour = CHARACTERISTIC_COLOURS.get(name, "grey")
        for row in rows:
            value = np.nan if row["average_mAP"] is None else 100 * row["average_mAP"]
            left.bar(x, 0 if np.isnan(value) else value, color=colour)
            left.text(x, (0 if np.isnan(value) else value) + 1.5, "n/a" if np.isnan(value) else f"{value:.1f}",
                      ha="center", fontsize=8)
            ticks.append(x)
            labels.append(row["name"])
            x += 1
        left.text(x - len(rows) / 2 - 0.5, 97, CHARACTERISTIC_TITLES.get(name, name), ha="center", fontsize=10)
        left.axvline(x, color="grey", linestyle=":", linewidth=1)
        x += 1
    if base is not None:
        left.axhline(100 * base, color="k", linestyle="--", linewidth=1)
        left.text(x - 1.5, 100 * base + 1.5, f"{100 * base:.2f}", fontsize=8)
    left.set_xticks(ticks, labels)
    left.set_ylim(0, 100)
    left.set_xlim(-1, x - 1)
    left.set_ylabel(metric)
    left.spines[["top", "right"]].set_visible(False)

    for i, (name, rows) in enumerate(chars.items()):
        values = [r["average_mAP"] for r in rows if r["average_mAP"] is not None]
        if not values or not base:
            continue
        lo, hi = min(values) / base, max(values) / base
        right.plot([i, i], [lo, hi], color=CHARACTERISTIC_COLOURS.get(name, "grey"), linewidth=6,
                   marker="_", markersize=18, markeredgewidth=3)
        right.text(i + 0.12, lo, f"{lo:.1f}", fontsize=8, va="center")
        right.text(i + 0.12, hi, f"{hi:.1f}", fontsize=8, va="center")
    right.axhline(1.0, color="k", linestyle="--", linewidth=1)
    right.set_xticks(range(len(chars)), [CHARACTERISTIC_TITLES.get(n, n) for n in chars], rotation=90)
    right.set_xlim(-0.5, len(chars) - 0.5)
    right.set_ylabel("relative to overall")
    right.grid(True, linestyle=":")
    fig.suptitle(f"DETAD sensitivity ({analysis['settings']}, {analysis['precision']} precision)", fontsize=11)
    fig.tight_layout()
    _save(fig, out_path)
    plt.close(fig)


def false_positive_figure(fp: dict[str, Any]) -> Any:
    """The figure of :func:`plot_false_positive_profile`, not yet saved (and not closed)."""
    plt = pyplot()
    rows = [row for row in fp["profile"] if row["num_predictions"]]
    # Constrained layout puts the legend below both panels, clear of the x-axis labels.
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.6), gridspec_kw={"width_ratios": [3, 2]},
                                      layout="constrained")
    bottom = np.zeros(len(rows))
    for e, name in enumerate(ERROR_TYPES):
        shares = np.asarray([100 * row["shares"][name] for row in rows])
        left.bar(np.arange(len(rows)), shares, bottom=bottom, color=ERROR_COLOURS[e], label=name, width=0.85)
        bottom += shares
    left.set_xticks(np.arange(len(rows)), [row["top"] for row in rows])
    left.set_xlabel("top predictions (G = instances of the class)")
    left.set_ylabel("error breakdown (%)")
    left.set_ylim(0, 100)
    left.set_title("False positive profile")
    fig.legend(*left.get_legend_handles_labels(), fontsize=7, ncol=len(ERROR_TYPES), loc="outside lower center")

    gains = [fp["removing_gain"][name] for name in ERROR_TYPES[1:]]
    values = [0.0 if g is None else 100 * g for g in gains]
    bars = right.bar(np.arange(len(values)), values, color=ERROR_COLOURS[1:])
    # The axis always spans at least one point and starts at 0, so that gains of 0 (or all alike) still
    # show an axis with their labels on it rather than a range of +-0.05 with the labels outside.
    low, high = min(0.0, *values), max(0.0, *values)
    span = max(high - low, 1.0)
    right.set_ylim(low - (0.05 * span if low < 0 else 0), low + 1.15 * span)
    for bar, value, gain in zip(bars, values, gains, strict=True):
        right.text(bar.get_x() + bar.get_width() / 2, value + (0.02 if value >= 0 else -0.02) * span,
                   "n/a" if gain is None else f"{value:.1f}", ha="center", va="bottom" if value >= 0 else "top",
                   fontsize=8)
    right.axhline(0, color="k", linewidth=0.8)
    right.set_xticks(np.arange(len(values)), [n.replace(" Err", "") for n in ERROR_TYPES[1:]], rotation=45,
                     ha="right")
    right.set_ylabel("average mAP$_N$ improvement (%)")
    right.set_title("Removing error impact")
    for ax in (left, right):
        ax.spines[["top", "right"]].set_visible(False)
    return fig


def plot_false_positive_profile(fp: dict[str, Any], out_path: str | Path) -> None:
    """Stacked shares of each prediction type in the top 1G..10G blocks and the gain of removing each
    error type, as DETAD's false-positive figure."""
    fig = false_positive_figure(fp)
    _save(fig, out_path)
    pyplot().close(fig)
