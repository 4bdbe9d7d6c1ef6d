"""``tspvideo synth``: write a synthetic untrimmed-video dataset (real h264 mp4 files + annotations).

Outputs in ``OUT_DIR`` (``--out OUT_DIR``, or positional as in earlier versions):
``videos/<video_id>.mp4``, ``annotations.json`` (ActivityNet style) and ``label_map.json``. In each
video a few coloured shapes drift over a noisy textured background; during an action instance one of
them moves with its class's motion pattern (see ``tspvideo.video.synthetic``), so telling actions from
background needs motion, not appearance.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tspvideo.commands import add_command, add_num_videos, add_renamed
from tspvideo.core.errors import TspVideoError
from tspvideo.video import synthetic

DESCRIPTION = (
    "Write OUT_DIR/videos/<video_id>.mp4 (h264), OUT_DIR/annotations.json (ActivityNet style) and "
    "OUT_DIR/label_map.json. Coloured shapes drift over a noisy textured background; during an action "
    "instance one of them moves with its class's motion pattern (class 0 horizontal oscillation, 1 vertical "
    "oscillation, 2 circle, 3 pulse, 4 zigzag, 5 figure eight, 6 bounce, 7 square path), so telling actions "
    "from background and classes apart needs motion, not appearance. Same seed, same dataset."
)


def _size(text: str) -> tuple[int, int]:
    try:
        return synthetic.parse_size(text)
    except TspVideoError as error:
        # argparse turns this into "argument --size: ..." and exit code 2
        raise argparse.ArgumentTypeError(str(error)) from None


def register(subparsers) -> None:
    """Add the ``synth`` subcommand."""
    defaults = synthetic.SyntheticConfig()
    p = add_command(subparsers, "synth", "write a synthetic untrimmed-video dataset (mp4 + annotations)",
                    description=DESCRIPTION)
    p.add_argument("--out", type=Path, default=None, metavar="OUT_DIR", help="output folder (required)")
    p.add_argument("out_dir", type=Path, nargs="?", default=None, metavar="OUT_DIR",
                   help="output folder, the older positional form of --out")
    add_num_videos(p, defaults.num_videos, "number of videos")
    add_renamed(p, "--num-classes", "--classes", type=int, default=defaults.num_classes,
                help=f"number of action classes (motion patterns), at most {len(synthetic.MOTION_PATTERNS)}")
    p.add_argument("--fps", type=float, default=defaults.fps,
                   help="frame rate; 29.97 / 23.976 / 59.94 mean the exact NTSC rates (N*1000/1001)")
    p.add_argument("--size", type=_size, default=f"{defaults.width}x{defaults.height}", metavar="WxH",
                   help="frame size, width and height even")
    p.add_argument("--seed", type=int, default=defaults.seed, help="random seed (same seed, same files)")
    p.add_argument("--min-duration", type=float, default=defaults.min_duration, help="shortest video, s")
    p.add_argument("--max-duration", type=float, default=defaults.max_duration, help="longest video, s")
    p.add_argument("--valid-fraction", type=float, default=defaults.valid_fraction,
                   help="fraction of videos in the validation subset (the rest is training)")
    p.add_argument("--min-instances", type=int, default=defaults.min_instances,
                   help="fewest action instances per video")
    p.add_argument("--max-instances", type=int, default=defaults.max_instances,
                   help="most action instances per video (fewer when the video is too short)")
    p.add_argument("--min-action", type=float, default=defaults.min_action, help="shortest action, s")
    p.add_argument("--max-action", type=float, default=defaults.max_action, help="longest action, s")
    p.add_argument("--objects", type=int, default=defaults.num_objects, help="moving objects per video")
    p.add_argument("--crf", type=int, default=defaults.crf, help="x264 constant rate factor (lower = better)")
    p.add_argument("--preset", default=defaults.preset, choices=synthetic.X264_PRESETS, help="x264 preset")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate the dataset and print a one-line summary."""
    if args.out is not None and args.out_dir is not None and args.out != args.out_dir:
        raise TspVideoError(f"two output folders given: --out {args.out} and {args.out_dir}; give one")
    out = args.out if args.out is not None else args.out_dir
    if out is None:
        raise TspVideoError("give the output folder: --out OUT_DIR")
    from tspvideo.core.fileio import check_folder_writable

    check_folder_writable(out)  # a file in the way stops here, with nothing made
    started = time.perf_counter()
    dataset = synthetic.generate_dataset(
        out, num_videos=args.num_videos, num_classes=args.num_classes, fps=args.fps, size=args.size,
        seed=args.seed, min_duration=args.min_duration, max_duration=args.max_duration,
        valid_fraction=args.valid_fraction, min_instances=args.min_instances,
        max_instances=args.max_instances, min_action=args.min_action, max_action=args.max_action,
        num_objects=args.objects, crf=args.crf, preset=args.preset, progress=not args.no_progress,
    )
    print(f"wrote {len(dataset.video_ids)} videos ({len(dataset.train_ids)} training, "
          f"{len(dataset.valid_ids)} validation, {len(dataset.label_names)} classes) to {dataset.root} "
          f"in {time.perf_counter() - started:.1f} s; annotations: {dataset.annotations_path}")
    return 0
