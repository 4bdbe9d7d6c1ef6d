"""tspvideo: Temporally-Sensitive Pretraining (TSP) of video encoders for localization tasks.

The names a notebook needs are here (loaded on first use, so ``import tspvideo`` stays light):

- :func:`load_encoder` / :class:`Encoder`: a model with the input recipe its weights were trained on;
- :func:`video_features`: the features of one video, in memory, and the time of each;
- :func:`extract_dataset` / :class:`ExtractOptions`: a folder of features, resumable, with the encoder's input;
- :class:`ClipGrid` and the paper's defaults (:mod:`tspvideo.core.grid`);
- :class:`TrainConfig` and :func:`pretrain`: one training run (``tspvideo.train.train``; the package
  ``tspvideo.train`` holds its pieces, so the function has its own name here).
"""

from __future__ import annotations

from tspvideo.core.lazy import lazy_names

__version__ = "0.1.0"

# public name -> (module, name there)
_PUBLIC = {
    "Encoder": ("tspvideo.models.encoder", "Encoder"),
    "load_encoder": ("tspvideo.models.encoder", "load_encoder"),
    "video_features": ("tspvideo.api", "video_features"),
    "ExtractOptions": ("tspvideo.extract.options", "ExtractOptions"),
    "extract_dataset": ("tspvideo.extract.run", "extract_dataset"),
    "ClipGrid": ("tspvideo.core.grid", "ClipGrid"),
    "DEFAULT_CLIP_LEN": ("tspvideo.core.grid", "DEFAULT_CLIP_LEN"),
    "DEFAULT_FPS": ("tspvideo.core.grid", "DEFAULT_FPS"),
    "DEFAULT_STRIDE": ("tspvideo.core.grid", "DEFAULT_STRIDE"),
    "InputRecipe": ("tspvideo.models.weights", "InputRecipe"),
    "TrainConfig": ("tspvideo.train.config", "TrainConfig"),
    "pretrain": ("tspvideo.train.run", "train"),
}
__all__ = ["__version__", *_PUBLIC]


__getattr__, __dir__ = lazy_names("tspvideo", _PUBLIC, also=("__version__",))
