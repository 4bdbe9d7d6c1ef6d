"""Clip preprocessing: the original's exact path (the released checkpoints were trained on it).

Reference order, per clip: uint8 RGB -> float in [0, 1] -> bilinear resize to 128x171 with
``torch.nn.functional.interpolate`` (no antialiasing, ``align_corners=False``) -> normalize with the
Kinetics mean/std -> crop 112x112 (random + horizontal flip in training, centre otherwise).
Every step acts on each frame alone, so transforming frames one chunk at a time gives the same result
as transforming the whole clip, which is what streaming extraction relies on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Preprocessing:
    """Sizes and normalisation of one preprocessing recipe."""

    resize: tuple[int, int] = (128, 171)
    crop: tuple[int, int] = (112, 112)
    mean: tuple[float, float, float] = (0.43216, 0.394666, 0.37645)
    std: tuple[float, float, float] = (0.22803, 0.22145, 0.216989)

    def to_dict(self) -> dict:
        """JSON-friendly form (for sidecars)."""
        return asdict(self)


PREPROCESSING = {"tsp": Preprocessing()}


def to_float(frames: torch.Tensor) -> torch.Tensor:
    """``[T, H, W, 3]`` uint8 -> ``[T, 3, H, W]`` float32 in [0, 1]."""
    return frames.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)


def resize(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``[T, 3, H, W]`` frames, exactly as the original (no antialias)."""
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    return F.interpolate(frames, size=size, mode="bilinear", align_corners=False)


def normalize(frames: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Per-channel ``(x - mean) / std`` on ``[T, 3, H, W]``."""
    mean_t = torch.tensor(mean, dtype=frames.dtype, device=frames.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=frames.dtype, device=frames.device).view(1, 3, 1, 1)
    return (frames - mean_t) / std_t


def center_crop_box(height: int, width: int, crop: tuple[int, int]) -> tuple[int, int]:
    """Top-left corner of the centre crop (the rounding torchvision's centre crop uses)."""
    return int(round((height - crop[0]) / 2.0)), int(round((width - crop[1]) / 2.0))


def crop(frames: torch.Tensor, top: int, left: int, size: tuple[int, int]) -> torch.Tensor:
    """Crop ``[..., H, W]`` to ``size`` at ``(top, left)``."""
    return frames[..., top:top + size[0], left:left + size[1]]


def preprocess_frames(frames: torch.Tensor, prep: Preprocessing = PREPROCESSING["tsp"]) -> torch.Tensor:
    """Evaluation transform of uint8 ``[T, H, W, 3]`` frames -> float ``[T, 3, 112, 112]`` (centre crop)."""
    x = normalize(resize(to_float(frames), prep.resize), prep.mean, prep.std)
    top, left = center_crop_box(x.shape[-2], x.shape[-1], prep.crop)
    return crop(x, top, left, prep.crop)


def preprocess_clip(frames: torch.Tensor, prep: Preprocessing = PREPROCESSING["tsp"], train: bool = False,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` clip -> float ``[3, T, h, w]``: random crop + flip when ``train``."""
    x = normalize(resize(to_float(frames), prep.resize), prep.mean, prep.std)
    height, width = x.shape[-2:]
    if train:
        top = int(torch.randint(0, height - prep.crop[0] + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - prep.crop[1] + 1, (1,), generator=generator))
        x = crop(x, top, left, prep.crop)
        if float(torch.rand(1, generator=generator)) < 0.5:
            x = x.flip(-1)
    else:
        top, left = center_crop_box(height, width, prep.crop)
        x = crop(x, top, left, prep.crop)
    return x.permute(1, 0, 2, 3).contiguous()
