"""One epoch of training and one pass of evaluation, with the loss, schedule and accuracy they use.

Loss, equation (1) of the paper as the original computes it:
``alpha_region * mean CE(region) + alpha_action * mean CE(action) over the foreground clips``.
Background clips carry action label -1, which the action term ignores.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from tspvideo.core.choices import HEAD_CHOICES
from tspvideo.core.distributed import all_reduce_sum
from tspvideo.core.errors import TspVideoError
from tspvideo.core.precision import autocast
from tspvideo.datasets.batch_transforms import is_raw_batch, preprocess_batch
from tspvideo.datasets.transforms import Preprocessing
from tspvideo.train.input_check import InputCheck, warn_if_input_bound


def tsp_loss(outputs: dict[str, torch.Tensor], action: torch.Tensor, region: torch.Tensor,
             alpha_action: float = 1.0, alpha_region: float = 1.0,
             action_norm: str = "foreground") -> tuple[torch.Tensor, dict[str, float]]:
    """Equation (1) over the batch; returns the loss and its parts (as floats).

    ``action`` holds class ids with -1 for background clips, which add nothing to the action term.
    With ``action_norm="foreground"`` (the original's ``CrossEntropyLoss(ignore_index=-1)``) the action
    term is the mean over the foreground clips; with ``"clips"`` it is divided by the batch size (the
    per-clip loss of eq. (1), averaged). A batch without foreground clips has an action term of 0.
    """
    total = outputs["features"].new_zeros((), dtype=torch.float32)
    parts = {}
    if "region" in outputs:
        region_loss = F.cross_entropy(outputs["region"].float(), region)
        total = total + alpha_region * region_loss
        parts["region"] = float(region_loss.detach())
    if "action" in outputs:
        per_clip = F.cross_entropy(outputs["action"].float(), action, ignore_index=-1, reduction="none")
        # max(.., 1): no foreground clip gives 0, where the original's mean over no clip is NaN
        denominator = len(action) if action_norm == "clips" else int((action >= 0).sum())
        action_loss = per_clip.sum() / max(denominator, 1)
        total = total + alpha_action * action_loss
        parts["action"] = float(action_loss.detach())
    return total, parts


class WarmupMultiStep:
    """Learning-rate factor at iteration ``it``: linear warm-up, then x``gamma`` at each milestone epoch.

    A callable object (not a closure) so that ``LambdaLR.state_dict()`` stores it.
    """

    def __init__(self, iters_per_epoch: int, warmup_epochs: float, milestones: Sequence[float], gamma: float,
                 warmup_start: float = 1e-5) -> None:
        self.warmup_iters = int(round(warmup_epochs * iters_per_epoch))
        self.milestones = sorted(int(round(m * iters_per_epoch)) for m in milestones)
        self.gamma = gamma
        self.warmup_start = warmup_start

    def __call__(self, it: int) -> float:
        factor = self.gamma ** sum(it >= m for m in self.milestones)
        if it < self.warmup_iters:
            alpha = it / self.warmup_iters
            factor *= self.warmup_start * (1 - alpha) + alpha
        return factor


def accuracy_counts(outputs: dict[str, torch.Tensor], action: torch.Tensor, region: torch.Tensor) -> dict[str, int]:
    """Correct predictions and counted clips per head (action counted on foreground clips only)."""
    counts = {}
    if "action" in outputs:
        fg = action >= 0
        counts["action_correct"] = int((outputs["action"].argmax(1)[fg] == action[fg]).sum())
        counts["action_total"] = int(fg.sum())
    if "region" in outputs:
        counts["region_correct"] = int((outputs["region"].argmax(1) == region).sum())
        counts["region_total"] = len(region)
    return counts


def _accuracies(totals: dict[str, float], heads: Sequence[str]) -> dict[str, float]:
    result = {}
    for head in heads:
        n = totals.get(f"{head}_total", 0)
        result[f"acc_{head}"] = totals.get(f"{head}_correct", 0) / n if n else float("nan")
    values = [v for v in result.values() if not math.isnan(v)]
    result["acc_mean"] = sum(values) / len(values) if values else float("nan")
    return result


def _reduce(totals: dict[str, float], device: torch.device) -> dict[str, float]:
    keys = sorted(totals)
    return dict(zip(keys, all_reduce_sum([totals[k] for k in keys], device), strict=True))


def _to_device(batch: dict, device: torch.device, channels_last: bool, prep: Preprocessing | None = None) -> tuple:
    if is_raw_batch(batch):  # uint8 clips from workers that left the preprocessing to the device
        if prep is None:
            raise TspVideoError("a batch of raw clips needs the dataset's preprocessing to finish it")
        clips = preprocess_batch(batch["clip"], batch["clip_positions"], batch["crop"], prep, device, channels_last)
    else:
        clips = batch["clip"].to(device, non_blocking=True)
        if channels_last:
            clips = clips.contiguous(memory_format=torch.channels_last_3d)
    gvf = batch["gvf"].to(device, non_blocking=True) if "gvf" in batch else None
    return clips, gvf, batch["action"].to(device), batch["region"].to(device)


# ----------------------------------------------------------------------------------------------------
# One epoch of training, one pass of evaluation
# ----------------------------------------------------------------------------------------------------


def train_one_epoch(model: torch.nn.Module, loader: DataLoader | Sequence[dict], optimizer: torch.optim.Optimizer,
                    scheduler, scaler, device: torch.device, *, epoch: int, epochs: int, batch_size: int,
                    alpha_action: float = 1.0, alpha_region: float = 1.0, action_norm: str = "foreground",
                    amp: str | None = None, channels_last: bool = False, world_size: int = 1,
                    show_progress: bool = True, input_check: InputCheck | None = None) -> dict[str, float]:
    """One epoch; returns loss, accuracies, clips, clips/s and replaced clips, summed over processes.

    ``input_check`` times the loader wait and the step of each batch and logs one line if the input starves
    the device (:mod:`tspvideo.train.input_check`).
    """
    model.train()
    totals: dict[str, float] = {"loss": 0.0, "loss_action": 0.0, "loss_region": 0.0, "steps": 0, "clips": 0,
                                "replaced": 0}
    global_batch = batch_size * world_size
    bar = tqdm(total=len(loader) * global_batch, unit="clip", unit_scale=True, desc=f"epoch {epoch + 1}/{epochs}",
               disable=not show_progress, dynamic_ncols=True, leave=False)
    started = time.perf_counter()
    prep = getattr(getattr(loader, "dataset", None), "prep", None)
    if input_check is not None:
        input_check.start()
    for batch in loader:
        if input_check is not None:
            input_check.batch_ready()
        clips, gvf, action, region = _to_device(batch, device, channels_last, prep)
        with autocast(device, amp):
            outputs = model(clips, gvf)
        loss, parts = tsp_loss(outputs, action, region, alpha_action, alpha_region, action_norm)
        if not torch.isfinite(loss):
            hint = "lower the learning rates"
            if amp == "bf16" and device.type == "cpu":
                hint = "train in float32 on CPU (bf16 autocast gave non-finite conv3d gradients on CPU in our tests)"
            elif amp == "fp16":
                hint += " or use --amp bf16"
            raise TspVideoError(f"epoch {epoch + 1}: the loss is {float(loss.detach())}; {hint}")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()

        totals["loss"] += float(loss.detach())
        totals["loss_action"] += parts.get("action", 0.0)
        totals["loss_region"] += parts.get("region", 0.0)
        totals["steps"] += 1
        totals["clips"] += len(clips)
        totals["replaced"] += int(batch["replaced"].sum())
        for key, value in accuracy_counts({k: v.detach() for k, v in outputs.items()}, action, region).items():
            totals[key] = totals.get(key, 0) + value
        rate = totals["clips"] * world_size / (time.perf_counter() - started)
        bar.update(global_batch)
        bar.set_postfix(step=f"{int(totals['steps'])}/{len(loader)}", loss=f"{float(loss.detach()):.3f}",
                        lr=f"{optimizer.param_groups[-1]['lr']:.2e}", clips_s=f"{rate:.1f}")
        if input_check is not None:  # after the loss was read back: the step's wall time is the device's
            warn_if_input_bound(input_check.step_done(), device.type, loader)
    if input_check is not None:
        warn_if_input_bound(input_check.finish(), device.type, loader)
    bar.close()
    seconds = time.perf_counter() - started
    heads = [h for h in HEAD_CHOICES if f"{h}_total" in totals]
    # Every process runs the same number of steps (the sampler pads), so per-step means average evenly.
    totals = _reduce(totals, device)
    steps = max(totals["steps"], 1)
    stats = {"loss": totals["loss"] / steps, "loss_action": totals["loss_action"] / steps,
             "loss_region": totals["loss_region"] / steps, "clips": int(totals["clips"]),
             "clips_per_s": totals["clips"] / seconds if seconds > 0 else 0.0, "replaced": int(totals["replaced"])}
    stats.update(_accuracies(totals, heads))
    return stats


@torch.inference_mode()
def evaluate(model: torch.nn.Module, loader: DataLoader | Sequence[dict], device: torch.device, amp: str | None = None,
             channels_last: bool = False, show_progress: bool = False, desc: str = "valid") -> dict[str, float]:
    """Clip accuracy of each head (action on foreground clips only) and their mean, over all processes."""
    model.eval()
    totals: dict[str, float] = {"clips": 0, "replaced": 0}
    heads: list[str] = []
    prep = getattr(getattr(loader, "dataset", None), "prep", None)
    for batch in tqdm(loader, desc=desc, unit="batch", disable=not show_progress, leave=False, dynamic_ncols=True):
        clips, gvf, action, region = _to_device(batch, device, channels_last, prep)
        with autocast(device, amp):
            outputs = model(clips, gvf)
        heads = [h for h in HEAD_CHOICES if h in outputs]
        for key, value in accuracy_counts(outputs, action, region).items():
            totals[key] = totals.get(key, 0) + value
        totals["clips"] += len(clips)
        totals["replaced"] += int(batch["replaced"].sum())
    if not heads:  # this process had no batch: still take part in the reduction with zeros
        heads = list(getattr(model, "head_names", HEAD_CHOICES))
    for head in HEAD_CHOICES:
        if head in heads:
            totals.setdefault(f"{head}_correct", 0)
            totals.setdefault(f"{head}_total", 0)
    totals = _reduce(totals, device)
    stats = {"clips": int(totals["clips"]), "replaced": int(totals["replaced"])}
    stats.update(_accuracies(totals, heads))
    return stats

