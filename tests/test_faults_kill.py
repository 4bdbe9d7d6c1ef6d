"""SIGKILL during extraction and training, then the same command again.

The real command runs in a subprocess (``python -m tspvideo.cli`` or a small wrapper that swaps in a tiny
model and, for the deterministic cases, stalls inside a write so that the kill lands there). After the
kill nothing under a final name may be truncated; the rerun must finish with the same result as an
uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import parse, tiny_train, train_argv

from tspvideo.models.weights import read_checkpoint
from tspvideo.video.synthetic import write_index_video

TESTS = Path(__file__).resolve().parent

EXTRACT_WRAPPER = """
import io, os, sys, time
from pathlib import Path
import numpy as np
import torch
import tspvideo.commands.extract as command
from tspvideo.models.encoder import Encoder, WeightsChoice


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.randn(12, 8, generator=torch.Generator().manual_seed(0))

    def forward(self, clips):
        return clips.mean(dim=(3, 4)).flatten(1) @ self.weight


command.weights_choice = lambda args: WeightsChoice("tiny")
command.load_chosen = lambda args, choice: Encoder.of_module(Tiny(), weights="tiny")
stall_at = int(os.environ.get("STALL_AT_SAVE", "0"))
real_save, calls = np.save, [0]


def save(file, array, *args, **kwargs):
    calls[0] += 1
    if calls[0] == stall_at:  # write half of this feature file, then hang until killed
        buffer = io.BytesIO()
        real_save(buffer, array)
        target = getattr(file, "_file", file)  # the open file inside save_npy_atomic's write-only view
        target.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        target.flush()
        Path(os.environ["MARKER"]).write_text(target.name)
        time.sleep(600)
    return real_save(file, array, *args, **kwargs)


np.save = save
from tspvideo.cli import main
sys.exit(main(sys.argv[1:]))
"""

TRAIN_WRAPPER = """
import os, sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
import helpers
import tspvideo.commands.train as command
command.train = helpers.tiny_train  # the command trains the tiny model
import torch
from tspvideo.train import run as train_run

marker, mode = Path(os.environ["MARKER"]), os.environ["KILL_MODE"]
real_epoch, real_save = train_run.train_one_epoch, torch.save


def train_one_epoch(*args, epoch, **kwargs):
    if mode == "epoch" and epoch == 1:  # inside the second epoch: hang until killed
        marker.write_text("epoch 2")
        time.sleep(600)
    return real_epoch(*args, epoch=epoch, **kwargs)


def save(obj, file, *args, **kwargs):
    target = getattr(file, "_file", file)  # save_checkpoint hands torch.save an open file (in a wrapper)
    name = getattr(target, "name", target)
    if mode == "save" and Path(name).name.startswith(".checkpoint.pth.") and obj["epoch"] == 1:
        target.write(b"PK" + b"x" * 1000)  # half a checkpoint in the temporary file, then hang
        target.flush()
        marker.write_text(str(name))
        time.sleep(600)
    return real_save(obj, file, *args, **kwargs)


train_run.train_one_epoch = train_one_epoch
torch.save = save
from tspvideo.cli import main
sys.exit(main(["train", *sys.argv[1:]]))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _written(marker: Path) -> bool:
    """The marker exists and holds its text (write_text creates the file before writing: a kill in between
    would leave it empty)."""
    return marker.is_file() and marker.stat().st_size > 0


def _kill_when(process: subprocess.Popen, ready, what: str, timeout: float = 240) -> None:
    """SIGKILL ``process`` as soon as ``ready()`` is true; fail if it ends or times out first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"the command ended (code {process.returncode}) before {what}:\n{out[-2000:]}\n{err[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    process.communicate()
    assert process.returncode == -signal.SIGKILL


def _run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env={**_env(), **env}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def check_feature_folder(out: Path) -> set[str]:
    """Every file under a final name is complete: .npy loads, .json parses and matches; returns done stems."""
    done = set()
    for sidecar in out.glob("*.json"):
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        features = np.load(out / f"{sidecar.stem}.npy")  # the sidecar is written last
        assert features.shape == (meta["num_features"], meta["feature_dim"])
        done.add(sidecar.stem)
    for npy in out.glob("*.npy"):
        np.load(npy)
    leftovers = [p.name for p in out.iterdir() if p.suffix == ".tmp"]
    assert all(name.startswith(".") for name in leftovers), leftovers  # temporary files are hidden
    return done


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("kill-videos")
    for i in range(8):
        write_index_video(folder / f"v{i}.mp4", num_frames=30 + 4 * i, fps=30, size=(64, 48))
    return folder


def test_sigkill_during_extraction_then_rerun(videos, tmp_path):
    """Real CLI and r3d_18 (random weights, fixed seed): kill after the first video, rerun, same features."""
    command = [sys.executable, "-m", "tspvideo.cli", "extract", str(videos), "--random-init", "r3d_18",
               "--clip-len", "4", "--stride", "100", "--batch-size", "1", "--workers", "0", "--no-progress"]
    out = tmp_path / "killed"
    process = subprocess.Popen([*command, "--out", str(out)], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    _kill_when(process, lambda: out.is_dir() and any(out.glob("*.json")), "the first video was written")
    done = check_feature_folder(out)
    assert 1 <= len(done) < 8
    rerun = _run([*command, "--out", str(out)], tmp_path)
    assert f"{len(done)} already done" in rerun.stdout
    _run([*command, "--out", str(tmp_path / "straight")], tmp_path)
    assert check_feature_folder(out) == check_feature_folder(tmp_path / "straight") == {f"v{i}" for i in range(8)}
    for i in range(8):
        np.testing.assert_array_equal(np.load(out / f"v{i}.npy"), np.load(tmp_path / "straight" / f"v{i}.npy"))


def test_sigkill_while_a_feature_file_is_written(videos, tmp_path):
    """Killed with half a .npy on disk: it is only in a hidden temporary file, and the rerun redoes it."""
    script = tmp_path / "extract_wrapper.py"
    script.write_text(EXTRACT_WRAPPER)
    command = [sys.executable, str(script), "extract", str(videos), "--clip-len", "4", "--stride", "4",
               "--workers", "0", "--no-progress"]
    out, marker = tmp_path / "killed", tmp_path / "marker"
    process = subprocess.Popen([*command, "--out", str(out)], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env={**_env(), "STALL_AT_SAVE": "3", "MARKER": str(marker)})
    _kill_when(process, lambda: _written(marker), "the third feature file was being written")
    partial = Path(marker.read_text())
    assert partial.parent == out and partial.name.startswith(".v2.npy.") and partial.exists()
    assert check_feature_folder(out) == {"v0", "v1"} and not (out / "v2.npy").exists()
    _run([*command, "--out", str(out)], tmp_path)
    _run([*command, "--out", str(tmp_path / "straight")], tmp_path)
    assert check_feature_folder(out) == {f"v{i}" for i in range(8)}
    for i in range(8):
        np.testing.assert_array_equal(np.load(out / f"v{i}.npy"), np.load(tmp_path / "straight" / f"v{i}.npy"))


COMMON = ("--epochs", "3", "--lr-warmup-epochs", "1", "--lr-milestones", "2", "--fc-lr", "0.05",
          "--backbone-lr", "0.01")


@pytest.fixture(scope="module")
def straight_run(data, tmp_path_factory):
    """An uninterrupted 3-epoch run (in process, tiny model): the reference for the resumed ones."""
    out = tmp_path_factory.mktemp("straight")
    tiny_train(parse(train_argv(data, out, *COMMON)))
    return read_checkpoint(out / "checkpoint.pth")


@pytest.mark.parametrize("mode", ["epoch", "save"])
def test_sigkill_during_training_then_resume(mode, data, straight_run, tmp_path):
    """Killed inside epoch 2 or while its checkpoint is written: epoch 1's checkpoint is whole and resumes."""
    script = tmp_path / "train_wrapper.py"
    script.write_text(TRAIN_WRAPPER.format(tests=str(TESTS)))
    out, marker = tmp_path / "run", tmp_path / "marker"
    process = subprocess.Popen([sys.executable, str(script), *train_argv(data, out, *COMMON)], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "MARKER": str(marker), "KILL_MODE": mode})  # threads as here
    _kill_when(process, lambda: _written(marker), f"the kill point ({mode})")
    checkpoint = read_checkpoint(out / "checkpoint.pth")  # loads: never a truncated file under this name
    assert checkpoint["epoch"] == 0  # the first epoch, complete
    read_checkpoint(out / "best.pth")
    if mode == "save":
        partial = Path(marker.read_text())
        assert partial.exists() and partial.name.startswith(".checkpoint.pth.")  # hidden, never loaded
    metrics = (out / "metrics.csv").read_text(encoding="utf-8").splitlines()
    assert metrics[0].startswith("epoch,") and len(metrics) == 2

    tiny_train(parse(train_argv(data, out, *COMMON, "--resume")))
    resumed = read_checkpoint(out / "checkpoint.pth")
    assert resumed["epoch"] == straight_run["epoch"] == 2
    for key, value in straight_run["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    assert len((out / "metrics.csv").read_text(encoding="utf-8").splitlines()) == 4
    assert "resumed from" in (out / "train.log").read_text(encoding="utf-8")
