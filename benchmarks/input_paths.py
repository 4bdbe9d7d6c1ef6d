"""Training input paths on one folder: clips/s per loader worker from the originals, `tspvideo transcode` outputs
and the frame cache, and how far the transcoded clips are from the originals' (no model).

DATA is a folder from ``benchmarks/make_videos.py`` (videos/, train.csv, label_map.json). The script transcodes
``DATA/videos`` once per setting into ``DATA/transcoded_<name>`` (kept: rerun to reuse) and times it, then, for
each input path, iterates the real training DataLoader (balanced sampler, temporal jitter, 16-frame clips at 15
fps, crop box + flip drawn in the workers) for ``--batches`` batches after one warm-up batch:

- ``--preprocess-on device`` (default): the workers only decode and send uint8 clips, as on a GPU, so the rate
  is what one worker can feed a GPU; ``workers``: they also resize, crop and normalise, as on a CPU;
- the frame cache (``--frame-cache-dir``) over each path: its first epoch decodes whole videos (the fill), later
  epochs slice the cached frames; both rates are printed, and the cache's size on disk.

Fidelity: the same ``--compare-clips`` sampled clips (same items, jitter, crops and flips) from each transcoded
folder and from the originals, after the training transform (resize 128x171, crop 112, flip; normalisation
undone), mean and 99th percentile of the absolute pixel difference on 0-255, and the share of the originals'
own pixel spread (mean absolute deviation) that it is.

    python benchmarks/make_videos.py DATA --kinds 640x360@30 640x360@29.97 --videos 2 --min-seconds 60 --max-seconds 90
    python benchmarks/input_paths.py DATA --workers 0 --batches 8 --repeats 3

Prints markdown tables; all rates are medians over ``--repeats`` runs, paths interleaved. With ``--workers 0`` the
loading runs in this process and is also timed in its CPU seconds: clips per CPU-second is what one worker with a
core of its own delivers, a figure that holds on a shared machine where wall-clock rates do not.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from tspvideo.datasets.clips import BalancedSampler, ClipSpec, SegmentClipDataset
from tspvideo.datasets.segments import read_label_map, read_segment_table
from tspvideo.datasets.transforms import Preprocessing
from tspvideo.train.run import make_loader
from tspvideo.video.metadata import read_video_metadata
from tspvideo.video.transcode import TranscodeOptions, transcode_folder

# name -> transcode settings (None: the originals)
SETTINGS: dict[str, TranscodeOptions | None] = {
    "originals": None,
    "transcoded": TranscodeOptions(),
    "transcoded_fps15": TranscodeOptions(fps=15.0),
    "transcoded_fps15_gop8": TranscodeOptions(fps=15.0, gop=8),
    "transcoded_gop16_360p": TranscodeOptions(short_side=360),
}
DEFAULT_PATHS = ("originals", "transcoded", "transcoded_fps15", "transcoded_fps15_gop8")


def describe(name: str) -> str:
    """The path's row name: the command that makes it."""
    options = SETTINGS[name]
    if options is None:
        return "originals"
    flags = [f"--{key.replace('_', '-')} {value:g}" for key, value in
             (("fps", options.fps), ("short_side", options.short_side), ("gop", options.gop))
             if value != getattr(TranscodeOptions(), key)]
    return "`tspvideo transcode" + (" " + " ".join(flags) if flags else "") + "`"


def prepare_paths(data: Path, names: list[str], workers: int) -> dict[str, dict]:
    """Each path's video folder, transcoding it when missing; seconds it took, size on disk."""
    result = {}
    for name in names:
        options = SETTINGS[name]
        folder = data / "videos" if options is None else data / name
        seconds = None
        if options is not None and not (folder / ".complete").exists():
            started = time.perf_counter()
            report = transcode_folder(data / "videos", folder, options, workers=workers, progress=False)
            if report.failed:
                raise SystemExit(f"transcode failed: {report.failed}")
            seconds = time.perf_counter() - started
            (folder / ".complete").write_text(f"{seconds:.1f}\n")
        elif options is not None:
            seconds = float((folder / ".complete").read_text())
        files = sorted(folder.glob("*.mp4"))
        info = read_video_metadata(files[0])
        result[name] = {"folder": folder, "seconds": seconds, "mib": sum(f.stat().st_size for f in files) / 2**20,
                        "size": f"{info.width}x{info.height}", "fps": float(info.fps)}
    return result


def dataset(data: Path, folder: Path, preprocess_on: str, cache_dir: Path | None = None) -> SegmentClipDataset:
    """The training dataset of DATA's train.csv over ``folder``'s videos (the paper's clips and transform)."""
    return SegmentClipDataset(read_segment_table(data / "train.csv"), folder, train=True,
                              label_map=read_label_map(data / "label_map.json"),
                              spec=ClipSpec(clip_len=16, fps=15.0, clips_per_segment=5), prep=Preprocessing(),
                              preprocess_on=preprocess_on, frame_cache_dir=cache_dir)


def loader_rate(ds: SegmentClipDataset, workers: int, batch_size: int, batches: int,
                epoch: int = 0) -> tuple[float, float | None]:
    """Clips per second of wall time of ``batches`` batches after one warm-up batch (fresh workers), and with no
    worker (loading in this process) clips per second of this process's CPU time: what one worker with a core of
    its own delivers, whatever else the machine runs."""
    sampler = BalancedSampler(ds, seed=0)
    sampler.set_epoch(epoch)
    loader = make_loader(ds, sampler, batch_size, workers, torch.device("cpu"), train=True)
    iterator = iter(loader)
    next(iterator)  # worker start-up and first seeks
    clips, started, cpu = 0, time.perf_counter(), time.process_time()
    for _ in range(batches):
        try:
            clips += len(next(iterator)["action"])
        except StopIteration:
            break
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    del iterator, loader
    return clips / seconds, clips / cpu if workers == 0 else None


def fill_cache(ds: SegmentClipDataset, workers: int, batch_size: int) -> float:
    """Clips/s of one whole epoch with an empty folder cache: every video decoded once, then sliced."""
    sampler = BalancedSampler(ds, seed=0)
    loader = make_loader(ds, sampler, batch_size, workers, torch.device("cpu"), train=True)
    clips, started = 0, time.perf_counter()
    for batch in loader:
        clips += len(batch["action"])
    return clips / (time.perf_counter() - started)


def pixels(clip: torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    """A normalised [3, L, H, W] clip back on the 0-255 scale."""
    mean = torch.tensor(prep.mean).view(3, 1, 1, 1)
    std = torch.tensor(prep.std).view(3, 1, 1, 1)
    return (clip * std + mean) * 255


def fidelity(data: Path, reference: Path, folder: Path, n: int) -> dict[str, float]:
    """Mean and 99th percentile absolute difference (0-255) of the same sampled clips, and the originals' spread."""
    ref, other = dataset(data, reference, "workers"), dataset(data, folder, "workers")
    keys = list(BalancedSampler(ref, seed=0))[:n]
    diffs, spread = [], []
    for key in keys:
        a, b = pixels(ref[key]["clip"], ref.prep), pixels(other[key]["clip"], other.prep)
        diffs.append((a - b).abs().flatten())
        spread.append(float((a - a.mean()).abs().mean()))
    diff = torch.cat(diffs)
    return {"mean": float(diff.mean()), "p99": float(torch.quantile(diff[::7].float(), 0.99)),
            "spread": statistics.mean(spread), "clips": len(keys)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="a folder from benchmarks/make_videos.py")
    parser.add_argument("--paths", nargs="+", choices=list(SETTINGS), default=list(DEFAULT_PATHS))
    parser.add_argument("--workers", type=int, nargs="+", default=[0],
                        help="loader worker counts (0: in this process, also timed in CPU seconds)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=8, help="timed batches per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per row (median), paths interleaved")
    parser.add_argument("--preprocess-on", choices=["device", "workers"], default="device")
    parser.add_argument("--frame-cache", nargs="*", default=["transcoded"], choices=list(SETTINGS),
                        help="paths also measured through a frame-cache folder (fill epoch and cached)")
    parser.add_argument("--compare-clips", type=int, default=32, help="clips compared with the originals (0: none)")
    parser.add_argument("--transcode-workers", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread per process, as in a loader worker
    names = list(dict.fromkeys(["originals", *args.paths, *args.frame_cache]))
    paths = prepare_paths(args.data, names, args.transcode_workers)
    minutes = sum(read_video_metadata(p).duration for p in (args.data / "videos").glob("*.mp4")) / 60
    print(f"{len(list((args.data / 'videos').glob('*.mp4')))} videos, {minutes:.1f} minutes; 16-frame clips at 15 fps, "
          f"batch {args.batch_size}, preprocessing on the {args.preprocess_on}, {torch.get_num_threads()} torch "
          f"thread(s), median of {args.repeats}\n")
    print("| input | frames | fps | MiB | transcode s per video minute | workers | clips/s | clips/s per worker | "
          "clips per CPU-second | vs originals |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for workers in args.workers:
        rates: dict[str, list[tuple[float, float | None]]] = {name: [] for name in args.paths}
        for _ in range(args.repeats):
            for name in args.paths:
                ds = dataset(args.data, paths[name]["folder"], args.preprocess_on)
                rates[name].append(loader_rate(ds, workers, args.batch_size, args.batches))
        medians = {name: (statistics.median(r[0] for r in runs),
                          statistics.median(r[1] for r in runs) if runs[0][1] is not None else None)
                   for name, runs in rates.items()}
        base = medians.get("originals", (None, None))[1 if workers == 0 else 0]
        for name in args.paths:
            info, (rate, cpu_rate) = paths[name], medians[name]
            per_minute = f"{info['seconds'] * args.transcode_workers / minutes:.1f}" if info["seconds"] else "-"
            compared = cpu_rate if workers == 0 else rate
            print(f"| {describe(name)} | {info['size']} | {info['fps']:g} | {info['mib']:.1f} | {per_minute} | "
                  f"{workers} | {rate:.1f} | {rate / max(workers, 1):.1f} | "
                  f"{f'{cpu_rate:.1f}' if cpu_rate is not None else '-'} | "
                  f"{f'{compared / base:.1f}x' if base else '-'} |", flush=True)
    if args.frame_cache:
        print("\n| frame cache over | workers | fill epoch clips/s (wall) | cached clips/s (per CPU-second without "
              "workers) | vs originals | cache MiB |")
        print("|---|---|---|---|---|---|")
        workers = args.workers[-1]
        key = 1 if workers == 0 else 0  # CPU-time rates without workers, wall time with them
        base_rate = statistics.median(loader_rate(dataset(args.data, paths["originals"]["folder"],
                                                          args.preprocess_on), workers, args.batch_size,
                                                  args.batches)[key] for _ in range(args.repeats))
        for name in args.frame_cache:
            cache = args.data / f"frame_cache_{name}"
            shutil.rmtree(cache, ignore_errors=True)
            ds = dataset(args.data, paths[name]["folder"], args.preprocess_on, cache)
            fill = fill_cache(ds, workers, args.batch_size)
            cached = statistics.median(loader_rate(ds, workers, args.batch_size, args.batches, epoch=1 + r)[key]
                                       for r in range(args.repeats))
            mib = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) / 2**20
            print(f"| {describe(name)} | {workers} | {fill:.1f} | {cached:.1f} | {cached / base_rate:.1f}x | "
                  f"{mib:.0f} |", flush=True)
            shutil.rmtree(cache, ignore_errors=True)
    if args.compare_clips:
        print("\n| clips from | vs originals: mean abs difference (0-255) | 99th percentile | originals' mean abs "
              "deviation | clips |")
        print("|---|---|---|---|---|")
        for name in args.paths:
            if name == "originals":
                continue
            result = fidelity(args.data, paths["originals"]["folder"], paths[name]["folder"], args.compare_clips)
            print(f"| {describe(name)} | {result['mean']:.2f} | {result['p99']:.1f} | {result['spread']:.1f} | "
                  f"{result['clips']} |", flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
