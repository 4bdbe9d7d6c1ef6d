"""`tspvideo gvf`: global video features, from extracted features or straight from videos."""

from __future__ import annotations

import argparse
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
from tspvideo.core.choices import GVF_POOLS
from tspvideo.core.errors import TspVideoError
from tspvideo.train.recipes import GVF_ENCODER, RECIPES, recipe_names


def register(subparsers) -> None:
    """Add the ``gvf`` subcommand."""
    parser = add_command(
        subparsers, "gvf", "pool clip features into global video features (HDF5)",
        "Either pool existing features (tspvideo gvf FEATURES --out gvf.h5; a folder or an HDF5), or extract with an "
        f"initial encoder and pool in one go (tspvideo gvf --videos DIR_OR_LIST --out gvf.h5; the encoder "
        f"defaults to {GVF_ENCODER}, the one TSP's GVFs come from). One float32 (C,) dataset per video keyed by "
        "its stem; the file's attributes 'pool' and 'encoder' say how it was made. With --videos, the features "
        "folder resumes as `tspvideo extract` does: a video is skipped only when its features were made with the "
        "same settings from the same file.")
    parser.add_argument("feature_dir", nargs="?", metavar="FEATURES",
                        help="folder of <stem>.npy features, HDF5 file of [T, C] datasets, or a downloaded "
                             "released name")
    parser.add_argument("--videos", nargs="+", help="videos, folders or lists to extract from first")
    parser.add_argument("--features-out", help="where --videos features go (default: OUT without suffix + _features)")
    parser.add_argument("--out", required=True, help="output HDF5 file")
    parser.add_argument("--pool", choices=GVF_POOLS, default=None,
                        help="pooling over a video's clips (default: the --recipe's, else max)")
    parser.add_argument("--recipe", choices=[n for n in recipe_names() if RECIPES[n].gvf_encoder],
                        help="the `tspvideo train --recipe` this GVF is for: its encoder and pooling")
    parser.add_argument("--overwrite", action="store_true",
                        help="with --videos: redo videos whose features exist, even when the features folder "
                             "holds features of other settings")
    add_accept_short_arg(parser)
    before = {action.dest for action in parser._actions}
    add_encoder_args(parser)
    # Options that only mean something when extracting: pooling FEATURES must not take and then ignore them.
    extraction_only = {a.dest: (a.option_strings[0], a.default) for a in parser._actions
                       if a.dest not in before or a.dest in ("features_out", "overwrite", "accept_short")}
    parser.set_defaults(func=run, extraction_only=extraction_only)


def run(args: argparse.Namespace) -> int:
    """Write the GVF file; returns 1 when some videos failed to extract."""
    from tspvideo.extract.run import (
        check_clip_fits,
        check_file_writable,
        check_folder_writable,
        extract_dataset,
    )
    from tspvideo.features.gvf import write_gvf
    from tspvideo.video.files import find_videos

    out = Path(args.out)
    failed = 0
    recipe = RECIPES[args.recipe] if args.recipe else None
    if args.pool is None:
        args.pool = recipe.gvf_pool if recipe else "max"
    if args.videos and not (args.model or args.checkpoint or args.random_init):
        args.model = recipe.gvf_encoder if recipe else GVF_ENCODER
        print(f"gvf: encoder {args.model} (the one TSP's GVFs come from; --model to change)")
    if args.videos:
        if args.feature_dir:
            raise TspVideoError("give either FEATURE_DIR or --videos, not both")
        feature_dir = Path(args.features_out) if args.features_out else out.with_name(out.stem + "_features")
        videos = find_videos(args.videos)
        options = extract_options(args, overwrite=args.overwrite, accept_short=args.accept_short)
        options.check()  # a bad device or value before any file is read
        choice = weights_choice(args)
        planned = choice.planned_input(options.input_overrides)
        if planned is not None:
            check_clip_fits(videos, planned.grid)
        check_file_writable(out)  # every output location before the extraction
        check_folder_writable(feature_dir)
        encoder = load_chosen(args, choice)
        grid = encoder.resolve_input(options.input_overrides).grid
        if planned is None or grid != planned.grid:
            check_clip_fits(videos, grid)
        report = extract_dataset(videos, feature_dir, encoder, resolve_options("gvf", options))
        report_extraction("gvf", report, feature_dir)
        failed = len(report.failed)
        if failed:
            print(f"gvf: {failed} videos failed; pooled the others")
        stems = [v.stem for v in videos if str(v) not in report.failed]
    elif args.feature_dir:
        given = [flag for dest, (flag, default) in args.extraction_only.items() if getattr(args, dest) != default]
        if given:
            raise TspVideoError(f"{', '.join(given)}: for extracting with --videos; FEATURES are pooled as they "
                                "are (their own clip grid)")
        feature_dir, stems, encoder = Path(args.feature_dir), None, None
        check_file_writable(out)
    else:
        raise TspVideoError("give FEATURE_DIR or --videos")
    count = write_gvf(feature_dir, out, args.pool, stems, encoder=encoder and encoder.weights,
                      backbone=encoder and encoder.backbone)
    print(f"gvf: {count} videos -> {out} ({args.pool} pooling)")
    return 1 if failed else 0
