"""Decoding videos into frames sampled at a target rate by timestamp.

The sampling rule (DESIGN.md): the j-th sampled frame at ``fps`` is the last source frame whose
presentation time is <= j / fps, for every j with j / fps before the end of the video (the last frame's
time plus its duration). For a constant-rate video of n frames at F fps this is source frame
floor(j * F / fps) and there are ceil(n * fps / F) sampled frames. Times are compared as exact
fractions, so no rounding error moves a frame. Variable-frame-rate files follow from the same rule.

Decoding is streamed: frames are converted to arrays only when sampled, and nothing but the previous
frame is held, so memory does not grow with the video's length. Two backends share one interface:
PyAV (default, bundles FFmpeg) and torchcodec (optional, needs a system FFmpeg).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from tspvideo.errors import TruncatedVideoError, TspVideoError, VideoDecodeError

BACKENDS = ("pyav", "torchcodec")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp")


def is_video_file(path: Path) -> bool:
    """Whether a folder entry counts as a video: a visible regular file with a video extension."""
    return path.suffix.lower() in VIDEO_EXTENSIONS and not path.name.startswith(".") and path.is_file()


def _as_fraction(value: float | Fraction) -> Fraction:
    # 29.97 and friends are passed as floats; limit_denominator recovers 30000/1001.
    return value if isinstance(value, Fraction) else Fraction(value).limit_denominator(1001)


def _open_error(path: Path, error: Exception) -> VideoDecodeError:
    cause = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return VideoDecodeError(f"{path}: cannot decode video ({cause})")


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


class _Sampler:
    """Turns (time, frame) pairs in presentation order into sampled (index, frame) pairs."""

    def __init__(self, fps: Fraction, start_index: int, end_index: int | None) -> None:
        self.fps = fps
        self.next_index = start_index
        self.end_index = end_index
        self.previous = None  # (time, frame) of the last source frame seen

    def done(self) -> bool:
        return self.end_index is not None and self.next_index >= self.end_index

    def push(self, time: Fraction, frame) -> Iterator[tuple[int, object]]:
        """Emit every target time before ``time``: they take the previous frame (the last <= target)."""
        while not self.done() and Fraction(self.next_index) / self.fps < time:
            # Targets before the very first frame (a stream not starting at 0) take the first frame.
            yield self.next_index, (self.previous[1] if self.previous is not None else frame)
            self.next_index += 1
        self.previous = (time, frame)

    def finish(self, end_time: Fraction) -> Iterator[tuple[int, object]]:
        """Emit the targets between the last frame and the end of the video."""
        if self.previous is None:
            return
        while not self.done() and Fraction(self.next_index) / self.fps < end_time:
            yield self.next_index, self.previous[1]
            self.next_index += 1


class _ArrayCache:
    """Converts a decoded frame to an RGB array once, even when it is sampled several times."""

    def __init__(self, size: tuple[int, int] | None) -> None:
        self.size = size
        self.frame = None
        self.array = None

    def __call__(self, frame) -> np.ndarray:
        if frame is not self.frame:
            if self.size is None:
                self.array = frame.to_ndarray(format="rgb24")
            else:  # resize inside FFmpeg (swscale, bilinear): faster, but not the reference path
                self.array = frame.to_ndarray(format="rgb24", width=self.size[1], height=self.size[0],
                                              interpolation="BILINEAR")
            self.frame = frame
        return self.array


def _decode_from(container, stream, target: Fraction | None, origin: int) -> Iterator:
    """Decoded frames from the keyframe at or before ``target`` (seconds from the stream's start).

    A seek by timestamp can land on a keyframe after the target (B-frame reordering, variable frame
    rate, coarse indexes), which would sample a later frame than a full decode does. So the first frame
    is checked and the seek backs off, down to decoding from the start, until it is at or before the
    target: reading from anywhere gives exactly the frames of a full decode.
    """
    if target is None:
        yield from container.decode(stream)
        return
    for back in (0, 1, 4, 16, None):  # seconds before the target; None: from the start
        from_start = back is None or target - back <= 0
        pts = origin if from_start else origin + int(math.floor((target - back) / stream.time_base))
        container.seek(pts, stream=stream, backward=True, any_frame=False)
        frames = container.decode(stream)
        first = next(frames, None)
        early_enough = (first is not None and first.pts is not None
                        and Fraction(first.pts - origin) * stream.time_base <= target)
        if from_start or early_enough:  # nothing earlier exists, or this point will do
            if first is not None:
                yield first
                yield from frames
            return


def _iter_pyav(path: Path, fps: Fraction, start_index: int, end_index: int | None, threads: int,
               size: tuple[int, int] | None) -> Iterator[tuple[int, np.ndarray]]:
    import av

    try:
        container = av.open(str(path))
    except Exception as error:  # PyAV raises many types (InvalidDataError, OSError, ...)
        raise _open_error(path, error) from error
    with container:
        if not container.streams.video:
            raise VideoDecodeError(f"{path}: no video stream (audio-only or not a video file)")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threading; PyAV releases the GIL while decoding
        stream.codec_context.thread_count = threads
        time_base = stream.time_base
        if time_base is None:
            raise VideoDecodeError(f"{path}: video stream has no time base")
        origin = stream.start_time or 0
        # From the keyframe at or before the first target (the sampler skips what comes before).
        target = Fraction(start_index) / fps if start_index > 0 else None
        sampler = _Sampler(fps, start_index, end_index)
        to_array = _ArrayCache(size)
        last_time = None
        last_duration = None
        frame_step = (1 / stream.average_rate) if stream.average_rate else None
        decoded = 0
        try:
            for frame in _decode_from(container, stream, target, origin):
                if frame.pts is None:
                    # Streams without timestamps: count frames at the average rate.
                    if frame_step is None:
                        raise VideoDecodeError(f"{path}: frames have no timestamps and no frame rate")
                    time = decoded * Fraction(frame_step)
                else:
                    time = Fraction(frame.pts - origin) * time_base
                decoded += 1
                if last_time is not None and time <= last_time:
                    continue  # duplicate or out-of-order timestamp: keep the first frame shown at a time
                if last_time is not None:
                    last_duration = time - last_time
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
                raise VideoDecodeError(f"{path}: corrupt video data after {float(last_time):.2f} s "
                                       f"({cause})") from error
            # Otherwise the file ends inside a packet (cut short): the data ends here, checked below.
        if last_time is None:
            raise VideoDecodeError(f"{path}: no frame could be decoded")
        duration = sampler.previous[1].duration if sampler.previous is not None else None
        if duration:
            last_duration = Fraction(duration) * time_base
        elif frame_step is not None:
            last_duration = Fraction(frame_step)
        elif last_duration is None:
            last_duration = Fraction(1, int(fps))
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


def _packet_end_time(path: Path) -> tuple[Fraction, Fraction | None]:
    """End of the video stream from its packets (last presentation time plus duration), no decoding,
    and the duration its header declares (see :func:`declared_duration`)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        origin = stream.start_time or 0
        last_pts, last_duration = None, 0
        for packet in container.demux(stream):
            # Packets come in decode order: the last shown is the one with the largest pts.
            if packet.pts is not None and (last_pts is None or packet.pts > last_pts):
                last_pts, last_duration = packet.pts, packet.duration or 0
        if last_pts is None:
            raise VideoDecodeError(f"{path}: no video packets")
        return Fraction(last_pts + last_duration - origin) * stream.time_base, declared_duration(container, stream)


def _iter_torchcodec(path: Path, fps: Fraction, start_index: int, end_index: int | None,
                     size: tuple[int, int] | None, chunk: int = 64) -> Iterator[tuple[int, np.ndarray]]:
    import torch
    import torch.nn.functional as F

    try:
        from torchcodec.decoders import VideoDecoder
    except ImportError as error:
        raise TspVideoError("the torchcodec backend needs `pip install torchcodec` and a system FFmpeg") from error
    try:
        decoder = VideoDecoder(str(path), seek_mode="exact")
        begin = Fraction(decoder.metadata.begin_stream_seconds or 0).limit_denominator(10**6)
        # torchcodec gives the last frame no duration; the packets say how long it is shown, so the
        # end (and the number of sampled frames) agrees with the PyAV backend.
        packets_end, declared = _packet_end_time(path)
        end = begin + packets_end
        # torchcodec refuses times at or after its own end (the last frame's start on some files);
        # such targets are shown the last frame.
        decodable_end = float(decoder.metadata.end_stream_seconds)
        last_frame = decoder.get_frame_at(len(decoder) - 1).data
    except Exception as error:
        raise _open_error(path, error) from error
    # torchcodec returns, for each time, the frame played at it: the rule above.
    total = math.ceil((end - begin) * fps)
    stop = total if end_index is None else min(end_index, total)
    for first in range(start_index, stop, chunk):
        indices = list(range(first, min(first + chunk, stop)))
        times = [float(begin + Fraction(j) / fps) for j in indices]
        inside = [t for t in times if t < decodable_end]
        try:
            batch = decoder.get_frames_played_at(seconds=inside).data if inside else last_frame[None, :0]
        except Exception as error:
            raise _open_error(path, error) from error
        if len(inside) < len(times):
            tail = last_frame[None].expand(len(times) - len(inside), *last_frame.shape)
            batch = torch.cat([batch, tail]) if len(batch) else tail.clone()
        if size is not None:
            batch = F.interpolate(batch.float(), size=size, mode="bilinear", align_corners=False)
            batch = batch.round().clamp(0, 255).byte()
        yield from zip(indices, batch.permute(0, 2, 3, 1).numpy(), strict=True)
    if stop == total:  # reached the end of the data: did the file end where it says?
        check_complete(path, declared, packets_end)


def iter_sampled_frames(path: str | os.PathLike, fps: float = 15.0, start_index: int = 0,
                        end_index: int | None = None, backend: str = "pyav", threads: int = 0,
                        size: tuple[int, int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(j, frame)`` for the frames of a video sampled at ``fps``, j from ``start_index``.

    ``frame`` is an RGB ``uint8`` array ``[H, W, 3]`` (resized in the decoder when ``size=(h, w)``).
    Stops before ``end_index`` or at the end of the video. ``threads=0`` lets FFmpeg choose.
    Raises :class:`VideoDecodeError` naming the file when it cannot be decoded.
    """
    path = Path(path)
    check_video_file(path)
    if fps <= 0:
        raise TspVideoError(f"fps must be positive, got {fps}")
    fps_fraction = _as_fraction(fps)
    if backend == "pyav":
        return _iter_pyav(path, fps_fraction, start_index, end_index, threads, size)
    if backend == "torchcodec":
        return _iter_torchcodec(path, fps_fraction, start_index, end_index, size)
    raise TspVideoError(f"unknown decoding backend {backend!r} (choose from {', '.join(BACKENDS)})")


def read_frames(path: str | os.PathLike, start_index: int, num_frames: int, fps: float = 15.0,
                backend: str = "pyav", threads: int = 1, size: tuple[int, int] | None = None) -> np.ndarray:
    """Sampled frames ``start_index .. start_index + num_frames - 1`` as ``uint8 [num_frames, H, W, 3]``.

    Seeks to the nearest keyframe first, so reading a clip costs one GOP of decoding, not the video.
    Raises :class:`VideoDecodeError` when the video ends before the last requested frame.
    """
    frames = [frame for _, frame in iter_sampled_frames(path, fps, start_index, start_index + num_frames,
                                                          backend=backend, threads=threads, size=size)]
    if len(frames) != num_frames:
        raise VideoDecodeError(f"{path}: asked for frames {start_index}..{start_index + num_frames - 1} at "
                               f"{fps:g} fps but the video has only {start_index + len(frames)}")
    return np.stack(frames)


def count_sampled_frames(path: str | os.PathLike, fps: float = 15.0, backend: str = "pyav") -> int:
    """Number of frames the video has at ``fps`` (N15 for fps=15), by decoding it."""
    count = 0
    for _ in iter_sampled_frames(path, fps, backend=backend, size=(2, 2)):
        count += 1
    return count
