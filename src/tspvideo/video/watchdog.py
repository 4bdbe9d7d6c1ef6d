"""A time limit on decoding: a decoder that stops making progress fails its video instead of stalling a run.

:func:`watch_decoding` runs a decoder (any iterator of frames) in a thread of its own and hands its frames
on. The limit is on *stalls*, not on a video's whole decoding: the video fails with
:class:`DecodeTimeout` when the decoder goes ``seconds`` without progress, where progress is a frame
delivered or, from decoders that report it (:func:`beat`; PyAV's loop does, per decoded source frame), a
source frame decoded. Time the decoder spends waiting for the model to take its frames is not counted.
So the limit does not grow with a video's length or the model's speed: a healthy decoder makes progress
many times a second, while a pathological file (a decoder looping forever, a read that never returns on a
stuck network file system) would otherwise hold its worker, and the run, for good.

Python cannot stop a thread: a decoder that never returns is abandoned (a daemon thread, asked to stop at
its next frame) and keeps what it holds, a CPU core at worst, until the process ends. A decoder that was
only slow stops at its next frame and closes its file.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from tspvideo.core.errors import VideoDecodeError

T = TypeVar("T")

# Seconds without progress after which a video fails: far beyond any healthy decoder (one frame, one seek,
# opening a file), short enough that a few hung files in a 20,000-video run cost minutes, not the run.
DEFAULT_VIDEO_TIMEOUT = 300.0
QUEUE_FRAMES = 4  # frames the decoder may run ahead of the consumer
_POLL_SECONDS = 1.0  # how often the consumer looks at the decoder's progress while it waits
_JOIN_SECONDS = 10.0  # the longest a consumer waits for its decoder to close the file

_local = threading.local()


class DecodeTimeout(VideoDecodeError):
    """A video's decoder made no progress for the time limit; the video fails, the run goes on."""

    def __init__(self, path: object, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"{path}: timed out: the decoder made no progress for {seconds:g} s (--video-timeout); "
                         "video skipped")


class _Progress:
    def __init__(self) -> None:
        self.last = time.monotonic()


def beat() -> None:
    """Tell the watchdog of the calling thread's decoding, if any, that the decoder is making progress.

    Decoders call it per source frame, so that a stretch decoded without any sampled frame (seeking, or
    skipping to a work unit's first frame) is not taken for a stall. Costs a lookup where nothing watches.
    """
    progress = getattr(_local, "progress", None)
    if progress is not None:
        progress.last = time.monotonic()


def watch_decoding(start: Callable[[], Iterator[T]], seconds: float | None, path: str | os.PathLike) -> Iterator[T]:
    """The items of the iterator ``start()`` returns, decoded in a thread; :class:`DecodeTimeout` naming ``path``
    when the decoder makes no progress (see the module doc) for ``seconds``. ``None`` or 0: no limit, the
    iterator runs in the calling thread. Exceptions of the decoder are raised here, as they are."""
    if not seconds:
        yield from start()
        return
    if seconds < 0:
        raise ValueError(f"a time limit must be positive, got {seconds}")
    ready: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
    stop = threading.Event()
    progress = _Progress()

    def put(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                ready.put(entry, timeout=0.1)
            except queue.Full:
                continue
            progress.last = time.monotonic()  # decoding resumes now: waiting for the consumer is no stall
            return True
        return False

    def produce() -> None:
        _local.progress = progress
        frames = None
        try:
            frames = start()
            for item in frames:
                progress.last = time.monotonic()
                if not put(("item", item)):
                    return  # the consumer has gone (timed out, or stopped early)
            put(("done", None))
        except BaseException as error:  # handed to the consumer, which raises it
            put(("error", error))
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()  # in this thread: the decoder's file is closed where it was opened
            frames = close = None

    thread = threading.Thread(target=produce, name=f"decode {os.fspath(path)}", daemon=True)
    thread.start()
    stalled = False
    try:
        while True:
            try:
                kind, value = ready.get(timeout=min(seconds, _POLL_SECONDS))
            except queue.Empty:
                if time.monotonic() - progress.last > seconds:
                    stalled = True
                    raise DecodeTimeout(path, seconds) from None
                continue
            if kind == "done":
                return
            if kind == "error":
                error, value = value, None
                try:
                    raise error
                finally:
                    # No cycle exception -> traceback -> this frame -> exception: it would keep the decoder (and
                    # FFmpeg's threads) alive until a garbage collection, maybe in a forked worker, where it crashes.
                    del error
            yield value
    finally:
        stop.set()
        if not stalled:
            # Wait for the decoder to close its file: a thread left inside FFmpeg when this process forks
            # (DataLoader workers) would leave its locks held in the child, which then crashes or hangs.
            # Bounded: a consumer that stops early (Ctrl-C) waits for the decoder's current frame, not for a hang.
            thread.join(timeout=min(seconds, _JOIN_SECONDS))
