"""TSP and TAC compared at matched training progress: the epochs at which both reach one validation action
accuracy, the lower of their two best (each run keeps every epoch's model, ``epoch_<N>.pth``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tspvideo.core.errors import TspVideoError
from tspvideo.runs.experiment.plots import read_metrics_csv

ACCURACY = "valid_acc_action"  # the one accuracy both variants have


def first_epoch_reaching(rows: list[dict[str, float]], level: float) -> tuple[int, float]:
    """``(epoch, accuracy)`` of the first row whose validation action accuracy is at least ``level``."""
    for row in rows:
        if row.get(ACCURACY, -1.0) >= level:
            return int(row["epoch"]), float(row[ACCURACY])
    raise TspVideoError(f"no epoch reaches validation action accuracy {level:.4f}")


def match_epochs(runs: dict[str, Path]) -> dict[str, Any]:
    """``{"level": L, variant: {"epoch": N, "valid_acc_action": a, "best_acc_action": b}}`` for the runs
    ``{variant: run folder}``: L is the lowest of the variants' best validation action accuracies, and each
    variant's epoch is its first to reach L (the variant with the lowest best takes its best epoch)."""
    curves = {variant: read_metrics_csv(folder / "metrics.csv") for variant, folder in runs.items()}
    best = {variant: max(row.get(ACCURACY, -1.0) for row in rows) for variant, rows in curves.items()}
    level = min(best.values())
    match: dict[str, Any] = {"level": level}
    for variant, rows in curves.items():
        epoch, accuracy = first_epoch_reaching(rows, level)
        match[variant] = {"epoch": epoch, ACCURACY: accuracy, "best_acc_action": best[variant]}
    return match
