"""Broken and unusual videos through extraction, GVF, the annotation importers' probing and training.

Every fault file is made here (PyAV and byte edits) and is a few kB. Each case has one defined
behaviour (see docs/reliability.md): correct output, or a one-line error naming the file and the cause
in the failures file while the other videos go on, with no partial output for the failed one.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from helpers import parse, tiny_train, train_argv

import tspvideo.commands.extract as extract_command
import tspvideo.commands.gvf as gvf_command
import tspvideo.video.decode as video_module
from tspvideo.cli import main
from tspvideo.core.errors import TspVideoError
from tspvideo.core.grid import ClipGrid
from tspvideo.datasets import annotations as ann
from tspvideo.datasets.clips import ClipSpec, SegmentClipDataset
from tspvideo.datasets.segments import Segment
from tspvideo.datasets.transforms import preprocess_clip
from tspvideo.extract.options import ExtractOptions
from tspvideo.extract.run import extract_dataset
from tspvideo.features.gvf import read_gvf
from tspvideo.models.encoder import Encoder, WeightsChoice
from tspvideo.video.decode import iter_sampled_frames, read_frames
from tspvideo.video.files import find_videos
from tspvideo.video.metadata import read_video_metadata, read_videos_metadata
from tspvideo.video.synthetic import read_frame_index, write_index_video

SETTINGS = ClipGrid(clip_len=4, fps=15, stride=4)
GOOD = "good.mp4"
UNREADABLE = "unreadable.mp4"
VFR_TIMES = [0.0, 0.03, 0.05, 0.2, 0.21, 0.4, 0.52, 0.61, 0.8, 0.95, 1.0, 1.1, 1.33, 1.4, 1.41, 1.6, 1.75, 1.9]

# name -> ("ok", features expected or None when checked otherwise) | ("fail", regex of the cause)
EXTRACT_CASES = {
    "zero-byte.mp4": ("fail", "empty file"),
    "truncated-index-last.mp4": ("fail", "cannot decode"),  # mp4 index (moov) after the data: cut off
    "truncated-index-first.mp4": ("fail", r"the file declares \(truncated\?\)"),  # opens, data cut
    "random-bytes.mp4": ("fail", "cannot decode"),
    "text.mp4": ("fail", "cannot decode"),
    "audio-only.mp4": ("fail", "no video stream"),
    "shorter-than-clip.mp4": ("fail", "too short"),
    "single-frame.mp4": ("fail", "too short"),
    "odd-97x55.mp4": ("ok", (20 - 4) // 4 + 1),
    "rotated.mp4": ("ok", (30 - 4) // 4 + 1),
    "vfr.mp4": ("ok", None),
    "fps120.mp4": ("ok", (15 - 4) // 4 + 1),
    "corrupt-middle.mp4": ("fail", "corrupt video data after"),
    "missing.mp4": ("fail", "file not found"),
    UNREADABLE: ("fail", "permission denied"),
    "spaces and ünïcödé.mp4": ("ok", (30 - 4) // 4 + 1),
    GOOD: ("ok", (30 - 4) // 4 + 1),
}


class TinyEncoder(torch.nn.Module):
    """Cheap deterministic encoder: per-frame channel means through a fixed linear map -> [B, 8]."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.randn(3 * SETTINGS.clip_len, 8, generator=torch.Generator().manual_seed(0))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return clips.mean(dim=(3, 4)).flatten(1) @ self.weight


# ----------------------------------------------------------------------------------------------------
# Fault files
# ----------------------------------------------------------------------------------------------------


def _video_packets(path: Path) -> list[tuple[int, int]]:
    """(byte offset, size) of each video packet of a file, in file order."""
    with av.open(str(path)) as container:
        return [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size]


def _remux_index_first(src: Path, dst: Path) -> None:
    """Copy ``src``'s video packets into an mp4 whose index (moov) comes before the data (faststart)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        in_stream = inp.streams.video[0]
        out_stream = out.add_stream_from_template(in_stream)
        for packet in inp.demux(in_stream):
            if packet.dts is not None:
                packet.stream = out_stream
                out.mux(packet)


def _rotate_90(mp4: bytes) -> bytes:
    """Set the track header's display matrix (mp4 ``tkhd``) to a 90 degree rotation; frames are unchanged."""
    at = mp4.index(b"tkhd")
    version = mp4[at + 4]
    offset = at + 8 + (32 if version == 1 else 20) + 16  # after version/flags, times/track id/duration, layer...
    assert struct.unpack(">9i", mp4[offset:offset + 36]) == (65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30)
    return mp4[:offset] + struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30) + mp4[offset + 36:]


def _write_audio_only(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000, layout="mono")
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _write_odd_size(path: Path, width: int = 97, height: int = 55, frames: int = 40) -> None:
    """libx264 refuses odd sizes in yuv420p; yuv444p (no chroma subsampling) takes them."""
    yy, xx = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        for i in range(frames):
            image = np.stack([(xx * 2 + i) % 256, (yy * 4) % 256, np.full_like(xx, 8 * i % 256)], -1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image.astype(np.uint8), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def make_fault_files(folder: Path) -> dict[str, Path]:
    """Write every case of ``EXTRACT_CASES`` (except the missing one) into ``folder``; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    write_index_video(folder / GOOD, num_frames=60, fps=30, size=(64, 48))  # 30 frames at 15 fps
    good = (folder / GOOD).read_bytes()
    (folder / "zero-byte.mp4").write_bytes(b"")
    (folder / "truncated-index-last.mp4").write_bytes(good[: len(good) // 2])
    work = folder.with_name(folder.name + "-work")  # outside the folder: it is searched for videos
    work.mkdir(exist_ok=True)
    write_index_video(work / "long.mp4", num_frames=150, fps=30, size=(64, 48))  # 5 s
    _remux_index_first(work / "long.mp4", work / "index-first.mp4")
    index_first = (work / "index-first.mp4").read_bytes()
    (folder / "truncated-index-first.mp4").write_bytes(index_first[: len(index_first) // 2])
    (folder / "random-bytes.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    (folder / "text.mp4").write_text("this is a text file, not a video\n", encoding="utf-8")
    _write_audio_only(folder / "audio-only.mp4")
    write_index_video(folder / "shorter-than-clip.mp4", num_frames=6, fps=30)  # 3 frames at 15 fps < 4
    write_index_video(folder / "single-frame.mp4", num_frames=1, fps=30)
    _write_odd_size(folder / "odd-97x55.mp4")  # 20 frames at 15 fps
    (folder / "rotated.mp4").write_bytes(_rotate_90(good))
    write_index_video(folder / "vfr.mp4", VFR_TIMES)
    write_index_video(folder / "fps120.mp4", num_frames=120, fps=120)  # 15 frames at 15 fps
    corrupt = bytearray(good)
    packets = _video_packets(folder / GOOD)
    pos, size = packets[len(packets) // 2]  # a packet in the middle: its length prefix and data become garbage
    corrupt[pos:pos + size] = b"\xff" * size
    (folder / "corrupt-middle.mp4").write_bytes(bytes(corrupt))
    (folder / UNREADABLE).write_bytes(good)
    os.chmod(folder / UNREADABLE, 0)
    (folder / "spaces and ünïcödé.mp4").write_bytes(good)
    paths = {name: folder / name for name in EXTRACT_CASES}
    assert not paths["missing.mp4"].exists()
    return paths


def deny_unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``unreadable.mp4`` unreadable also for root (which chmod does not stop) by denying access."""
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if Path(path).name == UNREADABLE and mode & os.R_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(video_module.os, "access", access)


@pytest.fixture(scope="module")
def faults(tmp_path_factory) -> dict[str, Path]:
    return make_fault_files(tmp_path_factory.mktemp("faults"))


@pytest.fixture(scope="module")
def extracted(faults, tmp_path_factory):
    """One extraction over all the cases (the way a dataset-wide job meets them): report and output folder."""
    out = tmp_path_factory.mktemp("features")
    with pytest.MonkeyPatch.context() as mp:
        deny_unreadable(mp)
        report = extract_dataset(list(faults.values()), out, Encoder.of_module(TinyEncoder(), weights="tiny"),
                                 ExtractOptions.for_grid(SETTINGS, batch_size=3, progress=False, workers=0, amp="fp32"))
    return report, out


# ----------------------------------------------------------------------------------------------------
# Extraction
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(EXTRACT_CASES))
def test_extract_each_case(name, faults, extracted):
    report, out = extracted
    outcome, detail = EXTRACT_CASES[name]
    stem = Path(name).stem
    if outcome == "fail":
        error = report.failed[str(faults[name])]
        assert str(faults[name]) in error and "\n" not in error
        assert re.search(detail, error), error
        assert not (out / f"{stem}.npy").exists() and not (out / f"{stem}.json").exists()  # nothing partial
    else:
        assert str(faults[name]) in report.written
        features = np.load(out / f"{stem}.npy")
        sidecar = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
        expected = detail if detail is not None else (sidecar["num_frames"] - 4) // 4 + 1
        assert features.shape == (expected, 8) and features.dtype == np.float32
        assert np.isfinite(features).all() and sidecar["num_features"] == expected
    assert not list(out.glob("*.tmp"))


def test_failures_file_lists_each_failure_on_one_line(faults, extracted):
    report, out = extracted
    with open(out / "failures.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    expected = sorted(str(faults[n]) for n, (outcome, _) in EXTRACT_CASES.items() if outcome == "fail")
    assert sorted(r["video"] for r in rows) == expected
    for row in rows:
        assert row["video"] in row["error"] and "\n" not in row["error"]
    assert (out / "failures.csv").read_text(encoding="utf-8").count("\n") == len(rows) + 1


def test_same_content_gives_the_same_features(extracted):
    """Rotation metadata and file names do not change the features (frames are used as stored)."""
    _, out = extracted
    good = np.load(out / "good.npy")
    np.testing.assert_array_equal(np.load(out / "rotated.npy"), good)
    np.testing.assert_array_equal(np.load(out / "spaces and ünïcödé.npy"), good)


def test_split_across_workers_fails_and_succeeds_the_same_videos(faults, extracted, tmp_path, monkeypatch):
    """Every video cut into parts of 2 clips over 2 workers: the same failures, the same features.

    (Equal up to float rounding: batches mix other clips, which changes the matrix product's blocking.)
    """
    import tspvideo.extract.run as extract_module
    from tspvideo.extract.streaming import plan_units

    report, out = extracted
    deny_unreadable(monkeypatch)
    monkeypatch.setattr(extract_module, "plan_units",
                        lambda videos, settings, workers, **kw: plan_units(videos, settings, 100, part_frames=8))
    split = extract_dataset(list(faults.values()), tmp_path, Encoder.of_module(TinyEncoder(), weights="tiny"),
                            ExtractOptions.for_grid(SETTINGS, batch_size=3, workers=2, progress=False, amp="fp32"))
    assert split.failed.keys() == report.failed.keys()
    assert sorted(split.written) == sorted(report.written)
    for path in split.written:
        stem = Path(path).stem
        np.testing.assert_allclose(np.load(tmp_path / f"{stem}.npy"), np.load(out / f"{stem}.npy"),
                                   rtol=1e-5, atol=1e-6)


def test_rotation_is_not_applied(faults):
    """The display matrix is there (FFmpeg reports -90 degrees) but frames stay in stored orientation."""
    with av.open(str(faults["rotated.mp4"])) as container:
        assert next(container.decode(video=0)).rotation in (90, -90, 270)
    frames = [frame for _, frame in iter_sampled_frames(faults["rotated.mp4"])]
    assert frames[0].shape == (48, 64, 3)
    assert [read_frame_index(f) for f in frames] == list(range(0, 60, 2))


def test_vfr_and_120fps_sample_by_either_rule(faults, extracted):
    _, out = extracted
    by_time = [(j, read_frame_index(f)) for j, f in iter_sampled_frames(faults["vfr.mp4"], sampling="timestamp")]
    for j, index in by_time:
        assert index == max(k for k, t in enumerate(VFR_TIMES) if t <= j / 15 + 1e-9)
    # The default (FFmpeg's fps=30 filter, then every second frame): the last frame whose nearest 30 fps tick,
    # halves up, is at most 2j.
    vfr = [(j, read_frame_index(f)) for j, f in iter_sampled_frames(faults["vfr.mp4"])]
    for j, index in vfr:
        assert index == max(k for k, t in enumerate(VFR_TIMES) if math.floor(Fraction(str(t)) * 30 + Fraction(1, 2))
                            <= 2 * j)
    assert json.loads((out / "vfr.json").read_text())["num_frames"] == len(vfr)
    assert [read_frame_index(f) for _, f in iter_sampled_frames(faults["fps120.mp4"], sampling="timestamp")] == list(
        range(0, 120, 8))
    # At 120 fps frame 8j+1 (time 2j/30 + 1/120) still rounds to tick 2j; 8j+2 lies halfway and rounds up.
    assert [read_frame_index(f) for _, f in iter_sampled_frames(faults["fps120.mp4"])] == list(range(1, 120, 8))
    # streaming extraction equals the per-clip reference path on both
    encoder = TinyEncoder()
    for stem in ("vfr", "fps120", "odd-97x55"):
        features = np.load(out / f"{stem}.npy")
        for i in (0, len(features) - 1):
            clip = preprocess_clip(torch.from_numpy(read_frames(faults[f"{stem}.mp4"], i * 4, 4)))
            with torch.no_grad():
                np.testing.assert_allclose(encoder(clip[None])[0].numpy(), features[i], rtol=1e-5, atol=1e-6)


def test_odd_size_decodes_at_its_size(faults):
    frames = [frame for _, frame in iter_sampled_frames(faults["odd-97x55.mp4"])]
    assert len(frames) == 20 and frames[0].shape == (55, 97, 3)


def test_unreadable_file_without_root(faults):
    """The real permission check (root reads anything, so there it is simulated in the other tests)."""
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not stop root from reading; covered by simulation")
    with pytest.raises(TspVideoError, match="permission denied"):
        next(iter_sampled_frames(faults[UNREADABLE]))
    with pytest.raises(TspVideoError, match="permission denied"):
        read_video_metadata(faults[UNREADABLE])


@pytest.fixture
def tiny_encoder_cli(monkeypatch):
    """`tspvideo extract` / `gvf` running the tiny encoder (and the simulated unreadable file)."""
    def load(args, choice):
        return Encoder.of_module(TinyEncoder(), weights="tiny")

    for command in (extract_command, gvf_command):
        monkeypatch.setattr(command, "weights_choice", lambda args: WeightsChoice("tiny"))
        monkeypatch.setattr(command, "load_chosen", load)
    deny_unreadable(monkeypatch)


def cli_inputs(faults, tmp_path) -> list[str]:
    """The fault files as command-line inputs; the missing one through a list (a path given on the command
    line that does not exist is a usage error, exit 2, see test_resume.py)."""
    listed = tmp_path / "missing.txt"
    listed.write_text(f"{faults['missing.mp4']}\n", encoding="utf-8")
    return [str(p) for name, p in faults.items() if name != "missing.mp4"] + [str(listed)]


def test_cli_extract_exit_code_and_failures(faults, tmp_path, capsys, tiny_encoder_cli):
    out = tmp_path / "out"
    inputs = cli_inputs(faults, tmp_path)
    grid = ["--clip-len", "4", "--stride", "4", "--workers", "0", "--no-progress"]
    assert main(["extract", *inputs, "--out", str(out), *grid]) == 1  # 1: some inputs failed
    printed = capsys.readouterr().out
    failed = sum(outcome == "fail" for outcome, _ in EXTRACT_CASES.values())
    assert f"{len(EXTRACT_CASES) - failed} written" in printed and f"{failed} failed" in printed
    assert str(out / "failures.csv") in printed
    # the rerun skips what is done, retries the failures (still failing) and says so again
    assert main(["extract", *inputs, "--out", str(out), *grid]) == 1
    assert f"{len(EXTRACT_CASES) - failed} already done" in capsys.readouterr().out


def test_cli_gvf_from_videos_pools_the_good_ones(faults, tmp_path, capsys, tiny_encoder_cli):
    inputs = cli_inputs(faults, tmp_path)
    code = main(["gvf", "--videos", *inputs, "--out", str(tmp_path / "gvf.h5"), "--clip-len", "4", "--stride", "4",
                 "--workers", "0", "--no-progress"])
    assert code == 1
    assert "failures listed in" in capsys.readouterr().out
    good = {Path(n).stem for n, (outcome, _) in EXTRACT_CASES.items() if outcome == "ok"}
    gvf = read_gvf(tmp_path / "gvf.h5")
    assert set(gvf) == good
    with open(tmp_path / "gvf_features" / "failures.csv", newline="", encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == len(EXTRACT_CASES) - len(good)


def test_same_stem_in_two_folders_is_an_error_before_work(tmp_path, capsys, tiny_encoder_cli):
    for sub in ("x", "y"):
        write_index_video(tmp_path / sub / "same name.mp4", num_frames=30, fps=30)
    out = tmp_path / "out"
    assert main(["extract", str(tmp_path / "x"), str(tmp_path / "y"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "share the name 'same name'" in err and err.count("\n") == 1
    assert not out.exists()
    assert main(["gvf", "--videos", str(tmp_path), "--out", str(tmp_path / "g.h5")]) == 2
    assert not (tmp_path / "g.h5").exists()


# ----------------------------------------------------------------------------------------------------
# Probing for the annotation importers
# ----------------------------------------------------------------------------------------------------

# Probing reads the header and decodes the first frame only: damage later in the file shows up when the
# video is decoded (extraction fails it, training replaces its clips).
PROBE_FAILS = {
    "zero-byte.mp4": "empty file", "truncated-index-last.mp4": "cannot open", "random-bytes.mp4": "cannot open",
    "text.mp4": "cannot open", "audio-only.mp4": "no video stream", "missing.mp4": "file not found",
    UNREADABLE: "permission denied",
}
PROBE_INFO = {"odd-97x55.mp4": (97, 55, 40), "fps120.mp4": (64, 48, 120), "single-frame.mp4": (64, 48, 1),
              "rotated.mp4": (64, 48, 60), "vfr.mp4": (64, 48, len(VFR_TIMES))}


@pytest.mark.parametrize("name", list(EXTRACT_CASES))
def test_probe_each_case(name, faults, monkeypatch):
    deny_unreadable(monkeypatch)
    if name in PROBE_FAILS:
        with pytest.raises(TspVideoError, match=PROBE_FAILS[name]) as info:
            read_video_metadata(faults[name])
        assert str(faults[name]) in str(info.value) and "\n" not in str(info.value)
    else:
        info = read_video_metadata(faults[name])
        assert info.num_frames > 0 and info.fps > 0 and info.duration > 0
        if name in PROBE_INFO:
            assert (info.width, info.height, info.num_frames) == PROBE_INFO[name]


def test_probe_videos_keeps_going(faults, monkeypatch):
    deny_unreadable(monkeypatch)
    infos, failures = read_videos_metadata(faults.values(), workers=2, progress=False)
    assert {p.name for p in failures} == set(PROBE_FAILS)
    assert len(infos) == len(EXTRACT_CASES) - len(PROBE_FAILS)


def test_annotation_importer_reports_unreadable_videos(faults, tmp_path, monkeypatch, capsys):
    deny_unreadable(monkeypatch)
    database = {Path(name).stem: {"subset": "training", "duration": 2.0,
                                  "annotations": [{"segment": [0.2, 0.9], "label": "jump"}]}
                for name in EXTRACT_CASES}
    (tmp_path / "ann.json").write_text(json.dumps({"database": database}), encoding="utf-8")
    out = tmp_path / "tables"
    code = main(["annotations", "generic", str(tmp_path / "ann.json"), "--video-dir", str(faults[GOOD].parent),
                 "--out", str(out), "--no-progress", "--workers", "2"])
    assert code == 1  # some videos missing or unreadable
    with open(out / "dataset_annotation_problems.csv", newline="", encoding="utf-8") as f:
        problems = [(r["video"], r["kind"], r["detail"]) for r in csv.DictReader(f)]
    for name, cause in PROBE_FAILS.items():
        stem = Path(name).stem
        kinds = {kind: detail for video, kind, detail in problems if video == stem}
        assert "missing-video" in kinds, stem  # no metadata: left out of the tables
        if name != "missing.mp4":
            assert cause in kinds["unreadable-video"] and str(faults[name]) in kinds["unreadable-video"]
    with open(out / "dataset_training_metadata.csv", newline="", encoding="utf-8") as f:
        listed = {Path(r["filename"]).stem for r in csv.DictReader(f)}
    assert listed == {Path(n).stem for n in EXTRACT_CASES if n not in PROBE_FAILS}


def test_annotation_importer_same_stem_takes_the_first_folder(tmp_path):
    """Two files with one name under the video folders: the first (folder order, then sorted) is used."""
    write_index_video(tmp_path / "a" / "clip.mp4", num_frames=30, fps=30)
    write_index_video(tmp_path / "b" / "clip.mp4", num_frames=60, fps=30)
    assert ann.index_video_dirs([tmp_path / "b", tmp_path / "a"])["clip"] == tmp_path / "b" / "clip.mp4"
    assert ann.index_video_dirs([tmp_path])["clip"] == tmp_path / "a" / "clip.mp4"


# ----------------------------------------------------------------------------------------------------
# Training dataset
# ----------------------------------------------------------------------------------------------------


# Clips of the first second: these videos give none, these decode (damage later in a file: next test).
TRAIN_REPLACED = ["zero-byte.mp4", "truncated-index-last.mp4", "random-bytes.mp4", "text.mp4", "audio-only.mp4",
                  "missing.mp4", UNREADABLE]
TRAIN_DECODED = [GOOD, "rotated.mp4", "vfr.mp4", "fps120.mp4", "spaces and ünïcödé.mp4", "truncated-index-first.mp4"]


def _segment(path: Path, root: Path, label: str) -> Segment:
    return Segment(path.stem, 0.0, 1.0, label, 1.0, path.relative_to(root).as_posix(), 30.0, 30, "Action")


def test_training_replaces_and_counts_undecodable_clips(faults, caplog, monkeypatch):
    """Each item of a bad video comes back as a real clip of a good one, counted and logged, never zeros."""
    deny_unreadable(monkeypatch)
    root = faults[GOOD].parent
    segments = [_segment(faults[name], root, "a") for name in [*TRAIN_REPLACED, *TRAIN_DECODED]]
    dataset = SegmentClipDataset(segments, root, train=True, label_map=["a"],
                                 spec=ClipSpec(clip_len=4, fps=15, clips_per_segment=1), seed=3)
    good_items = set(range(len(TRAIN_REPLACED), len(segments)))
    with caplog.at_level(logging.WARNING, logger="tspvideo.datasets.clips"):
        for index, segment in enumerate(dataset.segments):
            name = Path(segment.filename).name
            item = dataset[index]
            assert item["clip"].shape == (3, 4, 112, 112) and item["clip"].abs().sum() > 0
            if name in TRAIN_DECODED:
                assert item["replaced"] == 0 and item["index"] == index, name
            else:
                assert item["replaced"] >= 1 and item["index"] in good_items, name
    for name in TRAIN_REPLACED:
        assert f"replacing undecodable clip: {faults[name]}" in caplog.text, name


def test_training_clip_past_a_corrupt_or_truncated_end_is_replaced(faults):
    """A clip that reaches the damage is replaced; clips before it decode as usual."""
    root = faults[GOOD].parent
    corrupt = _segment(faults["corrupt-middle.mp4"], root, "a")
    corrupt = Segment(**{**corrupt.__dict__, "t_start": 0.0, "t_end": 2.0, "video_duration": 2.0})
    good = _segment(faults[GOOD], root, "a")
    dataset = SegmentClipDataset([corrupt, good], root, train=False, label_map=["a"],
                                 spec=ClipSpec(clip_len=4, fps=15, clips_per_segment=5))
    replaced = [dataset[i]["replaced"] for i in range(5)]
    assert replaced[0] == 0 and max(replaced) >= 1  # first clip decodes, a clip over the damage is replaced
    truncated = Segment("t", 0.0, 5.0, "a", 5.0, "truncated-index-first.mp4", 30.0, 150, "Action")
    dataset = SegmentClipDataset([truncated, good], root, train=False, label_map=["a"],
                                 spec=ClipSpec(clip_len=4, fps=15, clips_per_segment=5))
    items = [dataset[i] for i in range(5)]
    assert items[0]["replaced"] == 0 and items[-1]["replaced"] >= 1


def test_training_gives_up_clearly_when_nothing_decodes(faults):
    root = faults[GOOD].parent
    segments = [_segment(faults[name], root, "a") for name in ("zero-byte.mp4", "text.mp4")]
    dataset = SegmentClipDataset(segments, root, train=True, label_map=["a"],
                                 spec=ClipSpec(clip_len=4, fps=15, clips_per_segment=1))
    with pytest.raises(TspVideoError, match="could not be decoded"):
        dataset[0]


def test_missing_file_is_a_failure_of_that_video_only(tmp_path):
    """A video of a list that does not exist (or was deleted meanwhile) fails alone, with its name."""
    (tmp_path / "list.txt").write_text("gone.mp4\n", encoding="utf-8")
    assert find_videos([tmp_path / "list.txt"]) == [tmp_path / "gone.mp4"]
    with pytest.raises(TspVideoError, match="gone.mp4: file not found"):
        read_frames(tmp_path / "gone.mp4", 0, 4)


def test_training_run_counts_and_logs_replaced_clips(data, tmp_path):
    """A video of the table broken on disk: the epoch completes, the replacements are in metrics.csv and the log."""
    videos = tmp_path / "videos"
    videos.mkdir()
    names = sorted(p.name for p in data["videos"].glob("*.mp4"))
    for name in names:
        (videos / name).write_bytes((data["videos"] / name).read_bytes())
    (videos / names[0]).write_bytes(b"\x00" * 100)  # every clip of this video is undecodable
    argv = [a if a != str(data["videos"]) else str(videos) for a in train_argv(data, tmp_path / "run", "--epochs", "1")]
    result = tiny_train(parse(argv))
    row = result["metrics"][-1]
    assert row["train_replaced"] > 0 and row["train_clips"] > 0 and np.isfinite(row["train_loss"])
    with open(tmp_path / "run" / "metrics.csv", newline="", encoding="utf-8") as f:
        assert int(next(csv.DictReader(f))["train_replaced"]) == row["train_replaced"]
    log = (tmp_path / "run" / "train.log").read_text(encoding="utf-8")
    assert f"{row['train_replaced']} + " in log and "undecodable clip(s) replaced" in log
