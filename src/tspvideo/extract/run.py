"""Feature extraction: one ``[T, C]`` float32 ``.npy`` (+ JSON sidecar) per video.

Videos are decoded once each (streamed, sliding window) in DataLoader workers while the model runs in
the main process, so decoding overlaps compute and memory stays bounded. Outputs are written
atomically; a video whose sidecar records the same settings and source file is skipped, so an
interrupted run resumes where it stopped (:mod:`tspvideo.extract.provenance`).
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from tspvideo import __version__
from tspvideo.core.devices import preprocess_on_device
from tspvideo.core.errors import TspVideoError, WriteFailure
from tspvideo.core.fileio import (  # noqa: F401  (the write checks lived here first)
    atomic_path,
    check_file_writable,
    check_folder_writable,
    write_error,
)
from tspvideo.core.grid import ClipGrid, clip_centers
from tspvideo.core.precision import autocast
from tspvideo.datasets.transforms import PREPROCESSING, Preprocessing
from tspvideo.extract.options import ExtractOptions, colour_conversion
from tspvideo.extract.progress import ClipProgress
from tspvideo.extract.provenance import (
    check_folder_settings,
    feature_settings,
    iter_sidecars,
    settings_problem,
    source_change,
    source_fingerprint,
)
from tspvideo.extract.streaming import (
    ClipAssembler,
    FeatureOutcome,
    FrameStream,
    NvdecSessions,
    StreamedFeatures,
    VideoProgress,
    WorkUnit,
    header_duration,
    plan_units,
)
from tspvideo.features.folder import feature_paths, write_video_features
from tspvideo.models.encoder import Encoder
from tspvideo.models.tsp import TSPModel
from tspvideo.video.decode import num_sampled_frames
from tspvideo.video.nvdec import nvdec_problem


@dataclass
class ExtractionReport:
    """What a run did: written, skipped (already done) and failed videos (path -> error), and why."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    refreshed: dict[str, str] = field(default_factory=dict)  # re-extracted as the source changed: what changed
    removed: list[str] = field(default_factory=list)  # failed, and their earlier (stale) features were deleted
    short: dict[str, str] = field(default_factory=dict)  # kept although shorter than declared (accept_short)
    clips: int = 0
    seconds: float = 0.0


def check_writable(out_dir: Path) -> None:
    """Create ``out_dir`` and write a scratch file in it, so an unwritable folder fails before any decoding."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".tspvideo-write-test.", suffix=".tmp", dir=out_dir)
        os.close(fd)
        os.unlink(name)
    except OSError as error:
        raise write_error(out_dir, error) from error


def check_clip_fits(videos: Sequence[Path], settings: ClipGrid) -> None:
    """Raise before any work when one clip is longer than every video (by header durations).

    Stops at the first video long enough, so this costs one header read in the usual case. Unreadable
    videos are left out (each fails on its own later); a header without a duration ends the check.
    """
    clip_seconds = settings.clip_len / settings.fps
    known: list[tuple[float, Path]] = []
    for video in videos:
        try:
            duration = header_duration(video)
        except Exception:  # unreadable: reported with its cause during extraction
            continue
        if duration is None:
            return
        if num_sampled_frames(duration, settings.fps, settings.sampling) >= settings.clip_len:
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


def stream_features(videos: Sequence[Path], model: torch.nn.Module, settings: ClipGrid = ClipGrid(), *,
                    units: Sequence[WorkUnit] | None = None, batch_size: int = 32, device: str = "cpu",
                    num_workers: int = 0, amp: str | None = None, channels_last: bool = False,
                    backend: str = "pyav", decode_threads: int = 0, decoder_resize: bool = False,
                    raw_frames: bool | None = None, prep: Preprocessing = PREPROCESSING["tsp"],
                    on_clips: Callable[[int], None] | None = None, accept_short: bool = False,
                    colour: str | None = None, nvdec_sessions: int = 4,
                    video_timeout: float | None = None) -> Iterator[tuple[int, FeatureOutcome]]:
    """Features of ``videos``, in memory, as each video completes (nothing is written).

    Yields ``(index into videos, StreamedFeatures)``, or ``(index, error)`` for a video that failed (a file
    cut short fails unless ``accept_short``). ``units`` restricts the work to ranges of clips (default:
    every clip of every video, split across workers as :func:`plan_units` decides). ``on_clips(n)`` is called after each
    batch of n clips. ``model`` as in :func:`extract_dataset`. ``raw_frames``: workers send uint8 frames
    and the model's device preprocesses them (default: on CUDA devices, see :func:`preprocess_on_device`).
    ``colour``: where YUV frames become RGB, ``decoder`` (swscale, the reference) or ``device`` (see
    :mod:`tspvideo.video.colour`; default: :func:`colour_conversion`). ``backend="nvdec"``: ``nvdec_sessions``
    NVDEC decoders on the model's GPU (:mod:`tspvideo.video.nvdec`) and ``num_workers`` PyAV workers beside them.
    ``video_timeout``: a video whose decoder makes no progress for this many seconds fails (None: no limit).
    """
    torch_device = torch.device(device)
    raw_frames = preprocess_on_device(torch_device, backend) if raw_frames is None else raw_frames
    colour = colour_conversion(raw_frames, backend, decoder_resize) if colour is None else colour
    model = (model.features if isinstance(model, TSPModel) else model).to(torch_device).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    nvdec = backend == "nvdec"
    if nvdec:
        check_nvdec(torch_device, raw_frames)
    if units is None:  # NVDEC decodes each unit from the video's start: whole videos only
        units = plan_units(videos, settings, num_workers + nvdec_sessions * nvdec, split=not nvdec)
    units = list(units)
    # The decode workers (and NVDEC's fallback) use PyAV when NVDEC is asked for.
    stream = FrameStream(videos, units, settings, prep, "pyav" if nvdec else backend, decode_threads,
                         decoder_resize, accept_short, raw_frames, colour, video_timeout)
    sessions = NvdecSessions(stream, nvdec_sessions, torch_device) if nvdec else None
    if sessions is None or num_workers:
        # Items are tagged with their unit, so they may arrive in any order: no worker waits for another.
        loader = DataLoader(stream, batch_size=None, num_workers=num_workers,
                            pin_memory=torch_device.type == "cuda", prefetch_factor=4 if num_workers else None,
                            in_order=False)
    items = iter(loader) if sessions is None or num_workers else None
    if sessions is not None:
        items = sessions.items(items)
    layout = torch.channels_last_3d if channels_last else torch.contiguous_format
    assembler = ClipAssembler(units, settings, batch_size, torch_device, layout, prep if raw_frames else None)
    progress = VideoProgress(videos, units, settings, assembler)

    def run_model(flush: bool = False) -> Iterator[tuple[int, FeatureOutcome]]:
        for unit_ids, clip_ids, clips in assembler.batches(flush):
            with autocast(torch_device, amp):
                features = model(clips).float().cpu().numpy()
            progress.add_features(unit_ids, clip_ids, features)
            if on_clips is not None:
                on_clips(len(features))
        yield from progress.pop_finished()

    with torch.inference_mode():
        for item in items:
            if "frames" in item:
                assembler.add(item["unit"], item["indices"], item["frames"], item.get("planar"))
            else:
                assembler.finish(item["unit"])
                progress.end_unit(item["unit"], int(item["num_frames"]), item["error"], item["short"],
                                  item.get("decoder"))
            yield from run_model()
        yield from run_model(flush=True)


def check_nvdec(device: torch.device, raw_frames: bool) -> None:
    """Raise :class:`TspVideoError` when NVDEC decoding cannot run as asked."""
    if problem := nvdec_problem(device):
        raise TspVideoError(problem)
    if not raw_frames:
        raise TspVideoError("--backend nvdec preprocesses frames on the GPU they are decoded on; drop "
                            "--preprocess-on workers")


def extract_dataset(videos: Sequence[Path], out_dir: str | os.PathLike, encoder: Encoder,
                    options: ExtractOptions = ExtractOptions()) -> ExtractionReport:
    """Extract features of this shard's videos into ``out_dir`` and return what happened.

    ``encoder``'s model is a :class:`TSPModel` (its backbone gives the features; heads are not run) or any
    module mapping a batch ``[B, 3, L, h, w]`` to ``[B, C]`` (:meth:`Encoder.of_module`); its input (clip grid,
    frame sizes, normalisation) is the encoder's own unless ``options`` says otherwise. A video is skipped
    when its sidecar records the same settings and the same source file (see
    :mod:`tspvideo.extract.provenance`); features of other settings in ``out_dir`` are an error raised before
    any work, unless ``options.overwrite``. A file that ends well before its declared duration fails, unless
    ``options.accept_short`` (then its sidecar says so).
    """
    options = options.resolve()
    resolved = encoder.resolve_input(options.input_overrides)
    settings, prep = resolved.grid, resolved.prep
    model_description = {**encoder.description(), **resolved.record()}
    amp = None if options.amp == "fp32" else options.amp  # autocast's argument
    raw_frames = options.preprocess_on == "device"
    out_dir = Path(out_dir)
    check_writable(out_dir)
    report = ExtractionReport()
    if options.backend == "nvdec":  # before anything is read or written
        check_nvdec(torch.device(options.device), raw_frames)
    current = feature_settings(settings, model_description, prep, amp=amp, backend=options.backend,
                               decoder_resize=options.decoder_resize, colour=options.colour)
    sidecars = dict(iter_sidecars(out_dir))
    if not options.overwrite:
        check_folder_settings(sidecars, current, out_dir)
    else:
        _warn_other_settings_left(out_dir, videos, sidecars, current)
    todo, sources = _plan_resume(shard(videos, options.shard_id, options.num_shards), out_dir, sidecars, report,
                                 options.overwrite, options.accept_short)
    # What ran, besides the settings resume checks: layout and where preprocessing ran change features only by
    # float rounding; the precision is also among the settings.
    model_description = {**model_description, "decoder_resize": options.decoder_resize, "precision": amp or "fp32",
                         "channels_last": options.channels_last, "preprocess_on": options.preprocess_on,
                         "colour_conversion": options.colour}
    started = time.perf_counter()
    bar = ClipProgress(todo, settings, enabled=options.progress, desc=f"extract {out_dir.name}")

    def count(clips: int) -> None:
        report.clips += clips
        bar.add_clips(clips)

    try:
        for index, outcome in stream_features(todo, encoder.model, settings, batch_size=options.batch_size,
                                              device=options.device, num_workers=options.workers, amp=amp,
                                              channels_last=options.channels_last,
                                              backend=options.backend, decode_threads=options.decode_threads,
                                              decoder_resize=options.decoder_resize, raw_frames=raw_frames, prep=prep,
                                              on_clips=count, accept_short=options.accept_short, colour=options.colour,
                                              nvdec_sessions=options.nvdec_sessions,
                                              video_timeout=options.video_timeout):
            video = todo[index]
            if isinstance(outcome, str):
                # outputs of an earlier run are stale: never leave them as done, and say they are gone
                if _remove_outputs(out_dir, video):
                    report.removed.append(str(video))
                    outcome += f"; its earlier features in {out_dir} were removed (they no longer match the file)"
                report.failed[str(video)] = outcome
                bar.write(f"failed: {outcome}")
                bar.video_done(index, None)
            else:
                provenance = {"settings": current, "source": sources[index]}
                _write_video_features(out_dir, video, outcome, settings, model_description, prep, provenance)
                report.written.append(str(video))
                if outcome.short is not None:
                    report.short[str(video)] = _short_message(outcome.short)
                    bar.write(f"kept (--accept-short): {video}: {report.short[str(video)]}")
                bar.video_done(index, len(outcome.features))
    except WriteFailure:
        # The run stops at the first output it cannot write (a full disk fails every later one too); the videos
        # that failed before are still listed where possible.
        with contextlib.suppress(TspVideoError, OSError):
            write_failures(failures_path(out_dir, options.shard_id, options.num_shards), report.failed)
        raise
    finally:
        bar.close()
    report.seconds = time.perf_counter() - started
    write_failures(failures_path(out_dir, options.shard_id, options.num_shards), report.failed)
    return report


def _plan_resume(videos: Sequence[Path], out_dir: Path, sidecars: dict[Path, dict], report: ExtractionReport,
                 overwrite: bool, accept_short: bool) -> tuple[list[Path], list[dict | None]]:
    """The videos to extract (and their source fingerprints); the others go to ``report.skipped``.

    A video is redone when asked (``overwrite``), when its outputs are missing, when its source file
    changed since (said on stdout and listed in ``report.refreshed``), or when it was kept short and
    short files are no longer accepted.
    """
    todo, sources = [], []
    for video in videos:
        npy, sidecar_path = feature_paths(out_dir, video)
        sidecar = sidecars.get(sidecar_path)
        source = source_fingerprint(video)
        if not overwrite and sidecar is not None and npy.is_file():
            change = source_change((sidecar.get("provenance") or {}).get("source"), source)
            if change is None and (accept_short or not sidecar.get("accepted_short")):
                report.skipped.append(str(video))
                continue
            if change is not None and source is not None:
                report.refreshed[str(video)] = change
                print(f"{video}: changed since its features were extracted ({change}): extracting it again")
        todo.append(video)
        sources.append(source)
    return todo, sources


def _warn_other_settings_left(out_dir: Path, videos: Sequence[Path], sidecars: dict[Path, dict],
                              current: dict) -> None:
    """Say when ``--overwrite`` leaves features of other settings in the folder (videos not in this run)."""
    ours = {feature_paths(out_dir, video)[1] for video in videos}
    others = [(path, problem) for path, sidecar in sidecars.items()
              if path not in ours and (problem := settings_problem(sidecar, current)) is not None]
    if others:
        path, problem = others[0]
        print(f"warning: {len(others)} feature file(s) in {out_dir} of videos not in this run have other settings "
              f"(e.g. {path.name}: {problem}); the folder mixes settings")


def _remove_outputs(out_dir: Path, video: Path) -> bool:
    """Delete a video's features and sidecar; whether there was anything to delete."""
    npy, sidecar = feature_paths(out_dir, video)
    removed = False
    for path in (sidecar, npy):  # the sidecar first: it marks the video as done
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed = True
    return removed


def _short_message(short: tuple[float, float]) -> str:
    decoded, declared = short
    return f"decoded {decoded:.1f} s of the {declared:.1f} s the file declares (truncated?)"


def _write_video_features(out_dir: Path, video: Path, outcome: StreamedFeatures, settings: ClipGrid,
                          model_description: dict, prep: Preprocessing, provenance: dict) -> None:
    features, num_frames = outcome.features, outcome.num_frames
    count = len(features)
    short = {}
    if outcome.short is not None:  # kept with --accept-short: say so where the features are read
        short = {"accepted_short": {"decoded_seconds": round(outcome.short[0], 3),
                                    "declared_seconds": round(outcome.short[1], 3),
                                    "note": _short_message(outcome.short)}}
    write_video_features(out_dir, video.stem, features, {
        "video": video.name,
        "num_features": count,
        "feature_dim": int(features.shape[1]),
        "clip_len": settings.clip_len,
        "fps": settings.fps,
        "stride": settings.stride,
        "sampling": settings.sampling,
        "num_frames": num_frames,
        "video_duration": num_frames / settings.fps,
        "feature_times": [round(float(t), 6) for t in clip_centers(count, settings.clip_len, settings.stride,
                                                                     settings.fps)],
        "time_convention": "feature i is the clip of sampled frames [i*stride, i*stride+clip_len) at fps; "
                           "its time is the clip centre (i*stride + clip_len/2)/fps seconds",
        "preprocessing": prep.to_dict(),
        **model_description,
        **short,
        **({"decoded_with": outcome.decoder} if outcome.decoder else {}),
        "provenance": provenance,
        "tspvideo_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    })
