"""Training clips/s and the device's busy share, for each backbone, input folder, worker count and preprocessing.

Runs the training step (forward, equation (1) loss, backward, SGD step) of a TSP model on batches from the
real training DataLoader (decode, temporal jitter, crop + flip) over h264 videos, once per combination of
``--backbones``, ``--inputs``, ``--workers`` and ``--modes`` (``--preprocess-on``). Per step it measures the
time spent waiting for the loader (``next(loader)``) and the time the device spends in the step (CUDA events
around it on a GPU; wall time on a CPU, where the step is synchronous). Busy share = step time / wall time:
the "GPU busy" share. The model-only rate of the same model, batch and precision (the step on one batch
already on the device, repeated) is measured in the same run, and each row's clips/s is given as its share.

The videos: synthetic ones written here (``--size``, ``--num-videos``), or ``--data DIR``, a folder from
``benchmarks/make_videos.py``, whose sub-folders ``--inputs`` names (``videos`` = the originals, or the
``tspvideo transcode`` outputs of the same files); ``--frame-cache INPUT...`` adds those inputs read through a
frame-cache folder (filled by one untimed epoch first).

    python benchmarks/train_busy.py --device cpu --quick                # < 1 minute on 2 cores
    python benchmarks/train_busy.py --device cuda --workers 14 --batch-size 32 --amp bf16 --channels-last
    python benchmarks/train_busy.py --device cuda --data DATA --inputs videos transcoded --backbones r2plus1d_34 \
        r2plus1d_18 --workers 14 --batch-size 32 --amp bf16 --channels-last --modes device

Prints a markdown table, one row per run; the first batch (worker start-up) and first step are not timed.
"""

from __future__ import annotations

import argparse
import shutil
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


def cycle(loader):
    """The loader's batches, epoch after epoch."""
    while True:
        yield from loader


def build(backbone: str, classes: int, args: argparse.Namespace, device: torch.device):
    """The TSP model (action + region heads, no GVF) and the recipe's SGD, seeded."""
    torch.manual_seed(0)
    model = create_model(backbone, num_classes=classes, heads=("action", "region"), gvf=None).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    optimizer = torch.optim.SGD(parameter_groups(model, 1e-4, 2e-3, freeze_stem=True), momentum=0.9,
                                weight_decay=0.005)
    return model, optimizer


def train_step(model, optimizer, clips, action, region, device: torch.device, amp) -> None:
    """One TSP training step, its loss read back as the training loop does every step."""
    with autocast(device, amp):
        outputs = model(clips)
    loss, _ = tsp_loss(outputs, action, region)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    float(loss.detach())


def model_only(dataset: SegmentClipDataset, backbone: str, args: argparse.Namespace, device: torch.device) -> float:
    """Clips/s of the training step alone: one batch of the loader, already on the device, stepped repeatedly."""
    model, optimizer = build(backbone, args.classes, args, device)
    dataset.preprocess_on = "workers"
    loader = make_loader(dataset, BalancedSampler(dataset, seed=0), args.batch_size, 0, device, True)
    batch = next(iter(loader))
    clips = to_device(batch, dataset.prep, device, args.channels_last)
    action, region = batch["action"].to(device), batch["region"].to(device)

    def step() -> None:
        train_step(model, optimizer, clips, action, region, device, args.amp)

    for _ in range(2):
        step()  # kernel selection
    timer = StepTimer(device)
    timer.start()
    for _ in range(args.steps):
        step()
    timer.stop()
    return args.steps * args.batch_size / timer.seconds()


def measure(dataset: SegmentClipDataset, mode: str, args: argparse.Namespace, device: torch.device,
            backbone: str | None = None, workers: int | None = None) -> dict:
    """Clips, wall seconds, loader-wait seconds and device-step seconds of ``args.steps`` timed steps."""
    model, optimizer = build(backbone or args.backbone, args.classes, args, device)
    workers = args.workers if workers is None else workers
    dataset.preprocess_on = mode
    loader = make_loader(dataset, BalancedSampler(dataset, seed=0), args.batch_size, workers, device, True)

    def step(batch: dict) -> None:
        clips = to_device(batch, dataset.prep, device, args.channels_last)
        action, region = batch["action"].to(device), batch["region"].to(device)
        train_step(model, optimizer, clips, action, region, device, args.amp)

    # Worker start-up, first seeks, kernel selection: not the steady state. The workers start together, so
    # their first batches come at once: one batch per worker is skipped.
    batches = iter(cycle(loader))
    for _ in range(max(1, workers)):
        step(next(batches))
    timer = StepTimer(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    clips, wait, started = 0, 0.0, time.perf_counter()
    for _ in range(args.steps):
        before = time.perf_counter()
        batch = next(batches)
        wait += time.perf_counter() - before
        timer.start()
        step(batch)
        timer.stop()
        clips += len(batch["action"])
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {"clips": clips, "seconds": seconds, "wait": wait, "busy": timer.seconds()}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda")
    parser.add_argument("--quick", action="store_true",
                        help="tiny videos, clips and model input (a CPU check of the script, not a measurement)")
    parser.add_argument("--modes", nargs="+", choices=["workers", "device"], default=["workers", "device"])
    parser.add_argument("--size", default="320x240", help="video WIDTHxHEIGHT (synthetic videos, without --data)")
    parser.add_argument("--num-videos", type=int, default=8, help="synthetic videos (without --data)")
    parser.add_argument("--data", type=Path, default=None, help="a folder from benchmarks/make_videos.py")
    parser.add_argument("--inputs", nargs="+", default=["videos"],
                        help="sub-folders of --data to read the videos from (videos: the originals)")
    parser.add_argument("--frame-cache", nargs="*", default=[], metavar="INPUT",
                        help="inputs also read through a frame-cache folder (filled by one untimed epoch first)")
    parser.add_argument("--backbones", "--backbone", nargs="+", default=["r2plus1d_18"])
    parser.add_argument("--workers", type=int, nargs="+", default=[4], help="loader worker processes")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per row")
    parser.add_argument("--clip-len", type=int, default=16)
    parser.add_argument("--clips-per-segment", type=int, default=5,
                        help="clips per segment and epoch (the recipes' 5; more makes a small folder's epoch longer, "
                             "with the same random reads)")
    parser.add_argument("--amp", choices=["bf16", "fp16"], default=None)
    parser.add_argument("--channels-last", action="store_true")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    prep = Preprocessing()  # the paper's: 128x171, crop 112
    if args.quick:
        args.size, args.num_videos, args.batch_size, args.steps, args.clip_len = "96x64", 2, 4, 3, 4
        args.workers = [min(w, 1) for w in args.workers]
        prep = Preprocessing(resize=(32, 43), crop=(32, 32))
    device = torch.device(resolve_device(args.device))
    with tempfile.TemporaryDirectory() as tmp:
        if args.data is None:
            width, height = (int(v) for v in args.size.lower().split("x"))
            paths = prepare_synthetic_dataset(Path(tmp), num_videos=args.num_videos, num_classes=3,
                                              video_size=(width, height), min_duration=10.0 if args.quick else 30.0,
                                              max_duration=12.0 if args.quick else 40.0, progress=False)
            root, table, label_path, args.inputs = Path(paths["root"]), paths["train"], paths["label_map"], ["videos"]
            videos = f"{args.num_videos} synthetic videos {width}x{height} h264"
        else:
            root, table, label_path = args.data, args.data / "train.csv", args.data / "label_map.json"
            videos = f"the videos of {args.data}"
        label_map = read_label_map(label_path)
        args.classes = len(label_map)

        def dataset(folder: str, cache: Path | None = None) -> SegmentClipDataset:
            return SegmentClipDataset(read_segment_table(table), root / folder, train=True, label_map=label_map,
                                      prep=prep, frame_cache_dir=cache,
                                      spec=ClipSpec(clip_len=args.clip_len, fps=15.0,
                                                    clips_per_segment=args.clips_per_segment))

        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        print(f"{name} ({device}), torch {torch.__version__}, amp {args.amp or 'fp32'}, channels_last "
              f"{args.channels_last}; {videos}, clips {args.clip_len}x{prep.crop[0]}x{prep.crop[1]} (resize "
              f"{'x'.join(map(str, prep.resize))}), batch {args.batch_size}, {args.steps} timed steps after one "
              "batch per worker\n", flush=True)
        print("| backbone | input | loader workers | preprocess on | clips/s | model-only clips/s | share of "
              "model-only | step ms/batch | loader wait ms/batch | device busy share |")
        print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
        for backbone in args.backbones:
            alone = model_only(dataset(args.inputs[0]), backbone, args, device)
            runs = [(folder, None) for folder in args.inputs]
            runs += [(folder, Path(tmp) / f"frame_cache_{folder}") for folder in args.frame_cache]
            for folder, cache in runs:
                if cache is not None and not cache.exists():
                    fill(dataset(folder, cache), max(args.workers), args.batch_size, device)
                label = folder + (" + frame cache" if cache is not None else "")
                for workers in args.workers:
                    for mode in args.modes:
                        result = measure(dataset(folder, cache), mode, args, device, backbone, workers)
                        steps, rate = max(args.steps, 1), result["clips"] / result["seconds"]
                        print(f"| {backbone} | {label} | {workers} | {mode} | {rate:.1f} | {alone:.1f} | "
                              f"{rate / alone:.2f} | {1000 * result['busy'] / steps:.1f} | "
                              f"{1000 * result['wait'] / steps:.1f} | {result['busy'] / result['seconds']:.2f} |",
                              flush=True)
        for folder in args.frame_cache:
            shutil.rmtree(Path(tmp) / f"frame_cache_{folder}", ignore_errors=True)


def fill(dataset: SegmentClipDataset, workers: int, batch_size: int, device: torch.device) -> None:
    """One epoch of the loader (no model): every video of the table goes into the frame cache."""
    dataset.preprocess_on = "device"
    for _ in make_loader(dataset, BalancedSampler(dataset, seed=0), batch_size, workers, device, True):
        pass


if __name__ == "__main__":
    main()
