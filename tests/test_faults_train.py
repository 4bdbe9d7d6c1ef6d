"""Training's promises when things go wrong: a run is never replaced unasked, a resume trains with what it logs,
a checkpoint that cannot be written is one line, and the notes and defaults a new user meets."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from helpers import parse, tiny_train, train_argv, train_config

import tspvideo.core.cores as cores
from tspvideo.cli import main as cli_main
from tspvideo.core.errors import TspVideoError, WriteFailure
from tspvideo.models.weights import read_checkpoint
from tspvideo.train.checkpoint import save_checkpoint
from tspvideo.train.loop import WarmupMultiStep
from tspvideo.train.runfolder import clear_run, describe_run, holds_run

TESTS_DIR = Path(__file__).resolve().parent
# The run every test starts from: one epoch, learning rates and warm-up other than the defaults, so that a
# resume that fell back to the defaults would show.
BASE = {"fc_lr": 0.05, "backbone_lr": 0.01, "lr_warmup_epochs": 1.5, "weight_decay": 0.01, "momentum": 0.8}


@pytest.fixture(scope="module")
def base_run(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("base") / "run"
    tiny_train(train_config(data, out, epochs=1, **BASE))
    return out


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


def _rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _factor(run: Path) -> tuple[float, int]:
    """The schedule factor at the step where the run stands, and that step (from its checkpoint)."""
    state = read_checkpoint(run / "checkpoint.pth")["lr_scheduler"]
    schedule = WarmupMultiStep(1, 0, [], 1.0)
    schedule.__dict__.update(state["lr_lambdas"][0])
    return schedule(state["last_epoch"]), state["last_epoch"]


# ----------------------------------------------------------------------------------------------------
# A run is never replaced without --resume or --overwrite
# ----------------------------------------------------------------------------------------------------


def test_training_into_a_run_exits_2_says_what_is_there_and_touches_nothing(data, base_run, tmp_path, capsys,
                                                                          tiny_train_command):
    run = _copy(base_run, tmp_path / "run")
    before = _snapshot(run)
    assert cli_main(["train", *train_argv(data, run, "--epochs", "1")]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in captured.err + captured.out
    accuracy = max(float(row["valid_acc_mean"]) for row in _rows(run))
    assert f"1 epoch(s) done, best valid mean clip accuracy {accuracy:.4f} at epoch 1" in err
    assert "--resume" in err and "--overwrite" in err
    assert _snapshot(run) == before
    with pytest.raises(TspVideoError, match="holds a training run"):  # the library keeps the same rule
        tiny_train(train_config(data, run, epochs=1))
    assert _snapshot(run) == before
    with pytest.raises(TspVideoError, match="give one of them"):
        tiny_train(train_config(data, run, epochs=1, resume="auto", overwrite=True))
    other = _copy(base_run, tmp_path / "other")  # resuming another run's checkpoint into this one would mix them
    with pytest.raises(TspVideoError, match="not the run of"):
        tiny_train(train_config(data, run, epochs=2, resume=str(other / "checkpoint.pth")))
    assert _snapshot(run) == before


def test_overwrite_removes_the_runs_own_files_only(data, base_run, tmp_path, monkeypatch):
    run = _copy(base_run, tmp_path / "run")
    (run / "notes.txt").write_text("mine")
    (run / "train.rank1.log").write_text("an earlier run's warning")
    (run / ".checkpoint.pth.x1y2.tmp").write_bytes(b"half")
    (run / "epoch_1.pth").write_bytes(b"an earlier epoch")
    monkeypatch.setattr(cores, "cpu_share", lambda: 1)  # the default loader workers of a 1-core machine: 0
    tiny_train(train_config(data, run, epochs=1, overwrite=True, fc_lr=0.02, lr_warmup_epochs=0.0, freeze_stem=False,
                            workers=None))
    assert sorted(p.name for p in run.iterdir()) == ["best.pth", "checkpoint.pth", "metrics.csv", "notes.txt",
                                                     "train.log"]
    assert (run / "notes.txt").read_text() == "mine"
    args = read_checkpoint(run / "checkpoint.pth")["args"]
    assert args["fc_lr"] == 0.02 and args["workers"] == 0  # the number of workers that ran, not None
    assert [row["epoch"] for row in _rows(run)] == ["1"]
    log = (run / "train.log").read_text()
    assert "fc_lr=0.05" not in log and "fc_lr=0.02*" in log  # a new log, not the earlier run's continued
    assert "note:" not in log  # nothing to note about this run's options


def test_what_counts_as_a_run_and_what_is_cleared(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "train.log").write_text("a start that failed before its first epoch")
    assert not holds_run(folder)
    (folder / "best.pth").write_bytes(b"x")
    assert holds_run(folder) and "best.pth" in describe_run(folder)
    (folder / "tensorboard").mkdir()
    (folder / "tensorboard" / "events.out.tfevents.1.host").write_bytes(b"e")
    (folder / "tensorboard" / "mine.txt").write_text("kept")
    removed = {p.name for p in clear_run(folder)}
    assert removed == {"train.log", "best.pth", "events.out.tfevents.1.host"}
    assert (folder / "tensorboard" / "mine.txt").is_file() and not holds_run(folder)


# ----------------------------------------------------------------------------------------------------
# A resume trains with what it logs and records
# ----------------------------------------------------------------------------------------------------


def test_resume_with_lower_learning_rates_trains_with_them(data, base_run, tmp_path, capsys, tiny_train_command):
    """The NaN-loss remedy: resume with lower rates. The base rates are replaced, the schedule's factor kept."""
    run = _copy(base_run, tmp_path / "run")
    factor, step = _factor(run)
    assert 0 < factor < 1  # the run stands inside its warm-up: the factor is not trivially 1
    new = {"--fc-lr": 0.005, "--backbone-lr": 0.001, "--weight-decay": 0.001, "--momentum": 0.5}
    argv = train_argv(data, run, "--epochs", "2", "--resume", *[str(x) for kv in new.items() for x in kv])
    assert cli_main(["train", *argv]) == 0
    rows = _rows(run)
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert float(rows[1]["lr_heads"]) == pytest.approx(0.005 * factor, rel=1e-5)
    assert float(rows[1]["lr_backbone"]) == pytest.approx(0.001 * factor, rel=1e-5)
    checkpoint = read_checkpoint(run / "checkpoint.pth")
    args = checkpoint["args"]
    assert (args["fc_lr"], args["backbone_lr"], args["weight_decay"], args["momentum"]) == (0.005, 0.001, 0.001, 0.5)
    assert args["lr_warmup_epochs"] == 1.5  # not given now: the run's, not the default 2
    for group in checkpoint["optimizer"]["param_groups"]:
        assert group["weight_decay"] == 0.001 and group["momentum"] == 0.5
    assert checkpoint["lr_scheduler"]["base_lrs"] == [0.001, 0.005]
    out = capsys.readouterr().out
    assert "fc_lr 0.05 -> 0.005" in out and "backbone_lr 0.01 -> 0.001" in out and "momentum 0.8 -> 0.5" in out
    assert f"at step {step}" in out


def test_resume_without_new_values_keeps_the_runs(data, base_run, tmp_path, capsys, tiny_train_command):
    run = _copy(base_run, tmp_path / "run")
    factor, _ = _factor(run)
    assert cli_main(["train", *train_argv(data, run, "--epochs", "2", "--resume")]) == 0
    rows = _rows(run)
    assert float(rows[1]["lr_heads"]) == pytest.approx(0.05 * factor, rel=1e-5)  # the run's 0.05, not 2e-3
    args = read_checkpoint(run / "checkpoint.pth")["args"]
    assert {key: args[key] for key in BASE} == BASE
    assert "new optimisation values" not in capsys.readouterr().out


def test_resume_with_another_optimizer_is_one_line_and_exit_2(data, base_run, tmp_path, capsys, tiny_train_command):
    run = _copy(base_run, tmp_path / "run")
    before = _snapshot(run)
    assert cli_main(["train", *train_argv(data, run, "--epochs", "2", "--resume", "--optimizer", "adamw")]) == 2
    captured = capsys.readouterr()
    assert len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err + captured.out
    assert "--optimizer sgd, now adamw" in captured.err
    assert _snapshot(run) == before
    # A checkpoint whose recorded optimizer disagrees with its state (tampered, or from an older version):
    # the state itself is checked, one line rather than torch's KeyError.
    checkpoint = read_checkpoint(run / "checkpoint.pth")
    checkpoint["args"]["optimizer"] = "adamw"
    save_checkpoint(run / "checkpoint.pth", checkpoint)
    with pytest.raises(TspVideoError, match="optimizer state is not AdamW's"):
        tiny_train(train_config(data, run, epochs=2, resume="auto"))


# ----------------------------------------------------------------------------------------------------
# A checkpoint that cannot be written: one line naming the file and the cause, exit 1, nothing partial
# ----------------------------------------------------------------------------------------------------


def _train_with_file_size_limit(data, out: Path, limit: int) -> subprocess.CompletedProcess:
    """``tspvideo train`` (tiny model) in a process whose files may not grow beyond ``limit`` bytes (RLIMIT_FSIZE:
    the write fails with EFBIG instead of the process being killed, as SIGXFSZ is ignored; works as root too)."""
    script = textwrap.dedent(f"""
        import resource, signal, sys
        sys.path.insert(0, {str(TESTS_DIR)!r})
        from helpers import tiny_train
        import tspvideo.commands.train as train_command
        from tspvideo.cli import main
        train_command.train = tiny_train
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        sys.exit(main(sys.argv[1:]))
    """)
    return subprocess.run([sys.executable, "-c", script, "train", *train_argv(data, out, "--epochs", "1")],
                          capture_output=True, text=True, timeout=600)


def test_a_checkpoint_that_cannot_be_written_is_one_line_exit_1_and_no_partial_file(data, base_run, tmp_path):
    """Also the log: train.log meets the limit within its first lines, which is one warning, not a traceback per
    line, and the run goes on to its first checkpoint, which cannot be written either."""
    assert (base_run / "best.pth").stat().st_size > 1500  # the limit below cuts the checkpoint too
    out = tmp_path / "run"
    result = _train_with_file_size_limit(data, out, 1500)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    hint = "; raise the limit (ulimit -f) or write to another file system, then rerun (finished outputs are kept)"
    warnings = [line for line in result.stderr.splitlines() if "train.log" in line]
    assert warnings == [f"warning: cannot write {out / 'train.log'}: file size limit reached (File too large){hint}; "
                        "further log lines go to stdout only"]
    assert result.stderr.strip().splitlines()[-1] == \
        f"tspvideo train: error: cannot write {out / 'best.pth'}: file size limit reached (File too large){hint}"
    assert "epoch 1/1" in result.stdout  # the log went on on stdout
    assert sorted(p.name for p in out.iterdir()) == ["train.log"]  # no checkpoint, whole or partial


def test_a_run_folder_that_cannot_be_made_is_one_line_before_any_work(data, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(WriteFailure, match=r"cannot write .*file/run: Not a directory"):
        tiny_train(train_config(data, tmp_path / "file" / "run", epochs=1))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders: permissions cannot fail")
def test_a_read_only_run_folder_is_one_line(data, base_run, tmp_path):
    run = _copy(base_run, tmp_path / "run")
    run.chmod(0o555)
    try:
        with pytest.raises(TspVideoError, match="(?i)cannot write .*checkpoint.pth: permission denied"):
            save_checkpoint(run / "checkpoint.pth", {"model": {}})
    finally:
        run.chmod(0o755)


# ----------------------------------------------------------------------------------------------------
# Notes and defaults
# ----------------------------------------------------------------------------------------------------


def test_notes_for_a_run_inside_its_warm_up_and_a_frozen_random_stem(base_run):
    log = (base_run / "train.log").read_text()
    assert "note: --epochs 1 ends within the 1.5-epoch learning-rate warm-up" in log
    assert "note: --freeze-stem keeps the stem at its random initial weights" in log


def test_loader_workers_follow_the_cores(capsys):
    assert [cores.default_loader_workers(n) for n in (1, 2, 3, 5, 16)] == [0, 1, 2, 4, 4]
    config = parse(["--train-csv", "t.csv", "--video-dir", "v", "--out", "o"])
    assert config.workers is None  # resolved when the run starts, recorded in the checkpoint's args
    from tspvideo.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    assert f"min(4, CPU cores - 1), {cores.default_loader_workers()} here" in " ".join(capsys.readouterr().out.split())


def test_a_one_epoch_training_figure_shows_its_point(tmp_path, monkeypatch):
    from tspvideo.runs.experiment import plots

    one = tmp_path / "one.csv"
    one.write_text("epoch,train_loss,valid_acc_action,valid_acc_region\n1,2.1,0.3,0.6\n")
    saved = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: saved.setdefault("fig", fig))
    plots.plot_training_curves({"TSP": one}, tmp_path / "x.png", "one epoch")
    for ax in saved["fig"].axes:
        assert ax.get_xlim() == (0.5, 1.5) and list(ax.get_xticks()) == [1.0]  # not 0.96 to 1.04
        (line,) = ax.lines
        assert line.get_marker() == "o" and line.get_markersize() >= 6
        low, high = ax.get_ylim()
        assert low < line.get_ydata()[0] < high


def test_resume_keeps_the_bit_exact_state_when_nothing_changes():
    """apply_optimisation with the values the state was saved with changes no rate."""
    from tspvideo.train.resume import apply_optimisation, group_settings

    params = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))]
    optimizer = torch.optim.SGD([{"params": [params[0]], "lr": 1e-4}, {"params": [params[1]], "lr": 2e-3}], lr=1.0,
                                momentum=0.9, weight_decay=0.005)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupMultiStep(10, 2, [4, 6], 0.01))
    for _ in range(13):
        optimizer.step()
        scheduler.step()
    lrs = [group["lr"] for group in optimizer.param_groups]
    assert apply_optimisation(optimizer, scheduler, group_settings(optimizer)) == scheduler.lr_lambdas[0](13)
    assert [group["lr"] for group in optimizer.param_groups] == lrs


def test_a_refused_train_keeps_a_log_and_folder_that_were_there(tmp_path, capsys):
    from tspvideo.cli import main

    out = tmp_path / "run"
    out.mkdir()
    (out / "train.log").write_text("an earlier attempt\n", encoding="utf-8")
    code = main(["train", "--train-csv", str(tmp_path / "missing.csv"), "--video-dir", str(tmp_path),
                 "--out", str(out), "--no-gvf", "--device", "cpu"])
    assert code == 2 and "Traceback" not in capsys.readouterr().err
    assert (out / "train.log").read_text(encoding="utf-8").startswith("an earlier attempt")
    fresh = tmp_path / "new" / "run"
    assert main(["train", "--train-csv", str(tmp_path / "missing.csv"), "--video-dir", str(tmp_path),
                 "--out", str(fresh), "--no-gvf", "--device", "cpu"]) == 2
    assert not (tmp_path / "new").exists()  # the folders this call made are gone
