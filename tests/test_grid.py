"""The clip grid: one formula and one copy of the paper's defaults, used by every grid type."""

from __future__ import annotations

import numpy as np

from tspvideo.core.grid import DEFAULT_CLIP_LEN, DEFAULT_FPS, DEFAULT_STRIDE, ClipGrid, clip_centers, num_clips
from tspvideo.datasets.clips import ClipSpec
from tspvideo.evaluation.similarity import feature_times
from tspvideo.features.folder import read_video_features
from tspvideo.models.weights import InputRecipe


def test_defaults_are_the_papers_and_every_grid_type_takes_them_from_one_place(tmp_path):
    assert (DEFAULT_CLIP_LEN, DEFAULT_FPS, DEFAULT_STRIDE) == (16, 15.0, 16)
    assert ClipGrid() == ClipGrid(DEFAULT_CLIP_LEN, DEFAULT_FPS, DEFAULT_STRIDE)
    settings = ClipGrid()
    assert isinstance(settings, ClipGrid)
    assert (settings.clip_len, settings.fps, settings.stride) == (DEFAULT_CLIP_LEN, DEFAULT_FPS, DEFAULT_STRIDE)
    assert (ClipSpec().clip_len, ClipSpec().fps) == (DEFAULT_CLIP_LEN, DEFAULT_FPS)
    recipe = InputRecipe("r2plus1d_34")
    assert (recipe.clip_len, recipe.fps) == (DEFAULT_CLIP_LEN, DEFAULT_FPS)
    np.save(tmp_path / "bare.npy", np.zeros((3, 4), np.float32))  # no sidecar: the default grid
    bare = read_video_features(tmp_path / "bare.npy")
    assert (bare.clip_len, bare.fps, bare.stride) == (DEFAULT_CLIP_LEN, DEFAULT_FPS, DEFAULT_STRIDE)
    np.testing.assert_array_equal(bare.feature_times, ClipGrid().centers(3))


def test_one_formula_for_clip_times():
    grid = ClipGrid(clip_len=8, fps=10.0, stride=4)
    expected = np.array([(i * 4 + 8 / 2) / 10.0 for i in range(5)])
    np.testing.assert_array_equal(grid.centers(5), expected)
    np.testing.assert_array_equal(clip_centers(5, 8, 4, 10.0), expected)
    np.testing.assert_array_equal(feature_times(5, clip_len=8, fps=10.0, stride=4), expected)
    assert grid.num_clips(7) == 0 and grid.num_clips(8) == 1 and grid.num_clips(20) == num_clips(20, 8, 4) == 4
    assert grid.clip_seconds == 0.8
    assert ClipGrid(clip_len=8, fps=10.0, stride=4).centers(5).tolist() == expected.tolist()
