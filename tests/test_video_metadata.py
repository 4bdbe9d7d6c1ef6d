"""Video probing with PyAV: header metadata, packet-count fallback, clear errors, parallel probing."""

from __future__ import annotations

import av
import numpy as np
import pytest

from tspvideo.core.errors import VideoDecodeError
from tspvideo.video.metadata import VideoInfo, read_video_metadata, read_videos_metadata


def write_video(path, frames=20, fps=10, size=(64, 48), codec="libx264", fmt=None):
    """A small real video; ``fmt`` names the muxer when the extension does not."""
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(frames):
            image = np.full((size[1], size[0], 3), i * 11 % 255, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def test_mp4_metadata(tmp_path):
    info = read_video_metadata(write_video(tmp_path / "a.mp4", frames=25, fps=10, size=(64, 36)))
    assert info == VideoInfo(duration=2.5, fps=10.0, num_frames=25, width=64, height=36)


def test_matroska_without_frame_count_is_counted(tmp_path):
    path = write_video(tmp_path / "b.mkv", frames=17, fps=25)
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 0  # the header has no count: the fallback is needed
    info = read_video_metadata(path)
    assert info.num_frames == 17 and info.fps == 25.0 and info.duration == pytest.approx(17 / 25)


def test_non_ascii_name(tmp_path):
    assert read_video_metadata(write_video(tmp_path / "vidéo ü.mp4", frames=5)).num_frames == 5


def test_errors_name_the_file_and_cause(tmp_path):
    (tmp_path / "garbage.mp4").write_bytes(b"\x00junk" * 200)
    with pytest.raises(VideoDecodeError, match="garbage.mp4: cannot open"):
        read_video_metadata(tmp_path / "garbage.mp4")
    with pytest.raises(VideoDecodeError, match="missing.mp4: file not found"):
        read_video_metadata(tmp_path / "missing.mp4")


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "sound.mka"
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with pytest.raises(VideoDecodeError, match="no video stream"):
        read_video_metadata(path)


def test_probe_videos_keeps_going(tmp_path):
    good = [write_video(tmp_path / f"{i}.mp4", frames=5 + i) for i in range(3)]
    (tmp_path / "bad.mp4").write_bytes(b"nope")
    infos, failures = read_videos_metadata([*good, tmp_path / "bad.mp4", tmp_path / "gone.mp4"], workers=3,
                                   progress=False)
    assert {p.name: i.num_frames for p, i in infos.items()} == {"0.mp4": 5, "1.mp4": 6, "2.mp4": 7}
    assert sorted(p.name for p in failures) == ["bad.mp4", "gone.mp4"]
    assert "bad.mp4" in failures[tmp_path / "bad.mp4"]
