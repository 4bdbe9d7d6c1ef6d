"""Truncated or partly downloaded files are reported, not shortened.

The files are real encoded synthetic videos with bytes cut off their end, in containers whose header
still declares the full duration after the cut (checked in each test): an AVI (its header counts the
frames), an mp4 whose index (moov) comes first, and a Matroska file (its segment header has the
duration). A file whose container declares nothing (MPEG program stream) behaves as before.
"""

from __future__ import annotations

import csv
import json
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from helpers import NOISE_FPS, NOISE_SECONDS, ChannelMeanEncoder, cut, encode

from tspvideo.cli import main
from tspvideo.core.errors import TruncatedVideoError
from tspvideo.core.grid import ClipGrid
from tspvideo.extract.options import ExtractOptions
from tspvideo.extract.run import extract_dataset
from tspvideo.models.encoder import Encoder
from tspvideo.video.decode import declared_duration, iter_sampled_frames
from tspvideo.video.synthetic import write_index_video

SETTINGS = ClipGrid(clip_len=4, fps=15, stride=4)
SECONDS, FPS = NOISE_SECONDS, NOISE_FPS  # the noise videos of helpers.encode: 100 frames


def header_and_decoded(path: Path) -> tuple[float | None, float]:
    """(duration the header declares, seconds actually decoded)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        declared = declared_duration(container, stream)
        frames = 0
        try:
            for _ in container.decode(stream):
                frames += 1
        except av.error.InvalidDataError:  # the last packet is cut in the middle
            pass
    return (float(declared) if declared is not None else None), frames / FPS


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("truncated")
    full = {
        "avi": encode(folder / "clip.avi", "avi", "mpeg4"),
        "mp4": encode(folder / "faststart.mp4", "mp4", "libx264", {"movflags": "faststart"}),
        "mkv": encode(folder / "clip.mkv", "matroska", "libx264"),
        "mpg": encode(folder / "clip.mpg", "mpeg", "mpeg2video"),
    }
    return folder, full


@pytest.mark.parametrize("kind", ["avi", "mp4", "mkv"])
def test_cut_file_still_declares_its_full_duration_and_fails(files, kind):
    _, full = files
    short = cut(full[kind], 0.3)
    declared, decoded = header_and_decoded(short)
    assert declared == pytest.approx(SECONDS, abs=0.2) and decoded < 0.5 * SECONDS  # the case to catch
    frames = []
    message = r"decoded \d+\.\d s of the 10\.0 s the file declares \(truncated\?\)"
    with pytest.raises(TruncatedVideoError, match=message):
        for _, frame in iter_sampled_frames(short, 15):
            frames.append(frame)
    assert len(frames) >= int(decoded * 15) - 2  # every decodable frame came out before the error


def test_full_files_and_small_cuts_pass(files):
    """No false alarm: complete files, and a cut losing less than the tolerance (max(1 s, 2 %))."""
    _, full = files
    for path in full.values():
        assert len(list(iter_sampled_frames(path, 15))) == SECONDS * 15
    short = cut(full["avi"], 0.97)
    declared, decoded = header_and_decoded(short)
    assert declared == pytest.approx(SECONDS) and SECONDS - 1 < decoded < SECONDS  # a few frames lost
    assert len(list(iter_sampled_frames(short, 15))) == math.ceil(decoded * 15 - 1e-9)


def test_container_without_declared_duration_behaves_as_before(files):
    """MPEG-PS declares no duration (FFmpeg estimates it from what it reads): the part is used, no error."""
    _, full = files
    short = cut(full["mpg"], 0.3)
    declared, decoded = header_and_decoded(short)
    assert declared is None or declared == pytest.approx(decoded, abs=1.0)
    assert 0 < len(list(iter_sampled_frames(short, 15))) < SECONDS * 15


def test_extract_reports_a_truncated_video_and_exits_1(files, tmp_path, capsys):
    """The issue's case: an AVI cut to 30 % of its bytes."""
    _, full = files
    folder = tmp_path / "videos"
    folder.mkdir()
    short = cut(full["avi"], 0.3).rename(folder / "short.avi")
    write_index_video(folder / "good.mp4", num_frames=30, fps=30, size=(64, 48))
    out = tmp_path / "out"
    args = ["--random-init", "r3d_18", "--clip-len", "4", "--stride", "20", "--workers", "0", "--no-progress"]
    assert main(["extract", str(folder), "--out", str(out), *args]) == 1
    with open(out / "failures.csv", newline="", encoding="utf-8") as f:
        [row] = list(csv.DictReader(f))
    assert row["video"] == str(short)
    assert "s the file declares (truncated?)" in row["error"] and "of the 10.0 s" in row["error"]
    assert not (out / "short.npy").exists() and (out / "good.npy").exists()

    # --accept-short keeps it, and its sidecar says so
    assert main(["extract", str(folder), "--out", str(out), "--accept-short", *args]) == 0
    sidecar = json.loads((out / "short.json").read_text(encoding="utf-8"))
    accepted = sidecar["accepted_short"]
    assert accepted["declared_seconds"] == pytest.approx(SECONDS) and accepted["decoded_seconds"] < 5
    assert "truncated?" in accepted["note"]
    assert np.load(out / "short.npy").shape[0] == sidecar["num_features"] > 0
    assert not (out / "failures.csv").exists()
    assert "--accept-short" in capsys.readouterr().out

    # without --accept-short again, the short video is not silently counted as done
    assert main(["extract", str(folder), "--out", str(out), *args]) == 1
    assert not (out / "short.npy").exists() and not (out / "short.json").exists()


def test_truncated_video_split_over_workers_reports_the_same(files, tmp_path, monkeypatch):
    """Long videos are cut into parts over decode workers: the last part finds the short end."""
    import tspvideo.extract.run as extract_module
    from tspvideo.extract.streaming import plan_units

    _, full = files
    short = cut(full["mp4"], 0.3)
    monkeypatch.setattr(extract_module, "plan_units",
                        lambda videos, settings, workers, **kw: plan_units(videos, settings, 100, part_frames=8))
    report = extract_dataset([short], tmp_path, Encoder.of_module(ChannelMeanEncoder(), weights="tiny"),
                             ExtractOptions.for_grid(SETTINGS, batch_size=3, workers=2, progress=False, amp="fp32"))
    assert "truncated?" in report.failed[str(short)]
    kept = extract_dataset([short], tmp_path / "kept", Encoder.of_module(ChannelMeanEncoder(), weights="tiny"),
                           ExtractOptions.for_grid(SETTINGS, batch_size=3, workers=0, progress=False,
                                                   accept_short=True, amp="fp32"))
    assert kept.written == [str(short)] and str(short) in kept.short
    _, decoded = header_and_decoded(short)
    sidecar = json.loads((tmp_path / "kept" / f"{short.stem}.json").read_text(encoding="utf-8"))
    assert sidecar["num_frames"] == pytest.approx(float(Fraction(decoded)) * 15, abs=2)
