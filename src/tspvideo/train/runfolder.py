"""A training run's folder: what it holds, and the rule that a run is never replaced without being asked.

A folder holds a run when it has any of ``checkpoint.pth``, ``best.pth`` or ``metrics.csv``. Training into it
needs ``resume`` (continue the run) or ``overwrite`` (remove the run's own files first: the checkpoints, the
metrics, the logs, the TensorBoard events and temporary files of an interrupted save; nothing else).
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

from tspvideo.core.errors import TspVideoError

CHECKPOINT_NAME = "checkpoint.pth"
BEST_NAME = "best.pth"
METRICS_NAME = "metrics.csv"
LOG_NAME = "train.log"
TENSORBOARD_DIR = "tensorboard"
# Files whose presence means "a run is here": what training writes at the end of each epoch.
RUN_MARKERS = (CHECKPOINT_NAME, BEST_NAME, METRICS_NAME)
# The run's other files: each process's log, every epoch's model (``keep_epochs``) and the hidden temporary
# file of a save that was interrupted (``.NAME.XXXXXXXX.tmp``, see tspvideo.core.fileio.atomic_path).
OWN_FILE = re.compile(r"train\.rank\d+\.log|epoch_\d+\.pth"
                      r"|\.(checkpoint\.pth|best\.pth|metrics\.csv|epoch_\d+\.pth)\..+\.tmp")


def holds_run(out: str | Path) -> bool:
    """Whether ``out`` holds a training run (a checkpoint, a best model or a metrics table)."""
    return any((Path(out) / name).is_file() for name in RUN_MARKERS)


def describe_run(out: str | Path) -> str:
    """What the run in ``out`` has done, from its ``metrics.csv``: epochs done, best validation accuracy and epoch."""
    out = Path(out)
    rows = _metric_rows(out / METRICS_NAME)
    if not rows:
        present = [name for name in RUN_MARKERS if (out / name).is_file()]
        return f"a training run ({', '.join(present)}; no epoch in {METRICS_NAME})"
    epochs = max(int(row["epoch"]) for row in rows)
    scored = [(float(row["valid_acc_mean"]), int(row["epoch"])) for row in rows
              if row.get("valid_acc_mean") not in (None, "") and not math.isnan(float(row["valid_acc_mean"]))]
    if not scored:
        return f"a training run ({epochs} epoch(s) done, no validation)"
    best, best_epoch = max(scored, key=lambda item: (item[0], -item[1]))  # the first epoch of the best score
    return f"a training run ({epochs} epoch(s) done, best valid mean clip accuracy {best:.4f} at epoch {best_epoch})"


def _metric_rows(path: Path) -> list[dict]:
    """The rows of a ``metrics.csv``, or none when it is missing or unreadable (it only serves the message)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return [row for row in csv.DictReader(f) if row.get("epoch", "").isdigit()]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def check_run_folder(out: str | Path, resume: str | None, overwrite: bool) -> None:
    """Refuse to train into a folder that holds a run, unless the run is resumed or ``overwrite`` is set.

    ``resume`` is ``"auto"`` (``OUT/checkpoint.pth``) or a checkpoint's path; resuming from a checkpoint outside
    ``out`` into a folder holding another run would mix two runs, and is refused as well. Raises
    :class:`TspVideoError`; reads only.
    """
    out = Path(out)
    if overwrite and resume is not None:
        raise TspVideoError("--resume continues a run and --overwrite replaces it: give one of them")
    if overwrite or not holds_run(out):
        return
    if resume == "auto" or (resume is not None and _same_file(Path(resume), out / CHECKPOINT_NAME)):
        return
    what = describe_run(out)
    if resume is not None:
        raise TspVideoError(f"{out} holds {what}, not the run of {resume}; use another --out, or --overwrite to "
                            "replace it")
    raise TspVideoError(f"{out} holds {what}; add --resume to continue it, --overwrite to replace it, or use "
                        "another --out")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def clear_run(out: str | Path) -> list[Path]:
    """Remove the run's own files from ``out`` (checkpoints, every epoch's model, metrics, logs, TensorBoard events,
    temporary files of an interrupted save); other files stay. Returns what was removed."""
    out = Path(out)
    if not out.is_dir():
        return []
    removed = []
    names = (*RUN_MARKERS, LOG_NAME)
    for path in sorted(out.iterdir()):
        own = path.name in names or OWN_FILE.fullmatch(path.name) is not None
        if own and path.is_file():
            path.unlink()
            removed.append(path)
    board = out / TENSORBOARD_DIR
    if board.is_dir():
        for path in sorted(board.glob("events.out.tfevents.*")):
            path.unlink()
            removed.append(path)
        if not any(board.iterdir()):
            board.rmdir()
    return removed
