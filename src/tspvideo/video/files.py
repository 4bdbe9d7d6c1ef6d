"""Which files are videos (by extension, visible regular files only: no decoder needed to tell), and finding
them in folders and lists."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tspvideo.core.errors import TspVideoError

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp")


def is_video_file(path: Path) -> bool:
    """Whether a folder entry counts as a video: a visible regular file with a video extension."""
    return path.suffix.lower() in VIDEO_EXTENSIONS and not path.name.startswith(".") and path.is_file()


def videos_under(folder: str | os.PathLike) -> list[Path]:
    """Video files under ``folder`` (recursively, hidden files skipped), sorted."""
    return sorted(p for p in Path(folder).rglob("*") if is_video_file(p))


def find_videos(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Expand files, folders (recursively, by video extension) and ``.txt`` lists into video paths.

    Two videos with the same stem would write the same feature file, and an input that does not exist
    at all is most likely mistyped: both are errors, raised before any work starts (and before any
    output is created). Entries of a list that do not exist fail one by one during the work, as a
    dataset's list may name a few videos that could not be downloaded.
    """
    videos: list[Path] = []
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise TspVideoError(f"{path}: no such file or folder")
        if path.is_dir():
            videos += videos_under(path)
        elif path.suffix.lower() in (".txt", ".lst"):
            if not path.is_file():
                raise TspVideoError(f"video list not found: {path}")
            base = path.parent
            for line in path.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    videos.append(Path(line) if Path(line).is_absolute() else base / line)
        else:
            videos.append(path)
    by_stem: dict[str, Path] = {}
    for video in videos:
        if video.stem in by_stem and by_stem[video.stem] != video:
            raise TspVideoError(f"two inputs share the name {video.stem!r} ({by_stem[video.stem]} and {video}); "
                                "their features would overwrite each other: rename one or extract them separately")
        by_stem[video.stem] = video
    if not videos:
        raise TspVideoError(f"no videos found in {', '.join(map(str, inputs))}")
    return list(by_stem.values())
