"""The segment table: one CSV row per foreground (action) or background segment of a video.

Columns are those of the original TSP implementation, so its published files load unchanged::

    video-name,t-start,t-end,action-label,video-duration,filename,fps,video-frames,temporal-region-label

Foreground rows have ``temporal-region-label = Action`` and a class name in ``action-label``; background
rows have ``No action`` and an empty ``action-label``. Times are seconds. Floats are written as Python's
shortest round-trip repr (what pandas writes too), so a table read and written again is byte-identical.

This module has no heavy imports: training code reads tables with :func:`read_segment_table`.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tspvideo.core.errors import TspVideoError
from tspvideo.core.fileio import atomic_path
from tspvideo.core.grid import DEFAULT_CLIP_LEN, DEFAULT_FPS

# How background segments are cut from the gaps between instances (tspvideo.datasets.annotations builds them).
CLIP_SECONDS = DEFAULT_CLIP_LEN / DEFAULT_FPS  # one clip of the paper's grid
# The original minimum background lengths: five clips for ActivityNet, one clip for THUMOS14.
MIN_BACKGROUND = {"activitynet": 5 * DEFAULT_CLIP_LEN / DEFAULT_FPS, "thumos14": CLIP_SECONDS, "generic": CLIP_SECONDS}
BACKGROUND_RULES = ("merged", "original")

SEGMENT_COLUMNS = [
    "video-name", "t-start", "t-end", "action-label", "video-duration",
    "filename", "fps", "video-frames", "temporal-region-label",
]
METADATA_COLUMNS = ["filename", "video-duration", "fps", "video-frames"]
ACTION = "Action"
NO_ACTION = "No action"
REGION_LABELS = [ACTION, NO_ACTION]

# Label maps shipped with the package (class order of the original implementation's files).
BUILTIN_LABEL_MAPS = {
    "activitynet": "activitynet_v1-3.json",
    "thumos14": "thumos14.json",
    "temporal_region": "temporal_region.json",
}


@dataclass(frozen=True)
class Segment:
    """One row of a segment table; ``action_label`` is None for background rows."""

    video_name: str
    t_start: float
    t_end: float
    action_label: str | None
    video_duration: float
    filename: str
    fps: float
    video_frames: int
    region_label: str

    @property
    def is_action(self) -> bool:
        """True for foreground (``Action``) rows."""
        return self.region_label == ACTION

    @property
    def duration(self) -> float:
        """Length of the segment in seconds."""
        return self.t_end - self.t_start


def format_float(value: float) -> str:
    """Shortest string that reads back as the same float (``30.0``, ``0.01``, ``123.42336739937599``)."""
    return repr(float(value))


def _row_error(path: Path, line: int, message: str) -> TspVideoError:
    return TspVideoError(f"{path}: line {line}: {message}")


def _parse_float(path: Path, line: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _row_error(path, line, f"column {column!r}: {text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise _row_error(path, line, f"column {column!r}: {text!r} is not a finite number")
    return value


def _parse_frames(path: Path, line: int, text: str) -> int:
    value = _parse_float(path, line, "video-frames", text)
    if value != int(value) or value < 0:
        raise _row_error(path, line, f"column 'video-frames': {text!r} is not a non-negative integer")
    return int(value)


def check_header(path: str | os.PathLike, fieldnames: list[str] | None, required: list[str]) -> None:
    """Raise a clear error naming the file when a CSV header lacks any of ``required``."""
    if not fieldnames:
        raise TspVideoError(f"{path}: empty file, expected a CSV header with columns {', '.join(required)}")
    missing = [c for c in required if c not in fieldnames]
    if missing:
        raise TspVideoError(f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(fieldnames)}")


@contextlib.contextmanager
def open_csv(path: str | os.PathLike, required: list[str]) -> Iterator[csv.DictReader]:
    """A CSV file as a :class:`csv.DictReader` whose header has every ``required`` column.

    Text is UTF-8 (a leading byte-order mark, as spreadsheets write, is skipped). A file that cannot be
    read, is not UTF-8 text or is not CSV (a NUL byte, a field beyond the csv module's size limit), here or
    while the caller reads its rows, is a :class:`TspVideoError` naming the file and the line.
    """
    reader = None
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            check_header(path, reader.fieldnames, required)
            yield reader
    except UnicodeDecodeError as error:
        where = f" near line {reader.line_num + 1}" if reader is not None else ""
        raise TspVideoError(f"{path}: not UTF-8 text{where} (byte {error.object[error.start]:#04x}: "
                            f"{error.reason})") from None
    except csv.Error as error:
        where = f"line {reader.line_num}: " if reader is not None else ""
        raise TspVideoError(f"{path}: {where}not a readable CSV row ({error})") from None
    except OSError as error:
        raise TspVideoError(f"{path}: cannot read: {error.strerror or error}") from None


def read_segment_table(path: str | os.PathLike) -> list[Segment]:
    """Read and validate a segment table; errors name the file and the line.

    Extra columns are ignored. Each row must have numbers in the time, fps and frame columns,
    ``t-end >= t-start``, a region label ``Action`` or ``No action`` and, for ``Action`` rows, a class name.
    Zero-length rows (``t-end == t-start``) are returned as they are: the original implementation's
    published tables have a few (ActivityNet train 9, valid 3), and the training dataset drops them,
    with every other segment too short for a clip, and says how many.
    """
    path = Path(path)
    if not path.is_file():
        raise TspVideoError(f"{path}: segment table not found")
    segments = []
    with open_csv(path, SEGMENT_COLUMNS) as reader:
        for row in reader:
            line = reader.line_num
            if None in row.values() or None in row:
                raise _row_error(path, line, "wrong number of fields")
            region = row["temporal-region-label"].strip()
            if region not in REGION_LABELS:
                raise _row_error(path, line, f"temporal-region-label {region!r} is not 'Action' or 'No action'")
            label = row["action-label"].strip() or None
            if region == ACTION and label is None:
                raise _row_error(path, line, "an Action row needs an action-label")
            t_start = _parse_float(path, line, "t-start", row["t-start"])
            t_end = _parse_float(path, line, "t-end", row["t-end"])
            if t_end < t_start:
                raise _row_error(path, line, f"t-end {t_end} is before t-start {t_start} (reversed segment)")
            name = row["video-name"].strip()
            filename = row["filename"].strip()
            if not name or not filename:
                raise _row_error(path, line, "video-name and filename must not be empty")
            segments.append(Segment(
                video_name=name,
                t_start=t_start,
                t_end=t_end,
                action_label=label if region == ACTION else None,
                video_duration=_parse_float(path, line, "video-duration", row["video-duration"]),
                filename=filename,
                fps=_parse_float(path, line, "fps", row["fps"]),
                video_frames=_parse_frames(path, line, row["video-frames"]),
                region_label=region,
            ))
    return segments


def segment_to_row(segment: Segment) -> list[str]:
    """The CSV fields of one segment, in :data:`SEGMENT_COLUMNS` order."""
    return [
        segment.video_name,
        format_float(segment.t_start),
        format_float(segment.t_end),
        segment.action_label or "",
        format_float(segment.video_duration),
        segment.filename,
        format_float(segment.fps),
        str(int(segment.video_frames)),
        segment.region_label,
    ]


def write_segment_table(segments: Iterable[Segment], path: str | os.PathLike) -> None:
    """Write segments as a CSV segment table, atomically, rows in the given order."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(SEGMENT_COLUMNS)
        for segment in segments:
            writer.writerow(segment_to_row(segment))


def read_label_map(path_or_name: str | os.PathLike) -> list[str]:
    """Read a label map (JSON list of class names; index = class id).

    ``path_or_name`` is a file path or the name of a built-in map: ``activitynet``, ``thumos14``,
    ``temporal_region``.
    """
    if str(path_or_name) in BUILTIN_LABEL_MAPS:
        resource = resources.files("tspvideo.datasets").joinpath("label_maps", BUILTIN_LABEL_MAPS[str(path_or_name)])
        return json.loads(resource.read_text(encoding="utf-8"))
    path = Path(path_or_name)
    if not path.is_file():
        raise TspVideoError(f"{path}: label map not found (give a JSON file or one of "
                            f"{', '.join(BUILTIN_LABEL_MAPS)})")
    try:
        names = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise TspVideoError(f"{path}: not valid JSON: {error}") from None
    except (UnicodeDecodeError, RecursionError) as error:
        raise TspVideoError(f"{path}: not a JSON text file ({type(error).__name__})") from None
    except OSError as error:
        raise TspVideoError(f"{path}: cannot read: {error.strerror or error}") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise TspVideoError(f"{path}: a label map must be a JSON list of class names")
    if len(set(names)) != len(names):
        raise TspVideoError(f"{path}: the label map lists a class name twice")
    return names
