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
- :mod:`tspvideo.train.run`: ``train(config)``: data, model, optimizer, epochs.
"""

from tspvideo.train.checkpoint import BEST_NAME, CHECKPOINT_NAME, METRICS_NAME, save_checkpoint
from tspvideo.train.config import TrainConfig
from tspvideo.train.loop import WarmupMultiStep, evaluate, train_one_epoch, tsp_loss
from tspvideo.train.run import BASE_WEIGHTS, build_model, parameter_groups, train

__all__ = [
    "BASE_WEIGHTS", "BEST_NAME", "CHECKPOINT_NAME", "METRICS_NAME", "TrainConfig", "WarmupMultiStep", "build_model",
    "evaluate", "parameter_groups", "save_checkpoint", "train", "train_one_epoch", "tsp_loss",
]
