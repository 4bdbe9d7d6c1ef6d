"""Errors meant for the user: the CLI prints them as one line and exits non-zero."""


class TspVideoError(Exception):
    """A problem with the user's input (file, argument, data) that we can explain in one line."""


class VideoDecodeError(TspVideoError):
    """A video could not be opened or decoded; the message names the file and the cause."""
