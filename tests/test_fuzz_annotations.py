"""Hostile annotation inputs, generated: any JSON or CSV shape is a valid result or a clean user error.

The readers of ActivityNet-style JSON, THUMOS14 text files, metadata CSVs and segment tables, the
segment-table check and the ``tspvideo annotations`` command get files of every shape (wrong types,
missing keys, NaN and infinities, negative and huge times, huge integers, unicode, empty files, binary
junk, nested junk). Each must either return something valid (finite times, end not before start) or
raise :class:`TspVideoError` with a message (through the CLI: exit 2 and no traceback), never another
exception. The examples are derandomized, so every run tries the same inputs.
"""

from __future__ import annotations

import csv
import io
import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tspvideo.cli import main
from tspvideo.core.errors import TspVideoError
from tspvideo.datasets import activitynet_json as anet
from tspvideo.datasets import annotations as ann
from tspvideo.datasets.segments import METADATA_COLUMNS, SEGMENT_COLUMNS, read_label_map, read_segment_table

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# The command's examples use pytest's capsys: its capture is reset by each example (run_cli reads it).
FUZZ_CLI = settings(FUZZ, max_examples=120, suppress_health_check=[*FUZZ.suppress_health_check,
                                                                  HealthCheck.function_scoped_fixture])

# Scratch files: one folder for the module (hypothesis runs many examples per test function).
SCRATCH = Path(tempfile.mkdtemp(prefix="tspvideo-fuzz-"))

# ----------------------------------------------------------------------------------------------------
# Strategies
# ----------------------------------------------------------------------------------------------------

ODD_NUMBERS = st.sampled_from([0, -0.0, -1, -1e-9, 1e-300, 1e308, -1e308, 10**30, 10**400, -(10**400),
                               float("nan"), float("inf"), float("-inf"), True, False])
NUMBERS = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True), ODD_NUMBERS)
TEXT = st.one_of(st.text(max_size=12), st.sampled_from(["", " ", "Archery", "ümlaut ✓", "a\x00b", "1e400", "nan",
                                                        "-inf", "\u202e", "a,b", 'q"uote', "line\nbreak"]))
SCALARS = st.one_of(st.none(), NUMBERS, TEXT)
JUNK = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(TEXT, inner, max_size=4)), max_leaves=12)
TIMES = st.one_of(st.floats(0, 500), NUMBERS, TEXT, st.none())


def maybe(value_strategy, junk=JUNK):
    """Mostly the well-formed value, sometimes anything."""
    return st.one_of(value_strategy, value_strategy, junk)


SEGMENTS = maybe(st.one_of(st.lists(TIMES, min_size=2, max_size=2), st.lists(TIMES, max_size=3)))
ANNOTATION = maybe(st.fixed_dictionaries({"segment": SEGMENTS, "label": maybe(st.sampled_from(["A", "B", "Amb", 3]))},
                                         optional={"extra": JUNK}))
SUBSET = st.sampled_from(["training", "validation", "testing", "", "ü", 7])
ENTRY = maybe(st.fixed_dictionaries({}, optional={"subset": maybe(SUBSET), "duration": maybe(TIMES),
                                                  "annotations": maybe(st.lists(ANNOTATION, max_size=4)),
                                                  "url": JUNK}))
DATABASE = maybe(st.dictionaries(st.one_of(st.sampled_from(["aaa", "bbb", "v_ccc", ""]), TEXT), ENTRY, max_size=4))
DOCUMENT = maybe(st.fixed_dictionaries({"database": DATABASE}, optional={"version": JUNK, "taxonomy": JUNK}))


def json_text(value) -> str:
    """JSON as other tools write it, NaN and Infinity included (Python's json reads them back)."""
    try:
        return json.dumps(value)
    except (ValueError, OverflowError):  # integers beyond Python's digit limit for text
        return json.dumps(repr(value))


# Files that are not JSON at all: empty, binary, truncated, text.
RAW_FILES = st.one_of(st.binary(max_size=64),
                      st.sampled_from([b"", b"{", b"[]", b"null", b"\xff\xfe{}", b"{\"database\"", b"\xef\xbb\xbf{}"]),
                      st.text(max_size=40).map(lambda s: s.encode("utf-8")))

CSV_FIELD = st.one_of(st.sampled_from(["0", "1.5", "30", "300", "-1", "0.0", "nan", "inf", "-inf", "1e400", "",
                                       " ", "Action", "No action", "A", "x.mp4", "v_a.mp4", "4.5e-7", "9" * 400]),
                      st.floats(allow_nan=True, allow_infinity=True).map(repr), TEXT)


def csv_text(header_strategy, width: int) -> st.SearchStrategy[bytes]:
    """CSV files: a header (right, shuffled, partial or junk) and rows of any fields, written by the csv module,
    or raw bytes."""
    rows = st.lists(st.lists(CSV_FIELD, min_size=width - 2, max_size=width + 1), max_size=5)

    def render(parts) -> bytes:
        header, body = parts
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if header is not None:
            writer.writerow(header)
        writer.writerows(body)
        return buffer.getvalue().encode("utf-8")

    structured = st.tuples(header_strategy, rows).map(render)
    return st.one_of(structured, structured, structured, RAW_FILES, st.text(max_size=80).map(str.encode))


def headers(columns: list[str]) -> st.SearchStrategy:
    return st.one_of(st.just(columns), st.just(columns), st.permutations(columns),
                     st.lists(st.sampled_from(columns), max_size=len(columns)), st.none(), st.lists(TEXT, max_size=3))


SEGMENT_CSV = csv_text(headers(SEGMENT_COLUMNS), len(SEGMENT_COLUMNS))
METADATA_CSV = csv_text(headers(METADATA_COLUMNS), len(METADATA_COLUMNS))
THUMOS_LINES = st.lists(st.one_of(
    st.tuples(st.sampled_from(["video_validation_1", "video_test_2", "ü"]), CSV_FIELD, CSV_FIELD).map(" ".join),
    st.lists(CSV_FIELD, max_size=4).map(" ".join), TEXT), max_size=6).map(lambda lines: "\n".join(lines).encode())


def write(name: str, data: bytes | str) -> Path:
    path = SCRATCH / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def assert_clean_error(error: TspVideoError) -> None:
    assert str(error).strip(), "an error must say what is wrong"


def is_time(value: float) -> bool:
    """A finite number of seconds (an int or float, not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# ----------------------------------------------------------------------------------------------------
# Library readers
# ----------------------------------------------------------------------------------------------------


@FUZZ
@given(document=st.one_of(DOCUMENT.map(json_text).map(str.encode), RAW_FILES),
       subset_map=st.sampled_from([None, ann.ACTIVITYNET_SUBSETS, {"testing": "test"}]),
       ambiguous=st.sampled_from([None, "Amb"]))
def test_activitynet_style_json_reader(document, subset_map, ambiguous):
    path = write("annotations.json", document)
    try:
        videos, problems = ann.read_activitynet_style_json(path, subset_map, ambiguous_label=ambiguous)
    except TspVideoError as error:
        assert_clean_error(error)
        return
    for video in videos:
        assert isinstance(video.video_name, str) and isinstance(video.split, str)
        assert video.annotated_duration is None or is_time(video.annotated_duration)
        for inst in video.instances:
            assert is_time(inst.t_start) and is_time(inst.t_end) and inst.t_end >= inst.t_start
            assert isinstance(inst.label, str) and inst.label != ambiguous
        for start, end in video.ambiguous:
            assert is_time(start) and is_time(end) and end >= start
    assert all(p.fatal for p in problems if p.kind in ann.BAD_INPUT_KINDS)
    # The checked reader every other command uses agrees: a file with bad entries is refused.
    try:
        database = anet.read_annotation_database(path)
    except TspVideoError as error:
        assert_clean_error(error)
    else:
        assert isinstance(database, dict)
        assert not any(p.kind in ann.BAD_INPUT_KINDS for p in problems)


@FUZZ
@given(content=SEGMENT_CSV)
def test_segment_table_reader_and_check(content):
    path = write("segments.csv", content)
    try:
        segments = read_segment_table(path)
    except TspVideoError as error:
        assert_clean_error(error)
        segments = None
    for s in segments or []:
        assert all(is_time(t) for t in (s.t_start, s.t_end, s.video_duration, s.fps))
        assert s.t_end >= s.t_start and s.video_frames >= 0
    try:
        problems = ann.check_segment_table(path, label_map=["A", "B"])
    except TspVideoError as error:
        assert_clean_error(error)
        assert segments is None, "the check refuses a file the reader takes"
        return
    for p in problems:
        assert p.kind and isinstance(p.detail, str) and (p.line is None or p.line >= 1)
    if segments is None:
        assert any(p.fatal for p in problems), "the reader refuses a file the check passes"


@FUZZ
@given(content=METADATA_CSV)
@example(content=b"filename,video-duration,fps,video-frames\n0,0,0,inf\n")  # found by a longer random run
def test_metadata_csv_reader(content):
    path = write("metadata.csv", content)
    try:
        metadata = ann.read_metadata_csv([path])
    except TspVideoError as error:
        assert_clean_error(error)
        return
    for key, meta in metadata.items():
        assert key and is_time(meta.duration) and meta.duration > 0 and is_time(meta.fps) and meta.fps > 0
        assert meta.frames >= 0


@FUZZ
@given(files=st.dictionaries(st.sampled_from(["BaseballPitch_val.txt", "Diving_test.txt", "Ambiguous_val.txt",
                                              "Nope_val.txt", "BaseballPitch_test.txt"]), THUMOS_LINES, max_size=3))
def test_thumos14_reader(files):
    folder = Path(tempfile.mkdtemp(dir=SCRATCH))
    for name, content in files.items():
        write(f"{folder.name}/{name}", content)
    try:
        videos, problems = ann.read_thumos14_annotations([folder], ["BaseballPitch", "Diving"])
    except TspVideoError as error:
        assert_clean_error(error)
        return
    for video in videos:
        for inst in video.instances:
            assert is_time(inst.t_start) and is_time(inst.t_end) and inst.t_end >= inst.t_start
    assert all(p.fatal for p in problems if p.kind in ann.BAD_INPUT_KINDS)


# ----------------------------------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------------------------------


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    assert code in (0, 1, 2), code
    assert "Traceback" not in captured.out + captured.err
    if code == 2:  # a user error: one line naming the command (a listing of bad entries may follow it)
        assert captured.err.startswith("tspvideo annotations: error: ")
    return code, captured.out, captured.err


@FUZZ_CLI
@given(document=st.one_of(DOCUMENT.map(json_text).map(str.encode), RAW_FILES), metadata=METADATA_CSV,
       command=st.sampled_from(["activitynet", "generic"]), drop=st.booleans())
def test_annotations_command_builds_or_refuses(document, metadata, command, drop, capsys):
    path = write("cli.json", document)
    meta = write("cli-metadata.csv", metadata)
    out = Path(tempfile.mkdtemp(dir=SCRATCH))
    code, _, _ = run_cli(["annotations", command, str(path), "--metadata", str(meta), "--out", str(out / "o"),
                          "--min-background", "0.5", *(["--drop-bad-videos"] if drop else [])], capsys)
    for table in (out / "o").glob("*_tsp_groundtruth.csv"):
        assert code in (0, 1)
        for s in read_segment_table(table):  # what it writes reads back, with finite times
            assert all(is_time(t) for t in (s.t_start, s.t_end, s.video_duration)) and s.t_end >= s.t_start


@FUZZ_CLI
@given(content=SEGMENT_CSV)
def test_annotations_check_command(content, capsys):
    path = write("check/segments.csv", content)
    code, out, _ = run_cli(["annotations", "check", str(path), "--label-map", "thumos14"], capsys)
    if code != 2:
        assert "error(s)" in out


@FUZZ
@given(content=st.one_of(RAW_FILES, JUNK.map(json_text).map(str.encode),
                         st.lists(TEXT, max_size=4).map(json_text).map(str.encode)))
def test_label_map_reader(content):
    path = write("labels.json", content)
    try:
        names = read_label_map(path)
    except TspVideoError as error:
        assert_clean_error(error)
        return
    assert isinstance(names, list) and all(isinstance(n, str) for n in names) and len(set(names)) == len(names)


# Inputs too large for the strategies above, each once.
EXTREMES = {
    "deep.json": b"[" * 100_000,  # Python's JSON parser recurses per level
    "deep-database.json": b'{"database": ' + b"{\"a\": " * 50_000,
    "huge-field.csv": (",".join(SEGMENT_COLUMNS) + "\n" + "x" * 200_000 + "\n").encode(),  # csv's field limit
    "nul.csv": (",".join(SEGMENT_COLUMNS) + "\nv,0,1\x00,A,10,v.mp4,30,300,Action\n").encode(),
    "latin-1.csv": (",".join(SEGMENT_COLUMNS) + "\nv\xe9,0,1,A,10,v.mp4,30,300,Action\n").encode("latin-1"),
}


@pytest.mark.parametrize("name", sorted(EXTREMES))
def test_extreme_inputs_are_one_line_errors(name, capsys):
    path = write(f"extreme/{name}", EXTREMES[name])
    if name.endswith(".json"):
        with pytest.raises(TspVideoError, match="nested too deeply"):
            anet.read_annotation_database(path)
        with pytest.raises(TspVideoError):
            read_label_map(path)
        code, _, err = run_cli(["annotations", "generic", str(path), "--metadata", str(path), "--out",
                                str(SCRATCH / "extreme-out")], capsys)
    else:
        with pytest.raises(TspVideoError, match=r"line \d+: |not UTF-8 text"):
            read_segment_table(path)
        code, _, err = run_cli(["annotations", "check", str(path)], capsys)
        if code == 1:  # the check lists a row it cannot read as a fatal problem
            return
    assert code == 2 and err.count("\n") == 1


def test_a_byte_order_mark_is_skipped():
    path = write("bom.csv", "\ufeff" + ",".join(SEGMENT_COLUMNS) + "\nv,0,1,A,10,v.mp4,30,300,Action\n")
    assert [s.action_label for s in read_segment_table(path)] == ["A"]


def test_fuzz_scratch_folder_is_used():
    """The strategies above reach the readers' interesting paths: a valid document gives instances."""
    path = write("valid.json", json.dumps({"database": {"a": {"subset": "training", "duration": 10.0, "annotations": [
        {"segment": [1.0, 2.0], "label": "A"}]}}}))
    videos, problems = ann.read_activitynet_style_json(path, ann.ACTIVITYNET_SUBSETS)
    assert [(i.t_start, i.t_end, i.label) for v in videos for i in v.instances] == [(1.0, 2.0, "A")] and not problems


@pytest.fixture(scope="module", autouse=True)
def _clean_scratch():
    yield
    import shutil

    shutil.rmtree(SCRATCH, ignore_errors=True)
