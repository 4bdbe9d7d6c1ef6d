"""A folder of realistic training videos for the input-speed measurements: h264 as downloaded videos are.

Videos as many real datasets hold them (ActivityNet's are 1-5 minutes of 360p-720p h264, 30 or 29.97 fps,
keyframes hundreds of frames apart): each *kind* is a frame size and a frame rate, and each video is the
project's synthetic untrimmed video (``tspvideo.video.synthetic``: textured noisy background, objects that
drift, actions that are motion patterns) encoded with libx264 at a fixed keyframe interval, with CABAC,
B-frames and deblocking (x264's ``veryfast`` preset, not the test videos' ``ultrafast``). Writes:

    OUT/videos/<kind>_<n>.mp4      e.g. 360p30_000.mp4, 720p2997_001.mp4
    OUT/annotations.json            ActivityNet-style (subset, duration, fps, resolution, instances)
    OUT/label_map.json              the class names
    OUT/train.csv, OUT/valid.csv    segment tables (foreground + background), as `tspvideo annotations` makes

    python benchmarks/make_videos.py OUT                                  # 2 videos of each kind, 1-5 minutes
    python benchmarks/make_videos.py OUT --kinds 640x360@30 1280x720@30:2 --videos 4 --min-seconds 60 --max-seconds 60
    python benchmarks/make_videos.py OUT --videos 1 --min-seconds 4 --max-seconds 5 --kinds 96x64@30   # a toy

Videos already written are kept (rerun to finish an interrupted run); every file is a deterministic function
of the arguments. Rendering is numpy on the CPU: about 30 frames/s of 640x360 and 12 of 1280x720 per process
(2-core machine), so ``--workers`` processes render videos side by side.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path

from tspvideo.core.fileio import save_json_atomic
from tspvideo.datasets import annotations as ann
from tspvideo.datasets.segments import write_segment_table
from tspvideo.video.synthetic import (
    ANNOTATION_VERSION,
    SyntheticConfig,
    VideoPlan,
    encode_video,
    fps_to_fraction,
    label_names,
    parse_size,
    plan_dataset,
)

DEFAULT_KINDS = ("640x360@30", "640x360@29.97", "1280x720@30", "1280x720@29.97")
SPLITS = {"training": "train", "validation": "valid"}


@dataclasses.dataclass(frozen=True)
class Kind:
    """One frame size and frame rate of the folder."""

    width: int
    height: int
    fps: float
    count: int | None = None  # videos of this kind (None: --videos)

    @classmethod
    def parse(cls, text: str) -> Kind:
        """``WIDTHxHEIGHT@FPS[:COUNT]`` (e.g. ``640x360@29.97`` or ``1280x720@30:2``)."""
        text, _, count = text.partition(":")
        size, _, fps = text.partition("@")
        width, height = parse_size(size)
        return cls(width, height, float(fps or 30), int(count) if count else None)

    @property
    def tag(self) -> str:
        """Short name in file names: ``360p30``, ``720p2997``."""
        rate = fps_to_fraction(self.fps)
        fps = f"{float(rate):g}".replace(".", "") if rate.denominator == 1 else f"{float(rate):.2f}".replace(".", "")
        return f"{self.height}p{fps}"


def plan_kind(kind: Kind, index: int, args: argparse.Namespace) -> tuple[list[VideoPlan], list[str]]:
    """The plans (renamed ``<tag>_<n>``) and subsets of one kind's videos; each kind has its own seed."""
    config = SyntheticConfig(num_videos=kind.count or args.videos, num_classes=args.classes, fps=kind.fps,
                             width=kind.width, height=kind.height, seed=args.seed + 1000 * index,
                             min_duration=args.min_seconds, max_duration=args.max_seconds,
                             max_instances=args.max_instances, max_action=args.max_action,
                             keyframe_interval=args.gop, crf=args.crf, preset=args.preset)
    plans, subsets = plan_dataset(config)
    renamed = [dataclasses.replace(plan, video_id=f"{kind.tag}_{i:03d}") for i, plan in enumerate(plans)]
    return renamed, subsets


def _encode(plan: VideoPlan, path: Path, crf: int, preset: str, gop: int) -> float:
    started = time.perf_counter()
    encode_video(plan, path, crf=crf, preset=preset, keyframe_interval=gop)
    return time.perf_counter() - started


def write_tables(out: Path, database: dict, classes: int) -> None:
    """annotations.json, label_map.json and the train / valid segment tables, as ``prepare_dataset`` makes them."""
    save_json_atomic(out / "label_map.json", label_names(classes))
    save_json_atomic(out / "annotations.json", {"version": ANNOTATION_VERSION, "database": database})
    videos, problems = ann.read_activitynet_style_json(out / "annotations.json", SPLITS)
    metadata, metadata_problems = ann.metadata_from_videos(videos, [out / "videos"], workers=2, progress=False)
    result = ann.build_segment_tables(videos, metadata)
    fatal = [p for p in problems + metadata_problems + result.problems if p.fatal]
    if fatal:
        raise SystemExit(f"annotations: {fatal[0].video}: {fatal[0].detail}")
    for split, table in result.tables.items():
        write_segment_table(table, out / f"{split}.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--kinds", nargs="+", default=list(DEFAULT_KINDS),
                        help="WIDTHxHEIGHT@FPS[:COUNT] of each kind (COUNT: its videos, default --videos)")
    parser.add_argument("--videos", type=int, default=2, help="videos of each kind")
    parser.add_argument("--min-seconds", type=float, default=60.0)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument("--gop", type=int, default=250, help="keyframe interval in frames")
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--max-instances", type=int, default=4, help="action instances per video, at most")
    parser.add_argument("--max-action", type=float, default=20.0, help="longest action instance, seconds")
    parser.add_argument("--crf", type=int, default=23)
    parser.add_argument("--preset", default="veryfast", help="x264 preset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="videos rendered at once")
    args = parser.parse_args()
    kinds = [Kind.parse(text) for text in args.kinds]
    if min(kind.count or args.videos for kind in kinds) < 2:
        parser.error("each kind needs at least 2 videos: one for training, one for validation")
    videos = args.out / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    database, jobs = {}, []
    for index, kind in enumerate(kinds):
        plans, subsets = plan_kind(kind, index, args)
        names = label_names(args.classes)
        for plan, subset in zip(plans, subsets, strict=True):
            database[plan.video_id] = {
                "subset": subset, "duration": round(plan.duration, 6), "fps": float(plan.rate),
                "resolution": f"{plan.width}x{plan.height}",
                "annotations": [{"segment": [i.start, i.end], "label": names[i.label_id]} for i in plan.instances]}
            path = videos / f"{plan.video_id}.mp4"
            if not path.exists():
                jobs.append((plan, path))
    jobs.sort(key=lambda job: -job[0].num_frames * job[0].width * job[0].height)  # the longest start first
    frames = sum(plan.num_frames for plan, _ in jobs)
    print(f"{len(database)} videos ({len(jobs)} to write, {frames} frames) of {', '.join(args.kinds)}, "
          f"keyframe every {args.gop} frames, x264 {args.preset} crf {args.crf}, {args.workers} process(es)",
          flush=True)
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        futures = [pool.submit(_encode, plan, path, args.crf, args.preset, args.gop) for plan, path in jobs]
        for (plan, path), future in zip(jobs, futures, strict=True):
            seconds = future.result()
            print(f"  {path.name}: {plan.duration:.0f} s, {plan.width}x{plan.height} at "
                  f"{float(Fraction(plan.rate)):.2f} fps, written in {seconds:.0f} s", flush=True)
    write_tables(args.out, database, args.classes)
    total = sum(entry["duration"] for entry in database.values())
    print(f"done in {time.perf_counter() - started:.0f} s: {len(database)} videos, {total / 60:.1f} minutes, "
          f"{sum(p.stat().st_size for p in videos.glob('*.mp4')) / 2**20:.1f} MiB in {videos}")


if __name__ == "__main__":
    main()
