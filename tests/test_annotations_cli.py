"""``tspvideo annotations`` end to end (probing real small videos) and ``annotations check``."""

from __future__ import annotations

import csv
import json

import av
import numpy as np
import pytest

from tspvideo.cli import main
from tspvideo.datasets import annotations as ann
from tspvideo.datasets.segments import read_label_map, read_segment_table


def write_video(path, seconds=4.0, fps=10, size=(32, 24)):
    """A small real H.264 video of ``seconds`` at ``fps``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), i * 7 % 255, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_activitynet_probe_missing_and_unreadable_videos(tmp_path, capsys):
    videos = tmp_path / "videos"
    write_video(videos / "v_aaa.mp4", seconds=20.0)
    write_video(videos / "sub" / "bbb.mp4", seconds=12.0)  # found without the v_ prefix, in a sub-folder
    (videos / "v_bad.mp4").write_bytes(b"not a video")
    database = {
        "aaa": {"subset": "training", "duration": 20.0, "annotations": [
            {"segment": [2.0, 8.0], "label": "Archery"}, {"segment": [6.0, 9.0], "label": "Archery"}]},
        "bbb": {"subset": "validation", "duration": 12.0, "annotations": [
            {"segment": [0.0, 12.5], "label": "Ballet"}]},
        "bad": {"subset": "training", "duration": 5.0, "annotations": [{"segment": [1.0, 2.0], "label": "BMX"}]},
        "gone": {"subset": "training", "duration": 5.0, "annotations": [{"segment": [1.0, 2.0], "label": "BMX"}]},
        "hidden": {"subset": "testing", "duration": 5.0, "annotations": []},
    }
    (tmp_path / "anet.json").write_text(json.dumps({"database": database}), encoding="utf-8")
    out = tmp_path / "out"
    code = main(["annotations", "activitynet", str(tmp_path / "anet.json"), "--video-dir", str(videos),
                 "--out", str(out), "--min-background", "1.0", "--no-progress"])
    assert code == 1  # one missing and one unreadable video
    train = read_segment_table(out / "activitynet_v1-3_train_tsp_groundtruth.csv")
    assert [(s.t_start, s.t_end, s.region_label) for s in train] == [
        (2.0, 8.0, "Action"), (6.0, 9.0, "Action"), (0.0, 2.0, "No action"), (9.0, 20.0, "No action")]
    assert train[0].filename == "v_aaa.mp4" and train[0].video_name == "aaa"
    assert train[0].fps == 10.0 and train[0].video_frames == 200 and train[0].video_duration == 20.0
    valid = read_segment_table(out / "activitynet_v1-3_valid_tsp_groundtruth.csv")
    assert [(s.filename, s.t_end) for s in valid] == [("sub/bbb.mp4", 12.0)]  # clipped to the video
    assert _rows(out / "activitynet_v1-3_valid_metadata.csv") == [
        {"filename": "sub/bbb.mp4", "video-duration": "12.0", "fps": "10.0", "video-frames": "120"}]
    labels = json.loads((out / "activitynet_v1-3_action_label_mapping.json").read_text(encoding="utf-8"))
    assert labels == read_label_map("activitynet")
    problems = {(r["kind"], r["video"]) for r in _rows(out / "activitynet_v1-3_annotation_problems.csv")}
    assert {("missing-video", "gone"), ("unreadable-video", "v_bad"), ("missing-video", "bad"),
            ("instance-past-video-end", "bbb")} <= problems
    assert "missing-video: 2" in capsys.readouterr().out
    # The tables we write pass the check without errors.
    assert main(["annotations", "check", str(out / "activitynet_v1-3_train_tsp_groundtruth.csv"),
                 "--video-dir", str(videos), "--probe"]) == 0


def test_activitynet_from_metadata_csv_unknown_label(tmp_path, capsys):
    (tmp_path / "a.json").write_text(json.dumps({"database": {"x": {"subset": "training", "annotations": [
        {"segment": [1.0, 2.0], "label": "Unknown sport"}]}}}), encoding="utf-8")
    (tmp_path / "m.csv").write_text("filename,video-duration,fps,video-frames\nv_x.mp4,10,30,300\n")
    code = main(["annotations", "activitynet", str(tmp_path / "a.json"), "--metadata", str(tmp_path / "m.csv"),
                 "--out", str(tmp_path / "out")])
    assert code == 2 and "'Unknown sport'" in capsys.readouterr().err
    code = main(["annotations", "activitynet", str(tmp_path / "a.json"), "--out", str(tmp_path / "out")])
    assert code == 2 and "--video-dir" in capsys.readouterr().err


def test_thumos14_cli_with_metadata(tmp_path):
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "Diving_val.txt").write_text("video_validation_0000002 1.0 3.0\n"
                                                     "video_validation_0000001 4.0 6.0\n", encoding="utf-8")
    (tmp_path / "ann" / "Ambiguous_val.txt").write_text("video_validation_0000001 8.0 9.0\n", encoding="utf-8")
    (tmp_path / "ann" / "Diving_test.txt").write_text("video_test_0000001 1.0 2.0\n", encoding="utf-8")
    (tmp_path / "m.csv").write_text("filename,video-duration,fps,video-frames\n"
                                    "video_validation_0000002.mp4,10,30,300\n"
                                    "video_validation_0000001.mp4,12,30,360\n"
                                    "video_test_0000001.mp4,5,30,150\n", encoding="utf-8")
    out = tmp_path / "out"
    code = main(["annotations", "thumos14", str(tmp_path / "ann"), "--metadata", str(tmp_path / "m.csv"),
                 "--out", str(out)])
    assert code == 0
    train = read_segment_table(out / "thumos14_train_tsp_groundtruth.csv")
    # Metadata order, foreground first; Ambiguous [8, 9] is neither action nor background.
    assert [(s.video_name[-1], s.t_start, s.t_end, s.region_label) for s in train] == [
        ("2", 1.0, 3.0, "Action"), ("1", 4.0, 6.0, "Action"),
        ("2", 3.0, 10.0, "No action"),  # [0, 1] is shorter than --min-background 16/15 s
        ("1", 0.0, 4.0, "No action"), ("1", 6.0, 8.0, "No action"), ("1", 9.0, 12.0, "No action")]
    test = read_segment_table(out / "thumos14_test_tsp_groundtruth.csv")
    assert [(s.t_start, s.t_end) for s in test] == [(1.0, 2.0), (2.0, 5.0)]
    assert json.loads((out / "thumos14_action_label_mapping.json").read_text()) == read_label_map("thumos14")


def test_generic_cli_non_ascii(tmp_path):
    videos = tmp_path / "vidéos"
    write_video(videos / "clip_ü.mkv", seconds=6.0)
    (tmp_path / "a.json").write_text(json.dumps({"database": {
        "clip_ü": {"subset": "train", "annotations": [{"segment": [1.0, 3.0], "label": "Tänzchen"},
                                                        {"segment": [3.0, 4.0], "label": "Ärger"}]},
        "later": {"subset": "test", "annotations": []}}}, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "out"
    code = main(["annotations", "generic", str(tmp_path / "a.json"), "--video-dir", str(videos), "--out", str(out),
                 "--name", "mine", "--no-progress"])
    assert code == 0
    assert json.loads((out / "mine_action_label_mapping.json").read_text(encoding="utf-8")) == ["Tänzchen", "Ärger"]
    table = read_segment_table(out / "mine_train_tsp_groundtruth.csv")
    assert [(s.t_start, s.t_end, s.action_label) for s in table] == [
        (1.0, 3.0, "Tänzchen"), (3.0, 4.0, "Ärger"), (4.0, 6.0, None)]  # [0, 1] < one clip
    assert table[0].filename == "clip_ü.mkv"
    assert not (out / "mine_test_tsp_groundtruth.csv").exists()  # no annotated video in "test"


def _bad_generic_json(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"database": {
        "good": {"subset": "train", "annotations": [{"segment": [1.0, 3.0], "label": "Run"}]},
        "rev": {"subset": "train", "annotations": [{"segment": [1.0, 2.0], "label": "Run"},
                                                   {"segment": [20.0, 5.0], "label": "Run"}]},
        "text": {"subset": "train", "annotations": [{"segment": "1-6", "label": "Jump"}]}}}), encoding="utf-8")
    (tmp_path / "m.csv").write_text("filename,video-duration,fps,video-frames\ngood.mp4,10,30,300\n"
                                    "rev.mp4,30,30,900\ntext.mp4,10,30,300\n", encoding="utf-8")
    return tmp_path / "a.json", tmp_path / "m.csv"


def test_bad_instances_stop_the_build_and_write_nothing(tmp_path, capsys):
    # A reversed or malformed instance used to be dropped with a warning and its span written as background.
    path, metadata = _bad_generic_json(tmp_path)
    out = tmp_path / "out"
    code = main(["annotations", "generic", str(path), "--metadata", str(metadata), "--out", str(out)])
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "2 bad annotation entries in 2 video(s); nothing written" in err
    assert "video 'rev': database['rev']['annotations'][1]: segment end 5.0 < start 20.0" in err
    assert "video 'text': database['text']['annotations'][0]: 'segment' must be [start, end], got '1-6'" in err
    assert "--drop-bad-videos" in err


def test_drop_bad_videos_leaves_them_out_entirely(tmp_path, capsys):
    path, metadata = _bad_generic_json(tmp_path)
    out = tmp_path / "out"
    code = main(["annotations", "generic", str(path), "--metadata", str(metadata), "--out", str(out),
                 "--drop-bad-videos"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "left out 2 video(s) with bad annotations: rev, text" in printed
    # Left out as asked, with exit 0: listed as dropped, not as errors.
    assert "warning: dropped-video: 2" in printed and "error" not in printed
    table = read_segment_table(out / "dataset_train_tsp_groundtruth.csv")
    assert {s.video_name for s in table} == {"good"}  # not even rev's good instance or its background
    assert [r["filename"] for r in _rows(out / "dataset_train_metadata.csv")] == ["good.mp4"]
    listed = {(r["kind"], r["video"], r["fatal"]) for r in _rows(out / "dataset_annotation_problems.csv")}
    assert listed == {("dropped-video", "rev", "0"), ("dropped-video", "text", "0")}


@pytest.mark.parametrize("importer", ["activitynet", "thumos14"])
def test_dataset_importers_refuse_bad_instances(tmp_path, capsys, importer):
    if importer == "activitynet":
        source = tmp_path / "anet.json"
        source.write_text(json.dumps({"database": {"x": {"subset": "training", "annotations": [
            {"segment": [8.0, 2.0], "label": "Archery"}]}}}), encoding="utf-8")
        name, metadata_row = "x", "v_x.mp4,10,30,300"
    else:
        source = tmp_path / "ann"
        source.mkdir()
        (source / "Diving_val.txt").write_text("video_validation_0000001 8.0 2.0\n", encoding="utf-8")
        name, metadata_row = "video_validation_0000001", "video_validation_0000001.mp4,10,30,300"
    (tmp_path / "m.csv").write_text(f"filename,video-duration,fps,video-frames\n{metadata_row}\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["annotations", importer, str(source), "--metadata", str(tmp_path / "m.csv"),
                 "--out", str(out)]) == 2
    assert not out.exists()
    err = capsys.readouterr().err
    assert f"video {name!r}" in err and "segment end 2.0 < start 8.0" in err


CHECK_ROWS = [
    "a,1.0,5.0,Archery,20.0,a.mp4,30.0,600,Action",        # 2 ok
    "a,4.0,12.0,Archery,20.0,a.mp4,30.0,600,Action",       # 3 overlaps line 2 (same class)
    "a,3.0,2.0,Archery,20.0,a.mp4,30.0,600,Action",        # 4 end < start
    "a,25.0,30.0,Archery,20.0,a.mp4,30.0,600,Action",      # 5 outside the video
    "a,18.0,21.0,Archery,20.0,a.mp4,30.0,600,Action",      # 6 past the end
    "a,6.0,6.5,Archery,20.0,a.mp4,30.0,600,Action",        # 7 shorter than a clip
    "a,1.0,3.0,Juggling,20.0,a.mp4,30.0,600,Action",       # 8 label not in the map
    "a,10.0,16.0,,20.0,a.mp4,30.0,600,No action",          # 9 overlaps the action of line 3
    "b,0.0,5.0,,10.0,b.mp4,30.0,300,No action",            # 10 missing video file
    "b,1.0,2.0,,11.0,b.mp4,30.0,300,No action",            # 11 inconsistent duration
    "c,x,2.0,,10.0,c.mp4,30.0,300,No action",              # 12 not a number
    "a,1.0,5.0,Archery,20.0,a.mp4,30.0,600,Action",        # 13 duplicate of line 2
    "a,1.0,2.0,,20.0,a.mp4,30.0,600,Maybe",                # 14 bad region label
    "a,2.0,2.0,Archery,20.0,a.mp4,30.0,600,Action",        # 15 zero length (as in the published tables)
]


def test_check_reports_each_problem_with_its_line(tmp_path):
    path = tmp_path / "seg.csv"
    path.write_text(",".join(ann.SEGMENT_COLUMNS) + "\n" + "\n".join(CHECK_ROWS) + "\n", encoding="utf-8")
    write_video(tmp_path / "videos" / "a.mp4", seconds=20.0, fps=30)
    problems = ann.check_segment_table(path, label_map=["Archery"], video_dirs=[tmp_path / "videos"])
    found = {(p.line, p.kind, p.fatal) for p in problems}
    assert {(3, "overlapping-instances", False), (4, "reversed-segment", True), (5, "outside-video", False),
            (6, "past-video-end", False), (7, "too-short", False), (8, "unknown-label", True),
            (9, "background-overlaps-action", False), (10, "missing-video", True),
            (11, "inconsistent-video", True), (12, "bad-number", True), (13, "duplicate", False),
            (14, "bad-region-label", True), (15, "zero-length", False)} <= found
    assert not any(p.line == 2 for p in problems)


def test_check_cli_exit_codes(tmp_path, capsys):
    good = tmp_path / "good" / "x_train_tsp_groundtruth.csv"
    good.parent.mkdir()
    good.write_text(",".join(ann.SEGMENT_COLUMNS) + "\n" + CHECK_ROWS[0] + "\n"
                    "a,5.0,20.0,,20.0,a.mp4,30.0,600,No action\n", encoding="utf-8")
    (good.parent / "x_action_label_mapping.json").write_text('["Archery"]', encoding="utf-8")
    assert main(["annotations", "check", str(good)]) == 0
    assert "0 error(s), 0 warning(s)" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(ann.SEGMENT_COLUMNS) + "\n" + "\n".join(CHECK_ROWS) + "\n", encoding="utf-8")
    assert main(["annotations", "check", str(bad), "--label-map", "activitynet"]) == 1
    out = capsys.readouterr().out
    assert "bad.csv:4: error: reversed-segment" in out and "bad.csv:8: error: unknown-label" in out
    (tmp_path / "cols.csv").write_text("video-name,t-start\n", encoding="utf-8")
    assert main(["annotations", "check", str(tmp_path / "cols.csv")]) == 2


def test_original_rule_output_warns_about_nested_background(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"database": {"n": {"subset": "training", "annotations": [
        {"segment": [2.0, 30.0], "label": "Archery"}, {"segment": [5.0, 10.0], "label": "Ballet"}]}}}))
    (tmp_path / "m.csv").write_text("filename,video-duration,fps,video-frames\nv_n.mp4,40,30,1200\n")
    for rule, expected in [("original", 1), ("merged", 0)]:
        out = tmp_path / rule
        assert main(["annotations", "activitynet", str(tmp_path / "a.json"), "--metadata", str(tmp_path / "m.csv"),
                     "--out", str(out), "--background-rule", rule]) == 0
        problems = ann.check_segment_table(out / "activitynet_v1-3_train_tsp_groundtruth.csv",
                                           label_map=read_label_map("activitynet"))
        assert sum(p.kind == "background-overlaps-action" for p in problems) == expected
        assert not any(p.fatal for p in problems)


@pytest.mark.parametrize("argv", [["annotations"], ["annotations", "generic", "x.json", "--out", "o",
                                                    "--subset-map", "bad"]])
def test_usage_errors(tmp_path, argv, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
