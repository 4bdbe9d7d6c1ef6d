"""Weights of the ViT encoders from a hub checkpoint folder (``config.json``, ``*.safetensors``,
``preprocessor_config.json``): registered repositories at a pinned revision, or any local snapshot folder.

A folder is read into the same checkpoint dict a tspvideo file holds (the released layout: ``features.*``, heads
``fc``), so loading, training from it and extracting with it go through the one path of
:mod:`tspvideo.models.weights`. Its architecture must be a registered backbone's (``tspvideo models``); its input
recipe comes from its own ``preprocessor_config.json`` (and the frame count from ``config.json``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from tspvideo.core.download import offline_message
from tspvideo.core.errors import TspVideoError
from tspvideo.models.hf_registry import EXTRA_MESSAGE, HF_BACKBONES, VIDEOMAE, VJEPA2, HFSpec

HUB_SCHEME = "hf://"  # a registered weights "URL": hf://<repo>@<revision>
HUB_URL = "https://huggingface.co/"
# config.json fields that fix an architecture (the others: dropout, initialisation, the pretraining decoder...).
_STRUCTURE = {
    VIDEOMAE: ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "num_frames",
               "image_size", "patch_size", "tubelet_size", "use_mean_pooling"),
    VJEPA2: ("hidden_size", "num_hidden_layers", "num_attention_heads", "mlp_ratio", "patch_size", "tubelet_size"),
}
_FILES = ["*.json", "*.safetensors"]  # what a snapshot needs: configs and weights


def hub_url(repo: str, revision: str) -> str:
    """The registered form of a hub checkpoint: ``hf://<repo>@<revision>``."""
    return f"{HUB_SCHEME}{repo}@{revision}"


def split_hub_url(url: str) -> tuple[str, str]:
    """``(repo, revision)`` of ``hf://<repo>@<revision>``."""
    repo, _, revision = url.removeprefix(HUB_SCHEME).partition("@")
    return repo, revision or "main"


def own_folder(repo: str, cache: Path) -> Path:
    """Where a checkpoint folder downloaded by hand goes: ``<cache>/hf/<owner>--<name>``."""
    return cache / "hf" / repo.replace("/", "--")


def is_checkpoint_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a hub checkpoint folder (holds ``config.json``)."""
    return (Path(path) / "config.json").is_file()


def hub_folder(url: str, cache: Path) -> Path:
    """The local folder of a registered hub checkpoint: one put in ``cache`` by hand, else ``transformers``' own
    cache (downloading it there when online). Offline: the one-line "download it and put it here" error."""
    repo, revision = split_hub_url(url)
    own = own_folder(repo, cache)
    if is_checkpoint_folder(own):
        return own
    try:
        from huggingface_hub import snapshot_download
    except ImportError as error:
        raise TspVideoError(EXTRA_MESSAGE) from error
    try:
        return Path(snapshot_download(repo, revision=revision, allow_patterns=_FILES))
    except Exception as error:  # offline, unknown revision, no permission: many types
        raise TspVideoError(offline_message(
            f"{HUB_URL}{repo}/tree/{revision} ({', '.join(_FILES)})", own, _first_line(error),
            " (a folder; or pass the folder itself as the weights)")) from error


def _first_line(error: BaseException) -> Exception:
    """``error`` shown by its type's name and its first line (the hub's errors span several lines)."""
    text = str(error).strip()
    return type(type(error).__name__, (Exception,), {})(text.splitlines()[0] if text else "")


def weights_file(folder: Path) -> Path:
    """The weights file of a checkpoint folder (what identifies the weights in sidecars)."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise TspVideoError(f"{folder}: no *.safetensors weights in the checkpoint folder")
    return files[0]


def matching_spec(config) -> HFSpec:
    """The registered backbone whose architecture is ``config``'s (a ``transformers`` config)."""
    family = getattr(config, "model_type", None)
    if family not in _STRUCTURE:
        raise TspVideoError(f"config.json has model_type {family!r}: only videomae and vjepa2 checkpoints are known")
    fields = _STRUCTURE[family]
    for spec in HF_BACKBONES.values():
        if spec.family == family and all(_same(getattr(config, k, None), spec.arch.get(k)) for k in fields
                                         if k in spec.arch):
            return spec
    shown = ", ".join(f"{k}={getattr(config, k, None)}" for k in fields)
    raise TspVideoError(f"no registered backbone has this {family} architecture ({shown}); see `tspvideo models`")


def _same(value: object, expected: object) -> bool:
    if isinstance(expected, float) or isinstance(value, float):
        return value is not None and float(value) == float(expected)
    return value == expected


def folder_recipe(folder: Path, spec: HFSpec, config) -> dict:
    """The input recipe (``InputRecipe.to_dict`` form) of a checkpoint folder: its processor configuration's
    sizes and mean/std, its frame count; the frame rate is the registry's (processors do not record it)."""
    recipe = {"backbone": spec.name, **{k: list(v) if isinstance(v, tuple) else v for k, v in spec.recipe.items()}}
    recipe["clip_len"] = int(getattr(config, "num_frames" if spec.family == VIDEOMAE else "frames_per_clip"))
    processor = next((folder / name for name in ("preprocessor_config.json", "video_preprocessor_config.json")
                      if (folder / name).is_file()), None)
    if processor is None:
        return recipe
    values = json.loads(processor.read_text(encoding="utf-8"))
    crop = values.get("crop_size", recipe["crop"][0])
    crop = int(crop["height"]) if isinstance(crop, dict) else int(crop)
    recipe["crop"] = [crop, crop]
    size = values.get("size") or {}
    if spec.family == VJEPA2:  # VJEPA2VideoProcessor derives the resize from the crop
        recipe["resize"] = [int(crop * 256 / 224)]
    elif isinstance(size, dict) and "shortest_edge" in size:
        recipe["resize"] = [int(size["shortest_edge"])]
    elif isinstance(size, dict) and "height" in size:
        recipe["resize"] = [int(size["height"]), int(size["width"])]
    elif isinstance(size, int):
        recipe["resize"] = [size]
    for key, name in (("mean", "image_mean"), ("std", "image_std")):
        if values.get(name):
            recipe[key] = [float(v) for v in values[name]]
    return recipe


def read_checkpoint_folder(folder: str | os.PathLike) -> dict:
    """A hub checkpoint folder as a tspvideo checkpoint dict: ``model`` (released layout), ``model_config``,
    ``recipe``, ``label_map``.

    A video classifier's head (VideoMAE fine-tuned on Kinetics) becomes the action head ``fc`` (TAC); a bare
    encoder gets a fixed random region head (its features are what counts). V-JEPA 2's predictor is not read.
    """
    from tspvideo.models.hf_video import require_transformers

    folder = Path(folder)
    transformers = require_transformers()
    try:
        config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as error:
        raise TspVideoError(f"{folder}: cannot read config.json ({str(error).strip().splitlines()[0]})") from error
    spec = matching_spec(config)
    # A classifier's head is kept where it reads the clip feature (fine-tuned VideoMAE: fc_norm of the mean token).
    classifier = (spec.pooling == "fc_norm" and "VideoMAEForVideoClassification" in (config.architectures or []))
    model_class = (transformers.VideoMAEForVideoClassification if classifier else
                   transformers.VideoMAEModel if spec.family == VIDEOMAE else transformers.VJEPA2Model)
    try:
        model = model_class.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError, RuntimeError) as error:
        raise TspVideoError(f"{folder}: cannot load the weights ({str(error).strip().splitlines()[0]})") from error
    state, label_map, num_classes = _state(model, spec, classifier, config)
    heads = ("action",) if classifier else ("region",)
    model_config = {"backbone": spec.name, "num_classes": num_classes, "heads": list(heads), "gvf": None,
                    "num_regions": 2}
    return {"model": state, "model_config": model_config, "label_map": label_map,
            "recipe": folder_recipe(folder, spec, config), "hub_folder": str(folder)}


def _state(model, spec: HFSpec, classifier: bool, config) -> tuple[dict[str, torch.Tensor], list[str] | None, int]:
    """The released-layout state dict of a loaded ``transformers`` model, its classes and their count."""
    if spec.family == VJEPA2:
        state = {f"features.encoder.{k}": v for k, v in model.encoder.state_dict().items()}
    else:
        body = model.videomae if classifier else model
        state = {f"features.videomae.{k}": v for k, v in body.state_dict().items()}
    if not classifier:
        if spec.pooling == "fc_norm":
            raise TspVideoError(f"{spec.name} needs a fine-tuned VideoMAE checkpoint (fc_norm); this one has none")
        with torch.random.fork_rng():  # a fixed head: the same file gives the same model
            torch.manual_seed(0)
            head = torch.nn.Linear(spec.feature_dim, 2)
            torch.nn.init.normal_(head.weight, 0.0, 0.01)
            torch.nn.init.zeros_(head.bias)
        state.update({"fc.weight": head.weight.detach(), "fc.bias": head.bias.detach()})
        return state, None, 0
    state.update({f"features.fc_norm.{k}": v for k, v in model.fc_norm.state_dict().items()})
    state.update({f"fc.{k}": v for k, v in model.classifier.state_dict().items()})
    labels = [config.id2label[i] for i in range(config.num_labels)] if config.id2label else None
    return state, labels, int(config.num_labels)


def hub_page(url: str) -> str:
    """The web address and revision of a registered hub checkpoint (what ``tspvideo models --urls`` shows)."""
    repo, revision = split_hub_url(url)
    return f"{HUB_URL}{repo} (revision {revision})"


def hub_cached(url: str, cache: Path) -> bool:
    """Whether a registered hub checkpoint is on this machine: put in ``cache`` by hand, or in the hub's cache."""
    repo, revision = split_hub_url(url)
    if is_checkpoint_folder(own_folder(repo, cache)):
        return True
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(repo, "config.json", revision=revision), str)
