"""Every sampled frame of a video kept in memory, so that random clip reads stop decoding.

Training reads clips at random places of random videos: each read opens the file, seeks and decodes a
group of pictures. With small frames (the experiment's 48x48 or 64x64 synthetic videos) that per-clip
overhead, not the model, sets the pace of an epoch. A :class:`SampledFrameCache` decodes a video once
(all its frames on the sampling grid, with the same rule as :func:`~tspvideo.video.decode.read_frames`)
and serves later clips of it as slices: the same frames, bit for bit, since a read from anywhere gives
the frames of a full decode (tested).

In memory (``max_bytes``), one cache lives in each loader worker (each holds its own copy: the budget
is per worker), least recently used videos go first; a video whose frames alone exceed ``max_bytes`` is
read clip by clip as without a cache. With a ``directory``, a video's frames are written there once as an
``.npy`` file (atomically) and memory-mapped by every worker and process that reads the video later: one
decode per video for all of them, one copy in the page cache. A file's name holds the video's path, size
and modification time and the sampling (fps and rule), so a changed video is decoded again, never served
stale; an unreadable cache file is decoded again and replaced. Nothing is ever deleted from the folder.
The one difference: a video that cannot be decoded to its end (cut short, damaged in the
middle) fails for every clip, where clip reads would still get the clips before the damage; those clips
are replaced and counted like any undecodable clip.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from tspvideo.core.errors import VideoDecodeError
from tspvideo.core.fileio import save_npy_atomic
from tspvideo.core.grid import DEFAULT_FPS
from tspvideo.video.decode import DEFAULT_SAMPLING, iter_sampled_frames, read_frames

MEGABYTE = 1 << 20


class SampledFrameCache:
    """Clips of ``fps``-sampled RGB frames, from memory (``max_bytes`` per cache) or memory-mapped files in
    ``directory`` after a video's first read."""

    def __init__(self, max_bytes: int = 0, fps: float = DEFAULT_FPS, sampling: str = DEFAULT_SAMPLING,
                 threads: int = 1, directory: str | os.PathLike | None = None) -> None:
        if max_bytes < 0 or (max_bytes == 0 and directory is None):
            raise ValueError(f"a frame cache needs a positive max_bytes or a directory, got {max_bytes}")
        self.max_bytes = max_bytes
        self.fps = fps
        self.sampling = sampling
        self.threads = threads
        self.directory = Path(directory) if directory is not None else None
        self._videos: OrderedDict[str, np.ndarray] = OrderedDict()
        self._too_large: set[str] = set()
        self.bytes = 0
        self.decoded = 0  # videos decoded whole
        self.loaded = 0  # videos mapped from a file of the directory
        self.hits = 0

    def read(self, path: str | os.PathLike, start_index: int, num_frames: int) -> np.ndarray:
        """Frames ``start_index .. start_index + num_frames - 1`` as ``uint8 [num_frames, H, W, 3]``, as
        :func:`~tspvideo.video.decode.read_frames` gives them (and with its error past the video's end)."""
        path = Path(path)
        try:
            key = self._identity(path)  # the video as it is now: a changed file is a new key
        except OSError:
            key = None  # missing or unreadable: the clip read says so, naming the file
        if key is None or key in self._too_large:
            return read_frames(path, start_index, num_frames, fps=self.fps, threads=self.threads,
                               sampling=self.sampling)
        frames = self._videos.get(key)
        if frames is not None:
            self._videos.move_to_end(key)
            self.hits += 1
        elif self.directory is not None:
            frames = self._stored(path, key)
        else:
            frames = self._decode(path, key)
            if frames is None:
                return read_frames(path, start_index, num_frames, fps=self.fps, threads=self.threads,
                                   sampling=self.sampling)
        if start_index < 0 or start_index + num_frames > len(frames):
            raise VideoDecodeError(f"{path}: asked for frames {start_index}..{start_index + num_frames - 1} at "
                                   f"{self.fps:g} fps but the video has only {len(frames)}")
        return np.array(frames[start_index:start_index + num_frames])  # a copy, never a view of the cache

    def _identity(self, path: Path) -> str:
        """Path, size, modification time and sampling, hashed: what the cached frames depend on."""
        stat = path.stat()
        identity = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self.fps!r}|{self.sampling}"
        return f"{path.stem}-{hashlib.sha1(identity.encode()).hexdigest()[:16]}"

    def stored_path(self, path: str | os.PathLike) -> Path:
        """The directory's file for this video as it is now."""
        if self.directory is None:
            raise ValueError("this frame cache has no directory")
        return self.directory / f"{self._identity(Path(path))}.npy"

    def _decode_whole(self, path: Path) -> np.ndarray:
        frames = [frame for _, frame in iter_sampled_frames(path, self.fps, threads=self.threads,
                                                            sampling=self.sampling)]
        if not frames:
            raise VideoDecodeError(f"{path}: no frame at {self.fps:g} fps")
        self.decoded += 1
        return np.stack(frames)

    def _stored(self, path: Path, key: str) -> np.ndarray:
        """The video's frames mapped from the directory, decoded and written there first when missing."""
        stored = self.directory / f"{key}.npy"
        frames = None
        if stored.is_file():
            try:
                frames = np.load(stored, mmap_mode="r")
                self.loaded += 1
            except (OSError, ValueError):  # cut short or overwritten by hand: decode again
                frames = None
        if frames is None:
            save_npy_atomic(stored, self._decode_whole(path))  # atomic: other readers see whole files only
            frames = np.load(stored, mmap_mode="r")
        self._videos[key] = frames  # mapped pages live in the shared page cache, not this budget
        return frames

    def _decode(self, path: Path, key: str) -> np.ndarray | None:
        """Decode the whole video and keep it (evicting the least recently used); None when it cannot fit."""
        array = self._decode_whole(path)
        if array.nbytes > self.max_bytes:
            self._too_large.add(key)
            return None
        while self._videos and self.bytes + array.nbytes > self.max_bytes:
            _, evicted = self._videos.popitem(last=False)
            self.bytes -= evicted.nbytes
        self._videos[key] = array
        self.bytes += array.nbytes
        return array
