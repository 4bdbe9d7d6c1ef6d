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
    """A concrete device for a ``--device`` value, checked: ``auto`` is this process's GPU when there is one, else
    the CPU; ``cuda`` is the GPU of ``local_rank`` (default torchrun's ``LOCAL_RANK``, else 0).

    Raises :class:`TspVideoError` for a name that is no device, or a CUDA device this machine does not have, so a
    command stops before it creates anything.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise TspVideoError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type != "cuda":
        return str(device)
    if not torch.cuda.is_available():
        raise TspVideoError(f"--device {name}, but no CUDA device is available")
    index = device.index
    if index is None:
        index = local_rank if local_rank is not None else int(os.environ.get("LOCAL_RANK", 0))
    if index >= torch.cuda.device_count():
        raise TspVideoError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                            f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return f"cuda:{index}"


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


