"""Checkpoints and metrics of a training run: atomic saves, exact resume, ``metrics.csv``.

``checkpoint.pth`` holds everything to resume (model, optimizer, schedule, scaler, RNG states, best so far);
``best.pth`` the best epoch's model alone, in the released layout that ``tspvideo extract --checkpoint``
reads. Both record the input the model was trained on (``input``: clip grid and frame sizes; ``recipe``:
the typed input recipe) so that extraction and evaluation default to it.
"""

from __future__ import annotations

import csv
import io
import logging
import random
from pathlib import Path

import numpy as np
import torch

from tspvideo.core.errors import TspVideoError
from tspvideo.core.fileio import atomic_path
from tspvideo.models.weights import InputRecipe, read_checkpoint
from tspvideo.train.runfolder import BEST_NAME as BEST_NAME  # the names live with the run folder's rule
from tspvideo.train.runfolder import CHECKPOINT_NAME as CHECKPOINT_NAME
from tspvideo.train.runfolder import METRICS_NAME as METRICS_NAME

log = logging.getLogger("tspvideo.train")

METRIC_COLUMNS = [
    "epoch", "lr_backbone", "lr_heads", "train_loss", "train_loss_action", "train_loss_region",
    "train_acc_action", "train_acc_region", "train_clips", "train_clips_per_s", "train_replaced",
    "valid_acc_action", "valid_acc_region", "valid_acc_mean", "valid_clips", "valid_replaced", "seconds",
]
# What only resuming a run needs (a finished run may drop it: the optimizer's momentum alone is as large
# as the model).
RESUME_ONLY_KEYS = ("optimizer", "lr_scheduler", "scaler", "rng")


def rng_states() -> dict:
    """Python, NumPy, torch and CUDA RNG states, in types ``weights_only=True`` loads."""
    state = np.random.get_state()
    return {"python": random.getstate(), "torch": torch.get_rng_state(),
            "numpy": {"keys": torch.from_numpy(state[1].astype(np.int64)), "pos": int(state[2]),
                      "has_gauss": int(state[3]), "cached_gaussian": float(state[4])},
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_rng_states(states: dict) -> None:
    """Inverse of :func:`rng_states`."""
    random.setstate(tuple(item if not isinstance(item, list) else tuple(item) for item in states["python"]))
    torch.set_rng_state(states["torch"])
    numpy = states["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["pos"], numpy["has_gauss"],
                         numpy["cached_gaussian"]))
    if states.get("cuda") and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(path: Path, checkpoint: dict) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename: never a half-written checkpoint.

    A write that fails (disk full, quota, file size limit, I/O error) raises the one-line error of
    :func:`tspvideo.core.fileio.atomic_path`, naming ``path`` and the cause; the temporary file is removed.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        file = _ErrnoKeepingFile(f)
        try:
            torch.save(checkpoint, file)
        except RuntimeError:
            # torch's writer reports a failed write as "unexpected pos ...": the OSError says what happened
            if file.error is not None:
                raise file.error from None
            raise


class _ErrnoKeepingFile:
    """A binary file that keeps the ``OSError`` of a failed ``write`` (``torch.save`` replaces it with its own)."""

    def __init__(self, file) -> None:
        self._file = file
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self._file.write(data)
        except OSError as error:
            self.error = error
            raise

    def flush(self) -> None:
        self._file.flush()


def write_metrics(path: Path, rows: list[dict]) -> None:
    """``metrics.csv``, one row per epoch, written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")


def read_metrics(path: Path, epochs_done: int) -> list[dict]:
    """Rows of the epochs a resumed run has done (the CSV's epoch column counts from 1)."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [row for row in csv.DictReader(f) if int(row["epoch"]) <= epochs_done]


def resume(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler, scaler,
           recipe: InputRecipe, bn_momentum: float | None = None, checkpoint: dict | None = None) -> dict:
    """Load a ``checkpoint.pth`` (``checkpoint``: the file already read) into the run's objects; returns it
    (``epoch``, ``best``...).

    Refuses a model-only file, a model of another shape, a checkpoint trained on another input, one trained
    with another ``--bn-momentum`` and one whose optimizer state is another optimizer's. The scheduler gets the
    run's step and base rates, not its schedule function: ``scheduler``'s own (the run's options) is kept, see
    :mod:`tspvideo.train.resume`.
    """
    checkpoint = read_checkpoint(path) if checkpoint is None else checkpoint
    missing = [k for k in ("model", "optimizer", "lr_scheduler", "epoch") if k not in checkpoint]
    if missing:
        raise TspVideoError(f"{path}: cannot resume from it: no {', '.join(missing)} (use --weights for a "
                            "model-only file)")
    current = model.state_dict()
    differ = [f"{k} {tuple(v.shape)} in the checkpoint, {tuple(current[k].shape)} now"
              for k, v in checkpoint["model"].items() if k in current and v.shape != current[k].shape]
    if differ or current.keys() != checkpoint["model"].keys():
        raise TspVideoError(f"{path}: cannot resume with these options: the model differs from the checkpoint's "
                            f"({'; '.join(differ[:2]) or 'other layers'}); same --backbone, --heads, --label-map "
                            "and GVF options as the run, please")
    trained_recipe = checkpoint.get("recipe")
    if trained_recipe is not None and trained_recipe != recipe.to_dict():
        changed = [k for k in recipe.to_dict() if trained_recipe.get(k) != recipe.to_dict()[k]]
        raise TspVideoError(f"{path}: cannot resume with another input: {', '.join(changed)} differ from the "
                            f"run's ({', '.join(f'{k} {trained_recipe.get(k)}' for k in changed)}); give the "
                            "run's --clip-len/--fps/--resize/--crop")
    trained_momentum = checkpoint.get("args", {}).get("bn_momentum")
    if trained_momentum != bn_momentum:
        def describe(value: float | None) -> str:
            return "the architecture's own" if value is None else f"{value:g}"
        raise TspVideoError(f"{path}: cannot resume with another batch-norm momentum: the run used "
                            f"{describe(trained_momentum)}, now {describe(bn_momentum)}; give the run's --bn-momentum")
    _check_optimizer_state(path, checkpoint["optimizer"], optimizer)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler_state = checkpoint["lr_scheduler"]
    scheduler.load_state_dict({**scheduler_state, "lr_lambdas": [None] * len(scheduler_state.get("lr_lambdas", []))})
    if checkpoint.get("scaler"):
        scaler.load_state_dict(checkpoint["scaler"])
    if checkpoint.get("rng"):
        restore_rng_states(checkpoint["rng"])
    return checkpoint


def _check_optimizer_state(path: Path, saved: dict, optimizer: torch.optim.Optimizer) -> None:
    """Refuse the state of another optimizer (SGD's and AdamW's groups and per-parameter state differ)."""
    saved_groups = saved.get("param_groups", [])
    # Adam's "betas" tells the two apart; not the whole key set, which grows with torch versions.
    same = len(saved_groups) == len(optimizer.param_groups) and all(
        ("betas" in a) == ("betas" in b) for a, b in zip(saved_groups, optimizer.param_groups, strict=True))
    if not same:
        raise TspVideoError(f"{path}: its optimizer state is not {type(optimizer).__name__}'s (another --optimizer or "
                            "parameter groups); resume with the run's --optimizer and --freeze-stem")


def drop_resume_state(path: Path) -> None:
    """Rewrite a finished run's last checkpoint without its resume-only state (the model stays)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)  # written by this package
    for key in RESUME_ONLY_KEYS:
        checkpoint.pop(key, None)
    save_checkpoint(path, checkpoint)
