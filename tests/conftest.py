"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

# The project's reference data (excerpts of the original files) lives beside the repository when the
# repository is checked out inside the project workspace; users' checkouts do not have it.
SHARED_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data_dir() -> Path:
    """Folder of reference data files; the test is skipped when it is not present."""
    if not SHARED_DATA_DIR.is_dir():
        pytest.skip("reference data folder ../shared/data is not present")
    return SHARED_DATA_DIR
