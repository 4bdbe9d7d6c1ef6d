"""The whole TSP pipeline on a small synthetic dataset: the README's first command.

Steps, each through the library code a full run uses:

1. ``tspvideo.video.synthetic``: untrimmed videos whose action classes are motion patterns;
2. ``tspvideo.datasets.annotations``: the ActivityNet-style JSON -> train / valid segment tables;
3. GVF: clip features of every video from the *initial* encoder, max-pooled (the paper's first step);
4. ``tspvideo.train.train(TrainConfig(...))``: TSP training (both heads, GVF), validation and checkpoints every epoch;
5. ``tspvideo.extract.run``: features of every video with the trained encoder (``best.pth``);
6. a summary: accuracies per epoch and the files written.

Only the sizes are small (short clips, small frames, few epochs) so that it runs offline on two CPU cores
in a few minutes. Nothing is downloaded: without ``weights`` the encoder starts from random weights, so
the accuracies say that the pipeline works, not what TSP achieves.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from tspvideo.core.devices import resolve_device
from tspvideo.core.errors import TspVideoError
from tspvideo.core.fileio import check_folder_writable, save_json_atomic
from tspvideo.core.grid import DEFAULT_FPS, ClipGrid
from tspvideo.datasets.segments import read_segment_table
from tspvideo.datasets.transforms import Preprocessing
from tspvideo.extract.options import ExtractOptions
from tspvideo.features.gvf import write_gvf
from tspvideo.models.backbones import backbone_spec
from tspvideo.models.encoder import Encoder, load_encoder
from tspvideo.models.weights import InputRecipe
from tspvideo.runs.steps import (
    PreparedDataset,
    check_weights,
    dataset_train_config,
    extract_folder,
    initial_encoder,
    prepare_dataset,
    save_initial_encoder,
)
from tspvideo.train import BEST_NAME, CHECKPOINT_NAME, TrainConfig, train
from tspvideo.train.checkpoint import drop_resume_state
from tspvideo.video.synthetic import SyntheticConfig


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo; the defaults take a few minutes on 2 CPU cores."""

    num_videos: int = 12
    num_classes: int = 3
    video_size: tuple[int, int] = (64, 64)  # width, height of the synthetic videos
    min_duration: float = 10.0
    max_duration: float = 14.0
    backbone: str = "r2plus1d_18"
    weights: str | None = None  # initial backbone weights; None: random
    clip_len: int = 8
    fps: float = DEFAULT_FPS
    clips_per_segment: int = 3
    resize: tuple[int, int] = (56, 75)
    crop: int = 48
    gvf_stride: int = 16  # the GVF pools over a video: every other clip is enough for the demo
    feature_stride: int | None = None  # stride of the final features; None: one feature per clip length
    epochs: int = 3
    batch_size: int = 8
    backbone_lr: float = 5e-4  # above the paper's 1e-4: from random weights; higher rates diverged here
    fc_lr: float = 2e-3
    lr_warmup_epochs: float = 1.0
    lr_milestones: tuple[float, ...] = ()
    workers: int = 1
    device: str = "auto"
    seed: int = 0
    progress: bool = True

    def validate(self) -> None:
        """Raise :class:`TspVideoError` for sizes that cannot work, before anything is written."""
        self.data.validate()  # the dataset's sizes and the seed
        if self.epochs < 1:
            raise TspVideoError(f"--epochs must be at least 1, got {self.epochs}")
        backbone_spec(self.backbone)  # an unknown name stops here, not after the dataset is made

    @property
    def data(self) -> SyntheticConfig:
        """The synthetic dataset of the demo's sizes (30 fps, at most 3 instances a video), seeded by ``seed``."""
        return SyntheticConfig(num_videos=self.num_videos, num_classes=self.num_classes, width=self.video_size[0],
                               height=self.video_size[1], min_duration=self.min_duration,
                               max_duration=self.max_duration, seed=self.seed, max_instances=3)

    @property
    def preprocessing(self) -> Preprocessing:
        """The small input size of the demo (the paper's is 128x171 resized, 112x112 cropped)."""
        return Preprocessing(resize=tuple(self.resize), crop=(self.crop, self.crop))


def train_config(data: PreparedDataset, run_dir: Path, gvf_path: Path, config: DemoConfig,
                 initial_weights: Path | None) -> TrainConfig:
    """The demo's training run: TSP with both heads and the GVF, at the demo's sizes."""
    return dataset_train_config(
        data, run_dir, gvf=gvf_path, backbone=config.backbone,
        weights=str(initial_weights) if initial_weights else "none", clip_len=config.clip_len, fps=config.fps,
        clips_per_segment=config.clips_per_segment, resize=list(config.resize), crop=config.crop,
        epochs=config.epochs, batch_size=config.batch_size, backbone_lr=config.backbone_lr, fc_lr=config.fc_lr,
        lr_warmup_epochs=config.lr_warmup_epochs, lr_milestones=list(config.lr_milestones),
        freeze_stem=False,  # a random stem is worth training; the original freezes a pretrained one
        workers=config.workers, device=config.device, seed=config.seed, no_progress=not config.progress,
        overwrite=True)  # every demo run rebuilds its data and retrains: an earlier run's training is replaced


def _extract(videos: list[Path], out_dir: Path, encoder: Encoder, config: DemoConfig, device: str, stride: int):
    # Every demo run rebuilds its data and retrains, so features of an earlier run are replaced, not resumed.
    grid = ClipGrid(clip_len=config.clip_len, fps=config.fps, stride=stride)
    return extract_folder(videos, out_dir, encoder,
                          ExtractOptions.for_grid(grid, device=device, workers=config.workers, batch_size=16,
                                                  amp="fp32", progress=config.progress, overwrite=True))


def run_demo(out_dir: str | Path, config: DemoConfig = DemoConfig()) -> dict:
    """Run every step into ``out_dir`` and print a summary; returns it as a dict."""
    config.validate()
    device = resolve_device(config.device)
    out = Path(out_dir)
    check_weights(config.weights)
    check_folder_writable(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def step(name: str, message: str) -> None:
        timings[name] = time.perf_counter()
        print(f"\n== {message}", flush=True)

    def done(name: str) -> None:
        timings[name] = time.perf_counter() - timings[name]

    step("data", f"1/5 synthetic dataset: {config.num_videos} videos, {config.num_classes} classes -> {out / 'data'}")
    data = prepare_dataset(out / "data", config.data, progress=config.progress)
    for split, table in (("train", data.train), ("valid", data.valid)):
        segments = read_segment_table(table)
        print(f"   {split}: {len({s.video_name for s in segments})} videos, "
              f"{sum(s.is_action for s in segments)} action + {sum(not s.is_action for s in segments)} background "
              f"segments -> {table}")
    done("data")

    step("gvf", f"2/5 global video features from the initial encoder ({config.weights or 'random weights'})")
    if not config.weights:
        print("   no download here: the initial encoder is randomly initialised (pass --weights for Kinetics ones)")
    recipe = InputRecipe.of(config.backbone, config.clip_len, config.fps, config.preprocessing)
    encoder = initial_encoder(config.backbone, config.weights, config.seed, recipe)
    initial_path = out / "initial_encoder.pth"
    save_initial_encoder(initial_path, encoder.model)
    videos = data.video_files()
    _extract(videos, out / "gvf_features", encoder, config, device, config.gvf_stride)
    gvf_path = out / "gvf.h5"
    count = write_gvf(out / "gvf_features", gvf_path, "max", [v.stem for v in videos])
    print(f"   {count} videos, max-pooled -> {gvf_path}")
    done("gvf")

    step("train", f"3/5 TSP training: {config.backbone}, {config.epochs} epochs, clips of {config.clip_len} frames "
                  f"at {config.crop}x{config.crop}")
    run_dir = out / "run"
    result = train(train_config(data, run_dir, gvf_path, config, initial_path))
    done("train")

    step("extract", "4/5 features of every video with the trained encoder (run/best.pth)")
    report = _extract(videos, out / "features", load_encoder(run_dir / BEST_NAME), config, device,
                      config.feature_stride or config.clip_len)
    print(f"   {len(report.written) + len(report.skipped)} videos -> {out / 'features'} "
          f"({report.clips} clips, {report.clips / max(report.seconds, 1e-9):.1f} clips/s)")
    done("extract")

    drop_resume_state(run_dir / CHECKPOINT_NAME)
    step("summary", "5/5 summary")
    total = time.perf_counter() - started
    summary = {"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()},
               "epochs": result["metrics"], "best_epoch": result["best"]["epoch"] + 1,
               "best": {k: v for k, v in result["best"].items() if k.startswith("valid_acc")},
               "seconds": {k: round(v, 1) for k, v in timings.items() if k != "summary"} | {"total": round(total, 1)},
               "files": _files(out, data, gvf_path, run_dir), "run_dir": str(run_dir)}
    save_json_atomic(out / "summary.json", summary)
    print(format_summary(summary))
    return summary


def _files(out: Path, data: PreparedDataset, gvf_path: Path, run_dir: Path) -> dict[str, str]:
    files = {
        "videos": f"{data.videos}/ ({len(data.video_files())} mp4)",
        "segment tables": f"{data.train}, {data.valid}",
        "GVF (initial encoder)": str(gvf_path),
        "checkpoints": f"{run_dir / 'best.pth'} (extract), {run_dir / 'checkpoint.pth'} (last epoch; the "
                       "optimizer state is dropped at the end of the demo to save disk space)",
        "metrics": f"{run_dir / 'metrics.csv'}, {run_dir / 'train.log'}",
        "features": f"{out / 'features'}/ ({len(list((out / 'features').glob('*.npy')))} .npy + .json sidecars)",
        "summary": str(out / "summary.json"),
    }
    return files


def _cell(value) -> str:
    try:
        return f"{float(value):.3f}"
    except (TypeError, ValueError):
        return "-"


def format_summary(summary: dict) -> str:
    """The summary as plain-text tables."""
    lines = ["", "epoch  train loss  valid acc action  valid acc region  valid acc mean"]
    for row in summary["epochs"]:
        lines.append(f"{int(row['epoch']):>5}  {_cell(row.get('train_loss')):>10}  "
                     f"{_cell(row.get('valid_acc_action')):>16}  {_cell(row.get('valid_acc_region')):>16}  "
                     f"{_cell(row.get('valid_acc_mean')):>14}")
    lines.append(f"best epoch: {summary['best_epoch']} (chosen on the mean of the two heads' clip accuracies)")
    if summary["config"].get("weights") is None:
        lines.append("note: random initial weights and a few epochs: the numbers show the pipeline runs, not TSP's "
                     "accuracy")
    lines.append("")
    width = max(len(k) for k in summary["files"])
    lines += [f"{name:<{width}}  {path}" for name, path in summary["files"].items()]
    seconds = summary["seconds"]
    lines.append("")
    lines.append("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()))
    lines.append(f"next: tspvideo extract VIDEOS --checkpoint {summary['run_dir']}/best.pth --out FEATURES")
    return "\n".join(lines)
