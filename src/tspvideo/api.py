"""What a notebook needs: an encoder with its input recipe, and the features of one video in memory.

```python
import tspvideo

encoder = tspvideo.load_encoder("r2plus1d_34-tsp_on_activitynet")  # a registered name, URL or checkpoint file
features, times = tspvideo.video_features("video.mp4", encoder)     # [T, C] float32, clip centres in seconds
```

The encoder carries the input its weights were trained on (:class:`~tspvideo.models.weights.InputRecipe`:
clip grid, frame sizes, normalisation; a ``tspvideo train`` checkpoint's own), so the features are on the
grid the weights expect unless told otherwise. Writing feature folders, resuming and many GPUs are
``tspvideo extract``'s job (:func:`tspvideo.extract.run.extract_dataset`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tspvideo.core.errors import TspVideoError
from tspvideo.extract.run import stream_features
from tspvideo.extract.streaming import ClipSettings
from tspvideo.models.tsp import TSPModel
from tspvideo.models.weights import InputRecipe, load_model
from tspvideo.video.decode import DEFAULT_SAMPLING


@dataclass(frozen=True)
class Encoder:
    """A model with the input recipe its weights were trained on and a description for sidecars."""

    model: TSPModel
    recipe: InputRecipe
    sampling: str = DEFAULT_SAMPLING  # which source frames: the checkpoint's rule, else the original's
    description: dict | None = None

    def grid(self, stride: int | None = None) -> ClipSettings:
        """The clip grid of this encoder's features; ``stride`` defaults to one feature per clip length."""
        return ClipSettings(clip_len=self.recipe.clip_len, fps=self.recipe.fps,
                            stride=stride if stride is not None else self.recipe.clip_len, sampling=self.sampling)


def load_encoder(source: str | os.PathLike, gvf: str | None = None) -> Encoder:
    """An encoder from a registered name, a URL or a checkpoint file (released or from ``tspvideo train``)."""
    model, description = load_model(str(source), gvf=gvf)
    trained = description.get("trained_input") or {}
    return Encoder(model, InputRecipe.from_dict(description["recipe"]), trained.get("sampling", DEFAULT_SAMPLING),
                   description)


def video_features(video: str | os.PathLike, encoder: Encoder, *, stride: int | None = None, device: str = "cpu",
                   batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Features ``[T, C]`` of one video and the centre time (s) of each, computed in memory."""
    grid = encoder.grid(stride)
    [(_, outcome)] = list(stream_features([Path(video)], encoder.model, grid, batch_size=batch_size, device=device,
                                          prep=encoder.recipe.preprocessing))
    if isinstance(outcome, str):
        raise TspVideoError(outcome)
    return outcome.features, grid.centers(len(outcome.features))
