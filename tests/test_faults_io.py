"""Output failures for real: a file size limit (RLIMIT_FSIZE), /dev/full and read-only folders.

Every failed write is one line naming the file and the cause, exit 1, nothing partial left, finished videos
kept, and the run stops at the first failure. Refused commands leave no empty output folder; an export never
writes over an earlier one without --overwrite.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import cut

import tspvideo.commands.extract as extract_command
from tspvideo.cli import main
from tspvideo.core import fileio
from tspvideo.core.errors import TspVideoError, WriteFailure
from tspvideo.core.grid import clip_centers
from tspvideo.localization.export import BEYOND_FEATURES_FILE, export_features
from tspvideo.models.encoder import Encoder, WeightsChoice
from tspvideo.video.synthetic import write_index_video

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE and SIGXFSZ are POSIX")


@contextlib.contextmanager
def file_size_limit(limit: int):
    """Files written meanwhile stop at ``limit`` bytes: a write beyond fails with EFBIG (SIGXFSZ ignored)."""
    import resource
    import signal

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def one_line_error(capsys, *words: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tspvideo ") and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


def hidden_or_partial(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


class WideEncoder(torch.nn.Module):
    """256 values per clip (1 KiB as float32): feature files grow with the video's length."""

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return clips.mean(dim=(2, 3, 4)).repeat(1, 86)[:, :256]


@pytest.fixture
def wide_encoder(monkeypatch):
    monkeypatch.setattr(extract_command, "weights_choice", lambda args: WeightsChoice("wide"))
    monkeypatch.setattr(extract_command, "load_chosen",
                        lambda args, choice: Encoder.of_module(WideEncoder(), weights="wide"))


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """a and c: 1 s (12 clips of 4 frames at stride 1, 12 KiB of features); b: 4 s (57 clips, 57 KiB)."""
    folder = tmp_path_factory.mktemp("videos")
    write_index_video(folder / "a.mp4", num_frames=30, fps=30, size=(64, 48))
    write_index_video(folder / "b.mp4", num_frames=120, fps=30, size=(64, 48))
    write_index_video(folder / "c.mp4", num_frames=30, fps=30, size=(64, 48))
    return folder


EXTRACT = ["--clip-len", "4", "--stride", "1", "--workers", "0", "--batch-size", "8", "--no-progress",
           "--amp", "fp32"]


# ----------------------------------------------------------------------------------------------------
# Writes that fail, for real
# ----------------------------------------------------------------------------------------------------


@posix_only
def test_extract_stops_at_the_first_file_it_cannot_write_and_keeps_the_finished_ones(videos, tmp_path, capsys,
                                                                                       wide_encoder):
    source = tmp_path / "videos"
    shutil.copytree(videos, source)
    (source / "a_broken.mp4").write_bytes(b"\x00" * 2000)  # fails to decode before the write failure
    out = tmp_path / "out"
    with file_size_limit(32 * 1024):  # a's features fit, b's do not
        code = main(["extract", str(source), "--out", str(out), *EXTRACT])
    assert code == 1
    one_line_error(capsys, f"cannot write {out / 'b.npy'}: file size limit reached (File too large)", "ulimit -f",
                   "finished outputs are kept")
    # a is kept; the run stopped at b: c was not tried (nor listed as failed), nothing partial is left; the
    # video that failed to decode before is listed
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.npy", "failures.csv"]
    assert np.load(out / "a.npy").shape == (12, 256)
    failures = (out / "failures.csv").read_text().splitlines()
    assert len(failures) == 2 and "a_broken.mp4" in failures[1]
    assert main(["extract", str(source), "--out", str(out), *EXTRACT]) == 1  # the limit lifted: the rest is done
    assert "2 written, 1 already done, 1 failed" in capsys.readouterr().out
    assert np.load(out / "b.npy").shape == (57, 256) and (out / "c.json").is_file()


@posix_only
def test_gvf_file_over_the_limit(tmp_path, capsys):
    features = tmp_path / "features"
    features.mkdir()
    rng = np.random.default_rng(0)
    for stem in "abcde":  # random values: gzip cannot squeeze 5 x 16 KiB under 8 KiB
        np.save(features / f"{stem}.npy", rng.normal(size=(3, 4096)).astype(np.float32))
    gvf = tmp_path / "gvf" / "g.h5"
    with file_size_limit(8 * 1024):
        code = main(["gvf", str(features), "--out", str(gvf)])
    assert code == 1
    one_line_error(capsys, f"cannot write {gvf}: file size limit reached")
    assert not list(gvf.parent.iterdir())  # no half-written HDF5, no temporary file
    assert main(["gvf", str(features), "--out", str(gvf)]) == 0


def write_feature_folder(root: Path, durations: dict[str, float], channels: int = 8) -> None:
    """``[T, C]`` features and sidecars as ``tspvideo extract`` writes them (L 16, stride 16, 15 fps)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for stem, duration in durations.items():
        count = (int(duration * 15) - 16) // 16 + 1
        np.save(root / f"{stem}.npy", rng.normal(size=(count, channels)).astype(np.float32))
        (root / f"{stem}.json").write_text(json.dumps({
            "clip_len": 16, "fps": 15, "stride": 16, "num_features": count, "video_duration": duration,
            "feature_times": clip_centers(count).tolist()}))


def write_annotations(path: Path, database: dict) -> Path:
    path.write_text(json.dumps({"version": "test", "database": database}))
    return path


@pytest.fixture
def features(tmp_path) -> tuple[Path, Path]:
    folder = tmp_path / "features"
    write_feature_folder(folder, {"a": 20.0, "b": 300.0, "c": 20.0}, channels=64)
    ann = write_annotations(tmp_path / "ann.json", {
        "a": {"subset": "training", "duration": 20.0, "annotations": [{"segment": [1.0, 5.0], "label": "x"}]},
        "b": {"subset": "training", "duration": 300.0, "annotations": [{"segment": [10.0, 50.0], "label": "y"}]},
        "c": {"subset": "validation", "duration": 20.0, "annotations": [{"segment": [2.0, 6.0], "label": "x"}]}})
    return folder, ann


@posix_only
def test_export_over_the_limit_says_it_is_unfinished(features, tmp_path, capsys):
    folder, ann = features
    out = tmp_path / "out"
    argv = ["export", str(folder), "--format", "actionformer", "--out", str(out), "--annotations", str(ann)]
    with file_size_limit(16 * 1024):  # b: 281 x 64 float32 = 72 KiB
        code = main(argv)
    assert code == 1
    one_line_error(capsys, f"cannot write {out / 'b.npy'}: file size limit reached",
                   f"the export in {out} is unfinished: rerun it with --overwrite")
    assert not hidden_or_partial(out) and not (out / "export_info.json").exists()
    assert main(argv) == 2  # what is there is not silently written over
    one_line_error(capsys, f"{out} already holds 1 file(s) or folder(s) (e.g. a.npy) and no export_info.json",
                   "--overwrite")
    assert main([*argv, "--overwrite"]) == 0
    np.testing.assert_array_equal(np.load(out / "b.npy"), np.load(folder / "b.npy"))


def test_dev_full_is_named_a_full_disk():
    with pytest.raises(OSError) as info, open("/dev/full", "wb") as f:
        f.write(b"x" * 10)
        f.flush()
    assert info.value.errno == errno.ENOSPC
    assert fileio.describe_os_error("out/a.npy", info.value) == (
        "cannot write out/a.npy: disk full (No space left on device); free some space and rerun (finished outputs "
        "are kept)")


@pytest.mark.parametrize("code, cause", [
    (errno.EDQUOT, "Disk quota exceeded"),
    (errno.EROFS, "Read-only file system"),
    (errno.EACCES, "Permission denied"),
    (errno.EIO, "I/O error (Input/output error)"),
])
def test_each_cause_is_named(code, cause):
    assert fileio.describe_os_error("f", OSError(code, os.strerror(code))) == f"cannot write f: {cause}" + (
        "; free some space and rerun (finished outputs are kept)" if code == errno.EDQUOT else "")
    # h5py puts the errno into its message only
    h5py_style = RuntimeError(f"Can't decrement id ref count (unable to extend file properly, errno = {code}, ...)")
    assert fileio.describe_os_error("f", h5py_style).startswith(f"cannot write f: {cause}")


def test_npy_write_keeps_the_errno_numpy_loses(tmp_path, monkeypatch):
    """np.save on a real file reports a short write as 'N requested and M written' without an errno."""
    real_open = open

    def open_on_dev_full(path, mode="r", *args, **kwargs):
        return real_open("/dev/full", mode, *args, **kwargs) if Path(path).parent == tmp_path else \
            real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", open_on_dev_full)
    with pytest.raises(WriteFailure, match=r"cannot write .*a\.npy: disk full"):
        fileio.save_npy_atomic(tmp_path / "a.npy", np.zeros((1000, 64), np.float32))
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0,
                    reason="root (and Windows) ignore a folder's write permission")
def test_read_only_folder_refused_before_anything(features, tmp_path, capsys):
    folder, _ = features
    parent = tmp_path / "read-only"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        assert main(["export", str(folder), "--format", "actionformer", "--out", str(parent / "out")]) == 2
        one_line_error(capsys, f"cannot write {parent / 'out'}", "Permission denied")
        assert not list(parent.iterdir())
    finally:
        parent.chmod(0o755)


def test_read_only_file_system_is_named(tmp_path, monkeypatch):
    real = os.statvfs

    class ReadOnly:
        def __init__(self, path):
            self.f_flag = real(path).f_flag | os.ST_RDONLY

    monkeypatch.setattr(fileio.os, "statvfs", ReadOnly)
    with pytest.raises(TspVideoError, match="read-only file system"):
        fileio.check_folder_writable(tmp_path / "out")


# ----------------------------------------------------------------------------------------------------
# Refusals leave no folder behind
# ----------------------------------------------------------------------------------------------------


def test_export_of_a_missing_folder_creates_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", str(tmp_path / "nope"), "--format", "bmn", "--out", str(out)]) == 2
    one_line_error(capsys, "does not exist")
    assert not out.exists()


def test_probe_of_a_missing_folder_creates_nothing(features, tmp_path, capsys):
    _, ann = features
    out = tmp_path / "out"
    assert main(["probe", str(tmp_path / "nope"), "--annotations", str(ann), "--out", str(out)]) == 2
    one_line_error(capsys, "does not exist")
    assert not out.exists()


def test_export_of_a_released_file_not_downloaded_creates_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TSPVIDEO_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    assert main(["export", "activitynet-valid", "--format", "actionformer", "--out", str(out)]) == 2
    one_line_error(capsys, "not downloaded yet", "tspvideo features download activitynet-valid")
    assert not out.exists()


def test_export_with_a_grid_flag_every_sidecar_contradicts_says_why(features, tmp_path, capsys):
    folder, _ = features
    out = tmp_path / "out"
    assert main(["export", str(folder), "--format", "actionformer", "--out", str(out), "--stride", "8"]) == 2
    err = one_line_error(capsys, "none of its 3 feature file(s) could be read", "stride")
    assert "16" in err and "8" in err  # both values: the sidecar's and the flag's
    assert not out.exists()


# ----------------------------------------------------------------------------------------------------
# Export never writes over an earlier one silently
# ----------------------------------------------------------------------------------------------------


def stamps(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


def test_export_into_an_earlier_export_needs_overwrite(features, tmp_path, capsys):
    folder, ann = features
    out = tmp_path / "out"
    argv = ["export", str(folder), "--out", str(out), "--annotations", str(ann)]
    assert main([*argv, "--format", "actionformer"]) == 0
    before = stamps(out)
    capsys.readouterr()
    assert main([*argv, "--format", "opentad"]) == 2
    one_line_error(capsys, f"{out} already holds an earlier actionformer export of 3 videos (export_info.json)",
                   "--overwrite")
    assert stamps(out) == before
    assert main([*argv, "--format", "opentad", "--overwrite"]) == 0
    printed = capsys.readouterr().out
    info = json.loads((out / "export_info.json").read_text())
    assert info["format"] == "opentad"
    # opentad rewrites every file the actionformer export wrote (features, annotations.json): none is left over
    assert "are from before" not in printed and "category_idx.txt" in info["files"]


def test_files_an_overwrite_does_not_rewrite_are_listed(features, tmp_path, capsys):
    folder, ann = features
    out = tmp_path / "out"
    argv = ["export", str(folder), "--format", "actionformer", "--out", str(out)]
    assert main([*argv, "--annotations", str(ann), "--train-subset", "validation"]) == 0
    assert main([*argv, "--overwrite"]) == 0  # no annotations now: annotations.json is left from before
    printed = capsys.readouterr().out
    assert "1 file(s) in" in printed and "annotations.json" in printed and "are from before" in printed


def test_bmn_summary_says_names_get_the_prefix(features, tmp_path, capsys):
    folder, _ = features
    out = tmp_path / "out"
    assert main(["export", str(folder), "--format", "bmn", "--out", str(out)]) == 0
    summary = capsys.readouterr().out.splitlines()[1]
    assert summary == f"3 videos written to {out}; 3 named with the prefix 'v_' (e.g. a -> v_a)"
    assert sorted(p.name for p in (out / "csv_mean_100").iterdir()) == ["v_a.csv", "v_b.csv", "v_c.csv"]


def test_train_subset_no_video_has(features, tmp_path, capsys):
    folder, ann = features
    out = tmp_path / "out"
    argv = ["export", str(folder), "--format", "actionformer", "--out", str(out)]
    assert main([*argv, "--annotations", str(ann), "--train-subset", "train"]) == 2
    one_line_error(capsys, "no annotated video is in subset 'train'", "subsets are training, validation")
    assert main([*argv, "--train-subset", "training"]) == 2
    one_line_error(capsys, "needs --annotations")
    assert not out.exists()


# ----------------------------------------------------------------------------------------------------
# A source replaced by a truncated copy: its removed features are said
# ----------------------------------------------------------------------------------------------------


def test_features_removed_when_the_changed_source_fails(videos, tmp_path, capsys, wide_encoder):
    source = tmp_path / "videos"
    shutil.copytree(videos, source)
    out = tmp_path / "out"
    assert main(["extract", str(source), "--out", str(out), *EXTRACT]) == 0
    cut(source / "b.mp4", 0.3).replace(source / "b.mp4")  # a partial download over the good file
    capsys.readouterr()
    assert main(["extract", str(source), "--out", str(out), *EXTRACT]) == 1
    printed = capsys.readouterr().out
    assert "0 written, 2 already done, 1 failed (1 of them had earlier features, now removed)" in printed
    assert not (out / "b.npy").exists() and not (out / "b.json").exists()
    failures = (out / "failures.csv").read_text()
    assert "b.mp4" in failures and "its earlier features" in failures and "were removed" in failures


# ----------------------------------------------------------------------------------------------------
# ActionFormer: a training video whose instances all lie beyond its features crashes its loader
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["actionformer", "tridet"])
def test_training_videos_with_every_instance_beyond_the_features_are_left_out(tmp_path, fmt):
    folder = tmp_path / "features"
    write_feature_folder(folder, {"late": 30.0, "mostly_late": 30.0, "one_good": 30.0, "val": 30.0})
    # 30 s: 28 features, the last clip ends at (27 * 16 + 16) / 15 = 29.87 s
    ann = write_annotations(tmp_path / "ann.json", {
        "late": {"subset": "training", "duration": 40.0, "annotations": [{"segment": [30.5, 35.0], "label": "x"}]},
        "mostly_late": {"subset": "training", "duration": 40.0,
                        "annotations": [{"segment": [28.0, 33.0], "label": "x"}]},
        "one_good": {"subset": "training", "duration": 40.0,
                     "annotations": [{"segment": [31.0, 35.0], "label": "x"}, {"segment": [2.0, 4.0], "label": "x"}]},
        "val": {"subset": "validation", "duration": 40.0, "annotations": [{"segment": [31.0, 35.0], "label": "x"}]}})
    out = tmp_path / "out"
    result = export_features(folder, fmt, out, annotations=ann)
    database = json.loads((out / "annotations.json").read_text())["database"]
    assert sorted(database) == ["one_good", "val"]  # evaluation videos are kept: the loader crops only in training
    assert (out / BEYOND_FEATURES_FILE).read_text().split() == ["late", "mostly_late"]
    assert (out / "late.npy").is_file()  # features are still written
    note = next(n for n in result.notes if "after (or mostly after) their last feature" in n)
    assert "stack expects a non-empty TensorList" in note and "late, mostly_late" in note
    assert BEYOND_FEATURES_FILE in (out / "README_export.txt").read_text()


@posix_only
def test_merged_hdf5_over_the_limit_is_one_error_and_no_traceback(tmp_path, capsys):
    from tspvideo.features.folder import merge_to_h5

    folder = tmp_path / "features"
    write_feature_folder(folder, {"a": 60.0, "b": 60.0, "c": 60.0}, channels=256)  # 56 x 256 random floats each
    target = tmp_path / "merged" / "all.h5"
    with file_size_limit(24 * 1024), pytest.raises(WriteFailure, match=f"cannot write {target}: file size limit"):
        merge_to_h5(folder, ["a", "b", "c"], target)
    assert "Traceback" not in capsys.readouterr().err  # h5py's failures surface here, not as it frees datasets
    assert not list(target.parent.iterdir())
