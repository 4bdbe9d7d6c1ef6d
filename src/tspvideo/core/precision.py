"""Mixed precision shared by extraction and training, and the ``auto`` rule that picks it per device.

``auto`` runs bf16 autocast with the channels_last_3d layout where the hardware computes bf16 natively
(CUDA GPUs of compute capability 8.0 and up; CPUs with AVX-512 BF16 or AMX, or Arm's BF16 extension),
and float32 elsewhere: on a CPU without native bf16, oneDNN emulates it and bf16 is slower than float32.
"""

from __future__ import annotations

import contextlib
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

from tspvideo.core.choices import PRECISIONS

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

# CPU flags (Linux /proc/cpuinfo) that mean bf16 matrix products run in hardware.
NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 AVX-512 BF16, x86 AMX, Arm BF16


def autocast(device: torch.device, amp: str | None) -> contextlib.AbstractContextManager:
    """Autocast to ``amp`` (``"bf16"`` or ``"fp16"``) on ``device``'s type; a no-op for ``None``."""
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AMP_DTYPES[amp])


def exact_float32() -> None:
    """Make float32 mean float32 for this process: no TF32 in cuDNN convolutions or CUDA matrix products
    (PyTorch allows TF32 in convolutions by default, which rounds inputs to 10 mantissa bits)."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags as Linux lists them (x86 ``flags``, Arm ``Features``); empty when unknown."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return flags


def cpu_native_bf16(flags: set[str] | None = None) -> str | None:
    """The flag by which this CPU computes bf16 natively, or None (then bf16 would be emulated: slower).

    Apple silicon has no /proc/cpuinfo; it is not counted as native (PyTorch's CPU bf16 there is not faster).
    """
    flags = cpu_flags() if flags is None else flags
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
        candidates = NATIVE_BF16_CPU_FLAGS[:2]
    else:
        candidates = NATIVE_BF16_CPU_FLAGS[2:]
    return next((flag for flag in candidates if flag in flags), None)


def native_bf16(device: torch.device) -> str | None:
    """Why ``device`` runs bf16 natively (a short phrase), or None when it does not."""
    if device.type == "cuda":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False):
            return f"{torch.cuda.get_device_name(device)} computes bf16"
        return None
    if device.type == "cpu":
        flag = cpu_native_bf16()
        return f"the CPU has {flag}" if flag else None
    return None


@dataclass(frozen=True)
class Precision:
    """What the model runs in: ``amp`` (``None`` = float32) and the channels_last_3d layout, and why."""

    amp: str | None
    channels_last: bool
    reason: str

    @property
    def name(self) -> str:
        """``"bf16"``, ``"fp16"`` or ``"fp32"`` (as sidecars record it)."""
        return self.amp or "fp32"

    def describe(self) -> str:
        """One line for the log, e.g. ``bf16 autocast + channels_last (auto: the CPU has avx512_bf16)``."""
        what = "float32" if self.amp is None else f"{self.amp} autocast"
        return f"{what}{' + channels_last' if self.channels_last else ''} ({self.reason})"


def resolve_precision(device: torch.device | str, precision: str = "auto",
                      channels_last: bool | None = None) -> Precision:
    """The precision to run on ``device``: ``auto`` (bf16 where native, else float32), or as named.

    ``channels_last=None`` follows the precision: on with bf16 (the fast layout for bf16 convolutions),
    off with float32 (the reference layout).
    """
    device = torch.device(device)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        why = native_bf16(device)
        amp = "bf16" if why else None
        reason = f"auto: {why}" if why else f"auto: {device.type} without native bf16"
    else:
        amp = None if precision == "fp32" else precision
        reason = "as asked"
    return Precision(amp, amp == "bf16" if channels_last is None else channels_last, reason)
