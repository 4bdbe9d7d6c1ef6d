"""Steps the demo, the experiment and the tests share, each through the library code a full run uses.

- :func:`prepare_dataset`: synthetic untrimmed videos (a :class:`SyntheticConfig`) and their train / valid
  segment tables, as a :class:`PreparedDataset`; :func:`prepare_synthetic_dataset` is its keyword form;
- :func:`initial_encoder`: the encoder GVFs come from and training starts from (given weights, or seeded
  random ones), and :func:`save_initial_encoder` to hand it to training as ``weights``;
- :func:`extract_folder`: features of a list of videos with a model, failing on the first failed video;
- :func:`dataset_train_config`: a :class:`~tspvideo.train.TrainConfig` on a prepared dataset.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from tspvideo.core.errors import TspVideoError
from tspvideo.datasets import annotations as ann
from tspvideo.datasets.segments import write_segment_table
from tspvideo.extract.options import ExtractOptions
from tspvideo.extract.run import ExtractionReport, extract_dataset
from tspvideo.models.encoder import RANDOM_INIT, Encoder
from tspvideo.models.tsp import TSPModel, create_model
from tspvideo.models.weights import (
    InputRecipe,
    default_recipe,
    load_backbone_weights,
    read_checkpoint,
    resolve_weights,
)
from tspvideo.train import TrainConfig, save_checkpoint
from tspvideo.video.synthetic import SyntheticConfig, generate_dataset

SPLITS = {"training": "train", "validation": "valid"}


@dataclass(frozen=True)
class PreparedDataset:
    """A synthetic dataset ready for training: what :func:`prepare_dataset` wrote."""

    root: Path
    videos: Path  # folder of <video>.mp4
    annotations: Path  # ActivityNet-style JSON
    label_map: Path  # JSON list of class names
    train: Path  # segment tables
    valid: Path

    def video_files(self) -> list[Path]:
        """Every video of the dataset, sorted by name."""
        return sorted(self.videos.glob("*.mp4"))

    def to_dict(self) -> dict[str, str]:
        """The paths as strings, keyed by field name (JSON-ready)."""
        return {field.name: str(getattr(self, field.name)) for field in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, paths: dict[str, str | Path]) -> PreparedDataset:
        """The dataset of :meth:`to_dict`'s mapping."""
        return cls(**{field.name: Path(paths[field.name]) for field in dataclasses.fields(cls)})


def prepare_dataset(out_dir: str | Path, config: SyntheticConfig, *, progress: bool = True) -> PreparedDataset:
    """Synthetic videos of ``config`` in ``out_dir`` and their annotations, label map and segment tables."""
    root = Path(out_dir)
    # generate_dataset takes the config's fields as keywords, its frame size as one (width, height) pair.
    options = dataclasses.asdict(config)
    size = (options.pop("width"), options.pop("height"))
    dataset = generate_dataset(root, size=size, progress=progress, **options)
    videos, problems = ann.read_activitynet_style_json(dataset.annotations_path, SPLITS)
    video_dir = root / "videos"
    metadata, metadata_problems = ann.metadata_from_videos(videos, [video_dir], workers=2, progress=False)
    result = ann.build_segment_tables(videos, metadata)
    fatal = [p for p in problems + metadata_problems + result.problems if p.fatal]
    if fatal:
        raise TspVideoError(f"synthetic annotations: {fatal[0].video}: {fatal[0].detail}")
    tables = {}
    for split in SPLITS.values():
        if split not in result.tables:
            raise TspVideoError(f"the synthetic dataset has no {split} videos; use more videos")
        tables[split] = root / f"{split}.csv"
        write_segment_table(result.tables[split], tables[split])
    return PreparedDataset(root=root, videos=video_dir, annotations=dataset.annotations_path,
                           label_map=dataset.label_map_path, **tables)


def prepare_synthetic_dataset(out_dir: str | Path, *, num_videos: int = 12, num_classes: int = 3,
                              video_size: tuple[int, int] = (64, 64), min_duration: float = 10.0,
                              max_duration: float = 14.0, seed: int = 0, progress: bool = True,
                              **generator) -> dict[str, Path]:
    """:func:`prepare_dataset` with the sizes as keywords (30 fps, at most 3 instances a video, unless
    ``generator`` says); ``video_size`` is (width, height), ``generator`` more :class:`SyntheticConfig` fields.

    Returns the paths: ``root``, ``videos``, ``annotations`` (ActivityNet-style JSON), ``label_map``,
    ``train`` and ``valid`` (segment tables).
    """
    config = SyntheticConfig(num_videos=num_videos, num_classes=num_classes, width=int(video_size[0]),
                             height=int(video_size[1]), min_duration=min_duration, max_duration=max_duration,
                             seed=seed, **{"max_instances": 3, **generator})
    dataset = prepare_dataset(out_dir, config, progress=progress)
    return {field.name: getattr(dataset, field.name) for field in dataclasses.fields(dataset)}


def check_weights(weights: str | None) -> None:
    """Read the initial ``weights`` once, so that a missing, undownloadable or unreadable file is said before a run
    makes its folder."""
    if weights:
        read_checkpoint(resolve_weights(weights)[0])


def initial_encoder(backbone: str, weights: str | None = None, seed: int = 0,
                    recipe: InputRecipe | None = None) -> Encoder:
    """The encoder the GVF comes from (and training starts from): ``weights``, or seeded random ones; its input
    is ``recipe`` (default: the backbone's)."""
    torch.manual_seed(seed)
    model = create_model(backbone, heads=("region",), gvf=None)
    if weights:
        info = load_backbone_weights(model, weights)
        name = info.name if info else weights
    else:
        name = RANDOM_INIT
    return Encoder(model.eval(), recipe or default_recipe(backbone), name)


def save_initial_encoder(path: str | Path, model: TSPModel) -> None:
    """The encoder as a model-only checkpoint that training's ``weights`` and extraction load."""
    save_checkpoint(Path(path), {"model": model.state_dict(), "model_config": model.config.to_dict(),
                                 "preprocessing": "tsp"})


def extract_folder(videos: list[Path], out_dir: Path, encoder: Encoder, options: ExtractOptions) -> ExtractionReport:
    """Features of ``videos`` into ``out_dir``; a failed video is an error (these datasets are generated)."""
    report = extract_dataset(videos, out_dir, encoder, options)
    if report.failed:
        raise TspVideoError(f"feature extraction failed for {len(report.failed)} video(s): "
                            f"{next(iter(report.failed.items()))}")
    return report


def dataset_train_config(data: PreparedDataset, out: str | Path, **options) -> TrainConfig:
    """A :class:`TrainConfig` on the tables, videos and label map of :func:`prepare_dataset`."""
    return TrainConfig(train_csv=data.train, valid_csv=data.valid, video_dir=data.videos,
                       label_map=data.label_map, out=out, **options)
