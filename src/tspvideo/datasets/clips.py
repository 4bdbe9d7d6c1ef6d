"""Training and evaluation clips drawn from a segment table, and the sampler that balances them.

Each kept segment gives ``clips_per_segment`` items; item ``i`` is clip ``i % clips_per_segment`` of
segment ``i // clips_per_segment``. A clip of ``L`` frames on the ``fps`` grid starting at sampled frame
``j0`` covers ``[j0 / fps, (j0 + L) / fps]`` seconds; it lies inside its segment when
``ceil(t_start * fps) <= j0`` and ``j0 + L <= floor(t_end * fps)``. Training draws ``j0`` uniformly in
that range for every item (temporal jitter), evaluation takes ``clips_per_segment`` evenly spaced starts.
Segments with no valid start are dropped and counted.

Randomness never comes from a global generator. Each training sample gets its own
``torch.Generator`` seeded from ``(seed, epoch, position)`` where ``position`` is the sample's place
in the epoch's global order (see :class:`BalancedSampler`). Draws therefore differ between epochs,
between ranks and between DataLoader workers (they serve different positions), yet they depend
neither on the number of workers nor on the number of processes, and resuming at an epoch boundary
replays exactly the same clips.
"""

from __future__ import annotations

import logging
import math
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from tspvideo.core.errors import TspVideoError, VideoDecodeError
from tspvideo.core.grid import DEFAULT_CLIP_LEN, DEFAULT_FPS
from tspvideo.datasets.segments import REGION_LABELS, Segment
from tspvideo.datasets.transforms import PREPROCESSING, Preprocessing, crop_params, preprocess_clip
from tspvideo.features.gvf import GvfReader
from tspvideo.video.decode import DEFAULT_SAMPLING, SAMPLING_RULES, num_sampled_frames, read_frames
from tspvideo.video.frame_cache import MEGABYTE, SampledFrameCache

log = logging.getLogger(__name__)

_EPS = 1e-6  # times in CSVs are decimal floats: 2.4 * 15 is 35.99999...; do not lose a frame to that
MAX_REPLACEMENTS = 20  # undecodable clips replaced in a row before giving up on a sample
PREPROCESS_ON = ("workers", "device")


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers, well mixed (``SeedSequence``) so nearby tuples give unrelated seeds."""
    words = np.random.SeedSequence([int(p) & 0xFFFFFFFFFFFFFFFF for p in parts]).generate_state(2, dtype=np.uint32)
    return ((int(words[0]) << 32) | int(words[1])) & ((1 << 63) - 1)


def clip_start_range(segment: Segment, clip_len: int, fps: float,
                     sampling: str = DEFAULT_SAMPLING) -> tuple[int, int] | None:
    """First and last start frame (inclusive) of a clip inside ``segment``, or None if none fits.

    The end is also bounded by the video's length on the ``fps`` grid (its number of sampled frames
    under ``sampling``) when the table knows it.
    """
    first = math.ceil(segment.t_start * fps - _EPS)
    end = math.floor(segment.t_end * fps + _EPS)
    if segment.video_duration > 0:
        end = min(end, num_sampled_frames(segment.video_duration, fps, sampling))
    last = end - clip_len
    return (first, last) if last >= first else None


def evenly_spaced(first: int, last: int, count: int) -> list[int]:
    """``count`` integer starts spread evenly over ``[first, last]`` (both ends included)."""
    if count == 1:
        return [(first + last) // 2]
    return [int(round(x)) for x in np.linspace(first, last, count)]


@dataclass(frozen=True)
class ClipSpec:
    """The clip grid of training: ``clip_len`` frames at ``fps``, ``clips_per_segment`` per segment, the source
    frames chosen by the ``sampling`` rule (see :mod:`tspvideo.video.decode`)."""

    clip_len: int = DEFAULT_CLIP_LEN
    fps: float = DEFAULT_FPS
    clips_per_segment: int = 5
    sampling: str = DEFAULT_SAMPLING


class SegmentClipDataset(Dataset):
    """Clips of the segments of a segment table, with their action / region labels and the video's GVF.

    Items are dicts: ``clip`` float ``[3, L, h, w]``, ``action`` (class id, ``-1`` for background),
    ``region`` (index in ``["Action", "No action"]``), ``gvf`` float ``[C]`` when a GVF file is given,
    ``replaced``: how many undecodable clips were replaced to produce this one, and ``index`` / ``start``:
    the item actually returned and its first frame on the ``fps`` grid.

    ``foreground_only`` keeps action segments alone (TAC). ``label_map`` is needed when any action
    label is used; an action label missing from it is an error.

    ``preprocess_on="device"`` leaves the preprocessing to the model's device: ``clip`` is then the uint8
    ``[L, H, W, 3]`` clip as decoded and ``crop`` the long ``(top, left, flip)`` of its crop box, drawn as
    the worker path draws it; batch such items with
    :func:`tspvideo.datasets.batch_transforms.collate_raw_clips` and finish them with ``preprocess_batch``.
    """

    def __init__(self, segments: Sequence[Segment], video_dir: str | os.PathLike, *, train: bool,
                 label_map: Sequence[str] | None = None, spec: ClipSpec = ClipSpec(),
                 prep: Preprocessing = PREPROCESSING["tsp"], gvf_path: str | os.PathLike | None = None,
                 foreground_only: bool = False, seed: int = 0, decode_threads: int = 1,
                 source: str = "segment table", preprocess_on: str = "workers", frame_cache_mb: int = 0,
                 frame_cache_dir: str | os.PathLike | None = None) -> None:
        if spec.clip_len <= 0 or spec.clips_per_segment <= 0 or spec.fps <= 0:
            raise TspVideoError(f"clip length, clips per segment and fps must be positive, got {spec}")
        if spec.sampling not in SAMPLING_RULES:
            raise TspVideoError(f"unknown sampling rule {spec.sampling!r} (choose from {', '.join(SAMPLING_RULES)})")
        if preprocess_on not in PREPROCESS_ON:
            raise TspVideoError(f"preprocess_on must be one of {', '.join(PREPROCESS_ON)}, got {preprocess_on!r}")
        self.preprocess_on = preprocess_on
        self.video_dir = Path(video_dir)
        self.train = train
        self.spec = spec
        self.prep = prep
        self.seed = seed
        self.epoch = 0
        self.decode_threads = decode_threads
        if frame_cache_mb < 0:
            raise TspVideoError(f"frame_cache_mb must be 0 (no cache) or positive, got {frame_cache_mb}")
        self.frame_cache_mb = frame_cache_mb
        self.frame_cache_dir = Path(frame_cache_dir) if frame_cache_dir is not None else None
        self._frame_cache: SampledFrameCache | None = None  # made in each worker on first use
        self.class_index = {name: i for i, name in enumerate(label_map)} if label_map is not None else None

        kept, ranges = [], []
        self.dropped = {"too_short": 0, "background": 0}
        zero_length = 0
        for segment in segments:
            if foreground_only and not segment.is_action:
                self.dropped["background"] += 1
                continue
            span = clip_start_range(segment, spec.clip_len, spec.fps, spec.sampling)
            if span is None:
                self.dropped["too_short"] += 1
                zero_length += segment.t_end == segment.t_start
                continue
            kept.append(segment)
            ranges.append(span)
        if not kept:
            raise TspVideoError(f"{source}: no segment is long enough for one clip of {spec.clip_len} frames at "
                                f"{spec.fps:g} fps ({len(segments)} segments, {self.dropped['too_short']} too short)")
        if self.dropped["too_short"]:
            # One warning for all of them: the original's published tables have such rows (zero-length
            # instances, segments past the video's end), which its code skips silently.
            log.warning("%s: dropped %d of %d segment(s) too short for one clip of %d frames at %g fps "
                        "(%d of zero length)", source, self.dropped["too_short"], len(segments), spec.clip_len,
                        spec.fps, zero_length)
        self.segments = kept
        self.ranges = ranges
        if self.class_index is not None:
            unknown = sorted({s.action_label for s in kept if s.is_action and s.action_label not in self.class_index})
            if unknown:
                raise TspVideoError(f"{source}: action label(s) not in the label map: {', '.join(unknown[:5])}"
                                    + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""))
        self.is_action = np.array([s.is_action for s in kept], dtype=bool)
        cps = spec.clips_per_segment
        item_is_action = np.repeat(self.is_action, cps)
        self.foreground_items = np.flatnonzero(item_is_action)
        self.background_items = np.flatnonzero(~item_is_action)

        self.gvf_path = Path(gvf_path) if gvf_path is not None else None
        self.gvf = GvfReader(self.gvf_path) if self.gvf_path is not None else None
        self._bad_videos: set[str] = set()
        if self.gvf is not None:
            self.gvf_dim = self.gvf.check([self.gvf_key(s) for s in self.segments], source)

    # -- GVF ---------------------------------------------------------------------------------------

    @staticmethod
    def gvf_key(segment: Segment) -> str:
        """GVF files are keyed by the video's file name without extension."""
        return Path(segment.filename).stem

    def _gvf(self, segment: Segment) -> torch.Tensor:
        return torch.from_numpy(self.gvf[self.gvf_key(segment)])

    # -- frames ------------------------------------------------------------------------------------

    def _read_frames(self, path: Path, start: int) -> np.ndarray:
        if not self.frame_cache_mb and self.frame_cache_dir is None:
            return read_frames(path, start, self.spec.clip_len, fps=self.spec.fps, threads=self.decode_threads,
                               sampling=self.spec.sampling)
        if self._frame_cache is None:
            self._frame_cache = SampledFrameCache(self.frame_cache_mb * MEGABYTE, self.spec.fps, self.spec.sampling,
                                                  self.decode_threads, directory=self.frame_cache_dir)
        return self._frame_cache.read(path, start, self.spec.clip_len)

    def __getstate__(self) -> dict:
        # Each loader worker starts with an empty cache of its own, not a copy of this process's frames.
        state = self.__dict__.copy()
        state["_frame_cache"] = None
        return state

    # -- items -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.segments) * self.spec.clips_per_segment

    def set_epoch(self, epoch: int) -> None:
        """Epoch used for items indexed by a plain int (without :class:`BalancedSampler`)."""
        self.epoch = epoch

    def num_clips(self) -> dict[str, int]:
        """Foreground and background clips of one pass over the dataset."""
        return {"foreground": len(self.foreground_items), "background": len(self.background_items)}

    def clip_start(self, index: int, generator: torch.Generator | None) -> int:
        """Start frame of item ``index``: uniform in its segment's range, or evenly spaced without a generator."""
        first, last = self.ranges[index // self.spec.clips_per_segment]
        if generator is None:
            return evenly_spaced(first, last, self.spec.clips_per_segment)[index % self.spec.clips_per_segment]
        return first + int(torch.randint(0, last - first + 1, (1,), generator=generator))

    def _labels(self, segment: Segment) -> tuple[int, int]:
        action = -1
        if segment.is_action and self.class_index is not None:
            action = self.class_index[segment.action_label]
        return action, REGION_LABELS.index(segment.region_label)

    def _replacement(self, index: int, generator: torch.Generator) -> int:
        """Another item of the same kind (foreground / background), avoiding videos known to be bad."""
        pool = self.foreground_items if self.is_action[index // self.spec.clips_per_segment] else self.background_items
        for _ in range(64):
            candidate = int(pool[int(torch.randint(0, len(pool), (1,), generator=generator))])
            if self.segments[candidate // self.spec.clips_per_segment].filename not in self._bad_videos:
                return candidate
        return candidate

    def __getitem__(self, key: int | tuple[int, int, int]) -> dict[str, torch.Tensor | int]:
        """Item by index, or by ``(index, epoch, position)`` as :class:`BalancedSampler` yields them."""
        if isinstance(key, (tuple, list)):
            index, epoch, position = (int(k) for k in key)
        else:
            index, epoch, position = int(key), self.epoch, int(key)
        # Evaluation is deterministic; its generator only picks replacements for undecodable clips.
        generator = torch.Generator().manual_seed(derive_seed(self.seed, epoch if self.train else -1, position))
        replaced = 0
        while True:
            segment = self.segments[index // self.spec.clips_per_segment]
            start = self.clip_start(index, generator if self.train else None)
            path = self.video_dir / segment.filename
            try:
                frames = self._read_frames(path, start)
                break
            except VideoDecodeError as error:
                if segment.filename not in self._bad_videos:
                    log.warning("replacing undecodable clip: %s", error)
                self._bad_videos.add(segment.filename)
                replaced += 1
                if replaced > MAX_REPLACEMENTS:
                    raise TspVideoError(f"{replaced} clips in a row could not be decoded (last: {error}); "
                                        "check the videos in --video-dir") from error
                index = self._replacement(index, generator)
        clip = torch.from_numpy(frames)
        action, region = self._labels(segment)
        item = {"action": action, "region": region, "replaced": replaced, "index": index, "start": start}
        if self.preprocess_on == "device":
            item["clip"] = clip
            item["crop"] = torch.tensor(crop_params(clip.shape[1], clip.shape[2], self.prep, self.train,
                                                    generator if self.train else None), dtype=torch.long)
        else:
            item["clip"] = preprocess_clip(clip, self.prep, train=self.train,
                                           generator=generator if self.train else None)
        if self.gvf_path is not None:
            item["gvf"] = self._gvf(segment)
        return item


class BalancedSampler(Sampler):
    """This rank's share of an epoch in which foreground and background clips are equally many.

    Rule, per epoch: all items of the smaller kind, plus as many items of the larger kind drawn
    without replacement (a new draw every epoch, so across epochs the larger kind is covered too),
    shuffled together. With one kind only (TAC, or ``balance=False``) every item is used.
    The epoch's global order is the same on every rank; rank ``r`` takes positions ``r, r + W, ...``
    after padding to a multiple of ``W`` by wrapping around. One process with batch ``W * b`` thus
    sees, step for step, the same clips as ``W`` processes with batch ``b``.

    Yields ``(index, epoch, position)`` keys that :class:`SegmentClipDataset` turns into samples.
    """

    def __init__(self, dataset: SegmentClipDataset, num_replicas: int = 1, rank: int = 0, seed: int = 0,
                 shuffle: bool = True, balance: bool = True) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside 0..{num_replicas - 1}")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.seed = seed
        self.shuffle = shuffle
        self.balance = balance
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch (its draw and shuffle); call before each epoch, as with DistributedSampler."""
        self.epoch = epoch

    def epoch_items(self, epoch: int) -> np.ndarray:
        """The epoch's global order of item indices (before padding and splitting by rank)."""
        generator = torch.Generator().manual_seed(derive_seed(self.seed, epoch, 0x5A4D))
        fg, bg = self.dataset.foreground_items, self.dataset.background_items
        if self.balance and len(fg) and len(bg):
            count = min(len(fg), len(bg))
            fg = fg[torch.randperm(len(fg), generator=generator)[:count].numpy()]
            bg = bg[torch.randperm(len(bg), generator=generator)[:count].numpy()]
        items = np.concatenate([fg, bg])
        if self.shuffle:
            items = items[torch.randperm(len(items), generator=generator).numpy()]
        else:
            items = np.sort(items)
        return items

    def epoch_size(self) -> int:
        """Items in one epoch over all ranks, before padding."""
        fg, bg = len(self.dataset.foreground_items), len(self.dataset.background_items)
        return 2 * min(fg, bg) if self.balance and fg and bg else fg + bg

    def __len__(self) -> int:
        return math.ceil(self.epoch_size() / self.num_replicas)

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        items = self.epoch_items(self.epoch)
        total = len(self) * self.num_replicas
        positions = range(self.rank, total, self.num_replicas)
        for position in positions:
            yield int(items[position % len(items)]), self.epoch, position


class ShardSampler(Sampler):
    """Evaluation: every item once, in order, rank ``r`` taking items ``r, r + W, ...`` (no padding,
    so accuracies summed over ranks count each clip exactly once)."""

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0) -> None:
        self.size = len(dataset)
        self.num_replicas = num_replicas
        self.rank = rank

    def __len__(self) -> int:
        return len(range(self.rank, self.size, self.num_replicas))

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.size, self.num_replicas))


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: give each worker its own python/numpy/torch global seeds.

    Our samples do not use global generators, but user transforms or libraries might; without this,
    forked workers would share numpy's state (the original implementation's bug).
    """
    info = torch.utils.data.get_worker_info()
    base = info.seed if info is not None else worker_id  # torch derives it from the main RNG, per epoch
    seed = derive_seed(base, worker_id)
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)
