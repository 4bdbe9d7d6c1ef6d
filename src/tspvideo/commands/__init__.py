"""Subcommands of the ``tspvideo`` CLI, one module each (see ``tspvideo.cli``)."""

import argparse


def add_command(subparsers, name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
    """Add a subcommand parser that shows defaults in ``--help``."""
    return subparsers.add_parser(
        name, help=help, description=description or help,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
