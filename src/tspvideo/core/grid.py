"""The clip grid: where every feature of a video sits in time. The only copy of its defaults.

Clip i covers the sampled frames ``[i * stride, i * stride + clip_len)`` at ``fps``, so its centre is at
``(i * stride + clip_len / 2) / fps`` seconds; a video with N sampled frames has
``floor((N - clip_len) / stride) + 1`` clips (none when N < clip_len). The defaults are the paper's:
16 frames at 15 fps, one clip every 16 frames. Which source frames are "sampled" is the sampling rule's
job (:mod:`tspvideo.video.decode`); cutting the clips out of a decoded stream is
:class:`tspvideo.extract.streaming.ClipAssembler`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tspvideo.core.errors import TspVideoError

DEFAULT_CLIP_LEN = 16
DEFAULT_FPS = 15.0
DEFAULT_STRIDE = DEFAULT_CLIP_LEN  # one feature per clip length, as the released features
# Which source frame is "sampled frame j" (implemented in tspvideo.video.decode): the original's rule by default.
SAMPLING_RULES = ("ffmpeg-fps", "timestamp")
DEFAULT_SAMPLING = "ffmpeg-fps"


def num_clips(num_frames: int, clip_len: int, stride: int) -> int:
    """Number of clips of ``clip_len`` frames at ``stride`` in ``num_frames`` frames."""
    return 0 if num_frames < clip_len else (num_frames - clip_len) // stride + 1


def clip_centers(count: int, clip_len: int = DEFAULT_CLIP_LEN, stride: int = DEFAULT_STRIDE,
                 fps: float = DEFAULT_FPS) -> np.ndarray:
    """Time (s) of the centre of each of ``count`` clips: ``(i * stride + clip_len / 2) / fps`` (float64)."""
    return (np.arange(count, dtype=np.float64) * stride + clip_len / 2.0) / fps


@dataclass(frozen=True)
class ClipGrid:
    """A complete grid, checked: ``clip_len`` frames at ``fps``, one clip every ``stride`` frames, the source
    frames chosen by the ``sampling`` rule (see :mod:`tspvideo.video.decode`)."""

    clip_len: int = DEFAULT_CLIP_LEN
    fps: float = DEFAULT_FPS
    stride: int = DEFAULT_STRIDE
    sampling: str = DEFAULT_SAMPLING

    def __post_init__(self) -> None:
        if self.clip_len <= 0:
            raise TspVideoError(f"clip length must be positive, got {self.clip_len}")
        if self.stride <= 0:
            raise TspVideoError(f"stride must be positive, got {self.stride}")
        if self.fps <= 0:
            raise TspVideoError(f"fps must be positive, got {self.fps}")
        if self.sampling not in SAMPLING_RULES:
            raise TspVideoError(f"unknown sampling rule {self.sampling!r} (choose from {', '.join(SAMPLING_RULES)})")

    def first_frame(self, clip: int) -> int:
        """Index of the first sampled frame of clip ``clip``."""
        return clip * self.stride

    def needs(self, frame: int) -> bool:
        """Whether some clip covers sampled frame ``frame`` (not so between clips when stride > clip_len)."""
        return self.stride <= self.clip_len or frame % self.stride < self.clip_len

    def num_clips(self, num_frames: int) -> int:
        """Clips in ``num_frames`` sampled frames."""
        return num_clips(num_frames, self.clip_len, self.stride)

    def centers(self, count: int) -> np.ndarray:
        """Centre time (s) of each of ``count`` clips."""
        return clip_centers(count, self.clip_len, self.stride, self.fps)

    @property
    def clip_seconds(self) -> float:
        """Length of one clip in seconds."""
        return self.clip_len / self.fps
