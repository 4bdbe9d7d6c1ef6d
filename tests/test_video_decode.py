"""Frame sampling: the clips hold exactly the frames each rule names (FFmpeg's own fps filter for the default)."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from tspvideo.core.errors import TspVideoError, VideoDecodeError
from tspvideo.core.grid import ClipGrid, num_clips
from tspvideo.extract.streaming import ClipAssembler, WorkUnit
from tspvideo.video.decode import (
    SAMPLING_RULES,
    SamplingClock,
    count_sampled_frames,
    iter_sampled_frames,
    num_sampled_frames,
    read_frames,
    sampled_source_frames,
)
from tspvideo.video.synthetic import read_frame_index, write_index_video


def expected_indices(timestamps: list[Fraction], fps: Fraction, end: Fraction) -> list[int]:
    """Reference rule: the j-th sampled frame is the last source frame with time <= j / fps."""
    out, j = [], 0
    while Fraction(j) / fps < end:
        target = Fraction(j) / fps
        out.append(max(k for k, t in enumerate(timestamps) if t <= target))
        j += 1
    return out


@pytest.mark.parametrize("rate", [Fraction(30), Fraction(25), Fraction(30000, 1001), Fraction(10)])
def test_constant_rate_sampling_matches_rule(tmp_path, rate):
    n = 61
    path = tmp_path / "index.mp4"
    write_index_video(path, num_frames=n, fps=rate)
    got = [read_frame_index(frame) for _, frame in iter_sampled_frames(path, fps=15, sampling="timestamp")]
    # For a constant-rate video the rule is source frame floor(j * F / 15), ceil(n * 15 / F) frames.
    expected = [math.floor(j * rate / 15) for j in range(math.ceil(n * 15 / rate))]
    assert got == expected
    assert count_sampled_frames(path, fps=15, sampling="timestamp") == len(expected)


def test_variable_frame_rate_sampling_uses_timestamps(tmp_path):
    rng = np.random.default_rng(0)
    gaps = rng.choice([1 / 60, 1 / 30, 1 / 10, 0.25], size=40)
    times = np.concatenate([[0.0], np.cumsum(gaps)[:-1]])
    times = [round(t * 90000) / 90000 for t in times]
    path = tmp_path / "vfr.mp4"
    write_index_video(path, timestamps=times)
    fps = Fraction(15)
    exact = [Fraction(round(t * 90000), 90000) for t in times]
    sampled = [(j, read_frame_index(frame)) for j, frame in iter_sampled_frames(path, fps=15, sampling="timestamp")]
    # Compare every target up to the last frame's time (the last frame's duration is the muxer's choice).
    reference = expected_indices(exact, fps, exact[-1] + Fraction(1, 10**6))
    assert [k for _, k in sampled[:len(reference)]] == reference
    assert [j for j, _ in sampled] == list(range(len(sampled)))


@pytest.mark.parametrize("sampling", SAMPLING_RULES)
@pytest.mark.parametrize("rate", [30, 25])
def test_read_frames_seeks_to_the_same_frames_as_streaming(tmp_path, sampling, rate):
    path = tmp_path / "index.mp4"
    write_index_video(path, num_frames=150 * rate // 30, fps=rate, gop_size=12)
    streamed = [read_frame_index(f) for _, f in iter_sampled_frames(path, fps=15, sampling=sampling)]
    assert len(streamed) == 75
    for start in (0, 1, 13, 40, 59):
        clip = read_frames(path, start, 16, fps=15, sampling=sampling)
        assert [read_frame_index(f) for f in clip] == streamed[start:start + 16]
    with pytest.raises(VideoDecodeError, match="only"):
        read_frames(path, 70, 16, fps=15, sampling=sampling)


@pytest.mark.parametrize("sampling", SAMPLING_RULES)
def test_reading_from_any_frame_of_a_vfr_video_matches_a_full_decode(tmp_path, sampling):
    """Seeks that land after the target (variable frame rate, B-frames) back off to an earlier keyframe."""
    path = tmp_path / "vfr.mp4"
    times = [0.0, 0.03, 0.05, 0.2, 0.21, 0.4, 0.52, 0.61, 0.8, 0.95, 1.0, 1.1, 1.33, 1.4, 1.41, 1.6, 1.75, 1.9]
    write_index_video(path, timestamps=times)
    streamed = [read_frame_index(f) for _, f in iter_sampled_frames(path, fps=15, sampling=sampling)]
    for start in range(1, len(streamed) - 4):
        window = iter_sampled_frames(path, fps=15, start_index=start, end_index=start + 4, sampling=sampling)
        assert [(j, read_frame_index(f)) for j, f in window] == list(enumerate(streamed))[start:start + 4], start


def test_decoder_side_resize(tmp_path):
    path = tmp_path / "index.mp4"
    write_index_video(path, num_frames=10, fps=30, size=(96, 64))
    frames = [f for _, f in iter_sampled_frames(path, fps=15, size=(48, 72))]
    assert frames[0].shape == (48, 72, 3) and frames[0].dtype == np.uint8
    assert [read_frame_index(f) for f in frames] == [0, 2, 4, 6, 8]


@pytest.mark.parametrize("content, message", [(b"", "empty file"), (b"not a video at all" * 50, "cannot decode")])
def test_bad_files_raise_errors_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad video.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoDecodeError, match=message) as info:
        list(iter_sampled_frames(path))
    assert str(path) in str(info.value)


def test_missing_file_and_bad_arguments(tmp_path):
    with pytest.raises(VideoDecodeError, match="not found"):
        list(iter_sampled_frames(tmp_path / "nope.mp4"))
    path = tmp_path / "index.mp4"
    write_index_video(path, num_frames=4, fps=30)
    with pytest.raises(TspVideoError, match="backend"):
        list(iter_sampled_frames(path, backend="nonsense"))
    with pytest.raises(TspVideoError, match="fps"):
        list(iter_sampled_frames(path, fps=0))
    with pytest.raises(TspVideoError, match="sampling rule"):
        list(iter_sampled_frames(path, sampling="nearest"))


@pytest.mark.parametrize("num_frames, clip_len, stride", [(40, 16, 16), (40, 16, 1), (40, 4, 7), (15, 16, 16)])
def test_sliding_clips_cover_the_grid(num_frames, clip_len, stride):
    settings = ClipGrid(clip_len=clip_len, fps=15, stride=stride)
    assembler = ClipAssembler([WorkUnit(0)], settings, batch_size=3, device=torch.device("cpu"))
    needed = [j for j in range(num_frames) if settings.needs(j)]
    for k in range(0, len(needed), 5):  # frames arrive in chunks, as from a decode worker
        chunk = torch.tensor(needed[k:k + 5])
        assembler.add(0, chunk, chunk.float().view(-1, 1, 1, 1).expand(-1, 3, 2, 2))  # frame j is all j
    clips = [clip for _, _, batch in assembler.batches(flush=True) for clip in batch]
    assert len(clips) == num_clips(num_frames, clip_len, stride)
    for i, clip in enumerate(clips):
        assert clip.shape == (3, clip_len, 2, 2)
        assert clip[0, :, 0, 0].tolist() == list(range(i * stride, i * stride + clip_len))


def test_torchcodec_backend_matches_pyav(tmp_path):
    """The optional backend samples the same frames (it needs torchcodec and a system FFmpeg)."""
    try:
        import torchcodec.decoders  # noqa: F401
    except (ImportError, RuntimeError, OSError) as error:  # RuntimeError/OSError: FFmpeg libraries missing
        pytest.skip(f"optional torchcodec backend unavailable: {type(error).__name__}")
    write_index_video(tmp_path / "cfr.mp4", num_frames=61, fps=Fraction(30000, 1001))
    write_index_video(tmp_path / "vfr.mp4", timestamps=[0, 0.05, 0.1, 0.3, 0.31, 0.32, 0.6, 0.9, 1.0, 1.2, 1.25])
    for name, sampling in itertools.product(("cfr.mp4", "vfr.mp4"), SAMPLING_RULES):
        pyav = [read_frame_index(f) for _, f in iter_sampled_frames(tmp_path / name, fps=15, sampling=sampling)]
        codec = [read_frame_index(f) for _, f in iter_sampled_frames(tmp_path / name, fps=15, backend="torchcodec",
                                                                       sampling=sampling)]
        assert codec == pyav
        window = [read_frame_index(f) for _, f in iter_sampled_frames(tmp_path / name, fps=15, start_index=3,
                                                                        end_index=9, backend="torchcodec",
                                                                        sampling=sampling)]
        assert window == pyav[3:9]


# ------------------------------------------------------------------------- the original's frames
def ffmpeg_fps_filter_indices(path, rate: int = 30, from_start: bool = False) -> list[int]:
    """The reference: the source frame index shown by each output frame of FFmpeg's own ``fps`` filter (the
    original's re-encode to constant 30 fps, default rounding), run through PyAV, then every second frame.
    ``from_start`` feeds it timestamps counted from the stream's start, as the ``ffmpeg`` command does."""
    import av

    shown = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        graph = av.filter.Graph()
        source = graph.add_buffer(template=stream)
        fps_filter, sink = graph.add("fps", f"fps={rate}"), graph.add("buffersink")
        source.link_to(fps_filter)
        fps_filter.link_to(sink)
        graph.configure()

        def drain():
            while True:
                try:
                    shown.append(read_frame_index(graph.pull().to_ndarray(format="rgb24")))
                except (av.error.BlockingIOError, av.error.EOFError):
                    return

        for frame in container.decode(stream):
            if from_start:
                frame.pts -= stream.start_time
            graph.push(frame)
            drain()
        graph.push(None)
        drain()
    return shown[::2]


def _vfr_times(seed: int, n: int = 90) -> list[float]:
    rng = np.random.default_rng(seed)
    gaps = rng.choice([1 / 60, 1 / 50, 1 / 30, 1 / 25, 0.05, 0.1, 1 / 3], size=n - 1) + rng.uniform(0, 0.004, n - 1)
    return [0.0, *np.cumsum(gaps).tolist()]


@pytest.mark.parametrize("source", ["25", "24", "29.97", "30", "60", "50", "vfr0", "vfr1"])
def test_ffmpeg_fps_rule_gives_the_frames_of_ffmpeg_fps_filter(tmp_path, source):
    """Default sampling = FFmpeg's fps=30 filter then every second frame: same source frames, same N15,
    from a full decode and from a seek to any clip start; on 30 and 60 fps the timestamp rule agrees."""
    path = tmp_path / "v.mp4"
    if source.startswith("vfr"):
        write_index_video(path, timestamps=_vfr_times(int(source[3:])), size=(32, 16))
    else:
        rate = Fraction(30000, 1001) if source == "29.97" else Fraction(int(source))
        write_index_video(path, num_frames=int(3.1 * rate), fps=rate, size=(32, 16))
    reference = ffmpeg_fps_filter_indices(path)
    streamed = [(j, read_frame_index(f)) for j, f in iter_sampled_frames(path, fps=15)]
    assert [k for _, k in streamed] == reference
    assert [j for j, _ in streamed] == list(range(len(reference)))
    assert count_sampled_frames(path, fps=15) == len(reference)
    for start in (1, 7, len(reference) - 16):
        clip = read_frames(path, start, 16, fps=15, sampling="ffmpeg-fps")
        assert [read_frame_index(f) for f in clip] == reference[start:start + 16]
    timestamp = [read_frame_index(f) for _, f in iter_sampled_frames(path, fps=15, sampling="timestamp")]
    if source in ("30", "60"):
        assert timestamp == reference
    elif source in ("25", "29.97"):
        assert timestamp != reference  # the difference the default removes


def test_ffmpeg_fps_rule_counts_time_from_the_stream_start(tmp_path):
    """A stream whose first frame is at 0.05 s: the rule equals the filter fed timestamps from the start (as the
    original's ``ffmpeg -i IN -filter:v fps=fps=30 OUT`` does, which starts every file at 0), not raw ones."""
    path = tmp_path / "late.mp4"
    write_index_video(path, [0.05 + k / 25 for k in range(60)], size=(32, 16))
    got = [read_frame_index(f) for _, f in iter_sampled_frames(path, fps=15)]
    assert got == ffmpeg_fps_filter_indices(path, from_start=True)
    assert got != ffmpeg_fps_filter_indices(path)  # 0.05 s is 1.5 ticks: raw times round differently
    assert [read_frame_index(f) for f in read_frames(path, 9, 16)] == got[9:25]


def test_ffmpeg_fps_rule_on_a_29_97_fps_video_differs_from_timestamps_on_most_frames(tmp_path):
    path = tmp_path / "ntsc.mp4"
    write_index_video(path, num_frames=180, fps=Fraction(30000, 1001), size=(32, 16))
    original = [read_frame_index(f) for _, f in iter_sampled_frames(path, fps=15)]
    timestamp = [read_frame_index(f) for _, f in iter_sampled_frames(path, fps=15, sampling="timestamp")]
    assert original == ffmpeg_fps_filter_indices(path)
    # 180 frames last 6.006 s: 180.18 ticks at 30 fps -> 180 re-encoded frames -> 90 at 15 fps (timestamps: 91).
    assert (len(original), len(timestamp)) == (90, 91)
    assert sum(a != b for a, b in zip(original, timestamp, strict=False)) == 89


@pytest.mark.parametrize("rate", [Fraction(25), Fraction(24), Fraction(30000, 1001), Fraction(30), Fraction(60)])
def test_grid_length_formula_and_index_mapping_agree_with_decoding(tmp_path, rate):
    """``num_sampled_frames`` (the one grid formula) and ``sampled_source_frames`` (the torchcodec backend's
    map) give what decoding gives, for both rules."""
    n = 77
    path = tmp_path / "v.mp4"
    write_index_video(path, num_frames=n, fps=rate, size=(32, 16))
    times, end = [Fraction(k) / rate for k in range(n)], Fraction(n) / rate
    for sampling in SAMPLING_RULES:
        decoded = [read_frame_index(f) for _, f in iter_sampled_frames(path, fps=15, sampling=sampling)]
        assert num_sampled_frames(end, 15, sampling) == len(decoded)
        assert num_sampled_frames(float(end), 15, sampling) == len(decoded)  # as a segment table's float
        assert sampled_source_frames(times, end, SamplingClock(15, sampling)) == decoded
        assert sampled_source_frames(times, end, SamplingClock(15, sampling), 5, 12) == decoded[5:12]
    if rate in (30, 60):
        assert num_sampled_frames(end, 15, "ffmpeg-fps") == num_sampled_frames(end, 15, "timestamp")


def _video_with_a_gap(path, gap_ms: int) -> None:
    """Six 32x32 frames, 40 ms apart except one jump of ``gap_ms`` (as damaged timestamps give)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for i, pts in enumerate([0, 40, 80, 120, 120 + gap_ms, 160 + gap_ms]):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 30, np.uint8), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.parametrize("backend", ["pyav", "torchcodec"])
def test_frames_minutes_apart_are_damaged_timestamps_not_a_video(tmp_path, backend):
    if backend == "torchcodec":
        pytest.importorskip("torchcodec")
    path = tmp_path / "gap.mkv"
    _video_with_a_gap(path, 200_000)
    with pytest.raises(VideoDecodeError, match=r"gap.mkv: a frame at 0.1 s is shown for 200 s: damaged timestamps"):
        list(iter_sampled_frames(path, backend=backend))
    _video_with_a_gap(path, 50_000)  # under the limit: a sparse video, decoded (its pictures held)
    frames = list(iter_sampled_frames(path, backend=backend))
    assert len(frames) == math.ceil(50.2 * 15)
