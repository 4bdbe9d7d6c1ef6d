"""Which files are videos: by extension, visible regular files only (no decoder needed to tell)."""

from __future__ import annotations

from pathlib import Path

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp")


def is_video_file(path: Path) -> bool:
    """Whether a folder entry counts as a video: a visible regular file with a video extension."""
    return path.suffix.lower() in VIDEO_EXTENSIONS and not path.name.startswith(".") and path.is_file()
