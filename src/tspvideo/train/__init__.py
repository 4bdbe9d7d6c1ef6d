"""Training (TSP, TAC and ablations): a typed :class:`TrainConfig` and :func:`train`.

```python
from tspvideo.train import TrainConfig, train

result = train(TrainConfig(train_csv="train.csv", valid_csv="valid.csv", video_dir="videos", out="runs/tsp",
                           recipe="tsp-activitynet", gvf="gvf.h5"))
```

- :mod:`tspvideo.train.config`: the options, one field per ``tspvideo train`` flag;
- :mod:`tspvideo.train.recipes`: the original's training scripts as named recipes;
- :mod:`tspvideo.train.loop`: loss, schedule, ``train_one_epoch`` and ``evaluate``;
- :mod:`tspvideo.train.checkpoint`: atomic checkpoints, exact resume, ``metrics.csv``;
- :mod:`tspvideo.train.layer_decay`: a ViT encoder's parameter groups (layer-wise learning-rate decay);
- :mod:`tspvideo.train.run`: ``train(config)``: data, model, optimizer, epochs.
"""

from tspvideo.core.lazy import lazy_names

# Loaded on first use: importing one light module of the package (e.g. its config) loads nothing else.
_NAMES = {
    "BEST_NAME": ("tspvideo.train.checkpoint", "BEST_NAME"),
    "CHECKPOINT_NAME": ("tspvideo.train.checkpoint", "CHECKPOINT_NAME"),
    "METRICS_NAME": ("tspvideo.train.checkpoint", "METRICS_NAME"),
    "save_checkpoint": ("tspvideo.train.checkpoint", "save_checkpoint"),
    "TrainConfig": ("tspvideo.train.config", "TrainConfig"),
    "WarmupMultiStep": ("tspvideo.train.loop", "WarmupMultiStep"),
    "evaluate": ("tspvideo.train.loop", "evaluate"),
    "train_one_epoch": ("tspvideo.train.loop", "train_one_epoch"),
    "tsp_loss": ("tspvideo.train.loop", "tsp_loss"),
    "BASE_WEIGHTS": ("tspvideo.train.run", "BASE_WEIGHTS"),
    "build_model": ("tspvideo.train.run", "build_model"),
    "parameter_groups": ("tspvideo.train.run", "parameter_groups"),
    "train": ("tspvideo.train.run", "train"),
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_names(__name__, _NAMES)
