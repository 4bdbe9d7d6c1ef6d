"""NVDEC decoding: the same sampled frames as PyAV, a PyAV fallback per video, errors before any work.

On CPU the logic runs with a stand-in for PyNvVideoCodec's decoder that decodes with PyAV and hands out
frames the way NVDEC's does (display order, a timestamp per frame, DLPack); ``test_nvdec_gpu.py`` runs
the real decoder where a GPU and PyNvVideoCodec are present.
"""

from __future__ import annotations

import itertools
import json
import logging
import subprocess
import sys

import av
import numpy as np
import pytest
import torch
from helpers import CONSTANT_RATE_KINDS, INDEX_VIDEOS, TinyEncoder, indices_shown

import tspvideo.extract.run as extract_module
import tspvideo.video.nvdec as nvdec
from tspvideo.core.grid import ClipGrid
from tspvideo.extract.options import ExtractOptions
from tspvideo.extract.run import extract_dataset, stream_features
from tspvideo.models.encoder import Encoder
from tspvideo.video.decode import SamplingClock, iter_sampled_frames
from tspvideo.video.synthetic import write_index_video


class StandInFrame:
    """A decoded frame as PyNvVideoCodec gives it: a timestamp and DLPack export."""

    def __init__(self, rgb: np.ndarray, pts: int) -> None:
        self.tensor = torch.from_numpy(rgb)
        self.pts = pts

    def getPTS(self) -> int:  # noqa: N802  (PyNvVideoCodec's name)
        return self.pts

    def __dlpack__(self, *args, **kwargs):
        return self.tensor.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.tensor.__dlpack_device__()


class StandInDecoder:
    """Decodes with PyAV, in display order; ``drop`` leaves out that display index (a decoder losing a frame).

    Timestamps are shifted by ``offset`` as NVDEC's are on mp4 files with B-frames (it ignores the edit list).
    """

    def __init__(self, path, gpu_id: int, drop: int | None = None, offset: int = -1024) -> None:
        self.container = av.open(str(path))
        frames = (f for f in self.container.decode(video=0))
        self.frames = (StandInFrame(f.to_ndarray(format="rgb24"), f.pts + offset)
                       for k, f in enumerate(frames) if k != drop)

    def get_batch_frames(self, count: int) -> list[StandInFrame]:
        return list(itertools.islice(self.frames, count))


@pytest.fixture
def stand_in(monkeypatch):
    monkeypatch.setattr(nvdec, "open_decoder", StandInDecoder)
    monkeypatch.setattr(extract_module, "nvdec_problem", lambda device: None)


@pytest.mark.parametrize("sampling", ["ffmpeg-fps", "timestamp"])
@pytest.mark.parametrize("kind", CONSTANT_RATE_KINDS)
def test_same_source_frames_as_pyav(stand_in, tmp_path, kind, sampling):
    path = tmp_path / f"{kind}.mp4"
    write_index_video(path, **INDEX_VIDEOS[kind])
    expected = indices_shown(iter_sampled_frames(path, 15, sampling=sampling))
    assert len(expected) > 5
    got = indices_shown(nvdec.iter_nvdec_frames(path, SamplingClock(15, sampling)))
    assert got == expected
    window = indices_shown(nvdec.iter_nvdec_frames(path, SamplingClock(15, sampling), 3, 7))
    assert window == expected[3:7]


def test_variable_frame_rate_goes_to_pyav_with_the_same_frames(stand_in, tmp_path):
    path = tmp_path / "vfr.mp4"
    write_index_video(path, **INDEX_VIDEOS["vfr"])
    with pytest.raises(nvdec.NvdecUnsupported, match="variable frame rate"):
        list(nvdec.iter_nvdec_frames(path, SamplingClock(15)))
    settings = ClipGrid(clip_len=4, fps=15, stride=4)
    [(_, outcome)] = list(stream_features([path], TinyEncoder(), settings, backend="nvdec", colour="decoder"))
    [(_, reference)] = list(stream_features([path], TinyEncoder(), settings, raw_frames=True, colour="decoder"))
    assert outcome.decoder == "pyav"
    np.testing.assert_allclose(outcome.features, reference.features, atol=1e-6)


def test_constant_rate_allows_one_tick_of_rounding():
    assert nvdec.constant_rate([0, 1001, 2002, 3003]) and nvdec.constant_rate([0, 33, 67, 100, 133])
    assert not nvdec.constant_rate([0, 2700, 9000, 10800])


def test_a_lost_frame_or_another_codec_is_unsupported_not_wrong(monkeypatch, tmp_path):
    path = tmp_path / "v.mp4"
    write_index_video(path, num_frames=30, fps=30)
    monkeypatch.setattr(nvdec, "open_decoder", lambda p, gpu: StandInDecoder(p, gpu, drop=7))
    with pytest.raises(nvdec.NvdecUnsupported, match="frame 7 has timestamp"):
        list(nvdec.iter_nvdec_frames(path, SamplingClock(15)))
    old = tmp_path / "old.avi"
    write_msmpeg4(old)
    with pytest.raises(nvdec.NvdecUnsupported, match="does not decode msmpeg4"):
        list(nvdec.iter_nvdec_frames(old, SamplingClock(15)))


def write_msmpeg4(path, frames: int = 30) -> None:
    """An AVI in MS-MPEG-4 (DivX 3), a codec NVDEC lacks."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("msmpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for k in range(frames):
            image = np.full((48, 64, 3), (k * 8) % 256, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_pipeline_with_nvdec_matches_pyav_and_falls_back_per_video(stand_in, tmp_path, caplog):
    """NVDEC sessions (stand-ins) and a PyAV worker share the videos; a codec NVDEC lacks goes to PyAV, logged."""
    folder = tmp_path / "videos"
    folder.mkdir()
    write_index_video(folder / "a.mp4", num_frames=90, fps=30, size=(64, 48))
    write_index_video(folder / "b.mp4", num_frames=70, fps=25, size=(64, 48))
    write_msmpeg4(folder / "c.avi")
    videos = sorted(folder.iterdir())
    settings = ClipGrid(clip_len=4, fps=15, stride=4)
    reference = {videos[i].name: o.features for i, o in stream_features(videos, TinyEncoder(), settings,
                                                                          raw_frames=True, colour="decoder")}
    for workers in (0, 1):
        out = tmp_path / f"nvdec{workers}"
        with caplog.at_level(logging.WARNING, logger="tspvideo.extract.streaming"):
            report = extract_dataset(videos, out, Encoder.of_module(TinyEncoder()),
                                     ExtractOptions.for_grid(settings, backend="nvdec", preprocess_on="device",
                                                             colour="decoder", workers=workers, nvdec_sessions=2,
                                                             progress=False, batch_size=32, amp="fp32"))
        assert sorted(report.written) == sorted(map(str, videos)) and not report.failed
        for video in videos:
            np.testing.assert_allclose(np.load(out / f"{video.stem}.npy"), reference[video.name], atol=1e-6)
        assert json.loads((out / "c.json").read_text())["decoded_with"] == "pyav"
        assert json.loads((out / "c.json").read_text())["provenance"]["settings"]["decoder"] == "nvdec"
        if workers == 0:  # NVDEC alone: every other video went through it
            assert json.loads((out / "a.json").read_text())["decoded_with"] == "nvdec"
        assert "decoding with PyAV instead of NVDEC" in caplog.text and "c.avi" in caplog.text


def test_a_failure_after_frames_were_used_fails_the_video(monkeypatch, tmp_path):
    write_index_video(tmp_path / "v.mp4", num_frames=200, fps=30, size=(64, 48))
    monkeypatch.setattr(nvdec, "open_decoder", lambda p, gpu: StandInDecoder(p, gpu, drop=150))
    monkeypatch.setattr(extract_module, "nvdec_problem", lambda device: None)
    report = extract_dataset([tmp_path / "v.mp4"], tmp_path / "out", Encoder.of_module(TinyEncoder()),
                             ExtractOptions.for_grid(ClipGrid(clip_len=4, fps=15, stride=4), backend="nvdec",
                                                     preprocess_on="device", progress=False, workers=0,
                                                     batch_size=32, amp="fp32"))
    [message] = report.failed.values()
    assert "frame 150" in message and "--backend pyav" in message
    assert not (tmp_path / "out" / "v.npy").exists()


def test_nvdec_on_a_cpu_is_a_clear_error_before_any_work(tmp_path):
    write_index_video(tmp_path / "v.mp4", num_frames=90, fps=30)
    out = tmp_path / "feats"
    result = subprocess.run([sys.executable, "-m", "tspvideo.cli", "extract", str(tmp_path / "v.mp4"), "--out",
                             str(out), "--random-init", "r2plus1d_18", "--backend", "nvdec", "--device", "cpu"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "--backend nvdec decodes on an NVIDIA GPU" in result.stderr
    assert not any(out.glob("*.npy"))


def test_decode_workers_forked_after_an_nvdec_run_work(stand_in, tmp_path):
    """A later extraction in the same process forks decode workers after NVDEC's threads and decoders have run
    (those are freed first: a worker freeing its copy of a decoder's GPU or FFmpeg state would crash)."""
    write_index_video(tmp_path / "v.mp4", num_frames=90, fps=30, size=(64, 48))
    settings = ClipGrid(clip_len=4, fps=15, stride=4)
    [(_, first)] = list(stream_features([tmp_path / "v.mp4"], TinyEncoder(), settings, backend="nvdec",
                                        raw_frames=True, colour="decoder"))
    [(_, second)] = list(stream_features([tmp_path / "v.mp4"], TinyEncoder(), settings, num_workers=1,
                                         raw_frames=True, colour="decoder"))
    np.testing.assert_allclose(first.features, second.features, atol=1e-6)


def test_nvdec_runs_without_pyav_workers_unless_asked():
    from tspvideo.extract.streaming import default_decode_workers

    assert default_decode_workers("cuda", "nvdec", 16) == 0
    assert ExtractOptions(workers=3, backend="nvdec", device="cpu").resolve().workers == 3
    assert default_decode_workers("cuda", "pyav", 16) >= 1
