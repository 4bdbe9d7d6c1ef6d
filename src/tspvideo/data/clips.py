"""The clip grid: clip i covers sampled frames ``[i * stride, i * stride + clip_len)``.

A video with N sampled frames has ``floor((N - clip_len) / stride) + 1`` clips (none when N < clip_len).
Cutting the clips out of a decoded stream is :class:`tspvideo.streaming.ClipAssembler`'s job.
"""

from __future__ import annotations


def num_clips(num_frames: int, clip_len: int, stride: int) -> int:
    """Number of clips of ``clip_len`` frames at ``stride`` in ``num_frames`` frames."""
    return 0 if num_frames < clip_len else (num_frames - clip_len) // stride + 1


def clip_centers(count: int, clip_len: int, stride: int, fps: float) -> list[float]:
    """Time (s) of the centre of each clip: ``(i * stride + clip_len / 2) / fps``."""
    return [(i * stride + clip_len / 2) / fps for i in range(count)]
