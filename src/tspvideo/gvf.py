"""Global video features (GVF): one vector per video pooled over all its clip features.

The TSP region head sees ``concat(clip feature, GVF)``. The paper pools the clip features of the initial
(TAC-on-Kinetics) encoder with max (``avg`` is the ablation) and keeps them frozen during training.
File layout: HDF5, one float32 ``(C,)`` dataset per video keyed by the video's file name without
extension (gzip-compressed, as the released files); the file's attribute ``feature_dim`` records C
(and ``backbone`` / ``weights`` the encoder, when known), so training can check it fits the backbone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tspvideo.errors import TspVideoError
from tspvideo.features import FeatureSource
from tspvideo.fileio import atomic_path

POOLS = ("max", "avg")


def pool_features(features: np.ndarray, pool: str = "max") -> np.ndarray:
    """Pool ``[T, C]`` clip features over time into a ``(C,)`` float32 vector."""
    if pool not in POOLS:
        raise TspVideoError(f"unknown pooling {pool!r} (choose from {', '.join(POOLS)})")
    if features.ndim != 2 or len(features) == 0:
        raise TspVideoError(f"expected clip features of shape [T, C] with T > 0, got {features.shape}")
    pooled = features.max(axis=0) if pool == "max" else features.mean(axis=0)
    return pooled.astype(np.float32)


def write_gvf(feature_dir: str | os.PathLike, out_path: str | os.PathLike, pool: str = "max",
              stems: Sequence[str] | None = None, encoder: dict | None = None) -> int:
    """Pool every video of a feature source (or only ``stems``) into one HDF5 file, atomically.

    ``feature_dir`` is a folder of ``<stem>.npy``, an HDF5 file of ``[T, C]`` datasets or a downloaded
    released file's name (pooling needs no time grid). Returns the number of videos written. Missing or
    unreadable features, and features whose dimension differs from the others', are errors naming them.
    ``encoder`` (``backbone``, ``weights``) is recorded in the file's attributes.
    """
    import h5py

    source = FeatureSource(feature_dir)
    if stems is None:
        stems = source.stems()
    if not stems:
        raise TspVideoError(f"no feature files in {source.path}")
    dim = None
    with atomic_path(out_path) as tmp, h5py.File(tmp, "w") as h5:
        for stem in sorted(stems):
            pooled = pool_features(source.load(stem), pool)
            if dim is not None and pooled.shape[0] != dim:
                raise TspVideoError(f"{source.path}: {stem} has {pooled.shape[0]}-d features, the other videos "
                                    f"{dim}-d (features of two encoders in one place?)")
            dim = pooled.shape[0]
            h5.create_dataset(stem, data=pooled, compression="gzip")
        h5.attrs["feature_dim"] = dim
        h5.attrs["pool"] = pool
        for key in ("backbone", "weights"):
            if encoder and encoder.get(key):
                h5.attrs[key] = str(encoder[key])
    return len(stems)


def read_gvf(path: str | os.PathLike, stems: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Load GVFs (all, or ``stems``) from an HDF5 file; a missing video is an error naming it."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise TspVideoError(f"GVF file not found: {path}")
    with h5py.File(path, "r") as h5:
        keys = list(h5.keys()) if stems is None else list(stems)
        missing = [k for k in keys if k not in h5]
        if missing:
            raise TspVideoError(f"{path}: no GVF for {len(missing)} video(s), e.g. {', '.join(missing[:5])}")
        return {k: np.asarray(h5[k], dtype=np.float32) for k in keys}
