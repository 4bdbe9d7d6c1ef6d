"""`tspvideo extract`: features of videos with a TSP/TAC encoder."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tspvideo.commands import add_command
from tspvideo.commands._model_args import (
    add_accept_short_arg,
    add_encoder_args,
    build_encoder,
    checkpoint_input,
    early_clip_settings,
    encoder_clip_settings,
    report_extraction,
    runtime_options,
)
from tspvideo.core.errors import TspVideoError
from tspvideo.extract.run import (
    check_clip_fits,
    check_file_writable,
    check_folder_writable,
    extract_dataset,
    find_videos,
)
from tspvideo.features.folder import merge_to_h5


def register(subparsers) -> None:
    """Add the ``extract`` subcommand."""
    parser = add_command(
        subparsers, "extract", "extract clip features of videos",
        "Extract one float32 [T, C] .npy per video (named after the video's stem) and a JSON sidecar with the "
        "time of each feature. A rerun skips a video only when its sidecar records the same settings (weights, "
        "grid, preprocessing, precision, decoder) and the same source file; a changed source file is extracted "
        "again; features of other settings in OUT stop the run (use --overwrite). Failures go to "
        "OUT/failures.csv. Exit code: 0 all done, 1 some videos failed, 2 bad arguments or input.")
    parser.add_argument("inputs", nargs="+", help="video files, folders (searched recursively) or .txt lists")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--h5", help="also write all features of the inputs into this HDF5 file")
    parser.add_argument("--overwrite", action="store_true",
                        help="redo videos whose outputs exist, even when OUT holds features of other settings")
    add_accept_short_arg(parser)
    parser.add_argument("--shard-id", type=int, default=None, help="this shard (default: RANK under torchrun)")
    parser.add_argument("--num-shards", type=int, default=None, help="shards (default: WORLD_SIZE under torchrun)")
    add_encoder_args(parser)
    parser.set_defaults(func=run)


def shard_from_env(args: argparse.Namespace) -> tuple[int, int]:
    """Shard id and count from the flags, else from torchrun's RANK/WORLD_SIZE, else (0, 1)."""
    num_shards = args.num_shards if args.num_shards is not None else int(os.environ.get("WORLD_SIZE", 1))
    shard_id = args.shard_id if args.shard_id is not None else int(os.environ.get("RANK", 0))
    if num_shards < 1:
        raise TspVideoError(f"--num-shards must be >= 1, got {num_shards}")
    if not 0 <= shard_id < num_shards:
        raise TspVideoError(f"--shard-id must be in 0..{num_shards - 1}, got {shard_id}")
    return shard_id, num_shards


def run(args: argparse.Namespace) -> int:
    """Extract features; returns 1 when some videos failed."""
    shard_id, num_shards = shard_from_env(args)
    videos = find_videos(args.inputs)
    grid = checkpoint_input(args)  # a tspvideo checkpoint's own clip grid and sizes unless told otherwise
    planned = early_clip_settings(args, grid)
    if planned is not None:
        check_clip_fits(videos, planned)
    # Every output location before any long work (inputs first: bad inputs create nothing).
    if args.h5 and num_shards == 1:
        check_file_writable(args.h5)
    check_folder_writable(args.out)
    model, description = build_encoder(args)
    description.update(grid)
    settings = encoder_clip_settings(args, model, description)
    if settings != planned:
        check_clip_fits(videos, settings)
    report = extract_dataset(videos, args.out, model, description, settings, shard_id=shard_id,
                             num_shards=num_shards, overwrite=args.overwrite, accept_short=args.accept_short,
                             **runtime_options(args, description))
    report_extraction("extract", report, Path(args.out), shard_id, num_shards)
    if args.h5:
        if num_shards > 1:
            print("extract: --h5 is skipped in a sharded run; rerun without sharding once all shards are done "
                  "(finished videos are skipped) to write it")
        else:
            count = merge_to_h5(args.out, [v.stem for v in videos], args.h5)
            print(f"extract: {count} videos in {args.h5}")
    return 1 if report.failed else 0
