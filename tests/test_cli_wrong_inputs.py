"""Every subcommand, given wrong inputs, answers in one line with exit code 1 or 2: never a traceback, and
nothing created for a usage error (exit 2).

The subcommands come from the parser itself, so a new command is covered without editing this file: each one
gets a mistyped option, each of its required inputs as a missing path, a folder, an empty file and a garbage
file, its output as an existing file, and (when it has ``--device``) devices that do not exist here.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from tspvideo.cli import build_parser, main
from tspvideo.evaluation.detection import UnknownVideosError
from tspvideo.models.inputs import InputOverrides, resolve_input

# Required arguments that name something the command writes, not something it reads.
OUTPUTS = {"out", "out_dir", "features_out", "h5", "json"}


def _leaves(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        yield prefix, parser
        return
    for name, sub in subparsers[0].choices.items():
        yield from _leaves(sub, (*prefix, name))


LEAVES = dict(_leaves(build_parser()))
IDS = [" ".join(path) for path in LEAVES]


def _required(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions
            if (a.required or not a.option_strings) and not isinstance(a, argparse._HelpAction)]


def _inputs(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Required arguments that are read: paths we can make wrong (not choices, numbers or outputs)."""
    return [a for a in _required(parser) if a.dest not in OUTPUTS and not a.choices and a.type not in (int, float)]


def _argv(path: tuple[str, ...], parser: argparse.ArgumentParser, read: str, written: Path) -> list[str]:
    """The command with every required argument filled: inputs with ``read``, outputs under ``written``."""
    argv = list(path)
    for action in _required(parser):
        if action.choices:
            value = str(next(iter(action.choices)))
        elif action.type in (int, float):
            value = "1"
        elif action.dest in OUTPUTS:
            value = str(written / action.dest) if written.is_dir() or not written.exists() else str(written)
        else:
            value = read
        argv += [*action.option_strings[:1], value]
    return argv


def _snapshot(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse's own usage errors
        code = stop.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_clean_failure(code: int, out: str, err: str, root: Path, before: set[Path]) -> None:
    assert code in (1, 2), (code, out, err)
    assert "Traceback" not in out + err
    assert err.strip(), "a failure says why on stderr"
    if code == 2:  # a usage error: nothing was created
        assert _snapshot(root) == before, sorted(map(str, _snapshot(root) - before))


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch) -> Path:
    """A folder holding the wrong inputs, also the working folder (a command's default output goes there)."""
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "empty.json").write_bytes(b"")
    (tmp_path / "garbage.json").write_bytes(b"{not json,,\n\x00\xff video-name,t-start\n")
    (tmp_path / "a_file.txt").write_text("not a folder\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_walk_sees_every_command():
    assert {"extract", "gvf", "train", "demo", "similarity", "experiment", "synth", "models"} <= {p[0] for p in LEAVES}
    assert {("eval", "detection"), ("eval", "clips"), ("annotations", "check"), ("features", "download")} <= set(LEAVES)


@pytest.mark.parametrize("path", LEAVES, ids=IDS)
def test_a_mistyped_option_prints_the_subcommands_usage(path, scratch, capsys):
    before = _snapshot(scratch)
    argv = _argv(path, LEAVES[path], str(scratch / "missing" / "input"), scratch / "new_output")
    code, _, err = _run([*argv, "--no-such-option"], capsys)
    assert code == 2
    assert f"usage: tspvideo {' '.join(path)}" in err  # the subcommand's options, not the top-level ones
    assert "unrecognized arguments: --no-such-option" in err and "Traceback" not in err
    assert _snapshot(scratch) == before


WRONG_INPUTS = {"missing": "missing/thing", "folder": "a_folder", "empty file": "empty.json",
                "garbage file": "garbage.json"}


@pytest.mark.parametrize("wrong", WRONG_INPUTS)
@pytest.mark.parametrize("path", [p for p in LEAVES if _inputs(LEAVES[p])],
                         ids=[i for p, i in zip(LEAVES, IDS, strict=True) if _inputs(LEAVES[p])])
def test_wrong_inputs_are_one_line(path, wrong, scratch, capsys):
    before = _snapshot(scratch)
    argv = _argv(path, LEAVES[path], str(scratch / WRONG_INPUTS[wrong]), scratch / "new_output")
    code, out, err = _run(argv, capsys)
    _assert_clean_failure(code, out, err, scratch, before)


@pytest.mark.parametrize("path", [p for p in LEAVES if any(a.dest in OUTPUTS for a in _required(LEAVES[p]))],
                         ids=[i for p, i in zip(LEAVES, IDS, strict=True)
                              if any(a.dest in OUTPUTS for a in _required(LEAVES[p]))])
def test_an_output_that_is_a_file_is_one_line(path, scratch, capsys):
    before = _snapshot(scratch)
    argv = _argv(path, LEAVES[path], str(scratch / "empty.json"), scratch / "a_file.txt")
    code, out, err = _run(argv, capsys)
    _assert_clean_failure(code, out, err, scratch, before)
    assert (scratch / "a_file.txt").read_text(encoding="utf-8") == "not a folder\n"


DEVICE_LEAVES = [p for p in LEAVES if any(a.dest == "device" for a in LEAVES[p]._actions)]


@pytest.mark.parametrize("device, cuda_devices, says", [
    ("gpu", 0, "--device 'gpu' is not a device"),
    ("foo", 1, "--device 'foo' is not a device"),
    ("cuda", 0, "--device cuda, but no CUDA device is available"),
    ("cuda:7", 0, "--device cuda:7, but no CUDA device is available"),
    ("cuda:7", 1, "--device cuda:7: this machine has 1 CUDA device(s)"),
])
@pytest.mark.parametrize("path", DEVICE_LEAVES, ids=[" ".join(p) for p in DEVICE_LEAVES])
def test_a_wrong_device_is_refused_first_with_nothing_created(path, device, cuda_devices, says, scratch, capsys,
                                                              monkeypatch):
    # Checked before the inputs (they are missing here) and before anything is made, the same in every command.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_devices > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda_devices)
    before = _snapshot(scratch)
    argv = _argv(path, LEAVES[path], str(scratch / "missing" / "input"), scratch / "new_output")
    code, out, err = _run([*argv, "--device", device], capsys)
    assert code == 2 and "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"tspvideo {path[0]}: error: {says}"), err
    assert _snapshot(scratch) == before


@pytest.mark.parametrize("argv, says", [
    (["synth", "OUT", "--seed", "-1"], "seed must be >= 0"),
    (["synth", "OUT", "--num-videos", "0"], "need at least 1 video"),
    (["synth", "a_file.txt"], "a_file.txt: it is a file, not a folder"),
    (["demo", "--out", "OUT", "--epochs", "0"], "--epochs must be at least 1"),
    (["demo", "--out", "OUT", "--seed", "-1"], "seed must be >= 0"),
    (["demo", "--out", "OUT", "--backbone", "no_such_net"], "unknown backbone 'no_such_net'"),
    (["demo", "--out", "a_file.txt"], "a_file.txt: it is a file, not a folder"),
    (["demo", "--out", "OUT", "--weights", "garbage.json"], "cannot read checkpoint garbage.json"),
    (["demo", "--out", "OUT", "--weights", "missing.pth"], "weights file not found: missing.pth"),
    (["experiment", "--out", "OUT", "--weights", "garbage.json"], "cannot read checkpoint garbage.json"),
    (["experiment", "--out", "OUT", "--jobs", "0"], "--jobs must be at least 1"),
    (["experiment", "--out", "OUT", "--seeds", "-1"], "seeds must be >= 0"),
    (["experiment", "--out", "OUT", "--epochs", "0"], "--epochs 0: sizes must be positive"),
    (["experiment", "--out", "OUT", "--workers", "-1"], "--workers -1: sizes must be positive and --workers 0 or more"),
    (["experiment", "--out", "OUT", "--backbone", "no_such_net"], "unknown backbone 'no_such_net'"),
    (["transcode", "a_folder", "OUT", "--crf", "99"], "--crf must be in [0, 51]"),
    (["transcode", "a_folder", "OUT", "--fps", "0"], "must be positive"),
    (["eval", "detection", "--gt", "gt.json", "--pred", "pred.json", "--tiou", "2"], "tIoU thresholds must lie"),
    (["annotations", "check", "table.csv", "--clip-seconds", "0"], "--clip-seconds must be positive"),
    (["annotations", "generic", "gt.json", "--metadata", "m.csv", "--out", "OUT", "--min-background", "-1"],
     "--min-background must be 0 or more"),
    (["similarity", "video.mp4", "--out", "OUT/fig.png"], "video.mp4: a video, not features"),
    # 0 used to fall back to the default grid value, and an upside-down colour scale was drawn as 1 to 1.001.
    (["similarity", "a.npy", "--annotations", "gt.json", "--fps", "0"], "fps must be positive, got 0"),
    (["similarity", "a.npy", "--out", "OUT/fig.png", "--vmin", "1", "--vmax", "0"], "--vmin 1 must be below --vmax 0"),
    (["similarity", "a.npy", "--annotations", "gt.json", "--probe-folds", "1"], "--probe-folds must be 2 or more"),
    (["extract", "video.mp4", "--out", "OUT", "--model", "no-such-weights"], "unknown weights name"),
    (["probe", "a_folder", "--annotations", "gt.json", "--out", "OUT", "--epochs", "0"], "--epochs must be at least 1"),
    (["probe", "a_folder", "--annotations", "gt.json", "--out", "OUT", "--temporal-size", "-3"],
     "--temporal-size must be 1 or more"),
])
def test_bad_values_and_names_are_usage_errors(argv, says, scratch, capsys):
    (scratch / "gt.json").write_text(json.dumps({"database": {"a": {"subset": "train", "duration": 10.0,
                                                                    "annotations": []}}}), encoding="utf-8")
    (scratch / "pred.json").write_text(json.dumps({"results": {"a": []}}), encoding="utf-8")
    (scratch / "m.csv").write_text("filename,video-duration,fps,video-frames\na.mp4,10,30,300\n", encoding="utf-8")
    (scratch / "table.csv").write_text("video-name,t-start,t-end,action-label,video-duration,filename,fps,"
                                       "video-frames\n", encoding="utf-8")
    (scratch / "video.mp4").write_bytes(b"\x00" * 64)
    np.save(scratch / "a.npy", np.ones((6, 4), np.float32))
    before = _snapshot(scratch)
    code, out, err = _run(argv, capsys)
    assert code == 2, (out, err)
    assert says in err and "Traceback" not in out + err
    assert len(err.strip().splitlines()) == 1
    assert _snapshot(scratch) == before  # no OUT folder


def test_a_garbage_checkpoint_is_named_without_torchs_advice(scratch, capsys):
    # torch's first line advises weights_only=False, which no option offers; the unpickler's reason is kept.
    code, _, err = _run(["eval", "clips", "--checkpoint", "garbage.json", "--valid-csv", "empty.json",
                         "--video-dir", "a_folder"], capsys)
    assert code == 2 and "cannot read checkpoint garbage.json: not a checkpoint that loads safely" in err
    assert "weights_only" not in err and len(err.strip().splitlines()) == 1


def test_similarity_lists_the_keys_of_an_hdf5_file(scratch, capsys):
    with h5py.File(scratch / "features.h5", "w") as h5:
        for key in ("v_alpha", "v_beta"):
            h5.create_dataset(key, data=np.zeros((4, 8), np.float32))
    code, _, err = _run(["similarity", "features.h5", "--out", "fig.png"], capsys)
    assert code == 2
    assert "pass --video KEY" in err and "its keys: v_alpha, v_beta" in err


def test_fps_zero_is_said_before_asking_for_force():
    # A checkpoint trained at 15 fps: fps 0 is a bad value, not a contradiction to force.
    with pytest.raises(Exception, match="fps must be positive, got 0"):
        resolve_input(None, {"clip_len": 16, "fps": 15.0}, InputOverrides(fps=0.0))
    with pytest.raises(Exception, match="add --force"):
        resolve_input(None, {"clip_len": 16, "fps": 15.0}, InputOverrides(fps=30.0))


@pytest.mark.parametrize("task, option", [("detection", "--unknown-videos false_positive"),
                                          ("proposals", "--unknown-videos ignore")])
def test_unknown_videos_are_worded_for_the_command_line(task, option, scratch, capsys):
    (scratch / "gt.json").write_text(json.dumps({"database": {"a": {"subset": "validation", "duration": 100.0,
                                                                    "annotations": [{"segment": [1, 5],
                                                                                     "label": "x"}]}}}),
                                     encoding="utf-8")
    (scratch / "pred.json").write_text(json.dumps({"results": {"v_a": [{"segment": [1, 5], "score": 1.0,
                                                                        "label": "x"}]}}), encoding="utf-8")
    code, _, err = _run(["eval", task, "--gt", "gt.json", "--pred", "pred.json"], capsys)
    assert code == 2 and option in err
    assert "unknown_videos" not in err  # the library's name of the option is not the command line's


def test_the_library_words_unknown_videos_in_its_own_terms():
    from tspvideo.evaluation.detection import evaluate_detection

    gt = {"database": {"a": {"subset": "validation", "duration": 100.0,
                             "annotations": [{"segment": [1, 5], "label": "x"}]}}}
    with pytest.raises(UnknownVideosError) as raised:
        evaluate_detection(gt, {"results": {"b": [{"segment": [1, 5], "score": 1.0, "label": "x"}]}})
    assert "unknown_videos" in str(raised.value) and "--" not in str(raised.value)


def test_ctrl_c_exits_130_with_one_line(capsys, monkeypatch):
    import tspvideo.commands.models as models_command

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(models_command, "run", interrupted)
    code, out, err = _run(["models"], capsys)
    assert code == 130
    assert err.strip().splitlines() == ["tspvideo models: interrupted; finished outputs are kept, rerun to resume"]
    assert "Traceback" not in out + err


@pytest.mark.parametrize("argv, usage", [
    (["extract", "--strde", "4", "videos", "--out", "OUT"], "usage: tspvideo extract"),
    (["gvf", "missing/features", "--out", "g.h5", "--device", "gpu"], None),
    (["eval", "detection", "--gt", "missing.json", "--pred", "missing.json"], None),
])
def test_real_processes_print_no_traceback(argv, usage, scratch):
    result = subprocess.run([sys.executable, "-m", "tspvideo.cli", *argv], capture_output=True, text=True,
                            timeout=300, cwd=scratch)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    if usage:
        assert usage in result.stderr
    else:
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (scratch / "OUT").exists() and not (scratch / "g.h5").exists()
