"""Errors meant for the user: the CLI prints them as one line and exits non-zero."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


class TspVideoError(Exception):
    """A problem with the user's input (file, argument, data) that we can explain in one line."""

    exit_code = 2  # what the CLI exits with: a usage error


class WriteFailure(TspVideoError):
    """An output could not be written (disk full, quota, read-only, no permission, I/O error).

    The message names the file and the cause in one line. A run failure, not a usage error: the CLI exits 1.
    """

    exit_code = 1


class VideoDecodeError(TspVideoError):
    """A video could not be opened or decoded; the message names the file and the cause."""


class TruncatedVideoError(VideoDecodeError):
    """The frames end clearly before the duration the file's header declares (cut short, partly downloaded).

    Raised after every decodable frame has been yielded, so a caller that accepts short files has them all.
    """

    def __init__(self, path: object, decoded_seconds: float, declared_seconds: float) -> None:
        self.decoded_seconds = decoded_seconds
        self.declared_seconds = declared_seconds
        super().__init__(f"{path}: decoded {decoded_seconds:.1f} s of the {declared_seconds:.1f} s the file declares "
                         "(truncated?)")


def lookup(registry: Mapping[str, T], name: str, what: str, see: str, cutoff: float = 0.4) -> T:
    """``registry[name]``, or an error naming ``what`` was unknown, close matches and where to look (``see``)."""
    if name not in registry:
        close = difflib.get_close_matches(name, registry, n=3, cutoff=cutoff)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise TspVideoError(f"unknown {what} {name!r}{hint} ({see})")
    return registry[name]
