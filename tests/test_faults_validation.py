"""Clear errors before any long work; NaN loss; full disk and permission errors naming the path."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import parse, tiny_create_model, tiny_train, train_argv

import tspvideo.commands.extract as extract_command
import tspvideo.commands.gvf as gvf_command
import tspvideo.commands.train as train_command
import tspvideo.core.fileio as fileio
import tspvideo.models.weights as weights
import tspvideo.train as train
import tspvideo.train.loop as train_loop
from tspvideo.cli import main
from tspvideo.core.errors import TspVideoError
from tspvideo.models.encoder import Encoder, WeightsChoice
from tspvideo.models.weights import read_checkpoint
from tspvideo.video.synthetic import write_index_video


class TinyEncoder(torch.nn.Module):
    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return clips.mean(dim=(2, 3, 4))[:, None].repeat(1, 1, 4).flatten(1)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    write_index_video(folder / "a.mp4", num_frames=60, fps=30)  # 2 s
    write_index_video(folder / "b.mp4", num_frames=30, fps=30)  # 1 s
    return folder


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if a command gets as far as building its model (i.e. the error came too late)."""
    def build(*args, **kwargs):
        raise AssertionError("the model was built before the error")

    monkeypatch.setattr(extract_command, "load_chosen", build)
    monkeypatch.setattr(gvf_command, "load_chosen", build)
    monkeypatch.setattr(train_command, "train", lambda config: train.train(config, create_model=build))


@pytest.fixture
def tiny_encoder(monkeypatch):
    monkeypatch.setattr(extract_command, "weights_choice", lambda args: WeightsChoice("tiny"))
    monkeypatch.setattr(extract_command, "load_chosen", lambda args, choice: Encoder.of_module(TinyEncoder(),
                                                                                             weights="tiny"))


def _one_line_error(capsys, *words: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tspvideo "), err
    for word in words:
        assert word in err, err
    return err


# ----------------------------------------------------------------------------------------------------
# Arguments and inputs
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag, value, message", [
    ("--stride", "0", "stride must be positive"),
    ("--stride", "-4", "stride must be positive"),
    ("--clip-len", "0", "clip length must be positive"),
    ("--fps", "0", "fps must be positive"),
])
@pytest.mark.parametrize("command", ["extract", "gvf"])
def test_non_positive_grid_values(command, flag, value, message, videos, tmp_path, capsys, no_model):
    where = ["--out", str(tmp_path / "out")] if command == "extract" else ["--out", str(tmp_path / "g.h5")]
    inputs = [str(videos)] if command == "extract" else ["--videos", str(videos)]
    assert main([command, *inputs, *where, flag, value, "--random-init", "r3d_18"]) == 2
    _one_line_error(capsys, message)
    assert not (tmp_path / "out").exists() and not (tmp_path / "g.h5").exists()


@pytest.mark.parametrize("device, message", [
    ("gpu", "--device 'gpu' is not a device"),
    ("cuda", "no CUDA device is available"),
    ("cuda:7", "cuda:7"),
])
@pytest.mark.parametrize("command", ["extract", "gvf", "train"])
def test_a_device_this_machine_lacks_stops_before_anything(command, device, message, videos, data, tmp_path, capsys,
                                                          monkeypatch, no_model):
    if device != "gpu" and torch.cuda.device_count() >= 8:
        pytest.skip("this machine has the device")
    out = tmp_path / "out"
    argv = {"extract": ["extract", str(videos), "--out", str(out), "--random-init", "r3d_18"],
            "gvf": ["gvf", "--videos", str(videos), "--out", str(out / "g.h5"), "--random-init", "r3d_18"],
            "train": ["train", *train_argv(data, out)]}[command]
    assert main([*argv, "--device", device]) == 2
    _one_line_error(capsys, message)
    assert not out.exists()


def test_clip_longer_than_every_video(videos, tmp_path, capsys, no_model):
    assert main(["extract", str(videos), "--out", str(tmp_path / "out"), "--clip-len", "40",
                 "--random-init", "r3d_18"]) == 2
    _one_line_error(capsys, "longer than every one of the 2 video(s)", "a.mp4", "--clip-len")
    assert main(["gvf", "--videos", str(videos), "--out", str(tmp_path / "g.h5"), "--clip-len", "40",
                 "--random-init", "r3d_18"]) == 2
    _one_line_error(capsys, "longer than every")
    assert not (tmp_path / "out").exists()


def test_clip_longer_than_some_videos_only_fails_those(videos, tmp_path, capsys, tiny_encoder):
    out = tmp_path / "out"
    assert main(["extract", str(videos), "--out", str(out), "--clip-len", "20", "--workers", "0",
                 "--no-progress"]) == 1  # a.mp4 has 30 frames at 15 fps, b.mp4 15
    assert (out / "a.npy").is_file() and not (out / "b.npy").exists()
    assert "too short" in (out / "failures.csv").read_text()


def test_unknown_model_names(videos, tmp_path, capsys):
    assert main(["extract", str(videos), "--out", str(tmp_path / "o"), "--model", "r2plus1d_34-tsp_on_activitynt"]) == 2
    _one_line_error(capsys, "unknown weights name", "did you mean r2plus1d_34-tsp_on_activitynet")
    assert not (tmp_path / "o").exists()
    with pytest.raises(SystemExit) as info:
        main(["extract", str(videos), "--out", str(tmp_path / "o"), "--random-init", "r4d_18"])
    assert info.value.code == 2
    assert "invalid choice: 'r4d_18'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["train", "--train-csv", "x.csv", "--video-dir", ".", "--out", str(tmp_path / "t"),
              "--backbone", "r2plus1d_43"])
    assert info.value.code == 2
    assert "r2plus1d_34" in capsys.readouterr().err  # the valid names are listed


def test_gvf_file_missing_videos(data, tmp_path, capsys, no_model):
    import h5py

    partial = tmp_path / "partial_gvf.h5"
    with h5py.File(data["gvf"]) as src, h5py.File(partial, "w") as dst:
        kept = sorted(src)[1:]
        for key in kept:
            dst.create_dataset(key, data=src[key][()])
    argv = [a if a != str(data["gvf"]) else str(partial) for a in train_argv(data, tmp_path / "run", "--epochs", "1")]
    assert main(["train", *argv]) == 2
    _one_line_error(capsys, str(partial), "no GVF for 1 of the", "tspvideo gvf")
    assert not (tmp_path / "run" / "checkpoint.pth").exists()


def test_labels_not_in_the_label_map(data, tmp_path, capsys, no_model):
    labels = json.loads(data["label_map"].read_text())
    short = tmp_path / "labels.json"
    short.write_text(json.dumps(labels[:1]))
    argv = [a if a != str(data["label_map"]) else str(short) for a in train_argv(data, tmp_path / "run")]
    assert main(["train", *argv]) == 2
    _one_line_error(capsys, "not in the label map", labels[1])


def test_annotation_labels_not_in_the_label_map(tmp_path, capsys):
    database = {"v1": {"subset": "training", "duration": 5.0,
                       "annotations": [{"segment": [1, 2], "label": "jump"}, {"segment": [3, 4], "label": "swim"}]}}
    (tmp_path / "ann.json").write_text(json.dumps({"database": database}))
    (tmp_path / "labels.json").write_text(json.dumps(["jump"]))
    (tmp_path / "meta.csv").write_text("filename,video-duration,fps,video-frames\nv1.mp4,5.0,30,150\n")
    assert main(["annotations", "generic", str(tmp_path / "ann.json"), "--label-map", str(tmp_path / "labels.json"),
                 "--metadata", str(tmp_path / "meta.csv"), "--out", str(tmp_path / "out")]) == 2
    _one_line_error(capsys, "not in the label map", "swim")


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """A finished 1-epoch run of the tiny model."""
    out = tmp_path_factory.mktemp("trained")
    tiny_train(parse(train_argv(data, out, "--epochs", "1")))
    return out


def test_label_map_and_checkpoint_head_size_mismatch(data, trained, tmp_path, capsys, monkeypatch,
                                                     tiny_train_command):
    labels = json.loads(data["label_map"].read_text())
    bigger = tmp_path / "labels.json"
    bigger.write_text(json.dumps([*labels, "extra"]))
    # evaluate a checkpoint with a label map of another size
    monkeypatch.setattr(weights, "TSPModel", lambda c: tiny_create_model(c.backbone, c.num_classes, c.heads, c.gvf))
    code = main(["eval", "clips", "--checkpoint", str(trained / "best.pth"), "--valid-csv", str(data["valid"]),
                 "--video-dir", str(data["videos"]), "--label-map", str(bigger), "--gvf", str(data["gvf"]),
                 "--workers", "0", "--no-progress", "--device", "cpu"])
    assert code == 2
    _one_line_error(capsys, "3 classes", "2")
    # resume a run with a label map of another size
    run = tmp_path / "run"
    run.mkdir()
    for name in ("checkpoint.pth", "best.pth", "metrics.csv"):
        (run / name).write_bytes((trained / name).read_bytes())
    argv = [a if a != str(data["label_map"]) else str(bigger) for a in train_argv(data, run, "--epochs", "2")]
    assert main(["train", *argv, "--resume"]) == 2
    _one_line_error(capsys, "cannot resume", "fc1.weight (2, 512) in the checkpoint, (3, 512) now")
    assert read_checkpoint(run / "checkpoint.pth")["epoch"] == 0  # untouched


# ----------------------------------------------------------------------------------------------------
# NaN loss, full disk, permissions
# ----------------------------------------------------------------------------------------------------


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(data, tmp_path, capsys, monkeypatch,
                                                                   tiny_train_command):
    real_loss = train_loop.tsp_loss
    calls = {"n": 0}

    def loss(outputs, *args, **kwargs):
        total, parts = real_loss(outputs, *args, **kwargs)
        calls["n"] += 1
        return (total * float("nan") if calls["n"] > 4 else total), parts  # epoch 1 has 3 steps

    monkeypatch.setattr(train_loop, "tsp_loss", loss)
    out = tmp_path / "run"
    assert main(["train", *train_argv(data, out, "--epochs", "3")]) == 2
    _one_line_error(capsys, "epoch 2", "the loss is nan")
    good = read_checkpoint(out / "checkpoint.pth")
    assert good["epoch"] == 0 and all(torch.isfinite(v).all() for v in good["model"].values() if v.is_floating_point())
    read_checkpoint(out / "best.pth")
    assert not [p for p in out.iterdir() if p.suffix == ".tmp"]


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_during_extraction(videos, tmp_path, capsys, monkeypatch, tiny_encoder):
    out = tmp_path / "out"
    args = ["extract", str(videos), "--out", str(out), "--clip-len", "4", "--workers", "0", "--no-progress"]
    real_save = np.save
    monkeypatch.setattr(fileio.np, "save", _enospc)
    assert main(args) == 1  # a run failure, not a usage error
    _one_line_error(capsys, f"cannot write {out / 'a.npy'}", "No space left on device", "free some space")
    assert not list(out.iterdir())  # nothing partial, no temporary file left
    monkeypatch.setattr(fileio.np, "save", real_save)  # space freed: the rerun completes
    assert main(args) == 0 and (out / "a.npy").is_file() and (out / "b.npy").is_file()


def test_full_disk_while_saving_a_checkpoint(data, tmp_path, capsys, monkeypatch, tiny_train_command):
    real_save = torch.save
    saves = {"n": 0}

    def save(obj, file, *args, **kwargs):  # save_checkpoint hands torch.save an open file
        saves["n"] += 1
        target = getattr(file, "_file", file)  # the file inside save_checkpoint's errno-keeping wrapper
        name = Path(getattr(target, "name", target)).name
        if name.startswith(".checkpoint.pth.") and obj["epoch"] == 1:
            file.write(b"half")
            _enospc()
        return real_save(obj, file, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    out = tmp_path / "run"
    assert main(["train", *train_argv(data, out, "--epochs", "2")]) == 1
    _one_line_error(capsys, f"cannot write {out / 'checkpoint.pth'}", "No space left on device")
    assert read_checkpoint(out / "checkpoint.pth")["epoch"] == 0
    assert not [p for p in out.iterdir() if p.suffix == ".tmp"]


def test_read_only_output_folder(videos, tmp_path, capsys, monkeypatch, tiny_encoder):
    out = tmp_path / "read-only"
    out.mkdir()
    out.chmod(0o555)
    if os.geteuid() == 0:  # root writes anyway: simulate what the kernel says to other users
        def mkstemp(*args, **kwargs):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(out))

        monkeypatch.setattr("tempfile.mkstemp", mkstemp)
    try:
        assert main(["extract", str(videos), "--out", str(out), "--clip-len", "4", "--workers", "0",
                     "--no-progress"]) == 1
        _one_line_error(capsys, f"cannot write {out}", "Permission denied")
    finally:
        out.chmod(0o755)
    assert not list(out.iterdir())


def test_permission_error_writing_gvf(videos, tmp_path, capsys, monkeypatch):
    features = tmp_path / "features"
    features.mkdir()
    np.save(features / "a.npy", np.ones((3, 4), np.float32))

    def mkstemp(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr("tempfile.mkstemp", mkstemp)
    assert main(["gvf", str(features), "--out", str(tmp_path / "gvf.h5")]) == 1
    _one_line_error(capsys, f"cannot write {tmp_path / 'gvf.h5'}", "Permission denied")


def test_write_errors_are_tspvideo_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(fileio.json, "dump", _enospc)
    with pytest.raises(TspVideoError, match="No space left"):
        fileio.save_json_atomic(tmp_path / "x.json", {})
    assert not list(tmp_path.iterdir())
