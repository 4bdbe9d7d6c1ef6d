"""Every sampled frame of a video kept in memory, so that random clip reads stop decoding.

Training reads clips at random places of random videos: each read opens the file, seeks and decodes a
group of pictures. With small frames (the experiment's 48x48 or 64x64 synthetic videos) that per-clip
overhead, not the model, sets the pace of an epoch. A :class:`SampledFrameCache` decodes a video once
(all its frames on the sampling grid, with the same rule as :func:`~tspvideo.video.decode.read_frames`)
and serves later clips of it as slices: the same frames, bit for bit, since a read from anywhere gives
the frames of a full decode (tested).

One cache lives in each loader worker (each holds its own copy: ``max_bytes`` is per worker), least
recently used videos go first. A video whose frames alone exceed ``max_bytes`` is read clip by clip as
without a cache. The one difference: a video that cannot be decoded to its end (cut short, damaged in the
middle) fails for every clip, where clip reads would still get the clips before the damage; those clips
are replaced and counted like any undecodable clip.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from tspvideo.errors import VideoDecodeError
from tspvideo.grid import DEFAULT_FPS
from tspvideo.video.decode import DEFAULT_SAMPLING, iter_sampled_frames, read_frames

MEGABYTE = 1 << 20


class SampledFrameCache:
    """Clips of ``fps``-sampled RGB frames, from memory after a video's first read; ``max_bytes`` per cache."""

    def __init__(self, max_bytes: int, fps: float = DEFAULT_FPS, sampling: str = DEFAULT_SAMPLING,
                 threads: int = 1) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.max_bytes = max_bytes
        self.fps = fps
        self.sampling = sampling
        self.threads = threads
        self._videos: OrderedDict[str, np.ndarray] = OrderedDict()
        self._too_large: set[str] = set()
        self.bytes = 0
        self.decoded = 0  # videos decoded whole
        self.hits = 0

    def read(self, path: str | os.PathLike, start_index: int, num_frames: int) -> np.ndarray:
        """Frames ``start_index .. start_index + num_frames - 1`` as ``uint8 [num_frames, H, W, 3]``, as
        :func:`~tspvideo.video.decode.read_frames` gives them (and with its error past the video's end)."""
        key = str(path)
        if key in self._too_large:
            return read_frames(path, start_index, num_frames, fps=self.fps, threads=self.threads,
                               sampling=self.sampling)
        frames = self._videos.get(key)
        if frames is None:
            frames = self._decode(Path(path))
            if frames is None:
                return read_frames(path, start_index, num_frames, fps=self.fps, threads=self.threads,
                                   sampling=self.sampling)
        else:
            self._videos.move_to_end(key)
            self.hits += 1
        if start_index < 0 or start_index + num_frames > len(frames):
            raise VideoDecodeError(f"{path}: asked for frames {start_index}..{start_index + num_frames - 1} at "
                                   f"{self.fps:g} fps but the video has only {len(frames)}")
        return frames[start_index:start_index + num_frames].copy()

    def _decode(self, path: Path) -> np.ndarray | None:
        """Decode the whole video and keep it (evicting the least recently used); None when it cannot fit."""
        frames = [frame for _, frame in iter_sampled_frames(path, self.fps, threads=self.threads,
                                                            sampling=self.sampling)]
        if not frames:
            raise VideoDecodeError(f"{path}: no frame at {self.fps:g} fps")
        array = np.stack(frames)
        self.decoded += 1
        if array.nbytes > self.max_bytes:
            self._too_large.add(str(path))
            return None
        while self._videos and self.bytes + array.nbytes > self.max_bytes:
            _, evicted = self._videos.popitem(last=False)
            self.bytes -= evicted.nbytes
        self._videos[str(path)] = array
        self.bytes += array.nbytes
        return array
