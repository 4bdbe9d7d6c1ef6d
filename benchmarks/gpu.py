"""Extraction on one GPU: model-only vs end-to-end clips/s, decode workers, and the FLOP ceiling.

One script for one run on a lent GPU machine (it also runs on CPU with ``--device cpu`` for a dry run):

    python benchmarks/gpu.py --backbone r2plus1d_34 --workers 4 8 12 --amp bf16 --channels-last

It prints the device and versions, the FLOPs of one clip (``torch.utils.flop_counter``), the measured
model-only rate with and without bf16/channels_last (and ``torch.compile`` with ``--compile``), the
implied TFLOP/s, and end-to-end extraction clips/s for each number of decode workers on synthetic
640x360 videos, so the end-to-end / model-only ratio shows whether decoding keeps up.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from tspvideo.extract import ClipSettings, extract_dataset
from tspvideo.models.tsp import create_model


def clip_flops(model: torch.nn.Module, clip_len: int, device: torch.device) -> float:
    """FLOPs of one 3 x clip_len x 112 x 112 clip (multiply-adds counted as 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    clips = torch.randn(1, 3, clip_len, 112, 112, device=device)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(clips)
    return float(counter.get_total_flops())


def model_rate(model, device, batch_size: int, clip_len: int, amp: bool, channels_last: bool, steps: int) -> float:
    """Median clips/s of the model alone over ``steps`` timed batches (after warm-up)."""
    clips = torch.randn(batch_size, 3, clip_len, 112, 112, device=device)
    if channels_last:
        clips = clips.contiguous(memory_format=torch.channels_last_3d)
    rates = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        for step in range(steps + 2):
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            model(clips)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step >= 2:  # the first calls pay for cuDNN autotuning / compilation
                rates.append(batch_size / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="r2plus1d_34")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--videos", type=int, default=4, help="synthetic 640x360 videos for the end-to-end runs")
    parser.add_argument("--seconds", type=float, default=60, help="length of each synthetic video")
    parser.add_argument("--amp", choices=["bf16"], default="bf16")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile (model only)")
    parser.add_argument("--decoder-resize", action="store_true", help="resize in the decoder end to end")
    args = parser.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
    print(f"device: {name}; torch {torch.__version__}; cuda {torch.version.cuda}; python {sys.version.split()[0]}")
    model = create_model(args.backbone, heads=("region",), gvf=None).features.eval().to(device)
    flops = clip_flops(model, 16, device)
    print(f"{args.backbone}: {flops / 1e9:.1f} GFLOP per 16x112x112 clip")

    print("\n| model-only mode | clips/s | TFLOP/s |")
    print("|---|---|---|")
    amp = args.amp == "bf16"
    modes = [("fp32", False, False), ("bf16", amp, False), ("bf16 + channels_last", amp, True)]
    best = 0.0
    for label, use_amp, channels_last in modes:
        m = model.to(memory_format=torch.channels_last_3d) if channels_last else model
        rate = model_rate(m, device, args.batch_size, 16, use_amp, channels_last, args.steps)
        best = max(best, rate)
        print(f"| {label} | {rate:.1f} | {rate * flops / 1e12:.1f} |")
    if args.compile:
        compiled = torch.compile(model.to(memory_format=torch.channels_last_3d))
        rate = model_rate(compiled, device, args.batch_size, 16, amp, True, args.steps)
        best = max(best, rate)
        print(f"| bf16 + channels_last + compile | {rate:.1f} | {rate * flops / 1e12:.1f} |")

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from extract import write_test_video

    with tempfile.TemporaryDirectory() as tmp:
        videos = []
        for i in range(args.videos):
            path = Path(tmp) / f"video_{i}.mp4"
            write_test_video(path, args.seconds)
            videos.append(path)
        print(f"\nend to end: {args.videos} synthetic 640x360 videos of {args.seconds:g} s, stride 16, "
              f"amp={args.amp}, channels_last={args.channels_last}, decoder_resize={args.decoder_resize}")
        print("| decode workers | clips | clips/s | end-to-end / best model-only |")
        print("|---|---|---|---|")
        for workers in args.workers:
            with tempfile.TemporaryDirectory() as out:
                report = extract_dataset(videos, out, model, {"weights": "random"}, ClipSettings(16, 15.0, 16),
                                         batch_size=args.batch_size, device=str(device), num_workers=workers,
                                         amp=args.amp, channels_last=args.channels_last,
                                         decoder_resize=args.decoder_resize, progress=False)
            rate = report.clips / report.seconds
            print(f"| {workers} | {report.clips} | {rate:.1f} | {rate / best:.2f} |")


if __name__ == "__main__":
    main()
