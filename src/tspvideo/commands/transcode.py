"""``tspvideo transcode``: optional re-encode of a video folder for faster random clip reads.

Constant frame rate, short side ``--short-side`` pixels, a keyframe every ``--gop`` frames; names and
sub-folders are kept so segment tables still match. Resumable: existing outputs are skipped. Exit 1
when any input failed (listed in ``OUT_DIR/transcode_failures.csv``), else 0.
"""

from __future__ import annotations

import os
from pathlib import Path

from tspvideo.commands import add_command
from tspvideo.core.errors import TspVideoError
from tspvideo.core.grid import DEFAULT_SAMPLING, SAMPLING_RULES


def register(subparsers) -> None:
    """Add the ``transcode`` command."""
    p = add_command(subparsers, "transcode",
                    "re-encode videos to constant fps, small frames, short keyframe interval (optional)")
    p.add_argument("in_dir", type=Path, metavar="IN_DIR", help="folder of videos (searched recursively)")
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="output folder (same relative names)")
    p.add_argument("--fps", type=float, default=30.0, help="constant output frame rate")
    p.add_argument("--sampling", choices=SAMPLING_RULES, default=DEFAULT_SAMPLING,
                   help="which source frame each output frame shows: the rule clips are sampled by (ffmpeg-fps: "
                        "as FFmpeg's fps filter, the original's re-encode; timestamp: last frame at or before k/fps)")
    p.add_argument("--short-side", type=int, default=128, help="short side of the output frames, pixels")
    p.add_argument("--gop", type=int, default=16, help="keyframe interval, frames")
    p.add_argument("--crf", type=int, default=23, help="x264 quality (lower is better and larger)")
    p.add_argument("--preset", default="veryfast", help="x264 preset")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                   help="parallel processes (one video each)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    """Transcode the folder; print a summary."""
    from tspvideo.video.transcode import FAILURES_FILE, TranscodeOptions, transcode_folder

    if args.fps <= 0 or args.short_side < 2 or args.gop < 1 or args.workers < 1:
        raise TspVideoError("--fps, --short-side (>= 2), --gop and --workers must be positive")
    if not 0 <= args.crf <= 51:
        raise TspVideoError(f"--crf must be in [0, 51] (x264's range), got {args.crf}")
    options = TranscodeOptions(fps=args.fps, short_side=args.short_side, gop=args.gop, crf=args.crf,
                               preset=args.preset, sampling=args.sampling)
    report = transcode_folder(args.in_dir, args.out_dir, options, workers=args.workers,
                              progress=not args.no_progress)
    print(f"{args.out_dir}: {len(report.done)} transcoded, {len(report.skipped)} already there, "
          f"{len(report.failed)} failed")
    if report.failed:
        print(f"failures listed in {args.out_dir / FAILURES_FILE}")
        return 1
    return 0
