"""Segment table reader/writer: the original files round-trip byte for byte; bad rows name their line."""

from __future__ import annotations

import json
import re

import pytest

from tspvideo.core.errors import TspVideoError
from tspvideo.datasets.segments import (
    ACTION,
    NO_ACTION,
    SEGMENT_COLUMNS,
    Segment,
    read_label_map,
    read_segment_table,
    write_segment_table,
)

HEADER = ",".join(SEGMENT_COLUMNS)


def _write(path, lines):
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["activitynet_v1-3_train_tsp_groundtruth.head40.csv",
                                  "thumos14_valid_tsp_groundtruth.head40.csv"])
def test_original_excerpts_round_trip_byte_identical(reference_data_dir, tmp_path, name):
    source = reference_data_dir / name
    segments = read_segment_table(source)
    assert len(segments) == 40 and all(s.is_action for s in segments)
    write_segment_table(segments, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == source.read_bytes()


def test_fields_and_background_rows(tmp_path):
    path = _write(tmp_path / "t.csv", [
        "vid_é,0.01,12.5,Playing congas,20.0,v_vid_é.mp4,30.0,600,Action",
        "vid_é,12.5,20.0,,20.0,v_vid_é.mp4,30.0,600,No action",
    ])
    fg, bg = read_segment_table(path)
    assert fg == Segment("vid_é", 0.01, 12.5, "Playing congas", 20.0, "v_vid_é.mp4", 30.0, 600, ACTION)
    assert bg.action_label is None and bg.region_label == NO_ACTION and not bg.is_action
    assert bg.duration == pytest.approx(7.5)
    write_segment_table([fg, bg], tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_text(encoding="utf-8") == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("row, message", [
    ("v,abc,2.0,A,10.0,v.mp4,30.0,300,Action", "line 2: column 't-start'"),
    ("v,3.0,2.0,A,10.0,v.mp4,30.0,300,Action", "line 2: t-end 2.0 is before t-start 3.0 (reversed segment)"),
    ("v,1.0,2.0,,10.0,v.mp4,30.0,300,Action", "line 2: an Action row needs an action-label"),
    ("v,1.0,2.0,A,10.0,v.mp4,30.0,300,Background", "line 2: temporal-region-label 'Background'"),
    ("v,1.0,2.0,A,10.0,v.mp4,30.0,30.5,Action", "line 2: column 'video-frames'"),
    ("v,1.0,2.0,A,10.0,v.mp4,30.0,300", "line 2: wrong number of fields"),
])
def test_bad_rows_name_file_and_line(tmp_path, row, message):
    path = _write(tmp_path / "bad.csv", [row])
    with pytest.raises(TspVideoError, match="bad.csv") as info:
        read_segment_table(path)
    assert message in str(info.value)


def test_missing_column_is_named(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("video-name,t-start,t-end\nv,1,2\n", encoding="utf-8")
    with pytest.raises(TspVideoError, match="missing column.*action-label"):
        read_segment_table(path)


def test_missing_file(tmp_path):
    with pytest.raises(TspVideoError, match="not found"):
        read_segment_table(tmp_path / "nope.csv")


def test_builtin_label_maps_match_the_original_files(reference_data_dir):
    for name, original in [("activitynet", "activitynet_v1-3_action_label_mapping.json"),
                           ("thumos14", "thumos14_action_label_mapping.json"),
                           ("temporal_region", "temporal_region_label_mapping.json")]:
        expected = json.loads((reference_data_dir / original).read_text(encoding="utf-8"))
        assert read_label_map(name) == expected


def test_reference_data_is_shipped_and_documented(reference_data_dir):
    # Tests compare against these files; each must be in the repository and say where it comes from.
    listed = set(re.findall(r"^\| `([^`]+)` \|", (reference_data_dir / "README.md").read_text(encoding="utf-8"),
                            flags=re.MULTILINE))
    present = {p.name for p in reference_data_dir.iterdir() if p.name != "README.md"}
    assert listed == present and len(present) >= 8


def test_builtin_label_maps_without_shared_data():
    anet, thumos = read_label_map("activitynet"), read_label_map("thumos14")
    assert len(anet) == 200 and len(set(anet)) == 200
    assert thumos[0] == "BaseballPitch" and len(thumos) == 20
    assert read_label_map("temporal_region") == ["Action", "No action"]


def test_label_map_file_errors(tmp_path):
    (tmp_path / "dup.json").write_text('["a", "a"]', encoding="utf-8")
    (tmp_path / "obj.json").write_text('{"a": 1}', encoding="utf-8")
    with pytest.raises(TspVideoError, match="twice"):
        read_label_map(tmp_path / "dup.json")
    with pytest.raises(TspVideoError, match="JSON list"):
        read_label_map(tmp_path / "obj.json")
    (tmp_path / "ok.json").write_text('["Ünïcode", "b"]', encoding="utf-8")
    assert read_label_map(tmp_path / "ok.json") == ["Ünïcode", "b"]


def test_published_zero_length_rows_load_and_are_dropped_with_one_warning(tmp_path, caplog):
    """Rows of the original's published ActivityNet tables (train line 1331, valid line 5037) load unchanged;
    training drops them with every other too-short segment, in one warning that counts them."""
    from tspvideo.datasets.clips import ClipSpec, SegmentClipDataset

    path = _write(tmp_path / "published.csv", [
        "ZZVrH3Hv1fM,0.0,0.0,Washing hands,58.93333333333333,v_ZZVrH3Hv1fM.mp4,30.0,1768,Action",
        "e6J_ygZ779A,142.281,142.281,High jump,142.26666666666668,v_e6J_ygZ779A.mp4,30.0,4268,Action",
        "e6J_ygZ779A,10.0,10.5,High jump,142.26666666666668,v_e6J_ygZ779A.mp4,30.0,4268,Action",
        "ZZVrH3Hv1fM,0.0,58.93333333333333,,58.93333333333333,v_ZZVrH3Hv1fM.mp4,30.0,1768,No action",
        "e6J_ygZ779A,0.0,142.281,,142.26666666666668,v_e6J_ygZ779A.mp4,30.0,4268,No action",
    ])
    segments = read_segment_table(path)
    assert [s.duration for s in segments[:2]] == [0.0, 0.0] and len(segments) == 5
    write_segment_table(segments, tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_bytes() == path.read_bytes()
    with caplog.at_level("WARNING", logger="tspvideo.datasets.clips"):
        dataset = SegmentClipDataset(segments, tmp_path, train=False, label_map=["High jump", "Washing hands"],
                                     spec=ClipSpec())
    assert len(dataset.segments) == 2 and dataset.dropped["too_short"] == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "dropped 3 of 5 segment(s)" in warnings[0] and "(2 of zero length)" in warnings[0]
