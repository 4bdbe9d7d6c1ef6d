"""Ground-truth annotations -> segment tables (foreground + background), and the segment-table check.

Readers turn each dataset's annotation format into :class:`VideoAnnotation` objects; video metadata
comes from probing the files or from a metadata CSV (:func:`read_metadata_csv`);
:func:`build_segment_tables` joins both and adds the background segments; :func:`check_segment_table`
validates a table someone wrote by hand.

Background rules (see ``docs/datasets.md``):

``merged`` (default)
    The ground-truth instances of a video (clipped to the video, THUMOS14 ``Ambiguous`` parts included)
    are merged where they overlap or touch; background segments are the gaps between the merged spans
    and the video ends. No background segment ever overlaps an action.
``original``
    What the original implementation's published files contain: instances sorted by start (ties keep
    annotation order), a candidate gap from each instance's end to the next instance's start, plus
    ``[0, first start]`` and ``[last end, video end]``, without merging. Foreground rows keep their raw
    times, even past the video end; zero-length instances and instances that start after the video's end
    are kept as well (rows the published tables have; training drops them as too short), and gaps next to
    them are not clipped to the video. When one instance lies inside another, the gap after the inner one
    starts inside the outer one, so that background overlaps an action; otherwise both rules agree.

Either rule keeps gaps of at least ``min_background`` seconds.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tspvideo.core.errors import TspVideoError
from tspvideo.core.fileio import atomic_path
from tspvideo.datasets.activitynet_json import database_of, is_finite_number, label_text, load_json, video_problems
from tspvideo.datasets.segments import (
    ACTION,
    BACKGROUND_RULES,
    CLIP_SECONDS,
    METADATA_COLUMNS,
    NO_ACTION,
    REGION_LABELS,
    SEGMENT_COLUMNS,
    Segment,
    format_float,
    open_csv,
)
from tspvideo.video.files import VIDEO_EXTENSIONS, is_video_file

ACTIVITYNET_SUBSETS = {"training": "train", "validation": "valid"}
THUMOS14_SPLITS = {"val": "train", "test": "test"}  # the paper trains on THUMOS14 validation
THUMOS14_AMBIGUOUS = "Ambiguous"


@dataclass(frozen=True)
class Instance:
    """One ground-truth action instance, times in seconds."""

    t_start: float
    t_end: float
    label: str


@dataclass
class VideoAnnotation:
    """The annotations of one video.

    ``video_name`` is the name written in the ``video-name`` column; ``file_keys`` are the file names
    (without extension) that may hold the video, tried in order (ActivityNet: ``v_<id>`` then ``<id>``).
    ``ambiguous`` spans are neither action nor background (THUMOS14's ``Ambiguous`` class).
    """

    video_name: str
    split: str
    instances: list[Instance] = field(default_factory=list)
    ambiguous: list[tuple[float, float]] = field(default_factory=list)
    file_keys: tuple[str, ...] = ()
    annotated_duration: float | None = None


@dataclass(frozen=True)
class VideoMeta:
    """One row of a metadata CSV (``filename,video-duration,fps,video-frames``)."""

    filename: str
    duration: float
    fps: float
    frames: int


@dataclass(frozen=True)
class Problem:
    """Something wrong in the input; ``fatal`` problems make a check fail."""

    kind: str
    video: str
    detail: str
    fatal: bool = False
    line: int | None = None


@dataclass
class BuildResult:
    """Segment tables and metadata per output split, and the problems met on the way."""

    tables: dict[str, list[Segment]]
    metadata: dict[str, list[VideoMeta]]
    problems: list[Problem]


# ----------------------------------------------------------------------------------------------------
# Background rules


def background_merged(
    spans: Iterable[tuple[float, float]], duration: float, min_length: float
) -> list[tuple[float, float]]:
    """Gaps of ``[0, duration]`` not covered by any span, at least ``min_length`` long."""
    clipped = sorted((max(0.0, s), min(duration, e)) for s, e in spans)
    gaps = []
    covered_until = 0.0
    for start, end in clipped:
        if end <= start:
            continue
        if start > covered_until:
            gaps.append((covered_until, start))
        covered_until = max(covered_until, end)
    if duration > covered_until:
        gaps.append((covered_until, duration))
    return [(s, e) for s, e in gaps if e - s >= min_length]


def background_original(
    spans: Sequence[tuple[float, float]], duration: float, min_length: float
) -> list[tuple[float, float]]:
    """The original implementation's gaps: consecutive instances by start, no merging (see module doc)."""
    ordered = sorted(spans, key=lambda span: span[0])  # stable: ties keep annotation order
    if not ordered:
        candidates = [(0.0, duration)]
    else:
        candidates = [(0.0, ordered[0][0])]
        candidates += [(ordered[i][1], ordered[i + 1][0]) for i in range(len(ordered) - 1)]
        candidates.append((ordered[-1][1], duration))
    return [(s, e) for s, e in candidates if e - s >= min_length]


# ----------------------------------------------------------------------------------------------------
# Readers


def video_key(filename: str) -> str:
    """A video's file name without folder and video extension (``v_abc.mp4`` -> ``v_abc``)."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    if dot and ("." + ext).lower() in VIDEO_EXTENSIONS:
        return stem
    return name


def index_video_dirs(video_dirs: Iterable[str | os.PathLike]) -> dict[str, Path]:
    """Map :func:`video_key` -> path for every video file under the folders (recursively).

    When two files share a key the first found is kept (folders in the given order, sorted within).
    """
    index: dict[str, Path] = {}
    for folder in video_dirs:
        folder = Path(folder)
        if not folder.is_dir():
            raise TspVideoError(f"{folder}: video folder not found")
        for path in sorted(folder.rglob("*")):
            if is_video_file(path):
                index.setdefault(video_key(path.name), path)
    return index


def read_metadata_csv(paths: Iterable[str | os.PathLike]) -> dict[str, VideoMeta]:
    """Read metadata CSVs in the original format; keys are :func:`video_key` of the file name.

    Order is kept: the original segment tables list videos in their metadata file's order.
    """
    metadata: dict[str, VideoMeta] = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise TspVideoError(f"{path}: metadata CSV not found")
        with open_csv(path, list(METADATA_COLUMNS)) as reader:
            for row in reader:
                if None in row or None in row.values():
                    raise TspVideoError(f"{path}: line {reader.line_num}: wrong number of fields")
                try:
                    meta = VideoMeta(
                        filename=row["filename"].strip(),
                        duration=float(row["video-duration"]),
                        fps=float(row["fps"]),
                        frames=int(float(row["video-frames"])),
                    )
                except (TypeError, ValueError, OverflowError):  # OverflowError: an infinite frame count
                    raise TspVideoError(f"{path}: line {reader.line_num}: cannot read {dict(row)}") from None
                if not meta.filename or not _positive_finite(meta.duration) or not _positive_finite(meta.fps):
                    raise TspVideoError(f"{path}: line {reader.line_num}: empty filename, or duration/fps not a "
                                        "positive finite number")
                metadata[video_key(meta.filename)] = meta
    return metadata


def _positive_finite(value: float) -> bool:
    return 0 < value < math.inf


def write_metadata_csv(rows: Iterable[VideoMeta], path: str | os.PathLike) -> None:
    """Write a metadata CSV (``filename,video-duration,fps,video-frames``) atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(METADATA_COLUMNS)
        for meta in rows:
            writer.writerow([meta.filename, format_float(meta.duration), format_float(meta.fps), meta.frames])


def parse_subset_map(text: str | None) -> dict[str, str] | None:
    """``"training=train,validation=valid"`` -> dict; None or empty -> None (keep subset names)."""
    if not text:
        return None
    mapping = {}
    for item in text.split(","):
        if not item.strip():
            continue
        source, sep, target = item.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise TspVideoError(f"--subset-map: {item!r} is not SUBSET=SPLIT")
        if not re.fullmatch(r"[\w.-]+", target.strip()):
            raise TspVideoError(f"--subset-map: split name {target.strip()!r} must be letters, digits, _ . -")
        mapping[source.strip()] = target.strip()
    return mapping


def read_activitynet_style_json(
    path: str | os.PathLike,
    subset_map: dict[str, str] | None = None,
    file_prefixes: Sequence[str] = ("v_", ""),
    ambiguous_label: str | None = None,
) -> tuple[list[VideoAnnotation], list[Problem]]:
    """Read an ActivityNet-style JSON (``database -> id -> subset, duration, annotations``).

    Videos whose subset is not in ``subset_map`` are skipped (``None`` keeps every subset under its
    own name). Each video may be stored as ``<prefix><id>.<ext>`` for each prefix in ``file_prefixes``.
    Instances labelled ``ambiguous_label`` become ambiguous spans. The file is checked like every
    command checks one (:mod:`tspvideo.datasets.activitynet_json`); each bad entry of a selected video
    (reversed or malformed segment, missing label...) is a fatal ``bad-instance`` problem naming the
    video and the annotation index, and that instance is not read.
    """
    path = Path(path)
    database = database_of(load_json(path, "annotation file"), f"annotation file {path}")
    videos, problems = [], []
    for video_id, entry in database.items():
        split = None
        if isinstance(entry, dict):
            subset = str(entry.get("subset", ""))
            split = subset if subset_map is None else subset_map.get(subset)
            if split is None:
                continue  # a subset not asked for (e.g. ActivityNet's hidden test set) is not read
        bad = video_problems(video_id, entry)
        problems += [Problem("bad-instance" if b.index is not None else "bad-entry", video_id, str(b), fatal=True)
                     for b in bad]
        if split is None:
            continue
        duration = entry.get("duration")
        video = VideoAnnotation(
            video_name=video_id,
            split=split,
            file_keys=tuple(dict.fromkeys(f"{prefix}{video_id}" for prefix in file_prefixes)),
            annotated_duration=duration if is_finite_number(duration) else None,
        )
        bad_indices = {b.index for b in bad}
        annotations = entry.get("annotations")
        for i, ann in enumerate(annotations if isinstance(annotations, list) else []):
            if i in bad_indices:
                continue
            start, end = (float(t) for t in ann["segment"])
            label = label_text(ann["label"])
            if ambiguous_label is not None and label == ambiguous_label:
                video.ambiguous.append((start, end))
            else:
                video.instances.append(Instance(start, end, label))
        videos.append(video)
    return videos, problems


BAD_INPUT_KINDS = frozenset({"bad-entry", "bad-instance", "bad-line"})


def bad_input_videos(problems: Iterable[Problem]) -> dict[str, list[Problem]]:
    """Videos with a bad annotation entry (malformed or reversed instance...) -> their problems."""
    by_video: dict[str, list[Problem]] = defaultdict(list)
    for problem in problems:
        if problem.kind in BAD_INPUT_KINDS:
            by_video[problem.video].append(problem)
    return dict(by_video)


def read_thumos14_annotations(
    annotation_dirs: Iterable[str | os.PathLike],
    label_map: Sequence[str],
    split_map: dict[str, str] | None = None,
) -> tuple[list[VideoAnnotation], list[Problem]]:
    """Read THUMOS14 per-class files ``<Class>_val.txt`` / ``<Class>_test.txt`` (``video start end``).

    Folders are searched recursively. Videos come sorted by name; a video's instances come class by
    class in label-map order, each class's lines in file order. ``Ambiguous_*.txt`` spans become
    ambiguous spans of their videos (never foreground; kept out of background by the merged rule).
    A class file not in ``label_map`` is an error.
    """
    split_map = dict(THUMOS14_SPLITS if split_map is None else split_map)
    files: dict[tuple[str, str], Path] = {}
    for folder in annotation_dirs:
        folder = Path(folder)
        if not folder.is_dir():
            raise TspVideoError(f"{folder}: annotation folder not found")
        for path in sorted(folder.rglob("*.txt")):
            match = re.fullmatch(r"(.+)_(val|test)\.txt", path.name)
            if match:
                files.setdefault((match.group(1), match.group(2)), path)
    if not files:
        raise TspVideoError("no THUMOS14 annotation files (<Class>_val.txt or <Class>_test.txt) found in "
                            + ", ".join(str(d) for d in annotation_dirs))
    unknown = sorted({cls for cls, _ in files if cls != THUMOS14_AMBIGUOUS and cls not in label_map})
    if unknown:
        raise TspVideoError(f"annotation files for classes not in the THUMOS14 label map: {', '.join(unknown)}")

    problems: list[Problem] = []
    videos: dict[tuple[str, str], VideoAnnotation] = {}
    for part in ("val", "test"):
        if part not in split_map:
            continue
        present = [cls for cls in label_map if (cls, part) in files]
        if not present:
            continue
        for cls in label_map:
            if (cls, part) not in files:
                problems.append(Problem("missing-class-file", "", f"no {cls}_{part}.txt"))
        for cls in [*present, THUMOS14_AMBIGUOUS]:
            path = files.get((cls, part))
            if path is None:
                continue
            for line_no, line in enumerate(_read_text(path).splitlines(), start=1):
                fields = line.split()
                if not fields:
                    continue
                try:
                    name, start, end = fields[0], float(fields[1]), float(fields[2])
                    if len(fields) != 3 or not (math.isfinite(start) and math.isfinite(end)):
                        raise ValueError
                except (IndexError, ValueError):
                    problems.append(Problem("bad-line", fields[0], f"{path}:{line_no}: {line!r}", fatal=True,
                                            line=line_no))
                    continue
                if end < start:
                    problems.append(Problem("bad-instance", name, f"{path}:{line_no}: segment end {end} < start "
                                            f"{start}", fatal=True, line=line_no))
                    continue
                video = videos.setdefault((part, name), VideoAnnotation(
                    video_name=name, split=split_map[part], file_keys=(name,)))
                if cls == THUMOS14_AMBIGUOUS:
                    video.ambiguous.append((start, end))
                else:
                    video.instances.append(Instance(start, end, cls))
    ordered = [videos[key] for key in sorted(videos)]
    return ordered, problems


def _read_text(path: Path) -> str:
    """A text file's content, or a :class:`TspVideoError` naming it when it is not readable UTF-8 text."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise TspVideoError(f"{path}: not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
                            f"{error.start}: {error.reason})") from None
    except OSError as error:
        raise TspVideoError(f"{path}: cannot read: {error.strerror or error}") from None


def unknown_labels(videos: Iterable[VideoAnnotation], label_map: Sequence[str]) -> dict[str, str]:
    """Labels not in ``label_map`` -> the first video that uses each."""
    known = set(label_map)
    found: dict[str, str] = {}
    for video in videos:
        for inst in video.instances:
            if inst.label not in known:
                found.setdefault(inst.label, video.video_name)
    return found


def require_known_labels(videos: Iterable[VideoAnnotation], label_map: Sequence[str]) -> None:
    """Raise a :class:`TspVideoError` listing labels missing from the label map."""
    unknown = unknown_labels(videos, label_map)
    if unknown:
        shown = ", ".join(f"{label!r} (video {video})" for label, video in list(unknown.items())[:10])
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise TspVideoError(f"{len(unknown)} label(s) not in the label map: {shown}{more}")


# ----------------------------------------------------------------------------------------------------
# Building the tables


def _segment(video: VideoAnnotation, meta: VideoMeta, t_start: float, t_end: float, label: str | None,
             region: str) -> Segment:
    return Segment(video.video_name, t_start, t_end, label, meta.duration, meta.filename, meta.fps,
                   meta.frames, region)


def build_segment_tables(
    videos: Sequence[VideoAnnotation],
    metadata: dict[str, VideoMeta],
    rule: str = "merged",
    min_background: float = CLIP_SECONDS,
    follow_metadata_order: bool = True,
) -> BuildResult:
    """Join annotations with video metadata and add background segments.

    Each table lists every foreground row first (video by video, each video's instances in annotation
    order) and then every background row (video by video, in time order), as the original files do.
    Videos come in ``metadata`` order when ``follow_metadata_order`` (the original files follow their
    metadata CSV), else in annotation order. Videos without metadata are reported and left out.
    ``merged`` clips foreground rows to the video; ``original`` keeps the annotated times.
    """
    if rule not in BACKGROUND_RULES:
        raise TspVideoError(f"unknown background rule {rule!r}; choose one of {', '.join(BACKGROUND_RULES)}")
    problems: list[Problem] = []
    resolved: list[tuple[VideoAnnotation, VideoMeta, str]] = []
    for video in videos:
        key = next((k for k in video.file_keys if k in metadata), None)
        if key is None:
            problems.append(Problem("missing-video", video.video_name,
                                    f"no video file or metadata for {' or '.join(video.file_keys)}"))
            continue
        resolved.append((video, metadata[key], key))
    if follow_metadata_order:
        position = {key: i for i, key in enumerate(metadata)}
        resolved.sort(key=lambda item: position[item[2]])

    foreground: dict[str, list[Segment]] = defaultdict(list)
    background: dict[str, list[Segment]] = defaultdict(list)
    meta_rows: dict[str, list[VideoMeta]] = defaultdict(list)
    for video, meta, _ in resolved:
        duration = meta.duration
        meta_rows[video.split].append(meta)

        kept: list[Instance] = []
        for inst in video.instances:
            where = f"{inst.label} [{inst.t_start}, {inst.t_end}]"
            # The original keeps zero-length instances and instances outside the video in its published
            # tables (and counts them when placing background); training drops them as too short.
            keep_as_annotated = rule == "original"
            if inst.t_end < inst.t_start or (inst.t_end == inst.t_start and not keep_as_annotated):
                kind = "zero-length-instance" if inst.t_end == inst.t_start else "reversed-instance"
                problems.append(Problem(kind, video.video_name, f"{where} dropped"))
                continue
            if inst.t_end == inst.t_start:
                problems.append(Problem("zero-length-instance", video.video_name, f"{where} kept as annotated"))
            elif inst.t_start >= duration or inst.t_end <= 0:
                action = "kept as annotated" if keep_as_annotated else "dropped"
                problems.append(Problem("instance-outside-video", video.video_name,
                                        f"{where} outside the video [0, {duration}]; {action}"))
                if not keep_as_annotated:
                    continue
            elif inst.t_start < 0 or inst.t_end > duration:
                action = "clipped" if rule == "merged" else "kept as annotated"
                problems.append(Problem("instance-past-video-end", video.video_name,
                                        f"{where} extends past [0, {duration}]; {action}"))
                if rule == "merged":
                    inst = Instance(max(0.0, inst.t_start), min(duration, inst.t_end), inst.label)
            kept.append(inst)
            foreground[video.split].append(_segment(video, meta, inst.t_start, inst.t_end, inst.label, ACTION))

        spans = [(inst.t_start, inst.t_end) for inst in kept]
        if rule == "merged":
            gaps = background_merged(spans + list(video.ambiguous), duration, min_background)
        else:
            gaps = background_original(spans, duration, min_background)
        background[video.split].extend(_segment(video, meta, s, e, None, NO_ACTION) for s, e in gaps)

    splits = list(dict.fromkeys(v.split for v, _, _ in resolved))
    tables = {split: foreground[split] + background[split] for split in splits}
    return BuildResult(tables=tables, metadata={s: meta_rows[s] for s in splits}, problems=problems)


def metadata_from_videos(
    videos: Sequence[VideoAnnotation],
    video_dirs: Sequence[str | os.PathLike],
    workers: int = 8,
    progress: bool = True,
) -> tuple[dict[str, VideoMeta], list[Problem]]:
    """Find each annotated video under ``video_dirs`` and probe it; problems list unreadable files.

    Missing files are not reported here: :func:`build_segment_tables` reports every video without
    metadata. ``filename`` is the path relative to the folder it was found in.
    """
    index = index_video_dirs(video_dirs)
    roots = [Path(d) for d in video_dirs]
    wanted: dict[str, Path] = {}
    for video in videos:
        key = next((k for k in video.file_keys if k in index), None)
        if key is not None:
            wanted[key] = index[key]
    from tspvideo.video.metadata import read_videos_metadata  # decodes: here, not at import (see commands)

    infos, failures = read_videos_metadata(wanted.values(), workers=workers, progress=progress)
    metadata: dict[str, VideoMeta] = {}
    for key, path in wanted.items():
        info = infos.get(path)
        if info is None:
            continue
        root = next(r for r in roots if path.is_relative_to(r))
        metadata[key] = VideoMeta(path.relative_to(root).as_posix(), info.duration, info.fps, info.num_frames)
    problems = [Problem("unreadable-video", video_key(p.name), message) for p, message in failures.items()]
    return metadata, problems


def write_problems_csv(problems: Sequence[Problem], path: str | os.PathLike) -> None:
    """Write problems as CSV (``kind,video,line,fatal,detail``) atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["kind", "video", "line", "fatal", "detail"])
        for p in problems:
            writer.writerow([p.kind, p.video, "" if p.line is None else p.line, int(p.fatal), p.detail])


# ----------------------------------------------------------------------------------------------------
# Check
#
# check_segment_table runs three families of checks in turn: each row on its own (fields, labels, video
# metadata, span, duplicates), the rows of each video against each other (overlaps), and the video files.
# Problems are sorted by line at the end, stably: within a line they keep the order they were found in.


@dataclass(frozen=True)
class _Row:
    """One readable row of a segment table, as the checks see it."""

    line: int
    video: str
    start: float
    end: float
    label: str | None
    region: str
    duration: float
    fps: float
    frames: float
    filename: str


class _Findings:
    """The problems found so far, and where each video's metadata was first given."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.first_meta: dict[str, tuple[int, tuple]] = {}  # video -> (line, (duration, fps, frames, filename))

    def report(self, kind: str, video: str, line: int, detail: str, fatal: bool) -> None:
        self.problems.append(Problem(kind, video, detail, fatal=fatal, line=line))


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return min(a[1], b[1]) - max(a[0], b[0])


def check_segment_table(
    path: str | os.PathLike,
    label_map: Sequence[str] | None = None,
    video_dirs: Sequence[str | os.PathLike] = (),
    clip_seconds: float = CLIP_SECONDS,
    probe: bool = False,
    workers: int = 8,
) -> list[Problem]:
    """Validate a segment table and return every problem found, each with its CSV line.

    Fatal: unreadable fields, unknown region labels, Action rows without a label or with a label not
    in ``label_map``, ``t-end < t-start``, videos whose rows
    disagree on duration/fps/frames/filename, video files missing from ``video_dirs`` (or unreadable,
    with ``probe``). Warnings: zero-length segments, segments shorter than one clip and segments entirely
    outside the video (training drops them all; the original's published tables have such rows), segments reaching
    past the video, background overlapping an action or another background segment, overlapping
    instances of one class, duplicate rows, durations that disagree with ``frames / fps`` or the file.
    """
    path = Path(path)
    if not path.is_file():
        raise TspVideoError(f"{path}: segment table not found")
    found = _Findings()
    rows = _check_rows(path, set(label_map) if label_map is not None else None, clip_seconds, found)
    _check_overlaps(rows, found)
    if video_dirs:
        _check_video_files(video_dirs, probe, workers, found)
    return sorted(found.problems, key=lambda p: (p.line or 0))


def _check_rows(path: Path, label_set: set[str] | None, clip_seconds: float, found: _Findings) -> list[_Row]:
    """Row by row: every row that passes the fatal checks and has a span training can use is returned."""
    rows: list[_Row] = []
    seen: dict[tuple, int] = {}
    with open_csv(path, list(SEGMENT_COLUMNS)) as reader:
        for fields in reader:
            row = _parse_row(fields, reader.line_num, found)
            if row is None:
                continue
            _check_label(row, label_set, found)
            if not _check_metadata(row, found) or not _check_span(row, clip_seconds, found):
                continue
            key = (row.video, row.start, row.end, row.label, row.region)
            if key in seen:
                found.report("duplicate", row.video, row.line, f"same as line {seen[key]}", False)
            seen.setdefault(key, row.line)
            rows.append(row)
    return rows


def _parse_row(fields: dict, line: int, found: _Findings) -> _Row | None:
    """The row's values, or None (reported, fatal) when a field is missing, not a finite number or empty, or the
    region label is unknown."""
    video = (fields.get("video-name") or "").strip()
    if None in fields or None in fields.values():
        found.report("bad-row", video, line, "wrong number of fields", True)
        return None
    try:
        numbers = [float(fields[name]) for name in ("t-start", "t-end", "video-duration", "fps", "video-frames")]
        if not all(math.isfinite(x) for x in numbers):
            raise ValueError
    except ValueError:
        found.report("bad-number", video, line, "t-start, t-end, video-duration, fps and video-frames "
                     "must be finite numbers", True)
        return None
    region = fields["temporal-region-label"].strip()
    if not video or not fields["filename"].strip():
        found.report("empty-name", video, line, "video-name and filename must not be empty", True)
        return None
    if region not in REGION_LABELS:
        found.report("bad-region-label", video, line, f"{region!r} is not 'Action' or 'No action'", True)
        return None
    return _Row(line, video, *numbers[:2], fields["action-label"].strip() or None, region, *numbers[2:],
                fields["filename"].strip())


def _check_label(row: _Row, label_set: set[str] | None, found: _Findings) -> None:
    """Action rows need a label of the label map; a label on a background row is ignored by training."""
    if row.region == ACTION and row.label is None:
        found.report("missing-label", row.video, row.line, "Action row without action-label", True)
    elif row.region == ACTION and label_set is not None and row.label not in label_set:
        found.report("unknown-label", row.video, row.line, f"{row.label!r} is not in the label map", True)
    elif row.region == NO_ACTION and row.label is not None:
        found.report("label-on-background", row.video, row.line, f"No action row has label {row.label!r} "
                     "(ignored by training)", False)


def _check_metadata(row: _Row, found: _Findings) -> bool:
    """Duration, fps and frames positive and the same on every row of the video; False: the row is unusable."""
    duration, fps, frames = row.duration, row.fps, row.frames
    if duration <= 0 or fps <= 0 or frames <= 0 or frames != int(frames):
        found.report("bad-metadata", row.video, row.line, "video-duration, fps and video-frames must be positive "
                     "(frames an integer)", True)
        return False
    meta = (duration, fps, int(frames), row.filename)
    first = found.first_meta.setdefault(row.video, (row.line, meta))
    if first[1] != meta:
        found.report("inconsistent-video", row.video, row.line, f"duration/fps/frames/filename differ from line "
                     f"{first[0]}: {meta} vs {first[1]}", True)
    elif first[0] == row.line and abs(frames / fps - duration) > 1.5 / fps:
        found.report("duration-mismatch", row.video, row.line, f"video-duration {duration} differs from "
                     f"video-frames / fps = {frames / fps:.4f}", False)
    return True


def _check_span(row: _Row, clip_seconds: float, found: _Findings) -> bool:
    """The segment's times against each other, the video and one clip; False: no clip of it can be used."""
    start, end, duration = row.start, row.end, row.duration
    if end < start:
        found.report("reversed-segment", row.video, row.line, f"t-end {end} is before t-start {start}", True)
        return False
    # Rows the original's published tables hold: training drops them (no clip fits), so they warn.
    if end == start:
        found.report("zero-length", row.video, row.line, f"[{start}, {end}] has zero length; training drops it",
                     False)
        return False
    if end <= 0 or start >= duration:
        found.report("outside-video", row.video, row.line, f"[{start}, {end}] is outside the video "
                     f"[0, {duration}]; training drops it", False)
        return False
    if start < 0 or end > duration + 1e-6:
        found.report("past-video-end", row.video, row.line, f"[{start}, {end}] reaches past the video "
                     f"[0, {duration}]", False)
    if end - start < clip_seconds:
        found.report("too-short", row.video, row.line, f"{end - start:.3f} s is shorter than one clip "
                     f"({clip_seconds:.3f} s); training drops it", False)
    return True


def _check_overlaps(rows: Sequence[_Row], found: _Findings) -> None:
    """Per video: background overlapping an action or other background, and overlapping instances of a class."""
    by_video: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        by_video[row.video].append(row)
    for video, items in by_video.items():
        actions = [r for r in items if r.region == ACTION]
        backgrounds = sorted((r for r in items if r.region == NO_ACTION), key=lambda r: r.start)
        _check_background_overlaps(video, actions, backgrounds, found)
        _check_instance_overlaps(video, actions, found)


def _check_background_overlaps(video: str, actions: list[_Row], backgrounds: list[_Row], found: _Findings) -> None:
    for bg in backgrounds:
        hit = next((a for a in actions if _overlap((bg.start, bg.end), (a.start, a.end)) > 1e-9), None)
        if hit is not None:
            found.report("background-overlaps-action", video, bg.line, f"[{bg.start}, {bg.end}] overlaps the "
                         f"{hit.label} action on line {hit.line}", False)
    for a, b in zip(backgrounds, backgrounds[1:], strict=False):
        if _overlap((a.start, a.end), (b.start, b.end)) > 1e-9:
            found.report("overlapping-background", video, b.line, f"overlaps background on line {a.line}", False)


def _check_instance_overlaps(video: str, actions: list[_Row], found: _Findings) -> None:
    by_label: dict[str | None, list[_Row]] = defaultdict(list)
    for a in actions:
        by_label[a.label].append(a)
    for same in by_label.values():
        same.sort(key=lambda r: r.start)
        for a, b in zip(same, same[1:], strict=False):
            if _overlap((a.start, a.end), (b.start, b.end)) > 1e-9 and (a.start, a.end) != (b.start, b.end):
                found.report("overlapping-instances", video, b.line, f"overlaps the {a.label} instance on line "
                             f"{a.line}", False)


def _check_video_files(video_dirs: Sequence[str | os.PathLike], probe: bool, workers: int,
                       found: _Findings) -> None:
    """Each video's file under one of ``video_dirs``; with ``probe``, readable and of the table's length and fps."""
    roots = [Path(d) for d in video_dirs]
    for root in roots:
        if not root.is_dir():
            raise TspVideoError(f"{root}: video folder not found")
    files: dict[str, Path] = {}
    for video, (line, meta) in found.first_meta.items():
        candidate = next((r / meta[3] for r in roots if (r / meta[3]).is_file()), None)
        if candidate is None:
            found.report("missing-video", video, line, f"{meta[3]} not found in {', '.join(map(str, roots))}", True)
        else:
            files[video] = candidate
    if probe and files:
        _check_probed_files(files, workers, found)


def _check_probed_files(files: dict[str, Path], workers: int, found: _Findings) -> None:
    from tspvideo.video.metadata import read_videos_metadata  # decodes: here, not at import (see commands)

    infos, failures = read_videos_metadata(files.values(), workers=workers, progress=False)
    for video, file in files.items():
        line, (duration, fps, _, _) = found.first_meta[video]
        if file in failures:
            found.report("unreadable-video", video, line, failures[file], True)
            continue
        info = infos[file]
        if abs(info.duration - duration) > max(0.5, 2 / fps) or abs(info.fps - fps) > 0.01:
            found.report("metadata-mismatch", video, line, f"table says {duration:.3f} s at {fps} fps, the "
                         f"file has {info.duration:.3f} s at {info.fps:.3f} fps", False)


def summarize_problems(problems: Sequence[Problem]) -> str:
    """One line per problem kind with its count, fatal kinds marked."""
    counts = Counter((p.kind, p.fatal) for p in problems)
    return "\n".join(f"  {'error' if fatal else 'warning'}: {kind}: {n}"
                     for (kind, fatal), n in sorted(counts.items(), key=lambda kv: (not kv[0][1], kv[0][0])))
