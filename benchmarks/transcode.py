"""How much does ``tspvideo transcode`` speed up random clip reads (the training input)?

Writes a long synthetic 640x360 video with a long keyframe interval (like many downloaded videos),
transcodes it with the default settings (and with only the keyframe interval changed, to separate the
two effects), then reads random 16-frame clips at 15 fps (seek to the clip start, decode up to its end)
in one thread, as one data-loader worker does. Prints clips/s per worker for each file.

    python benchmarks/transcode.py [--seconds 150] [--clips 60] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from tspvideo.video.metadata import read_video_metadata
from tspvideo.video.transcode import TranscodeOptions, transcode_video

CLIP_FRAMES, CLIP_FPS = 16, 15


def make_source(path: Path, seconds: float, fps: int = 30, size=(640, 360), gop: int = 250) -> None:
    """Moving shapes over a drifting gradient with light noise; keyframe every ``gop`` frames."""
    width, height = size
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {"preset": "veryfast", "crf": "23", "x264-params": f"keyint={gop}:min-keyint={gop}"}
        for i in range(int(seconds * fps)):
            image = np.empty((height, width, 3), np.uint8)
            image[..., 0] = (xx + 2 * i) % 256
            image[..., 1] = (yy + i) % 256
            image[..., 2] = (xx + yy - 3 * i) % 256
            for k in range(4):  # four squares on circular paths
                cx = int(width / 2 + (width / 3) * np.cos(i / (20 + 7 * k) + k))
                cy = int(height / 2 + (height / 3) * np.sin(i / (15 + 5 * k) + k))
                image[max(0, cy - 30):cy + 30, max(0, cx - 30):cx + 30] = (60 * k, 255 - 60 * k, 128)
            image = np.clip(image + rng.integers(-8, 9, image.shape), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def read_clip(container, stream, start: float) -> list:
    """Frames of one clip: the j-th is the last frame at or before ``start + j / 15`` s."""
    targets = [start + j / CLIP_FPS for j in range(CLIP_FRAMES)]
    container.seek(int(start / stream.time_base), stream=stream, backward=True)
    clip, last = [], None
    for frame in container.decode(stream):
        t = float(frame.pts * stream.time_base)
        while len(clip) < CLIP_FRAMES and t > targets[len(clip)] + 1e-6:
            if last is None:  # the seek landed after the target: cannot happen with backward seek
                raise RuntimeError("seek overshoot")
            clip.append(last)
        if len(clip) == CLIP_FRAMES:
            break
        last = frame
    while len(clip) < CLIP_FRAMES:
        clip.append(last)
    # Only the selected frames are converted to RGB; frames between the keyframe and the clip are not.
    return [frame.to_ndarray(format="rgb24") for frame in clip]


def clips_per_second(path: Path, n_clips: int, seed: int = 0) -> float:
    """Random clip reads per second in one thread (decoder threading off, as in one loader worker)."""
    duration = read_video_metadata(path).duration
    rng = random.Random(seed)
    starts = [rng.uniform(0, duration - CLIP_FRAMES / CLIP_FPS - 0.1) for _ in range(n_clips)]
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        stream.codec_context.thread_count = 1
        read_clip(container, stream, starts[0])  # warm-up
        begin = time.perf_counter()
        for start in starts:
            clip = read_clip(container, stream, start)
            assert len(clip) == CLIP_FRAMES
        return n_clips / (time.perf_counter() - begin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=150.0, help="length of the synthetic video")
    parser.add_argument("--clips", type=int, default=60, help="random clips read per file")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the videos here (default: temp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        source = work / "source.mp4"
        begin = time.perf_counter()
        if not source.exists():
            make_source(source, args.seconds)
        print(f"source written in {time.perf_counter() - begin:.1f} s")
        variants = [("source (GOP 250)", source, None),
                    ("transcoded --gop 16, size kept", work / "gop16_360p.mp4",
                     TranscodeOptions(short_side=360, gop=16)),
                    ("transcoded defaults (--short-side 128 --gop 16)", work / "gop16_128p.mp4",
                     TranscodeOptions())]
        rows = []
        for name, path, options in variants:
            if options is not None and not path.exists():
                begin = time.perf_counter()
                transcode_video(source, path, options)
                print(f"{name}: transcoded in {time.perf_counter() - begin:.1f} s")
            info = read_video_metadata(path)
            rate = clips_per_second(path, args.clips)
            rows.append((name, f"{info.width}x{info.height}", f"{path.stat().st_size / 2**20:.1f}", rate))
        base = rows[0][3]
        print(f"\nrandom 16-frame clips at 15 fps, one thread, {args.seconds:.0f} s video, {args.clips} clips")
        print(f"| {'file':<48} | {'size':>8} | {'MiB':>6} | {'clips/s':>8} | {'speed-up':>8} |")
        print(f"|{'-' * 50}|{'-' * 10}|{'-' * 8}|{'-' * 10}|{'-' * 10}|")
        for name, size, mib, rate in rows:
            print(f"| {name:<48} | {size:>8} | {mib:>6} | {rate:>8.1f} | {rate / base:>7.1f}x |")


if __name__ == "__main__":
    main()
