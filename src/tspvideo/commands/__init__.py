"""Subcommands of the ``tspvideo`` CLI, one module each (see ``tspvideo.cli``)."""

import argparse
import sys


class DefaultOnceHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default once: appended as ``(default: X)`` unless the help text already
    says what the default is (e.g. "default: RANK under torchrun"); ``None`` (not set) is not shown."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        if "default" in help_text.lower() or action.default is None:
            return help_text
        return super()._get_help_string(action)


def add_command(subparsers, name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
    """Add a subcommand parser that shows defaults in ``--help``."""
    return subparsers.add_parser(
        name, help=help, description=description or help,
        formatter_class=DefaultOnceHelpFormatter,
    )


class _DeprecatedAlias(argparse.Action):
    """An old option spelling that still works and says which one replaces it."""

    def __init__(self, option_strings, dest, new_option: str = "", **kwargs):
        self.new_option = new_option
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: warning: {option_string} is deprecated; use {self.new_option}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_renamed(parser: argparse.ArgumentParser, option: str, old: str, **kwargs) -> None:
    """``option`` (with ``kwargs``) and its former spelling ``old``, hidden from ``--help``, which still works and
    says which option replaces it."""
    parser.add_argument(option, **kwargs)
    dest = kwargs.get("dest") or option.lstrip("-").replace("-", "_")
    parser.add_argument(old, type=kwargs.get("type"), dest=dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS,
                        action=_DeprecatedAlias, new_option=option)


def add_num_videos(parser: argparse.ArgumentParser, default: int, help: str) -> None:
    """``--num-videos N`` (a count; ``--videos`` always means video paths) and its deprecated spelling
    ``--videos N``."""
    add_renamed(parser, "--num-videos", "--videos", type=int, default=default, metavar="N", help=help)


# One definition of the runtime options every command shares; each command passes the default it
# measured best for its work where that differs (``None`` = decided from the device, said in the help).
DEVICE_HELP = "auto (this process's GPU when there is one, else the CPU), cpu, cuda or cuda:N"


def add_device(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--device``, default ``auto`` in every command."""
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)


def add_workers(parser: argparse.ArgumentParser | argparse._ArgumentGroup, default: int | None, what: str) -> None:
    """``--workers N``: processes that decode videos (0: in the main process)."""
    parser.add_argument("--workers", type=int, default=default, help=f"{what} (0: in the main process)")


def add_decode_threads(parser: argparse.ArgumentParser | argparse._ArgumentGroup, default: int, what: str) -> None:
    """``--decode-threads N``: FFmpeg threads of each decoder."""
    parser.add_argument("--decode-threads", type=int, default=default, help=f"FFmpeg threads {what}")
