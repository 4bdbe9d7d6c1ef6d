"""Annotation readers, background rules and the reproduction of the original published segment tables."""

from __future__ import annotations

import csv
import json

import pytest

from tspvideo.core.errors import TspVideoError
from tspvideo.datasets import annotations as ann
from tspvideo.datasets.segments import read_label_map, segment_to_row, write_segment_table

THUMOS_MIN = 16 / 15
ANET_MIN = 80 / 15

# Rows of the original thumos14_valid_tsp_groundtruth.csv (public TSP repository): each video's action
# instances (all classes, in file order) and its "No action" rows. They pin down the original rule: sort
# by start, gap from each end to the next start without merging, keep gaps >= 16/15 s (1.0 s dropped,
# 1.1 s kept), plus the two video ends.
PUBLISHED_THUMOS = {
    "video_validation_0000157": (50.26666666666666, [(0.3, 9.6), (10.7, 49.6)], [(9.6, 10.7)]),
    "video_validation_0000162": (
        198.0,
        # CliffDiving, and the same times again as Diving (identical instances of two classes)
        2 * [(0.0, 2.8), (10.7, 11.9), (39.8, 43.1), (67.2, 70.0), (79.1, 82.3), (84.2, 87.6), (87.9, 90.7),
             (91.7, 94.6), (108.8, 112.8), (115.4, 118.2), (122.6, 125.4), (126.1, 132.3), (143.5, 146.7),
             (148.2, 151.3), (152.5, 155.1), (155.8, 158.5), (164.1, 167.1), (167.5, 169.9), (170.1, 173.1),
             (176.6, 179.6), (118.8, 122.0)],
        [(2.8, 10.7), (11.9, 39.8), (43.1, 67.2), (70.0, 79.1), (82.3, 84.2), (94.6, 108.8), (112.8, 115.4),
         (132.3, 143.5), (146.7, 148.2), (151.3, 152.5), (158.5, 164.1), (173.1, 176.6), (179.6, 198.0)],
    ),
    "video_validation_0000171": (
        152.16666666666666,
        # CricketShot then CricketBowling: partially overlapping instances
        [(3.4, 4.4), (83.6, 85.5), (91.7, 92.8), (102.1, 102.9), (111.4, 114.2),
         (2.6, 3.6), (82.1, 83.9), (90.5, 91.6), (99.6, 101.3), (109.4, 111.2)],
        [(0.0, 2.6), (4.4, 82.1), (85.5, 90.5), (92.8, 99.6), (102.9, 109.4), (114.2, 152.16666666666666)],
    ),
    "video_validation_0000059": (
        228.76666666666668,
        # the last instance is out of order in the annotation file
        [(4.9, 6.7), (25.6, 27.2), (42.6, 44.3), (68.5, 70.3), (82.8, 84.4), (90.8, 91.3), (104.2, 104.8),
         (112.1, 113.0), (132.6, 134.0), (145.5, 146.4), (170.6, 172.0), (183.3, 183.8), (200.7, 204.5),
         (213.4, 215.0), (123.0, 124.7)],
        [(0.0, 4.9), (6.7, 25.6), (27.2, 42.6), (44.3, 68.5), (70.3, 82.8), (84.4, 90.8), (91.3, 104.2),
         (104.8, 112.1), (113.0, 123.0), (124.7, 132.6), (134.0, 145.5), (146.4, 170.6), (172.0, 183.3),
         (183.8, 200.7), (204.5, 213.4), (215.0, 228.76666666666668)],
    ),
}


@pytest.mark.parametrize("video", sorted(PUBLISHED_THUMOS))
def test_original_rule_reproduces_published_thumos_background(video):
    duration, spans, expected = PUBLISHED_THUMOS[video]
    assert ann.background_original(spans, duration, THUMOS_MIN) == expected
    # On these videos no instance lies inside another, so the merged rule gives the same gaps.
    assert ann.background_merged(spans, duration, THUMOS_MIN) == expected


def test_rules_differ_on_nested_instances():
    spans = [(10.0, 50.0), (20.0, 30.0), (60.0, 70.0)]
    original = ann.background_original(spans, 100.0, 1.0)
    merged = ann.background_merged(spans, 100.0, 1.0)
    assert (30.0, 60.0) in original  # starts inside the outer instance [10, 50]
    assert merged == [(0.0, 10.0), (50.0, 60.0), (70.0, 100.0)]


def test_rules_differ_when_a_nested_instance_is_last():
    spans = [(10.0, 90.0), (20.0, 30.0)]
    assert ann.background_original(spans, 100.0, 1.0) == [(0.0, 10.0), (30.0, 100.0)]
    assert ann.background_merged(spans, 100.0, 1.0) == [(0.0, 10.0), (90.0, 100.0)]


def test_merged_touching_overlapping_ends_and_minimum():
    spans = [(0.0, 5.0), (5.0, 8.0), (7.0, 9.0), (9.5, 12.0), (19.0, 25.0)]
    assert ann.background_merged(spans, 20.0, 1.0) == [(12.0, 19.0)]
    assert ann.background_merged(spans, 20.0, 0.4) == [(9.0, 9.5), (12.0, 19.0)]
    assert ann.background_merged([], 20.0, 1.0) == [(0.0, 20.0)]
    assert ann.background_merged([(-3.0, 2.0), (15.0, 40.0)], 20.0, 1.0) == [(2.0, 15.0)]
    assert ann.background_original([], 20.0, 1.0) == [(0.0, 20.0)]


def _excerpt_inputs(path):
    """Per video (in file order): duration, fps, frames, filename, [(start, end, label)] from Action rows."""
    videos: dict[str, dict] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            v = videos.setdefault(row["video-name"], {
                "duration": float(row["video-duration"]), "fps": float(row["fps"]),
                "frames": int(row["video-frames"]), "filename": row["filename"], "instances": []})
            v["instances"].append([float(row["t-start"]), float(row["t-end"]), row["action-label"]])
    return videos


def _metadata_for(videos):
    return {ann.video_key(v["filename"]): ann.VideoMeta(v["filename"], v["duration"], v["fps"], v["frames"])
            for v in videos.values()}


def test_activitynet_original_rule_reproduces_excerpt(reference_data_dir, tmp_path):
    excerpt = reference_data_dir / "activitynet_v1-3_train_tsp_groundtruth.head40.csv"
    videos = _excerpt_inputs(excerpt)
    database = {name: {"subset": "training", "duration": v["duration"] + 0.3,
                       "annotations": [{"segment": [s, e], "label": label} for s, e, label in v["instances"]]}
                for name, v in reversed(videos.items())}  # JSON order differs: rows must follow metadata
    database["notDownloaded"] = {"subset": "training", "duration": 10.0,
                                 "annotations": [{"segment": [1.0, 2.0], "label": "Archery"}]}
    database["someTestVideo"] = {"subset": "testing", "duration": 10.0, "annotations": []}
    (tmp_path / "anet.json").write_text(json.dumps({"database": database}), encoding="utf-8")

    parsed, problems = ann.read_activitynet_style_json(tmp_path / "anet.json", ann.ACTIVITYNET_SUBSETS)
    assert not problems and {v.split for v in parsed} == {"train"}
    ann.require_known_labels(parsed, read_label_map("activitynet"))
    result = ann.build_segment_tables(parsed, _metadata_for(videos), rule="original", min_background=ANET_MIN)
    assert [p.kind for p in result.problems if p.kind == "missing-video"] == ["missing-video"]
    write_segment_table(result.tables["train"], tmp_path / "train.csv")
    produced = (tmp_path / "train.csv").read_text(encoding="utf-8").splitlines()
    assert produced[:41] == excerpt.read_text(encoding="utf-8").splitlines()
    # The published metadata lists the videos in the same order as the segment table.
    with open(reference_data_dir / "activitynet_v1-3_train_metadata.head20.csv", newline="") as f:
        published_order = [row["filename"] for row in csv.DictReader(f)]
    assert published_order == [v["filename"] for v in videos.values()][:20]

    # The merged rule clips instances to the video (the published rows keep 83.0578 > 83.0) ...
    merged = ann.build_segment_tables(parsed, _metadata_for(videos), rule="merged", min_background=ANET_MIN)
    clipped = [s for s in merged.tables["train"] if s.video_name == "hHiPEAiYKv0" and s.is_action]
    assert clipped[0].t_end == 83.0
    # ... and both rules agree on every background row of these videos (no nested instances here).
    original_bg = [segment_to_row(s) for s in result.tables["train"] if not s.is_action]
    merged_bg = [segment_to_row(s) for s in merged.tables["train"] if not s.is_action]
    assert original_bg == merged_bg and all(float(r[2]) - float(r[1]) >= ANET_MIN for r in merged_bg)


def test_thumos_reader_reproduces_excerpt(reference_data_dir, tmp_path):
    excerpt = reference_data_dir / "thumos14_valid_tsp_groundtruth.head40.csv"
    videos = _excerpt_inputs(excerpt)
    lines = [f"{name}  {s} {e}" for name, v in videos.items() for s, e, _ in v["instances"]]
    (tmp_path / "Billiards_val.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    parsed, _ = ann.read_thumos14_annotations([tmp_path], read_label_map("thumos14"))
    result = ann.build_segment_tables(parsed, _metadata_for(videos), rule="original", min_background=THUMOS_MIN)
    write_segment_table(result.tables["train"], tmp_path / "train.csv")
    produced = (tmp_path / "train.csv").read_text(encoding="utf-8").splitlines()
    assert produced[:41] == excerpt.read_text(encoding="utf-8").splitlines()


def _anet_json(tmp_path, database):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"database": database}, ensure_ascii=False), encoding="utf-8")
    return path


def test_bad_instances_are_reported_and_handled(tmp_path):
    path = _anet_json(tmp_path, {"vid": {"subset": "training", "annotations": [
        {"segment": [5.0, 5.0], "label": "Archery"},        # zero length
        {"segment": [9.0, 7.0], "label": "Archery"},        # reversed
        {"segment": [25.0, 30.0], "label": "Archery"},      # outside the 20 s video
        {"segment": [-1.0, 3.0], "label": "Archery"},       # starts before 0
        {"segment": [12.0, 23.0], "label": "Archery"},      # ends after the video
        {"segment": [4.0], "label": "Archery"},             # malformed
    ]}})
    videos, problems = ann.read_activitynet_style_json(path, ann.ACTIVITYNET_SUBSETS)
    # Reversed and malformed instances are fatal, named by video and annotation index, and not read.
    assert [(p.kind, p.video, p.fatal) for p in problems] == [("bad-instance", "vid", True)] * 2
    assert "['annotations'][1]: segment end 7.0 < start 9.0" in problems[0].detail
    assert "['annotations'][5]" in problems[1].detail
    assert set(ann.bad_input_videos(problems)) == {"vid"}
    meta = {"v_vid": ann.VideoMeta("v_vid.mp4", 20.0, 30.0, 600)}
    merged = ann.build_segment_tables(videos, meta, rule="merged", min_background=1.0)
    kinds = sorted(p.kind for p in merged.problems)
    assert kinds == ["instance-outside-video", "instance-past-video-end", "instance-past-video-end",
                     "zero-length-instance"]
    table = merged.tables["train"]
    assert [(s.t_start, s.t_end) for s in table if s.is_action] == [(0.0, 3.0), (12.0, 20.0)]
    assert [(s.t_start, s.t_end) for s in table if not s.is_action] == [(3.0, 12.0)]
    original = ann.build_segment_tables(videos, meta, rule="original", min_background=1.0)
    # The original keeps zero-length instances and instances outside the video, as its published tables do.
    assert [(s.t_start, s.t_end) for s in original.tables["train"] if s.is_action] == [
        (5.0, 5.0), (25.0, 30.0), (-1.0, 3.0), (12.0, 23.0)]
    assert sorted(p.kind for p in original.problems) == ["instance-outside-video", "instance-past-video-end",
                                                          "instance-past-video-end", "zero-length-instance"]
    assert not any(p.fatal for p in original.problems)


def test_unknown_labels_are_an_error(tmp_path):
    path = _anet_json(tmp_path, {"vid": {"subset": "training", "annotations": [
        {"segment": [1.0, 5.0], "label": "Archery"}, {"segment": [6.0, 9.0], "label": "Juggling kittens"}]}})
    videos, _ = ann.read_activitynet_style_json(path, ann.ACTIVITYNET_SUBSETS)
    with pytest.raises(TspVideoError, match="'Juggling kittens' \\(video vid\\)"):
        ann.require_known_labels(videos, read_label_map("activitynet"))


def test_generic_reader_non_ascii_subsets_and_ambiguous(tmp_path):
    path = _anet_json(tmp_path, {
        "vidéo_1": {"subset": "entraînement", "annotations": [
            {"segment": [1.0, 4.0], "label": "Café"}, {"segment": [6.0, 8.0], "label": "unsure"}]},
        "clip.2": {"subset": "val", "annotations": [{"segment": [0.0, 2.0], "label": "Thé"}]},
        "other": {"subset": "skip-me", "annotations": []},
    })
    videos, _ = ann.read_activitynet_style_json(
        path, ann.parse_subset_map("entraînement=train,val=valid"), file_prefixes=("",), ambiguous_label="unsure")
    assert [(v.video_name, v.split, v.file_keys) for v in videos] == [
        ("vidéo_1", "train", ("vidéo_1",)), ("clip.2", "valid", ("clip.2",))]
    assert videos[0].ambiguous == [(6.0, 8.0)] and len(videos[0].instances) == 1
    meta = ann.read_metadata_csv([_metadata_csv(tmp_path, [("vidéo_1.mkv", 10.0), ("clip.2.mp4", 5.0)])])
    result = ann.build_segment_tables(videos, meta, min_background=1.0)
    # The ambiguous span [6, 8] is kept out of the background.
    assert [(s.t_start, s.t_end) for s in result.tables["train"] if not s.is_action] == [
        (0.0, 1.0), (4.0, 6.0), (8.0, 10.0)]
    assert result.tables["valid"][0].filename == "clip.2.mp4"


def _metadata_csv(tmp_path, items, name="meta.csv"):
    path = tmp_path / name
    lines = ["filename,video-duration,fps,video-frames"]
    lines += [f"{f},{d},30,{round(d * 30)}" for f, d in items]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_subset_map_errors():
    assert ann.parse_subset_map(None) is None
    with pytest.raises(TspVideoError, match="SUBSET=SPLIT"):
        ann.parse_subset_map("training")
    with pytest.raises(TspVideoError, match="split name"):
        ann.parse_subset_map("training=tr/ain")


def _thumos_dir(tmp_path):
    root = tmp_path / "TH14" / "annotation"
    root.mkdir(parents=True)
    (root / "CricketBowling_val.txt").write_text("video_validation_0000002 1.0 3.0\n"
                                                 "video_validation_0000001  10.0 12.0\n", encoding="utf-8")
    (root / "CricketShot_val.txt").write_text("video_validation_0000001 11.5 13.0\n", encoding="utf-8")
    (root / "Ambiguous_val.txt").write_text("video_validation_0000001 20.0 24.0\n"
                                            "video_validation_0000003 2.0 3.0\n", encoding="utf-8")
    test = tmp_path / "TH14_test" / "annotation"
    test.mkdir(parents=True)
    (test / "Diving_test.txt").write_text("video_test_0000001 2.0 4.0\n", encoding="utf-8")
    return [tmp_path / "TH14", tmp_path / "TH14_test"]


def test_thumos_reader_splits_order_and_ambiguous(tmp_path):
    videos, problems = ann.read_thumos14_annotations(_thumos_dir(tmp_path), read_label_map("thumos14"))
    assert [(v.video_name, v.split) for v in videos] == [
        ("video_test_0000001", "test"), ("video_validation_0000001", "train"),
        ("video_validation_0000002", "train"), ("video_validation_0000003", "train")]
    first = videos[1]
    assert [i.label for i in first.instances] == ["CricketBowling", "CricketShot"]  # label-map order
    assert first.ambiguous == [(20.0, 24.0)]
    assert videos[3].instances == [] and videos[3].ambiguous == [(2.0, 3.0)]
    assert sum(p.kind == "missing-class-file" for p in problems) == 18 + 19  # val has 2 of 20 classes, test 1
    meta = {name: ann.VideoMeta(f"{name}.mp4", 30.0, 30.0, 900) for name in
            ["video_validation_0000001", "video_validation_0000002", "video_test_0000001"]}
    merged = ann.build_segment_tables(videos, meta, rule="merged", min_background=THUMOS_MIN)
    bg = [(s.t_start, s.t_end) for s in merged.tables["train"] if s.video_name.endswith("01") and not s.is_action]
    assert bg == [(0.0, 10.0), (13.0, 20.0), (24.0, 30.0)]  # Ambiguous [20, 24] is not background
    original = ann.build_segment_tables(videos, meta, rule="original", min_background=THUMOS_MIN)
    bg = [(s.t_start, s.t_end) for s in original.tables["train"] if s.video_name.endswith("01") and not s.is_action]
    assert bg == [(0.0, 10.0), (13.0, 30.0)]  # the original ignores Ambiguous
    assert [p.video for p in merged.problems if p.kind == "missing-video"] == ["video_validation_0000003"]


def test_thumos_unknown_class_file_and_bad_line(tmp_path):
    (tmp_path / "Juggling_val.txt").write_text("video_validation_0000001 1 2\n", encoding="utf-8")
    with pytest.raises(TspVideoError, match="Juggling"):
        ann.read_thumos14_annotations([tmp_path], read_label_map("thumos14"))
    (tmp_path / "Juggling_val.txt").unlink()
    (tmp_path / "Diving_val.txt").write_text("video_validation_0000001 1 two\n", encoding="utf-8")
    (tmp_path / "Billiards_val.txt").write_text("video_validation_0000002 20.0 5.0\n", encoding="utf-8")
    videos, problems = ann.read_thumos14_annotations([tmp_path], read_label_map("thumos14"))
    assert [p.detail for p in problems if p.kind == "bad-line"][0].endswith("Diving_val.txt:1: "
                                                                              "'video_validation_0000001 1 two'")
    reversed_line = [p for p in problems if p.kind == "bad-instance"]
    assert [(p.video, p.line, p.fatal) for p in reversed_line] == [("video_validation_0000002", 1, True)]
    assert reversed_line[0].detail.endswith("Billiards_val.txt:1: segment end 5.0 < start 20.0")
    assert set(ann.bad_input_videos(problems)) == {"video_validation_0000001", "video_validation_0000002"}
    assert not any(v.instances for v in videos)  # neither bad line became an instance
    (tmp_path / "Billiards_val.txt").unlink()
    with pytest.raises(TspVideoError, match="no THUMOS14 annotation files"):
        ann.read_thumos14_annotations([tmp_path / "x"] if (tmp_path / "x").mkdir() is None else [],
                                      read_label_map("thumos14"))


def test_metadata_csv_errors_and_keys(tmp_path):
    path = _metadata_csv(tmp_path, [("v_a.mp4", 10.0), ("sub/b.c.webm", 2.5), ("noext", 1.0)])
    meta = ann.read_metadata_csv([path])
    assert list(meta) == ["v_a", "b.c", "noext"] and meta["b.c"].frames == 75
    (tmp_path / "bad.csv").write_text("filename,fps\nx,1\n", encoding="utf-8")
    with pytest.raises(TspVideoError, match="missing column"):
        ann.read_metadata_csv([tmp_path / "bad.csv"])
    (tmp_path / "bad2.csv").write_text("filename,video-duration,fps,video-frames\nx,abc,30,1\n",
                                       encoding="utf-8")
    with pytest.raises(TspVideoError, match="bad2.csv: line 2"):
        ann.read_metadata_csv([tmp_path / "bad2.csv"])


# The two videos of the original thumos14_valid_tsp_groundtruth.csv with action instances that start after
# the video's end (HighJump 113.6 and 120.5 s in a 112.53 s video, SoccerPenalty 84.3 and 85.9 s in an 83 s
# one): the published rows, actions in annotation-file order, then background.
PUBLISHED_PAST_END = {
    "video_validation_0000364": ("HighJump", "112.53333333333332", "3376", [
        "23.0,32.4", "74.6,80.0", "86.5,91.5", "95.2,98.6", "113.6,117.3", "120.5,127.0", "53.6,64.3", "98.6,106.7",
    ], ["0.0,23.0", "32.4,53.6", "64.3,74.6", "80.0,86.5", "91.5,95.2", "106.7,113.6", "117.3,120.5"]),
    "video_validation_0000856": ("SoccerPenalty", "83.0", "2490", [
        "19.9,21.4", "56.6,61.1", "63.7,65.0", "84.3,85.5", "85.9,91.5", "8.5,10.0", "35.2,38.9", "70.4,71.3",
        "72.2,76.0",
    ], ["0.0,8.5", "10.0,19.9", "21.4,35.2", "38.9,56.6", "61.1,63.7", "65.0,70.4", "76.0,84.3"]),
}


def test_thumos_original_rule_keeps_instances_past_the_video_end(tmp_path):
    """All published rows come back: the instances after the end, and background reaching past the end."""
    expected, metadata = [], {}
    for name, (label, duration, frames, actions, _) in PUBLISHED_PAST_END.items():
        with open(tmp_path / f"{label}_val.txt", "a", encoding="utf-8") as f:
            f.writelines(f"{name} {span.replace(',', ' ')}\n" for span in actions)
        tail = f"{duration},{name}.mp4,30.0,{frames}"
        expected += [(f"{name},{span},{label},{tail},Action") for span in actions]
        metadata[name] = ann.VideoMeta(f"{name}.mp4", float(duration), 30.0, int(frames))
    expected = ([r for r in expected if "364" in r] + [r for r in expected if "856" in r]
                + [f"{name},{span},,{duration},{name}.mp4,30.0,{frames},No action"
                   for name, (_, duration, frames, _, background) in PUBLISHED_PAST_END.items() for span in background])
    parsed, _ = ann.read_thumos14_annotations([tmp_path], read_label_map("thumos14"))
    result = ann.build_segment_tables(parsed, metadata, rule="original", min_background=THUMOS_MIN)
    write_segment_table(result.tables["train"], tmp_path / "train.csv")
    produced = (tmp_path / "train.csv").read_text(encoding="utf-8").splitlines()[1:]
    produced_actions = [r for r in produced if r.endswith(",Action")]
    expected_actions = [r for r in expected if r.endswith(",Action")]
    matching = sum(a == b for a, b in zip(produced_actions, expected_actions, strict=False))
    assert matching / len(expected_actions) == 1.0 and len(produced_actions) == len(expected_actions)
    assert produced == expected
    assert sum(p.kind == "instance-outside-video" and "kept as annotated" in p.detail for p in result.problems) == 4
