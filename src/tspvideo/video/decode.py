"""Decoding videos into frames sampled at a target rate (15 fps by default), by one of two rules.

``ffmpeg-fps`` (default): the original pipeline's frames, without re-encoding. The original re-encodes
every video to constant 30 fps with FFmpeg's ``fps`` filter and takes every second frame. That filter
puts each source frame on the nearest 1/30 s tick (``round(30 t)``, halves away from zero) and gives
tick k the last source frame whose tick is <= k; it stops at the tick of the video's end (the last
frame's time plus its duration), rounded the same way. So sampled frame j is the last source frame
whose ``round(30 t) <= floor(j * 30 / fps)`` (tick 2j at 15 fps), and a video ending at time E has
``N = ceil(round(30 E) * fps / 30)`` sampled frames. Times count from the stream's start, as in the
original's ``ffmpeg -i IN -filter:v fps=fps=30 OUT``, which starts each file at time 0.

``timestamp``: the j-th sampled frame is the last source frame whose presentation time is <= j / fps,
for every j with j / fps before the end of the video. For a constant-rate video of n frames at F fps
this is source frame floor(j * F / fps) and there are ceil(n * fps / F) sampled frames.

Both rules give the same frames on 30 and 60 fps sources; on 25, 24 and 29.97 fps sources the
``timestamp`` rule picks some frames one source frame earlier and its N can differ by one. Times are
compared as exact fractions, so no rounding error moves a frame; variable-frame-rate files follow
from the same rules.

Decoding is streamed: frames are converted to arrays only when sampled, and nothing but the previous
frame is held, so memory does not grow with the video's length. Two backends share one interface:
PyAV (default, bundles FFmpeg) and torchcodec (optional, needs a system FFmpeg).
"""

from __future__ import annotations

import bisect
import math
import os
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np

from tspvideo.core.choices import DECODE_BACKENDS
from tspvideo.core.errors import TruncatedVideoError, TspVideoError, VideoDecodeError
from tspvideo.core.grid import DEFAULT_FPS, DEFAULT_SAMPLING, SAMPLING_RULES
from tspvideo.video.colour import PlanarFrame, pack_planes
from tspvideo.video.truncation import with_truncation_hint
from tspvideo.video.watchdog import beat

BACKENDS = DECODE_BACKENDS
REENCODE_FPS = 30  # the constant rate the original re-encoded every video to before sampling
def _as_fraction(value: float | Fraction) -> Fraction:
    # 29.97 and friends are passed as floats; limit_denominator recovers 30000/1001.
    return value if isinstance(value, Fraction) else Fraction(value).limit_denominator(1001)


def _open_error(path: Path, error: Exception) -> VideoDecodeError:
    cause = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return VideoDecodeError(_hinted(path, f"{path}: cannot decode video ({cause})"))


def _hinted(path: Path, message: str) -> str:
    """``message``, and why the file looks cut short when its container shows it (a partial download)."""
    return with_truncation_hint(path, message)


def check_video_file(path: Path) -> None:
    """Raise :class:`VideoDecodeError` when ``path`` is missing, not a file, unreadable or empty."""
    if not path.exists():
        raise VideoDecodeError(f"{path}: file not found")
    if not path.is_file():
        raise VideoDecodeError(f"{path}: not a regular file")
    if not os.access(path, os.R_OK):
        raise VideoDecodeError(f"{path}: permission denied")
    if path.stat().st_size == 0:
        raise VideoDecodeError(f"{path}: empty file (0 bytes)")


# A file counts as cut short when its frames end more than max(1 s, 2 %) before the duration its header
# declares: wide enough for headers that round or count a last frame's duration differently, far
# below what a partial download loses.
SHORT_TOLERANCE_S = 1.0
SHORT_TOLERANCE_FRACTION = 0.02
# Containers whose overall duration is written in the header (Matroska/WebM: the segment's Duration),
# used when the stream itself declares none. Others estimate it from what they read, so a cut file agrees.
HEADER_DURATION_FORMATS = ("matroska,webm",)
# Pictures shown longer than this are taken for damaged timestamps or a damaged frame rate, not a video: one
# flipped byte in an AVI header (frame rate 30/65281) spreads 60 frames over 36 h, half a million clips of a
# few pictures that decode without a stall (so the decode time limit never fires) for hours.
MAX_FRAME_GAP_S = 60


def check_frame_gap(path: Path, at: Fraction, gap: Fraction) -> None:
    """Raise :class:`VideoDecodeError` when a picture is shown for more than :data:`MAX_FRAME_GAP_S` seconds."""
    if gap > MAX_FRAME_GAP_S:
        raise VideoDecodeError(f"{path}: a frame at {float(at):.1f} s is shown for {float(gap):.0f} s: damaged "
                               f"timestamps or frame rate? (frames more than {MAX_FRAME_GAP_S} s apart are refused)")


def declared_duration(container, stream) -> Fraction | None:
    """The video's duration as the file's header declares it, or None when it declares none.

    The largest of the stream's duration and its frame count over its rate: an AVI cut short still
    declares all its frames (``dwLength``) while FFmpeg shortens its duration to the data it finds.
    """
    candidates = []
    if stream.duration and stream.time_base is not None:
        candidates.append(Fraction(stream.duration) * stream.time_base)
    if stream.frames and stream.average_rate:
        candidates.append(Fraction(stream.frames) / Fraction(stream.average_rate))
    if not candidates and container.duration and container.format.name in HEADER_DURATION_FORMATS:
        candidates.append(Fraction(container.duration, 1_000_000))
    return max(candidates) if candidates else None


def check_complete(path: Path, declared: Fraction | None, decoded_end: Fraction) -> None:
    """Raise :class:`TruncatedVideoError` when the frames end well before the declared duration.

    An mp4 whose index (moov) comes first, or an AVI, still opens when its data is cut short; FFmpeg
    then simply stops early, which would silently give features of part of the video.
    """
    if declared is None:
        return  # nothing to compare with: behave as any player would
    if declared - decoded_end > max(Fraction(SHORT_TOLERANCE_S), declared * Fraction(SHORT_TOLERANCE_FRACTION)):
        raise TruncatedVideoError(path, float(decoded_end), float(declared))


def _round_half_away(value: Fraction) -> int:
    """Nearest integer, halves away from zero (FFmpeg's ``AV_ROUND_NEAR_INF``)."""
    half = Fraction(1, 2)
    return math.floor(value + half) if value >= 0 else -math.floor(-value + half)


class SamplingClock:
    """One sampling rule as two maps onto a common axis: ``position(t)`` of a source frame shown from time
    ``t`` (seconds from the stream's start) and ``target(j)`` of sampled frame j. Sampled frame j is the
    last source frame with ``position(t) <= target(j)``; it exists while ``target(j) < position(end)``."""

    def __init__(self, fps: float | Fraction, sampling: str = DEFAULT_SAMPLING) -> None:
        if sampling not in SAMPLING_RULES:
            raise TspVideoError(f"unknown sampling rule {sampling!r} (choose from {', '.join(SAMPLING_RULES)})")
        self.fps = _as_fraction(fps)
        self.sampling = sampling

    def position(self, time: Fraction) -> Fraction | int:
        """Where a source frame (or the video's end) at ``time`` lies: the time, or its 30 fps tick."""
        if self.sampling == "timestamp":
            return time
        return _round_half_away(time * REENCODE_FPS)

    def target(self, index: int) -> Fraction | int:
        """Where sampled frame ``index`` lies: j / fps, or the 30 fps tick floor(j * 30 / fps)."""
        if self.sampling == "timestamp":
            return Fraction(index) / self.fps
        return math.floor(Fraction(index * REENCODE_FPS) / self.fps)

    def seek_time(self, index: int) -> Fraction:
        """A time (s) no later than some source frame that may be sampled as ``index``: where to seek."""
        if self.sampling == "timestamp":
            return Fraction(index) / self.fps
        return Fraction(self.target(index), REENCODE_FPS)

    def count(self, end_time: Fraction) -> int:
        """Number of sampled frames of a video that ends at ``end_time`` (N15 at 15 fps)."""
        if self.sampling == "timestamp":
            return math.ceil(end_time * self.fps)
        return max(0, math.ceil(Fraction(self.position(end_time)) * self.fps / REENCODE_FPS))


def num_sampled_frames(end_time: float | Fraction, fps: float = DEFAULT_FPS, sampling: str = DEFAULT_SAMPLING) -> int:
    """N, the number of sampled frames of a video whose last frame ends ``end_time`` s after its start.

    ``timestamp``: ``ceil(E * fps)``; ``ffmpeg-fps``: ``ceil(round(30 E) * fps / 30)`` (every second frame
    of the 30 fps re-encode at 15 fps). The one place the grid's length is defined.
    """
    # Table durations are decimal floats (3376 / 30 = 112.53333333333332): recover the small-denominator value.
    end = end_time if isinstance(end_time, Fraction) else Fraction(end_time).limit_denominator(10**6)
    return SamplingClock(fps, sampling).count(end)


class _Sampler:
    """Turns (time, frame) pairs in presentation order into sampled (index, frame) pairs."""

    def __init__(self, clock: SamplingClock, start_index: int, end_index: int | None) -> None:
        self.clock = clock
        self.next_index = start_index
        self.end_index = end_index
        self.previous = None  # (time, frame) of the last source frame seen

    def done(self) -> bool:
        return self.end_index is not None and self.next_index >= self.end_index

    def push(self, time: Fraction, frame) -> Iterator[tuple[int, object]]:
        """Emit every target before this frame's position: they take the previous frame (the last <= target)."""
        position = self.clock.position(time)
        while not self.done() and self.clock.target(self.next_index) < position:
            # Targets before the very first frame (a stream not starting at 0) take the first frame.
            yield self.next_index, (self.previous[1] if self.previous is not None else frame)
            self.next_index += 1
        self.previous = (time, frame)

    def finish(self, end_time: Fraction) -> Iterator[tuple[int, object]]:
        """Emit the targets between the last frame and the end of the video."""
        if self.previous is None:
            return
        end = self.clock.position(end_time)
        while not self.done() and self.clock.target(self.next_index) < end:
            yield self.next_index, self.previous[1]
            self.next_index += 1


class _ArrayCache:
    """Converts a decoded frame to an RGB array once, even when it is sampled several times; with
    ``planar``, 4:2:0 frames become their packed planes instead (:mod:`tspvideo.video.colour`)."""

    def __init__(self, size: tuple[int, int] | None, planar: bool = False) -> None:
        self.size = size
        self.planar = planar and size is None
        self.frame = None
        self.array = None

    def __call__(self, frame) -> np.ndarray | PlanarFrame:
        if frame is not self.frame:
            packed = pack_planes(frame) if self.planar else None
            if packed is not None:
                self.array = packed
            elif self.size is None:
                self.array = frame.to_ndarray(format="rgb24")
            else:  # resize inside FFmpeg (swscale, bilinear): faster, but not the reference path
                self.array = frame.to_ndarray(format="rgb24", width=self.size[1], height=self.size[0],
                                              interpolation="BILINEAR")
            self.frame = frame
        return self.array


def _decode_from(container, stream, first_index: int | None, clock: SamplingClock, origin: int) -> Iterator:
    """Decoded frames from the keyframe at or before the source frame sampled as ``first_index``.

    A seek by timestamp can land on a keyframe after that frame (B-frame reordering, variable frame
    rate, coarse indexes), which would sample a later frame than a full decode does. So the first frame
    is checked and the seek backs off, down to decoding from the start, until it is at or before the
    target: reading from anywhere gives exactly the frames of a full decode.
    """
    if first_index is None:
        yield from container.decode(stream)
        return
    target = clock.seek_time(first_index)
    for back in (0, 1, 4, 16, None):  # seconds before the target; None: from the start
        from_start = back is None or target - back <= 0
        pts = origin if from_start else origin + int(math.floor((target - back) / stream.time_base))
        container.seek(pts, stream=stream, backward=True, any_frame=False)
        frames = container.decode(stream)
        first = next(frames, None)
        early_enough = (first is not None and first.pts is not None
                        and clock.position(Fraction(first.pts - origin) * stream.time_base)
                        <= clock.target(first_index))
        if from_start or early_enough:  # nothing earlier exists, or this point will do
            if first is not None:
                yield first
                yield from frames
            return


def _iter_pyav(path: Path, clock: SamplingClock, start_index: int, end_index: int | None, threads: int,
               size: tuple[int, int] | None, planar: bool = False) -> Iterator[tuple[int, np.ndarray | PlanarFrame]]:
    try:
        container = av.open(str(path))
    except Exception as error:  # PyAV raises many types (InvalidDataError, OSError, ...)
        raise _open_error(path, error) from error
    with container:
        if not container.streams.video:
            raise VideoDecodeError(_hinted(path, f"{path}: no video stream (audio-only or not a video file)"))
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threading; PyAV releases the GIL while decoding
        stream.codec_context.thread_count = threads
        time_base = stream.time_base
        if time_base is None:
            raise VideoDecodeError(f"{path}: video stream has no time base")
        origin = stream.start_time or 0
        # From the keyframe at or before the first target (the sampler skips what comes before).
        sampler = _Sampler(clock, start_index, end_index)
        to_array = _ArrayCache(size, planar)
        last_time = None
        last_duration = None
        frame_step = (1 / stream.average_rate) if stream.average_rate else None
        decoded = 0
        # Frames sharing a timestamp: the timestamp rule shows the first, FFmpeg's fps filter the last.
        keep_first = clock.sampling == "timestamp"
        try:
            for frame in _decode_from(container, stream, start_index if start_index > 0 else None, clock, origin):
                beat()  # progress for a decode watchdog, also while frames before the first target are skipped
                if frame.pts is None:
                    # Streams without timestamps: count frames at the average rate.
                    if frame_step is None:
                        raise VideoDecodeError(f"{path}: frames have no timestamps and no frame rate")
                    time = decoded * Fraction(frame_step)
                else:
                    time = Fraction(frame.pts - origin) * time_base
                decoded += 1
                if last_time is not None and (time < last_time or (time == last_time and keep_first)):
                    continue  # out-of-order timestamp, or a duplicate the rule does not show
                if last_time is not None and time > last_time:
                    last_duration = time - last_time
                    check_frame_gap(path, last_time, last_duration)
                last_time = time
                for index, sampled in sampler.push(time, frame):
                    yield index, to_array(sampled)
                if sampler.done():
                    return
        except av.error.FFmpegError as error:
            if last_time is None:
                raise _open_error(path, error) from error
            if not _data_cut_off(path, stream):
                # Corrupt data after some good frames: fail the whole video rather than guess (docs/reliability.md).
                cause = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise VideoDecodeError(_hinted(path, f"{path}: corrupt video data after {float(last_time):.2f} s "
                                                     f"({cause})")) from error
            # Otherwise the file ends inside a packet (cut short): the data ends here, checked below.
        if last_time is None:
            raise VideoDecodeError(_hinted(path, f"{path}: no frame could be decoded"))
        duration = sampler.previous[1].duration if sampler.previous is not None else None
        if duration:
            last_duration = Fraction(duration) * time_base
        elif frame_step is not None:
            last_duration = Fraction(frame_step)
        elif last_duration is None:
            last_duration = Fraction(1) / clock.fps
        check_frame_gap(path, last_time, last_duration)
        for index, sampled in sampler.finish(last_time + last_duration):
            yield index, to_array(sampled)
        if not sampler.done():  # reached the end of the data: did the file end where it says?
            check_complete(path, declared_duration(container, stream), last_time + last_duration)


def _data_cut_off(path: Path, stream) -> bool:
    """Whether the stream's index (read from the header) places packets past the end of the file."""
    entries = stream.index_entries
    if not len(entries):
        return False
    last = entries[len(entries) - 1]
    return last.pos + last.size > path.stat().st_size


class PacketTimeline(NamedTuple):
    """A video stream's frames as its packets describe them, without decoding."""

    pts: list[int]  # presentation timestamps in display order, in ``time_base`` units
    origin: int  # the stream's start timestamp
    time_base: Fraction
    end: Fraction  # last presentation time plus its duration, seconds from the start
    declared: Fraction | None  # the duration the header declares (:func:`declared_duration`)
    codec: str

    @property
    def times(self) -> list[Fraction]:
        """Presentation times in display order, seconds from the stream's start."""
        return [Fraction(p - self.origin) * self.time_base for p in self.pts]


def packet_timeline(path: Path) -> PacketTimeline:
    """The frames' timestamps and the stream's end, from its packets (demuxing only)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        origin = stream.start_time or 0
        stamps = []
        last_pts, last_duration = None, 0
        for packet in container.demux(stream):
            if packet.pts is None:
                continue  # the flush packet, or a packet without a timestamp
            stamps.append(packet.pts)
            # Packets come in decode order: the last shown is the one with the largest pts.
            if last_pts is None or packet.pts > last_pts:
                last_pts, last_duration = packet.pts, packet.duration or 0
        if last_pts is None:
            raise VideoDecodeError(f"{path}: no video packets")
        base = Fraction(stream.time_base)
        return PacketTimeline(sorted(stamps), origin, base, Fraction(last_pts + last_duration - origin) * base,
                              declared_duration(container, stream), stream.codec_context.name)


def _packet_times(path: Path) -> tuple[list[Fraction], Fraction, Fraction | None]:
    """Presentation times of the video's frames in display order (seconds from the stream's start), the
    stream's end (last presentation time plus duration), from its packets, without decoding, and the
    duration its header declares (see :func:`declared_duration`)."""
    timeline = packet_timeline(path)
    return timeline.times, timeline.end, timeline.declared


def sampled_source_frames(times: Sequence[Fraction], end: Fraction, clock: SamplingClock,
                          start_index: int = 0, end_index: int | None = None) -> list[int]:
    """For sampled frames ``start_index ..`` (to ``end_index`` or the video's end), the index of the source
    frame each shows, given the source frames' times in display order and the video's end time."""
    positions = [clock.position(t) for t in times]
    stop = clock.count(end) if end_index is None else min(end_index, clock.count(end))
    # The last frame at or before the target; targets before the first frame take the first frame.
    return [max(0, bisect.bisect_right(positions, clock.target(j)) - 1) for j in range(start_index, stop)]


def _resize_batch(batch, size: tuple[int, int] | None):
    if size is None:
        return batch
    # torch only on the torchcodec path: PyAV decoding (metadata, transcoding, workers) runs without it.
    import torch.nn.functional as F
    batch = F.interpolate(batch.float(), size=size, mode="bilinear", align_corners=False)
    return batch.round().clamp(0, 255).byte()


def _iter_torchcodec(path: Path, clock: SamplingClock, start_index: int, end_index: int | None,
                     size: tuple[int, int] | None, chunk: int = 64) -> Iterator[tuple[int, np.ndarray]]:
    import torch  # the torchcodec backend's frames are tensors (see _resize_batch)

    try:
        from torchcodec.decoders import VideoDecoder
    except ImportError as error:
        raise TspVideoError("the torchcodec backend needs `pip install torchcodec` and a system FFmpeg") from error
    try:
        decoder = VideoDecoder(str(path), seek_mode="exact")
        # torchcodec gives the last frame no duration; the packets say how long it is shown, so the
        # end (and the number of sampled frames) agrees with the PyAV backend.
        frame_times, end_offset, declared = _packet_times(path)
    except Exception as error:
        raise _open_error(path, error) from error
    for at, shown_until in zip(frame_times, [*frame_times[1:], end_offset], strict=True):
        check_frame_gap(path, at, shown_until - at)
    if clock.sampling == "ffmpeg-fps":
        # Frames by index (torchcodec's exact mode numbers them in display order, as the packets sort).
        sources = sampled_source_frames(frame_times, end_offset, clock, start_index, end_index)
        for first in range(0, len(sources), chunk):
            wanted = sources[first:first + chunk]
            try:
                batch = decoder.get_frames_at(wanted).data
            except Exception as error:
                raise _open_error(path, error) from error
            indices = range(start_index + first, start_index + first + len(wanted))
            yield from zip(indices, _resize_batch(batch, size).permute(0, 2, 3, 1).numpy(), strict=True)
        if end_index is None or end_index >= clock.count(end_offset):  # reached the end of the data
            check_complete(path, declared, end_offset)
        return
    try:
        begin = Fraction(decoder.metadata.begin_stream_seconds or 0).limit_denominator(10**6)
        end = begin + end_offset
        # torchcodec refuses times at or after its own end (the last frame's start on some files);
        # such targets are shown the last frame.
        decodable_end = float(decoder.metadata.end_stream_seconds)
        last_frame = decoder.get_frame_at(len(decoder) - 1).data
    except Exception as error:
        raise _open_error(path, error) from error
    # torchcodec returns, for each time, the frame played at it: the timestamp rule.
    total = clock.count(end - begin)
    stop = total if end_index is None else min(end_index, total)
    for first in range(start_index, stop, chunk):
        indices = list(range(first, min(first + chunk, stop)))
        times = [float(begin + Fraction(j) / clock.fps) for j in indices]
        inside = [t for t in times if t < decodable_end]
        try:
            batch = decoder.get_frames_played_at(seconds=inside).data if inside else last_frame[None, :0]
        except Exception as error:
            raise _open_error(path, error) from error
        if len(inside) < len(times):
            tail = last_frame[None].expand(len(times) - len(inside), *last_frame.shape)
            batch = torch.cat([batch, tail]) if len(batch) else tail.clone()
        yield from zip(indices, _resize_batch(batch, size).permute(0, 2, 3, 1).numpy(), strict=True)
    if stop == total:  # reached the end of the data: did the file end where it says?
        check_complete(path, declared, end_offset)


def iter_sampled_frames(path: str | os.PathLike, fps: float = DEFAULT_FPS, start_index: int = 0,
                        end_index: int | None = None, backend: str = "pyav", threads: int = 0,
                        size: tuple[int, int] | None = None, sampling: str = DEFAULT_SAMPLING,
                        planar: bool = False) -> Iterator[tuple[int, np.ndarray | PlanarFrame]]:
    """Yield ``(j, frame)`` for the frames of a video sampled at ``fps``, j from ``start_index``.

    ``frame`` is an RGB ``uint8`` array ``[H, W, 3]`` (resized in the decoder when ``size=(h, w)``); with
    ``planar`` (PyAV backend, no ``size``), frames in a 4:2:0 format come as their packed YUV planes
    (:class:`~tspvideo.video.colour.PlanarFrame`), to be converted on the model's device.
    Stops before ``end_index`` or at the end of the video. ``threads=0`` lets FFmpeg choose.
    ``sampling`` is the rule (module doc): ``ffmpeg-fps`` (the original's frames) or ``timestamp``.
    Raises :class:`VideoDecodeError` naming the file when it cannot be decoded.
    """
    path = Path(path)
    check_video_file(path)
    if fps <= 0:
        raise TspVideoError(f"fps must be positive, got {fps}")
    clock = SamplingClock(fps, sampling)
    if backend == "pyav":
        return _iter_pyav(path, clock, start_index, end_index, threads, size, planar)
    if backend == "torchcodec":
        return _iter_torchcodec(path, clock, start_index, end_index, size)
    raise TspVideoError(f"unknown decoding backend {backend!r} (choose from {', '.join(BACKENDS)})")


def read_frames(path: str | os.PathLike, start_index: int, num_frames: int, fps: float = DEFAULT_FPS,
                backend: str = "pyav", threads: int = 1, size: tuple[int, int] | None = None,
                sampling: str = DEFAULT_SAMPLING) -> np.ndarray:
    """Sampled frames ``start_index .. start_index + num_frames - 1`` as ``uint8 [num_frames, H, W, 3]``.

    Seeks to the nearest keyframe first, so reading a clip costs one GOP of decoding, not the video.
    Raises :class:`VideoDecodeError` when the video ends before the last requested frame.
    """
    frames = [frame for _, frame in iter_sampled_frames(path, fps, start_index, start_index + num_frames,
                                                          backend=backend, threads=threads, size=size,
                                                          sampling=sampling)]
    if len(frames) != num_frames:
        raise VideoDecodeError(f"{path}: asked for frames {start_index}..{start_index + num_frames - 1} at "
                               f"{fps:g} fps but the video has only {start_index + len(frames)}")
    return np.stack(frames)


def count_sampled_frames(path: str | os.PathLike, fps: float = DEFAULT_FPS, backend: str = "pyav",
                         sampling: str = DEFAULT_SAMPLING) -> int:
    """Number of frames the video has at ``fps`` (N15 for fps=15), by decoding it."""
    count = 0
    for _ in iter_sampled_frames(path, fps, backend=backend, size=(2, 2), sampling=sampling):
        count += 1
    return count
