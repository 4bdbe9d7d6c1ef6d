"""Two gloo processes under torchrun give the same update as one process on the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def _run(command: list[str], cwd: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_two_gloo_processes_match_one_process(data, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(tests=str(Path(__file__).parent)))
    # The default action term is a mean over each process's own foreground clips (as the original under DDP),
    # which differs from one process's mean over the global batch; the batch-size normalisation does not.
    common = ("--epochs", "1", "--lr-warmup-epochs", "0", "--action-loss-norm", "clips", "--lr-milestones")
    # Learning rates are per process and scaled by the number of processes: one process with the
    # global batch of 4 gets twice the per-process rates to make the same update.
    _run([sys.executable, str(script), *train_argv(data, tmp_path / "one", "--batch-size", "4", "--fc-lr", "0.04",
                                                   "--backbone-lr", "0.02", *common)], tmp_path)
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script),
          *train_argv(data, tmp_path / "two", "--batch-size", "2", "--fc-lr", "0.02", "--backbone-lr", "0.01",
                      *common)], tmp_path)
    one = read_checkpoint(tmp_path / "one" / "checkpoint.pth")
    two = read_checkpoint(tmp_path / "two" / "checkpoint.pth")
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
    log = (tmp_path / "two" / "train.log").read_text()
    assert "2 process(es)" in log
