"""Training-input clips/s without and with the frame cache (`tspvideo train --frame-cache-mb / --frame-cache-dir`).

Builds the experiment's synthetic videos (the `gpu` preset's 64x64 frames, or `--preset cpu`'s 48x48),
then iterates the real training DataLoader (balanced sampler, temporal jitter, raw uint8 clips as
preprocessing on the device receives them) for a few epochs, once per cache setting: none, in memory
(each worker decodes each video it meets once) and a folder (each video decoded once for all workers,
then memory-mapped). The first epoch fills the caches; later epochs read from them.

    python benchmarks/frame_cache.py --videos 60 --workers 2 --epochs 4

Prints a markdown table: epoch 1 and the median of the later epochs, clips/s, and the ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import torch

from tspvideo.datasets.clips import BalancedSampler, SegmentClipDataset
from tspvideo.datasets.segments import read_label_map, read_segment_table
from tspvideo.models.weights import default_recipe
from tspvideo.runs.experiment.config import PRESETS
from tspvideo.runs.experiment.run import prepare_data
from tspvideo.train.run import clip_spec_from, input_recipe, make_loader


def epoch_rates(data, config, workers: int, epochs: int, cache_mb: int, batch_size: int,
                cache_dir: Path | None = None) -> list[float]:
    """Clips/s of each epoch of the training loader."""
    recipe = input_recipe(default_recipe(config.backbone), config.clip_len, config.fps, config.resize, config.crop)
    spec, prep = clip_spec_from(recipe, config.clips_per_segment, "ffmpeg-fps")
    dataset = SegmentClipDataset(read_segment_table(data.train), data.videos, train=True,
                                 label_map=read_label_map(data.label_map), spec=spec, prep=prep,
                                 preprocess_on="device", frame_cache_mb=cache_mb,
                                 frame_cache_dir=cache_dir)
    sampler = BalancedSampler(dataset, seed=0)
    loader = make_loader(dataset, sampler, batch_size, workers, torch.device("cpu"), train=True)
    rates = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        started, clips = time.perf_counter(), 0
        for batch in loader:
            clips += len(batch["action"])
        rates.append(clips / (time.perf_counter() - started))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=["gpu", "cpu"], default="gpu", help="the experiment preset's videos")
    parser.add_argument("--videos", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--cache-mb", type=int, default=1024)
    parser.add_argument("--data", default=None, help="folder for the videos (default: a temporary one)")
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    config = dataclasses.replace(preset, data=dataclasses.replace(preset.data, num_videos=args.videos), progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        data = prepare_data(Path(args.data or tmp), config)
        print(f"{args.videos} synthetic videos {config.data.width}x{config.data.height}, clips of "
              f"{config.clip_len} frames at {config.fps:g} fps, batch {args.batch_size}, {args.workers} worker(s), "
              f"{torch.get_num_threads()} thread(s), {args.epochs} epochs\n")
        rows = {"none": epoch_rates(data, config, args.workers, args.epochs, 0, args.batch_size),
                f"memory, {args.cache_mb} MB per worker": epoch_rates(data, config, args.workers, args.epochs,
                                                                     args.cache_mb, args.batch_size),
                "folder (memory-mapped)": epoch_rates(data, config, args.workers, args.epochs, 0, args.batch_size,
                                                      Path(tmp) / "frame_cache")}
    later = {name: statistics.median(rates[1:]) if len(rates) > 1 else rates[0] for name, rates in rows.items()}
    print("| frame cache | epoch 1 clips/s | later epochs clips/s (median) | later vs no cache |")
    print("|---|---|---|---|")
    for name, rates in rows.items():
        print(f"| {name} | {rates[0]:.0f} | {later[name]:.0f} | {later[name] / later['none']:.2f} |")


if __name__ == "__main__":
    main()
