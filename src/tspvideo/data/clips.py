"""Sliding clips over a stream of sampled frames: each video is decoded once, whatever the stride.

Clip i covers sampled frames ``[i * stride, i * stride + clip_len)``; a video with N sampled frames has
``floor((N - clip_len) / stride) + 1`` clips (none when N < clip_len). Frames are preprocessed in
chunks as they arrive and dropped once no later clip needs them, so memory is bounded by
``clip_len + chunk`` frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch


def num_clips(num_frames: int, clip_len: int, stride: int) -> int:
    """Number of clips of ``clip_len`` frames at ``stride`` in ``num_frames`` frames."""
    return 0 if num_frames < clip_len else (num_frames - clip_len) // stride + 1


def clip_centers(count: int, clip_len: int, stride: int, fps: float) -> list[float]:
    """Time (s) of the centre of each clip: ``(i * stride + clip_len / 2) / fps``."""
    return [(i * stride + clip_len / 2) / fps for i in range(count)]


def iter_clips(frames: Iterable[tuple[int, np.ndarray]], clip_len: int, stride: int,
               transform: Callable[[torch.Tensor], torch.Tensor], chunk: int = 16) -> Iterator[torch.Tensor]:
    """Yield clips ``[3, clip_len, h, w]`` in order from ``(j, frame)`` pairs with j = 0, 1, 2, ...

    ``transform`` maps uint8 ``[n, H, W, 3]`` frames to float ``[n, 3, h, w]`` and must treat frames
    independently (true of the reference preprocessing), so chunking does not change the result.
    Frames no clip covers (``stride > clip_len``) are decoded but never transformed.
    """
    if clip_len <= 0 or stride <= 0:
        raise ValueError(f"clip_len and stride must be positive, got {clip_len} and {stride}")
    ready: dict[int, torch.Tensor] = {}  # transformed frames still needed by a coming clip
    pending_index: list[int] = []
    pending_frames: list[np.ndarray] = []
    next_clip = 0

    def needed(j: int) -> bool:
        return j % stride < clip_len or stride < clip_len

    def flush() -> None:
        if pending_frames:
            out = transform(torch.from_numpy(np.stack(pending_frames)))
            ready.update(zip(pending_index, out, strict=True))
            pending_index.clear()
            pending_frames.clear()

    for j, frame in frames:
        if not needed(j):
            continue
        pending_index.append(j)
        pending_frames.append(frame)
        last_needed = next_clip * stride + clip_len - 1
        if len(pending_frames) >= chunk or j >= last_needed:
            flush()
        while next_clip * stride + clip_len - 1 in ready:
            start = next_clip * stride
            yield torch.stack([ready[k] for k in range(start, start + clip_len)], dim=1)
            next_clip += 1
            for k in [k for k in ready if k < next_clip * stride]:
                del ready[k]
