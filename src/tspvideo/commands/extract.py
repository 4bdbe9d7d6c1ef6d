"""`tspvideo extract`: features of videos with a TSP/TAC encoder."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tspvideo.commands import add_command
from tspvideo.commands._model_args import (
    add_accept_short_arg,
    add_encoder_args,
    extract_options,
    load_chosen,
    report_extraction,
    resolve_options,
    weights_choice,
)


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


def shards(args: argparse.Namespace) -> dict[str, int]:
    """Shard id and count from the flags, else from torchrun's RANK/WORLD_SIZE, else one shard."""
    num_shards = args.num_shards if args.num_shards is not None else int(os.environ.get("WORLD_SIZE", 1))
    shard_id = args.shard_id if args.shard_id is not None else int(os.environ.get("RANK", 0))
    return {"shard_id": shard_id, "num_shards": num_shards}


def run(args: argparse.Namespace) -> int:
    """Extract features; returns 1 when some videos failed."""
    from tspvideo.extract.run import (
        check_clip_fits,
        check_file_writable,
        check_folder_writable,
        extract_dataset,
    )
    from tspvideo.features.folder import merge_to_h5
    from tspvideo.video.files import find_videos

    options = extract_options(args, **shards(args), overwrite=args.overwrite, accept_short=args.accept_short)
    options.check()  # bad shards before any file is read
    videos = find_videos(args.inputs)
    choice = weights_choice(args)
    planned = choice.planned_input(options.input_overrides)  # a bad grid fails before the weights load
    if planned is not None:
        check_clip_fits(videos, planned.grid)
    # Every output location before any long work (inputs first: bad inputs create nothing).
    if args.h5 and options.num_shards == 1:
        check_file_writable(args.h5)
    check_folder_writable(args.out)
    encoder = load_chosen(args, choice)
    grid = encoder.resolve_input(options.input_overrides).grid
    if planned is None or grid != planned.grid:
        check_clip_fits(videos, grid)
    options = resolve_options("extract", options)
    report = extract_dataset(videos, args.out, encoder, options)
    report_extraction("extract", report, Path(args.out), options.shard_id, options.num_shards)
    if args.h5:
        if options.num_shards > 1:
            print("extract: --h5 is skipped in a sharded run; rerun without sharding once all shards are done "
                  "(finished videos are skipped) to write it")
        else:
            count = merge_to_h5(args.out, [v.stem for v in videos], args.h5)
            print(f"extract: {count} videos in {args.h5}")
    return 1 if report.failed else 0
