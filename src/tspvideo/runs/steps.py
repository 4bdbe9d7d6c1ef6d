"""Steps the demo, the experiment and the tests share, each through the library code a full run uses.

- :func:`prepare_synthetic_dataset`: synthetic untrimmed videos and their train / valid segment tables;
- :func:`initial_encoder`: the encoder GVFs come from and training starts from (given weights, or seeded
  random ones), and :func:`save_initial_encoder` to hand it to training as ``weights``;
- :func:`extract_folder`: features of a list of videos with a model, failing on the first failed video;
- :func:`dataset_train_config`: a :class:`~tspvideo.train.TrainConfig` on a prepared dataset.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tspvideo.datasets import annotations as ann
from tspvideo.datasets.segments import write_segment_table
from tspvideo.datasets.transforms import Preprocessing
from tspvideo.core.errors import TspVideoError
from tspvideo.extract.run import ClipSettings, ExtractionReport, extract_dataset
from tspvideo.models.tsp import TSPModel, create_model
from tspvideo.models.weights import load_backbone_weights
from tspvideo.train import TrainConfig, save_checkpoint
from tspvideo.video.synthetic import generate_dataset

SPLITS = {"training": "train", "validation": "valid"}


def prepare_synthetic_dataset(out_dir: str | Path, *, num_videos: int = 12, num_classes: int = 3,
                              video_size: tuple[int, int] = (64, 64), min_duration: float = 10.0,
                              max_duration: float = 14.0, seed: int = 0, progress: bool = True,
                              **generator) -> dict[str, Path]:
    """Synthetic videos (30 fps unless ``generator`` says, ``video_size`` = width, height) and their segment tables.

    ``generator``: more ``generate_dataset`` options (frame rate, objects, motion ranges, motion style, ...).

    Returns the paths: ``root``, ``videos``, ``annotations`` (ActivityNet-style JSON), ``label_map``,
    ``train`` and ``valid`` (segment tables).
    """
    root = Path(out_dir)
    options = {"fps": 30.0, "max_instances": 3, **generator}
    dataset = generate_dataset(root, num_videos=num_videos, num_classes=num_classes, size=video_size, seed=seed,
                               min_duration=min_duration, max_duration=max_duration, progress=progress, **options)
    videos, problems = ann.read_activitynet_style_json(dataset.annotations_path, SPLITS)
    video_dir = root / "videos"
    metadata, metadata_problems = ann.metadata_from_videos(videos, [video_dir], workers=2, progress=False)
    result = ann.build_segment_tables(videos, metadata)
    fatal = [p for p in problems + metadata_problems + result.problems if p.fatal]
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


def initial_encoder(backbone: str, weights: str | None = None, seed: int = 0) -> tuple[TSPModel, dict]:
    """The encoder the GVF comes from (and training starts from): ``weights``, or seeded random ones.

    Returns the model (in eval mode) and its description for feature sidecars.
    """
    torch.manual_seed(seed)
    model = create_model(backbone, heads=("region",), gvf=None)
    if weights:
        info = load_backbone_weights(model, weights)
        name = info.name if info else weights
    else:
        name = "random-init"
    return model.eval(), {"weights": name, "model_config": model.config.to_dict()}


def save_initial_encoder(path: str | Path, model: TSPModel) -> None:
    """The encoder as a model-only checkpoint that training's ``weights`` and extraction load."""
    save_checkpoint(Path(path), {"model": model.state_dict(), "model_config": model.config.to_dict(),
                                 "preprocessing": "tsp"})


def extract_folder(videos: list[Path], out_dir: Path, model: torch.nn.Module, description: dict, *,
                   settings: ClipSettings, prep: Preprocessing, device: str, workers: int = 0,
                   batch_size: int = 16, progress: bool = True, overwrite: bool = False) -> ExtractionReport:
    """Features of ``videos`` into ``out_dir``; a failed video is an error (these datasets are generated)."""
    report = extract_dataset(videos, out_dir, model, description, settings, batch_size=batch_size, device=device,
                             num_workers=workers, prep=prep, progress=progress, overwrite=overwrite)
    if report.failed:
        raise TspVideoError(f"feature extraction failed for {len(report.failed)} video(s): "
                            f"{next(iter(report.failed.items()))}")
    return report


def dataset_train_config(paths: dict[str, Path], out: str | Path, **options) -> TrainConfig:
    """A :class:`TrainConfig` on the tables, videos and label map of :func:`prepare_synthetic_dataset`."""
    return TrainConfig(train_csv=paths["train"], valid_csv=paths["valid"], video_dir=paths["videos"],
                       label_map=paths["label_map"], out=out, **options)
