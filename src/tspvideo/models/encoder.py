"""An encoder: a model with the input its weights expect and what identifies the weights.

```python
from tspvideo.models.encoder import load_encoder

encoder = load_encoder("r2plus1d_34-tsp_on_activitynet")   # a registered name, URL or checkpoint file
resolved = encoder.resolve_input()                          # its clip grid and frame transforms
```

:class:`WeightsChoice` is the step before: the weights chosen and, where it costs no download, their input
(so that a grid the videos cannot hold fails before anything is loaded); a checkpoint file is read once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tspvideo.core.download import file_digests
from tspvideo.core.errors import TspVideoError
from tspvideo.core.grid import DEFAULT_SAMPLING, ClipGrid
from tspvideo.models.backbones import check_input_size
from tspvideo.models.hf_weights import weights_file
from tspvideo.models.inputs import PAPER_BACKBONE, InputOverrides, ResolvedInput, resolve_input
from tspvideo.models.tsp import ModelConfig, TSPModel, create_model
from tspvideo.models.weights import (
    WEIGHTS,
    InputRecipe,
    WeightsInfo,
    default_recipe,
    model_from_checkpoint,
    read_checkpoint,
    resolve_weights,
)

RANDOM_INIT = "random-init"


@dataclass(frozen=True)
class Encoder:
    """A model (a :class:`TSPModel`, whose backbone gives the features, or any module mapping clips
    ``[B, 3, L, H, W]`` to ``[B, C]``) with the input recipe of its weights and their identity."""

    model: torch.nn.Module
    recipe: InputRecipe
    weights: str = "custom"  # a registered name, the source given, "random-init" or a caller's name
    file: str | None = None  # the weights file's name
    sha256: str | None = None  # identifies the weights in sidecars, whatever the file is called
    label_map: str | list[str] | None = None  # the classes of the action head
    trained_input: Mapping[str, Any] | None = field(default=None)  # a tspvideo run's own input (``input``)

    @classmethod
    def of_module(cls, model: torch.nn.Module, recipe: InputRecipe | None = None, weights: str = "custom") -> Encoder:
        """Any module as an encoder; its input is ``recipe`` (default: the paper's, or its backbone's)."""
        if recipe is None:
            backbone = model.config.backbone if isinstance(model, TSPModel) else PAPER_BACKBONE
            recipe = default_recipe(backbone)
        return cls(model, recipe, weights)

    @property
    def config(self) -> ModelConfig | None:
        """The architecture, for a :class:`TSPModel`."""
        return self.model.config if isinstance(self.model, TSPModel) else None

    @property
    def backbone(self) -> str | None:
        """The backbone's registered name, where known."""
        return self.config.backbone if self.config else None

    @property
    def sampling(self) -> str:
        """Which source frames: the checkpoint's rule, else the original's."""
        return (self.trained_input or {}).get("sampling", DEFAULT_SAMPLING)

    def resolve_input(self, overrides: InputOverrides = InputOverrides()) -> ResolvedInput:
        """The grid and frame transforms of these weights (see :func:`tspvideo.models.inputs.resolve_input`),
        checked against the architecture: an input it cannot take fails here, not once per video."""
        resolved = resolve_input(self.recipe, self.trained_input, overrides, name=self.file or self.weights)
        if self.backbone is not None:
            check_input_size(self.backbone, resolved.grid.clip_len, resolved.prep.crop)
        return resolved

    def grid(self, stride: int | None = None) -> ClipGrid:
        """The clip grid of this encoder's features; ``stride`` defaults to one feature per clip length."""
        return self.resolve_input(InputOverrides(stride=stride)).grid

    def description(self) -> dict[str, Any]:
        """What a feature sidecar says of the model (weights, backbone, recipe, training input)."""
        description: dict[str, Any] = {"weights": self.weights}
        if self.file is not None:
            description["file"] = self.file
        if self.sha256 is not None:
            description["sha256"] = self.sha256
        if self.config is not None:
            description["backbone"] = self.config.backbone
            description["model_config"] = self.config.to_dict()
        if self.file is not None or self.label_map is not None:  # weights from a file always say
            description["label_map"] = self.label_map
        description["recipe"] = self.recipe.to_dict()
        if self.trained_input is not None:
            description["trained_input"] = dict(self.trained_input)
        return description


def random_encoder(backbone: str, seed: int = 0) -> Encoder:
    """``backbone`` with fixed random weights (the same for every call with ``seed``), for trying the pipeline."""
    with torch.random.fork_rng():  # fixed weights: a resumed run must continue with the same model
        torch.manual_seed(seed)
        model = create_model(backbone, heads=("region",), gvf=None)
    return Encoder(model.eval(), default_recipe(backbone), RANDOM_INIT)


@dataclass
class WeightsChoice:
    """Weights chosen, not yet built. Registered names and URLs are downloaded only by :meth:`load`; a local
    file is read once, here, and built from what was read."""

    source: str
    info: WeightsInfo | None = None
    path: Path | None = None
    checkpoint: dict | None = None
    random_backbone: str | None = None  # random weights of this backbone instead of a file

    @classmethod
    def random(cls, backbone: str) -> WeightsChoice:
        """Fixed random weights of ``backbone`` (see :func:`random_encoder`)."""
        return cls(RANDOM_INIT, random_backbone=backbone)

    @classmethod
    def of(cls, source: str | os.PathLike) -> WeightsChoice:
        """The weights ``source`` names: a registered name, a URL or a checkpoint file."""
        source = str(source)
        if source in WEIGHTS:
            return cls(source, WEIGHTS[source])
        if source.startswith(("http://", "https://")):
            return cls(source, next((w for w in WEIGHTS.values() if w.url == source), None))
        path, info = resolve_weights(source)
        return cls(source, info, path, read_checkpoint(path))

    @property
    def trained_input(self) -> dict | None:
        """The input a ``tspvideo train`` checkpoint was trained with (None for other files)."""
        trained = (self.checkpoint or {}).get("input")
        return dict(trained) if isinstance(trained, dict) else None

    @property
    def planned_recipe(self) -> InputRecipe | None:
        """The weights' recipe when known without building the model: registered weights' or a random
        backbone's default (None otherwise)."""
        if self.random_backbone is not None:
            return default_recipe(self.random_backbone)
        return self.info.recipe if self.info is not None else None

    def planned_input(self, overrides: InputOverrides = InputOverrides()) -> ResolvedInput | None:
        """The input, when it is known before the model is built (every field given, recorded or in a recipe)."""
        trained = self.trained_input or {}
        recipe = self.planned_recipe
        known = recipe is not None or ((overrides.clip_len is not None or "clip_len" in trained)
                                       and (overrides.fps is not None or "fps" in trained))
        name = self.path.name if self.path else self.source
        resolved = resolve_input(recipe, trained, overrides, name=name)  # contradictions fail here, early
        return resolved if known else None

    def load(self, gvf_pool: str | None = None) -> Encoder:
        """Build the model and load the weights strictly (``gvf_pool``: how an unregistered TSP file's GVF was
        pooled; released files do not say)."""
        if self.random_backbone is not None:
            return random_encoder(self.random_backbone)
        if self.checkpoint is None:
            self.path, self.info = resolve_weights(self.source)
            self.checkpoint = read_checkpoint(self.path)
        model, recipe = model_from_checkpoint(self.checkpoint, self.path, self.info, gvf=gvf_pool)
        info = self.info
        return Encoder(model, recipe, weights=info.name if info else self.source, file=self.path.name,
                       sha256=file_digests(weights_file(self.path) if self.path.is_dir() else self.path)[0],
                       label_map=info.label_map if info else self.checkpoint.get("label_map"),
                       trained_input=self.trained_input)


def load_encoder(source: str | os.PathLike, gvf_pool: str | None = None) -> Encoder:
    """An encoder from a registered name, a URL or a checkpoint file (released or from ``tspvideo train``)."""
    return WeightsChoice.of(source).load(gvf_pool)


def choose_weights(*, model: str | None = None, checkpoint: str | os.PathLike | None = None,
                   random_init: str | None = None) -> WeightsChoice:
    """The one weights choice among a registered name / URL, a file and a random backbone (exactly one)."""
    given = [value for value in (model, checkpoint, random_init) if value]
    if len(given) != 1:
        raise TspVideoError("choose the weights: --model NAME, --checkpoint PATH or --random-init BACKBONE")
    return WeightsChoice.random(random_init) if random_init else WeightsChoice.of(model or checkpoint)
