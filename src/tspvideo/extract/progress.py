"""Progress of extraction in clips, so the bar moves (with a rate and an ETA) during one long video.

The total comes from the videos' headers (duration -> number of clips), read in a background thread
so that a large dataset starts at once; until every header is read the bar shows no total. When a
video finishes, its real clip count replaces the header's estimate.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from tspvideo.core.grid import ClipGrid, num_clips
from tspvideo.extract.streaming import header_duration


def expected_clips(video: Path, settings: ClipGrid) -> int:
    """Clips a video should give, from its header's duration (0 when unknown or unreadable)."""
    try:
        duration = header_duration(video)
    except Exception:  # unreadable: it fails with its cause during extraction
        return 0
    if not duration:
        return 0
    # Sampled frame j exists while j / fps is before the end (video/decode.py): ceil(duration * fps) of them.
    frames = math.ceil(duration * settings.fps - 1e-6)
    return max(0, num_clips(frames, settings.clip_len, settings.stride))


class ClipProgress:
    """A tqdm bar counting clips (``clip/s``, ETA), with ``done/total videos`` beside it."""

    def __init__(self, videos: Sequence[Path], settings: ClipGrid, *, enabled: bool = True, desc: str = "",
                 file=None) -> None:
        self.bar = tqdm(total=None, unit="clip", desc=desc, disable=not enabled, dynamic_ncols=True, file=file)
        self.num_videos = len(videos)
        self.videos_done = 0
        self._lock = threading.Lock()
        self._expected: list[int | None] = [None] * len(videos)
        self._actual: list[int | None] = [None] * len(videos)
        self._sum = 0  # over videos: real clips when finished, else the header's estimate once read
        self._all_read = threading.Event()
        self._stop = threading.Event()
        self._show_videos()
        if enabled and videos:
            self._thread = threading.Thread(target=self._read_headers, args=(list(videos), settings), daemon=True)
            self._thread.start()
        else:
            self._thread = None

    def _read_headers(self, videos: list[Path], settings: ClipGrid) -> None:
        for index, video in enumerate(videos):
            if self._stop.is_set():
                return
            clips = expected_clips(video, settings)
            with self._lock:
                self._expected[index] = clips
                if self._actual[index] is None:
                    self._sum += clips
        self._all_read.set()

    def add_clips(self, clips: int) -> None:
        """Count clips just computed."""
        self._update_total()
        self.bar.update(clips)

    def video_done(self, index: int, clips: int | None) -> None:
        """Video ``index`` finished with ``clips`` features (None: it failed)."""
        with self._lock:
            actual = clips or 0
            self._actual[index] = actual
            expected = self._expected[index]
            self._sum += actual - (expected if expected is not None else 0)
        self.videos_done += 1
        self._update_total()
        self._show_videos()

    def write(self, message: str) -> None:
        """Print a line without breaking the bar."""
        self.bar.write(message)

    def close(self) -> None:
        """Close the bar and stop reading headers."""
        self._stop.set()
        self._update_total()
        self.bar.close()

    @property
    def total(self) -> int | None:
        """The clips expected in all, once every header is read."""
        return max(self._sum, int(self.bar.n)) if self._all_read.is_set() else None

    def _update_total(self) -> None:
        total = self.total
        if total is not None and total != self.bar.total:
            self.bar.total = total
            self.bar.refresh()

    def _show_videos(self) -> None:
        self.bar.set_postfix_str(f"{self.videos_done}/{self.num_videos} videos", refresh=False)
