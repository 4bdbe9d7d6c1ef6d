"""``train(config)``: one TSP / TAC training run, in one process or under torchrun.

Variants come from the config's options on one code path (see ``docs/training.md``), or all at once from
``recipe`` (the original's training scripts, :mod:`tspvideo.train.recipes`):

- TSP (max or avg GVF): ``heads=["action", "region"], gvf=GVF.h5 [, gvf_pool="avg"]``
- TSP without GVF:      ``heads=["action", "region"], no_gvf=True``
- TAC:                  ``heads=["action"]`` (every clip; background clips ignored by the loss)
- region head only:     ``heads=["region"]`` (supplementary Table 9; one 512 -> 2 head, no GVF)

Defaults are the original code's: SGD momentum 0.9, weight decay 0.005, lr 1e-4 for the backbone and 2e-3
for the heads, both multiplied by the number of processes; per-iteration linear warm-up over 2 epochs, x0.01
at epochs 4 and 6; 8 epochs of 32 clips per process; heads initialised N(0, 0.01). Each epoch ends with
validation and an atomic checkpoint (:mod:`tspvideo.train.checkpoint`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from tspvideo import __version__
from tspvideo.core.choices import HEAD_CHOICES
from tspvideo.core.cores import default_loader_workers
from tspvideo.core.devices import resolve_preprocess_on
from tspvideo.core.distributed import DistInfo, barrier, cleanup, init_distributed
from tspvideo.core.errors import TspVideoError
from tspvideo.core.fileio import describe_os_error, write_error
from tspvideo.datasets.batch_transforms import collate_raw_clips
from tspvideo.datasets.clips import (
    BalancedSampler,
    ClipSpec,
    SegmentClipDataset,
    ShardSampler,
    derive_seed,
    seed_worker,
)
from tspvideo.datasets.segments import read_label_map, read_segment_table
from tspvideo.datasets.transforms import Preprocessing
from tspvideo.features.gvf import gvf_attributes
from tspvideo.models.backbones import (
    backbone_spec,
    check_input_size,
    enable_gradient_checkpointing,
    require_gradient_checkpointing,
    set_batchnorm_momentum,
)
from tspvideo.models.hf_registry import is_vit
from tspvideo.models.hf_video import set_drop_path
from tspvideo.models.tsp import TSPModel
from tspvideo.models.tsp import create_model as create_tsp_model
from tspvideo.models.weights import InputRecipe, default_recipe, load_backbone_weights, read_checkpoint
from tspvideo.train.checkpoint import (
    BEST_NAME,
    CHECKPOINT_NAME,
    METRICS_NAME,
    read_metrics,
    resume,
    rng_states,
    save_checkpoint,
    write_metrics,
)
from tspvideo.train.config import TrainConfig
from tspvideo.train.input_check import InputCheck, measured_epoch
from tspvideo.train.layer_decay import check_vit_options, vit_parameter_groups
from tspvideo.train.loop import WarmupMultiStep, evaluate, train_one_epoch
from tspvideo.train.recipes import GVF_ENCODER, ResolvedOptions, apply_recipe
from tspvideo.train.resume import apply_optimisation, group_settings, resume_path, resumed_config
from tspvideo.train.runfolder import check_run_folder, clear_run, holds_run

log = logging.getLogger("tspvideo.train")

# Kinetics-pretrained initialisation the paper starts from, per backbone (`weights="auto"`).
BASE_WEIGHTS = {
    "r2plus1d_34": "r2plus1d_34-ig65m_kinetics",
    "r2plus1d_18": "r2plus1d_18-kinetics400",
    "r3d_18": "r3d_18-kinetics400",
    **{name: f"{name}-kinetics400" for name in ("s3d", "mvit_v2_s", "swin3d_t", "swin3d_s", "swin3d_b")},
    # ViT encoders: the hub checkpoint each name is the architecture of (VideoMAE self-supervised or fine-tuned).
    "videomae_b": "videomae_b-kinetics400_ssl", "videomae_b_ft": "videomae_b_ft-kinetics400",
    "videomae_l": "videomae_l-kinetics400_ssl", "videomae_l_ft": "videomae_l_ft-kinetics400",
    "vjepa2_vitl": "vjepa2_vitl-fpc64_256",
}

# What builds the model: called as ``create_model(backbone, num_classes=..., heads=..., gvf=...)``, as
# :func:`tspvideo.models.tsp.create_model` (the default); tests pass one with a tiny backbone.
ModelFactory = Callable[..., TSPModel]


# ----------------------------------------------------------------------------------------------------
# Setup helpers
# ----------------------------------------------------------------------------------------------------


def seed_everything(seed: int, rank: int, epoch: int) -> None:
    """Global RNGs from (seed, rank, epoch): differ per process and epoch, and resume exactly."""
    value = derive_seed(seed, rank, epoch, 0x7A11)
    random.seed(value)
    np.random.seed(value % (1 << 32))
    torch.manual_seed(value)


def input_recipe(recipe: InputRecipe, clip_len: int | None = None, fps: float | None = None,
                 resize: Sequence[int] | None = None, crop: int | None = None) -> InputRecipe:
    """``recipe`` with the clip grid and frame sizes that are given (not ``None``) replacing its own."""
    resize = tuple(resize) if resize is not None else tuple(recipe.resize)
    if len(resize) not in (1, 2):
        raise TspVideoError(f"--resize takes H W or one short side S, got {len(resize)} values")
    crop = crop if crop is not None else recipe.crop[0]
    return InputRecipe(recipe.backbone, clip_len if clip_len is not None else recipe.clip_len,
                       fps if fps is not None else recipe.fps, resize, (crop, crop), recipe.mean, recipe.std,
                       recipe.hf_processor)


def clip_spec_from(recipe: InputRecipe, clips_per_segment: int, sampling: str) -> tuple[ClipSpec, Preprocessing]:
    """Clip grid and preprocessing of a training / evaluation dataset from an input recipe."""
    spec = ClipSpec(clip_len=recipe.clip_len, fps=recipe.fps, clips_per_segment=clips_per_segment, sampling=sampling)
    if recipe.crop[0] > min(recipe.resize):
        raise TspVideoError(f"--crop {recipe.crop[0]} is larger than the resized frames {tuple(recipe.resize)}")
    return spec, Preprocessing(resize=tuple(recipe.resize), crop=tuple(recipe.crop), mean=recipe.mean, std=recipe.std,
                               hf_processor=recipe.hf_processor)


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




def build_optimizer(name: str, groups: list[dict], lr: float, momentum: float,
                    weight_decay: float) -> torch.optim.Optimizer:
    """The original's SGD with momentum, or AdamW (an option: not the paper's) over the parameter groups."""
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)


def parameter_groups(model: TSPModel, backbone_lr: float, fc_lr: float, freeze_stem: bool, *,
                     layer_decay: float | None = None, train_blocks: int | None = None) -> list[dict]:
    """Backbone and head parameter groups; the stem is left out (and frozen) when ``freeze_stem``.

    The stem is each architecture's first layer: VideoResNet's ``stem``, S3D's first separable
    convolution, MViT's patch projection (and class token), Swin's patch embedding, a ViT's embeddings.
    The ViT encoders get one group per depth (``layer_decay``, ``train_blocks``: :mod:`tspvideo.train.layer_decay`).
    """
    spec = backbone_spec(model.config.backbone)
    if is_vit(model.config.backbone):
        return vit_parameter_groups(model, spec, backbone_lr, fc_lr, freeze_stem, layer_decay, train_blocks)
    stem = tuple(f"features.{prefix}" for prefix in spec.stem_prefixes)
    backbone, heads = [], []
    for name, param in model.named_parameters():
        if freeze_stem and name.startswith(stem):
            param.requires_grad_(False)
            continue
        (backbone if name.startswith("features.") else heads).append(param)
    return [{"params": backbone, "lr": backbone_lr, "name": "backbone"},
            {"params": heads, "lr": fc_lr, "name": "heads"}]


def setup_logging(out_dir: Path | None, is_main: bool, rank: int = 0) -> list[logging.Handler]:
    """Where the ``tspvideo`` log lines go; returns the handlers to remove.

    The main process logs to stdout (and ``OUT/train.log``). Under torchrun the other processes print nothing, so
    that each line and warning is shown once: their warnings go to ``OUT/train.rank<N>.log``, a file made only
    when there is one to write (and only where ``OUT`` exists: another node may not share the folder).
    """
    logger = logging.getLogger("tspvideo")
    handlers: list[logging.Handler]
    if is_main:
        handlers = [logging.StreamHandler(sys.stdout)]
        if out_dir is not None:
            handlers.append(LogFile(out_dir / "train.log"))
    elif out_dir is not None and Path(out_dir).is_dir():
        handlers = [LogFile(Path(out_dir) / f"train.rank{rank}.log", delay=True)]
    else:
        handlers = [logging.NullHandler()]  # without a handler, Python would print warnings to stderr
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO if is_main else logging.WARNING)
    logger.propagate = False
    return handlers


class LogFile(logging.FileHandler):
    """A log file whose failures are one line each: opening it (read-only folder, no permission) raises the
    one-line :class:`~tspvideo.core.errors.WriteFailure`; a line that cannot be written (disk full) is one warning
    on stderr, once, instead of logging's traceback for every line, and the run goes on (its checkpoints, written
    after each epoch, stop it if the disk stays full)."""

    def __init__(self, path: Path, delay: bool = False) -> None:
        try:
            super().__init__(path, encoding="utf-8", delay=delay)
        except OSError as error:
            raise write_error(path, error) from error
        self.failed = False

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            self._warn(error)
        else:
            super().handleError(record)

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as error:
            self._warn(error)

    def close(self) -> None:
        try:
            super().close()  # flushes what is buffered: the last lines may meet the full disk here
        except OSError as error:
            self._warn(error)

    def _warn(self, error: OSError) -> None:
        if not self.failed:
            self.failed = True
            print(f"warning: {describe_os_error(self.baseFilename, error)}; further log lines go to stdout only",
                  file=sys.stderr, flush=True)


def teardown_logging(handlers: list[logging.Handler]) -> None:
    """Undo :func:`setup_logging`."""
    logger = logging.getLogger("tspvideo")
    for handler in handlers:
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = True


def _tensorboard(out_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter  # optional dependency: metrics.csv is always written
    except ImportError:
        return None
    return SummaryWriter(str(out_dir / "tensorboard"))


def resolve_variant(config: TrainConfig, gvf_encoder: str | None = None) -> tuple[tuple[str, ...], str | None, bool]:
    """Heads, GVF pooling (None: no GVF) and whether only foreground clips are used, of a filled config."""
    heads = tuple(h for h in HEAD_CHOICES if h in config.heads)
    region_only = heads == ("region",)
    if config.region_only_gvf and not region_only:
        raise TspVideoError("--region-only-gvf is for --heads region alone; the two-head model uses --gvf "
                            "unless --no-gvf")
    # The original's one-head model never concatenates the GVF: region-only ignores it unless asked.
    uses_gvf = "region" in heads and not config.no_gvf and (not region_only or config.region_only_gvf)
    if uses_gvf and not config.gvf:
        make = f"`tspvideo gvf --videos VIDEOS --model {GVF_ENCODER} --out gvf.h5`"
        raise TspVideoError(f"the region head needs --gvf GVF.h5 (make it with {make}), or --no-gvf for TSP "
                            "without GVF")
    if config.gvf and not uses_gvf:
        if region_only:
            log.warning("--heads region ignores --gvf %s, as the original's one-head model (region head 512 -> 2);"
                        " add --region-only-gvf to feed it the GVF", config.gvf)
        else:
            raise TspVideoError("--gvf is only used by the region head without --no-gvf; drop it")
    if "action" in heads and not config.label_map:
        raise TspVideoError("an action head needs --label-map (JSON list of class names)")
    gvf_pool = _gvf_pool(config.gvf, config.gvf_pool, gvf_encoder) if uses_gvf else None
    return heads, gvf_pool, heads == ("action",) and config.tac_clips == "foreground"


def training_notes(config: TrainConfig) -> list[str]:
    """One line per option value that is allowed but probably not meant (of a filled config)."""
    notes = []
    if config.lr_warmup_epochs and config.epochs <= config.lr_warmup_epochs:
        notes.append(f"note: --epochs {config.epochs} ends within the {config.lr_warmup_epochs:g}-epoch learning-rate "
                     "warm-up: the rates never reach --backbone-lr/--fc-lr (a short run may want --lr-warmup-epochs "
                     "0)")
    if config.freeze_stem and (config.weights is None or str(config.weights).lower() == "none"):
        notes.append("note: --freeze-stem keeps the stem at its random initial weights (--weights none) for the "
                     "whole run; --no-freeze-stem trains it")
    return notes


def _gvf_pool(gvf: str | Path, asked: str | None, wanted_encoder: str | None) -> str:
    """The GVF pooling, checked against the ``pool`` attribute of the GVF file (files without it still load)."""
    stored = gvf_attributes(gvf)
    pool = stored.get("pool")
    if asked is not None and pool is not None and asked != pool:
        raise TspVideoError(f"{gvf}: its GVFs are {pool}-pooled (the file's 'pool' attribute) but the run "
                            f"asks for --gvf-pool {asked}; give the {asked}-pooled file or --gvf-pool {pool}")
    encoder = stored.get("encoder")
    if encoder is not None and wanted_encoder is not None and encoder != wanted_encoder:
        log.warning("%s: GVFs come from %s, the recipe's from %s", gvf, encoder, wanted_encoder)
    log.info("GVF %s: %s-pooled, encoder %s", gvf, asked or pool or "max", encoder or "not recorded in the file")
    return asked or pool or "max"


def build_model(backbone: str, heads: tuple[str, ...], num_classes: int, gvf_pool: str | None, *,
                weights: str | None = "auto", seed: int = 0, grad_checkpointing: bool = False,
                drop_path: float | None = None, create_model: ModelFactory = create_tsp_model) -> TSPModel:
    """The model to train, made by ``create_model``, its backbone initialised from ``weights`` (auto: Kinetics;
    none: at random); ``drop_path``: a ViT encoder's stochastic depth."""
    torch.manual_seed(seed)  # the same random heads (and backbone, without weights) on every process
    model = create_model(backbone, num_classes=num_classes, heads=heads, gvf=gvf_pool)
    weights = BASE_WEIGHTS.get(backbone) if weights == "auto" else weights
    if weights is None or str(weights).lower() == "none":
        log.warning("backbone %s starts from RANDOM weights (--weights none): fine for trying the pipeline, "
                    "not for results; the paper starts from Kinetics weights", backbone)
    else:
        info = load_backbone_weights(model, weights)
        log.info("backbone initialised from %s", info.name if info else weights)
    if drop_path:  # before checkpointing, which wraps the blocks' forward
        rates = set_drop_path(model.features, drop_path)
        log.info("drop path rising to %g over %d blocks", drop_path, len(rates))
    if grad_checkpointing:
        blocks = enable_gradient_checkpointing(model.features, backbone)
        log.info("gradient checkpointing over %d blocks of %s", blocks, backbone)
    return model


def make_optimizer(groups: list[dict], config: TrainConfig, world_size: int, steps_per_epoch: int,
                   device: torch.device) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR,
                                                  torch.amp.GradScaler]:
    """SGD (or AdamW) over the parameter groups, its warm-up + multi-step schedule (per step) and the fp16
    grad scaler."""
    optimizer = build_optimizer(config.optimizer, groups, config.fc_lr * world_size, config.momentum,
                                config.weight_decay)
    schedule = WarmupMultiStep(steps_per_epoch, config.lr_warmup_epochs, config.lr_milestones, config.lr_gamma)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    return optimizer, scheduler, torch.amp.GradScaler(device.type, enabled=config.amp == "fp16")


def model_checkpoint(model: TSPModel, label_map: list[str] | None, recipe: InputRecipe, spec: ClipSpec,
                     prep: Preprocessing, config: TrainConfig, epoch: int, metrics: dict, preprocess_on: str) -> dict:
    """What ``best.pth`` holds: the model in the released layout, its config and classes, and the input it
    was trained on (``recipe``: typed input recipe; ``input``: clip grid, sampling rule and frame sizes)."""
    return {
        "model": model.state_dict(), "model_config": model.config.to_dict(), "label_map": label_map,
        "preprocessing": "tsp", "recipe": recipe.to_dict(),
        "input": {"clip_len": spec.clip_len, "fps": spec.fps, "sampling": spec.sampling,
                  "clips_per_segment": spec.clips_per_segment, "resize": list(prep.resize), "crop": list(prep.crop)},
        "epoch": epoch, "args": config.to_dict(), "metrics": metrics, "preprocess_on": preprocess_on,
        "tspvideo_version": __version__,
    }


# ----------------------------------------------------------------------------------------------------
# train(config)
# ----------------------------------------------------------------------------------------------------


def train(config: TrainConfig, *, create_model: ModelFactory = create_tsp_model) -> dict:
    """Train as configured; returns the best epoch's validation metrics, the per-epoch metrics, the files and this
    process's rank (under torchrun every process returns; rank 0 is the one that reports).

    ``create_model`` builds the model (default: the TSP model of :mod:`tspvideo.models.tsp`).
    """
    config, resolved = apply_recipe(config)
    if config.workers is None:  # recorded in the checkpoint's args as the number that ran
        config = dataclasses.replace(config, workers=default_loader_workers())
    out_dir = Path(config.out)
    check_run_folder(out_dir, config.resume, config.overwrite)  # before anything is created or removed
    checkpoint, notes = None, []
    if config.resume:  # the run's optimisation options, unless given now (tspvideo.train.resume)
        checkpoint = read_checkpoint(resume_path(config))
        config, notes = resumed_config(config, resolved.origins, checkpoint, resume_path(config))
    info = init_distributed(config.device)
    made = [d for d in (out_dir, *out_dir.parents) if not d.exists()]  # folders this call would make
    found = (made, (out_dir / "train.log").exists())
    if info.is_main:
        if config.overwrite:
            clear_run(out_dir)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:  # a read-only or full file system: one line, not a traceback
            raise write_error(out_dir, error) from error
    barrier()
    handlers = setup_logging(out_dir, info.is_main, info.rank)
    try:
        log.info("hyper-parameters: %s", resolved.describe(config))
        for note in notes:
            log.info(note)
        for note in training_notes(config):
            log.warning(note)
        return _run(config, resolved, info, out_dir, create_model, checkpoint)
    except TspVideoError as error:
        if error.exit_code == 2 and info.is_main:  # refused its input: leave no folder or log it made behind
            teardown_logging(handlers)
            _remove_started_run(out_dir, *found)
        raise
    finally:
        teardown_logging(handlers)
        cleanup(info)


def _remove_started_run(out_dir: Path, made: list[Path], log_existed: bool) -> None:
    """Remove the log and the (empty) folders a run made before its input was refused, innermost first; never
    a run's checkpoints or metrics."""
    if holds_run(out_dir):
        return
    if not log_existed:
        (out_dir / "train.log").unlink(missing_ok=True)
    for folder in made:
        if not folder.is_dir() or any(folder.iterdir()):
            return
        folder.rmdir()


def _run(config: TrainConfig, resolved: ResolvedOptions, info: DistInfo, out_dir: Path,
         create_model: ModelFactory, checkpoint: dict | None = None) -> dict:
    """Prepare the run (``checkpoint``: the one it resumes), fit the epochs left (each saved), then name the best
    epoch."""
    run = _prepare(config, resolved, info, out_dir, create_model, checkpoint)
    _fit(config, info, out_dir, run)
    best = run.history.best
    if best["epoch"] >= 0:
        log.info("best epoch: %d (valid mean clip accuracy %s); model in %s", best["epoch"] + 1,
                 f"{best['acc_mean']:.4f}" if run.loaders.valid is not None else "n/a", out_dir / BEST_NAME)
    return {"best": best, "metrics": run.history.rows, "out": str(out_dir),
            "files": [str(out_dir / n) for n in (CHECKPOINT_NAME, BEST_NAME, METRICS_NAME, "train.log")],
            "rank": info.rank}


# ----------------------------------------------------------------------------------------------------
# Prepare: the input, the data, the model and its optimizer, and where a resumed run stands
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunInput:
    """What a run trains on, fixed before its first epoch and recorded in its checkpoints."""

    heads: tuple[str, ...]
    gvf_pool: str | None  # None: no GVF
    foreground_only: bool  # TAC on foreground clips only
    label_map: list[str] | None  # None without an action head
    recipe: InputRecipe
    spec: ClipSpec
    prep: Preprocessing
    preprocess_on: str  # "workers" or "device"


@dataclass(frozen=True)
class Loaders:
    """The training sampler (its epoch is set before each epoch) and the two loaders."""

    sampler: BalancedSampler
    train: DataLoader
    valid: DataLoader | None  # None without ``valid_csv``


@dataclass(frozen=True)
class Trainer:
    """The model being trained and what updates it."""

    model: torch.nn.Module  # wrapped in DistributedDataParallel under torchrun
    bare_model: TSPModel  # the model itself: validated and saved
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler


@dataclass
class History:
    """The epochs done: where the run starts, its best epoch so far and one metrics row per epoch."""

    start_epoch: int
    best: dict
    rows: list[dict]


@dataclass(frozen=True)
class PreparedRun:
    """Everything :func:`_fit` needs, built in this order by :func:`_prepare`."""

    input: RunInput
    loaders: Loaders
    trainer: Trainer
    history: History


def _prepare(config: TrainConfig, resolved: ResolvedOptions, info: DistInfo, out_dir: Path,
             create_model: ModelFactory, checkpoint: dict | None = None) -> PreparedRun:
    run_input = _resolve_input(config, resolved, info)
    seed_everything(config.seed, info.rank, 0)
    loaders = _prepare_data(config, info, run_input)
    trainer = _prepare_model(config, info, run_input, len(loaders.train), create_model)
    return PreparedRun(run_input, loaders, trainer,
                       _start_history(config, out_dir, trainer, run_input.recipe, checkpoint))


def _resolve_input(config: TrainConfig, resolved: ResolvedOptions, info: DistInfo) -> RunInput:
    """The variant, classes and clip input of the run, checked before any data is read; logged."""
    heads, gvf_pool, foreground_only = resolve_variant(config, resolved.gvf_encoder)
    if config.epochs < 1 or config.batch_size < 1 or config.workers < 0:
        raise TspVideoError("--epochs and --batch-size must be at least 1, --workers 0 or more")
    if config.early_stop_patience is not None and (config.early_stop_patience < 1 or not config.valid_csv):
        raise TspVideoError("--early-stop-patience needs a number >= 1 and --valid-csv (it watches the validation "
                            "accuracy)")
    label_map = read_label_map(config.label_map) if config.label_map else None
    if "action" not in heads:
        label_map = None
    if config.grad_checkpointing:
        require_gradient_checkpointing(config.backbone)  # fails now, not after the datasets are read
    check_vit_options(config.backbone, config.layer_decay, config.drop_path, config.train_blocks)
    recipe = input_recipe(default_recipe(config.backbone), config.clip_len, config.fps, config.resize, config.crop)
    spec, prep = clip_spec_from(recipe, config.clips_per_segment, config.sampling)
    check_input_size(config.backbone, spec.clip_len, prep.crop)
    log.info("input: %d frames at %g fps, resize %s, crop %s, mean %s, std %s", spec.clip_len, spec.fps,
             "x".join(map(str, prep.resize)), "x".join(map(str, prep.crop)), prep.mean, prep.std)
    log.info("tspvideo %s: %s, heads %s, GVF %s, %d process(es) on %s", __version__, config.backbone,
             "+".join(heads), gvf_pool or "none", info.world_size, info.device)
    return RunInput(heads, gvf_pool, foreground_only, label_map, recipe, spec, prep,
                    _where_to_preprocess(config, info.device))


def _where_to_preprocess(config: TrainConfig, device: torch.device) -> str:
    """``workers`` or ``device``, logged with the frame cache in use."""
    preprocess_on = resolve_preprocess_on(config.preprocess_on, device)
    log.info("clips preprocessed %s", "on the device from raw uint8 clips" if preprocess_on == "device"
             else "in the loader workers")
    if config.frame_cache_dir or config.frame_cache_mb:
        log.info("frame cache: %s", f"each video decoded once into {config.frame_cache_dir}, then memory-mapped"
                 if config.frame_cache_dir else f"up to {config.frame_cache_mb} MB of decoded videos per loader worker")
    return preprocess_on


def _prepare_data(config: TrainConfig, info: DistInfo, run_input: RunInput) -> Loaders:
    """The datasets (their GVFs checked against the backbone) and their loaders."""
    train_set, valid_set = _datasets(config, run_input)
    feature_dim = backbone_spec(config.backbone).feature_dim
    if run_input.gvf_pool and train_set.gvf_dim != feature_dim:
        raise TspVideoError(f"{config.gvf}: GVFs have {train_set.gvf_dim} values, the {config.backbone} feature has "
                            f"{feature_dim}: compute the GVF with the initial {config.backbone} encoder "
                            f"(`tspvideo gvf --videos ... --model {BASE_WEIGHTS.get(config.backbone, 'WEIGHTS')}`)")
    # TAC uses every clip of the table, as the original (which never balances); TSP balances by default.
    return _loaders(config, info, train_set, valid_set, balance=not config.no_balance and "region" in run_input.heads)


def _datasets(config: TrainConfig, run_input: RunInput) -> tuple[SegmentClipDataset, SegmentClipDataset | None]:
    """The training dataset and the validation one (None without ``valid_csv``), their sizes logged."""
    common = {"label_map": run_input.label_map, "spec": run_input.spec, "prep": run_input.prep,
              "gvf_path": config.gvf if run_input.gvf_pool else None, "foreground_only": run_input.foreground_only,
              "seed": config.seed, "decode_threads": config.decode_threads, "preprocess_on": run_input.preprocess_on,
              "frame_cache_mb": config.frame_cache_mb, "frame_cache_dir": config.frame_cache_dir}
    train_set = SegmentClipDataset(read_segment_table(config.train_csv), config.video_dir, train=True,
                                   source=config.train_csv, **common)
    valid_set = None
    if config.valid_csv:
        valid_set = SegmentClipDataset(read_segment_table(config.valid_csv), config.video_dir, train=False,
                                       source=config.valid_csv, **common)
    for name, dataset in (("train", train_set), ("valid", valid_set)):
        if dataset is not None:
            counts = dataset.num_clips()
            log.info("%s: %d segments -> %d foreground + %d background clips; dropped %d segment(s) shorter than "
                     "one clip%s", name, len(dataset.segments), counts["foreground"], counts["background"],
                     dataset.dropped["too_short"], f" and {dataset.dropped['background']} background segment(s) "
                     "(TAC)" if run_input.foreground_only else "")
    return train_set, valid_set


def _loaders(config: TrainConfig, info: DistInfo, train_set: SegmentClipDataset,
             valid_set: SegmentClipDataset | None, balance: bool) -> Loaders:
    """The training sampler and loader (balanced or all clips, sharded over processes) and the validation loader."""
    sampler = BalancedSampler(train_set, info.world_size, info.rank, seed=config.seed, balance=balance)
    train_loader = make_loader(train_set, sampler, config.batch_size, config.workers, info.device, train=True)
    if len(train_loader) == 0:
        raise TspVideoError(f"an epoch has {sampler.epoch_size()} clips, fewer than one batch of "
                            f"{config.batch_size} x {info.world_size} process(es); lower --batch-size")
    valid_loader = None
    if valid_set is not None:
        valid_loader = make_loader(valid_set, ShardSampler(valid_set, info.world_size, info.rank), config.batch_size,
                                   config.workers, info.device, train=False)
    log.info("epoch: %d clips (%s), %d steps of %d clips x %d process(es)", sampler.epoch_size(),
             "balanced" if sampler.balance else "all", len(train_loader), config.batch_size,
             info.world_size)
    return Loaders(sampler, train_loader, valid_loader)


def _prepare_model(config: TrainConfig, info: DistInfo, run_input: RunInput, steps_per_epoch: int,
                   create_model: ModelFactory) -> Trainer:
    """The model on its device (wrapped for DDP under torchrun), its optimizer, schedule and grad scaler."""
    label_map = run_input.label_map
    model = build_model(config.backbone, run_input.heads, len(label_map) if label_map else 0, run_input.gvf_pool,
                        weights=config.weights, seed=config.seed, grad_checkpointing=config.grad_checkpointing,
                        drop_path=config.drop_path, create_model=create_model)
    if config.bn_momentum is not None:
        layers = set_batchnorm_momentum(model, config.bn_momentum, config.backbone)
        log.info("batch-norm momentum %g in %d layers (not %s's own)", config.bn_momentum, layers, config.backbone)
    if config.sync_bn and info.distributed:
        if info.device.type != "cuda":
            log.warning("--sync-bn needs GPUs (PyTorch's SyncBatchNorm has no CPU kernel); ignored")
        else:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    # linear scaling rule, as the paper (2 GPUs); the groups are made before DDP wraps the model
    groups = parameter_groups(model, config.backbone_lr * info.world_size, config.fc_lr * info.world_size,
                              config.freeze_stem, layer_decay=config.layer_decay, train_blocks=config.train_blocks)
    model.to(info.device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    bare_model = model
    if info.distributed:
        device = info.device
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer, scheduler, scaler = make_optimizer(groups, config, info.world_size, steps_per_epoch, info.device)
    return Trainer(model, bare_model, optimizer, scheduler, scaler)


def _start_history(config: TrainConfig, out_dir: Path, trainer: Trainer, recipe: InputRecipe,
                   checkpoint: dict | None = None) -> History:
    """A new run's empty history, or a resumed one's: its checkpoint (``checkpoint``: the file, already read) loaded
    into ``trainer`` with the run's optimisation options (:mod:`tspvideo.train.resume`), its metrics rows."""
    history = History(start_epoch=0, best={"epoch": -1, "acc_mean": -math.inf}, rows=[])
    if not config.resume:
        return history
    path = resume_path(config)
    settings = group_settings(trainer.optimizer)  # the options' values, before the checkpoint's state replaces them
    checkpoint = resume(path, trainer.bare_model, trainer.optimizer, trainer.scheduler, trainer.scaler, recipe,
                        config.bn_momentum, checkpoint=checkpoint)
    factor = apply_optimisation(trainer.optimizer, trainer.scheduler, settings)
    start_epoch = int(checkpoint["epoch"]) + 1
    history = History(start_epoch, checkpoint.get("best", history.best), read_metrics(out_dir / METRICS_NAME,
                                                                                      start_epoch))
    log.info("resumed from %s: epoch %d of %d done; learning rates now %s (schedule factor %.3g at step %d)", path,
             start_epoch, config.epochs, ", ".join(f"{group.get('name', i)} {group['lr']:.3g}"
                                                   for i, group in enumerate(trainer.optimizer.param_groups)),
             factor, trainer.scheduler.last_epoch)
    return history


# ----------------------------------------------------------------------------------------------------
# Fit: the epochs left, each trained, validated, logged and saved
# ----------------------------------------------------------------------------------------------------


def _fit(config: TrainConfig, info: DistInfo, out_dir: Path, run: PreparedRun) -> None:
    """Every epoch left; the main process saves after each, and every process waits for it."""
    writer = _tensorboard(out_dir) if info.is_main else None
    show_progress = info.is_main and not config.no_progress
    for epoch in range(run.history.start_epoch, config.epochs):
        if _patience_spent(config, run.history, epoch):
            log.info("early stop before epoch %d: no better validation accuracy in %d epochs (best: epoch %d)",
                     epoch + 1, config.early_stop_patience, run.history.best["epoch"] + 1)
            break
        metrics, is_best = _fit_epoch(config, info, run, epoch, show_progress)
        if info.is_main:
            _save_epoch(config, out_dir, run, epoch, metrics, is_best)
            if config.keep_epochs:
                _keep_epoch(config, out_dir, run, epoch, metrics)
            if writer is not None:
                _write_scalars(writer, run.history.rows[-1], epoch)
        barrier()
    if writer is not None:
        writer.close()


def _patience_spent(config: TrainConfig, history: History, epoch: int) -> bool:
    """Whether early stopping ends the run before ``epoch``: its last ``early_stop_patience`` epochs did not
    improve on the best (checked before an epoch, so a resumed run that had stopped stops again)."""
    patience = config.early_stop_patience
    return patience is not None and epoch > 0 and epoch - 1 - history.best["epoch"] >= patience


def _keep_epoch(config: TrainConfig, out_dir: Path, run: PreparedRun, epoch: int, metrics: dict) -> None:
    """``epoch_<N>.pth``: this epoch's model, in ``best.pth``'s layout (``--keep-epochs``)."""
    run_input = run.input
    save_checkpoint(out_dir / f"epoch_{epoch + 1}.pth",
                    model_checkpoint(run.trainer.bare_model, run_input.label_map, run_input.recipe, run_input.spec,
                                     run_input.prep, config, epoch, metrics, run_input.preprocess_on))


def _fit_epoch(config: TrainConfig, info: DistInfo, run: PreparedRun, epoch: int,
               show_progress: bool) -> tuple[dict, bool]:
    """Train and validate one epoch; its row goes to the history. Returns its metrics and whether it is the best."""
    started = time.perf_counter()
    seed_everything(config.seed, info.rank, epoch)
    run.loaders.sampler.set_epoch(epoch)
    trainer = run.trainer
    lrs = [group["lr"] for group in trainer.optimizer.param_groups]
    train_stats = train_one_epoch(
        trainer.model, run.loaders.train, trainer.optimizer, trainer.scheduler, trainer.scaler, info.device,
        epoch=epoch, epochs=config.epochs, batch_size=config.batch_size, alpha_action=config.alpha_action,
        alpha_region=config.alpha_region, action_norm=config.action_loss_norm, amp=config.amp,
        channels_last=config.channels_last, world_size=info.world_size, show_progress=show_progress,
        # once per run, on the main process: does the input starve the device?
        input_check=InputCheck.for_workers(getattr(run.loaders.train, "num_workers", 0))
        if info.is_main and epoch == measured_epoch(run.history.start_epoch, config.epochs,
                                                    bool(config.frame_cache_dir or config.frame_cache_mb)) else None)
    valid_stats = {}
    if run.loaders.valid is not None:
        valid_stats = evaluate(trainer.bare_model, run.loaders.valid, info.device, config.amp, config.channels_last,
                               show_progress)
    is_best = _update_best(run.history, epoch, valid_stats)
    row = {"epoch": epoch + 1, "lr_backbone": lrs[0], "lr_heads": lrs[1],
           **{f"train_{k}": v for k, v in train_stats.items()},
           **{f"valid_{k}": v for k, v in valid_stats.items()}, "seconds": time.perf_counter() - started}
    row["train_clips_per_s"] = train_stats["clips_per_s"]
    run.history.rows.append(row)
    _log_epoch(epoch, config.epochs, train_stats, valid_stats)
    return {"train": train_stats, "valid": valid_stats}, is_best


def _update_best(history: History, epoch: int, valid_stats: dict) -> bool:
    """Whether ``epoch`` beats the best so far on the validation mean accuracy (without validation the last epoch is
    the best); if so it becomes the history's best."""
    score = valid_stats.get("acc_mean", float(epoch))
    if math.isnan(score):
        score = -math.inf
    if not score > history.best["acc_mean"]:
        return False
    history.best = {"epoch": epoch, "acc_mean": score, **{f"valid_{k}": v for k, v in valid_stats.items()}}
    return True


def _log_epoch(epoch: int, epochs: int, train_stats: dict, valid_stats: dict) -> None:
    log.info("epoch %d/%d: loss %.4f (action %.4f, region %.4f), train acc %s, valid acc %s; %.1f clips/s; "
             "%d + %d undecodable clip(s) replaced", epoch + 1, epochs, train_stats["loss"],
             train_stats["loss_action"], train_stats["loss_region"], _format_acc(train_stats),
             _format_acc(valid_stats) if valid_stats else "-", train_stats["clips_per_s"],
             train_stats["replaced"], valid_stats.get("replaced", 0))


def _format_acc(stats: dict) -> str:
    parts = [f"{head} {stats[f'acc_{head}']:.3f}" for head in HEAD_CHOICES if f"acc_{head}" in stats]
    if len(parts) > 1:
        parts.append(f"mean {stats['acc_mean']:.3f}")
    return ", ".join(parts) or "-"


# ----------------------------------------------------------------------------------------------------
# Checkpoint: best.pth, checkpoint.pth and metrics.csv after each epoch (main process)
# ----------------------------------------------------------------------------------------------------


def _save_epoch(config: TrainConfig, out_dir: Path, run: PreparedRun, epoch: int, metrics: dict,
                is_best: bool) -> None:
    """``best.pth`` when the epoch is the best so far, then ``checkpoint.pth`` (to resume) and ``metrics.csv``."""
    run_input, trainer = run.input, run.trainer
    checkpoint = model_checkpoint(trainer.bare_model, run_input.label_map, run_input.recipe, run_input.spec,
                                  run_input.prep, config, epoch, metrics, run_input.preprocess_on)
    if is_best:  # model-only file first, so a crash leaves the previous best or the new one, whole
        save_checkpoint(out_dir / BEST_NAME, checkpoint)
    checkpoint.update({"optimizer": trainer.optimizer.state_dict(), "lr_scheduler": trainer.scheduler.state_dict(),
                       "scaler": trainer.scaler.state_dict(), "rng": rng_states(), "best": run.history.best})
    save_checkpoint(out_dir / CHECKPOINT_NAME, checkpoint)
    write_metrics(out_dir / METRICS_NAME, run.history.rows)


def _write_scalars(writer, row: dict, epoch: int) -> None:
    """The epoch's metrics row to TensorBoard (``train_loss`` -> ``train/loss``)."""
    for key, value in row.items():
        if key != "epoch" and isinstance(value, (int, float)) and not math.isnan(value):
            writer.add_scalar(key.replace("_", "/", 1), value, epoch + 1)
    writer.flush()
