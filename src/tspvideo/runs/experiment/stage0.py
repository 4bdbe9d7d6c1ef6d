"""Stage 0: the initial encoder pretrained by action classification on trimmed clips of classes disjoint from
the experiment's (the stand-in for Kinetics), once for every seed. Outputs in ``OUT/stage0/``: ``data/``,
``initial_encoder.pth`` (seeded random weights), ``runs/`` (the training; ``best.pth`` is the encoder the seeds
start from) and the frame cache of its videos."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tspvideo.core.fileio import save_json_atomic
from tspvideo.runs.experiment.config import ExperimentConfig
from tspvideo.runs.experiment.seed import (
    DONE_NAME,
    FRAME_CACHE_DIR,
    TrainResult,
    base_train_config,
    input_recipe,
    say,
)
from tspvideo.runs.steps import PreparedDataset, initial_encoder, save_initial_encoder
from tspvideo.train import BEST_NAME, CHECKPOINT_NAME, train

STAGE0_DIR = "stage0"


def stage0_dir(out: Path) -> Path:
    """The folder of stage 0's outputs."""
    return out / STAGE0_DIR


def stage0_encoder(out: Path) -> Path:
    """The pretrained encoder every seed starts from (stage 0's best epoch on validation accuracy)."""
    return stage0_dir(out) / "runs" / BEST_NAME


def run_stage0(out: Path, data: PreparedDataset, config: ExperimentConfig) -> TrainResult:
    """Train stage 0 on ``data`` (the trimmed dataset of ``config.stage0.data``), or read its finished result.

    Action head only (background clips ignored), the experiment's clips, optimiser and early stopping,
    ``config.stage0``'s epochs and seed.
    """
    assert config.stage0 is not None
    folder = stage0_dir(out)
    run_dir = folder / "runs"
    marker = run_dir / DONE_NAME
    if marker.is_file():
        return TrainResult.from_dict(json.loads(marker.read_text(encoding="utf-8")))
    stage0 = config.stage0
    say(f"stage 0: pretrain the initial encoder on {stage0.data.num_videos} trimmed videos of "
        f"{stage0.data.num_classes} other classes ({stage0.epochs} epochs at most)")
    initial = folder / "initial_encoder.pth"
    if not initial.is_file():
        save_initial_encoder(initial, initial_encoder(config.backbone, None, stage0.seed, input_recipe(config)).model)
    base = base_train_config(config, data, folder, stage0.seed)
    train_config = dataclasses.replace(
        base, out=run_dir, heads=["action"], gvf=None, epochs=stage0.epochs,
        frame_cache_dir=folder / FRAME_CACHE_DIR if config.frame_cache else None,
        resume="auto" if (run_dir / CHECKPOINT_NAME).is_file() else None)
    result = TrainResult.from_training(train(train_config))
    save_json_atomic(marker, result.to_dict())
    say(f"stage 0: best epoch {result.best_epoch} of {result.epochs_run}, validation action accuracy "
        f"{result.valid_acc.get('valid_acc_action', float('nan')):.3f}")
    return result
