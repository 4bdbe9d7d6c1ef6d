"""``tspvideo export``: names, layouts, resizing and annotation files for each downstream localizer."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from tspvideo.commands import export as export_command
from tspvideo.core.errors import TspVideoError
from tspvideo.core.grid import clip_centers
from tspvideo.localization.export import (
    export_features,
    read_feature_folder,
    resize_temporal,
    resized_times,
)

CHANNELS = 8
# Feature stems as `tspvideo extract` names them (video file stems): one already carries "v_".
VIDEOS = {"abc": 40.0, "v_def": 23.5, "ghi": 11.0}


def _num_features(duration: float, clip_len: int = 16, stride: int = 16, fps: float = 15.0) -> int:
    return (int(duration * fps) - clip_len) // stride + 1


def write_feature_folder(root: Path, videos: dict[str, float] = VIDEOS, seed: int = 0) -> dict[str, np.ndarray]:
    """Random ``[T, C]`` arrays + sidecars as ``tspvideo extract`` writes them."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for stem, duration in videos.items():
        t = _num_features(duration)
        arrays[stem] = rng.normal(size=(t, CHANNELS)).astype(np.float32)
        np.save(root / f"{stem}.npy", arrays[stem])
        sidecar = {"model": "r2plus1d_34", "weights": "random", "clip_len": 16, "fps": 15, "stride": 16,
                   "num_features": t, "feature_times": clip_centers(t).tolist(), "video_duration": duration}
        (root / f"{stem}.json").write_text(json.dumps(sidecar))
    return arrays


def write_annotations(path: Path) -> dict:
    database = {
        "abc": {"subset": "training", "duration": 40.0,
                "annotations": [{"segment": [2.0, 9.5], "label": "Zumba"},
                                {"segment": [20.0, 30.0], "label": "Archery"}]},
        "def": {"subset": "validation", "duration": 23.5,
                "annotations": [{"segment": [5.0, 12.0], "label": "Bowling"}]},
        "ghi": {"subset": "validation", "duration": 11.0, "annotations": []},
        "nofeat": {"subset": "validation", "duration": 30.0,
                   "annotations": [{"segment": [1.0, 2.0], "label": "Zumba"}]},
    }
    gt = {"version": "test", "database": database}
    path.write_text(json.dumps(gt))
    return gt


@pytest.fixture
def features(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray], Path]:
    feature_dir = tmp_path / "features"
    arrays = write_feature_folder(feature_dir)
    ann = tmp_path / "ann.json"
    write_annotations(ann)
    return feature_dir, arrays, ann


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    export_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


# ---- resizing ------------------------------------------------------------------------------------


def test_resize_linear_ramp_gives_ramp_at_bin_centres():
    t = 30
    times = clip_centers(t)
    duration = float(times[-1] + 8 / 15)
    slopes = np.linspace(-2.0, 3.0, CHANNELS)
    feats = (times[:, None] * slopes[None, :] + 1.0).astype(np.float32)
    out = resize_temporal(feats, times, duration, 100)
    assert out.shape == (100, CHANNELS) and out.dtype == np.float32
    targets = resized_times(duration, 100)
    np.testing.assert_allclose(targets, (np.arange(100) + 0.5) * duration / 100)
    clamped = np.clip(targets, times[0], times[-1])  # edge features are held outside the centres
    np.testing.assert_allclose(out, clamped[:, None] * slopes[None, :] + 1.0, rtol=1e-5, atol=1e-5)


def test_resize_keeps_channels_separate_and_handles_one_feature():
    feats = np.eye(4, dtype=np.float32)[[0, 0, 1, 1]]  # channel 0 then channel 1 active
    out = resize_temporal(feats, clip_centers(4), 4 * 16 / 15, 8)
    assert np.all(out[:, 2:] == 0)
    np.testing.assert_allclose(out[:, 0] + out[:, 1], 1.0, atol=1e-6)
    single = resize_temporal(np.ones((1, 3), np.float32), clip_centers(1), 1.2, 5)
    assert single.shape == (5, 3) and np.all(single == 1)


# ---- per-format layout ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["actionformer", "tridet"])
def test_actionformer_layout(features, tmp_path, fmt):
    feature_dir, arrays, ann = features
    out = tmp_path / fmt
    result = export_features(feature_dir, fmt, out, annotations=ann, prefix="v_")
    # the loader opens feat_folder / (file_prefix + id + file_ext) and transposes [T, C] itself
    for stem, array in arrays.items():
        name = stem if stem.startswith("v_") else "v_" + stem
        np.testing.assert_array_equal(np.load(out / f"{name}.npy"), array)
    db = json.loads((out / "annotations.json").read_text())["database"]
    assert sorted(db) == ["abc", "def", "ghi"]  # keys without the prefix; no features -> left out
    assert all((out / f"v_{key}.npy").is_file() for key in db)
    assert db["abc"]["fps"] == 15 and db["abc"]["subset"] == "training"
    ids = {a["label"]: a["label_id"] for v in db.values() for a in v["annotations"]}
    assert ids == {"Archery": 0, "Bowling": 1, "Zumba": 2}
    assert (out / "missing_features.txt").read_text().split() == ["nofeat"]
    cfg = result.config
    assert (cfg["feat_stride"], cfg["num_frames"], cfg["default_fps"], cfg["file_prefix"]) == (16, 16, 15, "v_")
    assert cfg["input_dim"] == CHANNELS and cfg["file_ext"] == ".npy"
    # ActionFormer's seconds -> grid mapping (t * fps - num_frames / 2) / feat_stride hits feature i
    times = read_feature_folder(feature_dir)[0].feature_times
    grid = (times * cfg["default_fps"] - 0.5 * cfg["num_frames"]) / cfg["feat_stride"]
    np.testing.assert_allclose(grid, np.arange(len(times)), atol=1e-9)
    info = json.loads((out / "export_info.json").read_text())
    assert info["config"]["feat_stride"] == 16
    assert "feat_stride: 16" in (out / "README_export.txt").read_text()


def test_opentad_layout(features, tmp_path):
    feature_dir, arrays, ann = features
    out = tmp_path / "opentad"
    result = export_features(feature_dir, "opentad", out, annotations=ann, prefix="v_")
    assert (out / "category_idx.txt").read_text().splitlines() == ["Archery", "Bowling", "Zumba"]
    db = json.loads((out / "annotations.json").read_text())["database"]
    cfg = result.config
    for key, info in db.items():
        # LoadFeats opens data_path + f"{prefix}{video_name}{suffix}.{feat_format}"
        path = Path(cfg["data_path"]) / f"{cfg['prefix']}{key}{cfg['suffix']}.{cfg['feat_format']}"
        assert np.load(path).shape[1] == CHANNELS
        assert info["frame"] == round(info["duration"] * 15)
    assert (cfg["feature_stride"], cfg["offset_frames"], cfg["fps"], cfg["sample_stride"]) == (16, 8, 15, 1)
    times = clip_centers(arrays["abc"].shape[0])
    grid = (times * cfg["fps"] - cfg["offset_frames"]) / cfg["feature_stride"]
    np.testing.assert_allclose(grid, np.arange(len(times)), atol=1e-9)


def test_gtad_hdf5_keys_and_resizing(features, tmp_path):
    feature_dir, arrays, ann = features
    out = tmp_path / "gtad"
    result = export_features(feature_dir, "gtad", out, annotations=ann)  # prefix defaults to v_
    h5_path = Path(result.config["feature_path"])
    with h5py.File(h5_path, "r") as h5:
        assert sorted(h5.keys()) == ["v_abc", "v_def", "v_ghi"]
        for stem, array in arrays.items():
            key = stem if stem.startswith("v_") else "v_" + stem
            data = h5[key][()]
            assert data.shape == (100, CHANNELS) and data.dtype == np.float32
            expected = resize_temporal(array, clip_centers(len(array)), VIDEOS[stem], 100)
            np.testing.assert_allclose(data, expected, rtol=1e-6)
    with open(out / "video_info_new.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["video"] for r in rows} == {"v_abc", "v_def", "v_ghi"}
    assert {r["video"]: r["subset"] for r in rows}["v_abc"] == "training"
    anno = json.loads((out / "anet_anno_action.json").read_text())
    for name, info in anno.items():
        # BMN/G-TAD: corrected_second = feature_frame / duration_frame * duration_second; post-processing
        # scales by duration_frame // 16 * 16 / duration_frame: both must give back the duration
        assert info["feature_frame"] == info["duration_frame"] and info["duration_frame"] % 16 == 0
        assert info["duration_second"] == pytest.approx(VIDEOS[name if name in VIDEOS else name[2:]])
        assert name[2:] in json.loads(ann.read_text())["database"]  # post-processing strips "v_"


def test_bmn_csv_per_video(features, tmp_path):
    feature_dir, arrays, ann = features
    out = tmp_path / "bmn"
    export_features(feature_dir, "bmn", out, annotations=ann, temporal_size=50)
    folder = out / "csv_mean_50"
    assert sorted(p.name for p in folder.iterdir()) == ["v_abc.csv", "v_def.csv", "v_ghi.csv"]
    with open(folder / "v_abc.csv", newline="") as f:
        rows = list(csv.reader(f))
    # pandas.read_csv(...).values: the first line is the header, then [S, C]
    assert len(rows) == 51 and all(len(r) == CHANNELS for r in rows)
    values = np.array(rows[1:], dtype=np.float64)
    expected = resize_temporal(arrays["abc"], clip_centers(len(arrays["abc"])), VIDEOS["abc"], 50)
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-6)
    assert (out / "video_info_new.csv").is_file() and (out / "anet_anno_action.json").is_file()


def test_pdvc_layout(features, tmp_path):
    feature_dir, arrays, ann = features
    out = tmp_path / "pdvc"
    result = export_features(feature_dir, "pdvc", out, annotations=ann)
    for stem, array in arrays.items():
        key = stem if stem.startswith("v_") else "v_" + stem
        np.testing.assert_array_equal(np.load(out / f"{key}.npy"), array)  # native [T, C]
    train = json.loads((out / "pdvc_training.json").read_text())
    assert train["v_abc"]["timestamps"] == [[2.0, 9.5], [20.0, 30.0]]
    assert train["v_abc"]["sentences"] == ["Zumba", "Archery"]
    assert result.config["feature_dim"] == CHANNELS and result.config["visual_feature_type"] == ["tsp"]
    assert any("512" in note for note in result.notes)  # PDVC's tsp type asserts 512 channels


def test_export_without_annotations_writes_only_features(features, tmp_path):
    feature_dir, arrays, _ = features
    out = tmp_path / "plain"
    export_features(feature_dir, "actionformer", out)
    assert sorted(p.name for p in out.glob("*.npy")) == ["abc.npy", "ghi.npy", "v_def.npy"]
    assert not (out / "annotations.json").exists()


# ---- errors and CLI ------------------------------------------------------------------------------


def test_bad_file_is_reported_and_the_rest_exported(features, tmp_path, capsys):
    feature_dir, arrays, ann = features
    (feature_dir / "broken.npy").write_bytes(b"not an npy file")
    out = tmp_path / "cli"
    code = _run_cli(["export", str(feature_dir), "--format", "opentad", "--out", str(out),
                     "--annotations", str(ann)])
    assert code == 1
    assert "broken.npy" in (out / "failures.txt").read_text()
    assert len(list(out.glob("*.npy"))) == len(arrays)
    assert "feature_stride: 16" in capsys.readouterr().out


def test_cli_ok_and_user_errors(features, tmp_path):
    feature_dir, _, ann = features
    assert _run_cli(["export", str(feature_dir), "--format", "gtad", "--out", str(tmp_path / "g"),
                     "--temporal-size", "32"]) == 0
    with h5py.File(tmp_path / "g" / "gtad_features_32.hdf5", "r") as h5:
        assert h5["v_abc"].shape == (32, CHANNELS)
    with pytest.raises(TspVideoError, match="does not exist"):
        export_features(tmp_path / "nope", "bmn", tmp_path / "x")
    with pytest.raises(TspVideoError, match="unknown export format"):
        export_features(feature_dir, "bsn", tmp_path / "x")
    (feature_dir / "abc.json").write_text(json.dumps({"num_features": 3}))
    with pytest.raises(TspVideoError, match="num_features"):
        read_feature_folder(feature_dir)


# ---- exports that run in the localizers as printed -------------------------------------------------


def _actionformer_accepts(max_seq_len: int, windows: list[int]) -> bool:
    """ActionFormer's model check: max_seq_len divisible by fpn stride x window at each of its 6 levels."""
    return all(max_seq_len % (2 ** level * (w // 2) * 2 if w > 1 else 2 ** level) == 0
               for level, w in enumerate(windows))


def test_actionformer_max_seq_len_passes_the_models_check(tmp_path):
    feature_dir = tmp_path / "features"
    write_feature_folder(feature_dir, {"long": 1000.0, "short": 5.0})  # 937 features
    result = export_features(feature_dir, "actionformer", tmp_path / "out")
    max_seq_len = result.config["max_seq_len"]
    assert max_seq_len >= 937 and result.config["force_upsampling"] is False
    assert _actionformer_accepts(max_seq_len, [19] * 6)  # THUMOS14 configs
    assert _actionformer_accepts(max_seq_len, [7, 7, 7, 7, 7, -1])  # ActivityNet TSP config
    assert not _actionformer_accepts(64, [19] * 6)  # the value printed before
    note = next(n for n in result.notes if "max_seq_len" in n)
    assert "max_seq_len: 192 and force_upsampling: True" in note


@pytest.mark.parametrize("fmt", ["actionformer", "tridet", "gtad", "bmn"])
def test_training_videos_without_instances_are_left_out_and_listed(tmp_path, fmt):
    feature_dir = tmp_path / "features"
    write_feature_folder(feature_dir, {**VIDEOS, "jkl": 15.0})
    gt = write_annotations(tmp_path / "ann.json")
    gt["database"]["jkl"] = {"subset": "training", "duration": 15.0, "annotations": []}
    result = export_features(feature_dir, fmt, tmp_path / "out", annotations=gt, prefix="v_")
    out = tmp_path / "out"
    if fmt in ("actionformer", "tridet"):
        keys = set(json.loads((out / "annotations.json").read_text())["database"])
        assert keys == {"abc", "def", "ghi"}  # jkl left out; the empty validation video ghi is kept
        assert (out / "v_jkl.npy").is_file()  # its features are still written
    else:
        keys = set(json.loads((out / "anet_anno_action.json").read_text()))
        assert keys == {"v_abc", "v_def", "v_ghi"}
        assert [row["video"] for row in csv.DictReader(open(out / "video_info_new.csv"))] == [
            "v_abc", "v_def", "v_ghi"]
    assert (out / "left_out_without_instances.txt").read_text().split() == ["jkl"]
    assert any("1 training video(s) without any instance were left out" in n and "jkl" in n for n in result.notes)
    assert any("validation hold videos without instances" in n for n in result.notes)
    assert "left_out_without_instances.txt" in (out / "README_export.txt").read_text()
    # Training on another subset (THUMOS14 trains on validation): its empty videos are left out instead.
    again = export_features(feature_dir, fmt, tmp_path / "again", annotations=gt, prefix="v_",
                            train_subsets=["validation"])
    assert (tmp_path / "again" / "left_out_without_instances.txt").read_text().split() == ["ghi"]
    assert any("subset(s) training hold videos without instances" in n for n in again.notes)


def test_export_cli_train_subset(features, tmp_path):
    feature_dir, _, ann = features
    out = tmp_path / "cli"
    assert _run_cli(["export", str(feature_dir), "--format", "bmn", "--out", str(out), "--annotations", str(ann),
                     "--train-subset", "validation"]) == 0
    assert (out / "left_out_without_instances.txt").read_text().split() == ["ghi"]


def test_actionformer_note_states_its_configs_checks_and_crop(tmp_path):
    """ActionFormer's step is fpn_stride x (window - 1): 96 with the ActivityNet windows, 576 with THUMOS14's."""
    anet, thumos = [7, 7, 7, 7, 7, -1], [19] * 6
    assert _actionformer_accepts(288, anet) and _actionformer_accepts(192, anet)
    assert not _actionformer_accepts(288, thumos) and not _actionformer_accepts(144, anet)
    feature_dir = tmp_path / "features"
    write_feature_folder(feature_dir, {"a": 30.0})
    note = next(n for n in export_features(feature_dir, "actionformer", tmp_path / "out").notes if "max_seq_len" in n)
    assert "fpn_stride x (window - 1)" in note and "of 96 with the ActivityNet" in note
    assert "crop every training video at random to 90-100 %" in note
