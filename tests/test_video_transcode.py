"""``tspvideo transcode``: constant frame rate, short side, fixed keyframe interval, resumable, failures listed."""

from __future__ import annotations

import csv
import math
from fractions import Fraction

import av
import numpy as np
import pytest

from tspvideo.cli import main
from tspvideo.video.metadata import read_video_metadata
from tspvideo.video.transcode import TranscodeOptions, output_size, transcode_folder, transcode_video


def write_video(path, frames=50, fps=25, size=(96, 54)):
    """A small real video whose frame i has grey level 5 * i (so frames can be told apart)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"crf": "0"}
        for i in range(frames):
            image = np.full((size[1], size[0], 3), 5 * i % 250, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.mark.parametrize("size, short, expected", [
    ((640, 360), 128, (228, 128)), ((360, 640), 128, (128, 228)), ((171, 128), 128, (172, 128)),
    ((100, 100), 127, (128, 128)), ((1920, 1080), 2, (4, 2)),
])
def test_output_size_even_and_aspect(size, short, expected):
    assert output_size(*size, short) == expected


def test_transcode_video_constant_rate_size_and_keyframes(tmp_path):
    src = write_video(tmp_path / "in.mp4", frames=50, fps=25, size=(96, 54))  # 2 s at 25 fps
    transcode_video(src, tmp_path / "out.mp4", TranscodeOptions(fps=30, short_side=32, gop=8))
    info = read_video_metadata(tmp_path / "out.mp4")
    assert (info.width, info.height, info.fps, info.num_frames) == (56, 32, 30.0, 60)
    with av.open(str(tmp_path / "out.mp4")) as container:
        frames = list(container.decode(video=0))
    assert [i for i, f in enumerate(frames) if f.key_frame] == list(range(0, 60, 8))
    # Output frame k shows, as FFmpeg's fps filter, the last source frame whose nearest 30 fps tick
    # (halves up) is <= k.
    levels = [int(np.median(f.to_ndarray(format="gray"))) for f in frames]
    expected = [5 * max(i for i in range(50) if math.floor(Fraction(30 * i, 25) + Fraction(1, 2)) <= k)
                for k in range(60)]
    assert max(abs(a - b) for a, b in zip(levels, expected, strict=True)) <= 3


def test_transcode_folder_resumes_keeps_names_and_lists_failures(tmp_path, capsys):
    src_dir, out_dir = tmp_path / "in", tmp_path / "out"
    write_video(src_dir / "v_a.mp4")
    write_video(src_dir / "sub" / "clip ü.mkv", frames=20)
    (src_dir / "broken.mp4").write_bytes(b"\x00" * 100)
    argv = ["transcode", str(src_dir), str(out_dir), "--short-side", "32", "--workers", "2", "--no-progress"]
    assert main(argv) == 1
    assert read_video_metadata(out_dir / "v_a.mp4").height == 32
    assert read_video_metadata(out_dir / "sub" / "clip ü.mkv").num_frames == 24  # 20 frames at 25 fps -> 0.8 s at 30
    assert not (out_dir / "broken.mp4").exists()
    with open(out_dir / "transcode_failures.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["filename"] for r in rows] == ["broken.mp4"] and "broken.mp4" in rows[0]["error"]
    assert not [p for p in out_dir.rglob(".*") if p.is_file()]  # no temporary files left behind

    # Rerun: finished outputs are skipped; after the bad input is removed the failures file goes away.
    mtime = (out_dir / "v_a.mp4").stat().st_mtime_ns
    (src_dir / "broken.mp4").unlink()
    assert main(argv) == 0
    assert (out_dir / "v_a.mp4").stat().st_mtime_ns == mtime
    assert not (out_dir / "transcode_failures.csv").exists()
    assert "0 transcoded, 2 already there, 0 failed" in capsys.readouterr().out


def test_transcode_folder_single_worker_report(tmp_path):
    write_video(tmp_path / "in" / "x.mp4", frames=10)
    report = transcode_folder(tmp_path / "in", tmp_path / "out", TranscodeOptions(short_side=16), workers=1,
                              progress=False)
    assert [p.name for p in report.done] == ["x.mp4"] and not report.failed and not report.skipped


def test_transcode_usage_errors(tmp_path):
    assert main(["transcode", str(tmp_path / "nope"), str(tmp_path / "out")]) == 2
    (tmp_path / "in").mkdir()
    assert main(["transcode", str(tmp_path / "in"), str(tmp_path / "in")]) == 2
    assert main(["transcode", str(tmp_path / "in"), str(tmp_path / "o"), "--gop", "0"]) == 2


@pytest.mark.parametrize("sampling", ["ffmpeg-fps", "timestamp"])
def test_transcoded_frames_follow_the_sampling_rule(tmp_path, sampling):
    """A 25 fps source transcoded to 30 fps: output frame k is the sampler's frame k at 30 fps (by default
    FFmpeg's fps filter, the original's re-encode), so clips at 15 fps hold the same source frames."""
    from tspvideo.video.decode import iter_sampled_frames
    from tspvideo.video.synthetic import read_frame_index, write_index_video

    src = tmp_path / "in.mp4"
    write_index_video(src, num_frames=61, fps=25, size=(64, 48))
    transcode_video(src, tmp_path / "out.mp4", TranscodeOptions(fps=30, short_side=48, gop=8, crf=4,
                                                                sampling=sampling))
    with av.open(str(tmp_path / "out.mp4")) as container:
        shown = [read_frame_index(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
        assert container.streams.video[0].average_rate == Fraction(30)
    assert shown == [read_frame_index(f) for _, f in iter_sampled_frames(src, fps=30, sampling=sampling)]
    at15 = [read_frame_index(f) for _, f in iter_sampled_frames(tmp_path / "out.mp4", fps=15, sampling=sampling)]
    assert at15 == [read_frame_index(f) for _, f in iter_sampled_frames(src, fps=15, sampling=sampling)]
