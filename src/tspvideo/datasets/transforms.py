"""Clip preprocessing: the original's exact path (the released checkpoints were trained on it).

Reference order, per clip: uint8 RGB -> float in [0, 1] -> bilinear resize to 128x171 with
``torch.nn.functional.interpolate`` (no antialiasing, ``align_corners=False``) -> normalize with the
Kinetics mean/std -> crop 112x112 (random + horizontal flip in training, centre otherwise).
Every step acts on each frame alone, so transforming frames one chunk at a time gives the same result
as transforming the whole clip, which is what streaming extraction relies on.

Other backbones' recipes (torchvision's Kinetics weights) use the same steps with their own sizes and
normalisation; a one-value ``resize`` is torchvision's "short side to this, keep the aspect ratio".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Preprocessing:
    """Sizes and normalisation of one preprocessing recipe.

    ``resize`` is ``(H, W)``, or ``(S,)`` to resize the short side to S keeping the aspect ratio.
    ``hf_processor``: resize and crop as ``transformers``' image processors do (the ViT checkpoints' rule): the
    bilinear resize averages what it shrinks (antialiasing) and the centre crop's corner is rounded down; off,
    the original's plain bilinear sampling and torchvision's rounded centre.
    """

    resize: tuple[int, ...] = (128, 171)
    crop: tuple[int, int] = (112, 112)
    mean: tuple[float, float, float] = (0.43216, 0.394666, 0.37645)
    std: tuple[float, float, float] = (0.22803, 0.22145, 0.216989)
    hf_processor: bool = False

    def to_dict(self) -> dict:
        """JSON-friendly form (for sidecars; ``hf_processor`` only where it is on)."""
        values = asdict(self)
        if not self.hf_processor:
            del values["hf_processor"]
        return values

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        """The resized ``(H, W)`` when it does not depend on the video (``resize`` gives both sides)."""
        return (self.resize[0], self.resize[1]) if len(self.resize) == 2 else None

    @property
    def min_resized_side(self) -> int:
        """The shortest side frames have after resizing (what the crop must fit in)."""
        return min(self.resize)


PREPROCESSING = {"tsp": Preprocessing()}


def to_float(frames: torch.Tensor) -> torch.Tensor:
    """``[T, H, W, 3]`` uint8 -> ``[T, 3, H, W]`` float32 in [0, 1]."""
    return frames.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)


def resized_size(height: int, width: int, size: tuple[int, ...]) -> tuple[int, int]:
    """Output ``(H, W)`` of resizing to ``size``: ``(H, W)`` as given, or ``(S,)`` for the short side.

    The long side of a short-side resize is truncated, as torchvision's ``resize`` does.
    """
    if len(size) == 2:
        return int(size[0]), int(size[1])
    if len(size) != 1:
        raise ValueError(f"resize takes (H, W) or (short side,), got {tuple(size)}")
    short = int(size[0])
    if height <= width:
        return short, int(short * width / height)
    return int(short * height / width), short


def resize(frames: torch.Tensor, size: tuple[int, ...], antialias: bool = False) -> torch.Tensor:
    """Bilinear resize of ``[T, 3, H, W]`` frames, exactly as the original (no antialias) unless ``antialias``."""
    size = resized_size(frames.shape[-2], frames.shape[-1], size)
    if tuple(frames.shape[-2:]) == size:
        return frames
    return F.interpolate(frames, size=size, mode="bilinear", align_corners=False, antialias=antialias)


def normalize(frames: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Per-channel ``(x - mean) / std`` on ``[T, 3, H, W]``."""
    mean_t = torch.tensor(mean, dtype=frames.dtype, device=frames.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=frames.dtype, device=frames.device).view(1, 3, 1, 1)
    return (frames - mean_t) / std_t


def center_crop_box(height: int, width: int, crop: tuple[int, int], floor: bool = False) -> tuple[int, int]:
    """Top-left corner of the centre crop (the rounding torchvision's centre crop uses; ``floor``: rounded down,
    as ``transformers``' image processors)."""
    if floor:
        return (height - crop[0]) // 2, (width - crop[1]) // 2
    return int(round((height - crop[0]) / 2.0)), int(round((width - crop[1]) / 2.0))


def crop(frames: torch.Tensor, top: int, left: int, size: tuple[int, int]) -> torch.Tensor:
    """Crop ``[..., H, W]`` to ``size`` at ``(top, left)``."""
    return frames[..., top:top + size[0], left:left + size[1]]


def preprocess_frames(frames: torch.Tensor, prep: Preprocessing = PREPROCESSING["tsp"]) -> torch.Tensor:
    """Evaluation transform of uint8 ``[T, H, W, 3]`` frames -> float ``[T, 3, h, w]`` (centre crop)."""
    x = normalize(resize(to_float(frames), prep.resize, prep.hf_processor), prep.mean, prep.std)
    top, left = center_crop_box(x.shape[-2], x.shape[-1], prep.crop, prep.hf_processor)
    return crop(x, top, left, prep.crop)


def crop_params(height: int, width: int, prep: Preprocessing = PREPROCESSING["tsp"], train: bool = False,
                generator: torch.Generator | None = None) -> tuple[int, int, bool]:
    """Crop box ``(top, left, flip)`` of a clip whose frames are ``height x width`` before resizing.

    Training draws top, then left (uniform over the resized frame), then the flip (probability 0.5), in that
    order from ``generator``; evaluation takes the centre crop, unflipped. :func:`preprocess_clip` and the
    device path (:mod:`tspvideo.datasets.batch_transforms`) both draw here, so a seed gives the same crops.
    """
    resized_h, resized_w = resized_size(height, width, prep.resize)
    if not train:
        return (*center_crop_box(resized_h, resized_w, prep.crop, prep.hf_processor), False)
    top = int(torch.randint(0, resized_h - prep.crop[0] + 1, (1,), generator=generator))
    left = int(torch.randint(0, resized_w - prep.crop[1] + 1, (1,), generator=generator))
    flip = float(torch.rand(1, generator=generator)) < 0.5
    return top, left, flip


def preprocess_clip(frames: torch.Tensor, prep: Preprocessing = PREPROCESSING["tsp"], train: bool = False,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` clip -> float ``[3, T, h, w]``: random crop + flip when ``train``."""
    x = normalize(resize(to_float(frames), prep.resize, prep.hf_processor), prep.mean, prep.std)
    top, left, flip = crop_params(frames.shape[1], frames.shape[2], prep, train, generator)
    x = crop(x, top, left, prep.crop)
    if flip:
        x = x.flip(-1)
    return x.permute(1, 0, 2, 3).contiguous()
