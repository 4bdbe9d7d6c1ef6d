"""One seed of the experiment: its initial encoder and GVF, the three trainings, the features of each
encoder, their evaluation and figures. Every step skips work whose output exists (an interrupted seed continues).

Outputs in ``OUT/seed_<N>/``: ``initial_encoder.pth``, ``gvf.h5``, ``runs/<variant>/`` (training runs,
``done.json`` once finished), ``features/<variant>/``, ``probe/<variant>/`` and ``metrics.json``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tspvideo.core.devices import resolve_device
from tspvideo.core.fileio import save_json_atomic
from tspvideo.core.grid import ClipGrid
from tspvideo.datasets.transforms import Preprocessing
from tspvideo.extract.options import ExtractOptions
from tspvideo.features.gvf import write_gvf
from tspvideo.models.encoder import Encoder, load_encoder
from tspvideo.models.weights import InputRecipe
from tspvideo.runs.experiment.config import MATCHED_VARIANTS, VARIANT_TITLES, ExperimentConfig
from tspvideo.runs.experiment.evaluate import evaluate_features, read_ground_truth, similarity_figures
from tspvideo.runs.experiment.match import ACCURACY, match_epochs
from tspvideo.runs.experiment.plots import plot_training_curves
from tspvideo.runs.steps import (
    PreparedDataset,
    dataset_train_config,
    extract_folder,
    initial_encoder,
    save_initial_encoder,
)
from tspvideo.train import BEST_NAME, CHECKPOINT_NAME, TrainConfig, train

FRAME_CACHE_DIR = "frame_cache"  # in the experiment's folder, shared by seeds and variants
METRICS_NAME = "metrics.json"
DONE_NAME = "done.json"  # in a training run's folder, once it has finished
EXTRACT_BATCH_SIZE = 32
AVG_GVF_NAME = "gvf_avg.h5"  # beside gvf.h5 (max), when the tsp_avg_gvf variant is trained


def say(message: str) -> None:
    """A progress line of the experiment, with the time of day."""
    print(f"\n== experiment {time.strftime('%H:%M:%S')}: {message}", flush=True)


def seed_dir(out: Path, seed: int) -> Path:
    """The folder of one seed's outputs."""
    return out / f"seed_{seed}"


def read_seed_metrics(out: Path, seed: int) -> dict[str, dict[str, Any]]:
    """``{variant: {metric: value}}`` of a finished seed (its ``metrics.json``)."""
    return json.loads((seed_dir(out, seed) / METRICS_NAME).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class TrainResult:
    """What the experiment keeps of one training: its best epoch and that epoch's validation accuracies."""

    best_epoch: int  # counted from 1
    valid_acc: dict[str, float]  # valid_acc_action / valid_acc_region / valid_acc_mean, those the run has
    train_clips: int  # clips seen over all epochs
    epochs_run: int = 0  # epochs trained (fewer than the most when early stopping ended the run; 0: not recorded)

    @classmethod
    def from_training(cls, result: dict[str, Any]) -> TrainResult:
        """The summary of :func:`tspvideo.train.train`'s result."""
        return cls(best_epoch=int(result["best"]["epoch"]) + 1,
                   valid_acc={k: float(v) for k, v in result["best"].items() if k.startswith("valid_acc")},
                   train_clips=int(sum(float(r.get("train_clips") or 0) for r in result["metrics"])),
                   epochs_run=len(result["metrics"]))

    def to_dict(self) -> dict[str, Any]:
        """The ``done.json`` mapping: ``best_epoch``, each ``valid_acc_*``, ``train_clips``."""
        return {"best_epoch": self.best_epoch, **self.valid_acc, "train_clips": self.train_clips,
                "epochs_run": self.epochs_run}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainResult:
        """The result of :meth:`to_dict`'s mapping."""
        return cls(best_epoch=int(values["best_epoch"]),
                   valid_acc={k: v for k, v in values.items() if k.startswith("valid_acc")},
                   train_clips=int(values["train_clips"]), epochs_run=int(values.get("epochs_run", 0)))

    def metrics(self) -> dict[str, Any]:
        """The values the experiment's results carry for a trained variant."""
        return {**self.valid_acc, "train_clips": self.train_clips, "best_epoch": self.best_epoch,
                "epochs_run": self.epochs_run}


def base_train_config(config: ExperimentConfig, data: PreparedDataset, folder: Path, seed: int) -> TrainConfig:
    """The seed's TSP training (both heads, max GVF of the initial encoder): the data, schedule and number of
    epochs every variant shares; :func:`variant_train_config` derives each variant's run from it."""
    return dataset_train_config(
        data, folder / "runs" / "tsp", gvf=folder / "gvf.h5", backbone=config.backbone,
        weights=str(folder / "initial_encoder.pth"), clip_len=config.clip_len, fps=config.fps,
        clips_per_segment=config.clips_per_segment, resize=list(config.resize), crop=config.crop,
        epochs=config.epochs, early_stop_patience=config.early_stop_patience, batch_size=config.batch_size,
        optimizer=config.optimizer,
        backbone_lr=config.backbone_lr, fc_lr=config.fc_lr, lr_warmup_epochs=config.lr_warmup_epochs,
        lr_milestones=list(config.lr_milestones), bn_momentum=config.bn_momentum,
        freeze_stem=False,  # a random stem is worth training; the original freezes a pretrained one
        workers=config.workers, device=config.device, seed=seed, no_progress=not config.progress,
        frame_cache_dir=folder.parent / FRAME_CACHE_DIR if config.frame_cache else None)


def variant_train_config(base: TrainConfig, variant: str, run_dir: Path, keep_epochs: bool = False) -> TrainConfig:
    """One variant's training: the base run with the options the variants differ in (see :mod:`tspvideo.train`);
    ``keep_epochs``: every epoch's model is kept (for the progress-matched comparison)."""
    options: dict[str, Any] = {
        "tsp": {},
        "tac": {"heads": ["action"], "gvf": None},  # action head only, every clip, background ignored
        "tsp_no_gvf": {"heads": ["action", "region"], "gvf": None, "no_gvf": True},
        # the average-pooled GVF of the same initial features (the file's 'pool' attribute says avg)
        "tsp_avg_gvf": {"gvf": Path(base.gvf).parent / AVG_GVF_NAME},
    }[variant]
    # An interrupted training resumes from its last checkpoint.
    resume = "auto" if (run_dir / CHECKPOINT_NAME).is_file() else None
    return dataclasses.replace(base, out=run_dir, resume=resume, keep_epochs=keep_epochs, **options)


def train_variant(variant: str, base: TrainConfig, folder: Path, keep_epochs: bool = False) -> TrainResult:
    """Train one variant from the seed's initial encoder, or read a finished run's result."""
    run_dir = folder / "runs" / variant
    marker = run_dir / DONE_NAME
    if marker.is_file():
        return TrainResult.from_dict(json.loads(marker.read_text(encoding="utf-8")))
    result = TrainResult.from_training(train(variant_train_config(base, variant, run_dir, keep_epochs)))
    save_json_atomic(marker, result.to_dict())
    return result


def input_recipe(config: ExperimentConfig) -> InputRecipe:
    """The experiment's input: its clip grid and frame sizes, the paper's normalisation."""
    prep = Preprocessing(resize=tuple(config.resize), crop=(config.crop, config.crop))
    return InputRecipe.of(config.backbone, config.clip_len, config.fps, prep)


def extract_features(videos: list[Path], out_dir: Path, encoder: Encoder, config: ExperimentConfig,
                     device: str) -> None:
    """Features of ``videos`` on the experiment's grid and input size, in float32; videos already done are
    skipped."""
    grid = ClipGrid(clip_len=config.clip_len, fps=config.fps, stride=config.stride)
    extract_folder(videos, out_dir, encoder,
                   ExtractOptions.for_grid(grid, device=device, workers=config.workers, batch_size=EXTRACT_BATCH_SIZE,
                                           amp="fp32", progress=config.progress))


def run_seed(seed: int, out: Path, data: PreparedDataset, config: ExperimentConfig) -> dict[str, dict[str, Any]]:
    """Every step of one seed; returns ``{variant: {metric: value}}`` (also written to ``seed_N/metrics.json``)."""
    folder = seed_dir(out, seed)
    folder.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    videos = data.video_files()
    # Stage 0's encoder when there is one (trained before the seeds), else the configured weights.
    weights = str(out / "stage0" / "runs" / BEST_NAME) if config.stage0 is not None else config.weights

    say(f"seed {seed}: initial encoder ({'stage 0' if config.stage0 else config.weights or 'seeded random weights'})"
        " and its features")
    encoder = initial_encoder(config.backbone, weights, seed, input_recipe(config))
    initial_path = folder / "initial_encoder.pth"
    if not initial_path.is_file():
        save_initial_encoder(initial_path, encoder.model)
    extract_features(videos, folder / "features" / "init", encoder, config, device)
    stems = [v.stem for v in videos]
    if not (folder / "gvf.h5").is_file():
        # GVF = max-pool of the initial encoder's clip features, frozen during training (the paper's setup)
        write_gvf(folder / "features" / "init", folder / "gvf.h5", "max", stems)
    if "tsp_avg_gvf" in config.variants and not (folder / AVG_GVF_NAME).is_file():
        write_gvf(folder / "features" / "init", folder / AVG_GVF_NAME, "avg", stems)

    base = base_train_config(config, data, folder, seed)
    training: dict[str, TrainResult] = {}
    for variant in config.variants:
        say(f"seed {seed}: train {VARIANT_TITLES[variant]} ({config.epochs} epochs at most)")
        keep = config.matched and variant in ("tsp", "tac")
        training[variant] = train_variant(variant, base, folder, keep_epochs=keep)
        say(f"seed {seed}: features with the {VARIANT_TITLES[variant]} encoder")
        extract_features(videos, folder / "features" / variant, load_encoder(folder / "runs" / variant / BEST_NAME),
                         config, device)
    feature_sets = [*config.variants, "init"]
    match: dict[str, Any] = {}
    same_model: dict[str, str] = {}  # matched feature set -> trained variant whose best epoch it is
    if config.matched:
        match = match_epochs({v: folder / "runs" / v for v in ("tsp", "tac")})
        save_json_atomic(folder / "match.json", match)
        say(f"seed {seed}: TSP (epoch {match['tsp']['epoch']}) and TAC (epoch {match['tac']['epoch']}) at validation "
            f"action accuracy {match['level']:.3f}: their features")
        for name in MATCHED_VARIANTS:
            variant = name.removesuffix("_matched")
            if match[variant]["epoch"] == training[variant].best_epoch:
                # best.pth is that epoch's model: its features and probe are already computed, not twice
                same_model[name] = variant
                continue
            extract_features(videos, folder / "features" / name,
                             load_encoder(folder / "runs" / variant / f"epoch_{match[variant]['epoch']}.pth"),
                             config, device)
        feature_sets += list(MATCHED_VARIANTS)

    ground_truth = read_ground_truth(data.annotations)
    evaluated: dict[str, dict[str, Any]] = {}
    results: dict[str, dict[str, Any]] = {}
    for variant in feature_sets:
        source = same_model.get(variant, variant)
        if source not in evaluated:
            say(f"seed {seed}: probe and scores of the {VARIANT_TITLES[variant]} features")
            evaluated[source] = evaluate_features(folder / "features" / source, folder / "probe" / source,
                                                  data.annotations, ground_truth, config, seed)
        results[variant] = dict(evaluated[source])
        if variant in training:
            results[variant].update(training[variant].metrics())
        elif variant in MATCHED_VARIANTS:
            matched = match[variant.removesuffix("_matched")]
            results[variant].update({ACCURACY: matched[ACCURACY], "epoch": matched["epoch"]})
    similarity_figures(folder / "features", ground_truth, out / "figures", seed, config, [*config.variants, "init"])
    plot_training_curves({VARIANT_TITLES[v]: folder / "runs" / v / "metrics.csv" for v in config.variants},
                         out / "figures" / f"seed{seed}_training.{config.figure_format}",
                         f"seed {seed}: training curves ({config.backbone}, {config.optimizer})")
    save_json_atomic(folder / METRICS_NAME, results)
    return results
