"""Decoding and feature folders without the heavy imports: a process that only decodes (metadata, transcoding,
annotation checks) never imports torch, and one that reads or writes ``.npy`` feature folders never imports h5py.

Checked through ``sys.modules`` of a fresh interpreter, never through time.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "torchvision", "h5py", "matplotlib")


def imported_after(*modules: str) -> set[str]:
    """Which of :data:`HEAVY` a fresh interpreter has imported after importing ``modules``."""
    code = (f"import importlib, json, sys\nfor name in {list(modules)!r}:\n    importlib.import_module(name)\n"
            f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(result.stdout))


@pytest.mark.parametrize("module", ["tspvideo.video.decode", "tspvideo.video.colour", "tspvideo.video.metadata",
                                    "tspvideo.video.transcode", "tspvideo.video.frame_cache",
                                    "tspvideo.video.synthetic", "tspvideo.datasets.annotations"])
def test_decoding_imports_no_torch(module):
    assert imported_after(module) == set()


def test_feature_folders_import_no_h5py_until_an_hdf5_file_is_used():
    assert imported_after("tspvideo.features.folder", "tspvideo.extract.provenance") == set()
