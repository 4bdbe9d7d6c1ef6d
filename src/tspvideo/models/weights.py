"""Known weights (released TSP/TAC checkpoints and base weights) and loading from a URL, cache or path.

Every file is read with ``torch.load(weights_only=True)``: no code from a checkpoint is ever run.
Files in the released layout (a dict with the state_dict under ``"model"``, keys ``features.*``,
``fc``/``fc1``/``fc2``) load as they are; torchvision/IG65M backbone files (keys ``stem.*``,
``layer*.*``, ``fc.*``) are mapped to the same layout.
"""

from __future__ import annotations

import argparse
import os
import pickle
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import torch

from tspvideo.core.download import Expected, download
from tspvideo.core.errors import TspVideoError, lookup
from tspvideo.core.grid import DEFAULT_CLIP_LEN, DEFAULT_FPS
from tspvideo.datasets.transforms import Preprocessing
from tspvideo.models.hf_registry import HF_BACKBONES
from tspvideo.models.hf_weights import HUB_SCHEME, hub_folder, hub_url, is_checkpoint_folder, read_checkpoint_folder
from tspvideo.models.tsp import ModelConfig, TSPModel, infer_config

RELEASE_URL = "https://github.com/HumamAlwassel/TSP/releases/download/model_weights/"
IG65M_URL = "https://github.com/moabitcoin/ig65m-pytorch/releases/download/v1.0.0/"
TORCHVISION_URL = "https://download.pytorch.org/models/"


KINETICS_MEAN, KINETICS_STD = (0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputRecipe:
    """The input a backbone's weights were trained on: clip grid, frame size and normalisation.

    Extraction and training take their defaults from it. ``resize`` is ``(H, W)`` or ``(S,)``: the
    short side resized to S, aspect ratio kept (torchvision's convention).
    """

    backbone: str
    clip_len: int = DEFAULT_CLIP_LEN
    fps: float = DEFAULT_FPS
    resize: tuple[int, ...] = (128, 171)
    crop: tuple[int, int] = (112, 112)
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    hf_processor: bool = False  # resize and crop as transformers' image processors (the ViTs' checkpoints)

    @classmethod
    def of(cls, backbone: str, clip_len: int, fps: float, prep: Preprocessing) -> InputRecipe:
        """The recipe of clips of ``clip_len`` frames at ``fps`` transformed by ``prep``."""
        return cls(backbone, clip_len, fps, tuple(prep.resize), tuple(prep.crop), tuple(prep.mean), tuple(prep.std),
                   prep.hf_processor)

    @property
    def preprocessing(self) -> Preprocessing:
        """The frame transforms of this recipe."""
        return Preprocessing(resize=tuple(self.resize), crop=tuple(self.crop), mean=tuple(self.mean),
                             std=tuple(self.std), hf_processor=self.hf_processor)

    def to_dict(self) -> dict:
        """JSON-friendly form (checkpoints, sidecars; ``hf_processor`` only where it is on)."""
        values = {"backbone": self.backbone, "clip_len": self.clip_len, "fps": self.fps, "resize": list(self.resize),
                  "crop": list(self.crop), "mean": list(self.mean), "std": list(self.std)}
        if self.hf_processor:
            values["hf_processor"] = True
        return values

    @classmethod
    def from_dict(cls, data: dict) -> InputRecipe:
        """Inverse of :meth:`to_dict` (missing normalisation: the backbone's default recipe's)."""
        default = default_recipe(data["backbone"])
        crop = data.get("crop", default.crop)
        crop = (crop, crop) if isinstance(crop, int) else tuple(crop)
        return cls(data["backbone"], int(data.get("clip_len", default.clip_len)), float(data.get("fps", default.fps)),
                   tuple(data.get("resize", default.resize)), crop, tuple(data.get("mean", default.mean)),
                   tuple(data.get("std", default.std)), bool(data.get("hf_processor", default.hf_processor)))


def _tsp_recipe(backbone: str) -> InputRecipe:
    """The paper's input: 16 frames at 15 fps, resized to 128x171, cropped to 112x112, Kinetics mean/std."""
    return InputRecipe(backbone)


# torchvision's Kinetics-400 weights, with their documented transforms (``<Model>_Weights.KINETICS400_V1
# .transforms()``) and the frame rate and clip length their accuracies were measured with (``meta["_docs"]``).
_TORCHVISION_RECIPES = {
    "s3d": InputRecipe("s3d", 128, 15.0, (256, 256), (224, 224), KINETICS_MEAN, KINETICS_STD),
    "mvit_v2_s": InputRecipe("mvit_v2_s", 16, 7.5, (256,), (224, 224), (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)),
    "swin3d_t": InputRecipe("swin3d_t", 32, 15.0, (256,), (224, 224), IMAGENET_MEAN, IMAGENET_STD),
    "swin3d_s": InputRecipe("swin3d_s", 32, 15.0, (256,), (224, 224), IMAGENET_MEAN, IMAGENET_STD),
    "swin3d_b": InputRecipe("swin3d_b", 32, 15.0, (256,), (224, 224), IMAGENET_MEAN, IMAGENET_STD),
}


def default_recipe(backbone: str) -> InputRecipe:
    """The input recipe of a backbone's Kinetics weights (the TSP paper's for the VideoResNets; the checkpoints'
    processor configuration for the ViTs from transformers, see ``hf_registry``)."""
    if backbone in HF_BACKBONES:
        return InputRecipe(backbone, **HF_BACKBONES[backbone].recipe)
    return _TORCHVISION_RECIPES.get(backbone) or _tsp_recipe(backbone)


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
    recipe: InputRecipe | None = None  # None: the backbone's default recipe

    def __post_init__(self) -> None:
        if self.recipe is None:
            object.__setattr__(self, "recipe", default_recipe(self.backbone))

    @property
    def filename(self) -> str:
        """File name in the cache (the URL's last part)."""
        return urllib.parse.urlparse(self.url).path.rsplit("/", 1)[-1]

    @property
    def hash_prefix(self) -> str | None:
        """Leading hex digits of the file's SHA-256, as written in its name (``name-<hash>.pth``)."""
        if self.url.startswith(HUB_SCHEME):
            return None
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
    # torchvision's Kinetics-400 weights of the newer backbones (URLs from their *_Weights enums).
    WeightsInfo("s3d-kinetics400", TORCHVISION_URL + "s3d-d76dad2f.pth", "s3d", TAC, 400, None, _K400),
    WeightsInfo("mvit_v2_s-kinetics400", TORCHVISION_URL + "mvit_v2_s-ae3be167.pth", "mvit_v2_s", TAC, 400, None,
                _K400),
    WeightsInfo("swin3d_t-kinetics400", TORCHVISION_URL + "swin3d_t-7615ae03.pth", "swin3d_t", TAC, 400, None, _K400),
    WeightsInfo("swin3d_s-kinetics400", TORCHVISION_URL + "swin3d_s-da41c237.pth", "swin3d_s", TAC, 400, None, _K400),
    WeightsInfo("swin3d_b-kinetics400", TORCHVISION_URL + "swin3d_b_1k-24f7c7c6.pth", "swin3d_b", TAC, 400, None,
                _K400),
    WeightsInfo("swin3d_b-kinetics400_imagenet22k", TORCHVISION_URL + "swin3d_b_22k-7c6ae6fa.pth", "swin3d_b", TAC,
                400, None, _K400),
    # ViT encoders from the hub (hf://<repo>@<revision>, see hf_weights): VideoMAE's Kinetics-400 self-supervised
    # encoders (a fixed random region head: only their features count) and fine-tuned classifiers, V-JEPA 2's
    # encoder. Revision "main" where no commit is recorded yet (to be pinned once one is checked).
    WeightsInfo("videomae_b-kinetics400_ssl", hub_url("MCG-NJU/videomae-base", "main"), "videomae_b", ("region",),
                0, None, None),
    WeightsInfo("videomae_b_ft-kinetics400",
                hub_url("MCG-NJU/videomae-base-finetuned-kinetics", "488eb9a0565f257b32866000305c8178965eb9f6"),
                "videomae_b_ft", TAC, 400, None, _K400),
    WeightsInfo("videomae_l-kinetics400_ssl", hub_url("MCG-NJU/videomae-large", "main"), "videomae_l", ("region",),
                0, None, None),
    WeightsInfo("videomae_l_ft-kinetics400", hub_url("MCG-NJU/videomae-large-finetuned-kinetics", "main"),
                "videomae_l_ft", TAC, 400, None, _K400),
    WeightsInfo("vjepa2_vitl-fpc64_256",
                hub_url("facebook/vjepa2-vitl-fpc64-256", "b3c1679b7c34d3255ef3547f27c7b226aefab26f"), "vjepa2_vitl",
                ("region",), 0, None, None),
]}


def weights_info(name: str) -> WeightsInfo:
    """The registered weights called ``name``; unknown names get close matches suggested."""
    return lookup(WEIGHTS, name, "weights name", "see `tspvideo models`")


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
    """Turn a registered name, a URL or a local path into a local file or hub checkpoint folder (and its info, if
    known)."""
    if source in WEIGHTS:
        info = WEIGHTS[source]
        if info.url.startswith(HUB_SCHEME):
            return hub_folder(info.url, cache_dir()), info
        return fetch(info.url, info.hash_prefix), info
    if source.startswith(("http://", "https://")):
        known = next((w for w in WEIGHTS.values() if w.url == source), None)
        return fetch(source, known.hash_prefix if known else None), known
    path = Path(source)
    if is_checkpoint_folder(path):
        return path, None
    if not path.is_file():
        if os.sep not in source and not path.suffix:
            weights_info(source)  # raises with close matches for a mistyped name
        raise TspVideoError(f"weights file not found: {source}")
    known = next((w for w in WEIGHTS.values() if w.filename == path.name), None)
    return path, known


def _load_failure(error: BaseException) -> str:
    """One line for a failed ``torch.load``. Safe loading's own first line advises ``weights_only=False``, which
    no option here offers (and a garbage file would not load either): its unpickler's reason is kept instead."""
    text = str(error).strip()
    if isinstance(error, pickle.UnpicklingError) and "WeightsUnpickler error:" in text:
        reason = " ".join(text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation")[0].split())
        return f"not a checkpoint that loads safely, without running code ({reason or 'unpickling failed'})"
    if not isinstance(error, (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError)):
        return f"not a PyTorch checkpoint, or a damaged one ({type(error).__name__}: {text or 'no detail'})"
    return text.splitlines()[0] if text else type(error).__name__


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint file safely (``weights_only=True``), or a hub checkpoint folder (``hf_weights``), with a
    clear error on failure."""
    path = Path(path)
    if is_checkpoint_folder(path):
        return read_checkpoint_folder(path)
    allowed = [argparse.Namespace]  # the original training scripts saved their args in checkpoints
    try:
        if hasattr(torch.serialization, "safe_globals"):
            with torch.serialization.safe_globals(allowed):
                data = torch.load(path, map_location="cpu", weights_only=True)
        else:  # torch < 2.5
            torch.serialization.add_safe_globals(allowed)
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged or foreign file can fail anywhere in the unpickler (KeyError, ...)
        raise TspVideoError(f"cannot read checkpoint {path}: {_load_failure(error)}") from error
    if not isinstance(data, dict):
        raise TspVideoError(f"checkpoint {path} holds a {type(data).__name__}, expected a dict")
    return data


# The Kinetics classifier of each torchvision video model file, which becomes the single (TAC) head ``fc``.
_CLASSIFIER_KEYS = {f"{prefix}.{kind}": f"fc.{kind}" for prefix in ("fc", "classifier.1", "head.1", "head")
                    for kind in ("weight", "bias")}


def _is_backbone_file(state_dict: dict[str, torch.Tensor]) -> bool:
    """A torchvision/IG65M model file rather than the released layout.

    Keys alone do not tell: torchvision's S3D and Swin parameters also start with ``features.``; their
    classifier keys do.
    """
    torchvision_classifier = any(k in _CLASSIFIER_KEYS and not k.startswith("fc.") for k in state_dict)
    released = any(k.startswith(("features.", "fc1.", "fc2.")) for k in state_dict)
    return torchvision_classifier or not released


def to_released_layout(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a backbone file's keys (torchvision/IG65M: ``stem.*``, ``fc.*``...) to ``features.*``/``fc``.

    The classifier of torchvision's video files (``fc``, S3D's 1x1x1 convolution ``classifier.1``,
    MViT's ``head.1``, Swin's ``head``) becomes the linear head ``fc``.
    """
    state_dict = {k.removeprefix("module."): v for k, v in state_dict.items()}  # saved from DataParallel/DDP
    if not _is_backbone_file(state_dict):
        return dict(state_dict)
    mapped = {}
    for key, value in state_dict.items():
        if key in _CLASSIFIER_KEYS:
            mapped[_CLASSIFIER_KEYS[key]] = value.flatten(1) if value.ndim > 2 else value
        else:
            mapped[f"features.{key}"] = value
    return mapped


def extract_state_dict(checkpoint: dict, path: str | os.PathLike = "checkpoint") -> dict[str, torch.Tensor]:
    """The model state_dict inside a checkpoint dict, in the released layout."""
    state = checkpoint.get("model", checkpoint)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TspVideoError(f"{path}: no model state_dict found (expected a dict of tensors under 'model')")
    return to_released_layout({k.removeprefix("module."): v for k, v in state.items()})


def model_from_checkpoint(checkpoint: dict, path: Path, info: WeightsInfo | None = None,
                          gvf: str | None = None) -> tuple[TSPModel, InputRecipe]:
    """The model (in eval mode) holding a checkpoint's weights, loaded strictly, and its input recipe.

    The architecture: the checkpoint's ``model_config`` (a tspvideo run), else the registered weights' (``info``),
    else inferred from the keys. ``gvf`` overrides how the GVF is pooled when the file does not say (released
    files do not). Use :func:`tspvideo.models.encoder.load_encoder` to load weights by name, URL or path.
    """
    state_dict = extract_state_dict(checkpoint, path)
    if "model_config" in checkpoint:
        config = ModelConfig.from_dict(checkpoint["model_config"])
    elif info is not None:
        config = info.model_config()
    else:
        config = infer_config(state_dict, gvf=gvf or "max")
    if gvf is not None and config.uses_gvf:
        config = ModelConfig(config.backbone, config.num_classes, config.heads, gvf)
    model = _model_with_weights(config, state_dict, path)
    model.eval()
    recipe = info.recipe if info else checkpoint_recipe(checkpoint, config.backbone)
    return model, recipe


def _model_with_weights(config: ModelConfig, state_dict: dict[str, torch.Tensor], path: Path) -> TSPModel:
    """The model holding exactly ``state_dict``, built without initialising weights that are then overwritten.

    The model is built on the ``meta`` device and takes the file's tensors (as float32): random
    initialisation of the large transformers costs more than reading their weights.
    """
    with torch.device("meta"):
        model = TSPModel(config)
    tensors = {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}
    try:
        missing, unexpected = model.load_state_dict(tensors, strict=False, assign=True)
    except RuntimeError as error:  # shape mismatches
        first_line = str(error).strip().splitlines()[-1].strip()
        raise TspVideoError(f"{path}: weights do not fit a {config.backbone} model ({first_line})") from error
    if missing or unexpected:
        raise TspVideoError(f"{path}: weights do not fit a {config.backbone} model "
                            f"(missing {missing[:3]}..., unexpected {unexpected[:3]}...)")
    return model


def checkpoint_recipe(checkpoint: dict, backbone: str) -> InputRecipe:
    """The input recipe a checkpoint was trained with: its ``recipe``, else its ``input`` grid (tspvideo runs
    before recipes were stored), else the backbone's default (released files store none: the paper's)."""
    if isinstance(checkpoint.get("recipe"), dict):
        return InputRecipe.from_dict({**checkpoint["recipe"], "backbone": backbone})
    if isinstance(checkpoint.get("input"), dict):
        return InputRecipe.from_dict({**checkpoint["input"], "backbone": backbone})
    return default_recipe(backbone)


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
