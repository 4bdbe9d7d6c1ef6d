"""Extraction on one GPU: the card's rate, model-only vs end-to-end clips/s, decode workers, per-clip baseline.

One script for one run on a GPU machine; ``--device cpu --quick`` is a dry run of every section on CPU:

    python benchmarks/gpu.py --real bigbuckbunny.mp4 | tee gpu.log

Sections, each printed as a table as soon as it is measured:
1. the card's bf16 matrix-multiply rate (the practical ceiling for convolutions);
2. per backbone: GFLOP per 16x112x112 clip (``torch.utils.flop_counter``) and model-only clips/s in
   fp32, bf16, bf16 + channels_last (and torch.compile), with TFLOP/s and the share of the card's rate;
3. end-to-end ``extract_dataset`` clips/s on synthetic 640x360 and 1280x720 h264 videos (and a real video),
   stride 16 and 1, for each way of decoding: PyAV workers sending RGB (the reference), PyAV workers
   sending 4:2:0 planes converted on the GPU (the default on a GPU), NVDEC sessions alone, and NVDEC
   beside the PyAV workers;
4. (``--all-modes``) the default precision (``--amp auto``) against ``--exact`` (float32, TF32 off) end to
   end; always: the features' cosine similarity to the CPU float32 reference path for each way of running
   on the device (precision, colour conversion, NVDEC);
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
from tspvideo.core.grid import ClipGrid, num_clips  # noqa: E402
from tspvideo.core.precision import autocast, resolve_precision  # noqa: E402
from tspvideo.extract.options import ExtractOptions
from tspvideo.extract.run import extract_dataset, stream_features  # noqa: E402
from tspvideo.extract.streaming import WorkUnit  # noqa: E402
from tspvideo.models.encoder import Encoder
from tspvideo.models.tsp import create_model  # noqa: E402
from tspvideo.video.nvdec import nvdec_problem  # noqa: E402


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


def make_videos(folder: Path, count: int, seconds: float, real: Path | None, hd_count: int = 0,
                hd_seconds: float = 0.0) -> dict[str, list[Path]]:
    """Synthetic 640x360 (and ``hd_count`` 1280x720) videos written in parallel, and ``count`` copies of the
    real video if given."""
    synthetic = [folder / f"synthetic_{i:02d}.mp4" for i in range(count)]
    hd = [folder / f"hd_{i:02d}.mp4" for i in range(hd_count)]
    jobs = [(path, seconds, (640, 360)) for path in synthetic] + [(path, hd_seconds, (1280, 720)) for path in hd]
    with ProcessPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
        list(pool.map(write_test_video, *zip(*jobs, strict=True)))
    videos = {f"synthetic 640x360, {count} x {seconds:g} s": synthetic}
    if hd:
        videos[f"synthetic 1280x720, {hd_count} x {hd_seconds:g} s"] = hd
    if real is not None:
        copies = []
        for i in range(count):  # copies, so every decode worker has a video of its own
            copies.append(folder / f"real_{i:02d}{real.suffix}")
            shutil.copyfile(real, copies[-1])
        videos[f"{real.name}, {count} copies"] = copies
    return videos


def end_to_end(videos, model, device, stride: int, batch_size: int, workers: int, amp, channels_last,
               decoder_resize: bool = False, raw_frames: bool | None = None, colour: str | None = None,
               backend: str = "pyav", sessions: int = 4) -> tuple[float, int]:
    """Clips/s of ``extract_dataset`` over ``videos``, and the number of clips (``raw_frames`` / ``colour`` None:
    the defaults for the device)."""
    model = model.to(memory_format=torch.channels_last_3d if channels_last else torch.contiguous_format)
    with tempfile.TemporaryDirectory() as out:
        report = extract_dataset(videos, out, Encoder.of_module(model, weights="random"),
                                 ExtractOptions.for_grid(ClipGrid(16, 15.0, stride), batch_size=batch_size,
                                                         device=str(device), workers=workers, amp=amp or "fp32",
                                                         channels_last=channels_last, decoder_resize=decoder_resize,
                                                         preprocess_on={None: "auto", True: "device",
                                                                        False: "workers"}[raw_frames],
                                                         colour=colour or "auto", backend=backend,
                                                         nvdec_sessions=sessions, progress=False))
    if report.failed:
        sys.exit(f"extraction failed: {report.failed}")
    return report.clips / report.seconds, report.clips


def window_features(video: Path, model, device, clips: int, batch_size: int, workers: int, amp, channels_last,
                    raw_frames: bool, tf32: bool = True, colour: str = "decoder",
                    backend: str = "pyav") -> np.ndarray:
    """Features of the first ``clips`` clips (stride 16) of ``video``; ``tf32``: cuDNN may use TF32."""
    model = model.to(memory_format=torch.channels_last_3d if channels_last else torch.contiguous_format)
    allowed = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = tf32
    try:
        [(_, outcome)] = list(stream_features([video], model, ClipGrid(16, 15.0, 16), units=[WorkUnit(0, 0, clips)],
                                              batch_size=batch_size, device=str(device), num_workers=workers,
                                              amp=amp, channels_last=channels_last, raw_frames=raw_frames,
                                              colour=colour if raw_frames else "decoder", backend=backend))
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


def baseline(clips, model, device, settings: ClipGrid, batch_size: int, workers: int, amp, channels_last) -> float:
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


def pipeline_modes(workers: int, sessions: list[int], nvdec_reason: str | None, all_modes: bool) -> list[tuple]:
    """(label, keyword arguments of :func:`end_to_end`) of every way of decoding compared end to end."""
    modes = [(f"PyAV x{workers}, RGB in the workers (reference, --exact's path)",
              dict(workers=workers, raw_frames=True, colour="decoder")),
             (f"PyAV x{workers}, 4:2:0 planes to the GPU (default)", dict(workers=workers, raw_frames=True,
                                                                         colour="device"))]
    if all_modes:
        modes.append((f"PyAV x{workers}, decoder resize, preprocessed in the workers",
                      dict(workers=workers, raw_frames=False, decoder_resize=True, colour="decoder")))
    if nvdec_reason is None:
        for count in sessions:
            modes.append((f"NVDEC x{count}", dict(workers=0, backend="nvdec", sessions=count)))
        modes.append((f"NVDEC x{sessions[-1]} + PyAV x{workers} (planes)",
                       dict(workers=workers, backend="nvdec", sessions=sessions[-1], colour="device")))
    return modes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backbones", nargs="+", default=["r2plus1d_34", "r2plus1d_18"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="timed batches per model-only rate")
    parser.add_argument("--workers", type=int, default=None, help="PyAV decode workers (default: cores - 2)")
    parser.add_argument("--nvdec-sessions", type=int, nargs="+", default=[4, 8],
                        help="NVDEC session counts to try (the last also runs beside the PyAV workers)")
    add_num_videos(parser, 32, "synthetic 640x360 videos")
    parser.add_argument("--seconds", type=float, default=40, help="length of each synthetic video")
    parser.add_argument("--hd-videos", type=int, default=16, help="synthetic 1280x720 videos (0: none)")
    parser.add_argument("--hd-seconds", type=float, default=20, help="length of each 1280x720 video")
    parser.add_argument("--real", type=Path, help="a real video to copy --num-videos times (e.g. 720p)")
    parser.add_argument("--baseline-clips", type=int, default=320, help="clips for each per-clip baseline run")
    parser.add_argument("--all-modes", action="store_true",
                        help="model-only fp32 and bf16 too, decoder resize, a bf16 baseline, default vs --exact")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile (model only)")
    parser.add_argument("--budget-s", type=float, default=450, help="skip sections that would run past this")
    parser.add_argument("--cosine-clips", type=int, default=32, help="clips compared with the CPU reference")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes for a dry run on CPU (2 videos of 1.5 s, 1 worker, one backbone, 2 clips)")
    args = parser.parse_args()
    if args.quick:
        args.num_videos, args.seconds, args.workers, args.steps = 2, 1.5, 1, 1
        args.hd_videos, args.hd_seconds = min(args.hd_videos, 1), 1.5
        args.batch_size, args.baseline_clips, args.cosine_clips = 2, 2, 2
        args.backbones = args.backbones[-1:]
        args.nvdec_sessions = args.nvdec_sessions[-1:]
    budget = Budget(args.budget_s)
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(versions(device), flush=True)
    nvdec_reason = nvdec_problem(device)
    print(f"NVDEC: {'available' if nvdec_reason is None else 'rows skipped: ' + nvdec_reason}", flush=True)

    tmp = Path(tempfile.mkdtemp())
    started = time.perf_counter()
    videos = make_videos(tmp, args.num_videos, args.seconds, args.real, args.hd_videos, args.hd_seconds)
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
    workers = args.workers if args.workers is not None else max(1, (os.cpu_count() or 1) - 2)
    synthetic_label, synthetic = next(iter(videos.items()))
    frames = int(args.seconds * 15)
    default = resolve_precision(device)
    if budget.allows("cosine to the CPU reference", 60):
        video = synthetic[0]
        cpu_model = copy.deepcopy(models[main_name]).to("cpu")
        reference = window_features(video, cpu_model, torch.device("cpu"), args.cosine_clips, args.batch_size,
                                    min(workers, 4), None, False, raw_frames=False)
        print(f"\nfeatures vs the CPU float32 reference path (RGB from swscale, preprocessed in the workers, "
              f"float32 model on the CPU): {main_name}, first {len(reference)} clips of {video.name} at stride 16")
        print("| on the device | min cosine | mean cosine | max abs difference |")
        print("|---|---|---|---|", flush=True)
        precision = f"{default.name}{' + channels_last' if default.channels_last else ''}"
        runs = [("fp32 TF32 off, preprocessed in the workers", None, False, False, False, "decoder", "pyav"),
                ("fp32 TF32 off, RGB frames preprocessed on the device (--exact)", None, False, True, False,
                 "decoder", "pyav"),
                ("fp32 TF32 off, 4:2:0 planes converted on the device", None, False, True, False, "device", "pyav"),
                (f"{precision}, RGB frames on the device", default.amp, default.channels_last, True, True,
                 "decoder", "pyav"),
                (f"default: {precision}, 4:2:0 planes on the device", default.amp, default.channels_last, True,
                 True, "device", "pyav")]
        if nvdec_reason is None:
            runs += [("fp32 TF32 off, NVDEC", None, False, True, False, "decoder", "nvdec"),
                     (f"{precision}, NVDEC", default.amp, default.channels_last, True, True, "decoder", "nvdec")]
        for label, amp, channels_last, raw_frames, tf32, colour, backend in runs:
            features = window_features(video, models[main_name], device, args.cosine_clips, args.batch_size,
                                       0 if backend == "nvdec" else workers, amp, channels_last, raw_frames, tf32,
                                       colour, backend)
            low, mean = cosines(features, reference)
            print(f"| {label} | {low:.7f} | {mean:.7f} | {np.abs(features - reference).max():.2e} |", flush=True)
    modes = pipeline_modes(workers, args.nvdec_sessions, nvdec_reason, args.all_modes)
    print(f"\nend to end: {main_name}, bf16 + channels_last, batch {args.batch_size}, frames preprocessed on the "
          "device unless said; e2e / model = end-to-end over model-only clips/s")
    print("| videos | stride | decoding | clips | clips/s | e2e / model |")
    print("|---|---|---|---|---|---|", flush=True)
    ours: dict[tuple[str, int], float] = {}
    for stride in (16, 1):
        for video_label, paths in videos.items():
            for mode_label, options in modes:
                # Stride 1 is model-bound: the reference, the default and the fastest combination only.
                if stride == 1 and options.get("backend") == "nvdec" and not options["workers"]:
                    continue
                if not budget.allows(f"{video_label} stride {stride} {mode_label}", 30):
                    continue
                rate, clips = end_to_end(paths, models[main_name], device, stride, args.batch_size,
                                         amp="bf16", channels_last=True, **options)
                if options.get("colour") == "decoder" and options.get("raw_frames"):
                    ours[(video_label, stride)] = rate  # the reference mode, for the per-clip baseline below
                print(f"| {video_label} | {stride} | {mode_label} | {clips} | {rate:.1f} | "
                      f"{rate / best_rates[main_name]:.2f} |", flush=True)

    if args.all_modes:
        print(f"\nprecision default vs --exact: {main_name}, {synthetic_label}, {workers} decode workers, batch "
              f"{args.batch_size}, RGB in the workers, preprocessed on the device; default here: "
              f"{default.describe()}")
        print("| stride | precision | clips | clips/s | default / exact |")
        print("|---|---|---|---|---|", flush=True)
        for stride in (16, 1):
            if not budget.allows(f"stride {stride} default vs --exact", 90):
                continue
            fast, clips = end_to_end(synthetic, models[main_name], device, stride, args.batch_size, workers,
                                     default.amp, default.channels_last, colour="decoder")
            allowed = torch.backends.cudnn.allow_tf32
            torch.backends.cudnn.allow_tf32 = False  # as --exact runs
            try:
                exact, _ = end_to_end(synthetic, models[main_name], device, stride, args.batch_size, workers, None,
                                      False, colour="decoder")
            finally:
                torch.backends.cudnn.allow_tf32 = allowed
            print(f"| {stride} | default ({default.name}{' + channels_last' if default.channels_last else ''}) | "
                  f"{clips} | {fast:.1f} | {fast / exact:.2f}x |")
            print(f"| {stride} | --exact (fp32, TF32 off) | {clips} | {exact:.1f} | 1.00x |", flush=True)

    print(f"\nper-clip baseline (the original's approach: each clip seeks and decodes on its own), {workers} "
          f"DataLoader workers, {synthetic_label}, clips spread over all videos; ours = the reference mode above "
          "(RGB in the workers, preprocessed on the device, bf16 + channels_last)")
    print("| backbone | stride | baseline precision | clips | baseline clips/s | ours clips/s | speed-up |")
    print("|---|---|---|---|---|---|---|", flush=True)
    for name in args.backbones[:1]:
        for stride in (16, 1):
            our_rate = ours.get((synthetic_label, stride))
            clips = spread_clips(synthetic, frames, stride, args.baseline_clips)
            precisions = [("fp32", None, False), ("bf16 + channels_last", "bf16", True)]
            for precision, amp, channels_last in precisions[:2 if args.all_modes else 1]:
                if our_rate is None or not budget.allows(f"{name} stride {stride} {precision} baseline", 45):
                    continue
                base = baseline(clips, models[name], device, ClipGrid(16, 15.0, stride), args.batch_size,
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
