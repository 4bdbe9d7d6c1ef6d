"""The ``auto`` precision rule: bf16 + channels_last only where the device computes bf16 natively."""

from __future__ import annotations

import platform

import pytest
import torch

from tspvideo.core import precision
from tspvideo.core.precision import Precision, cpu_flags, cpu_native_bf16, resolve_precision


def test_cpu_flags_are_read_from_linux_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16\n\nprocessor\t: 1\nflags\t: fpu amx_bf16\n")
    assert {"avx512_bf16", "amx_bf16", "fpu"} <= cpu_flags(x86)
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    assert "bf16" in cpu_flags(arm)
    assert cpu_flags(tmp_path / "missing") == set()


@pytest.mark.parametrize("machine, flags, native", [
    ("x86_64", {"avx512f", "avx512_bf16"}, "avx512_bf16"),
    ("x86_64", {"avx512f", "amx_bf16", "amx_tile"}, "amx_bf16"),
    ("x86_64", {"avx512f", "avx2"}, None),  # AVX-512 without BF16: bf16 is emulated, slower than float32
    ("x86_64", {"bf16"}, None),  # the Arm flag's name means nothing on x86
    ("aarch64", {"asimd", "bf16"}, "bf16"),
    ("aarch64", {"asimd"}, None),
])
def test_native_bf16_needs_the_hardware_flag(monkeypatch, machine, flags, native):
    monkeypatch.setattr(platform, "machine", lambda: machine)
    assert cpu_native_bf16(flags) == native


def test_auto_is_bf16_with_channels_last_where_native_else_float32(monkeypatch):
    monkeypatch.setattr(precision, "cpu_native_bf16", lambda flags=None: "avx512_bf16")
    fast = resolve_precision("cpu")
    assert (fast.amp, fast.channels_last, fast.name) == ("bf16", True, "bf16")
    assert "avx512_bf16" in fast.describe() and "channels_last" in fast.describe()
    monkeypatch.setattr(precision, "cpu_native_bf16", lambda flags=None: None)
    plain = resolve_precision("cpu")
    assert (plain.amp, plain.channels_last, plain.name) == (None, False, "fp32")
    assert "without native bf16" in plain.describe()


def test_cuda_without_native_bf16_stays_float32(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    # Emulated bf16 only (pre-Ampere cards): slower than float32.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert resolve_precision("cuda:0").amp is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Test GPU")
    assert resolve_precision("cuda:0") == Precision("bf16", True, "auto: Test GPU computes bf16")


def test_named_precisions_and_explicit_layout_win(monkeypatch):
    monkeypatch.setattr(precision, "cpu_native_bf16", lambda flags=None: None)
    assert resolve_precision("cpu", "bf16") == Precision("bf16", True, "as asked")
    assert resolve_precision("cpu", "bf16", channels_last=False).channels_last is False
    assert resolve_precision("cpu", "fp32", channels_last=True) == Precision(None, True, "as asked")
    assert resolve_precision("cpu", "fp16").amp == "fp16"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("cpu", "fp8")
