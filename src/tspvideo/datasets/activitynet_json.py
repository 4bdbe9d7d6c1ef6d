"""The one reader of ActivityNet-style annotation JSON, shared by every command that takes one.

Format (the ActivityNet challenge's, also written by ``tspvideo synth``)::

    {"database": {VIDEO_ID: {"subset": "validation", "duration": 120.5,
                             "annotations": [{"segment": [START, END], "label": "Class"}, ...]}}}

``annotations`` (the segment-table builders), ``eval``, ``export``, ``probe``, ``similarity`` and
``experiment`` all check a file with :func:`find_bad_annotations`, so an instance that one command
refuses is refused by all of them, never read as something else (a reversed segment as background, a
string segment as a traceback). Every bad entry is listed, not only the first, each with its video and
annotation index, in the JSON-path form ``database['v_abc']['annotations'][3]: segment end 4 < start 7.5``.

Checked for every selected video: the entry is an object; ``subset`` is present where the command needs
it; ``duration``, when given, is a non-negative number; ``annotations`` is a list; each annotation is an
object with ``segment`` = two finite numbers (JSON numbers, not text), end not before start, and a
``label`` that is a string (or an integer class id, read as its decimal text). Zero-length segments
pass here; each command decides what they mean.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tspvideo.core.errors import TspVideoError

JsonSource = dict | str | os.PathLike
MAX_LISTED = 50  # bad entries printed in one error; a longer list says how many more there are


@dataclass(frozen=True)
class BadAnnotation:
    """One bad entry: its video, the annotation index (None for the video entry itself) and the problem."""

    video: str
    index: int | None
    problem: str

    def __str__(self) -> str:
        where = f"database[{self.video!r}]" + ("" if self.index is None else f"['annotations'][{self.index}]")
        return f"{where}: {self.problem}"


class AnnotationError(TspVideoError):
    """An annotation file with bad entries; ``bad`` lists all of them."""

    def __init__(self, message: str, bad: list[BadAnnotation]):
        super().__init__(message)
        self.bad = bad


def load_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Read a JSON file; a missing file or a syntax error becomes a one-line :class:`TspVideoError`."""
    path = Path(path)
    if not path.is_file():
        raise TspVideoError(f"{what} {path} does not exist")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as error:
        raise TspVideoError(f"{what} {path} is not valid JSON: {error}") from error
    except RecursionError:  # Python's parser recurses per nesting level: thousands of [ or { exhaust it
        raise TspVideoError(f"{what} {path} is nested too deeply to be read as JSON") from None
    except (OSError, UnicodeDecodeError) as error:
        raise TspVideoError(f"{what} {path} could not be read: {error}") from error


def is_finite_number(value: Any) -> bool:
    """A real, finite number that fits a float; NumPy scalars are welcome (API callers build dicts from arrays),
    text and booleans are not (``"5"`` or ``true`` in a segment is a mistake, not a time)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool | np.bool_):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond any float (JSON allows 1 followed by 400 zeros)
        return False


def label_text(value: Any) -> str | None:
    """A label as text: strings as they are, integer class ids as their decimal text; None when neither."""
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_):
        return str(int(value))
    return None


def segment_problem(entry: Any) -> str | None:
    """What is wrong with an entry's ``segment`` ([start, end], finite, end >= start); None when fine."""
    if not isinstance(entry, dict):
        return f"expected an object with a 'segment', got {type(entry).__name__}"
    if "segment" not in entry:
        return "missing key 'segment'"
    seg = entry["segment"]
    if not isinstance(seg, list | tuple) or len(seg) != 2:
        return f"'segment' must be [start, end], got {seg!r}"
    start, end = seg
    if not (is_finite_number(start) and is_finite_number(end)):
        return f"segment {seg!r} must hold two finite numbers"
    if end < start:
        return f"segment end {end} < start {start}"
    return None


def top_level_mapping(obj: Any, key: str, source: str, values: str, example: str) -> dict[str, Any]:
    """``obj[key]``, an object mapping video ids to ``values``, or an error naming ``source`` and the format."""
    if not isinstance(obj, dict) or key not in obj:
        raise TspVideoError(f"{source}: missing top-level key '{key}' "
                            f"(expected the ActivityNet format {{\"{key}\": {{video_id: {example}}}}})")
    mapping = obj[key]
    if not isinstance(mapping, dict):
        raise TspVideoError(f"{source}: '{key}' must be an object mapping video ids to {values}")
    return mapping


def database_of(obj: Any, source: str) -> dict[str, Any]:
    """The ``database`` object of a loaded annotation JSON, or an error naming ``source``."""
    return top_level_mapping(obj, "database", source, "entries", "{...}")


def video_problems(video_id: str, info: Any, require_subset: bool = False) -> list[BadAnnotation]:
    """Every problem of one video entry and its annotations."""
    if not isinstance(info, dict):
        return [BadAnnotation(video_id, None, f"expected an object, got {type(info).__name__}")]
    bad = []
    if require_subset and "subset" not in info:
        bad.append(BadAnnotation(video_id, None, "missing key 'subset'"))
    duration = info.get("duration")
    if duration is not None and not (is_finite_number(duration) and duration >= 0):
        bad.append(BadAnnotation(video_id, None, f"'duration' must be a non-negative number, got {duration!r}"))
    if "annotations" not in info:
        return bad + [BadAnnotation(video_id, None, "missing key 'annotations'")]
    annotations = info["annotations"]
    if not isinstance(annotations, list):
        return bad + [BadAnnotation(video_id, None, "'annotations' must be a list")]
    for index, entry in enumerate(annotations):
        problem = segment_problem(entry)
        if problem is None:
            if "label" not in entry:
                problem = "missing key 'label'"
            elif label_text(entry["label"]) is None:
                problem = f"label must be a string (class name), got {entry['label']!r}"
        if problem is not None:
            bad.append(BadAnnotation(video_id, index, problem))
    return bad


def find_bad_annotations(database: dict[str, Any], subsets: set[str] | None = None,
                         require_subset: bool = False) -> list[BadAnnotation]:
    """Every bad entry of the videos whose subset is in ``subsets`` (None: every video)."""
    bad = []
    for video_id, info in database.items():
        if subsets is not None and isinstance(info, dict) and info.get("subset") not in subsets:
            continue
        bad += video_problems(video_id, info, require_subset)
    return bad


def bad_annotations_message(source: str, bad: list[BadAnnotation]) -> str:
    """``source: N bad annotation entries in M videos:`` then one line per entry (at most MAX_LISTED)."""
    videos = len({b.video for b in bad})
    lines = [f"{source}: {len(bad)} bad annotation entr{'y' if len(bad) == 1 else 'ies'} in {videos} "
             f"video{'' if videos == 1 else 's'}:"]
    lines += [f"  {b}" for b in bad[:MAX_LISTED]]
    if len(bad) > MAX_LISTED:
        lines.append(f"  ... and {len(bad) - MAX_LISTED} more")
    return "\n".join(lines)


def read_annotation_database(source: JsonSource, subsets: set[str] | None = None, require_subset: bool = False,
                             what: str = "annotation file") -> dict[str, Any]:
    """Load (from a path or a loaded dict) and check an ActivityNet-style JSON; return its ``database``.

    Raises :class:`AnnotationError` listing every bad entry of the selected ``subsets`` (None: all).
    """
    name = what if isinstance(source, dict) else f"{what} {source}"
    obj = source if isinstance(source, dict) else load_json(source, what)
    database = database_of(obj, name)
    bad = find_bad_annotations(database, subsets, require_subset)
    if bad:
        raise AnnotationError(bad_annotations_message(name, bad), bad)
    return database


def class_names(database: dict[str, dict[str, Any]], label_map: list[str] | None = None) -> list[str]:
    """Class names in class-id order: ``label_map`` when given, else the sorted names in the database.

    Sorted names are what OpenTAD's ``category_idx.txt`` holds; on THUMOS14 they put CliffDiving at
    id 4, which ActionFormer's THUMOS loader expects.
    """
    found = sorted({a["label"] for info in database.values() for a in info.get("annotations", [])})
    if label_map is None:
        return found
    missing = [name for name in found if name not in label_map]
    if missing:
        raise TspVideoError(f"label map lacks classes found in the annotations: {missing[:5]}")
    return list(label_map)
