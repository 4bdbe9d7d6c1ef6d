"""``import tspvideo``: the notebook names, and the README's example run as written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import tspvideo
from tspvideo.core.grid import ClipGrid
from tspvideo.models.tsp import create_model
from tspvideo.train import TrainConfig, save_checkpoint
from tspvideo.train.run import train
from tspvideo.video.synthetic import write_index_video

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_example() -> str:
    section = README.read_text(encoding="utf-8").split("## From Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_public_names_are_the_library_objects():
    assert tspvideo.ClipGrid is ClipGrid and tspvideo.TrainConfig is TrainConfig and tspvideo.pretrain is train
    assert (tspvideo.DEFAULT_CLIP_LEN, tspvideo.DEFAULT_FPS, tspvideo.DEFAULT_STRIDE) == (16, 15.0, 16)
    assert {"load_encoder", "video_features", "Encoder", "pretrain"} <= set(dir(tspvideo))


def test_readme_example_runs_on_a_trained_checkpoint(tmp_path, monkeypatch, capsys):
    """The example loads a `tspvideo train` checkpoint and gets features on the grid it was trained on."""
    monkeypatch.chdir(tmp_path)
    write_index_video("video.mp4", num_frames=60, fps=30.0, size=(64, 48))  # 2 s: 30 frames at 15 fps
    torch.manual_seed(0)
    model = create_model("r3d_18", num_classes=0, heads=("region",), gvf=None)
    trained_input = {"clip_len": 4, "fps": 15.0, "sampling": "timestamp", "clips_per_segment": 2,
                     "resize": [36, 48], "crop": [32, 32]}
    recipe = {"backbone": "r3d_18", "clip_len": 4, "fps": 15.0, "resize": [36, 48], "crop": [32, 32],
              "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    save_checkpoint(Path("runs/tsp/best.pth"), {"model": model.state_dict(), "model_config": model.config.to_dict(),
                                                "preprocessing": "tsp", "input": trained_input, "recipe": recipe})
    namespace: dict = {}
    exec(compile(_readme_example(), "README.md", "exec"), namespace)

    encoder, features, times = namespace["encoder"], namespace["features"], namespace["times"]
    assert (encoder.recipe.clip_len, encoder.recipe.crop, encoder.sampling) == (4, (32, 32), "timestamp")
    assert encoder.recipe.mean == (0.5, 0.5, 0.5)  # the checkpoint's normalisation, not the paper's
    grid = encoder.grid()
    assert (grid.clip_len, grid.fps, grid.stride) == (4, 15.0, 4)
    assert features.dtype == np.float32 and features.shape == (grid.num_clips(30), 512)
    np.testing.assert_allclose(times, (np.arange(len(features)) * 4 + 2) / 15.0)
    assert str(features.shape) in capsys.readouterr().out


def test_every_lazily_handed_on_name_resolves():
    """Packages that load their modules on first use: every name they list is there (a stale table fails here,
    not in a user's session)."""
    import importlib

    for package in ("tspvideo", "tspvideo.train", "tspvideo.localization", "tspvideo.runs.experiment"):
        module = importlib.import_module(package)
        for name in module.__all__:
            assert getattr(module, name) is not None, (package, name)
        with pytest.raises(AttributeError):
            module.no_such_name  # noqa: B018
