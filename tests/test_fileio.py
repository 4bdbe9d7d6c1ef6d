"""Atomic writes: final files get the mode of a normal write (0o666 & ~umask), not mkstemp's 0600."""

from __future__ import annotations

import contextlib
import os
import stat

import h5py
import numpy as np
import pytest

from tspvideo.core import fileio


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_atomic_writes_respect_the_umask(tmp_path, mask):
    with umask(mask):
        fileio.save_npy_atomic(tmp_path / "a.npy", np.zeros((2, 3), dtype=np.float32))
        fileio.save_json_atomic(tmp_path / "a.json", {"x": 1})
        fileio.save_text_atomic(tmp_path / "a.txt", "x\n")
        with fileio.atomic_path(tmp_path / "a.h5") as tmp, h5py.File(tmp, "w") as h5:
            h5.create_dataset("v", data=np.zeros(3))
    expected = 0o666 & ~mask
    modes = {p.name: _mode(p) for p in tmp_path.iterdir()}
    assert modes == {name: expected for name in ("a.npy", "a.json", "a.txt", "a.h5")}


def test_current_umask_reads_without_changing_it():
    with umask(0o027):
        assert fileio.current_umask() == 0o027
        assert os.umask(0o027) == 0o027  # still what was set


def test_current_umask_without_proc(monkeypatch):
    # Systems without /proc (macOS) fall back to setting and restoring the umask.
    monkeypatch.setattr(fileio, "Path", lambda *_: (_ for _ in ()).throw(OSError("no /proc")))
    with umask(0o077):
        assert fileio.current_umask() == 0o077
        assert os.umask(0o077) == 0o077


def test_a_command_under_umask_022_writes_every_file_0644(tmp_path):
    import json

    from tspvideo.cli import main

    (tmp_path / "a.json").write_text(json.dumps({"database": {"v": {"subset": "train", "annotations": [
        {"segment": [1.0, 3.0], "label": "Run"}]}}}), encoding="utf-8")
    (tmp_path / "m.csv").write_text("filename,video-duration,fps,video-frames\nv.mp4,10,30,300\n", encoding="utf-8")
    with umask(0o022):
        assert main(["annotations", "generic", str(tmp_path / "a.json"), "--metadata", str(tmp_path / "m.csv"),
                     "--out", str(tmp_path / "out")]) == 0
    written = list((tmp_path / "out").iterdir())
    assert len(written) >= 4 and {p.name: _mode(p) for p in written} == {p.name: 0o644 for p in written}
