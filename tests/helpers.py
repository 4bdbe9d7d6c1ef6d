"""Small stand-ins shared by several test files (pytest puts this folder on the import path)."""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tspvideo.commands.train import add_train_arguments, config_from_args
from tspvideo.datasets.segments import ACTION, NO_ACTION, Segment
from tspvideo.models.tsp import ModelConfig, TSPModel
from tspvideo.train import TrainConfig, train
from tspvideo.video.synthetic import read_frame_index


class ChannelMeanEncoder(torch.nn.Module):
    """A cheap deterministic encoder for any clip size: each clip's channel means through a fixed 3 -> 8 map."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:  # [B, 3, L, h, w] -> [B, 8]
        return clips.mean(dim=(2, 3, 4)) @ self.weight


class TinyEncoder(torch.nn.Module):
    """A cheap deterministic encoder: per-frame channel means (clips of up to 16 frames) through a fixed linear map."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.weight = torch.randn(3 * 16, 8, generator=generator)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:  # [B, 3, L, h, w] -> [B, 8]
        means = clips.mean(dim=(3, 4)).flatten(1)
        means = torch.nn.functional.pad(means, (0, 3 * 16 - means.shape[1]))
        return means @ self.weight


def table_segment(video: str, t_start: float, t_end: float, label: str | None, duration: float,
                  fps: float = 15.0) -> Segment:
    """A segment-table row of ``video.mp4`` (label None: background), as the importers write them."""
    return Segment(video, t_start, t_end, label, duration, f"{video}.mp4", fps, int(duration * fps),
                   ACTION if label else NO_ACTION)


# ----------------------------------------------------------------------------------------------------
# Videos: index videos of several frame timings, noise videos encoded for real, and cut copies
# ----------------------------------------------------------------------------------------------------

# ``write_index_video`` settings: three constant frame rates and a variable one.
INDEX_VIDEOS = {
    "cfr30": dict(num_frames=61, fps=30),
    "ntsc": dict(num_frames=50, fps=30000 / 1001),
    "25fps": dict(num_frames=40, fps=25),
    "vfr": dict(timestamps=[0, 0.03, 0.1, 0.12, 0.2, 0.33, 0.34, 0.5, 0.61, 0.7, 0.9, 1.0, 1.07, 1.3, 1.31, 1.5]),
}
CONSTANT_RATE_KINDS = [kind for kind in INDEX_VIDEOS if "timestamps" not in INDEX_VIDEOS[kind]]


def indices_shown(frames) -> list[tuple[int, int]]:
    """(sampled index, index of the source frame written in the picture) of each frame of an index video."""
    return [(j, read_frame_index(np.asarray(frame))) for j, frame in frames]


NOISE_SECONDS, NOISE_FPS = 10, 10  # what encode() writes: 100 frames


def encode(path: Path, container_format: str, codec: str, options: dict | None = None) -> Path:
    """NOISE_SECONDS of noise frames at NOISE_FPS, encoded for real (noise: the data, not the header, is most of
    the file)."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", format=container_format, options=options or {}) as container:
        stream = container.add_stream(codec, rate=NOISE_FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(NOISE_SECONDS * NOISE_FPS):
            image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def cut(path: Path, fraction: float) -> Path:
    """A copy of ``path`` with only its first ``fraction`` of bytes, as a partial download leaves it."""
    data = path.read_bytes()
    target = path.with_name(f"{path.stem}-cut{round(fraction * 100)}{path.suffix}")
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


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
