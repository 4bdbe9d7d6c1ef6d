"""Which device runs the model, and where frames are preprocessed: one rule for every command.

``--device``: ``auto`` is this process's GPU when there is one, else the CPU; ``cuda`` is the GPU of this
process's ``LOCAL_RANK`` under torchrun. ``--preprocess-on``: frames become model input in the decode workers
or, from raw uint8 frames, on the model's device (auto: the device on CUDA).
"""

from __future__ import annotations

import os

import torch

from tspvideo.core.choices import PREPROCESS_ON_CHOICES
from tspvideo.core.errors import TspVideoError


def resolve_device(name: str, local_rank: int | None = None) -> str:
    """A concrete device for a ``--device`` value (``local_rank``: default torchrun's ``LOCAL_RANK``, else 0)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{local_rank if local_rank is not None else int(os.environ.get('LOCAL_RANK', 0))}"
    return name


def preprocess_on_device(device: torch.device, backend: str = "pyav") -> bool:
    """Whether frames go to ``device`` raw by default: on CUDA (decode workers are the bottleneck there, so
    preprocessing moves to the GPU) and with NVDEC (frames are decoded there), not on CPU (the model's cores
    would preprocess instead of the workers')."""
    return device.type == "cuda" or backend == "nvdec"


def resolve_preprocess_on(choice: str, device: torch.device | str) -> str:
    """``"device"`` or ``"workers"`` for a ``--preprocess-on`` choice on ``device`` (auto: device on CUDA)."""
    if choice not in PREPROCESS_ON_CHOICES:
        raise TspVideoError(f"--preprocess-on takes {', '.join(PREPROCESS_ON_CHOICES)}, got {choice!r}")
    if choice == "auto":
        return "device" if preprocess_on_device(torch.device(device)) else "workers"
    return choice


