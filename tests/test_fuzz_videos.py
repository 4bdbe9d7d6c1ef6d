"""A corrupted-video corpus through extraction: features of the right length, or one failures row, never a traceback.

Small videos of the project's frame-index pictures are encoded in four containers (mp4/H.264,
Matroska/H.264, AVI/MPEG-4 part 2, MPEG program stream/MPEG-2), then damaged: single bytes flipped
and short runs overwritten at offsets spread over each file (headers and index included), and copies cut
at many points. One extraction runs over the whole corpus (the way a dataset-wide job meets such
files), with the decode watchdog on. Every file must end either written, with as many features as the
frames its decoder delivered make clips, or failed, with a one-line error naming it in failures.csv.

Files cut short whose decoder reports only "Invalid data" get a hint that they look truncated.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import av
import numpy as np
import pytest
from helpers import ChannelMeanEncoder, encode

from tspvideo.core.errors import VideoDecodeError
from tspvideo.core.grid import ClipGrid, num_clips
from tspvideo.extract.options import ExtractOptions
from tspvideo.extract.run import extract_dataset
from tspvideo.models.encoder import Encoder
from tspvideo.models.inputs import PAPER_BACKBONE
from tspvideo.models.weights import InputRecipe
from tspvideo.video.decode import iter_sampled_frames
from tspvideo.video.metadata import read_video_metadata
from tspvideo.video.synthetic import index_frame
from tspvideo.video.truncation import truncation_hint

SETTINGS = ClipGrid(clip_len=4, fps=15, stride=4)
SOURCE_FRAMES, SOURCE_FPS = 60, 30  # 2 s: 30 sampled frames, 7 clips
CONTAINERS = {"mp4": ("mp4", "libx264"), "mkv": ("matroska", "libx264"), "avi": ("avi", "mpeg4"),
              "mpg": ("mpeg", "mpeg2video")}
FLIPS, RUNS, CUTS = 14, 4, 8  # damaged copies of each source file


def write_source(path: Path, container_format: str, codec: str, options: dict | None = None) -> Path:
    """SOURCE_FRAMES frame-index pictures (frame k shows k) at SOURCE_FPS, keyframes every 6 frames."""
    with av.open(str(path), "w", format=container_format, options=options or {}) as container:
        stream = container.add_stream(codec, rate=SOURCE_FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.gop_size = 6
        for k in range(SOURCE_FRAMES):
            for packet in stream.encode(av.VideoFrame.from_ndarray(index_frame(k), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def damaged_copies(source: Path, out: Path) -> list[Path]:
    """Byte flips and overwritten runs at offsets spread over the file (the first 256 bytes, where the headers
    are, more densely), and copies cut at points spread over it."""
    data = source.read_bytes()
    rng = np.random.default_rng(len(data))
    header = np.linspace(0, min(255, len(data) - 1), FLIPS // 2).astype(int)
    body = np.linspace(256, len(data) - 1, FLIPS - FLIPS // 2).astype(int)
    copies: dict[str, bytes] = {}
    for offset in sorted({*header.tolist(), *body.tolist()}):
        flipped = bytearray(data)
        flipped[offset] ^= 0xFF
        copies[f"flip{offset}"] = bytes(flipped)
    for offset in np.linspace(0, len(data) - 16, RUNS).astype(int).tolist():
        garbled = bytearray(data)
        garbled[offset:offset + 16] = rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
        copies[f"run{offset}"] = bytes(garbled)
    for fraction in np.linspace(0.03, 0.97, CUTS):
        copies[f"cut{round(fraction * 100)}"] = data[:int(len(data) * fraction)]
    paths = []
    for name, content in copies.items():
        path = out / f"{source.stem}-{name}{source.suffix}"
        path.write_bytes(content)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, list[Path]]:
    """Container -> [the intact source, its damaged copies]."""
    work = tmp_path_factory.mktemp("sources")
    folder = tmp_path_factory.mktemp("corpus")
    files = {}
    for ext, (container_format, codec) in CONTAINERS.items():
        source = write_source(work / f"{ext}.{ext}", container_format, codec)
        intact = folder / source.name
        intact.write_bytes(source.read_bytes())
        files[ext] = [intact, *damaged_copies(source, folder)]
    return files


@pytest.fixture(scope="module")
def extracted(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("features")
    videos = [path for paths in corpus.values() for path in paths]
    small = InputRecipe(PAPER_BACKBONE, SETTINGS.clip_len, SETTINGS.fps, resize=(24, 32), crop=(16, 16))  # cheap
    report = extract_dataset(videos, out, Encoder.of_module(ChannelMeanEncoder(), small, weights="tiny"),
                             ExtractOptions.for_grid(SETTINGS, batch_size=16, workers=0, progress=False, amp="fp32",
                                                     device="cpu", video_timeout=60))
    return videos, report, out


def decoded_frames(path: Path) -> int:
    """Sampled frames a fresh decode delivers (after which it may fail)."""
    count = 0
    try:
        for _ in iter_sampled_frames(path, SETTINGS.fps, sampling=SETTINGS.sampling, size=(2, 2)):
            count += 1
    except VideoDecodeError:
        pass
    return count


def test_every_file_is_written_or_failed_on_one_line(extracted):
    videos, report, out = extracted
    assert sorted(report.written) + sorted(report.failed) != []
    assert set(report.written).isdisjoint(report.failed)
    assert set(report.written) | set(report.failed) == {str(v) for v in videos}
    with open(out / "failures.csv", newline="", encoding="utf-8") as f:
        rows = {row["video"]: row["error"] for row in csv.DictReader(f)}
    assert rows == report.failed
    for video, error in rows.items():
        assert error.startswith(video) and "\n" not in error and "Traceback" not in error
        stem = Path(video).stem
        assert not (out / f"{stem}.npy").exists() and not (out / f"{stem}.json").exists()
    # Both outcomes occur in every container: the corpus reaches the decoders' failure paths and their
    # tolerance of damage they can decode through.
    for ext in CONTAINERS:
        assert any(v.endswith(f".{ext}") for v in report.written), ext
        assert any(v.endswith(f".{ext}") for v in report.failed), ext


def test_written_features_match_the_frames_the_decoder_delivers(corpus, extracted):
    _, report, out = extracted
    for video in report.written:
        stem = Path(video).stem
        features = np.load(out / f"{stem}.npy")
        sidecar = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
        expected = num_clips(sidecar["num_frames"], SETTINGS.clip_len, SETTINGS.stride)
        assert features.shape == (expected, 8) and expected >= 1 and np.isfinite(features).all(), video
        assert sidecar["num_frames"] == decoded_frames(Path(video)), video
    for ext in corpus:  # the intact files: every clip
        assert np.load(out / f"{ext}.npy").shape == (num_clips(SOURCE_FRAMES // 2, 4, 4), 8)


# ----------------------------------------------------------------------------------------------------
# Truncated files: the hint
# ----------------------------------------------------------------------------------------------------


def test_truncated_mp4_says_it_looks_truncated(tmp_path):
    """An mp4 whose index (moov) comes after the data, cut: FFmpeg says only "Invalid data"."""
    source = write_source(tmp_path / "full.mp4", "mp4", "libx264")
    for fraction in (0.3, 0.6):  # cut in the data
        cut = tmp_path / f"cut{round(fraction * 100)}.mp4"
        cut.write_bytes(source.read_bytes()[:int(source.stat().st_size * fraction)])
        with pytest.raises(VideoDecodeError) as info:
            list(iter_sampled_frames(cut))
        message = str(info.value)
        assert message.startswith(f"{cut}: cannot decode video (") and "Invalid data" in message
        assert "; file looks truncated: its 'mdat' box declares " in message and "\n" not in message
    cut = tmp_path / "cut-in-index.mp4"  # cut in the index: FFmpeg finds no frame
    cut.write_bytes(source.read_bytes()[:int(source.stat().st_size * 0.95)])
    with pytest.raises(VideoDecodeError, match=r"; file looks truncated: its 'moov' box declares \d+ bytes"):
        list(iter_sampled_frames(cut))
    assert truncation_hint(source) is None  # no false alarm on the whole file


def test_probing_a_truncated_mp4_says_it_looks_truncated(tmp_path):
    """The annotation importers' probe (metadata) words the same failure the same way."""
    source = write_source(tmp_path / "full.mp4", "mp4", "libx264")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(source.read_bytes()[:source.stat().st_size // 2])
    with pytest.raises(VideoDecodeError, match=r"cannot open: .*; file looks truncated: its 'mdat' box declares"):
        read_video_metadata(cut)


def test_mp4_without_its_index_says_so(tmp_path):
    source = write_source(tmp_path / "full.mp4", "mp4", "libx264")
    data = source.read_bytes()
    moov = data.index(b"moov") - 4
    (tmp_path / "no-index.mp4").write_bytes(data[:moov])  # cut exactly where the index starts
    assert truncation_hint(tmp_path / "no-index.mp4") == ("file looks truncated: it has media data ('mdat') but no "
                                                          "index ('moov'), which is written after the data")


def _video_packet_spans(path: Path) -> list[tuple[int, int]]:
    with av.open(str(path)) as container:
        return [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size and p.pos is not None]


def test_truncated_mpeg_ps_says_it_looks_truncated(tmp_path):
    """MPEG program streams declare no duration; cut inside a packet, the packet's length shows the cut."""
    source = encode(tmp_path / "full.mpg", "mpeg", "mpeg2video")  # noise: large packets, as real videos have
    data = source.read_bytes()
    assert truncation_hint(source) is None
    failures = 0
    for pos, size in _video_packet_spans(source):
        cut = tmp_path / f"cut{pos}.mpg"
        cut.write_bytes(data[:pos + size // 2])  # inside this packet's data
        hint = truncation_hint(cut)
        assert hint is not None and hint.startswith("file looks truncated: its last MPEG packet declares "), pos
        try:
            list(iter_sampled_frames(cut))
        except VideoDecodeError as error:  # when the decoder fails on the cut packet, the message says why
            failures += 1
            assert str(error).endswith(f"; {hint}") and "\n" not in str(error)
    assert failures >= 1


@pytest.mark.parametrize("ext", ["avi", "mkv"])
def test_cut_avi_and_matroska_headers_show_the_cut(tmp_path, ext):
    container_format, codec = CONTAINERS[ext]
    source = write_source(tmp_path / f"full.{ext}", container_format, codec)
    assert truncation_hint(source) is None
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(source.read_bytes()[:source.stat().st_size // 2])
    assert truncation_hint(cut).startswith("file looks truncated: its ")
