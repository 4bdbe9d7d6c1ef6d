"""The extraction pipeline's two halves: decode workers stream frames, the model's process builds clips.

Work is cut into units: a whole video, or, when there are few videos for the decode workers, a
stretch of a long video (a range of its clips, decoded after a seek; frames are picked by timestamp,
so a stretch gives exactly the frames a full decode would). Workers take the next unit as they free
up, so long and short videos balance.

A worker sends each sampled frame that some clip needs once, preprocessed (``[n, 3, h, w]`` float),
never whole clips: at stride 1 a clip shares 15 of its 16 frames with the previous one, and sending
clips would move 16 times the data. :class:`ClipAssembler`, in the model's process and on the
model's device, cuts the clips out of those frames and batches them across units and videos.

With ``raw`` frames (the default on a GPU) the worker sends the decoder's uint8 RGB frames
(``[n, H, W, 3]``) and the assembler runs the same preprocessing on the model's device: the decode
workers, the bottleneck on a GPU, then only decode. Full-size uint8 frames are more bytes than float
crops (640x360: 0.69 MB against 0.15 MB), well within what pinned copies to a GPU carry.
"""

from __future__ import annotations

import functools
import gc
import logging
import math
import multiprocessing
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from tspvideo.core.choices import COLOUR_CONVERSIONS
from tspvideo.core.cores import cpu_share
from tspvideo.core.errors import TruncatedVideoError, TspVideoError
from tspvideo.core.grid import ClipGrid, num_clips
from tspvideo.core.memory import map_large_blocks
from tspvideo.datasets.transforms import PREPROCESSING, Preprocessing, preprocess_frames
from tspvideo.video.colour import PlanarFrame, planes_to_rgb
from tspvideo.video.decode import (
    SamplingClock,
    iter_sampled_frames,
    num_sampled_frames,
)
from tspvideo.video.nvdec import NvdecUnsupported, iter_nvdec_frames
from tspvideo.video.watchdog import watch_decoding

# Frames per item a worker sends: big enough to amortise inter-process overhead, small enough to keep
# a few items per worker in flight without much memory (64 preprocessed 112x112 frames: 9.6 MB).
FRAMES_PER_ITEM = 64
# Raw frames are full size: fewer per item, so items in flight (pinned on a GPU) stay small at 720p and up.
RAW_BYTES_PER_ITEM = 32 << 20

log = logging.getLogger(__name__)



class StreamedFeatures(NamedTuple):
    """One video's features ``[T, C]`` in clip order and its number of sampled frames.

    ``short`` is ``(decoded seconds, declared seconds)`` when the frames ended well before the duration
    the file declares and short files were accepted; None otherwise.
    """

    features: np.ndarray
    num_frames: int
    short: tuple[float, float] | None = None
    decoder: str | None = None  # the decoder that read it (``nvdec`` or ``pyav`` when NVDEC was asked for)


# What becomes of one video: its features, or an error message naming the file.
FeatureOutcome = StreamedFeatures | str


def default_decode_workers(device_type: str, backend: str, cores: int) -> int:
    """Decode worker processes by default, for the model's device type (``cpu``, ``cuda``...), the decoding
    backend and the CPU cores this process may use (:func:`cpu_share`).

    - ``nvdec``: none (NVDEC alone ran faster than with 14 PyAV workers beside it on an H200: the model's
      process, which receives both, was the bottleneck);
    - a GPU: ``cores - 2``, at least 1 (14 of 16 vCPUs was the fastest count on an H100: the model outruns
      decoding, so decoding gets every core but the model's process and one spare);
    - the CPU: 0 on up to 2 cores, decoding in the model's process. ``benchmarks/workers.py`` on 2 cores
      (R(2+1)D-18, 320x240): in 13 interleaved pairs of runs in-process decoding was 1.06x the clips/s of one
      worker (median ratio; 8 pairs in its favour), and the worker's own memory (120 MiB private, 630 MiB
      RSS) is saved: on 2 cores a worker only competes for them with the model's threads. 1 beyond 2 cores,
      where it can have a core of its own (not measured).
    """
    if backend == "nvdec":
        return 0
    if device_type == "cpu":
        return 0 if cores <= 2 else 1
    return max(1, cores - 2)


@dataclass(frozen=True)
class WorkUnit:
    """Clips ``first_clip .. end_clip - 1`` of one video (``end_clip=None``: to the video's end)."""

    video: int
    first_clip: int = 0
    end_clip: int | None = None

    def frame_range(self, settings: ClipGrid) -> tuple[int, int | None]:
        """Sampled frames to decode: ``[start, end)``, ``end=None`` for the video's end."""
        start = settings.first_frame(self.first_clip)
        if self.end_clip is None:
            return start, None
        return start, settings.first_frame(self.end_clip - 1) + settings.clip_len


def header_duration(path: Path) -> float | None:
    """The video stream's duration from the file's header (no decoding), or None when it gives none.

    Raises (any exception) when the file cannot be opened or has no video stream.
    """
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        return container.duration / 1_000_000 if container.duration else None


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def plan_units(videos: Sequence[Path], settings: ClipGrid, num_workers: int,
               part_frames: int = 2048, split: bool = True) -> list[WorkUnit]:
    """Cut the videos into work units; with several workers, largest files first (short ones end the run).

    Videos are split only when there are fewer than four per decode worker: then a long video would
    otherwise keep one worker busy while the others idle. A part covers about ``part_frames`` sampled
    frames (2048 at 15 fps: 2.3 min), so the seek each part starts with costs a few percent at most.
    Durations come from file headers; the last part of a video is open-ended, so a wrong header
    changes how the work is shared, never the features. ``split=False``: whole videos only.
    """
    if num_workers <= 1:  # nothing to balance: keep the given order
        return [WorkUnit(i) for i in range(len(videos))]
    order = sorted(range(len(videos)), key=lambda i: -_file_size(videos[i]))
    if len(videos) >= 4 * num_workers or not split:
        return [WorkUnit(i) for i in order]
    per_part = max(1, part_frames // settings.stride)
    units = []
    for i in order:
        try:
            duration = header_duration(videos[i])
        except Exception:  # unreadable: one unit, which reports the error with its cause
            duration = None
        frames = num_sampled_frames(duration, settings.fps, settings.sampling) if duration else 0
        clips = num_clips(frames, settings.clip_len, settings.stride)
        parts = max(1, math.floor(clips / per_part))
        bounds = [round(k * clips / parts) for k in range(parts)] + [None]
        units.extend(WorkUnit(i, bounds[k], bounds[k + 1]) for k in range(parts))
    return units


class FrameStream(IterableDataset):
    """Worker side: decodes units and yields their needed sampled frames, preprocessed, in order.

    Items are dicts: ``{"unit": u, "indices": LongTensor[n], "frames": [n, 3, h, w]}`` (with ``raw``:
    uint8 ``[n, H, W, 3]`` as decoded, preprocessed later by :class:`ClipAssembler`), then, per unit,
    ``{"unit": u, "end": True, "num_frames": N, "error": None | str, "short": None | (decoded s, declared s)}``
    where N is one past the last sampled frame the unit decoded (0 when none). A file that ends well
    before its declared duration is an error, unless ``accept_short``: then its frames are used and the
    end record says how short it is. With DataLoader workers, each worker takes the next unit not yet taken.
    ``video_timeout``: a unit whose decoder (PyAV or torchcodec, not NVDEC) makes no progress for this many seconds
    fails with a one-line error (:mod:`tspvideo.video.watchdog`; None or 0: no limit).
    """

    def __init__(self, videos: Sequence[Path], units: Sequence[WorkUnit], settings: ClipGrid,
                 prep: Preprocessing = PREPROCESSING["tsp"], backend: str = "pyav", decode_threads: int = 0,
                 decoder_resize: bool = False, accept_short: bool = False, raw: bool = False,
                 colour: str = "decoder", video_timeout: float | None = None) -> None:
        if colour not in COLOUR_CONVERSIONS:
            raise TspVideoError(f"unknown colour conversion {colour!r} (choose from {', '.join(COLOUR_CONVERSIONS)})")
        if colour == "device" and not raw:
            raise TspVideoError("colour conversion on the device needs raw frames (preprocessing on the device)")
        self.videos = list(videos)
        self.units = list(units)
        self.settings = settings
        self.prep = prep
        self.backend = backend
        self.decode_threads = decode_threads
        # Resizing inside the decoder (swscale) skips a full-size RGB conversion: faster, not bit-exact.
        if decoder_resize and prep.fixed_size is None:
            raise TspVideoError(f"--decoder-resize needs a fixed frame size (H W); this recipe resizes the short "
                                f"side to {prep.resize[0]}, which depends on each video: drop --decoder-resize")
        self.decoder_size = prep.fixed_size if decoder_resize else None
        self.accept_short = accept_short
        self.raw = raw
        # Ship 4:2:0 planes, converted to RGB on the device (not with a decoder resize, which needs RGB).
        self.planar = colour == "device" and self.decoder_size is None
        self.video_timeout = video_timeout
        self.next_unit = multiprocessing.Value("q", 0)  # shared by the workers, which inherit it

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        threads = self.decode_threads
        if info is None:
            for unit in range(len(self.units)):
                yield from self._unit_items(unit, threads)
            return
        if threads == 0:  # FFmpeg's "auto" would start a thread per core in every worker
            threads = max(1, cpu_share() // info.num_workers)
        # An item's large buffers (stacked frames, preprocessing) are freed once it is sent; in the heap they
        # left the worker holding 2.3 GB it no longer used (tspvideo.core.memory): own mappings instead.
        map_large_blocks()
        while (unit := self.take_unit()) is not None:
            yield from self._unit_items(unit, threads)

    def take_unit(self) -> int | None:
        """The next unit no worker (or NVDEC session) has taken yet, or None when all are taken."""
        with self.next_unit.get_lock():
            unit = self.next_unit.value
            self.next_unit.value += 1
        return unit if unit < len(self.units) else None

    def _unit_items(self, unit: int, threads: int, decode: Callable[[Path, int, int | None], Iterator] | None = None,
                    decoder: str | None = None) -> Iterator[dict]:
        """Items of one unit; ``decode(video, start, end)`` yields its sampled ``(j, frame)`` pairs (default: this
        stream's backend), ``decoder`` names it in the end record."""
        work = self.units[unit]
        video = self.videos[work.video]
        start, end = work.frame_range(self.settings)
        if decode is None:
            # The stream's own decoders (PyAV, torchcodec) run under the watchdog; NVDEC sessions decode in their
            # threads, bound to the GPU, as they are.
            decode = functools.partial(self._watched_decode, threads=threads)
        end_record = {"unit": unit, "end": True, "decoder": decoder or self.backend}
        last = -1
        indices: list[int] = []
        frames: list[np.ndarray | PlanarFrame | torch.Tensor] = []
        per_item = FRAMES_PER_ITEM
        try:
            for j, frame in decode(video, start, end):
                last = j
                if not self.settings.needs(j):
                    continue
                if frames and _layout(frame) != _layout(frames[0]):  # the stream changed size or format
                    yield self._item(unit, indices, frames)
                    indices, frames = [], []
                if self.raw and not frames:
                    per_item = max(1, min(FRAMES_PER_ITEM, RAW_BYTES_PER_ITEM // frame.nbytes))
                indices.append(j)
                frames.append(frame)
                if len(frames) == per_item:
                    yield self._item(unit, indices, frames)
                    indices, frames = [], []
            if frames:
                yield self._item(unit, indices, frames)
        except TruncatedVideoError as error:
            if not self.accept_short:
                yield {**end_record, "num_frames": last + 1, "error": str(error), "short": None}
                return
            if frames:  # every decodable frame came before the error
                yield self._item(unit, indices, frames)
            yield {**end_record, "num_frames": last + 1, "error": None,
                   "short": (error.decoded_seconds, error.declared_seconds)}
            return
        except NvdecUnsupported:
            raise  # the caller decodes this unit with PyAV instead
        except Exception as error:  # one bad video must not stop the others; the error names it
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            if str(video) not in message:
                message = f"{video}: {type(error).__name__}: {message}"
            yield {**end_record, "num_frames": last + 1, "error": message, "short": None}
            return
        yield {**end_record, "num_frames": last + 1, "error": None, "short": None}

    def _watched_decode(self, video: Path, start: int, end: int | None, threads: int) -> Iterator:
        return watch_decoding(lambda: self._decode(video, start, end, threads), self.video_timeout, video)

    def _decode(self, video: Path, start: int, end: int | None, threads: int) -> Iterator:
        return iter_sampled_frames(video, self.settings.fps, start_index=start, end_index=end,
                                   sampling=self.settings.sampling, backend=self.backend, threads=threads,
                                   size=self.decoder_size, planar=self.planar)

    def _item(self, unit: int, indices: list[int], frames: list[np.ndarray | PlanarFrame | torch.Tensor]) -> dict:
        item = {"unit": unit, "indices": torch.tensor(indices, dtype=torch.long)}
        if isinstance(frames[0], torch.Tensor):  # decoded on the GPU: already where the model is
            item["frames"] = torch.stack(frames)
            return item
        if isinstance(frames[0], PlanarFrame):
            item["frames"] = torch.from_numpy(np.stack([frame.data for frame in frames]))
            item["planar"] = torch.tensor(frames[0].layout)
            return item
        stacked = torch.from_numpy(np.stack(frames))
        # The crop is a view of the whole resized frames: a copy of it alone crosses to the model's process
        # (64 frames: 9.6 MB instead of the 16.8 MB of 128x171 frames), the same values.
        item["frames"] = stacked if self.raw else preprocess_frames(stacked, self.prep).contiguous()
        return item


def _layout(frame: np.ndarray | PlanarFrame | torch.Tensor) -> tuple:
    """What frames must share to be stacked into one item."""
    return ("planar", *frame.layout) if isinstance(frame, PlanarFrame) else ("rgb", *frame.shape)


class NvdecSessions:
    """NVDEC decoder sessions in threads of the model's process, beside (or instead of) the decode workers.

    Each session takes the next unit from the same counter as the workers of ``stream`` and decodes it on
    the GPU (:mod:`tspvideo.video.nvdec`): its items hold frames already on the GPU. A video NVDEC cannot
    decode exactly is decoded with PyAV in the same thread, and listed in ``fallbacks`` (path -> reason);
    one that fails after some of its frames were sent fails (it is not mixed from two decoders).
    :meth:`items` merges these with the workers' items from ``loader`` in arrival order.
    """

    def __init__(self, stream: FrameStream, sessions: int, device: torch.device) -> None:
        if sessions < 1:
            raise TspVideoError(f"NVDEC sessions must be 1 or more, got {sessions}")
        self.stream = stream
        self.sessions = sessions
        self.device = device
        self.fallbacks: dict[str, str] = {}
        self.clock = SamplingClock(stream.settings.fps, stream.settings.sampling)
        self.gpu = device.index if device.index is not None else (
            torch.cuda.current_device() if device.type == "cuda" else 0)

    def _decode(self, video: Path, start: int, end: int | None) -> Iterator:
        return iter_nvdec_frames(video, self.clock, start, end, gpu_id=self.gpu)

    def unit_items(self, unit: int) -> Iterator[dict]:
        """One unit's items: from NVDEC, or from PyAV when NVDEC cannot decode the video."""
        sent = False
        try:
            for item in self.stream._unit_items(unit, 0, decode=self._decode, decoder="nvdec"):
                sent = sent or "frames" in item
                yield item
        except NvdecUnsupported as error:
            video = self.stream.videos[self.stream.units[unit].video]
            if sent:
                yield {"unit": unit, "end": True, "decoder": "nvdec", "num_frames": 0, "short": None,
                       "error": f"{error} after some frames were used (decode it with --backend pyav)"}
                return
            self.fallbacks[str(video)] = str(error)
            log.warning("decoding with PyAV instead of NVDEC: %s", error)
            yield from self.stream._unit_items(unit, threads=2, decoder="pyav")

    def items(self, loader: Iterator[dict] | None) -> Iterator[dict]:
        """Items of the NVDEC sessions and of ``loader`` (an iterator over the decode workers' items, made before
        this starts threads, since making it forks the workers; None: NVDEC alone), as they come."""
        ready: queue.Queue = queue.Queue(maxsize=4 * (self.sessions + 1))
        stop = threading.Event()
        done = object()

        def put(item) -> bool:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce(source: Callable[[], Iterable[dict]]) -> None:
            try:
                if self.device.type == "cuda":
                    torch.cuda.set_device(self.gpu)
                for item in source():
                    if not put(item):
                        return
                put(done)
            except BaseException as error:  # re-raised in the consuming thread
                put(error)

        def sessions_units() -> Iterator[dict]:
            while (unit := self.stream.take_unit()) is not None:
                yield from self.unit_items(unit)

        sources = [sessions_units] * self.sessions + ([lambda: loader] if loader is not None else [])
        threads = [threading.Thread(target=produce, args=(source,), daemon=True) for source in sources]
        for thread in threads:
            thread.start()
        running = len(threads)
        try:
            while running:
                item = ready.get()
                if item is done:
                    running -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=5)
            # Decoders caught in reference cycles must go now: freed later in a forked DataLoader worker (a
            # later extraction in this process), their GPU or FFmpeg state would crash it.
            gc.collect()


@dataclass
class _ReadyClips:
    """Clips of one unit that are complete but not yet batched: where they start in a frame tensor."""

    unit: int
    clip_ids: np.ndarray  # clip index of each
    positions: torch.Tensor  # position of each clip's first frame in ``frames``
    frames: torch.Tensor  # [n, 3, h, w] on the device (shared with the unit's buffer, not copied)


class ClipAssembler:
    """Model side: cuts each unit's clips out of its frames and groups clips into batches.

    Frames live on ``device`` until no coming clip of their unit needs them, so a unit holds at most
    ``clip_len`` frames beyond the item being cut. Clips are only materialised one batch at a time (at
    stride 1 one item of 64 frames completes 64 clips). Batches mix units and videos; each clip is
    tagged ``(unit, clip index)``. ``memory_format`` is the clips' layout (``torch.channels_last_3d`` or not).
    With ``prep``, frames arrive raw (uint8 ``[n, H, W, 3]``) and are preprocessed on ``device`` by the
    same function the workers use otherwise.
    """

    def __init__(self, units: Sequence[WorkUnit], settings: ClipGrid, batch_size: int,
                 device: torch.device, memory_format: torch.memory_format = torch.contiguous_format,
                 prep: Preprocessing | None = None) -> None:
        self.units = list(units)
        self.settings = settings
        self.batch_size = batch_size
        self.device = device
        self.memory_format = memory_format
        self.prep = prep
        self._frames: dict[int, torch.Tensor] = {}
        self._indices: dict[int, np.ndarray] = {}
        self._next_clip = {u: unit.first_clip for u, unit in enumerate(self.units)}
        self._ready: list[_ReadyClips] = []
        self._ready_count = 0
        self._offsets = torch.arange(settings.clip_len, device=device)

    def add(self, unit: int, indices: torch.Tensor, frames: torch.Tensor, planar: torch.Tensor | None = None) -> None:
        """Take a unit's next frames; the clips they complete become ready for a batch.

        ``planar``: the frames are packed 4:2:0 planes of this ``(height, width, full_range)`` layout,
        converted to RGB here first.
        """
        frames = frames.to(self.device, non_blocking=True)  # from pinned memory on CUDA: an async copy
        if planar is not None:
            height, width, full_range = (int(v) for v in planar)
            frames = planes_to_rgb(frames, height, width, bool(full_range))
        if self.prep is not None:
            frames = preprocess_frames(frames, self.prep)
        if unit in self._frames:
            frames = torch.cat([self._frames[unit], frames])
            indices = np.concatenate([self._indices[unit], indices.numpy()])
        else:
            indices = indices.numpy()
        clip_len, stride = self.settings.clip_len, self.settings.stride
        first = self._next_clip[unit]
        end_clip = self.units[unit].end_clip
        # Clips whose last frame has arrived (frames arrive in order, so all of theirs have too).
        ready = (int(indices[-1]) - clip_len + 1) // stride + 1 - first if len(indices) else 0
        if end_clip is not None:
            ready = min(ready, end_clip - first)
        if ready > 0:
            starts = np.arange(first, first + ready) * stride
            positions = torch.from_numpy(np.searchsorted(indices, starts)).to(self.device)
            self._ready.append(_ReadyClips(unit, np.arange(first, first + ready), positions, frames))
            self._ready_count += ready
            self._next_clip[unit] = first + ready
        drop = int(np.searchsorted(indices, self.settings.first_frame(self._next_clip[unit])))
        self._frames[unit] = frames[drop:]
        self._indices[unit] = indices[drop:]

    def made(self, unit: int) -> int:
        """How many clips of ``unit`` have been cut so far."""
        return self._next_clip[unit] - self.units[unit].first_clip

    def finish(self, unit: int) -> None:
        """Forget a unit's leftover frames (after its end record)."""
        self._frames.pop(unit, None)
        self._indices.pop(unit, None)

    def batches(self, flush: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray, torch.Tensor]]:
        """Full batches ``(units, clip indices, clips [B, 3, L, h, w])``; with ``flush``, the rest too."""
        while self._ready_count >= self.batch_size or (flush and self._ready_count):
            units, clip_ids, parts = [], [], []
            wanted = min(self.batch_size, self._ready_count)
            while wanted:
                head = self._ready[0]
                take = min(wanted, len(head.clip_ids))
                units.append(np.full(take, head.unit))
                clip_ids.append(head.clip_ids[:take])
                parts.append(head.frames[head.positions[:take, None] + self._offsets])  # [take, L, 3, h, w]
                if take == len(head.clip_ids):
                    self._ready.pop(0)
                else:
                    self._ready[0] = _ReadyClips(head.unit, head.clip_ids[take:], head.positions[take:], head.frames)
                wanted -= take
                self._ready_count -= take
            clips = torch.cat(parts) if len(parts) > 1 else parts[0]
            # [B, L, 3, h, w] -> [B, 3, L, h, w], laid out as the model wants it (the layout changes the
            # order of float sums inside the model, so the reference layout keeps features bit-exact).
            clips = clips.permute(0, 2, 1, 3, 4).contiguous(memory_format=self.memory_format)
            yield np.concatenate(units), np.concatenate(clip_ids), clips


class VideoProgress:
    """Collects each video's features from its units and says when a video is complete.

    A video is complete once all its units have sent their end record and every clip cut from their
    frames has been through the model; it is then either its :class:`StreamedFeatures`, in clip
    order, or an error message naming the file.
    """

    def __init__(self, videos: Sequence[Path], units: Sequence[WorkUnit], settings: ClipGrid,
                 assembler: ClipAssembler) -> None:
        self.videos = list(videos)
        self.units = list(units)
        self.settings = settings
        self.assembler = assembler
        self.units_of: list[list[int]] = [[] for _ in self.videos]  # unit ids of each video
        for u, unit in enumerate(self.units):
            self.units_of[unit.video].append(u)
        self.units_left = [len(ids) for ids in self.units_of]
        self.num_frames = [0] * len(self.videos)
        self.errors: dict[int, str] = {}
        self.short: dict[int, tuple[float, float]] = {}
        self.pieces: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.received = [0] * len(self.videos)
        self.ended: list[int] = []
        self.decoders: dict[int, set[str]] = {}

    def add_features(self, unit_ids: np.ndarray, clip_ids: np.ndarray, features: np.ndarray) -> None:
        video_ids = np.array([self.units[u].video for u in unit_ids])
        for video in np.unique(video_ids):
            mine = video_ids == video
            self.pieces.setdefault(int(video), []).append((clip_ids[mine], features[mine]))
            self.received[video] += int(mine.sum())

    def end_unit(self, unit: int, num_frames: int, error: str | None,
                 short: tuple[float, float] | None = None, decoder: str | None = None) -> None:
        video = self.units[unit].video
        if decoder is not None:
            self.decoders.setdefault(video, set()).add(decoder)
        self.units_left[video] -= 1
        self.num_frames[video] = max(self.num_frames[video], num_frames)
        if error is not None:
            self.errors.setdefault(video, error)
        if short is not None:
            self.short[video] = (float(short[0]), float(short[1]))
        if self.units_left[video] == 0:
            self.ended.append(video)

    def pop_finished(self) -> Iterator[tuple[int, FeatureOutcome]]:
        """Videos that just completed, each with its features or its error."""
        still = []
        for video in self.ended:
            made = sum(self.assembler.made(u) for u in self.units_of[video])
            if video not in self.errors and self.received[video] < made:
                still.append(video)  # some of its clips are still waiting for a batch
                continue
            yield video, self._outcome(video, made)
            self.pieces.pop(video, None)
        self.ended = still

    def _outcome(self, video: int, made: int) -> FeatureOutcome:
        path, num_frames = self.videos[video], self.num_frames[video]
        if video in self.errors:
            return self.errors[video]
        mine = [self.units[u] for u in self.units_of[video]]
        first = min(unit.first_clip for unit in mine)
        end = num_clips(num_frames, self.settings.clip_len, self.settings.stride)
        if all(unit.end_clip is not None for unit in mine):  # a window of clips, not the whole video
            end = min(end, max(unit.end_clip for unit in mine))
        if end <= first:
            what = "too short" if first == 0 else f"no clip from clip {first} on"
            return (f"{path}: {what}: {num_frames} frames at {self.settings.fps:g} fps, clips of "
                    f"{self.settings.clip_len} every {self.settings.stride}")
        pieces = self.pieces.get(video, [])
        clip_ids = np.concatenate([p[0] for p in pieces]) if pieces else np.zeros(0, dtype=int)
        if made != end - first or not np.array_equal(np.sort(clip_ids), np.arange(first, end)):
            return f"{path}: internal error: {len(clip_ids)} clips, expected {end - first}"
        features = np.concatenate([p[1] for p in pieces])
        decoders = self.decoders.get(video)
        return StreamedFeatures(features[np.argsort(clip_ids, kind="stable")], num_frames, self.short.get(video),
                             "+".join(sorted(decoders)) if decoders else None)
