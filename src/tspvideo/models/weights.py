"""Known weights (released TSP/TAC checkpoints and base weights) and loading from a URL, cache or path.

Every file is read with ``torch.load(weights_only=True)``: no code from a checkpoint is ever run.
Files in the released layout (a dict with the state_dict under ``"model"``, keys ``features.*``,
``fc``/``fc1``/``fc2``) load as they are; torchvision/IG65M backbone files (keys ``stem.*``,
``layer*.*``, ``fc.*``) are mapped to the same layout.
"""

from __future__ import annotations

import argparse
import difflib
import os
import pickle
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import torch

from tspvideo.download import Expected, download, file_digests
from tspvideo.errors import TspVideoError
from tspvideo.models.tsp import ModelConfig, TSPModel, infer_config

RELEASE_URL = "https://github.com/HumamAlwassel/TSP/releases/download/model_weights/"
IG65M_URL = "https://github.com/moabitcoin/ig65m-pytorch/releases/download/v1.0.0/"
TORCHVISION_URL = "https://download.pytorch.org/models/"


@dataclass(frozen=True)
class WeightsInfo:
    """One known weights file: where it lives and what model and preprocessing it needs."""

    name: str
    url: str
    backbone: str
    heads: tuple[str, ...]
    num_classes: int
    gvf: str | None
    label_map: str | None  # name of the class list the action head predicts
    preprocessing: str = "tsp"  # key of tspvideo.data.transforms.PREPROCESSING

    @property
    def filename(self) -> str:
        """File name in the cache (the URL's last part)."""
        return urllib.parse.urlparse(self.url).path.rsplit("/", 1)[-1]

    @property
    def hash_prefix(self) -> str | None:
        """Leading hex digits of the file's SHA-256, as written in its name (``name-<hash>.pth``)."""
        stem = self.filename.rsplit(".", 1)[0]
        tail = stem.rsplit("-", 1)[-1]
        return tail if len(tail) >= 8 and all(c in "0123456789abcdef" for c in tail) else None

    def model_config(self) -> ModelConfig:
        """The architecture these weights fill."""
        return ModelConfig(self.backbone, self.num_classes, self.heads, self.gvf)


def _released(name: str, file: str, heads: tuple[str, ...], num_classes: int, gvf: str | None,
              label_map: str) -> WeightsInfo:
    backbone = file.split("-", 1)[0]
    return WeightsInfo(name, RELEASE_URL + file, backbone, heads, num_classes, gvf, label_map)


TSP, TAC = ("action", "region"), ("action",)
_ANET, _THUMOS, _K400 = "activitynet", "thumos14", "kinetics400"

WEIGHTS: dict[str, WeightsInfo] = {w.name: w for w in [
    _released("r2plus1d_34-tsp_on_activitynet",
              "r2plus1d_34-tsp_on_activitynet-max_gvf-backbone_lr_0.0001-fc_lr_0.002-epoch_5-0d2cf854.pth",
              TSP, 200, "max", _ANET),
    _released("r2plus1d_34-tsp_on_thumos14",
              "r2plus1d_34-tsp_on_thumos14-max_gvf-backbone_lr_0.0001-fc_lr_0.004-epoch_4-e6a30b2f.pth",
              TSP, 20, "max", _THUMOS),
    _released("r2plus1d_34-tac_on_activitynet",
              "r2plus1d_34-tac_on_activitynet-backbone_lr_0.0001-fc_lr_0.002-epoch_5-98ccac94.pth",
              TAC, 200, None, _ANET),
    _released("r2plus1d_34-tac_on_thumos14",
              "r2plus1d_34-tac_on_thumos14-backbone_lr_0.00001-fc_lr_0.002-epoch_3-54b5c8aa.pth",
              TAC, 20, None, _THUMOS),
    _released("r2plus1d_34-tac_on_kinetics", "r2plus1d_34-tac_on_kinetics-0547130e.pth", TAC, 400, None, _K400),
    _released("r2plus1d_34-tsp_on_activitynet-avg_gvf",
              "r2plus1d_34-tsp_on_activitynet-avg_gvf-backbone_lr_0.0001-fc_lr_0.004-epoch_5-8b74eaa2.pth",
              TSP, 200, "avg", _ANET),
    _released("r2plus1d_34-tsp_on_activitynet-no_gvf",
              "r2plus1d_34-tsp_on_activitynet-no_gvf-backbone_lr_0.0001-fc_lr_0.004-epoch_5-fb38fdd2.pth",
              TSP, 200, None, _ANET),
    _released("r2plus1d_18-tsp_on_activitynet",
              "r2plus1d_18-tsp_on_activitynet-max_gvf-backbone_lr_0.0001-fc_lr_0.002-epoch_6-22835b73.pth",
              TSP, 200, "max", _ANET),
    _released("r2plus1d_18-tac_on_activitynet",
              "r2plus1d_18-tac_on_activitynet-backbone_lr_0.0001-fc_lr_0.004-epoch_5-9f56941a.pth",
              TAC, 200, None, _ANET),
    _released("r2plus1d_18-tac_on_kinetics", "r2plus1d_18-tac_on_kinetics-76ce975c.pth", TAC, 400, None, _K400),
    _released("r3d_18-tsp_on_activitynet",
              "r3d_18-tsp_on_activitynet-max_gvf-backbone_lr_0.0001-fc_lr_0.002-epoch_6-85584422.pth",
              TSP, 200, "max", _ANET),
    _released("r3d_18-tac_on_activitynet",
              "r3d_18-tac_on_activitynet-backbone_lr_0.001-fc_lr_0.01-epoch_5-31fd6e95.pth",
              TAC, 200, None, _ANET),
    _released("r3d_18-tac_on_kinetics", "r3d_18-tac_on_kinetics-dcd952c6.pth", TAC, 400, None, _K400),
    # Base weights to initialise pretraining from (backbone files; their fc is a Kinetics-400 head).
    WeightsInfo("r2plus1d_34-ig65m_kinetics",
                IG65M_URL + "r2plus1d_34_clip8_ft_kinetics_from_ig65m-0aa0550b.pth",
                "r2plus1d_34", TAC, 400, None, _K400),
    WeightsInfo("r2plus1d_18-kinetics400", TORCHVISION_URL + "r2plus1d_18-91a641e6.pth",
                "r2plus1d_18", TAC, 400, None, _K400),
    WeightsInfo("r3d_18-kinetics400", TORCHVISION_URL + "r3d_18-b3b3357e.pth", "r3d_18", TAC, 400, None, _K400),
]}


def weights_info(name: str) -> WeightsInfo:
    """The registered weights called ``name``; unknown names get close matches suggested."""
    if name not in WEIGHTS:
        close = difflib.get_close_matches(name, WEIGHTS, n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise TspVideoError(f"unknown weights name {name!r}{hint} (see `tspvideo models`)")
    return WEIGHTS[name]


def cache_dir() -> Path:
    """Where downloaded weights are kept: ``$TSPVIDEO_CACHE`` or ``~/.cache/tspvideo/checkpoints``."""
    root = os.environ.get("TSPVIDEO_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "tspvideo" / "checkpoints"


def fetch(url: str, hash_prefix: str | None = None) -> Path:
    """Path of the cached copy of ``url``, downloading it (resumable, atomic, hash-checked) if missing."""
    filename = urllib.parse.urlparse(url).path.rsplit("/", 1)[-1]
    target = cache_dir() / filename
    if target.is_file():
        return target
    return download(url, target, Expected(sha256=hash_prefix),
                    hint=" (or set TSPVIDEO_CACHE), or pass the file's local path instead")


def resolve_weights(source: str) -> tuple[Path, WeightsInfo | None]:
    """Turn a registered name, a URL or a local path into a local file (and its info, if known)."""
    if source in WEIGHTS:
        info = WEIGHTS[source]
        return fetch(info.url, info.hash_prefix), info
    if source.startswith(("http://", "https://")):
        known = next((w for w in WEIGHTS.values() if w.url == source), None)
        return fetch(source, known.hash_prefix if known else None), known
    path = Path(source)
    if not path.is_file():
        if os.sep not in source and not path.suffix:
            weights_info(source)  # raises with close matches for a mistyped name
        raise TspVideoError(f"weights file not found: {source}")
    known = next((w for w in WEIGHTS.values() if w.filename == path.name), None)
    return path, known


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint file safely (``weights_only=True``), with a clear error on failure."""
    path = Path(path)
    allowed = [argparse.Namespace]  # the original training scripts saved their args in checkpoints
    try:
        if hasattr(torch.serialization, "safe_globals"):
            with torch.serialization.safe_globals(allowed):
                data = torch.load(path, map_location="cpu", weights_only=True)
        else:  # torch < 2.5
            torch.serialization.add_safe_globals(allowed)
            data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TspVideoError(f"cannot read checkpoint {path}: {first_line}") from error
    if not isinstance(data, dict):
        raise TspVideoError(f"checkpoint {path} holds a {type(data).__name__}, expected a dict")
    return data


def to_released_layout(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a backbone file's keys (torchvision/IG65M: ``stem.*``, ``fc.*``) to ``features.*``/``fc``."""
    if any(k.startswith("features.") for k in state_dict):
        return dict(state_dict)
    mapped = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")  # saved from DataParallel/DDP
        mapped[key if key.startswith("fc.") else f"features.{key}"] = value
    return mapped


def extract_state_dict(checkpoint: dict, path: str | os.PathLike = "checkpoint") -> dict[str, torch.Tensor]:
    """The model state_dict inside a checkpoint dict, in the released layout."""
    state = checkpoint.get("model", checkpoint)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TspVideoError(f"{path}: no model state_dict found (expected a dict of tensors under 'model')")
    return to_released_layout({k.removeprefix("module."): v for k, v in state.items()})


def load_model(source: str, gvf: str | None = None) -> tuple[TSPModel, dict]:
    """Build a model from weights (registered name, URL or path) and load them strictly.

    Returns the model (in eval mode) and a description (name, file, config, label map) for sidecars.
    ``gvf`` overrides how the GVF is pooled when the file does not say (released files do not).
    """
    path, info = resolve_weights(source)
    checkpoint = read_checkpoint(path)
    state_dict = extract_state_dict(checkpoint, path)
    if "model_config" in checkpoint:
        config = ModelConfig.from_dict(checkpoint["model_config"])
    elif info is not None:
        config = info.model_config()
    else:
        config = infer_config(state_dict, gvf=gvf or "max")
    if gvf is not None and config.uses_gvf:
        config = ModelConfig(config.backbone, config.num_classes, config.heads, gvf)
    model = TSPModel(config)
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    if missing or unexpected:
        raise TspVideoError(f"{path}: weights do not fit a {config.backbone} model "
                            f"(missing {missing[:3]}..., unexpected {unexpected[:3]}...)")
    model.eval()
    description = {
        "weights": info.name if info else str(source),
        "file": path.name,
        "sha256": file_digests(path)[0],  # identifies the weights in sidecars, whatever the file is called
        "model_config": config.to_dict(),
        "label_map": info.label_map if info else checkpoint.get("label_map"),
        "preprocessing": info.preprocessing if info else checkpoint.get("preprocessing", "tsp"),
    }
    if isinstance(checkpoint.get("input"), dict):  # a tspvideo run's clip grid and sizes: extract uses them
        description["trained_input"] = dict(checkpoint["input"])
    return model, description


def load_backbone_weights(model: TSPModel, source: str) -> WeightsInfo | None:
    """Initialise only the backbone of ``model`` from weights (heads stay as they are)."""
    path, info = resolve_weights(source)
    state_dict = extract_state_dict(read_checkpoint(path), path)
    backbone_state = {k.removeprefix("features."): v for k, v in state_dict.items() if k.startswith("features.")}
    missing, unexpected = model.features.load_state_dict(backbone_state, strict=False)
    if missing or unexpected:
        raise TspVideoError(f"{path}: backbone weights do not fit {model.config.backbone} "
                            f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return info
