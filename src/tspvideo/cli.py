"""The ``tspvideo`` command: parses arguments and hands over to the library.

Each subcommand lives in ``tspvideo.commands.<name>`` and exposes ``register(subparsers)``, which adds
its parser and sets ``func`` to a callable ``(args) -> int`` (the exit code).
Exit codes: 0 success, 1 some inputs failed (listed in a failures file) or an output could not be written,
2 bad arguments or input, 130 interrupted (Ctrl-C).
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


def _leaf_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)subcommand parser that ``args`` came through, e.g. ``eval detection``'s."""
    while True:
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        name = getattr(args, subparsers[0].dest, None) if subparsers else None
        if name not in (subparsers[0].choices if subparsers else {}):
            return parser
        parser = subparsers[0].choices[name]


def _check_device(args: argparse.Namespace) -> None:
    """Every command with ``--device`` has it checked here, once, before it creates anything."""
    if getattr(args, "device", None) is not None:
        from tspvideo.core.devices import resolve_device  # imports torch: only for commands that use a device

        resolve_device(args.device)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the subcommand's usage, not the top-level one, so the user sees the options that exist
        _leaf_parser(parser, args).error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        _check_device(args)
        return int(args.func(args) or 0)
    except TspVideoError as error:
        print(f"tspvideo {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except OSError as error:  # a file the library did not word itself: still one line naming it and the cause
        from tspvideo.core.fileio import describe_os_error

        print(f"tspvideo {args.command}: error: "
              f"{describe_os_error(error.filename or '', error, action='use')}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"tspvideo {args.command}: interrupted; finished outputs are kept, rerun to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
