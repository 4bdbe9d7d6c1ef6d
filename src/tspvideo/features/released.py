"""The feature files the TSP authors released: names, URLs, what is known of their size and hash, their grids.

Facts come from the TSP repository's README (github.com/HumamAlwassel/TSP, "Pre-extracted TSP Features")
and its ``data/*/global_video_features`` folder. Each released feature file is an HDF5 with one
``N x 512`` float dataset per ``video-name`` (the original metadata's file name without extension:
``v_<id>`` on ActivityNet, ``video_validation_0000051`` on THUMOS14) and no grid attributes, so the grid
below is what the README states: 16-frame clips at 15 fps, stride 16 on ActivityNet, stride 1 on THUMOS14.
The README gives no size or hash for those five files: they are downloaded unverified (``size`` and
``sha256`` are ``None``) rather than checked against invented values. The GVF files live in the
repository itself, whose tree gives their git blob ids (and, for the one stored here, size and SHA-256).
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from tspvideo.core.download import Expected, download
from tspvideo.core.errors import lookup
from tspvideo.core.grid import DEFAULT_CLIP_LEN, DEFAULT_FPS

FEATURES_URL = "https://github.com/HumamAlwassel/TSP/releases/download/"
REPO_FILE_URL = "https://raw.githubusercontent.com/HumamAlwassel/TSP/master/"


@dataclass(frozen=True)
class ReleasedFile:
    """One released file: clip features (with their time grid) or global video features (GVF)."""

    name: str
    url: str
    kind: str  # "features" or "gvf"
    weights: str  # the registered weights (tspvideo models) that produced it
    description: str
    clip_len: int | None = None
    fps: float | None = None
    stride: int | None = None
    expected: Expected = Expected()

    @property
    def filename(self) -> str:
        """The URL's file name (how the authors named it)."""
        return urllib.parse.urlparse(self.url).path.rsplit("/", 1)[-1]

    @property
    def cache_name(self) -> str:
        """File name in the cache: the URL's, prefixed by the dataset where two GVF files share a name."""
        return self.filename if self.kind == "features" else f"{self.name}.h5"

    @property
    def grid(self) -> tuple[int, float, int] | None:
        """(clip_len, fps, stride) of clip features; ``None`` for GVF files."""
        if self.clip_len is None or self.fps is None or self.stride is None:
            return None
        return self.clip_len, self.fps, self.stride


def _features(name: str, release: str, file: str, weights: str, stride: int, what: str) -> ReleasedFile:
    return ReleasedFile(name, f"{FEATURES_URL}{release}/{file}", "features", weights,
                        f"{what}; R(2+1)D-34 TSP, 16 frames at 15 fps, stride {stride}",
                        clip_len=DEFAULT_CLIP_LEN, fps=DEFAULT_FPS, stride=stride)


def _gvf(name: str, path: str, weights: str, what: str, blob: str, size: int | None = None,
         sha256: str | None = None) -> ReleasedFile:
    return ReleasedFile(name, REPO_FILE_URL + path, "gvf", weights, what,
                        expected=Expected(size=size, sha256=sha256, git_blob_sha1=blob))


_ANET_GVF = "data/activitynet/global_video_features/"
RELEASED: dict[str, ReleasedFile] = {f.name: f for f in [
    _features("activitynet-train", "activitynet_features", "r2plus1d_34-tsp_on_activitynet-train_features.h5",
              "r2plus1d_34-tsp_on_activitynet", 16, "ActivityNet v1.3 train"),
    _features("activitynet-valid", "activitynet_features", "r2plus1d_34-tsp_on_activitynet-valid_features.h5",
              "r2plus1d_34-tsp_on_activitynet", 16, "ActivityNet v1.3 valid"),
    _features("activitynet-test", "activitynet_features", "r2plus1d_34-tsp_on_activitynet-test_features.h5",
              "r2plus1d_34-tsp_on_activitynet", 16, "ActivityNet v1.3 test"),
    _features("thumos14-valid", "thumos14_features", "r2plus1d_34-tsp_on_thumos14-valid_features.h5",
              "r2plus1d_34-tsp_on_thumos14", 1, "THUMOS14 valid"),
    _features("thumos14-test", "thumos14_features", "r2plus1d_34-tsp_on_thumos14-test_features.h5",
              "r2plus1d_34-tsp_on_thumos14", 1, "THUMOS14 test"),
    # GVF of the initial encoders (TAC on Kinetics), one (512,) vector per video: the region head's input.
    _gvf("activitynet-gvf-r2plus1d_34-max", _ANET_GVF + "r2plus1d_34-max_gvf.h5", "r2plus1d_34-tac_on_kinetics",
         "ActivityNet GVF, max pooling", "07260b273634a6002fa0e549024c4bf6efd9acee"),
    _gvf("activitynet-gvf-r2plus1d_34-avg", _ANET_GVF + "r2plus1d_34-avg_gvf.h5", "r2plus1d_34-tac_on_kinetics",
         "ActivityNet GVF, average pooling", "6d626ec3367a6c0ce083b014bf7a43df46c1b441"),
    _gvf("activitynet-gvf-r2plus1d_18-max", _ANET_GVF + "r2plus1d_18-max_gvf.h5", "r2plus1d_18-tac_on_kinetics",
         "ActivityNet GVF, max pooling", "6270b65ae3d607af8140bd7baac65398860a12e9"),
    _gvf("activitynet-gvf-r3d_18-max", _ANET_GVF + "r3d_18-max_gvf.h5", "r3d_18-tac_on_kinetics",
         "ActivityNet GVF, max pooling", "4b9b1e8934590b0965406c43217f9aa8a30aaf4c"),
    _gvf("thumos14-gvf-r2plus1d_34-max", "data/thumos14/global_video_features/r2plus1d_34-max_gvf.h5",
         "r2plus1d_34-tac_on_kinetics", "THUMOS14 GVF, max pooling", "8d6a826b79018babfaf672c350ce455c8b0f2640",
         size=1882219, sha256="aefec41d2e3a138bf44ef1ba851643e4f1cc0c95f90791fe71f9cfdc3d1f4f72"),
]}


def released_file(name: str) -> ReleasedFile:
    """The registered released file called ``name``; unknown names get close matches suggested."""
    return lookup(RELEASED, name, "released file", "see `tspvideo features list`")


def features_cache_dir() -> Path:
    """Where released files are kept: ``$TSPVIDEO_CACHE/features`` or ``~/.cache/tspvideo/features``."""
    root = os.environ.get("TSPVIDEO_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "tspvideo") / "features"


def cached_path(info: ReleasedFile) -> Path:
    """Where ``info`` is (or will be) in the cache."""
    return features_cache_dir() / info.cache_name


def download_released(name: str, progress: bool = True) -> Path:
    """The cached copy of a released file, downloading it first when it is not there."""
    info = released_file(name)
    target = cached_path(info)
    if target.is_file():
        return target
    return download(info.url, target, info.expected, progress=progress, hint=" (or set TSPVIDEO_CACHE)")


def find_released(path: str | os.PathLike) -> ReleasedFile | None:
    """The released file a local path is a copy of, judged by its file name (the authors' or the cache's)."""
    name = Path(path).name
    return next((f for f in RELEASED.values() if f.kind == "features" and name in (f.filename, f.cache_name)),
                None)
