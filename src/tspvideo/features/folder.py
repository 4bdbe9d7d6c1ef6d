"""The feature folder contract: ``<stem>.npy`` + JSON sidecar per video, written, checked, merged and read here.

``tspvideo extract`` writes a folder through :func:`write_video_features` (the sidecar last, so
:func:`is_done` tells a complete video), :func:`merge_to_h5` merges it into one HDF5, and every reader
goes through :func:`read_sidecar`. Feature sources: a folder, or one HDF5 file of ``[T, C]`` datasets.

Every reader of clip features (``export``, ``probe``, ``similarity``, ``gvf``) goes through
:func:`read_features` (or :class:`FeatureSource` when it needs no time grid), so each of them accepts:

- a folder written by ``tspvideo extract`` (``<stem>.npy`` + ``<stem>.json``);
- an HDF5 file with one ``[T, C]`` dataset per video: the released TSP features, a merged file from
  ``tspvideo extract --h5``, or anyone's;
- the registered name of a released file (``tspvideo features list``), once downloaded.

Feature i is the clip of 15 fps frames ``[i*stride, i*stride + L)``, centred at ``(i*stride + L/2) / fps``
seconds. The grid (L, fps, stride) of an HDF5 comes from its attributes (``extract --h5`` writes them),
from the registered released file it is, or from explicit flags; when they disagree, or when none gives
it, the file is refused: a wrong grid would shift every exported segment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tspvideo.core.errors import TspVideoError
from tspvideo.core.fileio import H5_WRITE_OPTIONS, atomic_path, save_json_atomic, save_npy_atomic

# The extraction defaults (the paper's grid); a feature folder whose sidecars lack a value uses them.
from tspvideo.core.grid import DEFAULT_CLIP_LEN, DEFAULT_FPS, DEFAULT_STRIDE, clip_centers
from tspvideo.features.released import RELEASED, cached_path, find_released
from tspvideo.video.files import VIDEO_EXTENSIONS

H5_SUFFIXES = (".h5", ".hdf5", ".hdf")
GRID_KEYS = ("clip_len", "fps", "stride")
GRID_FLAGS = "--clip-len, --stride and --fps"
ACTIVITYNET_PREFIX = "v_"


@dataclass(frozen=True)
class Grid:
    """A time grid, possibly partial: clip length L (frames), sampling rate (fps), stride (frames)."""

    clip_len: int | None = None
    fps: float | None = None
    stride: int | None = None

    def values(self) -> dict[str, float | int]:
        """The components that are set."""
        return {k: getattr(self, k) for k in GRID_KEYS if getattr(self, k) is not None}


@dataclass
class VideoFeatures:
    """One video of a feature source: where its array is and the time grid of its features."""

    stem: str
    path: Path
    num_features: int
    num_channels: int
    clip_len: int
    fps: float
    stride: int
    feature_times: np.ndarray  # [T] seconds, centre of each clip
    duration: float  # seconds
    meta: dict[str, Any] = field(default_factory=dict)
    key: str | None = None  # dataset name inside an HDF5 file; None for a .npy file

    @property
    def location(self) -> str:
        """Where the array is, for messages and failure lists (``file.h5:key`` inside an HDF5)."""
        return str(self.path) if self.key is None else f"{self.path}:{self.key}"

    def load(self) -> np.ndarray:
        """The ``[T, C]`` float32 array."""
        if self.key is None:
            return np.asarray(np.load(self.path), dtype=np.float32)
        with _h5py().File(self.path, "r") as h5:
            return np.asarray(h5[self.key][()], dtype=np.float32)


# --------------------------------------------------------------------------------------------------
# Writing a feature folder (extract) and merging it to one HDF5
# --------------------------------------------------------------------------------------------------


def feature_paths(out_dir: Path, video: Path) -> tuple[Path, Path]:
    """The ``.npy`` and sidecar ``.json`` of a video in a feature folder (named after the video's stem)."""
    return out_dir / f"{video.stem}.npy", out_dir / f"{video.stem}.json"


def is_done(out_dir: Path, video: Path) -> bool:
    """Whether a video's features are complete: both files exist (written atomically, the sidecar last)."""
    npy, sidecar = feature_paths(out_dir, video)
    return npy.is_file() and sidecar.is_file()


def write_video_features(out_dir: Path, stem: str, features: np.ndarray, sidecar: dict[str, Any]) -> None:
    """One video's ``[T, C]`` float32 array and its sidecar, each atomically; the sidecar is written last,
    so its presence marks the video as done (:func:`is_done`)."""
    save_npy_atomic(out_dir / f"{stem}.npy", features.astype(np.float32, copy=False))
    save_json_atomic(out_dir / f"{stem}.json", sidecar)


def merge_to_h5(out_dir: str | os.PathLike, stems: Sequence[str], h5_path: str | os.PathLike) -> int:
    """Write the ``.npy`` features of ``stems`` into one HDF5 file (a dataset per stem), atomically.

    The file carries its time grid, so it is a feature source on its own (``export``, ``probe`` ... read it
    without flags): each dataset has the ``clip_len``, ``fps``, ``stride``, ``num_frames`` and
    ``video_duration`` of its sidecar; the file has the grid (when all videos share it), the model and
    the preprocessing. Returns the number of videos written; stems without features are left out.
    """
    out_dir = Path(out_dir)
    written = 0
    shared: dict[str, object] | None = None
    with atomic_path(h5_path) as tmp, _h5py().File(tmp, "w", **H5_WRITE_OPTIONS) as h5:
        for stem in sorted(stems):
            npy = out_dir / f"{stem}.npy"
            if not npy.is_file():
                continue
            dataset = h5.create_dataset(stem, data=np.load(npy), compression="gzip")
            meta = read_sidecar(npy, strict=False)  # none (or broken): no grid attributes for this one
            for key in _H5_VIDEO_ATTRS:
                if meta.get(key) is not None:
                    dataset.attrs[key] = meta[key]
            described = _h5_file_attrs(meta)
            shared = described if shared is None else {k: v for k, v in shared.items() if described.get(k) == v}
            written += 1
        for key, value in (shared or {}).items():
            h5.attrs[key] = value
    return written


_H5_VIDEO_ATTRS = ("clip_len", "fps", "stride", "num_frames", "video_duration")


def _h5_file_attrs(meta: dict) -> dict[str, object]:
    """File-level attributes of a merged HDF5: grid, model and preprocessing (plain strings and numbers)."""
    attrs: dict[str, object] = {k: meta[k] for k in ("clip_len", "fps", "stride") if meta.get(k) is not None}
    for key in ("weights", "backbone", "sampling", "time_convention", "tspvideo_version"):
        if isinstance(meta.get(key), str):
            attrs[key] = meta[key]
    for key in ("model_config", "preprocessing", "recipe"):  # nested: stored as JSON text
        if meta.get(key) is not None:
            attrs[key] = json.dumps(meta[key], sort_keys=True)
    if isinstance(meta.get("model_config"), dict) and meta["model_config"].get("backbone"):
        attrs["model"] = meta["model_config"]["backbone"]
    return attrs


def is_h5(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an HDF5 file (by its suffix)."""
    return Path(path).suffix.lower() in H5_SUFFIXES


def resolve_source(spec: str | os.PathLike) -> Path:
    """A feature folder, an HDF5 file, or a registered released file's cached copy."""
    text = str(spec)
    if text in RELEASED and not Path(text).exists():
        info = RELEASED[text]
        if info.kind != "features":
            raise TspVideoError(f"{text} is a GVF file, not clip features")
        path = cached_path(info)
        if not path.is_file():
            raise TspVideoError(f"released features {text} are not downloaded yet: run `tspvideo features download "
                                f"{text}` (or download {info.url} to {path})")
        return path
    return Path(spec)


# --------------------------------------------------------------------------------------------------
# The grid of a source
# --------------------------------------------------------------------------------------------------


def merge_grids(sources: Iterable[tuple[str, Grid]], where: str) -> Grid:
    """One grid from several statements of it (attributes, released name, flags); disagreement is an error."""
    merged: dict[str, Any] = {}
    said_by: dict[str, str] = {}
    for origin, grid in sources:
        for key, value in grid.values().items():
            if key in merged and float(merged[key]) != float(value):
                raise TspVideoError(f"{where}: {key} is {merged[key]:g} by {said_by[key]} but {value:g} by "
                                    f"{origin}; refusing to guess which is right")
            merged.setdefault(key, value)
            said_by.setdefault(key, origin)
    return Grid(**merged)


def _complete(grid: Grid, where: str) -> tuple[int, float, int]:
    missing = [k for k in GRID_KEYS if getattr(grid, k) is None]
    if missing:
        raise TspVideoError(f"{where}: no time grid for the features ({', '.join(missing)} unknown: the file has no "
                            f"such attributes and is not a registered released file); give {GRID_FLAGS} "
                            "(e.g. --clip-len 16 --stride 16 --fps 15 for features extracted like the released "
                            "ActivityNet ones)")
    if grid.clip_len <= 0 or grid.fps <= 0 or grid.stride <= 0:
        raise TspVideoError(f"{where}: clip_len, fps and stride must be positive, got {grid.values()}")
    return int(grid.clip_len), float(grid.fps), int(grid.stride)


def _attr_grid(attrs: dict[str, Any]) -> Grid:
    values = {k: attrs[k] for k in GRID_KEYS if attrs.get(k) is not None}
    return Grid(clip_len=int(values["clip_len"]) if "clip_len" in values else None,
                fps=float(values["fps"]) if "fps" in values else None,
                stride=int(values["stride"]) if "stride" in values else None)


def _plain(value: Any) -> Any:
    # HDF5 attributes come back as NumPy scalars or bytes; sidecar-like dicts want plain values.
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


# --------------------------------------------------------------------------------------------------
# Folders of .npy + sidecar
# --------------------------------------------------------------------------------------------------


def read_sidecar(npy_path: str | os.PathLike, strict: bool = True) -> dict[str, Any]:
    """The JSON sidecar of a feature file (``a.npy`` -> ``a.json``); ``{}`` when there is none.

    A sidecar that is not a readable JSON object is an error naming it, or ``{}`` when not ``strict``
    (for what only records extra attributes from it).
    """
    sidecar = Path(npy_path).with_suffix(".json")
    if not sidecar.is_file():
        return {}
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        if not strict:
            return {}
        raise TspVideoError(f"{sidecar}: cannot read feature sidecar JSON ({error})") from error
    if not isinstance(meta, dict):
        if not strict:
            return {}
        raise TspVideoError(f"{sidecar}: expected a JSON object")
    return meta


def _video_duration(meta: dict[str, Any], times: np.ndarray, clip_len: int, fps: float) -> float:
    duration = meta.get("video_duration")
    if duration is None and meta.get("num_frames"):
        duration = float(meta["num_frames"]) / fps
    if duration is None or not float(duration) > 0:
        # Without a decoded duration, the video ends where the last clip ends.
        duration = float(times[-1] + clip_len / (2.0 * fps))
    return float(duration)


def _describe(stem: str, path: Path, shape: tuple[int, ...], meta: dict[str, Any], grid: tuple[int, float, int],
              key: str | None = None) -> VideoFeatures:
    where = path if key is None else f"{path}:{key}"
    if len(shape) != 2 or shape[0] < 1:
        raise TspVideoError(f"{where}: expected a [T, C] array with T >= 1, got shape {tuple(shape)}")
    num_features, num_channels = int(shape[0]), int(shape[1])
    clip_len, fps, stride = grid
    if meta.get("num_features") is not None and int(meta["num_features"]) != num_features:
        raise TspVideoError(f"{where}: metadata says num_features={meta['num_features']} but the array has "
                            f"{num_features} rows")
    times = clip_centers(num_features, clip_len, stride, fps)
    if meta.get("feature_times") is not None:
        stated = np.asarray(meta["feature_times"], dtype=np.float64)
        if stated.shape != (num_features,):
            raise TspVideoError(f"{where}: feature_times has {stated.size} values for {num_features} features")
        # Sidecars round times to 1 us: where they are the grid's, the exact grid times are used, so a
        # folder and the HDF5 merged from it (which stores the grid, not the rounded times) agree exactly.
        if not np.allclose(stated, times, rtol=0, atol=2e-6):
            times = stated
    return VideoFeatures(stem=stem, path=path, num_features=num_features, num_channels=num_channels,
                         clip_len=clip_len, fps=fps, stride=stride, feature_times=times,
                         duration=_video_duration(meta, times, clip_len, fps), meta=meta, key=key)


def read_video_features(npy_path: str | os.PathLike, grid: Grid | None = None) -> VideoFeatures:
    """Describe one ``.npy`` feature file using its sidecar.

    Where the sidecar lacks a grid value, ``grid`` (explicit flags) fills it, else the extraction
    defaults; a flag that contradicts the sidecar is an error. Only the array header is read here
    (memory-mapped), so listing a large folder is cheap. Raises ``TspVideoError`` naming the file.
    """
    npy_path = Path(npy_path)
    try:
        array = np.load(npy_path, mmap_mode="r")
    except (OSError, ValueError) as error:
        raise TspVideoError(f"{npy_path}: cannot read feature array ({error})") from error
    meta = read_sidecar(npy_path)
    merged = _folder_grid(meta, grid, npy_path)
    return _describe(npy_path.stem, npy_path, tuple(array.shape), meta, merged)


def _folder_grid(meta: dict[str, Any], flags: Grid | None, npy_path: Path) -> tuple[int, float, int]:
    stated = merge_grids([("its sidecar", _attr_grid(meta)), ("the flags", flags or Grid())], str(npy_path))
    values = {**Grid(DEFAULT_CLIP_LEN, DEFAULT_FPS, DEFAULT_STRIDE).values(), **stated.values()}
    return _complete(Grid(**values), str(npy_path))


def _read_folder(folder: Path, grid: Grid | None, failures: list[tuple[str, str]] | None) -> list[VideoFeatures]:
    videos = []
    for path in sorted(folder.glob("*.npy")):
        if path.name.startswith("."):  # temporary files of atomic writes
            continue
        try:
            videos.append(read_video_features(path, grid))
        except TspVideoError as error:
            if failures is None:
                raise
            failures.append((str(path), str(error)))
    if not videos and not failures:
        raise TspVideoError(f"{folder}: no .npy feature files found")
    return videos


# --------------------------------------------------------------------------------------------------
# HDF5 files
# --------------------------------------------------------------------------------------------------


def _h5py():
    """h5py, imported when an HDF5 file is read or written: a folder of ``.npy`` features (every extraction,
    export and evaluation of a folder) never needs it, and its import costs every such process."""
    import h5py

    return h5py


def _open_h5(path: Path):
    try:
        return _h5py().File(path, "r")
    except OSError as error:
        raise TspVideoError(f"{path}: cannot read HDF5 file ({error})") from error


def h5_grid_sources(path: Path, attrs: dict[str, Any], flags: Grid | None) -> list[tuple[str, Grid]]:
    """Every statement of an HDF5 file's grid: its attributes, the released file it is, the flags."""
    sources = [("its attributes", _attr_grid(attrs))]
    released = find_released(path)
    if released is not None and released.grid is not None:
        sources.append((f"the released file {released.name}", Grid(*released.grid)))
    sources.append(("the flags", flags or Grid()))
    return sources


def _read_h5(path: Path, grid: Grid | None, failures: list[tuple[str, str]] | None) -> list[VideoFeatures]:
    videos = []
    with _open_h5(path) as h5:
        file_attrs = {k: _plain(v) for k, v in h5.attrs.items()}
        for key in sorted(h5.keys()):
            item = h5[key]
            if not isinstance(item, _h5py().Dataset):
                if failures is None:
                    raise TspVideoError(f"{path}:{key}: a group, not a [T, C] dataset")
                failures.append((f"{path}:{key}", "a group, not a [T, C] dataset"))
                continue
            meta = {**file_attrs, **{k: _plain(v) for k, v in item.attrs.items()}}
            # A grid problem concerns the whole file: it is raised, not listed as one video's failure.
            video_grid = _complete(merge_grids(h5_grid_sources(path, meta, grid), f"{path}:{key}"), str(path))
            try:
                videos.append(_describe(key, path, tuple(item.shape), meta, video_grid, key))
            except TspVideoError as error:
                if failures is None:
                    raise
                failures.append((f"{path}:{key}", str(error)))
    if not videos and not failures:
        raise TspVideoError(f"{path}: no [T, C] feature datasets found")
    return videos


# --------------------------------------------------------------------------------------------------
# One entry point
# --------------------------------------------------------------------------------------------------


class FeatureSource:
    """Arrays by video stem from a feature folder or an HDF5 file (no time grid needed: e.g. for GVF)."""

    def __init__(self, spec: str | os.PathLike) -> None:
        self.path = resolve_source(spec)
        if self.path.is_dir():
            self.kind = "folder"
        elif self.path.is_file() and is_h5(self.path):
            self.kind = "h5"
        elif self.path.is_file() and self.path.suffix.lower() in VIDEO_EXTENSIONS:
            raise TspVideoError(f"{self.path}: a video, not features; extract its features first (tspvideo extract)")
        elif self.path.is_file():
            raise TspVideoError(f"{self.path}: not a feature folder nor an HDF5 file (.h5/.hdf5)")
        else:
            raise TspVideoError(f"{self.path}: feature folder or HDF5 file does not exist")

    def stems(self) -> list[str]:
        """Video stems (file stems of a folder, dataset names of an HDF5), sorted."""
        if self.kind == "folder":
            return sorted(p.stem for p in self.path.glob("*.npy") if not p.name.startswith("."))
        with _open_h5(self.path) as h5:
            return sorted(h5.keys())

    def location(self, stem: str) -> str:
        """Where the array of ``stem`` is, for messages."""
        return str(self.path / f"{stem}.npy") if self.kind == "folder" else f"{self.path}:{stem}"

    def load(self, stem: str) -> np.ndarray:
        """The array of ``stem``; a missing or unreadable one is an error naming it."""
        try:
            if self.kind == "folder":
                return np.load(self.path / f"{stem}.npy")
            with _open_h5(self.path) as h5:
                return np.asarray(h5[stem][()])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise TspVideoError(f"cannot read features {self.location(stem)}: {error}") from error

    def videos(self, grid: Grid | None = None, failures: list[tuple[str, str]] | None = None) -> list[VideoFeatures]:
        """Every video with its time grid (see :func:`read_features`)."""
        if self.kind == "folder":
            return _read_folder(self.path, grid, failures)
        return _read_h5(self.path, grid, failures)


def read_features(spec: str | os.PathLike, grid: Grid | None = None,
                  failures: list[tuple[str, str]] | None = None) -> list[VideoFeatures]:
    """All videos of a feature folder, HDF5 file or downloaded released file, sorted by stem.

    ``grid`` holds explicit flags (``--clip-len --stride --fps``): for a folder they fill what the
    sidecars lack; for an HDF5 they must agree with its attributes / released grid, and are required
    when the file has neither. A bad video is appended to ``failures`` as ``(location, reason)`` when a
    list is given (the rest goes on), otherwise its error is raised.
    """
    return FeatureSource(spec).videos(grid, failures)


def read_feature_folder(feature_dir: str | os.PathLike,
                        failures: list[tuple[str, str]] | None = None) -> list[VideoFeatures]:
    """All ``.npy`` feature files of a folder, sorted by stem (kept for callers of the folder-only API)."""
    feature_dir = Path(feature_dir)
    if not feature_dir.is_dir():
        raise TspVideoError(f"{feature_dir}: feature folder does not exist")
    return _read_folder(feature_dir, None, failures)


# --------------------------------------------------------------------------------------------------
# Matching feature keys to annotation ids
# --------------------------------------------------------------------------------------------------


def strip_prefix(name: str, prefix: str) -> str:
    """``name`` without ``prefix`` when it starts with it."""
    return name[len(prefix):] if prefix and name.startswith(prefix) else name


def match_annotations(database: Iterable[str], stems: Iterable[str], prefix: str = "") -> dict[str, str]:
    """Map annotation id -> feature stem.

    Accepts stems equal to the id, or differing by ``prefix`` or by ActivityNet's ``v_`` on either
    side (ActivityNet files are often named ``v_<id>.mp4`` while the JSON keys are bare ids).
    """
    stems = set(stems)
    matched = {}
    for video_id in database:
        candidates = [video_id, prefix + video_id, strip_prefix(video_id, prefix),
                      ACTIVITYNET_PREFIX + video_id, strip_prefix(video_id, ACTIVITYNET_PREFIX)]
        for candidate in candidates:
            if candidate in stems:
                matched[video_id] = candidate
                break
    return matched


@dataclass
class MatchReport:
    """Which annotated videos have no features, and which feature videos no annotation."""

    annotations_without_features: list[str]
    features_without_annotations: list[str]
    num_annotated: int
    num_features: int

    def summary(self) -> str:
        """One line for the user, with examples."""
        def part(names: list[str], total: int, what: str) -> str:
            example = f" (e.g. {', '.join(names[:3])})" if names else ""
            return f"{len(names)} of {total} {what}{example}"

        return (part(self.annotations_without_features, self.num_annotated, "annotated videos have no features")
                + "; " + part(self.features_without_annotations, self.num_features,
                              "feature videos have no annotation"))


def match_report(annotation_ids: Iterable[str], stems: Iterable[str], matched: dict[str, str]) -> MatchReport:
    """Compare annotation ids with feature stems given the ``matched`` id -> stem map."""
    annotation_ids, stems = list(annotation_ids), list(stems)
    used = set(matched.values())
    return MatchReport(annotations_without_features=sorted(set(annotation_ids) - set(matched)),
                       features_without_annotations=sorted(set(stems) - used),
                       num_annotated=len(annotation_ids), num_features=len(stems))
