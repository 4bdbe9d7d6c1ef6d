"""``TrainConfig``: every option of a training run, typed, with the defaults written once.

Options a training recipe sets (``tspvideo.train.recipes``: learning rates, heads, epochs, ...) default to
``None``, "the recipe's value, else the original code's" (:data:`tspvideo.train.recipes.DEFAULTS`); the clip
grid and frame sizes left ``None`` come from the backbone's input recipe (``tspvideo models``). Every
other option holds its default here. ``tspvideo train``'s flags are these fields, one flag per field
(``--clip-len`` sets ``clip_len``), so a new option is a field here and a flag in
``tspvideo.commands.train``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from tspvideo.core.grid import DEFAULT_SAMPLING


@dataclass(kw_only=True)
class TrainConfig:
    """One training run (TSP, TAC or an ablation), as ``tspvideo train`` takes it on the command line."""

    # data
    train_csv: str | Path
    video_dir: str | Path
    out: str | Path  # run folder: checkpoints, metrics.csv, train.log
    valid_csv: str | Path | None = None  # None: no validation, best = last epoch
    label_map: str | Path | None = None  # JSON list of classes, or activitynet / thumos14
    gvf: str | Path | None = None  # HDF5 of global video features (from `tspvideo gvf`)
    clip_len: int | None = None
    fps: float | None = None
    sampling: str = DEFAULT_SAMPLING
    clips_per_segment: int | None = None
    resize: list[int] | None = None  # [H, W] or [S] (short side)
    crop: int | None = None
    workers: int | None = None  # loader processes; None: tspvideo.core.cores.default_loader_workers()
    decode_threads: int = 1
    frame_cache_mb: int = 0  # per loader worker: keep decoded videos in memory (small frames); 0: read each clip
    frame_cache_dir: str | Path | None = None  # decoded videos as .npy files, mapped by every worker (shared)
    preprocess_on: str = "auto"  # where clips are resized, cropped and normalised: workers, device (auto: CUDA)
    no_balance: bool = False
    # recipe
    recipe: str | None = None
    downscale_factor: int | None = None
    # model
    backbone: str | None = None
    weights: str | None = None  # auto, a registered name, URL or file, or none
    heads: list[str] | None = None
    no_gvf: bool | None = None
    gvf_pool: str | None = None  # None: the GVF file's 'pool' attribute, else max
    region_only_gvf: bool | None = None
    tac_clips: str | None = None
    alpha_action: float | None = None
    alpha_region: float | None = None
    action_loss_norm: str | None = None
    freeze_stem: bool | None = None
    sync_bn: bool = False
    bn_momentum: float | None = None  # running statistics' momentum; None: each architecture's own
    grad_checkpointing: bool = False
    # ViT encoders (VideoMAE, V-JEPA 2) only; None: the ViT fine-tuning values (tspvideo.train.recipes.VIT_VALUES)
    layer_decay: float | None = None  # block i of L learns at backbone_lr * layer_decay ** (L - i)
    drop_path: float | None = None  # stochastic depth at the last block (rising linearly from 0 at the first)
    train_blocks: int | None = None  # train only the last N blocks (and the final norms); None: every block
    # optimisation (learning rates per process, multiplied by the number of processes)
    epochs: int | None = None
    batch_size: int | None = None
    backbone_lr: float | None = None
    fc_lr: float | None = None
    optimizer: str | None = None  # sgd (the original's) or adamw
    momentum: float | None = None
    weight_decay: float | None = None
    lr_warmup_epochs: float | None = None
    lr_milestones: list[float] | None = None
    lr_gamma: float | None = None
    # Stop when the validation mean accuracy has not improved for this many epochs; None: run every epoch.
    early_stop_patience: int | None = None
    # run
    resume: str | None = None  # "auto": OUT/checkpoint.pth, or a checkpoint's path
    overwrite: bool = False  # an `out` holding a run is replaced (its own files removed first), not refused
    seed: int = 0
    device: str = "auto"
    amp: str | None = None  # bf16 / fp16 autocast; None: float32
    channels_last: bool = False
    no_progress: bool = False
    keep_epochs: bool = False  # also save every epoch's model as epoch_<N>.pth (e.g. to compare at equal accuracy)

    def to_dict(self) -> dict:
        """Plain values (paths as strings, tuples as lists): what a checkpoint stores as ``args``."""
        plain = {}
        for key, value in dataclasses.asdict(self).items():
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            plain[key] = value
        return plain


def config_fields() -> list[str]:
    """Names of every :class:`TrainConfig` field (the ``dest`` of every ``tspvideo train`` flag)."""
    return [f.name for f in dataclasses.fields(TrainConfig)]


def field_default(name: str):
    """The default of one :class:`TrainConfig` field (for a flag's ``default``: written once, here)."""
    field = TrainConfig.__dataclass_fields__[name]
    return field.default
