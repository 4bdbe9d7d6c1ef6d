"""Training clips/s and the device's busy share, input preprocessed in the loader workers or on the device.

Runs the training step (forward, equation (1) loss, backward, SGD step) of a TSP model on batches from the
real training DataLoader (decode, temporal jitter, crop + flip) over synthetic h264 videos, once per
``--preprocess-on`` mode. Per step it measures the time spent waiting for the loader (``next(loader)``) and
the time the device spends in the step (CUDA events around it on a GPU; wall time on a CPU, where the
step is synchronous). Busy share = step time / wall time: what the issue calls "GPU busy".

    python benchmarks/train_busy.py --device cpu --quick                # < 1 minute on 2 cores
    python benchmarks/train_busy.py --device cuda --workers 14 --batch-size 32 --amp bf16 --channels-last

Prints a markdown table, one row per mode; the first batch (worker start-up) and first step are not timed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from tspvideo.core.devices import resolve_device
from tspvideo.core.precision import autocast
from tspvideo.datasets.batch_transforms import is_raw_batch, preprocess_batch
from tspvideo.datasets.clips import BalancedSampler, ClipSpec, SegmentClipDataset
from tspvideo.datasets.segments import read_label_map, read_segment_table
from tspvideo.datasets.transforms import Preprocessing
from tspvideo.models.tsp import create_model
from tspvideo.runs.steps import prepare_synthetic_dataset
from tspvideo.train import parameter_groups, tsp_loss
from tspvideo.train.run import make_loader


class StepTimer:
    """Seconds the device spends between ``start`` and ``stop`` (CUDA events on a GPU, wall time otherwise)."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.pairs: list[tuple] = []
        self.wall = 0.0

    def start(self) -> None:
        if self.cuda:
            self.pairs.append((torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)))
            self.pairs[-1][0].record()
        else:
            self._started = time.perf_counter()

    def stop(self) -> None:
        if self.cuda:
            self.pairs[-1][1].record()
        else:
            self.wall += time.perf_counter() - self._started

    def seconds(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            return sum(begin.elapsed_time(end) for begin, end in self.pairs) / 1000.0
        return self.wall


def to_device(batch: dict, prep: Preprocessing, device: torch.device, channels_last: bool) -> torch.Tensor:
    """The batch's float clips on ``device``, as the training loop makes them."""
    if is_raw_batch(batch):
        return preprocess_batch(batch["clip"], batch["clip_positions"], batch["crop"], prep, device, channels_last)
    clips = batch["clip"].to(device, non_blocking=True)
    return clips.contiguous(memory_format=torch.channels_last_3d) if channels_last else clips


def measure(dataset: SegmentClipDataset, mode: str, args: argparse.Namespace, device: torch.device) -> dict:
    """Clips, wall seconds, loader-wait seconds and device-step seconds of ``args.steps`` timed steps."""
    torch.manual_seed(0)
    model = create_model(args.backbone, num_classes=args.classes, heads=("action", "region"), gvf=None).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    optimizer = torch.optim.SGD(parameter_groups(model, 1e-4, 2e-3, freeze_stem=True), momentum=0.9,
                                weight_decay=0.005)
    dataset.preprocess_on = mode
    loader = make_loader(dataset, BalancedSampler(dataset, seed=0), args.batch_size, args.workers, device, True)
    iterator = iter(loader)

    def step(batch: dict) -> None:
        clips = to_device(batch, dataset.prep, device, args.channels_last)
        action, region = batch["action"].to(device), batch["region"].to(device)
        with autocast(device, args.amp):
            outputs = model(clips)
        loss, _ = tsp_loss(outputs, action, region)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step(next(iterator))  # worker start-up, first seek, kernel selection: not the steady state
    timer = StepTimer(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    clips, wait, started = 0, 0.0, time.perf_counter()
    for _ in range(args.steps):
        before = time.perf_counter()
        try:
            batch = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            batch = next(iterator)
        wait += time.perf_counter() - before
        timer.start()
        step(batch)
        timer.stop()
        clips += len(batch["action"])
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {"clips": clips, "seconds": seconds, "wait": wait, "busy": timer.seconds()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda")
    parser.add_argument("--quick", action="store_true",
                        help="tiny videos, clips and model input (a CPU check of the script, not a measurement)")
    parser.add_argument("--modes", nargs="+", choices=["workers", "device"], default=["workers", "device"])
    parser.add_argument("--size", default="320x240", help="video WIDTHxHEIGHT")
    parser.add_argument("--num-videos", type=int, default=8)
    parser.add_argument("--backbone", default="r2plus1d_18")
    parser.add_argument("--workers", type=int, default=4, help="loader worker processes")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per mode")
    parser.add_argument("--clip-len", type=int, default=16)
    parser.add_argument("--amp", choices=["bf16", "fp16"], default=None)
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()
    prep = Preprocessing()  # the paper's: 128x171, crop 112
    if args.quick:
        args.size, args.num_videos, args.workers, args.batch_size, args.steps, args.clip_len = \
            "96x64", 2, 1, 4, 3, 4
        prep = Preprocessing(resize=(32, 43), crop=(32, 32))
    device = torch.device(resolve_device(args.device))
    width, height = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        paths = prepare_synthetic_dataset(Path(tmp), num_videos=args.num_videos, num_classes=3,
                                          video_size=(width, height), min_duration=10.0 if args.quick else 30.0,
                                          max_duration=12.0 if args.quick else 40.0, progress=False)
        label_map = read_label_map(paths["label_map"])
        args.classes = len(label_map)
        dataset = SegmentClipDataset(read_segment_table(paths["train"]), paths["videos"], train=True,
                                     label_map=label_map, prep=prep,
                                     spec=ClipSpec(clip_len=args.clip_len, fps=15.0, clips_per_segment=5))
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        print(f"{args.backbone} on {name} ({device}), torch {torch.__version__}, amp {args.amp or 'fp32'}, "
              f"channels_last {args.channels_last}; {args.num_videos} videos {width}x{height} h264, clips "
              f"{args.clip_len}x{prep.crop[0]}x{prep.crop[1]} (resize {'x'.join(map(str, prep.resize))}), batch "
              f"{args.batch_size}, {args.workers} loader worker(s), {args.steps} timed steps\n")
        print("| preprocess on | clips/s | step ms/batch | loader wait ms/batch | device busy share |")
        print("|---|---|---|---|---|")
        for mode in args.modes:
            result = measure(dataset, mode, args, device)
            steps = max(args.steps, 1)
            print(f"| {mode} | {result['clips'] / result['seconds']:.1f} | {1000 * result['busy'] / steps:.1f} | "
                  f"{1000 * result['wait'] / steps:.1f} | {result['busy'] / result['seconds']:.2f} |")


if __name__ == "__main__":
    main()
