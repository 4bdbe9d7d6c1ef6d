"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import tiny_train

import tspvideo.commands.train as train_command
from tspvideo.runs.steps import prepare_synthetic_dataset

# Small public reference files (excerpts of the original implementation's data), shipped with the tests;
# tests/data/README.md says where each comes from.
REFERENCE_DATA_DIR = Path(__file__).resolve().parent / "data"


@pytest.fixture
def reference_data_dir() -> Path:
    """Folder of the reference data files shipped in ``tests/data``."""
    return REFERENCE_DATA_DIR


@pytest.fixture
def shared_data_dir(reference_data_dir: Path) -> Path:
    """The same folder under its former name (tests written before the files were shipped)."""
    return reference_data_dir


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """Training data: four short synthetic videos, their segment tables, label map and a random GVF file."""
    root = tmp_path_factory.mktemp("train-data")
    paths = prepare_synthetic_dataset(root, num_videos=4, num_classes=2, min_duration=6.0, max_duration=8.0,
                                      progress=False)
    rng = np.random.default_rng(0)
    paths["gvf"] = root / "gvf.h5"
    with h5py.File(paths["gvf"], "w") as h5:
        for video in sorted(paths["videos"].glob("*.mp4")):
            h5.create_dataset(video.stem, data=rng.standard_normal(512).astype(np.float32))
    return paths


@pytest.fixture
def tiny_train_command(monkeypatch) -> None:
    """``tspvideo train`` on the command line trains the tiny model (helpers.tiny_train) instead of the real one."""
    monkeypatch.setattr(train_command, "train", tiny_train)
