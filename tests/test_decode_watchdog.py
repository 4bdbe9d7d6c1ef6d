"""The decode watchdog: a decoder that stops making progress fails its video with a one-line error, the run goes on.

Hangs are made to order: the decoding function extraction calls is replaced by one that decodes a real
video and then waits, for one of the files, on an event the test sets only when it ends.
"""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import TinyEncoder

import tspvideo.extract.streaming as streaming
from tspvideo.cli import main
from tspvideo.core.errors import TruncatedVideoError
from tspvideo.core.grid import ClipGrid
from tspvideo.extract.options import ExtractOptions
from tspvideo.extract.run import extract_dataset
from tspvideo.models.encoder import Encoder
from tspvideo.video.synthetic import write_index_video
from tspvideo.video.watchdog import DecodeTimeout, beat, watch_decoding

SETTINGS = ClipGrid(clip_len=4, fps=15, stride=4)


@pytest.fixture
def release():
    """An event hung decoders wait on; set when the test ends, so no thread outlives it."""
    event = threading.Event()
    yield event
    event.set()


def test_a_decoder_that_hangs_times_out(release):
    def frames():
        yield 1
        yield 2
        release.wait()  # hangs (until the test ends)
        yield 3

    got = []
    with pytest.raises(DecodeTimeout, match=r"thing\.mp4: timed out: the decoder made no progress for 0\.3 s"):
        for item in watch_decoding(frames, 0.3, "thing.mp4"):
            got.append(item)
    assert got == [1, 2]


def test_progress_without_frames_is_no_stall():
    """A decoder that reports progress (beat) while it skips frames is not taken for a hung one."""
    def frames():
        for _ in range(12):
            time.sleep(0.05)
            beat()  # a source frame decoded, none sampled
        yield "late frame"

    assert list(watch_decoding(frames, 0.4, "long-seek.mp4")) == ["late frame"]


def test_a_slow_consumer_is_no_stall():
    """Time the decoder waits for its frames to be taken does not count against it."""
    seen = []
    for item in watch_decoding(lambda: iter(range(8)), 0.3, "v.mp4"):
        time.sleep(0.1 if item < 7 else 0.5)  # the model is slow; the queue is full meanwhile
        seen.append(item)
    assert seen == list(range(8))


def test_errors_pass_through_and_no_limit_runs_in_place(tmp_path):
    def failing():
        yield 1
        raise TruncatedVideoError("v.mp4", 1.0, 5.0)

    with pytest.raises(TruncatedVideoError):
        list(watch_decoding(failing, 5, "v.mp4"))
    threads = []

    def where():
        threads.append(threading.current_thread())
        yield 0

    assert list(watch_decoding(where, None, "v.mp4")) == [0] and threads == [threading.current_thread()]
    assert list(watch_decoding(where, 5, "v.mp4")) == [0] and threads[1] is not threading.current_thread()


def test_stopping_early_stops_the_decoder():
    closed = threading.Event()

    def frames():
        try:
            yield from range(1000)
        finally:
            closed.set()

    watched = watch_decoding(frames, 5, "v.mp4")
    assert next(watched) == 0
    watched.close()
    assert closed.wait(10)


# ----------------------------------------------------------------------------------------------------
# Through extraction
# ----------------------------------------------------------------------------------------------------


@pytest.fixture
def hanging_decoder(monkeypatch, release):
    """Extraction decodes ``hang*.mp4`` files for their first 5 sampled frames, then hangs."""
    real = streaming.iter_sampled_frames

    def decode(path, *args, **kwargs):
        frames = real(path, *args, **kwargs)
        if not Path(path).name.startswith("hang"):
            return frames

        def hang():
            for j, frame in frames:
                if j == 5:
                    release.wait()
                yield j, frame

        return hang()

    monkeypatch.setattr(streaming, "iter_sampled_frames", decode)


@pytest.fixture
def videos(tmp_path):
    folder = tmp_path / "videos"
    for name in ("a.mp4", "hang.mp4", "z.mp4"):
        write_index_video(folder / name, num_frames=60, fps=30)  # 30 frames at 15 fps: 7 clips
    return folder


@pytest.mark.parametrize("workers", [0, 1])
def test_extraction_fails_the_hung_video_and_goes_on(videos, tmp_path, hanging_decoder, workers):
    out = tmp_path / "out"
    report = extract_dataset(sorted(videos.iterdir()), out, Encoder.of_module(TinyEncoder(), weights="tiny"),
                             ExtractOptions.for_grid(SETTINGS, batch_size=3, workers=workers, progress=False,
                                                     amp="fp32", video_timeout=0.5))
    hung = str(videos / "hang.mp4")
    assert sorted(report.written) == [str(videos / "a.mp4"), str(videos / "z.mp4")]
    assert list(report.failed) == [hung]
    with open(out / "failures.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["video"] for r in rows] == [hung]
    assert rows[0]["error"].startswith(f"{hung}: timed out: ") and "--video-timeout" in rows[0]["error"]
    assert not (out / "hang.npy").exists() and not (out / "hang.json").exists()
    assert np.load(out / "a.npy").shape == (7, 8)


def test_cli_video_timeout(videos, tmp_path, hanging_decoder, monkeypatch, capsys):
    import tspvideo.commands.extract as extract_command
    from tspvideo.models.encoder import WeightsChoice

    monkeypatch.setattr(extract_command, "weights_choice", lambda args: WeightsChoice("tiny"))
    monkeypatch.setattr(extract_command, "load_chosen", lambda args, choice: Encoder.of_module(TinyEncoder(),
                                                                                               weights="tiny"))
    out = tmp_path / "out"
    grid = ["--clip-len", "4", "--stride", "4", "--workers", "0", "--no-progress", "--device", "cpu"]
    assert main(["extract", str(videos), "--out", str(out), *grid, "--video-timeout", "0.5"]) == 1
    captured = capsys.readouterr()
    assert "2 written" in captured.out and "1 failed" in captured.out and "Traceback" not in captured.err
    assert "timed out" in (out / "failures.csv").read_text(encoding="utf-8")
    assert main(["extract", str(videos), "--out", str(out), *grid, "--video-timeout", "-1"]) == 2
    assert "--video-timeout must be 0 (no limit) or more seconds" in capsys.readouterr().err
