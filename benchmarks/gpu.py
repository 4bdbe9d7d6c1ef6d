"""Extraction on one GPU: the card's rate, model-only vs end-to-end clips/s, decode workers, per-clip baseline.

One script for one run on a GPU machine; ``--device cpu --quick`` is a dry run of every section on CPU:

    python benchmarks/gpu.py --real bigbuckbunny.mp4 --all-modes --compile | tee gpu.log

Sections, each printed as a table as soon as it is measured:
1. the card's bf16 matrix-multiply rate (the practical ceiling for convolutions);
2. per backbone: GFLOP per 16x112x112 clip (``torch.utils.flop_counter``) and model-only clips/s in
   fp32, bf16, bf16 + channels_last (and torch.compile), with TFLOP/s and the share of the card's rate;
3. end-to-end ``extract_dataset`` clips/s on synthetic 640x360 h264 videos (and a real 720p video) for
   each number of decode workers, exact reference preprocessing and decoder resize, stride 16 and 1;
   preprocessing in the decode workers vs raw uint8 frames preprocessed on the device (the default on a GPU);
4. the default precision (``--amp auto``) against ``--exact`` (float32, TF32 off) end to end, and the
   features' cosine similarity to the CPU float32 reference path for each way of running on the device;
5. the original implementation's approach (``PerClipDataset``: every clip seeks and decodes on its own,
   DataLoader workers, fp32 as the original ran) on clips of the same videos, and our speed-up over it.
A time budget (``--budget-s``) skips what would not fit, saying so, so a lent machine's time is never lost.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract import PerClipDataset, write_test_video  # noqa: E402

from tspvideo.commands import add_num_videos  # noqa: E402
from tspvideo.data.clips import num_clips  # noqa: E402
from tspvideo.extract import ClipSettings, extract_dataset, stream_features  # noqa: E402
from tspvideo.models.tsp import create_model  # noqa: E402
from tspvideo.precision import autocast, resolve_precision  # noqa: E402
from tspvideo.streaming import WorkUnit  # noqa: E402


class Budget:
    """Wall-clock budget shared by the sections."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def allows(self, what: str, needs: float = 0.0) -> bool:
        if self.left() > needs:
            return True
        print(f"skipped (time budget): {what}", flush=True)
        return False


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_tflops(device: torch.device, size: int, repeats: int = 10) -> float:
    """Median bf16 TFLOP/s of a size^3 matrix product on random data."""
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    rates = []
    for step in range(repeats + 3):
        sync(device)
        started = time.perf_counter()
        a @ b
        sync(device)
        if step >= 3:
            rates.append(2 * size**3 / (time.perf_counter() - started) / 1e12)
    return statistics.median(rates)


def clip_flops(model: torch.nn.Module, clip_len: int, device: torch.device) -> float:
    """FLOPs of one 3 x clip_len x 112 x 112 clip (multiply-adds counted as 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    clips = torch.randn(1, 3, clip_len, 112, 112, device=device)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(clips)
    return float(counter.get_total_flops())


def model_rate(model, device, batch_size: int, amp: str | None, channels_last: bool, steps: int) -> float:
    """Median clips/s of the model alone over ``steps`` timed batches, after warm-up."""
    clips = torch.randn(batch_size, 3, 16, 112, 112, device=device)
    if channels_last:
        clips = clips.contiguous(memory_format=torch.channels_last_3d)
    rates = []
    with torch.inference_mode(), autocast(device, amp):
        for step in range(steps + 3):
            sync(device)
            started = time.perf_counter()
            model(clips)
            sync(device)
            if step >= 3:  # the first calls pay for cuDNN autotuning / compilation
                rates.append(batch_size / (time.perf_counter() - started))
    return statistics.median(rates)


def make_videos(folder: Path, count: int, seconds: float, real: Path | None) -> dict[str, list[Path]]:
    """Synthetic 640x360 videos written in parallel, and ``count`` copies of the real video if given."""
    synthetic = [folder / f"synthetic_{i:02d}.mp4" for i in range(count)]
    with ProcessPoolExecutor(max_workers=min(count, os.cpu_count() or 1)) as pool:
        list(pool.map(write_test_video, synthetic, [seconds] * count))
    videos = {f"synthetic 640x360, {count} x {seconds:g} s": synthetic}
    if real is not None:
        copies = []
        for i in range(count):  # copies, so every decode worker has a video of its own
            copies.append(folder / f"real_{i:02d}{real.suffix}")
            shutil.copyfile(real, copies[-1])
        videos[f"{real.name}, {count} copies"] = copies
    return videos


def end_to_end(videos, model, device, stride: int, batch_size: int, workers: int, amp, channels_last,
               decoder_resize: bool, raw_frames: bool | None = None) -> tuple[float, int]:
    """Clips/s of ``extract_dataset`` over ``videos``, and the number of clips (``raw_frames=None``: the
    default for the device)."""
    model = model.to(memory_format=torch.channels_last_3d if channels_last else torch.contiguous_format)
    with tempfile.TemporaryDirectory() as out:
        report = extract_dataset(videos, out, model, {"weights": "random"}, ClipSettings(16, 15.0, stride),
                                 batch_size=batch_size, device=str(device), num_workers=workers, amp=amp,
                                 channels_last=channels_last, decoder_resize=decoder_resize,
                                 raw_frames=raw_frames, progress=False)
    if report.failed:
        sys.exit(f"extraction failed: {report.failed}")
    return report.clips / report.seconds, report.clips


def window_features(video: Path, model, device, clips: int, batch_size: int, workers: int, amp, channels_last,
                    raw_frames: bool, tf32: bool = True) -> np.ndarray:
    """Features of the first ``clips`` clips (stride 16) of ``video``; ``tf32``: cuDNN may use TF32."""
    model = model.to(memory_format=torch.channels_last_3d if channels_last else torch.contiguous_format)
    allowed = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = tf32
    try:
        [(_, outcome)] = list(stream_features([video], model, ClipSettings(16, 15.0, 16), units=[WorkUnit(0, 0, clips)],
                                              batch_size=batch_size, device=str(device), num_workers=workers,
                                              amp=amp, channels_last=channels_last, raw_frames=raw_frames))
    finally:
        torch.backends.cudnn.allow_tf32 = allowed
    if isinstance(outcome, str):
        sys.exit(f"extraction failed: {outcome}")
    return outcome.features


def cosines(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Smallest and mean cosine similarity between matching rows."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(cos.min()), float(cos.mean())


def spread_clips(videos: list[Path], frames_per_video: int, stride: int, count: int) -> list[tuple[Path, int]]:
    """``count`` clips of the stride's grid, spread evenly over all videos."""
    per_video = num_clips(frames_per_video, 16, stride)
    grid = [(video, k * stride) for video in videos for k in range(per_video)]
    step = max(1, len(grid) // count)
    return grid[::step][:count]


def baseline(clips, model, device, settings: ClipSettings, batch_size: int, workers: int, amp, channels_last) -> float:
    """Clips/s of the original approach: DataLoader workers each decode whole clips on their own."""
    loader = torch.utils.data.DataLoader(PerClipDataset(clips, settings), batch_size=batch_size,
                                         num_workers=workers, pin_memory=device.type == "cuda")
    sync(device)
    started = time.perf_counter()
    with torch.inference_mode(), autocast(device, amp):
        for batch in loader:
            batch = batch.to(device, non_blocking=True)
            if channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last_3d)
            model(batch).float().cpu()
    return len(clips) / (time.perf_counter() - started)


def versions(device: torch.device) -> str:
    import av
    import numpy
    import torchvision

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        extra = (f"; CUDA {torch.version.cuda}; cuDNN {torch.backends.cudnn.version()}"
                 f" (TF32 convolutions allowed: {torch.backends.cudnn.allow_tf32})")
    else:
        name, extra = platform.processor() or platform.machine(), ""
    return (f"device: {name}; {os.cpu_count()} CPU cores; Python {sys.version.split()[0]}; torch {torch.__version__}"
            f"{extra}; torchvision {torchvision.__version__}; PyAV {av.__version__}; NumPy {numpy.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backbones", nargs="+", default=["r2plus1d_34", "r2plus1d_18"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="timed batches per model-only rate")
    parser.add_argument("--workers", type=int, nargs="+", default=[4, 8, 14], help="decode workers to try")
    add_num_videos(parser, 16, "synthetic 640x360 videos")
    parser.add_argument("--seconds", type=float, default=40, help="length of each synthetic video")
    parser.add_argument("--real", type=Path, help="a real video to copy --num-videos times (e.g. 720p)")
    parser.add_argument("--baseline-clips", type=int, default=320, help="clips for each per-clip baseline run")
    parser.add_argument("--all-modes", action="store_true",
                        help="model-only fp32 and bf16 too, and a bf16 baseline (else only the modes compared)")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile (model only)")
    parser.add_argument("--budget-s", type=float, default=450, help="skip sections that would run past this")
    parser.add_argument("--cosine-clips", type=int, default=32, help="clips compared with the CPU reference")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes for a dry run on CPU (2 videos of 1.5 s, 1 worker, one backbone, 2 clips)")
    args = parser.parse_args()
    if args.quick:
        args.num_videos, args.seconds, args.workers, args.steps = 2, 1.5, [1], 1
        args.batch_size, args.baseline_clips, args.cosine_clips = 2, 2, 2
        args.backbones = args.backbones[-1:]
    budget = Budget(args.budget_s)
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(versions(device), flush=True)

    tmp = Path(tempfile.mkdtemp())
    started = time.perf_counter()
    videos = make_videos(tmp, args.num_videos, args.seconds, args.real)
    print(f"videos written in {time.perf_counter() - started:.1f} s", flush=True)

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    card = matmul_tflops(device, 1024 if args.quick else 8192)
    print(f"\ncard bf16 matrix product: {card:.0f} TFLOP/s (median of 10, random data)", flush=True)

    models, best_rates = {}, {}
    print("\n| backbone | GFLOP/clip | mode | batch | clips/s | TFLOP/s | share of card bf16 rate |")
    print("|---|---|---|---|---|---|---|", flush=True)
    for name in args.backbones:
        model = create_model(name, heads=("region",), gvf=None).features.eval().to(device)
        flops = clip_flops(model, 16, device)
        for label, amp, channels_last in [("fp32 (TF32 allowed)", None, False), ("bf16", "bf16", False),
                                          ("bf16 + channels_last", "bf16", True)]:
            if label != "bf16 + channels_last" and not args.all_modes:
                continue
            if not budget.allows(f"{name} {label} model-only"):
                continue
            if channels_last:
                model = model.to(memory_format=torch.channels_last_3d)
            rate = model_rate(model, device, args.batch_size, amp, channels_last, args.steps)
            print(f"| {name} | {flops / 1e9:.1f} | {label} | {args.batch_size} | {rate:.1f} | "
                  f"{rate * flops / 1e12:.1f} | {rate * flops / 1e12 / card:.0%} |", flush=True)
        models[name] = model
        best_rates[name] = rate  # bf16 + channels_last, the mode extraction runs in below

    main_name = args.backbones[0]
    worker_counts = [w for w in args.workers if w <= (os.cpu_count() or 1)] or [1]
    print(f"\nend to end: {main_name}, bf16 + channels_last, batch {args.batch_size}; "
          "e2e / model = end-to-end over model-only clips/s")
    print("| videos | stride | preprocessing (where) | decode workers | clips | clips/s | e2e / model |")
    print("|---|---|---|---|---|---|---|", flush=True)
    ours: dict[tuple[str, int, str], float] = {}
    for stride in (16, 1):
        for video_label, paths in videos.items():
            preps = [("reference, raw frames to the device", False, True),
                     ("reference, in the workers", False, False), ("decoder resize, in the workers", True, False)]
            if not video_label.startswith("synthetic"):
                preps = preps[:2]
            for prep_label, decoder_resize, raw_frames in preps:
                # Stride 1 is model-bound (each sampled frame is decoded once and ends 1 clip): fewer runs.
                counts = worker_counts if stride == 16 else worker_counts[-(1 if decoder_resize else 2):]
                if not video_label.startswith("synthetic") and stride == 1:
                    counts = worker_counts[-1:]
                for workers in counts:
                    if not budget.allows(f"{video_label} stride {stride} {prep_label} {workers} workers", 60):
                        continue
                    rate, clips = end_to_end(paths, models[main_name], device, stride, args.batch_size, workers,
                                             "bf16", True, decoder_resize, raw_frames)
                    key = (video_label, stride, prep_label)
                    ours[key] = max(ours.get(key, 0.0), rate)
                    print(f"| {video_label} | {stride} | {prep_label} | {workers} | {clips} | {rate:.1f} | "
                          f"{rate / best_rates[main_name]:.2f} |", flush=True)

    workers = max(worker_counts)
    synthetic_label, synthetic = next(iter(videos.items()))
    frames = int(args.seconds * 15)
    default = resolve_precision(device)
    print(f"\nprecision default vs --exact: {main_name}, {synthetic_label}, {workers} decode workers, batch "
          f"{args.batch_size}, preprocessing where the device's default puts it; default here: {default.describe()}")
    print("| stride | precision | clips | clips/s | default / exact |")
    print("|---|---|---|---|---|", flush=True)
    for stride in (16, 1):
        if not budget.allows(f"stride {stride} default vs --exact", 90):
            continue
        fast, clips = end_to_end(synthetic, models[main_name], device, stride, args.batch_size, workers,
                                 default.amp, default.channels_last, False)
        allowed = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = False  # as --exact runs
        try:
            exact, _ = end_to_end(synthetic, models[main_name], device, stride, args.batch_size, workers, None, False,
                                  False)
        finally:
            torch.backends.cudnn.allow_tf32 = allowed
        print(f"| {stride} | default ({default.name}{' + channels_last' if default.channels_last else ''}) | {clips} | "
              f"{fast:.1f} | {fast / exact:.2f}x |")
        print(f"| {stride} | --exact (fp32, TF32 off) | {clips} | {exact:.1f} | 1.00x |", flush=True)

    if budget.allows("cosine to the CPU reference", 60):
        video = synthetic[0]
        cpu_model = copy.deepcopy(models[main_name]).to("cpu")
        reference = window_features(video, cpu_model, torch.device("cpu"), args.cosine_clips, args.batch_size,
                                    min(workers, 4), None, False, raw_frames=False)
        print(f"\nfeatures vs the CPU float32 reference path (workers preprocess, float32 model on the CPU): "
              f"{main_name}, first {len(reference)} clips of {video.name} at stride 16")
        print("| on the device | min cosine | mean cosine | max abs difference |")
        print("|---|---|---|---|", flush=True)
        runs = [("fp32 TF32 off, preprocessed in the workers", None, False, False, False),
                ("fp32 TF32 off, raw frames preprocessed on the device (--exact)", None, False, True, False),
                ("fp32 TF32 allowed, raw frames on the device", None, False, True, True),
                (f"default: {default.name}{' + channels_last' if default.channels_last else ''}, raw frames on the "
                 "device", default.amp, default.channels_last, True, True)]
        for label, amp, channels_last, raw_frames, tf32 in runs:
            features = window_features(video, models[main_name], device, args.cosine_clips, args.batch_size,
                                       workers, amp, channels_last, raw_frames, tf32)
            low, mean = cosines(features, reference)
            print(f"| {label} | {low:.7f} | {mean:.7f} | {np.abs(features - reference).max():.2e} |", flush=True)
    print(f"\nper-clip baseline (the original's approach: each clip seeks and decodes on its own), {workers} "
          f"DataLoader workers, {synthetic_label}, clips spread over all videos; ours = best end-to-end "
          "above (reference preprocessing, raw frames to the device, bf16 + channels_last)")
    print("| backbone | stride | baseline precision | clips | baseline clips/s | ours clips/s | speed-up |")
    print("|---|---|---|---|---|---|---|", flush=True)
    for name in args.backbones:
        for stride in (16, 1):
            if name != main_name:  # ours for the other backbones: best worker count, reference preprocessing
                if not budget.allows(f"{name} stride {stride} end to end", 60):
                    continue
                ours[(synthetic_label, stride, name)], _ = end_to_end(
                    synthetic, models[name], device, stride, args.batch_size, workers, "bf16", True, False)
            our_key = "reference, raw frames to the device" if name == main_name else name
            our_rate = ours.get((synthetic_label, stride, our_key))
            clips = spread_clips(synthetic, frames, stride, args.baseline_clips)
            precisions = [("fp32", None, False), ("bf16 + channels_last", "bf16", True)]
            for precision, amp, channels_last in precisions[:2 if args.all_modes else 1]:
                if our_rate is None or not budget.allows(f"{name} stride {stride} {precision} baseline", 45):
                    continue
                base = baseline(clips, models[name], device, ClipSettings(16, 15.0, stride), args.batch_size,
                                workers, amp, channels_last)
                print(f"| {name} | {stride} | {precision} | {len(clips)} | {base:.1f} | {our_rate:.1f} | "
                      f"{our_rate / base:.1f}x |", flush=True)

    if args.compile and budget.allows("torch.compile", 120):
        compiled = torch.compile(models[main_name])
        rate = model_rate(compiled, device, args.batch_size, "bf16", True, args.steps)
        print(f"\n{main_name} bf16 + channels_last + torch.compile: {rate:.1f} clips/s model-only "
              f"(eager {best_rates[main_name]:.1f})", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
