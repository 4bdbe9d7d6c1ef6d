"""What a notebook needs: an encoder with its input recipe, and the features of one video in memory.

```python
import tspvideo

encoder = tspvideo.load_encoder("r2plus1d_34-tsp_on_activitynet")  # a registered name, URL or checkpoint file
features, times = tspvideo.video_features("video.mp4", encoder)     # [T, C] float32, clip centres in seconds
```

The encoder carries the input its weights were trained on (:class:`~tspvideo.models.weights.InputRecipe`:
clip grid, frame sizes, normalisation; a ``tspvideo train`` checkpoint's own), so the features are on the
grid the weights expect unless told otherwise. Writing feature folders, resuming and many GPUs are
:func:`tspvideo.extract.run.extract_dataset`'s job (what ``tspvideo extract`` runs).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tspvideo.core.errors import TspVideoError
from tspvideo.extract.run import stream_features
from tspvideo.models.encoder import Encoder, load_encoder
from tspvideo.models.inputs import InputOverrides

__all__ = ["Encoder", "load_encoder", "video_features"]


def video_features(video: str | os.PathLike, encoder: Encoder, *, stride: int | None = None, device: str = "cpu",
                   batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Features ``[T, C]`` of one video and the centre time (s) of each, computed in memory."""
    resolved = encoder.resolve_input(InputOverrides(stride=stride))
    [(_, outcome)] = list(stream_features([Path(video)], encoder.model, resolved.grid, batch_size=batch_size,
                                          device=device, prep=resolved.prep))
    if isinstance(outcome, str):
        raise TspVideoError(outcome)
    return outcome.features, resolved.grid.centers(len(outcome.features))
