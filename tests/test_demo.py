"""`tspvideo demo` end to end (smaller still than its defaults), and the trained checkpoint in other commands."""

from __future__ import annotations

import json

import numpy as np
import torch

from tspvideo.cli import main as cli_main
from tspvideo.models.encoder import load_encoder
from tspvideo.runs.demo import DemoConfig, format_summary, run_demo
from tspvideo.video.decode import DEFAULT_SAMPLING


def test_demo_runs_the_whole_pipeline(tmp_path, capsys):
    config = DemoConfig(num_videos=4, num_classes=2, min_duration=6.0, max_duration=7.0, clip_len=4,
                        clips_per_segment=2, resize=(32, 43), crop=32, epochs=1, batch_size=4, workers=0,
                        gvf_stride=24, feature_stride=24,
                        progress=False)
    summary = run_demo(tmp_path / "demo", config)
    out = tmp_path / "demo"
    videos = sorted((out / "data" / "videos").glob("*.mp4"))
    assert len(videos) == 4
    assert (out / "gvf.h5").is_file()
    features = sorted((out / "features").glob("*.npy"))
    assert [f.stem for f in features] == [v.stem for v in videos]
    array = np.load(features[0])
    sidecar = json.loads(features[0].with_suffix(".json").read_text())
    assert array.shape == (sidecar["num_features"], 512) and sidecar["clip_len"] == 4
    assert summary["best_epoch"] == 1 and len(summary["epochs"]) == 1
    assert 0.0 <= summary["best"]["valid_acc_mean"] <= 1.0
    assert json.loads((out / "summary.json").read_text())["best_epoch"] == 1
    printed = capsys.readouterr().out
    assert "valid acc mean" in printed and "random" in printed
    assert "best epoch: 1" in format_summary(summary)

    # The finished run keeps its models but not the optimizer state (as large as the model): less disk.
    last = torch.load(out / "run" / "checkpoint.pth", map_location="cpu", weights_only=False)
    assert "model" in last and not {"optimizer", "lr_scheduler", "scaler", "rng"} & set(last)

    # The run's best.pth is a model other commands take: evaluate and extract.
    best = out / "run" / "best.pth"
    encoder = load_encoder(best)
    model = encoder.model
    description = encoder.description()
    assert model.config.heads == ("action", "region") and description["label_map"] == ["horizontal_oscillation",
                                                                                      "vertical_oscillation"]
    data = out / "data"
    result_json = tmp_path / "eval.json"
    eval_args = ["--checkpoint", str(best), "--valid-csv", str(data / "valid.csv"), "--video-dir", str(data / "videos"),
                 "--gvf", str(out / "gvf.h5"), "--workers", "0", "--device", "cpu", "--no-progress"]
    capsys.readouterr()
    assert cli_main(["eval", "clips", *eval_args, "--out", str(result_json)]) == 0
    assert "deprecated" not in capsys.readouterr().err
    evaluated = json.loads(result_json.read_text())
    for key in ("acc_action", "acc_region", "acc_mean"):  # same clips, same model: the training run's numbers
        assert abs(evaluated[key] - summary["epochs"][0][f"valid_{key}"]) < 1e-6
    # the old spellings still work, each with a one-line note on stderr, and give the same file
    old_json = tmp_path / "old.json"
    assert cli_main(["evaluate", *eval_args, "--json", str(old_json)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tspvideo evaluate: deprecated; use `tspvideo eval clips` (same options)"]
    assert json.loads(old_json.read_text()) == evaluated
    assert cli_main(["eval", "clips", *eval_args, "--json", str(old_json)]) == 0
    assert "--json is deprecated; use --out" in capsys.readouterr().err
    code = cli_main(["extract", str(videos[0]), "--checkpoint", str(best), "--out", str(tmp_path / "extract"),
                     "--clip-len", "4", "--stride", "48", "--workers", "0", "--device", "cpu", "--no-progress"])
    assert code == 0 and (tmp_path / "extract" / f"{videos[0].stem}.npy").is_file()

    # Without grid flags, extract uses the clip length, fps and frame sizes the checkpoint was trained with.
    code = cli_main(["extract", str(videos[0]), "--checkpoint", str(best), "--out", str(tmp_path / "own"),
                     "--workers", "0", "--device", "cpu", "--no-progress"])
    sidecar = json.loads((tmp_path / "own" / f"{videos[0].stem}.json").read_text())
    assert code == 0 and config.clip_len != 16
    assert (sidecar["clip_len"], sidecar["stride"], sidecar["fps"]) == (config.clip_len, config.clip_len, config.fps)
    assert sidecar["input"] == {"clip_len": config.clip_len, "fps": config.fps, "sampling": DEFAULT_SAMPLING,
                                "resize": list(config.resize),
                                "crop": [config.crop, config.crop], "from": "checkpoint"}
    assert "input_overrides" not in sidecar
    # A flag that contradicts it needs --force, and is then recorded.
    other = ["extract", str(videos[0]), "--checkpoint", str(best), "--clip-len", "8", "--stride", "48",
             "--workers", "0", "--device", "cpu", "--no-progress"]
    capsys.readouterr()
    assert cli_main([*other, "--out", str(tmp_path / "refused")]) == 2
    assert "--clip-len 8 (trained with 4)" in capsys.readouterr().err and not (tmp_path / "refused").exists()
    assert cli_main([*other, "--out", str(tmp_path / "forced"), "--force"]) == 0
    sidecar = json.loads((tmp_path / "forced" / f"{videos[0].stem}.json").read_text())
    assert sidecar["clip_len"] == 8 and sidecar["input_overrides"] == {"clip_len": {"checkpoint": 4, "used": 8}}
