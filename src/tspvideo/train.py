"""TSP / TAC pretraining: ``train_one_epoch``, ``evaluate`` and ``main``, one process or under torchrun.

Variants come from flags on one code path (see ``docs/training.md``), or all at once from ``--recipe``
(the original's training scripts, :mod:`tspvideo.recipes`):

- TSP (max or avg GVF): ``--heads action region --gvf GVF.h5 [--gvf-pool avg]``
- TSP without GVF:      ``--heads action region --no-gvf``
- TAC:                  ``--heads action`` (every clip; background clips ignored by the loss)
- region head only:     ``--heads region`` (supplementary Table 9; one 512 -> 2 head, no GVF)

Loss, equation (1) of the paper as the original computes it:
``alpha_region * mean CE(region) + alpha_action * mean CE(action) over the foreground clips``.
Background clips carry action label -1, which the action term ignores.

Defaults are the original code's: SGD momentum 0.9, weight decay 0.005, lr 1e-4 for the backbone and 2e-3
for the heads, both multiplied by the number of processes; per-iteration linear warm-up over 2 epochs, x0.01
at epochs 4 and 6; 8 epochs of 32 clips per process; heads initialised N(0, 0.01). Each epoch ends with
validation and an atomic checkpoint (``checkpoint.pth``: everything to resume; ``best.pth``: the best
epoch's model so far, in the released layout that ``tspvideo extract --checkpoint`` reads).
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import math
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from tspvideo import __version__
from tspvideo.commands._model_args import add_preprocess_on_arg, resolve_preprocess_on
from tspvideo.data.batch_transforms import collate_raw_clips, is_raw_batch, preprocess_batch
from tspvideo.data.datasets import (
    BalancedSampler,
    ClipSpec,
    SegmentClipDataset,
    ShardSampler,
    derive_seed,
    seed_worker,
)
from tspvideo.data.segments import read_label_map, read_segment_table
from tspvideo.data.transforms import Preprocessing
from tspvideo.data.video import DEFAULT_SAMPLING, SAMPLING_RULES
from tspvideo.distributed import DistInfo, all_reduce_sum, barrier, cleanup, init_distributed
from tspvideo.errors import TspVideoError
from tspvideo.fileio import atomic_path
from tspvideo.gvf import gvf_attributes
from tspvideo.models.backbones import (
    available_backbones,
    backbone_spec,
    check_input_size,
    enable_gradient_checkpointing,
    require_gradient_checkpointing,
)
from tspvideo.models.tsp import HEAD_CHOICES, TSPModel, create_model
from tspvideo.models.weights import InputRecipe, default_recipe, load_backbone_weights, read_checkpoint
from tspvideo.precision import autocast
from tspvideo.recipes import GVF_ENCODER, apply_recipe, recipe_names

log = logging.getLogger("tspvideo.train")

# Kinetics-pretrained initialisation the paper starts from, per backbone (`--weights auto`).
BASE_WEIGHTS = {
    "r2plus1d_34": "r2plus1d_34-ig65m_kinetics",
    "r2plus1d_18": "r2plus1d_18-kinetics400",
    "r3d_18": "r3d_18-kinetics400",
    **{name: f"{name}-kinetics400" for name in ("s3d", "mvit_v2_s", "swin3d_t", "swin3d_s", "swin3d_b")},
}
CHECKPOINT_NAME = "checkpoint.pth"
BEST_NAME = "best.pth"
METRICS_NAME = "metrics.csv"
METRIC_COLUMNS = [
    "epoch", "lr_backbone", "lr_heads", "train_loss", "train_loss_action", "train_loss_region",
    "train_acc_action", "train_acc_region", "train_clips", "train_clips_per_s", "train_replaced",
    "valid_acc_action", "valid_acc_region", "valid_acc_mean", "valid_clips", "valid_replaced", "seconds",
]


# ----------------------------------------------------------------------------------------------------
# Arguments
# ----------------------------------------------------------------------------------------------------


def add_data_arguments(parser: argparse.ArgumentParser, train: bool = True) -> None:
    """Segment tables, videos, clip grid and input size (shared by ``train`` and ``evaluate``)."""
    data = parser.add_argument_group("data")
    if train:
        data.add_argument("--train-csv", required=True, help="training segment table (CSV)")
    data.add_argument("--valid-csv", required=not train, default=None,
                      help="validation segment table (CSV)" + ("; none: no validation, best = last epoch"
                                                              if train else ""))
    data.add_argument("--video-dir", required=True, help="folder the tables' filename column is relative to")
    data.add_argument("--label-map", default=None,
                      help="action classes, JSON list (or activitynet / thumos14); needed with an action head")
    data.add_argument("--gvf", default=None, help="HDF5 of global video features (from `tspvideo gvf`)")
    # No defaults here: `train` fills unset options from --recipe (tspvideo.recipes), then the grid and frame
    # sizes from the backbone's input recipe (`tspvideo models`); `evaluate` from the checkpoint.
    fallback = "default without --recipe: the backbone's recipe, for r2plus1d_*" if train else \
        "default: the checkpoint's, else"
    data.add_argument("--clip-len", type=int, default=None, help=f"frames per clip (L) ({fallback} 16)")
    data.add_argument("--fps", type=float, default=None, help=f"frame rate clips are sampled at ({fallback} 15)")
    data.add_argument("--sampling", choices=SAMPLING_RULES, default=None if not train else DEFAULT_SAMPLING,
                      help="which source frames: ffmpeg-fps (the original's: re-encode to 30 fps, every second frame) "
                           "or timestamp (last frame at or before j/fps)"
                           + ("" if train else "; default: the checkpoint's"))
    data.add_argument("--clips-per-segment", type=int, default=None,
                      help=f"clips per segment and epoch ({'default without --recipe:' if train else fallback} 5)")
    data.add_argument("--resize", type=int, nargs="+", default=None, metavar="SIZE",
                      help=f"frames are resized to H W (or the short side to S) before cropping ({fallback} 128 171)")
    data.add_argument("--crop", type=int, default=None,
                      help=f"square crop size (random + flip in training, centre in validation) ({fallback} 112)")
    data.add_argument("--workers", type=int, default=4, help="data loading processes per training process")
    data.add_argument("--decode-threads", type=int, default=1, help="FFmpeg threads per clip")
    add_preprocess_on_arg(data)  # the crop and flip are drawn in the workers either way, from the same seeds


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Every option of ``tspvideo train``, defaults visible in ``--help``."""
    parser.add_argument("--recipe", choices=recipe_names(), default=None,
                        help="fill every option below as the original's training script for this dataset and "
                             "variant did (docs/training.md); explicit flags win; printed at the start")
    parser.add_argument("--downscale-factor", type=int, default=None,
                        help="divide the batch size and both learning rates by N, as the original's scripts' "
                             "DOWNSCALE_FACTOR for GPUs with less memory (default: 1)")
    add_data_arguments(parser, train=True)
    parser.add_argument("--no-balance", action="store_true",
                        help="use every clip instead of as many background as foreground clips per epoch "
                             "(the original code does not balance)")
    # Defaults are None so that a recipe can fill them; each help says the value without --recipe.
    model = parser.add_argument_group("model")
    model.add_argument("--backbone", default=None, choices=available_backbones(),
                       help="encoder architecture (default without --recipe: r2plus1d_34)")
    model.add_argument("--weights", default=None,
                       help="initial backbone weights: auto (the Kinetics weights the paper starts from), a "
                            "registered name, URL or local file, or none (random initialisation) (default "
                            "without --recipe: auto)")
    model.add_argument("--heads", nargs="+", default=None, choices=HEAD_CHOICES,
                       help="action region: TSP; action: TAC; region: region head only (default without "
                            "--recipe: action region)")
    model.add_argument("--no-gvf", action="store_true", default=None,
                       help="the region head sees the clip feature only")
    model.add_argument("--gvf-pool", choices=["max", "avg"], default=None,
                       help="how --gvf was pooled; checked against the file's 'pool' attribute (default: the "
                            "file's, else max)")
    model.add_argument("--region-only-gvf", action="store_true", default=None,
                       help="with --heads region: feed the GVF to the region head (1024 -> 2); the original's "
                            "one-head model ignores it (512 -> 2)")
    model.add_argument("--tac-clips", choices=["all", "foreground"], default=None,
                       help="TAC (--heads action): all: every clip of the table, background clips with action "
                            "label -1 ignored by the loss but seen by BatchNorm (the original); foreground: "
                            "foreground clips only (default without --recipe: all)")
    model.add_argument("--alpha-action", type=float, default=None,
                       help="weight of the action loss (default without --recipe: 1)")
    model.add_argument("--alpha-region", type=float, default=None,
                       help="weight of the region loss (default without --recipe: 1)")
    model.add_argument("--action-loss-norm", choices=["clips", "foreground"], default=None,
                       help="foreground: the action term is the mean over the batch's foreground clips "
                            "(CrossEntropyLoss(ignore_index=-1), the original); clips: divided by all clips of "
                            "the batch, as equation (1) read literally (default without --recipe: foreground)")
    model.add_argument("--freeze-stem", action=argparse.BooleanOptionalAction, default=None,
                       help="keep the backbone's stem fixed, as the original (its lr is 0) (default without "
                            "--recipe: on)")
    model.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm across processes (GPU only)")
    model.add_argument("--grad-checkpointing", action="store_true",
                       help="recompute the backbone blocks' activations in the backward pass: less memory, about "
                            "a third slower (transformer backbones: mvit_v2_s, swin3d_*)")
    optim = parser.add_argument_group("optimisation (learning rates are per process: x number of processes)")
    optim.add_argument("--epochs", type=int, default=None, help="training epochs (default without --recipe: 8)")
    optim.add_argument("--batch-size", type=int, default=None,
                       help="clips per process and step (default without --recipe: 32)")
    optim.add_argument("--backbone-lr", type=float, default=None,
                       help="learning rate of the backbone (default without --recipe: 1e-4)")
    optim.add_argument("--fc-lr", type=float, default=None,
                       help="learning rate of the heads (default without --recipe: 2e-3)")
    optim.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                       help="sgd (the original's; default) or adamw (Adam with decoupled weight decay: trains small "
                            "encoders from random weights in far fewer steps; --momentum is then unused)")
    optim.add_argument("--momentum", type=float, default=None, help="SGD momentum (default without --recipe: 0.9)")
    optim.add_argument("--weight-decay", type=float, default=None,
                       help="SGD weight decay (default without --recipe: 0.005)")
    optim.add_argument("--lr-warmup-epochs", type=float, default=None,
                       help="linear warm-up length (default without --recipe: 2)")
    optim.add_argument("--lr-milestones", type=float, nargs="*", default=None,
                       help="epochs at which the learning rate is multiplied by --lr-gamma (default without "
                            "--recipe: 4 6)")
    optim.add_argument("--lr-gamma", type=float, default=None,
                       help="learning-rate factor at each milestone (default without --recipe: 0.01)")
    run = parser.add_argument_group("run")
    run.add_argument("--out", required=True, help="run folder: checkpoints, metrics.csv, train.log")
    run.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CHECKPOINT",
                     help="continue a run (no value: OUT/checkpoint.pth)")
    run.add_argument("--seed", type=int, default=0, help="seeds initialisation, clip sampling and shuffling")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda (cuda:LOCAL_RANK under torchrun)")
    run.add_argument("--amp", choices=["bf16", "fp16"], default=None, help="autocast dtype (default float32)")
    run.add_argument("--channels-last", action="store_true", help="channels_last_3d memory format")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")


# ----------------------------------------------------------------------------------------------------
# Loss, schedule, metrics
# ----------------------------------------------------------------------------------------------------


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


def train_one_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler, scaler,
                    loader: DataLoader, device: torch.device, epoch: int, args: argparse.Namespace,
                    world_size: int = 1, show_progress: bool = True) -> dict[str, float]:
    """One epoch; returns loss, accuracies, clips, clips/s and replaced clips, summed over processes."""
    model.train()
    totals: dict[str, float] = {"loss": 0.0, "loss_action": 0.0, "loss_region": 0.0, "steps": 0, "clips": 0,
                                "replaced": 0}
    global_batch = args.batch_size * world_size
    bar = tqdm(total=len(loader) * global_batch, unit="clip", unit_scale=True, desc=f"epoch {epoch + 1}/{args.epochs}",
               disable=not show_progress, dynamic_ncols=True, leave=False)
    started = time.perf_counter()
    prep = getattr(getattr(loader, "dataset", None), "prep", None)
    for batch in loader:
        clips, gvf, action, region = _to_device(batch, device, args.channels_last, prep)
        with autocast(device, args.amp):
            outputs = model(clips, gvf)
        loss, parts = tsp_loss(outputs, action, region, args.alpha_action, args.alpha_region, args.action_loss_norm)
        if not torch.isfinite(loss):
            hint = "lower the learning rates"
            if args.amp == "bf16" and device.type == "cpu":
                hint = "train in float32 on CPU (bf16 autocast gave non-finite conv3d gradients on CPU in our tests)"
            elif args.amp == "fp16":
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
def evaluate(model: torch.nn.Module, loader: DataLoader, device: torch.device, amp: str | None = None,
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


# ----------------------------------------------------------------------------------------------------
# Setup helpers
# ----------------------------------------------------------------------------------------------------


def seed_everything(seed: int, rank: int, epoch: int) -> None:
    """Global RNGs from (seed, rank, epoch): differ per process and epoch, and resume exactly."""
    value = derive_seed(seed, rank, epoch, 0x7A11)
    random.seed(value)
    np.random.seed(value % (1 << 32))
    torch.manual_seed(value)


def apply_input_recipe(args: argparse.Namespace, recipe: InputRecipe) -> InputRecipe:
    """Fill the clip grid and frame options left unset from ``recipe``; returns the recipe actually used."""
    for key in ("clip_len", "fps", "resize", "crop"):
        if getattr(args, key, None) is None:
            value = getattr(recipe, key)
            setattr(args, key, value[0] if key == "crop" else list(value) if key == "resize" else value)
    if len(args.resize) not in (1, 2):
        raise TspVideoError(f"--resize takes H W or one short side S, got {len(args.resize)} values")
    return InputRecipe(recipe.backbone, args.clip_len, args.fps, tuple(args.resize), (args.crop, args.crop),
                       recipe.mean, recipe.std)


def clip_spec_from(args: argparse.Namespace, recipe: InputRecipe | None = None) -> tuple[ClipSpec, Preprocessing]:
    """Clip grid and preprocessing from the arguments (normalisation from ``recipe``, default the paper's)."""
    spec = ClipSpec(clip_len=args.clip_len, fps=args.fps, clips_per_segment=args.clips_per_segment,
                    sampling=args.sampling)
    resize, crop = tuple(args.resize), (args.crop, args.crop)
    if crop[0] > min(resize):
        raise TspVideoError(f"--crop {args.crop} is larger than the resized frames {resize}")
    if recipe is None:
        return spec, Preprocessing(resize=resize, crop=crop)
    return spec, Preprocessing(resize=resize, crop=crop, mean=recipe.mean, std=recipe.std)


def make_loader(dataset: SegmentClipDataset, sampler, batch_size: int, workers: int, device: torch.device,
                train: bool) -> DataLoader:
    """DataLoader with per-worker seeding; persistent workers keep their HDF5 handle open across epochs.

    A dataset that leaves the preprocessing to the device gets batches of raw clips grouped by frame size.
    """
    raw = getattr(dataset, "preprocess_on", "workers") == "device"
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=train,
                      collate_fn=collate_raw_clips if raw else None,
                      pin_memory=device.type == "cuda", worker_init_fn=seed_worker,
                      persistent_workers=workers > 0, prefetch_factor=2 if workers > 0 else None)


OPTIMIZERS = ("sgd", "adamw")


def build_optimizer(name: str, groups: list[dict], lr: float, momentum: float,
                    weight_decay: float) -> torch.optim.Optimizer:
    """The original's SGD with momentum, or AdamW (an option: not the paper's) over the parameter groups."""
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)


def parameter_groups(model: TSPModel, backbone_lr: float, fc_lr: float, freeze_stem: bool) -> list[dict]:
    """Backbone and head parameter groups; the stem is left out (and frozen) when ``freeze_stem``.

    The stem is each architecture's first layer: VideoResNet's ``stem``, S3D's first separable
    convolution, MViT's patch projection (and class token), Swin's patch embedding.
    """
    stem = tuple(f"features.{prefix}" for prefix in backbone_spec(model.config.backbone).stem_prefixes)
    backbone, heads = [], []
    for name, param in model.named_parameters():
        if freeze_stem and name.startswith(stem):
            param.requires_grad_(False)
            continue
        (backbone if name.startswith("features.") else heads).append(param)
    return [{"params": backbone, "lr": backbone_lr, "name": "backbone"},
            {"params": heads, "lr": fc_lr, "name": "heads"}]


def _setup_logging(out_dir: Path | None, is_main: bool) -> list[logging.Handler]:
    logger = logging.getLogger("tspvideo")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if out_dir is not None and is_main:
        handlers.append(logging.FileHandler(out_dir / "train.log", encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO if is_main else logging.WARNING)
    logger.propagate = False
    return handlers


def _teardown_logging(handlers: list[logging.Handler]) -> None:
    logger = logging.getLogger("tspvideo")
    for handler in handlers:
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = True


def _plain_args(args: argparse.Namespace) -> dict:
    """The arguments as plain values (safe to load with ``weights_only=True``)."""
    plain = {}
    for key, value in vars(args).items():
        if callable(value):
            continue
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        plain[key] = value
    return plain


def _rng_states() -> dict:
    state = np.random.get_state()
    return {"python": random.getstate(), "torch": torch.get_rng_state(),
            "numpy": {"keys": torch.from_numpy(state[1].astype(np.int64)), "pos": int(state[2]),
                      "has_gauss": int(state[3]), "cached_gaussian": float(state[4])},
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _restore_rng_states(states: dict) -> None:
    random.setstate(tuple(item if not isinstance(item, list) else tuple(item) for item in states["python"]))
    torch.set_rng_state(states["torch"])
    numpy = states["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["pos"], numpy["has_gauss"],
                         numpy["cached_gaussian"]))
    if states.get("cuda") and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(path: Path, checkpoint: dict) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename: never a half-written checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def _write_metrics(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")


def _read_metrics(path: Path, epochs_done: int) -> list[dict]:
    """Rows of the epochs a resumed run has done (the CSV's epoch column counts from 1)."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [row for row in csv.DictReader(f) if int(row["epoch"]) <= epochs_done]


def _tensorboard(out_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional; metrics.csv is always written
        return None
    return SummaryWriter(str(out_dir / "tensorboard"))


def _resolve_variant(args: argparse.Namespace) -> tuple[tuple[str, ...], str | None, bool]:
    """Heads, GVF pooling (None: no GVF) and whether only foreground clips are used."""
    heads = tuple(h for h in HEAD_CHOICES if h in args.heads)
    region_only = heads == ("region",)
    if args.region_only_gvf and not region_only:
        raise TspVideoError("--region-only-gvf is for --heads region alone; the two-head model uses --gvf "
                            "unless --no-gvf")
    # The original's one-head model never concatenates the GVF: region-only ignores it unless asked.
    uses_gvf = "region" in heads and not args.no_gvf and (not region_only or args.region_only_gvf)
    if uses_gvf and not args.gvf:
        make = f"`tspvideo gvf --videos VIDEOS --model {GVF_ENCODER} --out gvf.h5`"
        raise TspVideoError(f"the region head needs --gvf GVF.h5 (make it with {make}), or --no-gvf for TSP "
                            "without GVF")
    if args.gvf and not uses_gvf:
        if region_only:
            log.warning("--heads region ignores --gvf %s, as the original's one-head model (region head 512 -> 2);"
                        " add --region-only-gvf to feed it the GVF", args.gvf)
        else:
            raise TspVideoError("--gvf is only used by the region head without --no-gvf; drop it")
    if "action" in heads and not args.label_map:
        raise TspVideoError("an action head needs --label-map (JSON list of class names)")
    gvf_pool = _gvf_pool(args) if uses_gvf else None
    return heads, gvf_pool, heads == ("action",) and args.tac_clips == "foreground"


def _gvf_pool(args: argparse.Namespace) -> str:
    """The GVF pooling, checked against the ``pool`` attribute of the GVF file (files without it still load)."""
    stored = gvf_attributes(args.gvf)
    pool = stored.get("pool")
    if args.gvf_pool is not None and pool is not None and args.gvf_pool != pool:
        raise TspVideoError(f"{args.gvf}: its GVFs are {pool}-pooled (the file's 'pool' attribute) but the run "
                            f"asks for --gvf-pool {args.gvf_pool}; give the {args.gvf_pool}-pooled file or "
                            f"--gvf-pool {pool}")
    encoder = stored.get("encoder")
    wanted = getattr(args, "recipe_gvf_encoder", None)
    if encoder is not None and wanted is not None and encoder != wanted:
        log.warning("%s: GVFs come from %s, the recipe's from %s", args.gvf, encoder, wanted)
    log.info("GVF %s: %s-pooled, encoder %s", args.gvf, args.gvf_pool or pool or "max",
             encoder or "not recorded in the file")
    return args.gvf_pool or pool or "max"


def build_model(args: argparse.Namespace, heads: tuple[str, ...], num_classes: int, gvf_pool: str | None) -> TSPModel:
    """The model to train, its backbone initialised from ``--weights`` (or at random)."""
    torch.manual_seed(args.seed)  # the same random heads (and backbone, without weights) on every process
    model = create_model(args.backbone, num_classes=num_classes, heads=heads, gvf=gvf_pool)
    weights = BASE_WEIGHTS.get(args.backbone) if args.weights == "auto" else args.weights
    if weights is None or str(weights).lower() == "none":
        log.warning("backbone %s starts from RANDOM weights (--weights none): fine for trying the pipeline, "
                    "not for results; the paper starts from Kinetics weights", args.backbone)
    else:
        info = load_backbone_weights(model, weights)
        log.info("backbone initialised from %s", info.name if info else weights)
    if args.grad_checkpointing:
        blocks = enable_gradient_checkpointing(model.features, args.backbone)
        log.info("gradient checkpointing over %d blocks of %s", blocks, args.backbone)
    return model


# ----------------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------------


def main(args: argparse.Namespace) -> dict:
    """Train as configured by ``args``; returns the best epoch's validation metrics and the run's files."""
    resolved = apply_recipe(args)
    info = init_distributed(args.device)
    out_dir = Path(args.out)
    if info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    barrier()
    handlers = _setup_logging(out_dir, info.is_main)
    try:
        log.info("hyper-parameters: %s", resolved.describe(args))
        return _main(args, info, out_dir)
    finally:
        _teardown_logging(handlers)
        cleanup(info)


def _main(args: argparse.Namespace, info: DistInfo, out_dir: Path) -> dict:
    device = info.device
    heads, gvf_pool, foreground_only = _resolve_variant(args)
    if args.epochs < 1 or args.batch_size < 1:
        raise TspVideoError("--epochs and --batch-size must be at least 1")
    label_map = read_label_map(args.label_map) if args.label_map else None
    if "action" not in heads:
        label_map = None
    if args.grad_checkpointing:
        require_gradient_checkpointing(args.backbone)  # fails now, not after the datasets are read
    recipe = apply_input_recipe(args, default_recipe(args.backbone))
    spec, prep = clip_spec_from(args, recipe)
    check_input_size(args.backbone, spec.clip_len, prep.crop)
    log.info("input: %d frames at %g fps, resize %s, crop %s, mean %s, std %s", spec.clip_len, spec.fps,
             "x".join(map(str, prep.resize)), "x".join(map(str, prep.crop)), prep.mean, prep.std)
    log.info("tspvideo %s: %s, heads %s, GVF %s, %d process(es) on %s", __version__, args.backbone,
             "+".join(heads), gvf_pool or "none", info.world_size, device)

    preprocess_on = resolve_preprocess_on(args.preprocess_on, device)
    log.info("clips preprocessed %s", "on the device from raw uint8 clips" if preprocess_on == "device"
             else "in the loader workers")

    seed_everything(args.seed, info.rank, 0)
    common = {"label_map": label_map, "spec": spec, "prep": prep, "gvf_path": args.gvf if gvf_pool else None,
              "foreground_only": foreground_only, "seed": args.seed, "decode_threads": args.decode_threads,
              "preprocess_on": preprocess_on}
    train_set = SegmentClipDataset(read_segment_table(args.train_csv), args.video_dir, train=True,
                                   source=args.train_csv, **common)
    valid_set = None
    if args.valid_csv:
        valid_set = SegmentClipDataset(read_segment_table(args.valid_csv), args.video_dir, train=False,
                                       source=args.valid_csv, **common)
    for name, dataset in (("train", train_set), ("valid", valid_set)):
        if dataset is not None:
            counts = dataset.num_clips()
            log.info("%s: %d segments -> %d foreground + %d background clips; dropped %d segment(s) shorter than "
                     "one clip%s", name, len(dataset.segments), counts["foreground"], counts["background"],
                     dataset.dropped["too_short"],
                     f" and {dataset.dropped['background']} background segment(s) (TAC)" if foreground_only else "")
    feature_dim = backbone_spec(args.backbone).feature_dim
    if gvf_pool and train_set.gvf_dim != feature_dim:
        raise TspVideoError(f"{args.gvf}: GVFs have {train_set.gvf_dim} values, the {args.backbone} feature has "
                            f"{feature_dim}: compute the GVF with the initial {args.backbone} encoder "
                            f"(`tspvideo gvf --videos ... --model {BASE_WEIGHTS.get(args.backbone, 'WEIGHTS')}`)")

    # TAC uses every clip of the table, as the original (which never balances); TSP balances by default.
    balance = not args.no_balance and "region" in heads
    sampler = BalancedSampler(train_set, info.world_size, info.rank, seed=args.seed, balance=balance)
    train_loader = make_loader(train_set, sampler, args.batch_size, args.workers, device, train=True)
    if len(train_loader) == 0:
        raise TspVideoError(f"an epoch has {sampler.epoch_size()} clips, fewer than one batch of "
                            f"{args.batch_size} x {info.world_size} process(es); lower --batch-size")
    valid_loader = None
    if valid_set is not None:
        valid_loader = make_loader(valid_set, ShardSampler(valid_set, info.world_size, info.rank), args.batch_size,
                                   args.workers, device, train=False)
    log.info("epoch: %d clips (%s), %d steps of %d clips x %d process(es)", sampler.epoch_size(),
             "balanced" if sampler.balance else "all", len(train_loader), args.batch_size,
             info.world_size)

    model = build_model(args, heads, len(label_map) if label_map else 0, gvf_pool)
    if args.sync_bn and info.distributed:
        if device.type != "cuda":
            log.warning("--sync-bn needs GPUs (PyTorch's SyncBatchNorm has no CPU kernel); ignored")
        else:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    lr_scale = info.world_size  # linear scaling rule, as the paper (2 GPUs)
    groups = parameter_groups(model, args.backbone_lr * lr_scale, args.fc_lr * lr_scale, args.freeze_stem)
    model.to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    bare_model = model
    if info.distributed:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = build_optimizer(args.optimizer, groups, args.fc_lr * lr_scale, args.momentum, args.weight_decay)
    schedule = WarmupMultiStep(len(train_loader), args.lr_warmup_epochs, args.lr_milestones, args.lr_gamma)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    scaler = torch.amp.GradScaler(device.type, enabled=args.amp == "fp16")

    start_epoch, best, rows = 0, {"epoch": -1, "acc_mean": -math.inf}, []
    if args.resume:
        path = out_dir / CHECKPOINT_NAME if args.resume == "auto" else Path(args.resume)
        checkpoint = read_checkpoint(path)
        missing = [k for k in ("model", "optimizer", "lr_scheduler", "epoch") if k not in checkpoint]
        if missing:
            raise TspVideoError(f"{path}: cannot resume from it: no {', '.join(missing)} (use --weights for a "
                                "model-only file)")
        current = bare_model.state_dict()
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
        bare_model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["lr_scheduler"])
        if checkpoint.get("scaler"):
            scaler.load_state_dict(checkpoint["scaler"])
        if checkpoint.get("rng"):
            _restore_rng_states(checkpoint["rng"])
        start_epoch = int(checkpoint["epoch"]) + 1
        best = checkpoint.get("best", best)
        rows = _read_metrics(out_dir / METRICS_NAME, start_epoch)
        log.info("resumed from %s: epoch %d of %d done", path, start_epoch, args.epochs)

    writer = _tensorboard(out_dir) if info.is_main else None
    show_progress = info.is_main and not args.no_progress
    config = bare_model.config.to_dict()
    for epoch in range(start_epoch, args.epochs):
        started = time.perf_counter()
        seed_everything(args.seed, info.rank, epoch)
        sampler.set_epoch(epoch)
        lrs = [group["lr"] for group in optimizer.param_groups]
        train_stats = train_one_epoch(model, optimizer, scheduler, scaler, train_loader, device, epoch, args,
                                      info.world_size, show_progress)
        valid_stats = {}
        if valid_loader is not None:
            valid_stats = evaluate(bare_model, valid_loader, device, args.amp, args.channels_last, show_progress)
        score = valid_stats.get("acc_mean", float(epoch))  # without validation the last epoch is the best
        if math.isnan(score):
            score = -math.inf
        is_best = score > best["acc_mean"]
        if is_best:
            best = {"epoch": epoch, "acc_mean": score, **{f"valid_{k}": v for k, v in valid_stats.items()}}
        row = {"epoch": epoch + 1, "lr_backbone": lrs[0], "lr_heads": lrs[1],
               **{f"train_{k}": v for k, v in train_stats.items()},
               **{f"valid_{k}": v for k, v in valid_stats.items()}, "seconds": time.perf_counter() - started}
        row["train_clips_per_s"] = train_stats["clips_per_s"]
        rows.append(row)
        log.info("epoch %d/%d: loss %.4f (action %.4f, region %.4f), train acc %s, valid acc %s; %.1f clips/s; "
                 "%d + %d undecodable clip(s) replaced", epoch + 1, args.epochs, train_stats["loss"],
                 train_stats["loss_action"], train_stats["loss_region"], _format_acc(train_stats),
                 _format_acc(valid_stats) if valid_stats else "-", train_stats["clips_per_s"],
                 train_stats["replaced"], valid_stats.get("replaced", 0))
        if info.is_main:
            checkpoint = {
                "model": bare_model.state_dict(), "model_config": config, "label_map": label_map,
                "preprocessing": "tsp", "recipe": recipe.to_dict(),
                "input": {"clip_len": spec.clip_len, "fps": spec.fps, "sampling": spec.sampling,
                                                   "clips_per_segment": spec.clips_per_segment,
                                                   "resize": list(prep.resize), "crop": list(prep.crop)},
                "epoch": epoch, "args": _plain_args(args), "metrics": {"train": train_stats, "valid": valid_stats},
                "preprocess_on": preprocess_on,
                "tspvideo_version": __version__,
            }
            if is_best:  # model-only file first, so a crash leaves the previous best or the new one, whole
                save_checkpoint(out_dir / BEST_NAME, checkpoint)
            checkpoint.update({"optimizer": optimizer.state_dict(), "lr_scheduler": scheduler.state_dict(),
                               "scaler": scaler.state_dict(), "rng": _rng_states(), "best": best})
            save_checkpoint(out_dir / CHECKPOINT_NAME, checkpoint)
            _write_metrics(out_dir / METRICS_NAME, rows)
            if writer is not None:
                for key, value in row.items():
                    if key != "epoch" and isinstance(value, (int, float)) and not math.isnan(value):
                        writer.add_scalar(key.replace("_", "/", 1), value, epoch + 1)
                writer.flush()
        barrier()
    if writer is not None:
        writer.close()
    if best["epoch"] >= 0:
        log.info("best epoch: %d (valid mean clip accuracy %s); model in %s", best["epoch"] + 1,
                 f"{best['acc_mean']:.4f}" if valid_loader is not None else "n/a", out_dir / BEST_NAME)
    return {"best": best, "metrics": rows, "out": str(out_dir),
            "files": [str(out_dir / n) for n in (CHECKPOINT_NAME, BEST_NAME, METRICS_NAME, "train.log")]}


def _format_acc(stats: dict) -> str:
    parts = [f"{head} {stats[f'acc_{head}']:.3f}" for head in HEAD_CHOICES if f"acc_{head}" in stats]
    if len(parts) > 1:
        parts.append(f"mean {stats['acc_mean']:.3f}")
    return ", ".join(parts) or "-"


# ----------------------------------------------------------------------------------------------------
# Evaluation of a checkpoint (tspvideo evaluate)
# ----------------------------------------------------------------------------------------------------


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``tspvideo evaluate``; the clip grid defaults to the one the checkpoint was trained with."""
    parser.add_argument("--checkpoint", required=True, help="a tspvideo run's best.pth / checkpoint.pth, a "
                                                            "released file, or a registered name")
    add_data_arguments(parser, train=False)
    parser.add_argument("--gvf-pool", choices=["max", "avg"], default=None,
                        help="GVF pooling of a released checkpoint (its file does not say)")
    parser.add_argument("--batch-size", type=int, default=32, help="clips per forward pass and process")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda")
    parser.add_argument("--amp", choices=["bf16", "fp16"], default=None, help="autocast dtype (default float32)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last_3d memory format")
    parser.add_argument("--seed", type=int, default=0, help="only picks replacements for undecodable clips")
    parser.add_argument("--json", default=None, help="also write the accuracies to this JSON file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def evaluate_checkpoint(args: argparse.Namespace) -> dict:
    """Clip accuracies of a checkpoint on a segment table (one process or under torchrun)."""
    from tspvideo.models.weights import load_model, resolve_weights

    info = init_distributed(args.device)
    handlers = _setup_logging(None, info.is_main)
    try:
        model, description = load_model(args.checkpoint, gvf=args.gvf_pool)
        path, _ = resolve_weights(args.checkpoint)
        trained = read_checkpoint(path).get("input") or {}
        chosen = {key: getattr(args, key) if getattr(args, key) is not None else trained.get(key)
                  for key in ("clip_len", "fps", "clips_per_segment", "resize", "crop", "sampling")}
        for key, value in chosen.items():
            setattr(args, key, value)
        if args.clips_per_segment is None:
            args.clips_per_segment = 5
        if args.sampling is None:
            args.sampling = DEFAULT_SAMPLING
        if isinstance(args.crop, list):
            args.crop = args.crop[0]
        # what neither the flags nor the checkpoint's input say: the weights' recipe
        recipe = apply_input_recipe(args, InputRecipe.from_dict(description["recipe"]))
        spec, prep = clip_spec_from(args, recipe)
        config = model.config
        label_map = None
        if "action" in config.heads:
            source = args.label_map or description.get("label_map")
            if source is None:
                raise TspVideoError(f"{args.checkpoint} does not name its classes: give --label-map")
            label_map = list(source) if isinstance(source, list) else read_label_map(source)
            if len(label_map) != config.num_classes:
                raise TspVideoError(f"the label map has {len(label_map)} classes, the action head {config.num_classes}")
        if config.uses_gvf and not args.gvf:
            raise TspVideoError("this model's region head uses a GVF: give --gvf GVF.h5")
        dataset = SegmentClipDataset(read_segment_table(args.valid_csv), args.video_dir, train=False,
                                     label_map=label_map, spec=spec, prep=prep,
                                     gvf_path=args.gvf if config.uses_gvf else None,
                                     foreground_only=config.heads == ("action",), seed=args.seed,
                                     decode_threads=args.decode_threads, source=args.valid_csv,
                                     preprocess_on=resolve_preprocess_on(args.preprocess_on, info.device))
        log.info("clips preprocessed %s", "on the device" if dataset.preprocess_on == "device" else "in the workers")
        counts = dataset.num_clips()
        log.info("%s: %d foreground + %d background clips (%d segment(s) shorter than one clip dropped)",
                 args.valid_csv, counts["foreground"], counts["background"], dataset.dropped["too_short"])
        loader = make_loader(dataset, ShardSampler(dataset, info.world_size, info.rank), args.batch_size,
                             args.workers, info.device, train=False)
        model.to(info.device)
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last_3d)
        stats = evaluate(model, loader, info.device, args.amp, args.channels_last,
                         show_progress=info.is_main and not args.no_progress)
        stats["dropped_segments"] = dataset.dropped["too_short"]
        stats["preprocess_on"] = dataset.preprocess_on
        return stats
    finally:
        _teardown_logging(handlers)
        cleanup(info)
