"""Two gloo processes under torchrun: the same update as one process on the same global batch, and one voice."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from helpers import tiny_create_model, train_argv

from tspvideo.models.weights import read_checkpoint

# `tspvideo train` with the tiny model (no BatchNorm: per-process batch statistics would differ from one process's)
WORKER = """
import sys
sys.path.insert(0, {tests!r})
import helpers
import tspvideo.commands.train as command
command.train = helpers.tiny_train
from tspvideo.cli import main
sys.exit(main(["train", *sys.argv[1:]]))
"""


def _run(command: list[str], cwd: Path) -> str:
    """Run to the end; returns what it printed (stdout, then stderr)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """One process with a batch of 4, and two gloo processes with 2 each: {name: (run folder, printed text)}."""
    root = tmp_path_factory.mktemp("ddp")
    script = root / "worker.py"
    script.write_text(WORKER.format(tests=str(Path(__file__).parent)))
    # The default action term is a mean over each process's own foreground clips (as the original under DDP),
    # which differs from one process's mean over the global batch; the batch-size normalisation does not.
    common = ("--epochs", "1", "--lr-warmup-epochs", "0", "--action-loss-norm", "clips", "--lr-milestones")
    # Learning rates are per process and scaled by the number of processes: one process with the
    # global batch of 4 gets twice the per-process rates to make the same update.
    one = _run([sys.executable, str(script), *train_argv(data, root / "one", "--batch-size", "4", "--fc-lr", "0.04",
                                                         "--backbone-lr", "0.02", *common)], root)
    two = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script),
                *train_argv(data, root / "two", "--batch-size", "2", "--fc-lr", "0.02", "--backbone-lr", "0.01",
                            *common)], root)
    return {"one": (root / "one", one), "two": (root / "two", two)}


def test_two_gloo_processes_match_one_process(runs):
    one = read_checkpoint(runs["one"][0] / "checkpoint.pth")
    two = read_checkpoint(runs["two"][0] / "checkpoint.pth")
    torch.manual_seed(0)  # what build_model does before creating the model
    initial = tiny_create_model("r2plus1d_18", 2, ("action", "region"), "max").state_dict()
    assert one["args"]["batch_size"] == 4 and two["args"]["batch_size"] == 2
    changed = 0
    for key, value in one["model"].items():
        assert torch.allclose(value, two["model"][key], rtol=1e-4, atol=1e-6), key
        changed += not torch.equal(value, initial[key])
    assert changed == len(initial) - 2  # all but the frozen stem (weight and bias) trained
    assert one["lr_scheduler"]["last_epoch"] == two["lr_scheduler"]["last_epoch"] > 0
    assert one["metrics"]["train"]["clips"] == two["metrics"]["train"]["clips"]
    assert one["metrics"]["valid"]["clips"] == two["metrics"]["valid"]["clips"]  # each clip once across ranks
    assert abs(one["metrics"]["train"]["loss"] - two["metrics"]["train"]["loss"]) < 1e-5
    log = (runs["two"][0] / "train.log").read_text()
    assert "2 process(es)" in log


def test_two_processes_print_the_summary_and_each_warning_once(runs):
    """Rank 0 alone prints, each line whole; the other rank's warnings go to its own log file."""
    out, printed = runs["two"]
    lines = printed.splitlines()
    summary = [line for line in lines if "train: best epoch" in line]
    assert len(summary) == 1, printed
    assert re.fullmatch(r"train: best epoch 1, valid mean clip accuracy \S+ -> .*best\.pth", summary[0]), summary
    # --weights none: every rank builds its model from random weights and warns; the console shows it once
    assert sum("starts from RANDOM weights" in line for line in lines) == 1, printed
    warnings = Counter(line.split(" WARNING ", 1)[1] for line in lines if " WARNING " in line)
    assert warnings and max(warnings.values()) == 1, warnings
    assert "starts from RANDOM weights" in (out / "train.rank1.log").read_text(encoding="utf-8")
    assert "starts from RANDOM weights" in (out / "train.log").read_text(encoding="utf-8")
    # one process alone: the same single summary line, and no log file of another rank
    one_out, one_printed = runs["one"]
    assert sum("train: best epoch" in line for line in one_printed.splitlines()) == 1
    assert not list(one_out.glob("train.rank*.log"))
