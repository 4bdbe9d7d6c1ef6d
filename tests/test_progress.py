"""Extraction progress counts clips (total from the headers), so it moves during one long video."""

from __future__ import annotations

import io
import re

import pytest
from helpers import ChannelMeanEncoder

from tspvideo.core.grid import ClipGrid
from tspvideo.extract.options import ExtractOptions
from tspvideo.extract.progress import ClipProgress, expected_clips
from tspvideo.extract.run import extract_dataset
from tspvideo.models.encoder import Encoder
from tspvideo.video.synthetic import write_index_video

SETTINGS = ClipGrid(clip_len=4, fps=15, stride=4)



@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("progress")
    write_index_video(folder / "long.mp4", num_frames=120, fps=30, size=(64, 48))  # 60 frames at 15 fps: 15 clips
    write_index_video(folder / "short.mp4", num_frames=40, fps=30, size=(64, 48))  # 20 frames: 5 clips
    return [folder / "long.mp4", folder / "short.mp4"]


def test_expected_clips_come_from_the_header(videos, tmp_path):
    assert [expected_clips(v, SETTINGS) for v in videos] == [15, 5]
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 10)
    assert expected_clips(tmp_path / "bad.mp4", SETTINGS) == 0


def test_bar_moves_within_a_video_and_knows_the_total(videos):
    stream = io.StringIO()
    progress = ClipProgress(videos, SETTINGS, file=stream)
    assert progress._all_read.wait(30)
    progress.add_clips(6)  # part of the first video, which is not finished
    assert progress.bar.n == 6 and progress.bar.total == 20
    progress.add_clips(7)
    progress.video_done(0, 13)  # the video gave fewer clips than its header said: the total follows
    assert progress.bar.total == 18 and progress.videos_done == 1
    progress.video_done(1, None)  # failed: its clips are no longer expected
    assert progress.bar.total == 13
    progress.close()
    assert "1/2 videos" in stream.getvalue() or "2/2 videos" in stream.getvalue()


def test_extract_progress_counts_clips_with_rate(videos, tmp_path, capsys):
    report = extract_dataset(videos, tmp_path, Encoder.of_module(ChannelMeanEncoder(), weights="tiny"),
                             ExtractOptions.for_grid(SETTINGS, batch_size=4, progress=True, workers=0, amp="fp32"))
    assert report.clips == 20
    err = capsys.readouterr().err
    assert re.search(r"20/20 \[.*clip/s", err), err
    assert "2/2 videos" in err
