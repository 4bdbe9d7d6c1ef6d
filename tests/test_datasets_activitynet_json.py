"""One ActivityNet-JSON check for every command: a bad instance is refused the same way everywhere."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tspvideo.cli import main
from tspvideo.datasets.activitynet_json import AnnotationError, find_bad_annotations, read_annotation_database
from tspvideo.evaluation.io import load_ground_truth

GOOD = {"subset": "validation", "duration": 8.0, "annotations": [{"segment": [1.0, 3.0], "label": "Run"}]}


def _database(bad_segment):
    return {"database": {
        "a": GOOD,
        "b": {"subset": "validation", "duration": 8.0, "annotations": [
            {"segment": [1.0, 2.0], "label": "Run"}, {"segment": bad_segment, "label": "Run"}]},
        "c": {"subset": "validation", "duration": 8.0, "annotations": [{"segment": [2.0, 1.0], "label": "Run"}]},
    }}


def test_every_bad_entry_is_listed_with_video_and_index():
    bad = find_bad_annotations(_database("1-6")["database"])
    assert [(b.video, b.index) for b in bad] == [("b", 1), ("c", 0)]
    with pytest.raises(AnnotationError) as info:
        read_annotation_database(_database("1-6"), what="gt")
    message = str(info.value)
    assert message.startswith("gt: 2 bad annotation entries in 2 videos:")
    assert "database['b']['annotations'][1]: 'segment' must be [start, end], got '1-6'" in message
    assert "database['c']['annotations'][0]: segment end 1.0 < start 2.0" in message


@pytest.mark.parametrize("segment, problem", [
    (["1", "6"], "must hold two finite numbers"),  # text is not a time, even when it reads as one
    ([float("nan"), 2.0], "must hold two finite numbers"),
    ([1.0], "must be [start, end]"),
    ([5.0, 5.0], None),  # zero length passes the check; each command decides what it means
])
def test_segment_checks(segment, problem):
    bad = find_bad_annotations({"v": {"annotations": [{"segment": segment, "label": "x"}]}})
    if problem is None:
        assert bad == []
    else:
        assert len(bad) == 1 and problem in bad[0].problem


def test_only_selected_subsets_are_checked():
    database = {"a": GOOD, "t": {"subset": "testing", "annotations": [{"segment": [3.0, 1.0], "label": "x"}]}}
    assert find_bad_annotations(database, {"validation"}) == []
    assert [b.video for b in find_bad_annotations(database)] == ["t"]
    assert [b.problem for b in find_bad_annotations({"x": {"annotations": []}}, require_subset=True)] == [
        "missing key 'subset'"]


@pytest.fixture
def features(tmp_path):
    folder = tmp_path / "features"
    folder.mkdir()
    for name in "abc":
        np.save(folder / f"{name}.npy", np.random.default_rng(0).standard_normal((6, 8)).astype(np.float32))
    return folder


@pytest.mark.parametrize("bad_segment", ["1-6", [9.0, 4.0]])
def test_export_probe_similarity_and_eval_refuse_the_same_file(tmp_path, features, capsys, bad_segment):
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(_database(bad_segment)), encoding="utf-8")
    preds = tmp_path / "pred.json"
    preds.write_text(json.dumps({"results": {"a": [{"segment": [1.0, 3.0], "label": "Run", "score": 1.0}]}}))
    commands = {
        "export": ["export", str(features), "--format", "actionformer", "--out", str(tmp_path / "export"),
                   "--annotations", str(gt)],
        "probe": ["probe", str(features), "--annotations", str(gt), "--out", str(tmp_path / "probe"),
                  "--train-subset", "validation", "--epochs", "1", "--quiet"],
        "similarity": ["similarity", str(features / "a.npy"), "--annotations", str(gt)],
        "similarity --compare": ["similarity", "--compare", str(features), str(features), "--annotations", str(gt)],
        "eval": ["eval", "detection", "--gt", str(gt), "--pred", str(preds)],
    }
    for name, argv in commands.items():
        assert main(argv) == 2, name
        err = capsys.readouterr().err
        assert "2 bad annotation entries in 2 videos" in err, name
        assert "database['b']['annotations'][1]" in err and "database['c']['annotations'][0]" in err, name
    assert not (tmp_path / "export").exists() and not (tmp_path / "probe").exists()  # nothing written


def test_load_ground_truth_and_export_accept_a_good_file(tmp_path, features):
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"database": {"a": GOOD}}), encoding="utf-8")
    assert load_ground_truth(gt).num_instances == 1
    assert main(["export", str(features), "--format", "actionformer", "--out", str(tmp_path / "e"),
                 "--annotations", str(gt)]) == 0
