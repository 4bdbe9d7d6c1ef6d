"""The experiment's configuration: :class:`ExperimentConfig`, its presets, its checks and ``config.json``."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tspvideo.core.errors import TspVideoError
from tspvideo.core.fileio import save_json_atomic
from tspvideo.core.grid import DEFAULT_FPS
from tspvideo.video.synthetic import SyntheticConfig

# Feature sets, in table order: the trained variants, the initial encoder, and the two progress-matched ones
# (TSP's and TAC's first epochs whose validation action accuracy reaches the lower of their two bests).
TRAINED_VARIANTS = ("tsp", "tac", "tsp_no_gvf", "tsp_avg_gvf")
MATCHED_VARIANTS = ("tsp_matched", "tac_matched")
VARIANTS = (*TRAINED_VARIANTS, "init", *MATCHED_VARIANTS)
VARIANT_TITLES = {"tsp": "TSP (max GVF)", "tac": "TAC", "tsp_no_gvf": "TSP w/o GVF", "tsp_avg_gvf": "TSP (avg GVF)",
                  "init": "initial encoder", "tsp_matched": "TSP, matched acc.", "tac_matched": "TAC, matched acc."}
CONFIG_NAME = "config.json"
# Configuration fields that may change between a run and its continuation (they change no number).
RUNTIME_FIELDS = ("workers", "device", "progress", "jobs", "frame_cache")
# Which seeds and variants a call runs and reports: a continuation may change them (record_config).
SELECTION_FIELDS = ("seeds", "variants")

# The synthetic task (see docs/experiment.md, "The synthetic task"): two objects, fast class patterns
# (1.5-3 Hz, so that one clip of about a second sees one to three periods), background drift at all times,
# and a per-video motion style that scales the video's background drift (calm or busy videos).
CPU_DATA = SyntheticConfig(
    num_videos=160, num_classes=4, width=48, height=48, seed=0, min_duration=8.0, max_duration=12.0,
    max_instances=3, fps=15.0,
    keyframe_interval=8,  # frames: reading a clip decodes at most this many frames before it
    num_objects=2,
    frequency_range=(1.5, 3.0),  # Hz of the class patterns
    amplitude_range=(0.08, 0.15),  # of the frame's smaller side
    walk_speed=0.35,  # background drift, frame sides per second
    motion_style=1.5,  # per-video factor on the drift speed, in [1/1.5, 1.5]
)
# Stage 0's data, the stand-in for Kinetics: trimmed clips (videos of 3-4 s that one instance fills but for 0.5 s
# at each end, instances longer than that being shrunk to fit; training ignores that background) of four other
# motion patterns than the experiment's classes.
STAGE0_DATA = dataclasses.replace(CPU_DATA, num_videos=400, seed=1, class_offset=4, min_duration=3.0,
                                  max_duration=4.0, min_instances=1, max_instances=1, min_action=2.0, max_action=8.0)


@dataclass(frozen=True)
class Stage0Config:
    """Stage 0: the initial encoder pretrained by action classification on ``data`` (classes disjoint from the
    experiment's), once for all seeds (like one Kinetics model); every seed's trainings start from it."""

    data: SyntheticConfig = STAGE0_DATA
    epochs: int = 10  # the most; early stopping as the experiment's
    seed: int = 0


@dataclass(frozen=True)
class ExperimentConfig:
    """Sizes of the experiment; the defaults are the ``scratch`` preset of ``docs/experiment.md`` (random initial
    weights, minutes a seed on 2 cores); the ``cpu`` preset adds stage 0 (:data:`CPU_CONFIG`).

    ``data`` is the synthetic dataset, generated once (its own ``seed``) and shared by all seeds.
    """

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    data: SyntheticConfig = CPU_DATA
    # encoder and clips
    backbone: str = "c3d_tiny"  # the 18-layer encoders do not learn from random weights in minutes on a CPU
    weights: str | None = None  # initial backbone weights; None: seeded random (nothing can be downloaded here)
    clip_len: int = 8
    fps: float = DEFAULT_FPS  # 8 frames span 0.53 s: about one to two periods of a class pattern, no aliasing
    clips_per_segment: int = 2
    resize: tuple[int, int] = (36, 36)
    crop: int = 32
    feature_stride: int | None = 8  # frames between features (at fps), 0.53 s here; None: half a clip
    # the trained variants (TRAINED_VARIANTS); "init" is always evaluated
    variants: tuple[str, ...] = ("tsp", "tac", "tsp_no_gvf")
    # With tsp and tac: also compare them at matched validation action accuracy (every epoch's model is kept)
    match_accuracy: bool = True
    stage0: Stage0Config | None = None  # pretrain the initial encoder on disjoint classes (None: random weights)
    # training, identical for every variant: until the validation accuracy has not improved for
    # early_stop_patience epochs, at most `epochs` (None: every epoch)
    epochs: int = 16
    early_stop_patience: int | None = 3
    batch_size: int = 16
    # AdamW, not the paper's SGD: from random weights SGD (lr 0.05-0.2) left the region head at chance
    # after as many steps as AdamW needed to learn (docs/experiment.md, "Making the encoders learn").
    optimizer: str = "adamw"
    backbone_lr: float = 1e-3
    fc_lr: float = 1e-3
    lr_warmup_epochs: float = 0.5
    lr_milestones: tuple[float, ...] = ()
    bn_momentum: float | None = None  # batch-norm running statistics; None: the architecture's own
    # evaluation
    probe_epochs: int = 30
    probe_temporal_size: int | None = 100
    length_edges: tuple[float, ...] = (3.0,)  # short (<= 3 s) vs long instances; synthetic ones are 1.5-8 s
    figure_format: str = "png"
    # runtime (no effect on the numbers)
    workers: int = 2
    device: str = "auto"
    progress: bool = True
    jobs: int = 1  # seeds run at once, one process each (they share the device and the cores)
    # Every video decoded once into OUT/frame_cache and mapped by all trainings (the same frames).
    frame_cache: bool = True

    @property
    def stride(self) -> int:
        """Frames (at ``fps``) between two features: ``feature_stride``, or half a clip."""
        return self.feature_stride or max(1, self.clip_len // 2)

    def validate(self) -> None:
        """Raise :class:`TspVideoError` for settings that cannot work, before anything is written."""
        if not self.seeds:
            raise TspVideoError("the experiment needs at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise TspVideoError(f"seeds repeat: {list(self.seeds)}")
        if self.jobs < 1:
            raise TspVideoError(f"--jobs must be at least 1, got {self.jobs}")
        if min(self.seeds) < 0:
            raise TspVideoError(f"seeds must be >= 0, got {list(self.seeds)}")
        sizes = (("--epochs", self.epochs), ("--batch-size", self.batch_size), ("--probe-epochs", self.probe_epochs),
                 ("--clip-len", self.clip_len), ("--crop", self.crop), ("--fps", self.fps))
        not_positive = [f"{name} {value:g}" for name, value in sizes if not value > 0]
        if not_positive or self.workers < 0:
            raise TspVideoError(f"{', '.join(not_positive) or f'--workers {self.workers}'}: sizes must be positive "
                                "and --workers 0 or more")
        # A backbone that cannot take these clips (e.g. mvit_v2_s only takes 16x224x224).
        # Here, not at import: the backbones load torch, and the CLI reads the presets without it.
        from tspvideo.models.backbones import check_input_size

        check_input_size(self.backbone, self.clip_len, (self.crop, self.crop))
        unknown = [v for v in self.variants if v not in TRAINED_VARIANTS]
        if unknown or not self.variants:
            raise TspVideoError(f"unknown variant(s) {unknown}; choose from {', '.join(TRAINED_VARIANTS)}")
        if self.early_stop_patience is not None and self.early_stop_patience < 1:
            raise TspVideoError(f"--early-stop-patience must be at least 1, got {self.early_stop_patience}")
        if self.stage0 is not None:
            if self.weights:
                raise TspVideoError("--stage0 and --weights both set the initial encoder; give one")
            self.stage0.data.validate()
        self.data.validate()

    @property
    def matched(self) -> bool:
        """Whether the run compares TSP and TAC at matched validation action accuracy."""
        return self.match_accuracy and "tsp" in self.variants and "tac" in self.variants


# Every step at the smallest sizes that still work: a smoke test, its numbers mean nothing.
QUICK_CONFIG = ExperimentConfig(
    seeds=(0, 1), data=dataclasses.replace(CPU_DATA, num_videos=6, num_classes=2, width=32, height=32,
                                           min_duration=6.0, max_duration=7.0),
    clip_len=4, clips_per_segment=1, resize=(16, 16), crop=16, feature_stride=None, epochs=2, batch_size=4,
    probe_epochs=2, workers=0, early_stop_patience=None,
)
# One H100/H200 (lent for minutes): R(2+1)D-18 on larger frames, more videos and epochs, 3 seeds side by side.
# On an H100 host the loader workers' random clip reads, not the GPU, set the pace (docs/experiment.md,
# "GPU configuration"); the frame cache (each video decoded once, then memory-mapped) targets that (measured on CPU).
GPU_CONFIG = ExperimentConfig(
    seeds=(0, 1, 2), data=dataclasses.replace(CPU_DATA, num_videos=400, width=64, height=64),
    backbone="r2plus1d_18", resize=(64, 64), crop=56, epochs=14, batch_size=32, workers=5, jobs=3,
)
# The quick preset's stage 0 (--quick --stage0): toy sizes.
QUICK_STAGE0 = Stage0Config(data=dataclasses.replace(STAGE0_DATA, num_videos=8, width=32, height=32), epochs=1)
# Every variant from seeded random weights, trained until it stops improving (at most 16 epochs).
SCRATCH_CONFIG = ExperimentConfig()
# The default, as the paper: stage 0 (the stand-in for Kinetics), then TSP, TAC and TSP w/o GVF fine-tuned from its
# encoder (docs/experiment.md, "A pretrained start": why it is the default).
CPU_CONFIG = dataclasses.replace(SCRATCH_CONFIG, stage0=Stage0Config(), epochs=12)
# The context task (docs/experiment.md, "A task where video context matters"): the cpu preset's data with a
# decoy pattern in every background stretch; TSP with max GVF, with average GVF and without GVF.
# Instances of 1.5-3 s, so that the decoy is the pattern a video shows most (measured: context.py).
CONTEXT_CONFIG = dataclasses.replace(CPU_CONFIG, data=dataclasses.replace(CPU_DATA, decoy_background=True,
                                                                            max_action=3.0),
                                     variants=("tsp", "tsp_avg_gvf", "tsp_no_gvf"), length_edges=(2.25,))
PRESETS = {"cpu": CPU_CONFIG, "scratch": SCRATCH_CONFIG, "gpu": GPU_CONFIG, "quick": QUICK_CONFIG,
           "context": CONTEXT_CONFIG}


def _plain(value: Any) -> Any:
    """JSON-ready values: tuples as lists, at any depth."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def config_dict(config: ExperimentConfig) -> dict[str, Any]:
    """The configuration as JSON-ready values (tuples as lists, ``data`` as a nested mapping)."""
    return _plain(dataclasses.asdict(config))


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level with dotted keys (``data.num_videos``): each setting compared on its own."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def record_config(out: Path, config: ExperimentConfig) -> None:
    """Write ``OUT/config.json``; refuse to continue a run made with other settings (outputs would mix).

    Seeds, variants and the runtime fields may differ: a continuation may add seeds or variants, report fewer,
    or use other workers. Each seed's folder and each variant's training are seeded on their own, so what one
    computes does not depend on which others run (tested).
    """
    path = out / CONFIG_NAME
    current = config_dict(config)
    if path.is_file():
        previous = _flat(json.loads(path.read_text(encoding="utf-8")))
        differ = [k for k, v in _flat(current).items()
                  if k not in (*RUNTIME_FIELDS, *SELECTION_FIELDS) and previous.get(k) != v]
        if differ:
            raise TspVideoError(f"{out} holds an experiment with other settings ({', '.join(differ)}); "
                                "use another --out or delete it")
    save_json_atomic(path, current)
