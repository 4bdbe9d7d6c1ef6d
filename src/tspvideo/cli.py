"""The ``tspvideo`` command: parses arguments and hands over to the library.

Each subcommand lives in ``tspvideo.commands.<name>`` and exposes ``register(subparsers)``, which adds
its parser and sets ``func`` to a callable ``(args) -> int`` (the exit code).
Exit codes: 0 success, 1 some inputs failed (listed in a failures file), 2 bad arguments or input.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tspvideo import __version__
from tspvideo.core.errors import TspVideoError

# Order here is the order in `tspvideo --help`.
COMMAND_MODULES = [
    "synth",
    "extract",
    "gvf",
    "train",
    "evaluate",
    "demo",
    "models",
    "features",
    "export",
    "probe",
    "annotations",
    "transcode",
    "eval",
    "similarity",
    "experiment",
]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="tspvideo",
        description="Temporally-Sensitive Pretraining (TSP) of video encoders: extract, train, evaluate.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tspvideo {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"tspvideo.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except TspVideoError as error:
        print(f"tspvideo {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code  # 2 for a usage error, 1 for an output that could not be written
    except KeyboardInterrupt:
        print(f"tspvideo {args.command}: interrupted; finished outputs are kept, rerun to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
