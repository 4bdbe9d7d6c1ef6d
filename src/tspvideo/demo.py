"""The whole TSP pipeline on a small synthetic dataset: the README's first command.

Steps, each through the library code a full run uses:

1. ``tspvideo.data.synthetic``: untrimmed videos whose action classes are motion patterns;
2. ``tspvideo.data.annotations``: the ActivityNet-style JSON -> train / valid segment tables;
3. GVF: clip features of every video from the *initial* encoder, max-pooled (the paper's first step);
4. ``tspvideo.train``: TSP training (both heads, GVF), validation and checkpoints every epoch;
5. ``tspvideo.extract``: features of every video with the trained encoder (``best.pth``);
6. a summary: accuracies per epoch and the files written.

Only the sizes are small (short clips, small frames, few epochs) so that it runs offline on two CPU cores
in a few minutes. Nothing is downloaded: without ``weights`` the encoder starts from random weights, so
the accuracies say that the pipeline works, not what TSP achieves.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from tspvideo.data.segments import read_segment_table, write_segment_table
from tspvideo.data.transforms import Preprocessing
from tspvideo.errors import TspVideoError

SPLITS = {"training": "train", "validation": "valid"}


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
    fps: float = 15.0
    clips_per_segment: int = 3
    resize: tuple[int, int] = (56, 75)
    crop: int = 48
    gvf_stride: int = 16  # the GVF pools over a video: every other clip is enough for the demo
    feature_stride: int | None = None  # stride of the final features; None: one feature per clip length
    epochs: int = 3
    batch_size: int = 8
    backbone_lr: float = 5e-4  # above the paper's 1e-4: from random weights; higher rates diverged here
    fc_lr: float = 2e-3
    warmup_epochs: float = 1.0
    milestones: tuple[float, ...] = ()
    workers: int = 1
    device: str = "auto"
    seed: int = 0
    progress: bool = True

    @property
    def preprocessing(self) -> Preprocessing:
        """The small input size of the demo (the paper's is 128x171 resized, 112x112 cropped)."""
        return Preprocessing(resize=tuple(self.resize), crop=(self.crop, self.crop))


def prepare_dataset(out_dir: str | Path, config: DemoConfig, generator: dict | None = None) -> dict[str, Path]:
    """Synthetic videos and their segment tables; returns the paths (videos, train/valid CSVs, label map).

    ``generator``: more ``generate_dataset`` options (frame rate, objects, motion ranges, motion style, ...).
    """
    from tspvideo.data import annotations as ann
    from tspvideo.data.synthetic import generate_dataset

    root = Path(out_dir)
    options = {"fps": 30.0, "max_instances": 3, **(generator or {})}
    dataset = generate_dataset(root, num_videos=config.num_videos, num_classes=config.num_classes,
                               size=config.video_size, seed=config.seed, min_duration=config.min_duration,
                               max_duration=config.max_duration, progress=config.progress, **options)
    videos, problems = ann.read_activitynet_style_json(dataset.annotations_path, SPLITS)
    video_dir = root / "videos"
    metadata, probe_problems = ann.metadata_from_probe(videos, [video_dir], workers=2, progress=False)
    result = ann.build_segment_tables(videos, metadata)
    fatal = [p for p in problems + probe_problems + result.problems if p.fatal]
    if fatal:
        raise TspVideoError(f"synthetic annotations: {fatal[0].video}: {fatal[0].detail}")
    paths = {"root": root, "videos": video_dir, "annotations": dataset.annotations_path,
             "label_map": dataset.label_map_path}
    for split in SPLITS.values():
        if split not in result.tables:
            raise TspVideoError(f"the synthetic dataset has no {split} videos; use more videos")
        paths[split] = root / f"{split}.csv"
        write_segment_table(result.tables[split], paths[split])
    return paths


def _initial_encoder(config: DemoConfig):
    """The encoder the GVF comes from (and training starts from): given weights, or seeded random ones."""
    from tspvideo.models.tsp import create_model
    from tspvideo.models.weights import load_backbone_weights

    torch.manual_seed(config.seed)
    model = create_model(config.backbone, heads=("region",), gvf=None)
    if config.weights:
        info = load_backbone_weights(model, config.weights)
        name = info.name if info else config.weights
    else:
        name = "random-init"
    return model.eval(), {"weights": name, "model_config": model.config.to_dict()}


def _extract(videos: list[Path], out_dir: Path, model, description: dict, config: DemoConfig, device: str,
             stride: int):
    from tspvideo.extract import ClipSettings, extract_dataset

    settings = ClipSettings(clip_len=config.clip_len, fps=config.fps, stride=stride)
    # Every demo run rebuilds its data and retrains, so features of an earlier run are replaced, not resumed.
    report = extract_dataset(videos, out_dir, model, description, settings, batch_size=16, device=device,
                             num_workers=config.workers, prep=config.preprocessing, progress=config.progress,
                             overwrite=True)
    if report.failed:
        raise TspVideoError(f"feature extraction failed for {len(report.failed)} video(s): "
                            f"{next(iter(report.failed.values()))}")
    return report


def train_arguments(paths: dict[str, Path], run_dir: Path, gvf_path: Path, config: DemoConfig,
                    initial_weights: Path | None) -> argparse.Namespace:
    """The ``tspvideo train`` arguments of the demo, parsed by the real parser."""
    from tspvideo.train import add_train_arguments

    parser = argparse.ArgumentParser(prog="tspvideo train")
    add_train_arguments(parser)
    argv = [
        "--train-csv", str(paths["train"]), "--valid-csv", str(paths["valid"]), "--video-dir", str(paths["videos"]),
        "--label-map", str(paths["label_map"]), "--gvf", str(gvf_path), "--out", str(run_dir),
        "--backbone", config.backbone, "--weights", str(initial_weights) if initial_weights else "none",
        "--clip-len", str(config.clip_len), "--fps", str(config.fps),
        "--clips-per-segment", str(config.clips_per_segment),
        "--resize", *map(str, config.resize), "--crop", str(config.crop),
        "--epochs", str(config.epochs), "--batch-size", str(config.batch_size),
        "--backbone-lr", str(config.backbone_lr), "--fc-lr", str(config.fc_lr),
        "--lr-warmup-epochs", str(config.warmup_epochs), "--lr-milestones", *map(str, config.milestones),
        "--no-freeze-stem",  # a random stem is worth training; the original freezes a pretrained one
        "--workers", str(config.workers), "--device", config.device, "--seed", str(config.seed),
    ]
    if not config.progress:
        argv.append("--no-progress")
    return parser.parse_args(argv)


def run_demo(out_dir: str | Path, config: DemoConfig = DemoConfig()) -> dict:
    """Run every step into ``out_dir`` and print a summary; returns it as a dict."""
    from tspvideo import train
    from tspvideo.distributed import resolve_device
    from tspvideo.fileio import save_json_atomic
    from tspvideo.gvf import write_gvf
    from tspvideo.models.weights import load_model

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = str(resolve_device(config.device))
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def step(name: str, message: str) -> None:
        timings[name] = time.perf_counter()
        print(f"\n== {message}", flush=True)

    def done(name: str) -> None:
        timings[name] = time.perf_counter() - timings[name]

    step("data", f"1/5 synthetic dataset: {config.num_videos} videos, {config.num_classes} classes -> {out / 'data'}")
    paths = prepare_dataset(out / "data", config)
    for split in ("train", "valid"):
        segments = read_segment_table(paths[split])
        print(f"   {split}: {len({s.video_name for s in segments})} videos, "
              f"{sum(s.is_action for s in segments)} action + {sum(not s.is_action for s in segments)} background "
              f"segments -> {paths[split]}")
    done("data")

    step("gvf", f"2/5 global video features from the initial encoder ({config.weights or 'random weights'})")
    if not config.weights:
        print("   no download here: the initial encoder is randomly initialised (pass --weights for Kinetics ones)")
    encoder, description = _initial_encoder(config)
    initial_path = out / "initial_encoder.pth"
    train.save_checkpoint(initial_path, {"model": encoder.state_dict(), "model_config": encoder.config.to_dict(),
                                         "preprocessing": "tsp"})
    videos = sorted(paths["videos"].glob("*.mp4"))
    _extract(videos, out / "gvf_features", encoder, description, config, device, config.gvf_stride)
    gvf_path = out / "gvf.h5"
    count = write_gvf(out / "gvf_features", gvf_path, "max", [v.stem for v in videos])
    print(f"   {count} videos, max-pooled -> {gvf_path}")
    done("gvf")

    step("train", f"3/5 TSP training: {config.backbone}, {config.epochs} epochs, clips of {config.clip_len} frames "
                  f"at {config.crop}x{config.crop}")
    run_dir = out / "run"
    args = train_arguments(paths, run_dir, gvf_path, config, initial_path)
    result = train.main(args)
    done("train")

    step("extract", "4/5 features of every video with the trained encoder (run/best.pth)")
    model, model_description = load_model(str(run_dir / train.BEST_NAME))
    report = _extract(videos, out / "features", model, model_description, config, device,
                      config.feature_stride or config.clip_len)
    print(f"   {len(report.written) + len(report.skipped)} videos -> {out / 'features'} "
          f"({report.clips} clips, {report.clips / max(report.seconds, 1e-9):.1f} clips/s)")
    done("extract")

    _drop_resume_state(run_dir / train.CHECKPOINT_NAME)
    step("summary", "5/5 summary")
    total = time.perf_counter() - started
    summary = {"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()},
               "epochs": result["metrics"], "best_epoch": result["best"]["epoch"] + 1,
               "best": {k: v for k, v in result["best"].items() if k.startswith("valid_acc")},
               "seconds": {k: round(v, 1) for k, v in timings.items() if k != "summary"} | {"total": round(total, 1)},
               "files": _files(out, paths, gvf_path, run_dir), "run_dir": str(run_dir)}
    save_json_atomic(out / "summary.json", summary)
    print(format_summary(summary))
    return summary


# What only resuming a run needs; the demo's run is finished, and the optimizer's momentum alone is as
# large as the model (~125 MB for R(2+1)D-18).
RESUME_ONLY_KEYS = ("optimizer", "lr_scheduler", "scaler", "rng")


def _drop_resume_state(path: Path) -> None:
    """Rewrite the finished run's last checkpoint without its resume-only state (the model stays)."""
    from tspvideo.train import save_checkpoint

    checkpoint = torch.load(path, map_location="cpu", weights_only=False)  # written by this run just now
    for key in RESUME_ONLY_KEYS:
        checkpoint.pop(key, None)
    save_checkpoint(path, checkpoint)


def _files(out: Path, paths: dict[str, Path], gvf_path: Path, run_dir: Path) -> dict[str, str]:
    files = {
        "videos": f"{paths['videos']}/ ({len(list(paths['videos'].glob('*.mp4')))} mp4)",
        "segment tables": f"{paths['train']}, {paths['valid']}",
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
