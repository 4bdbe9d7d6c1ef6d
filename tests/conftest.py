"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

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
