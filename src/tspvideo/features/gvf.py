"""Global video features (GVF): one vector per video pooled over all its clip features.

The TSP region head sees ``concat(clip feature, GVF)``. The paper pools the clip features of the initial
(TAC-on-Kinetics) encoder with max (``avg`` is the ablation) and keeps them frozen during training.
File layout: HDF5, one float32 ``(C,)`` dataset per video keyed by the video's file name without
extension (gzip-compressed, as the released files), and file attributes ``pool``, ``encoder`` (the
weights the clip features came from), ``feature_dim`` (C) and ``backbone`` (when known) that
``tspvideo train`` checks (C must fit the backbone); files without them (the released ones) still load.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from tspvideo.core.choices import GVF_POOLS
from tspvideo.core.errors import TspVideoError
from tspvideo.core.fileio import H5_WRITE_OPTIONS, atomic_path
from tspvideo.features.folder import FeatureSource, read_sidecar

POOLS = GVF_POOLS


def pool_features(features: np.ndarray, pool: str = "max") -> np.ndarray:
    """Pool ``[T, C]`` clip features over time into a ``(C,)`` float32 vector."""
    if pool not in POOLS:
        raise TspVideoError(f"unknown pooling {pool!r} (choose from {', '.join(POOLS)})")
    if features.ndim != 2 or len(features) == 0:
        raise TspVideoError(f"expected clip features of shape [T, C] with T > 0, got {features.shape}")
    pooled = features.max(axis=0) if pool == "max" else features.mean(axis=0)
    return pooled.astype(np.float32)


def write_gvf(feature_dir: str | os.PathLike, out_path: str | os.PathLike, pool: str = "max",
              stems: Sequence[str] | None = None, encoder: str | None = None, backbone: str | None = None) -> int:
    """Pool every video of a feature source (or only ``stems``) into one HDF5 file, atomically.

    ``feature_dir`` is a folder of ``<stem>.npy``, an HDF5 file of ``[T, C]`` datasets or a downloaded
    released file's name (pooling needs no time grid). ``pool``, ``encoder`` (default: the ``weights``
    named by the folder's sidecars or the HDF5's attribute), ``backbone`` (when given) and the feature
    dimension C are stored as file attributes. Returns the number of videos written. Missing or unreadable
    features, and features whose dimension differs from the others', are errors naming them.
    """
    source = FeatureSource(feature_dir)
    if stems is None:
        stems = source.stems()
    if not stems:
        raise TspVideoError(f"no feature files in {source.path}")
    encoder = encoder or _source_encoder(source, stems)
    dim = None
    with atomic_path(out_path) as tmp, h5py.File(tmp, "w", **H5_WRITE_OPTIONS) as h5:
        h5.attrs["pool"] = pool
        if encoder:
            h5.attrs["encoder"] = encoder
        for stem in sorted(stems):
            pooled = pool_features(source.load(stem), pool)
            if dim is not None and pooled.shape[0] != dim:
                raise TspVideoError(f"{source.path}: {stem} has {pooled.shape[0]}-d features, the other videos "
                                    f"{dim}-d (features of two encoders in one place?)")
            dim = pooled.shape[0]
            h5.create_dataset(stem, data=pooled, compression="gzip")
        h5.attrs["feature_dim"] = dim
        if backbone:
            h5.attrs["backbone"] = backbone
    return len(stems)


def _source_encoder(source: FeatureSource, stems: Sequence[str]) -> str | None:
    """The weights the features came from: a folder's sidecars or an HDF5's ``weights`` attribute (None: unsaid).

    A folder whose sidecars name different encoders is an error: one GVF file pools one encoder's features.
    """
    if source.kind == "h5":
        try:
            with h5py.File(source.path, "r") as h5:
                weights = h5.attrs.get("weights")
        except OSError:
            return None
        return str(weights) if weights else None
    names = set()
    for stem in stems:
        # features without a (readable) sidecar: the encoder is simply not recorded
        weights = read_sidecar(source.path / f"{stem}.npy", strict=False).get("weights")
        if weights:
            names.add(str(weights))
    if len(names) > 1:
        raise TspVideoError(f"{source.path}: features come from different encoders ({', '.join(sorted(names))}); "
                            "one GVF file must pool one encoder's features")
    return names.pop() if names else None


def gvf_attributes(path: str | os.PathLike) -> dict[str, str]:
    """The ``pool`` and ``encoder`` attributes of a GVF file (empty for files without them)."""
    path = Path(path)
    if not path.is_file():
        raise TspVideoError(f"GVF file not found: {path}")
    try:
        with h5py.File(path, "r") as h5:
            return {key: str(h5.attrs[key]) for key in ("pool", "encoder") if key in h5.attrs}
    except OSError as error:
        raise TspVideoError(f"{path}: not a readable HDF5 GVF file ({error})") from error


def read_gvf(path: str | os.PathLike, stems: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Load GVFs (all, or ``stems``) from an HDF5 file; a missing video is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise TspVideoError(f"GVF file not found: {path}")
    with h5py.File(path, "r") as h5:
        keys = list(h5.keys()) if stems is None else list(stems)
        missing = [k for k in keys if k not in h5]
        if missing:
            raise TspVideoError(f"{path}: no GVF for {len(missing)} video(s), e.g. {', '.join(missing[:5])}")
        return {k: np.asarray(h5[k], dtype=np.float32) for k in keys}


class GvfReader:
    """One GVF file read video by video, as a training dataset does: a handle opened lazily once per
    process (h5py handles do not survive fork), dropped when the reader is pickled to a worker."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._h5 = None

    def check(self, stems: Sequence[str], source: str) -> int:
        """The GVF size C, after checking that every video of ``stems`` has a ``(C,)`` vector."""
        if not self.path.is_file():
            raise TspVideoError(f"GVF file not found: {self.path}")
        names = sorted(set(stems))
        with h5py.File(self.path, "r") as h5:
            missing = [n for n in names if n not in h5]
            if missing:
                raise TspVideoError(f"{self.path}: no GVF for {len(missing)} of the {len(names)} videos of "
                                    f"{source}, e.g. {', '.join(missing[:5])}; compute it with `tspvideo gvf`")
            shape = h5[names[0]].shape
        if len(shape) != 1:
            raise TspVideoError(f"{self.path}: GVF of {names[0]} has shape {shape}, expected (C,)")
        return int(shape[0])

    def __getitem__(self, stem: str) -> np.ndarray:
        if self._h5 is None:
            self._h5 = h5py.File(self.path, "r")
        return np.asarray(self._h5[stem], dtype=np.float32)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_h5": None}  # each worker opens its own handle
