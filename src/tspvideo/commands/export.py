"""``tspvideo export``: write extracted features in the layout a downstream localizer reads."""

from __future__ import annotations

import json
from pathlib import Path

from tspvideo.commands import add_command
from tspvideo.commands._feature_args import SOURCE_HELP, add_grid_args, grid_from_args
from tspvideo.core.errors import TspVideoError
from tspvideo.localization.export import FORMATS


def register(subparsers) -> None:
    """Add the ``export`` subcommand."""
    parser = add_command(
        subparsers, "export", "convert features (folder or HDF5) for ActionFormer, TriDet, OpenTAD, G-TAD, BMN or PDVC",
        description="Write the features of FEATURES (and, with --annotations, the annotation files) in "
                    "exactly the layout the chosen localizer's data loader reads; print the values to put "
                    "into its config (also written to README_export.txt and export_info.json).",
    )
    parser.add_argument("feature_dir", metavar="FEATURES", help=SOURCE_HELP)
    parser.add_argument("--format", required=True, choices=FORMATS, help="the consumer")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--annotations", default=None,
                        help="ActivityNet-style JSON ({'database': {id: {subset, duration, annotations}}})")
    parser.add_argument("--prefix", default=None,
                        help="prepended to names (e.g. v_ for ActivityNet ids); default '' except v_ for "
                             "gtad, bmn and pdvc")
    parser.add_argument("--temporal-size", type=int, default=100,
                        help="fixed temporal length for gtad and bmn (ignored by the others)")
    parser.add_argument("--train-subset", action="append", default=None, metavar="SUBSET",
                        help="subset the localizer trains on (repeatable; default: training); for actionformer, "
                             "tridet, gtad and bmn its videos without instances are left out of the annotation "
                             "files, which those localizers' training cannot read; needs --annotations")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into an --out that already holds files (an earlier export): files of the same "
                             "name are replaced, the others are listed")
    parser.add_argument("--label-map", default=None,
                        help="JSON list of class names in class-id order (default: sorted names)")
    add_grid_args(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    """Export; 0 on success, 1 when some feature files failed (listed in failures.txt)."""
    from tspvideo.localization.export import README_FILE, export_features

    label_map = None
    if args.label_map:
        try:
            label_map = json.loads(Path(args.label_map).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise TspVideoError(f"{args.label_map}: cannot read label map ({error})") from error
        if not isinstance(label_map, list):
            raise TspVideoError(f"{args.label_map}: a label map is a JSON list of class names")
    result = export_features(args.feature_dir, args.format, args.out, annotations=args.annotations,
                             prefix=args.prefix, temporal_size=args.temporal_size, label_map=label_map,
                             grid=grid_from_args(args), train_subsets=args.train_subset, overwrite=args.overwrite)
    print((Path(result.out_dir) / README_FILE).read_text(encoding="utf-8"), end="")
    return 1 if result.failures else 0
