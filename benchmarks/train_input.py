"""Training input speed: clips/s the training DataLoader delivers (decode + jitter + crop), no model.

Each sample seeks into its video, decodes one clip of ``--clip-len`` frames at 15 fps and applies the
training transform (resize 128x171, random 112x112 crop + flip). Videos are synthetic h264 files at
``--size`` (see ``tspvideo.video.synthetic``); segment tables come from the same importer as the demo.

    python benchmarks/train_input.py                       # 320x240 videos, 0, 1 and 2 workers
    python benchmarks/train_input.py --size 640x360 --workers 1 2 4

Prints clips/s in total and per worker (the main process counts as one worker when --workers 0).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from tspvideo.commands import add_num_videos
from tspvideo.datasets.clips import BalancedSampler, ClipSpec, SegmentClipDataset, seed_worker
from tspvideo.datasets.segments import read_label_map, read_segment_table
from tspvideo.runs.steps import prepare_synthetic_dataset


def measure(dataset: SegmentClipDataset, workers: int, batch_size: int, batches: int) -> tuple[int, float]:
    """Clips delivered and seconds taken for ``batches`` batches (after one warm-up batch)."""
    sampler = BalancedSampler(dataset, seed=0)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                        worker_init_fn=seed_worker, drop_last=True)
    iterator = iter(loader)
    next(iterator)  # worker start-up and first seek are not the steady state
    clips, started = 0, time.perf_counter()
    for _ in range(batches):
        try:
            batch = next(iterator)
        except StopIteration:
            break
        clips += len(batch["clip"])
    return clips, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="320x240", help="video WIDTHxHEIGHT")
    add_num_videos(parser, 4, "synthetic videos")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--clip-len", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)  # the transform runs in each worker; one thread each, as in training
    width, height = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        paths = prepare_synthetic_dataset(Path(tmp), num_videos=args.num_videos, num_classes=3,
                                          video_size=(width, height), min_duration=30.0, max_duration=40.0,
                                          progress=False)
        dataset = SegmentClipDataset(read_segment_table(paths["train"]), paths["videos"], train=True,
                                     label_map=read_label_map(paths["label_map"]),
                                     spec=ClipSpec(clip_len=args.clip_len, fps=15.0, clips_per_segment=5))
        print(f"videos {width}x{height} h264, clips of {args.clip_len} frames at 15 fps -> 3x{args.clip_len}x112x112, "
              f"batch {args.batch_size}, {torch.get_num_threads()} torch thread(s) per process")
        print(f"{'workers':>7}  {'clips':>5}  {'seconds':>7}  {'clips/s':>7}  {'clips/s per worker':>18}")
        for workers in args.workers:
            clips, seconds = measure(dataset, workers, args.batch_size, args.batches)
            rate = clips / seconds
            print(f"{workers:>7}  {clips:>5}  {seconds:>7.2f}  {rate:>7.1f}  {rate / max(workers, 1):>18.1f}")


if __name__ == "__main__":
    main()
