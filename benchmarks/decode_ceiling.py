"""Stride-16 extraction against the machine's decode ceiling, both measured on the same videos in the same run.

The ceiling is decoding alone, frames only (no colour conversion, no copies, no model): ``--pyav`` processes
(one FFmpeg thread each) decode the folder's videos whole, the NVDEC sessions (``--nvdec`` threads of one
process, when PyNvVideoCodec and a GPU are there) likewise, each set alone and then both at once, for
``--seconds`` each. Source frames per stride-16 clip: 16 frames at 15 fps span 16/15 s, i.e. 32 frames of a 30
fps video, so the ceiling in clips/s is decoded frames/s / (16 / 15 x the videos' fps). Then ``extract_dataset``
at stride 16 on the same videos, for each way of decoding, with its share of the best ceiling.

    python benchmarks/decode_ceiling.py VIDEOS --device cuda --pyav 14 --nvdec 8
    python benchmarks/decode_ceiling.py VIDEOS --device cpu --pyav 1 --seconds 3 --backbone c3d_tiny  # a dry run

VIDEOS: a folder of videos (``benchmarks/make_videos.py`` writes them under OUT/videos). Prints markdown tables.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import av
import torch

from tspvideo.core.grid import ClipGrid
from tspvideo.extract.options import ExtractOptions
from tspvideo.extract.run import extract_dataset
from tspvideo.models.encoder import random_encoder
from tspvideo.video.metadata import read_video_metadata
from tspvideo.video.nvdec import nvdec_problem


def pyav_frames(args: tuple[list[str], int, float]) -> int:
    """Frames one process decodes in ``seconds``, going round the videos from ``first``."""
    videos, first, seconds = args
    deadline, frames, i = time.perf_counter() + seconds, 0, first
    while time.perf_counter() < deadline:
        with av.open(videos[i % len(videos)]) as container:
            stream = container.streams.video[0]
            stream.thread_type = "SLICE"
            stream.codec_context.thread_count = 1
            for _ in container.decode(stream):
                frames += 1
                if frames % 64 == 0 and time.perf_counter() >= deadline:
                    break
        i += 1
    return frames


def nvdec_frames(videos: list[str], first: int, seconds: float, counts: list[int], slot: int) -> None:
    """Frames one NVDEC session decodes in ``seconds`` (frames stay on the GPU; nothing else is done)."""
    from tspvideo.video.nvdec import open_decoder

    deadline, i = time.perf_counter() + seconds, first
    while time.perf_counter() < deadline:
        decoder = open_decoder(Path(videos[i % len(videos)]), 0)
        while time.perf_counter() < deadline:
            batch = decoder.get_batch_frames(32)
            if not batch:
                break
            counts[slot] += len(batch)
        i += 1


def ceiling(videos: list[str], pyav: int, nvdec: int, seconds: float) -> float:
    """Decoded frames/s of ``pyav`` processes and ``nvdec`` sessions running at once."""
    counts = [0] * nvdec
    threads = [threading.Thread(target=nvdec_frames, args=(videos, k, seconds, counts, k)) for k in range(nvdec)]
    # Forked before the NVDEC threads start (the processes use PyAV only, never CUDA): they start in a moment,
    # where spawned ones would import torch again.
    pool = mp.get_context("fork").Pool(pyav) if pyav else None
    for thread in threads:
        thread.start()
    total = sum(pool.map(pyav_frames, [(videos, k, seconds) for k in range(pyav)])) if pool else 0
    for thread in threads:
        thread.join()
    if pool:
        pool.close()
        pool.join()
    # The processes' start-up is outside their own ``seconds``: the rate is over the decoding time.
    return (total + sum(counts)) / seconds


def extraction(videos: list[Path], backbone: str, device: str, batch_size: int, workers: int, backend: str,
               sessions: int) -> tuple[float, int]:
    """Clips/s and clips of ``extract_dataset`` at stride 16 (the device's default precision and colour path)."""
    encoder = random_encoder(backbone)
    with tempfile.TemporaryDirectory() as out:
        report = extract_dataset(videos, out, encoder, ExtractOptions.for_grid(
            ClipGrid(16, 15.0, 16), batch_size=batch_size, device=device, workers=workers, backend=backend,
            nvdec_sessions=sessions, progress=False))
    if report.failed:
        sys.exit(f"extraction failed: {next(iter(report.failed.items()))}")
    return report.clips / report.seconds, report.clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", type=Path)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--pyav", type=int, default=max(1, (os.cpu_count() or 2) - 2), help="PyAV processes")
    parser.add_argument("--nvdec", type=int, default=8, help="NVDEC sessions (when available)")
    parser.add_argument("--seconds", type=float, default=15.0, help="decoding time of each ceiling run")
    parser.add_argument("--backbone", default="r2plus1d_34")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sizes", nargs="*", default=None,
                        help="WIDTHxHEIGHT groups to measure separately (default: every size in the folder)")
    args = parser.parse_args()
    files = sorted(p for p in args.videos.rglob("*") if p.suffix.lower() in (".mp4", ".mkv", ".avi", ".mov"))
    groups: dict[str, list[Path]] = {}
    for path in files:
        info = read_video_metadata(path)
        groups.setdefault(f"{info.width}x{info.height}", []).append(path)
    nvdec_reason = nvdec_problem(torch.device(args.device))
    nvdec = args.nvdec if nvdec_reason is None else 0
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "CPU"
    print(f"{name}, {os.cpu_count()} CPU cores, torch {torch.__version__}, PyAV {av.__version__}; NVDEC: "
          f"{'available' if nvdec_reason is None else 'skipped: ' + nvdec_reason}\n", flush=True)
    print("| videos | decoding | decoded frames/s | stride-16 ceiling clips/s |")
    print("|---|---|---|---|", flush=True)
    best = {}
    for size, paths in groups.items():
        if args.sizes and size not in args.sizes:
            continue
        fps = statistics.median(float(read_video_metadata(p).fps) for p in paths)
        per_clip = 16 / 15 * fps
        label = f"{size}, {len(paths)} x {statistics.median(read_video_metadata(p).duration for p in paths):.0f} s"
        runs = [(f"PyAV x{args.pyav}", args.pyav, 0)]
        if nvdec:
            runs += [(f"NVDEC x{nvdec}", 0, nvdec), (f"PyAV x{args.pyav} + NVDEC x{nvdec}", args.pyav, nvdec)]
        for run_label, pyav, sessions in runs:
            rate = ceiling([str(p) for p in paths], pyav, sessions, args.seconds)
            best[size] = max(best.get(size, 0.0), rate / per_clip)
            print(f"| {label} | {run_label} | {rate:.0f} | {rate / per_clip:.1f} |", flush=True)
    print(f"\n| videos | extraction, stride 16, {args.backbone}, batch {args.batch_size} | clips | clips/s | "
          "share of the best ceiling |")
    print("|---|---|---|---|---|", flush=True)
    for size, paths in groups.items():
        if args.sizes and size not in args.sizes:
            continue
        runs = [(f"PyAV x{args.pyav} (default)", args.pyav, "pyav", 4)]
        if nvdec:
            runs += [(f"NVDEC x{nvdec}", 0, "nvdec", nvdec), (f"NVDEC x{nvdec} + PyAV x{args.pyav}", args.pyav,
                                                              "nvdec", nvdec)]
        for run_label, workers, backend, sessions in runs:
            rate, clips = extraction(paths, args.backbone, args.device, args.batch_size, workers, backend, sessions)
            print(f"| {size} | {run_label} | {clips} | {rate:.1f} | {rate / best[size]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
