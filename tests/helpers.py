"""Small stand-ins shared by several test files (pytest puts this folder on the import path)."""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn

from tspvideo.commands.train import add_train_arguments, config_from_args
from tspvideo.datasets.segments import ACTION, NO_ACTION, Segment
from tspvideo.models.tsp import ModelConfig, TSPModel
from tspvideo.train import TrainConfig, train


class ChannelMeanEncoder(torch.nn.Module):
    """A cheap deterministic encoder for any clip size: each clip's channel means through a fixed 3 -> 8 map."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:  # [B, 3, L, h, w] -> [B, 8]
        return clips.mean(dim=(2, 3, 4)) @ self.weight


def table_segment(video: str, t_start: float, t_end: float, label: str | None, duration: float,
                  fps: float = 15.0) -> Segment:
    """A segment-table row of ``video.mp4`` (label None: background), as the importers write them."""
    return Segment(video, t_start, t_end, label, duration, f"{video}.mp4", fps, int(duration * fps),
                   ACTION if label else NO_ACTION)


# ----------------------------------------------------------------------------------------------------
# Training: a tiny model and the tiny run of the `data` fixture (conftest.py)
# ----------------------------------------------------------------------------------------------------


class TinyFeatures(nn.Module):
    """A BatchNorm-free stand-in for the backbone (fast on CPU, and batch-size independent for DDP tests)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv3d(3, 4, kernel_size=3, stride=(1, 2, 2), padding=1)
        self.layer1 = nn.Conv3d(4, 8, kernel_size=3, stride=2, padding=1)
        self.proj = nn.Linear(8, 512)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.layer1(F.relu(self.stem(x))))
        return self.proj(x.mean(dim=(2, 3, 4)))


def tiny_create_model(backbone: str, num_classes: int = 0, heads=("action", "region"), gvf="max") -> TSPModel:
    """``create_model`` with the backbone swapped for :class:`TinyFeatures` (same heads and names)."""
    model = TSPModel(ModelConfig(backbone=backbone, num_classes=num_classes, heads=tuple(heads), gvf=gvf))
    model.features = TinyFeatures()
    return model


def tiny_train(config: TrainConfig) -> dict:
    """``train(config)`` with the tiny model: a whole run in seconds on the CPU."""
    return train(config, create_model=tiny_create_model)


def train_argv(data, out, *extra: str) -> list[str]:
    """``tspvideo train`` flags of a tiny run on the ``data`` fixture, into ``out``."""
    return ["--train-csv", str(data["train"]), "--valid-csv", str(data["valid"]), "--video-dir", str(data["videos"]),
            "--label-map", str(data["label_map"]), "--gvf", str(data["gvf"]), "--out", str(out),
            "--backbone", "r2plus1d_18", "--weights", "none", "--clip-len", "4", "--clips-per-segment", "2",
            "--resize", "24", "32", "--crop", "16", "--batch-size", "4", "--workers", "0", "--device", "cpu",
            "--no-progress", *extra]


def train_config(data, out, **options) -> TrainConfig:
    """The tiny run of :func:`train_argv` as a config (what a notebook or the demo passes to ``train``)."""
    base = {"train_csv": data["train"], "valid_csv": data["valid"], "video_dir": data["videos"],
            "label_map": data["label_map"], "gvf": data["gvf"], "out": out, "backbone": "r2plus1d_18",
            "weights": "none", "clip_len": 4, "clips_per_segment": 2, "resize": [24, 32], "crop": 16,
            "batch_size": 4, "workers": 0, "device": "cpu", "no_progress": True}
    return TrainConfig(**{**base, **options})


def parse(argv: list[str]) -> TrainConfig:
    """``tspvideo train`` flags -> the config the command passes to ``train``."""
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    return config_from_args(parser.parse_args(argv))
