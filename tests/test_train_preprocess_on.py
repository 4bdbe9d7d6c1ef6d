"""`train` / `evaluate --preprocess-on device`: raw clips from the workers, the same run as the worker path."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from helpers import parse, tiny_create_model, tiny_train, train_argv

import tspvideo.train.loop as train_loop
from tspvideo.cli import main as cli_main
from tspvideo.core.devices import resolve_preprocess_on
from tspvideo.models import weights
from tspvideo.models.weights import read_checkpoint

COMMON = ("--lr-warmup-epochs", "1", "--lr-milestones", "1", "--fc-lr", "0.05", "--backbone-lr", "0.01")
TIMING = {"seconds", "train_clips_per_s"}


def _rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


def test_device_input_trains_resumes_and_matches_the_worker_path(data, tmp_path, tiny_train_command):
    workers, device = tmp_path / "workers", tmp_path / "device"
    assert cli_main(["train", *train_argv(data, workers, "--epochs", "2", "--preprocess-on", "workers", *COMMON)]) == 0
    # one epoch on the device path, then resume it for the second
    assert cli_main(["train", *train_argv(data, device, "--epochs", "1", "--preprocess-on", "device", *COMMON)]) == 0
    assert cli_main(["train", *train_argv(data, device, "--epochs", "2", "--preprocess-on", "device", "--resume",
                                          *COMMON)]) == 0

    a, b = read_checkpoint(workers / "checkpoint.pth"), read_checkpoint(device / "checkpoint.pth")
    assert (a["preprocess_on"], b["preprocess_on"]) == ("workers", "device")
    assert b["args"]["preprocess_on"] == "device" and b["epoch"] == 1
    for key in a["model"]:  # same crops and flips, same float values on CPU: the same weights
        assert torch.equal(a["model"][key], b["model"][key]), key
    rows = _rows(device / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2] and rows == _rows(workers / "metrics.csv")
    assert "preprocessed on the device" in (device / "train.log").read_text()


def test_auto_preprocesses_in_the_workers_on_cpu(data, tmp_path):
    tiny_train(parse(train_argv(data, tmp_path, "--epochs", "1")))
    checkpoint = read_checkpoint(tmp_path / "checkpoint.pth")
    assert checkpoint["args"]["preprocess_on"] == "auto" and checkpoint["preprocess_on"] == "workers"


def test_evaluate_on_the_device_gives_the_workers_accuracies(data, tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "TSPModel", lambda c: tiny_create_model(c.backbone, c.num_classes, c.heads, c.gvf))
    tiny_train(parse(train_argv(data, tmp_path / "run", "--epochs", "1", *COMMON)))
    results = {}
    for where in ("workers", "device"):
        out = tmp_path / f"{where}.json"
        assert cli_main(["evaluate", "--checkpoint", str(tmp_path / "run" / "best.pth"), "--valid-csv",
                         str(data["valid"]), "--video-dir", str(data["videos"]), "--gvf", str(data["gvf"]),
                         "--workers", "0", "--device", "cpu", "--no-progress", "--preprocess-on", where,
                         "--json", str(out)]) == 0
        results[where] = json.loads(out.read_text())
    assert results["device"].pop("preprocess_on") == "device" and results["workers"].pop("preprocess_on") == "workers"
    assert results["device"] == results["workers"] and results["device"]["clips"] > 0


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_bad_preprocess_on_exits_2(data, tmp_path, capsys, command):
    argv = (train_argv(data, tmp_path, "--preprocess-on", "gpu") if command == "train" else
            ["--checkpoint", "x.pth", "--valid-csv", str(data["valid"]), "--video-dir", str(data["videos"]),
             "--preprocess-on", "gpu"])
    with pytest.raises(SystemExit) as exit_info:
        cli_main([command, *argv])
    assert exit_info.value.code == 2
    assert "--preprocess-on: invalid choice: 'gpu'" in capsys.readouterr().err


def test_auto_means_device_on_cuda_and_workers_elsewhere():
    assert resolve_preprocess_on("auto", torch.device("cuda")) == "device"  # only the device type is looked at
    assert resolve_preprocess_on("auto", "cpu") == "workers"
    assert resolve_preprocess_on("workers", torch.device("cuda")) == "workers"
    assert resolve_preprocess_on("device", "cpu") == "device"


def test_a_raw_batch_without_its_preprocessing_is_an_error_not_a_guess():
    from tspvideo.core.errors import TspVideoError
    from tspvideo.datasets.batch_transforms import collate_raw_clips

    batch = collate_raw_clips([{"clip": torch.zeros(2, 8, 8, 3, dtype=torch.uint8), "crop": torch.tensor([0, 0, 0]),
                                "action": 0, "region": 0}])
    with pytest.raises(TspVideoError, match="raw clips"):
        train_loop._to_device(batch, torch.device("cpu"), False, None)
