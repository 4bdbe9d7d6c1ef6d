"""Optional re-encode of a video folder: constant frame rate, small frames, short keyframe interval.

Random clip reads seek to the keyframe before the clip and decode from there; with a short keyframe
interval (``gop``) and small frames each read decodes far fewer pixels. Names (and sub-folders) are
kept, so segment tables still match. Audio is dropped. Output frame ``k`` (time ``k / fps``) is the
source frame the clip sampler's rule (``sampling``, see :mod:`tspvideo.video.decode`) picks as frame ``k``
at ``fps``: with the defaults (30 fps, ``ffmpeg-fps``) exactly the original's re-encode with FFmpeg's
fps filter, so clips sampled from the output at 15 fps hold the same source frames as from the input.
"""

from __future__ import annotations

import csv
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
from tqdm import tqdm

from tspvideo.core.errors import TspVideoError, VideoDecodeError
from tspvideo.core.fileio import atomic_path
from tspvideo.video.decode import DEFAULT_SAMPLING, SamplingClock
from tspvideo.video.files import videos_under

FAILURES_FILE = "transcode_failures.csv"


@dataclass(frozen=True)
class TranscodeOptions:
    """Encoder settings; the defaults are the ``tspvideo transcode`` defaults."""

    fps: float = 30.0
    short_side: int = 128
    gop: int = 16
    crf: int = 23
    preset: str = "veryfast"
    threads: int = 0  # 0: FFmpeg chooses
    sampling: str = DEFAULT_SAMPLING  # which source frame each output frame shows


@dataclass
class TranscodeReport:
    """Outcome of :func:`transcode_folder`: files written, skipped (already there) and failed."""

    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: dict[Path, str] = field(default_factory=dict)


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Frame size with the short side ``short_side`` (rounded to even), aspect ratio kept, both even."""
    if width <= 0 or height <= 0 or short_side <= 0:
        raise ValueError(f"bad sizes: {width}x{height} -> short side {short_side}")
    short_side += short_side % 2  # yuv420p needs even sizes
    if width <= height:
        return short_side, max(2, 2 * round(height * short_side / width / 2))
    return max(2, 2 * round(width * short_side / height / 2)), short_side


def _container_format(path: Path) -> str:
    # The temporary file has no video extension, so the muxer is named explicitly; MP4 cannot carry
    # every codec name's container (WebM refuses H.264), Matroska can, and FFmpeg probes content anyway.
    return "mp4" if path.suffix.lower() in (".mp4", ".m4v", ".mov") else "matroska"


def transcode_video(src: str | os.PathLike, dst: str | os.PathLike, options: TranscodeOptions) -> None:
    """Re-encode ``src`` into ``dst`` (H.264, yuv420p), atomically. Raises :class:`VideoDecodeError`."""
    src, dst = Path(src), Path(dst)
    rate = Fraction(options.fps).limit_denominator(1001)
    clock = SamplingClock(rate, options.sampling)
    try:
        with av.open(str(src)) as source:
            if not source.streams.video:
                raise VideoDecodeError(f"{src}: no video stream")
            in_stream = source.streams.video[0]
            in_stream.thread_type = "AUTO"
            if options.threads:
                in_stream.codec_context.thread_count = options.threads
            width, height = output_size(in_stream.codec_context.width, in_stream.codec_context.height,
                                        options.short_side)
            start = Fraction(in_stream.start_time or 0) * in_stream.time_base
            in_rate = Fraction(in_stream.average_rate or in_stream.guessed_rate or 30)
            with atomic_path(dst) as tmp:
                with av.open(str(tmp), mode="w", format=_container_format(dst)) as out:
                    stream = out.add_stream("libx264", rate=rate)
                    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                    stream.codec_context.gop_size = options.gop
                    if options.threads:
                        stream.codec_context.thread_count = options.threads
                    # Fixed keyframe interval: no scene-cut keyframes, no longer GOPs.
                    stream.options = {
                        "crf": str(options.crf),
                        "preset": options.preset,
                        "x264-params": f"keyint={options.gop}:min-keyint={options.gop}:scenecut=0",
                    }
                    written = 0
                    previous = None
                    last_time, last_duration = Fraction(0), 1 / in_rate
                    for index, frame in enumerate(source.decode(in_stream)):
                        t = Fraction(frame.pts) * in_stream.time_base - start if frame.pts is not None \
                            else index / in_rate
                        # Output frames placed before this frame show the previous frame.
                        while previous is not None and clock.target(written) < clock.position(t):
                            _reset(previous, written)
                            for packet in stream.encode(previous):
                                out.mux(packet)
                            written += 1
                        previous = frame.reformat(width=width, height=height, format="yuv420p")
                        # pts count output frames: without this PyAV rescales them from the source's
                        # time base and they collapse onto each other.
                        previous.time_base = 1 / rate
                        last_time = t
                        # The last frame lasts its duration (as for the sampler), else one source frame.
                        last_duration = Fraction(frame.duration) * in_stream.time_base if frame.duration \
                            else 1 / in_rate
                    if previous is None:
                        raise VideoDecodeError(f"{src}: the video stream has no frames")
                    end = clock.position(last_time + last_duration)
                    while written == 0 or clock.target(written) < end:
                        _reset(previous, written)
                        for packet in stream.encode(previous):
                            out.mux(packet)
                        written += 1
                    for packet in stream.encode(None):
                        out.mux(packet)
    except VideoDecodeError:
        raise
    except (av.FFmpegError, OSError, ValueError) as error:
        raise VideoDecodeError(f"{src}: {error}") from None


def _reset(frame: av.VideoFrame, pts: int) -> None:
    # A frame sent twice (frame-rate up-conversion) comes back marked as a keyframe by the encoder,
    # which would force an extra keyframe; clear the mark so only the fixed interval places them.
    frame.pts = pts
    frame.pict_type = av.video.frame.PictureType.NONE


def _transcode_one(src: Path, dst: Path, options: TranscodeOptions) -> tuple[Path, str | None]:
    try:
        transcode_video(src, dst, options)
        return src, None
    except VideoDecodeError as error:
        return src, str(error)


def transcode_folder(
    in_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: TranscodeOptions | None = None,
    workers: int = 1,
    progress: bool = True,
) -> TranscodeReport:
    """Transcode every video under ``in_dir`` into the same relative path under ``out_dir``.

    Outputs that exist are skipped (writes are atomic, so an existing file is complete): rerun to
    resume. Failures are listed in ``out_dir/transcode_failures.csv`` (removed when none failed).
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    options = options or TranscodeOptions()
    if not in_dir.is_dir():
        raise TspVideoError(f"{in_dir}: input folder not found")
    if out_dir.resolve() == in_dir.resolve():
        raise TspVideoError("the output folder must differ from the input folder")
    sources = list(videos_under(in_dir))
    if not sources:  # said before the output folder is made: nothing to do is not a success
        raise TspVideoError(f"{in_dir}: no videos found")
    out_dir.mkdir(parents=True, exist_ok=True)
    report = TranscodeReport()
    jobs = []
    for src in sources:
        dst = out_dir / src.relative_to(in_dir)
        if out_dir.resolve() in src.resolve().parents:
            continue  # output folder inside the input folder: do not transcode our own outputs
        if dst.exists():
            report.skipped.append(src)
        else:
            jobs.append((src, dst))
    if workers > 1 and options.threads == 0:
        # One decoder and one encoder thread per worker avoids oversubscribing the cores.
        options = TranscodeOptions(**{**options.__dict__, "threads": 1})
    bar = tqdm(total=len(jobs), desc="transcode", unit="video", disable=not progress)
    if workers <= 1:
        results = (_transcode_one(src, dst, options) for src, dst in jobs)
        for src, error in results:
            _record(report, src, error)
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_transcode_one, src, dst, options) for src, dst in jobs]
            for future in as_completed(futures):
                _record(report, *future.result())
                bar.update()
    bar.close()
    failures_path = out_dir / FAILURES_FILE
    if report.failed:
        with atomic_path(failures_path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["filename", "error"])
            for src, error in sorted(report.failed.items()):
                writer.writerow([src.relative_to(in_dir).as_posix(), error])
    elif failures_path.exists():
        failures_path.unlink()
    return report


def _record(report: TranscodeReport, src: Path, error: str | None) -> None:
    if error is None:
        report.done.append(src)
    else:
        report.failed[src] = error
