"""HDF5 feature files (released-style or merged) as inputs wherever a feature folder goes.

The synthetic released-style files hold features that encode their own index (row i is ``i`` plus a
small per-channel offset), so where a consumer places each feature on the time line can be read back.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from tspvideo.cli import main
from tspvideo.core.errors import TspVideoError
from tspvideo.evaluation.similarity import dataset_temporal_sensitivity, load_features
from tspvideo.extract import provenance
from tspvideo.features.folder import FeatureSource, Grid, read_features, read_sidecar
from tspvideo.features.gvf import read_gvf, write_gvf
from tspvideo.localization.export import FORMATS, export_features, resized_times
from tspvideo.localization.probe import run_probe

CHANNELS = 6
# Released ActivityNet files are keyed "v_<id>"; the annotation JSON uses bare ids.
LENGTHS = {"v_abc": 37, "v_def": 22, "v_ghi": 11, "v_nolabel": 9}
ANNOTATIONS = {
    "abc": {"subset": "training", "duration": 40.0,
            "annotations": [{"segment": [2.0, 9.5], "label": "Zumba"}, {"segment": [20.0, 30.0], "label": "Archery"}]},
    "def": {"subset": "validation", "duration": 23.5,
            "annotations": [{"segment": [5.0, 12.0], "label": "Zumba"}]},
    "ghi": {"subset": "training", "duration": 12.0,
            "annotations": [{"segment": [1.0, 6.0], "label": "Archery"}]},
    "nofeat": {"subset": "validation", "duration": 30.0, "annotations": [{"segment": [1.0, 2.0], "label": "Zumba"}]},
}
RELEASED_ANET = "r2plus1d_34-tsp_on_activitynet-valid_features.h5"
RELEASED_THUMOS = "r2plus1d_34-tsp_on_thumos14-valid_features.h5"


def index_features(length: int, seed: int = 0) -> np.ndarray:
    """Row i is i (+ c/100 in channel c, + small noise in the last channel so that probes have signal)."""
    rows = np.arange(length, dtype=np.float32)[:, None] + np.arange(CHANNELS, dtype=np.float32)[None] / 100
    rows[:, -1] = np.random.default_rng(seed + length).normal(size=length)
    return rows.astype(np.float32)


def write_released_style(path: Path, lengths: dict[str, int] = LENGTHS, attrs: dict | None = None) -> dict:
    """An HDF5 as the authors released: one [T, C] dataset per video-name, gzip, no attributes."""
    arrays = {key: index_features(t) for key, t in lengths.items()}
    with h5py.File(path, "w") as h5:
        for key, array in arrays.items():
            h5.create_dataset(key, data=array, compression="gzip")
        h5.attrs.update(attrs or {})
    return arrays


def write_equivalent_folder(folder: Path, arrays: dict, clip_len: int = 16, fps: float = 15.0,
                            stride: int = 16) -> Path:
    """The same features as a .npy folder whose sidecars state the grid."""
    folder.mkdir(parents=True, exist_ok=True)
    for key, array in arrays.items():
        np.save(folder / f"{key}.npy", array)
        (folder / f"{key}.json").write_text(json.dumps({"clip_len": clip_len, "fps": fps, "stride": stride}))
    return folder


def written_files(out: Path) -> dict[str, object]:
    """Every file an export wrote (HDF5 as arrays, text with the output folder blanked)."""
    files: dict[str, object] = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        name = str(path.relative_to(out))
        if path.suffix == ".hdf5":
            with h5py.File(path) as h5:
                files[name] = {k: h5[k][()].tolist() for k in h5}
        elif path.suffix == ".npy":
            files[name] = np.load(path).tolist()
        else:
            files[name] = path.read_text(encoding="utf-8").replace(str(out), "OUT")
    return files


@pytest.fixture
def annotations(tmp_path) -> Path:
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"version": "test", "database": ANNOTATIONS}))
    return path


@pytest.mark.parametrize("fmt", FORMATS)
def test_exporting_an_h5_with_flags_writes_what_the_equivalent_folder_writes(tmp_path, annotations, fmt):
    arrays = write_released_style(tmp_path / "feats.h5")
    folder = write_equivalent_folder(tmp_path / "folder", arrays)
    from_h5 = export_features(tmp_path / "feats.h5", fmt, tmp_path / "a", annotations=annotations,
                              grid=Grid(clip_len=16, fps=15, stride=16))
    from_folder = export_features(folder, fmt, tmp_path / "b", annotations=annotations)
    assert written_files(tmp_path / "a") == written_files(tmp_path / "b")
    assert from_h5.num_videos == from_folder.num_videos == len(LENGTHS) and not from_h5.failures


def test_cli_export_of_an_h5_with_its_own_attributes_needs_no_flags(tmp_path, annotations):
    arrays = write_released_style(tmp_path / "feats.h5", attrs={"clip_len": 16, "fps": 15.0, "stride": 16})
    folder = write_equivalent_folder(tmp_path / "folder", arrays)
    assert main(["export", str(tmp_path / "feats.h5"), "--format", "actionformer", "--annotations",
                 str(annotations), "--out", str(tmp_path / "a")]) == 0
    assert main(["export", str(folder), "--format", "actionformer", "--annotations", str(annotations),
                 "--out", str(tmp_path / "b")]) == 0
    assert written_files(tmp_path / "a") == written_files(tmp_path / "b")


def test_h5_without_grid_and_without_flags_is_refused_naming_the_flags(tmp_path, annotations, capsys):
    write_released_style(tmp_path / "mine.h5")
    code = main(["export", str(tmp_path / "mine.h5"), "--format", "actionformer", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "mine.h5" in err and "--clip-len, --stride and --fps" in err
    with pytest.raises(TspVideoError, match="--clip-len"):  # two of three flags are not enough
        read_features(tmp_path / "mine.h5", Grid(clip_len=16, fps=15))


def test_flags_that_contradict_the_file_are_refused(tmp_path):
    write_released_style(tmp_path / "feats.h5", attrs={"clip_len": 16, "fps": 15.0, "stride": 16})
    with pytest.raises(TspVideoError, match="stride is 16 by its attributes but 1 by the flags"):
        read_features(tmp_path / "feats.h5", Grid(stride=1))
    write_released_style(tmp_path / RELEASED_THUMOS)
    with pytest.raises(TspVideoError, match="stride is 1 by the released file thumos14-valid but 16 by the flags"):
        read_features(tmp_path / RELEASED_THUMOS, Grid(stride=16))


@pytest.mark.parametrize("filename, stride", [(RELEASED_ANET, 16), (RELEASED_THUMOS, 1)])
def test_released_grid_places_feature_i_at_i_stride_plus_8_over_15(tmp_path, annotations, filename, stride):
    # A file under the authors' name takes the grid the authors state, without attributes or flags.
    write_released_style(tmp_path / filename)
    videos = read_features(tmp_path / filename)
    for video in videos:
        np.testing.assert_allclose(video.feature_times, (np.arange(video.num_features) * stride + 8) / 15)
        assert video.duration == pytest.approx(((video.num_features - 1) * stride + 16) / 15)
    result = export_features(tmp_path / filename, "actionformer", tmp_path / "af", annotations=annotations)
    assert (result.config["feat_stride"], result.config["num_frames"], result.config["default_fps"]) == (stride, 16, 15)
    # ActionFormer's loader maps t to (t * fps - num_frames / 2) / feat_stride: feature index == that value.
    first = np.load(tmp_path / "af" / "v_abc.npy")
    t = (np.arange(len(first)) * stride + 8) / 15
    np.testing.assert_allclose(first[:, 0], (t * 15 - 8) / stride, atol=1e-4)
    # G-TAD resizes by time: position k reads the feature index at time (k + 0.5) * D / S.
    export_features(tmp_path / filename, "gtad", tmp_path / "gtad", annotations=annotations, temporal_size=50)
    with h5py.File(tmp_path / "gtad" / "gtad_features_50.hdf5") as h5:
        resized = h5["v_abc"][()]
    abc = next(v for v in videos if v.stem == "v_abc")
    expected = np.clip((resized_times(abc.duration, 50) * 15 - 8) / stride, 0, abc.num_features - 1)
    np.testing.assert_allclose(resized[:, 0], expected, atol=1e-4)


def test_keys_match_annotation_ids_with_and_without_v_and_mismatches_are_reported(tmp_path, annotations):
    write_released_style(tmp_path / "feats.h5")
    result = export_features(tmp_path / "feats.h5", "actionformer", tmp_path / "a", annotations=annotations,
                             grid=Grid(16, 15, 16))
    database = json.loads((tmp_path / "a" / "annotations.json").read_text())["database"]
    assert sorted(database) == ["v_abc", "v_def", "v_ghi"]  # file names v_<id>: the loader adds no prefix
    assert result.missing_features == ["nofeat"]
    assert any("1 of 4 feature videos match no annotated video (e.g. v_nolabel)" in n for n in result.notes)


def test_probe_on_an_h5_equals_probe_on_the_folder(tmp_path, annotations):
    arrays = write_released_style(tmp_path / "feats.h5")
    folder = write_equivalent_folder(tmp_path / "folder", arrays)
    a = run_probe(tmp_path / "feats.h5", annotations, tmp_path / "pa", epochs=2, grid=Grid(16, 15, 16))
    b = run_probe(folder, annotations, tmp_path / "pb", epochs=2)
    assert a == b
    assert a["feature_match"]["annotations_without_features"] == 1
    assert a["feature_match"]["features_without_annotations"] == 1
    for name in ("predictions.json", "proposals.json"):
        assert (tmp_path / "pa" / name).read_text() == (tmp_path / "pb" / name).read_text()


def test_similarity_on_an_h5_equals_similarity_on_the_folder(tmp_path, annotations):
    arrays = write_released_style(tmp_path / "feats.h5", attrs={"clip_len": 16, "fps": 15.0, "stride": 16})
    folder = write_equivalent_folder(tmp_path / "folder", arrays)
    a = dataset_temporal_sensitivity(tmp_path / "feats.h5", annotations)
    b = dataset_temporal_sensitivity(folder, annotations)
    a.pop("feature_dir"), b.pop("feature_dir")
    assert a == b and a["summary"]["num_videos"] == 3
    assert a["feature_match"].startswith("1 of 4 annotated videos have no features (e.g. nofeat)")


def test_gvf_from_an_h5_needs_no_grid_and_equals_gvf_from_the_folder(tmp_path):
    arrays = write_released_style(tmp_path / "feats.h5")
    folder = write_equivalent_folder(tmp_path / "folder", arrays)
    assert main(["gvf", str(tmp_path / "feats.h5"), "--out", str(tmp_path / "a.h5")]) == 0
    write_gvf(folder, tmp_path / "b.h5")
    a, b = read_gvf(tmp_path / "a.h5"), read_gvf(tmp_path / "b.h5")
    assert sorted(a) == sorted(LENGTHS)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize("flags", [["--clip-len", "0"], ["--stride", "4", "--fps", "30"], ["--model", "x"],
                                   ["--features-out", "f"]])
def test_gvf_of_features_refuses_extraction_options_it_would_ignore(tmp_path, capsys, flags):
    write_released_style(tmp_path / "feats.h5")
    assert main(["gvf", str(tmp_path / "feats.h5"), "--out", str(tmp_path / "a.h5"), *flags]) == 2
    err = capsys.readouterr().err
    assert flags[0] in err and "FEATURES are pooled as they are" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a.h5").exists()


def test_a_released_name_reads_the_cached_copy_or_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TSPVIDEO_CACHE", str(tmp_path))
    with pytest.raises(TspVideoError, match="tspvideo features download activitynet-valid"):
        read_features("activitynet-valid")
    (tmp_path / "features").mkdir()
    write_released_style(tmp_path / "features" / RELEASED_ANET)
    videos = read_features("activitynet-valid")
    assert [v.stem for v in videos] == sorted(LENGTHS) and {v.stride for v in videos} == {16}
    assert FeatureSource("activitynet-valid").stems() == sorted(LENGTHS)


def test_a_bad_dataset_is_a_failure_the_others_go_on(tmp_path, annotations):
    write_released_style(tmp_path / "feats.h5")
    with h5py.File(tmp_path / "feats.h5", "a") as h5:
        h5.create_dataset("v_flat", data=np.zeros(5, dtype=np.float32))
    result = export_features(tmp_path / "feats.h5", "actionformer", tmp_path / "a", grid=Grid(16, 15, 16))
    assert [f for f, _ in result.failures] == [f"{tmp_path / 'feats.h5'}:v_flat"]
    assert result.num_videos == len(LENGTHS)
    assert main(["export", str(tmp_path / "feats.h5"), "--format", "pdvc", "--out", str(tmp_path / "b"),
                 "--clip-len", "16", "--stride", "16", "--fps", "15"]) == 1


def test_sidecar_times_that_are_not_the_grid_are_kept(tmp_path):
    folder = write_equivalent_folder(tmp_path / "f", {"v_abc": index_features(5)})
    shifted = ((np.arange(5) * 16 + 8) / 15 + 0.25).tolist()
    (folder / "v_abc.json").write_text(json.dumps({"clip_len": 16, "fps": 15, "stride": 16, "feature_times": shifted}))
    np.testing.assert_allclose(read_features(folder)[0].feature_times, shifted)


def test_similarity_of_one_video_taken_out_of_an_h5(tmp_path, annotations, capsys):
    arrays = write_released_style(tmp_path / "feats.h5", attrs={"clip_len": 16, "fps": 15.0, "stride": 16})
    folder = write_equivalent_folder(tmp_path / "folder", arrays)
    common = ["--video", "abc", "--annotations", str(annotations)]
    assert main(["similarity", str(tmp_path / "feats.h5"), *common, "--json", str(tmp_path / "a.json")]) == 0
    assert main(["similarity", str(folder / "v_abc.npy"), *common, "--json", str(tmp_path / "b.json")]) == 0
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    assert list(a["scores"].values()) == list(b["scores"].values())
    assert main(["similarity", str(tmp_path / "feats.h5"), "--annotations", str(annotations)]) == 2
    assert "pass --video" in capsys.readouterr().err


def test_one_sidecar_reader_strict_for_grids_lenient_for_extra_attributes(tmp_path):
    """Readers that need the grid refuse a broken sidecar by name; attribute readers go on without it."""
    np.save(tmp_path / "a.npy", np.ones((2, 3), np.float32))
    assert read_sidecar(tmp_path / "a.npy") == {}  # no sidecar: nothing stated
    (tmp_path / "a.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(TspVideoError, match="a.json: cannot read feature sidecar JSON"):
        read_sidecar(tmp_path / "a.npy")
    with pytest.raises(TspVideoError, match="a.json: cannot read feature sidecar JSON"):
        load_features(tmp_path / "a.npy")
    assert read_sidecar(tmp_path / "a.npy", strict=False) == {}
    assert provenance.read_sidecar(tmp_path / "a.json") is None
    (tmp_path / "a.json").write_text('{"num_features": 2, "clip_len": 4}', encoding="utf-8")
    assert provenance.read_sidecar(tmp_path / "a.json") == {"num_features": 2, "clip_len": 4}
    assert load_features(tmp_path / "a.npy")[1].tolist() == [(0 * 16 + 2) / 15, (16 + 2) / 15]
