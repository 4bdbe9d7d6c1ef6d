"""Video metadata (duration, frame rate, frame count, size) read with PyAV.

The numbers follow the original implementation's metadata files: ``fps`` is the stream's frame rate,
``num_frames`` its frame count and ``duration = num_frames / fps``. Containers that do not store a frame
count (Matroska, WebM, some AVI) are counted by demuxing packets, and as a last resort by decoding.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import av
from tqdm import tqdm

from tspvideo.core.errors import VideoDecodeError
from tspvideo.video.decode import check_video_file
from tspvideo.video.truncation import with_truncation_hint


@dataclass(frozen=True)
class VideoInfo:
    """Metadata of a video's first video stream."""

    duration: float
    fps: float
    num_frames: int
    width: int
    height: int


def _count_packets(container, stream) -> int:
    count = 0
    for packet in container.demux(stream):
        # The demuxer ends with an empty flush packet, which is no frame.
        if packet.size:
            count += 1
    return count


def _count_decoded(container, stream) -> int:
    return sum(1 for _ in container.decode(stream))


def read_video_metadata(path: str | os.PathLike, check_decode: bool = True) -> VideoInfo:
    """Read the metadata of ``path``'s first video stream.

    With ``check_decode`` the first frame is decoded too, so a file whose codec cannot be decoded is
    reported here rather than during training. Raises :class:`VideoDecodeError` naming the file and
    the cause.
    """
    path = Path(path)
    check_video_file(path)  # missing, not a file, unreadable, empty: the same messages as decoding
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
        raise VideoDecodeError(with_truncation_hint(path, f"{path}: cannot open: {error}")) from None
    try:
        if not container.streams.video:
            raise VideoDecodeError(f"{path}: no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        width, height = stream.codec_context.width, stream.codec_context.height
        num_frames = int(stream.frames or 0)
        stream_duration = None
        if stream.duration and stream.time_base:
            stream_duration = float(stream.duration * stream.time_base)
        elif container.duration:
            stream_duration = container.duration / 1_000_000

        if check_decode:
            try:
                next(container.decode(stream))
            except StopIteration:
                raise VideoDecodeError(f"{path}: the video stream has no frames") from None
            container.seek(0)
        if num_frames <= 0:
            # No frame count in the header: count packets (cheap, no decoding) ...
            container.seek(0)
            num_frames = _count_packets(container, stream)
        if num_frames <= 0:
            # ... or decode everything when even packets are not delimited.
            container.seek(0)
            num_frames = _count_decoded(container, stream)
        if num_frames <= 0:
            raise VideoDecodeError(f"{path}: the video stream has no frames")
        if fps <= 0:
            if not stream_duration:
                raise VideoDecodeError(f"{path}: neither frame rate nor duration is known")
            fps = num_frames / stream_duration
        duration = num_frames / fps
        if not width or not height:
            raise VideoDecodeError(f"{path}: unknown frame size")
        return VideoInfo(duration=duration, fps=fps, num_frames=num_frames, width=width, height=height)
    except VideoDecodeError:
        raise
    except (av.FFmpegError, OSError, ValueError) as error:
        raise VideoDecodeError(f"{path}: cannot read: {error}") from None
    finally:
        container.close()


def read_videos_metadata(
    paths: Iterable[str | os.PathLike],
    workers: int = 8,
    progress: bool = True,
    check_decode: bool = True,
) -> tuple[dict[Path, VideoInfo], dict[Path, str]]:
    """Probe many videos in parallel threads (PyAV releases the GIL while demuxing and decoding).

    Returns ``(infos, failures)``: the metadata of each readable video and, for each unreadable or
    missing one, the error message. One bad file never stops the others.
    """
    paths = [Path(p) for p in paths]
    infos: dict[Path, VideoInfo] = {}
    failures: dict[Path, str] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(read_video_metadata, p, check_decode): p for p in paths}
        done = as_completed(futures)
        if progress:
            done = tqdm(done, total=len(futures), desc="probe", unit="video")
        for future in done:
            path = futures[future]
            try:
                infos[path] = future.result()
            except VideoDecodeError as error:
                failures[path] = str(error)
    return infos, failures
