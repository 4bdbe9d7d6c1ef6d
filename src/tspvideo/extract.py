"""Feature extraction: one ``[T, C]`` float32 ``.npy`` (+ JSON sidecar) per video.

Videos are decoded once each (streamed, sliding window) in DataLoader workers while the model runs in
the main process, so decoding overlaps compute and memory stays bounded. Outputs are written
atomically; videos whose outputs exist are skipped, so an interrupted run resumes where it stopped.
A video that fails is listed in the failures file with its error and the others go on.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import io
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from tqdm import tqdm

from tspvideo import __version__
from tspvideo.data.clips import clip_centers, iter_clips, num_clips
from tspvideo.data.transforms import PREPROCESSING, Preprocessing, preprocess_frames
from tspvideo.data.video import is_video_file, iter_sampled_frames
from tspvideo.errors import TspVideoError
from tspvideo.fileio import atomic_path, save_json_atomic, save_npy_atomic, write_error
from tspvideo.models.tsp import TSPModel


@dataclass(frozen=True)
class ClipSettings:
    """The time grid of the features: clips of ``clip_len`` frames at ``fps``, every ``stride`` frames."""

    clip_len: int = 16
    fps: float = 15.0
    stride: int = 16

    def __post_init__(self) -> None:
        if self.clip_len <= 0:
            raise TspVideoError(f"clip length must be positive, got {self.clip_len}")
        if self.stride <= 0:
            raise TspVideoError(f"stride must be positive, got {self.stride}")
        if self.fps <= 0:
            raise TspVideoError(f"fps must be positive, got {self.fps}")


@dataclass
class ExtractionReport:
    """What a run did: written, skipped (already done) and failed videos (path -> error)."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    clips: int = 0
    seconds: float = 0.0


def find_videos(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Expand files, folders (recursively, by video extension) and ``.txt`` lists into video paths.

    Two videos with the same stem would write the same feature file, so that is an error, raised
    before any work starts.
    """
    videos: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            videos += sorted(p for p in path.rglob("*") if is_video_file(p))
        elif path.suffix.lower() in (".txt", ".lst"):
            if not path.is_file():
                raise TspVideoError(f"video list not found: {path}")
            base = path.parent
            for line in path.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    videos.append(Path(line) if Path(line).is_absolute() else base / line)
        else:
            videos.append(path)  # missing files are reported per video, not fatal for the run
    by_stem: dict[str, Path] = {}
    for video in videos:
        if video.stem in by_stem and by_stem[video.stem] != video:
            raise TspVideoError(f"two inputs share the name {video.stem!r} ({by_stem[video.stem]} and {video}); "
                                "their features would overwrite each other: rename one or extract them separately")
        by_stem[video.stem] = video
    if not videos:
        raise TspVideoError(f"no videos found in {', '.join(map(str, inputs))}")
    return list(by_stem.values())


def check_writable(out_dir: Path) -> None:
    """Create ``out_dir`` and write a scratch file in it, so an unwritable folder fails before any decoding."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".tspvideo-write-test.", suffix=".tmp", dir=out_dir)
        os.close(fd)
        os.unlink(name)
    except OSError as error:
        raise write_error(out_dir, error) from error


def _header_duration(path: Path) -> float | None:
    """The video stream's duration from the file's header (no decoding), or None when it gives none.

    Raises (any exception) when the file cannot be opened or has no video stream.
    """
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        return container.duration / 1_000_000 if container.duration else None


def check_clip_fits(videos: Sequence[Path], settings: ClipSettings) -> None:
    """Raise before any work when one clip is longer than every video (by header durations).

    Stops at the first video long enough, so this costs one header read in the usual case. Unreadable
    videos are left out (each fails on its own later); a header without a duration ends the check.
    """
    clip_seconds = settings.clip_len / settings.fps
    known: list[tuple[float, Path]] = []
    for video in videos:
        try:
            duration = _header_duration(video)
        except Exception:  # unreadable: reported with its cause during extraction
            continue
        if duration is None:
            return
        if duration * settings.fps + 1e-6 >= settings.clip_len:
            return
        known.append((duration, video))
    if known:
        longest, name = max(known)
        raise TspVideoError(f"a clip of {settings.clip_len} frames at {settings.fps:g} fps ({clip_seconds:.2f} s) is "
                            f"longer than every one of the {len(known)} video(s) (longest: {name}, {longest:.2f} s); "
                            "lower --clip-len")


def shard(videos: Sequence[Path], shard_id: int, num_shards: int) -> list[Path]:
    """This shard's share of the videos: every ``num_shards``-th in a fixed order."""
    if not 0 <= shard_id < num_shards:
        raise TspVideoError(f"shard id {shard_id} is outside 0..{num_shards - 1}")
    return sorted(videos, key=lambda p: p.stem)[shard_id::num_shards]


def feature_paths(out_dir: Path, video: Path) -> tuple[Path, Path]:
    """The ``.npy`` and sidecar ``.json`` written for a video."""
    return out_dir / f"{video.stem}.npy", out_dir / f"{video.stem}.json"


def is_done(out_dir: Path, video: Path) -> bool:
    """Whether both outputs of a video exist (they are written atomically, features first)."""
    npy, sidecar = feature_paths(out_dir, video)
    return npy.is_file() and sidecar.is_file()


class VideoClipStream(IterableDataset):
    """Yields, per video, batches of preprocessed clips and then one end-of-video record.

    Items are dicts: ``{"video": i, "clips": [B, 3, L, h, w]}`` for each batch, then
    ``{"video": i, "end": True, "num_frames": N, "error": None | str}``. With DataLoader workers, each
    worker takes every k-th video, so whole videos stream from one worker.
    """

    def __init__(self, videos: Sequence[Path], settings: ClipSettings, batch_size: int,
                 prep: Preprocessing = PREPROCESSING["tsp"], backend: str = "pyav", decode_threads: int = 0,
                 decoder_resize: bool = False) -> None:
        self.videos = list(videos)
        self.settings = settings
        self.batch_size = batch_size
        self.prep = prep
        self.backend = backend
        self.decode_threads = decode_threads
        # Resizing inside the decoder (swscale) skips a full-size RGB conversion: faster, not bit-exact.
        self.decoder_size = prep.resize if decoder_resize else None

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for index in range(worker, len(self.videos), workers):
            yield from self._video_items(index)

    def _video_items(self, index: int) -> Iterator[dict]:
        video = self.videos[index]
        counter = {"frames": 0}

        def counted(frames):
            for item in frames:
                counter["frames"] = item[0] + 1
                yield item

        batch: list[torch.Tensor] = []
        try:
            frames = counted(iter_sampled_frames(video, self.settings.fps, backend=self.backend,
                                                 threads=self.decode_threads, size=self.decoder_size))
            for clip in iter_clips(frames, self.settings.clip_len, self.settings.stride,
                                   lambda x: preprocess_frames(x, self.prep)):
                batch.append(clip)
                if len(batch) == self.batch_size:
                    yield {"video": index, "clips": torch.stack(batch)}
                    batch = []
            if batch:
                yield {"video": index, "clips": torch.stack(batch)}
        except Exception as error:  # one bad video must not stop the others; the error names it
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            if str(video) not in message:
                message = f"{video}: {type(error).__name__}: {message}"
            yield {"video": index, "end": True, "num_frames": counter["frames"], "error": message}
            return
        yield {"video": index, "end": True, "num_frames": counter["frames"], "error": None}


def write_failures(path: Path, failed: dict[str, str]) -> None:
    """Write (or remove, when empty) the failures CSV: ``video,error`` per failed video."""
    if not failed:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["video", "error"])
    for video, error in sorted(failed.items()):
        writer.writerow([video, error])
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")


def failures_path(out_dir: Path, shard_id: int = 0, num_shards: int = 1) -> Path:
    """Name of the failures file: ``failures.csv``, or ``failures.shard-K-of-N.csv`` when sharded."""
    return out_dir / ("failures.csv" if num_shards == 1 else f"failures.shard-{shard_id}-of-{num_shards}.csv")


def _autocast(device: torch.device, amp: str | None):
    if amp is None:
        return contextlib.nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return torch.autocast(device_type=device.type, dtype=dtype)


def extract_dataset(videos: Sequence[Path], out_dir: str | os.PathLike, model: torch.nn.Module,
                    model_description: dict, settings: ClipSettings = ClipSettings(), *,
                    batch_size: int = 32, device: str = "cpu", num_workers: int = 0,
                    shard_id: int = 0, num_shards: int = 1, amp: str | None = None,
                    channels_last: bool = False, backend: str = "pyav", decode_threads: int = 0,
                    decoder_resize: bool = False,
                    prep: Preprocessing = PREPROCESSING["tsp"], progress: bool = True,
                    overwrite: bool = False) -> ExtractionReport:
    """Extract features of this shard's videos into ``out_dir`` and return what happened.

    ``model`` is a :class:`TSPModel` (its backbone gives the features; heads are not run) or any module
    mapping a batch ``[B, 3, L, h, w]`` to ``[B, C]``. ``model_description`` goes into each sidecar (model, weights...).
    """
    out_dir = Path(out_dir)
    check_writable(out_dir)
    report = ExtractionReport()
    mine = shard(videos, shard_id, num_shards)
    todo = []
    for video in mine:
        if not overwrite and is_done(out_dir, video):
            report.skipped.append(str(video))
        else:
            todo.append(video)
    torch_device = torch.device(device)
    model = (model.features if isinstance(model, TSPModel) else model).to(torch_device).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    model_description = {**model_description, "decoder_resize": decoder_resize}
    stream = VideoClipStream(todo, settings, batch_size, prep, backend, decode_threads, decoder_resize)
    loader = DataLoader(stream, batch_size=None, num_workers=num_workers,
                        pin_memory=torch_device.type == "cuda", prefetch_factor=4 if num_workers else None)
    partial: dict[int, list[np.ndarray]] = {}
    started = time.perf_counter()
    bar = tqdm(total=len(todo), unit="video", disable=not progress, desc=f"extract {out_dir.name}")
    with torch.inference_mode():
        for item in loader:
            index = item["video"]
            if "clips" in item:
                clips = item["clips"].to(torch_device, non_blocking=True)
                if channels_last:
                    clips = clips.contiguous(memory_format=torch.channels_last_3d)
                with _autocast(torch_device, amp):
                    features = model(clips)
                partial.setdefault(index, []).append(features.float().cpu().numpy())
                report.clips += len(clips)
                bar.set_postfix(clips_per_s=f"{report.clips / (time.perf_counter() - started):.1f}")
                continue
            video = todo[index]
            chunks = partial.pop(index, [])
            error = item["error"]
            if error is None:
                expected = num_clips(int(item["num_frames"]), settings.clip_len, settings.stride)
                if expected == 0:
                    error = (f"{video}: too short: {item['num_frames']} frames at {settings.fps:g} fps, "
                             f"fewer than one clip of {settings.clip_len}")
                elif sum(len(c) for c in chunks) != expected:
                    error = f"{video}: internal error: {sum(len(c) for c in chunks)} clips, expected {expected}"
            if error is not None:
                report.failed[str(video)] = error
                bar.write(f"failed: {error}")
            else:
                _write_video_features(out_dir, video, np.concatenate(chunks), int(item["num_frames"]),
                                      settings, model_description, prep)
                report.written.append(str(video))
            bar.update(1)
    bar.close()
    report.seconds = time.perf_counter() - started
    write_failures(failures_path(out_dir, shard_id, num_shards), report.failed)
    return report


def _write_video_features(out_dir: Path, video: Path, features: np.ndarray, num_frames: int,
                          settings: ClipSettings, model_description: dict, prep: Preprocessing) -> None:
    npy, sidecar = feature_paths(out_dir, video)
    count = len(features)
    save_npy_atomic(npy, features.astype(np.float32, copy=False))
    # The sidecar is written last: its presence marks the video as done.
    save_json_atomic(sidecar, {
        "video": video.name,
        "num_features": count,
        "feature_dim": int(features.shape[1]),
        "clip_len": settings.clip_len,
        "fps": settings.fps,
        "stride": settings.stride,
        "num_frames": num_frames,
        "video_duration": num_frames / settings.fps,
        "feature_times": [round(t, 6) for t in clip_centers(count, settings.clip_len, settings.stride,
                                                              settings.fps)],
        "time_convention": "feature i is the clip of sampled frames [i*stride, i*stride+clip_len) at fps; "
                           "its time is the clip centre (i*stride + clip_len/2)/fps seconds",
        "preprocessing": prep.to_dict(),
        **model_description,
        "tspvideo_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    })


def merge_to_h5(out_dir: str | os.PathLike, stems: Sequence[str], h5_path: str | os.PathLike) -> int:
    """Write the ``.npy`` features of ``stems`` into one HDF5 file (a dataset per stem), atomically.

    Returns the number of videos written; stems without features are left out.
    """
    import h5py

    out_dir = Path(out_dir)
    written = 0
    with atomic_path(h5_path) as tmp, h5py.File(tmp, "w") as h5:
        for stem in sorted(stems):
            npy = out_dir / f"{stem}.npy"
            if npy.is_file():
                h5.create_dataset(stem, data=np.load(npy), compression="gzip")
                written += 1
    return written
