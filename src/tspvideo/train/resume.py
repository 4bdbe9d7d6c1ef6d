"""What a resumed run trains with: the run's own optimisation settings, unless a flag changes them.

A resumed run continues with the values its checkpoint recorded (``args``) for every optimisation option
not given explicitly now; an explicit new value is applied from where the run stands (the NaN-loss remedy
is to resume with lower learning rates):

- learning rates: the schedule's base rates are replaced and its current factor kept (a run at step 400
  of a warm-up continues the warm-up from the new rates);
- weight decay and momentum: set in every parameter group;
- the schedule (warm-up, milestones, gamma): the new one, at the step the run has reached.

Another ``--optimizer`` than the run's is refused (its state does not carry over). What changed is logged
and recorded in the checkpoint's ``args``, which say what trained.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from tspvideo.core.errors import TspVideoError
from tspvideo.train.checkpoint import CHECKPOINT_NAME
from tspvideo.train.config import TrainConfig

# The options a checkpoint's optimizer and schedule state depend on.
OPTIMISATION_KEYS = ("optimizer", "backbone_lr", "fc_lr", "momentum", "weight_decay", "lr_warmup_epochs",
                     "lr_milestones", "lr_gamma")


def resume_path(config: TrainConfig) -> Path:
    """The checkpoint ``config.resume`` names: ``OUT/checkpoint.pth`` for ``"auto"``."""
    return Path(config.out) / CHECKPOINT_NAME if config.resume == "auto" else Path(config.resume)


def resumed_config(config: TrainConfig, origins: dict[str, str], checkpoint: dict,
                   path: Path | str) -> tuple[TrainConfig, list[str]]:
    """``config`` with each optimisation option not given explicitly (``origins[key] != "explicit"``) set to the
    run's value; returns it and one line per explicit value that differs from the run's.

    Raises :class:`TspVideoError` for another optimizer than the run's.
    """
    trained = checkpoint.get("args") or {}
    run_optimizer = trained.get("optimizer") or "sgd"
    if origins.get("optimizer") == "explicit" and config.optimizer != run_optimizer:
        raise TspVideoError(f"{path}: the run trained with --optimizer {run_optimizer}, now {config.optimizer}: its "
                            f"state does not carry over; resume with --optimizer {run_optimizer}, or start a new run "
                            "(another --out, or --overwrite)")
    kept, changed = {}, []
    for key in OPTIMISATION_KEYS:
        if key not in trained:  # a checkpoint from before the option existed
            continue
        if origins.get(key) != "explicit":
            kept[key] = trained[key]
        elif trained[key] != getattr(config, key):
            changed.append(f"{key} {_show(trained[key])} -> {_show(getattr(config, key))}")
    notes = [f"resume with new optimisation values, applied from where the run stands: {', '.join(changed)}"] \
        if changed else []
    return dataclasses.replace(config, **kept), notes


def _show(value) -> str:
    if isinstance(value, list):
        return ",".join(_show(v) for v in value) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


# What a parameter group takes from the run's options (the rest of its state comes from the checkpoint).
GROUP_SETTINGS = ("initial_lr", "weight_decay", "momentum")


def group_settings(optimizer: torch.optim.Optimizer) -> list[dict]:
    """Each parameter group's base rate (``initial_lr``, set by the scheduler), weight decay and momentum: those of
    a freshly built optimizer are the run's options; take them before a checkpoint's state replaces them."""
    return [{key: group[key] for key in GROUP_SETTINGS if key in group} for group in optimizer.param_groups]


def apply_optimisation(optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LambdaLR,
                       settings: list[dict]) -> float:
    """Give a resumed optimizer the run's options (``settings``, from :func:`group_settings`) at the step reached.

    Each parameter group's rate becomes its base rate times the schedule's factor at the scheduler's step (what
    ``LambdaLR`` sets), its weight decay and momentum the given ones; the scheduler's base rates follow. With
    the values the state was saved with, nothing changes. Returns the factor.
    """
    if len(settings) != len(optimizer.param_groups):
        raise ValueError("one settings entry per parameter group")
    for group, values in zip(optimizer.param_groups, settings, strict=True):
        group.update(values)
    scheduler.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
    factors = [schedule(scheduler.last_epoch) for schedule in scheduler.lr_lambdas]
    for group, base, factor in zip(optimizer.param_groups, scheduler.base_lrs, factors, strict=True):
        group["lr"] = base * factor
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
    return factors[0]
