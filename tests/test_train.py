"""Training: loss of equation (1), schedule, overfitting, variants, exact resume, checkpoints."""

from __future__ import annotations

import argparse
import csv
import math

import h5py
import pytest
import torch
import torch.nn.functional as F
from helpers import parse, tiny_create_model, tiny_train, train_argv, train_config
from torch import nn

import tspvideo.train as train
import tspvideo.train.loop as train_loop
import tspvideo.train.run as train_run
from tspvideo.cli import main as cli_main
from tspvideo.commands.train import add_train_arguments
from tspvideo.models.tsp import ModelConfig
from tspvideo.models.weights import read_checkpoint
from tspvideo.train.recipes import DEFAULTS

# ----------------------------------------------------------------------------------------------------
# Loss and schedule
# ----------------------------------------------------------------------------------------------------


def test_action_term_is_the_foreground_mean_by_default_as_the_original():
    # The original: CrossEntropyLoss(ignore_index=-1) per head, background clips labelled -1.
    torch.manual_seed(0)
    action_logits = torch.randn(32, 5, requires_grad=True)
    region_logits = torch.randn(32, 2)
    action = torch.randint(0, 5, (32,))
    action[torch.randperm(32)[:16]] = -1  # 16 of 32 clips are background
    region = (action < 0).long()
    outputs = {"features": torch.zeros(32, 512), "action": action_logits, "region": region_logits}
    loss, parts = train_loop.tsp_loss(outputs, action, region)
    original = torch.nn.CrossEntropyLoss(ignore_index=-1)
    assert torch.allclose(loss, original(action_logits, action) + original(region_logits, region))
    foreground = action >= 0
    assert math.isclose(parts["action"], float(F.cross_entropy(action_logits[foreground], action[foreground]).detach()),
                        rel_tol=1e-6)
    # the whole-batch normalisation (an option) gives half of it here
    _, clips_parts = train_loop.tsp_loss(outputs, action, region, action_norm="clips")
    assert math.isclose(clips_parts["action"], parts["action"] / 2, rel_tol=1e-6)
    # a batch without foreground: 0, where the original's mean over no clip is NaN
    background = torch.full((32,), -1)
    assert math.isnan(float(original(action_logits.detach(), background)))
    for norm in ("foreground", "clips"):
        total, parts = train_loop.tsp_loss(outputs, background, torch.ones(32, dtype=torch.long), action_norm=norm)
        assert torch.isfinite(total) and parts["action"] == 0.0


def test_clips_normalisation_is_equation_1_clip_by_clip_and_background_adds_nothing():
    torch.manual_seed(0)
    action_logits = torch.randn(4, 3, requires_grad=True)
    region_logits = torch.randn(4, 2, requires_grad=True)
    action = torch.tensor([2, -1, 0, -1])
    region = torch.tensor([0, 1, 0, 1])
    outputs = {"features": torch.zeros(4, 512), "action": action_logits, "region": region_logits}
    loss, parts = train_loop.tsp_loss(outputs, action, region, alpha_action=0.7, alpha_region=1.3, action_norm="clips")
    per_clip = []
    for i in range(4):  # equation (1), clip by clip
        value = 1.3 * F.cross_entropy(region_logits[i:i + 1], region[i:i + 1])
        if region[i] == 0:  # foreground
            value = value + 0.7 * F.cross_entropy(action_logits[i:i + 1], action[i:i + 1])
        per_clip.append(value)
    assert torch.allclose(loss, torch.stack(per_clip).mean())
    loss.backward()
    assert torch.all(action_logits.grad[[1, 3]] == 0)  # background rows: no action gradient
    assert torch.all(action_logits.grad[[0, 2]] != 0)

    changed = action_logits.detach().clone()
    changed[[1, 3]] = 100 * torch.randn(2, 3)
    loss2, _ = train_loop.tsp_loss({**outputs, "action": changed}, action, region, 0.7, 1.3, action_norm="clips")
    assert torch.allclose(loss.detach(), loss2)


def test_schedule_learning_rates_follow_the_formula():
    iters, warmup, milestones, gamma = 10, 2, [4, 6], 0.01
    schedule = train_loop.WarmupMultiStep(iters, warmup, milestones, gamma)
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD([{"params": [model.weight], "lr": 1e-4}, {"params": [model.bias], "lr": 2e-3}],
                                lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    def formula(it: int) -> float:
        factor = 1e-5 + (1 - 1e-5) * it / (warmup * iters) if it < warmup * iters else 1.0
        return factor * gamma ** sum(it >= m * iters for m in milestones)

    seen = {}
    for it in range(80):
        seen[it] = [group["lr"] for group in optimizer.param_groups]
        optimizer.step()
        scheduler.step()
    for it in (0, 1, 10, 19, 20, 39, 40, 41, 59, 60, 79):
        assert seen[it][0] == pytest.approx(1e-4 * formula(it), rel=1e-9)
        assert seen[it][1] == pytest.approx(2e-3 * formula(it), rel=1e-9)
    assert seen[20][1] == pytest.approx(2e-3)  # warm-up over: the base rate
    assert seen[40][1] == pytest.approx(2e-5) and seen[60][1] == pytest.approx(2e-7)
    assert train_loop.WarmupMultiStep(iters, 0, [], gamma)(0) == 1.0


def test_tiny_batch_overfits():
    # The TSP model and loss with a small backbone: a real one takes seconds per step on 2 CPU cores.
    torch.manual_seed(0)
    model = tiny_create_model("r3d_18", num_classes=3, heads=("action", "region"), gvf="max")
    clips, gvf = torch.randn(4, 3, 4, 16, 16), torch.randn(4, 512)
    action, region = torch.tensor([0, 2, -1, 1]), torch.tensor([0, 0, 1, 0])
    groups = train.parameter_groups(model, 0.1, 0.2, freeze_stem=False)
    optimizer = torch.optim.SGD(groups, momentum=0.9, weight_decay=0.005)
    model.train()
    losses = []
    for _ in range(20):
        outputs = model(clips, gvf)
        loss, _ = train_loop.tsp_loss(outputs, action, region)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.05 * losses[0]
    counts = train_loop.accuracy_counts({k: v.detach() for k, v in outputs.items()}, action, region)
    assert counts["action_correct"] == counts["action_total"] == 3
    assert counts["region_correct"] == counts["region_total"] == 4


def test_optimizer_option_defaults_to_the_original_sgd_and_offers_adamw():
    model = tiny_create_model("r3d_18", num_classes=3, heads=("action", "region"), gvf=None)
    groups = lambda: train.parameter_groups(model, 0.1, 0.2, freeze_stem=False)  # noqa: E731
    sgd = train_run.build_optimizer("sgd", groups(), 0.2, 0.9, 0.005)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9
    adamw = train_run.build_optimizer("adamw", groups(), 0.2, 0.9, 0.005)
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults["weight_decay"] == 0.005
    assert [g["lr"] for g in adamw.param_groups] == [0.1, 0.2]
    assert parse(["--train-csv", "a", "--video-dir", "v", "--out", "o"]).optimizer is None  # filled as "sgd"
    assert DEFAULTS["optimizer"] == "sgd"


# ----------------------------------------------------------------------------------------------------
# Whole runs (tiny backbone)
# ----------------------------------------------------------------------------------------------------


def _weights(path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)["model"]


def test_resume_gives_the_same_weights_as_a_straight_run(data, tmp_path, tiny_train_command):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = ("--lr-warmup-epochs", "1", "--lr-milestones", "1", "--fc-lr", "0.05", "--backbone-lr", "0.01")
    assert cli_main(["train", *train_argv(data, straight, "--epochs", "2", *common)]) == 0
    options = {"lr_warmup_epochs": 1.0, "lr_milestones": [1.0], "fc_lr": 0.05, "backbone_lr": 0.01}
    assert tiny_train(train_config(data, resumed, epochs=1, **options))["best"]["epoch"] == 0
    one_epoch = _weights(resumed / "checkpoint.pth")
    result = tiny_train(train_config(data, resumed, epochs=2, resume="auto", **options))

    a, b = _weights(straight / "checkpoint.pth"), _weights(resumed / "checkpoint.pth")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert any(not torch.equal(one_epoch[k], b[k]) for k in b)  # the resumed epoch did train
    full_a, full_b = read_checkpoint(straight / "checkpoint.pth"), read_checkpoint(resumed / "checkpoint.pth")
    assert full_a["epoch"] == full_b["epoch"] == 1
    assert full_a["lr_scheduler"]["last_epoch"] == full_b["lr_scheduler"]["last_epoch"]
    for state_a, state_b in zip(full_a["optimizer"]["state"].values(), full_b["optimizer"]["state"].values(),
                                strict=True):
        assert torch.equal(state_a["momentum_buffer"], state_b["momentum_buffer"])

    # metrics.csv has one row per epoch, also across the resume
    with open(resumed / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    with open(straight / "metrics.csv", newline="") as f:
        assert [r["train_loss"] for r in csv.DictReader(f)] == [r["train_loss"] for r in rows]
    assert 0.0 <= float(rows[-1]["valid_acc_mean"]) <= 1.0
    assert result["best"]["epoch"] in (0, 1)
    assert (resumed / "best.pth").is_file() and (resumed / "train.log").is_file()
    assert not list(resumed.glob("*.tmp"))


def test_checkpoint_layout_and_frozen_stem(data, tmp_path):
    out = tmp_path / "run"
    tiny_train(train_config(data, out, epochs=1, lr_warmup_epochs=0.0))
    best = read_checkpoint(out / "best.pth")
    assert {"model", "model_config", "label_map", "preprocessing", "epoch", "args"} <= best.keys()
    assert "optimizer" not in best  # model-only: small, for extraction
    assert best["preprocessing"] == "tsp" and best["label_map"] == data_label_map(data)
    assert ModelConfig.from_dict(best["model_config"]) == ModelConfig("r2plus1d_18", 2, ("action", "region"), "max")
    assert best["model"]["fc1.weight"].shape == (2, 512) and best["model"]["fc2.weight"].shape == (2, 1024)
    assert best["input"]["sampling"] == "ffmpeg-fps"  # the original's frames, recorded for evaluate / extract
    full = read_checkpoint(out / "checkpoint.pth")
    assert {"optimizer", "lr_scheduler", "scaler", "rng", "best"} <= full.keys()
    # the stem is frozen by default, the rest trains
    torch.manual_seed(0)
    initial = tiny_create_model("r2plus1d_18", 2, ("action", "region"), "max").state_dict()
    assert torch.equal(full["model"]["features.stem.weight"], initial["features.stem.weight"])
    assert not torch.equal(full["model"]["features.layer1.weight"], initial["features.layer1.weight"])
    unfrozen = tmp_path / "unfrozen"
    tiny_train(train_config(data, unfrozen, epochs=1, lr_warmup_epochs=0.0, freeze_stem=False, sampling="timestamp"))
    assert read_checkpoint(unfrozen / "best.pth")["input"]["sampling"] == "timestamp"
    assert not torch.equal(_weights(unfrozen / "checkpoint.pth")["features.stem.weight"],
                           initial["features.stem.weight"])


def data_label_map(data) -> list[str]:
    import json

    return json.loads(data["label_map"].read_text())


@pytest.mark.parametrize("flags, heads_keys, config", [
    (["--heads", "action"], {"fc.weight": (2, 512)}, (("action",), None)),
    (["--heads", "region"], {"fc.weight": (2, 512)}, (("region",), None)),  # the original ignores the GVF
    (["--heads", "region", "--region-only-gvf"], {"fc.weight": (2, 1024)}, (("region",), "max")),
    (["--no-gvf"], {"fc1.weight": (2, 512), "fc2.weight": (2, 512)}, (("action", "region"), None)),
    (["--gvf-pool", "avg", "--alpha-action", "0.5"], {"fc2.weight": (2, 1024)}, (("action", "region"), "avg")),
])
def test_variants_from_flags(data, tmp_path, flags, heads_keys, config):
    argv = train_argv(data, tmp_path / "run", "--epochs", "1", *flags)
    if "--no-gvf" in flags or flags[:2] == ["--heads", "action"]:
        argv = [a for i, a in enumerate(argv) if a != "--gvf" and (i == 0 or argv[i - 1] != "--gvf")]
    result = tiny_train(parse(argv))
    checkpoint = read_checkpoint(tmp_path / "run" / "best.pth")
    for key, shape in heads_keys.items():
        assert checkpoint["model"][key].shape == shape
    assert tuple(checkpoint["model_config"]["heads"]) == config[0] and checkpoint["model_config"]["gvf"] == config[1]
    row = result["metrics"][-1]
    if config[0] == ("action",):  # TAC: accuracy on foreground clips, no region accuracy
        assert math.isnan(row.get("valid_acc_region", math.nan))
        assert row["valid_acc_mean"] == row["valid_acc_action"]
    if config[0] == ("region",):
        assert checkpoint["label_map"] is None and row["valid_acc_mean"] == row["valid_acc_region"]


def test_clear_errors_for_inconsistent_flags(data, tmp_path):
    from tspvideo.core.errors import TspVideoError

    argv = train_argv(data, tmp_path / "run", "--epochs", "1")
    without_gvf = [a for i, a in enumerate(argv) if a != "--gvf" and argv[i - 1] != "--gvf"]
    with pytest.raises(TspVideoError, match="needs --gvf"):
        train.train(parse(without_gvf))
    with pytest.raises(TspVideoError, match="fewer than one batch"):
        train.train(parse(argv + ["--batch-size", "1000"]))
    assert cli_main(["train", *without_gvf]) == 2


def test_progress_shows_steps_within_the_epoch(capsys):
    """The bar says which step of the epoch it is at, not only clips."""
    torch.manual_seed(0)
    model = tiny_create_model("r3d_18", num_classes=3, heads=("action", "region"), gvf="max")
    batches = [{"clip": torch.randn(4, 3, 4, 16, 16), "gvf": torch.randn(4, 512), "action": torch.tensor([0, 2, -1, 1]),
                "region": torch.tensor([0, 0, 1, 0]), "replaced": torch.zeros(4)} for _ in range(3)]
    optimizer = torch.optim.SGD(train.parameter_groups(model, 0.01, 0.01, freeze_stem=False), momentum=0.9)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    stats = train.train_one_epoch(model, batches, optimizer, scheduler, torch.amp.GradScaler("cpu", enabled=False),
                                  torch.device("cpu"), epoch=0, epochs=1, batch_size=4, action_norm="clips",
                                  show_progress=True)
    assert stats["clips"] == 12
    err = capsys.readouterr().err
    assert "step=3/3" in err and "epoch 1/1" in err


# ----------------------------------------------------------------------------------------------------
# The original's TAC batches, recipes and the GVF file's attributes
# ----------------------------------------------------------------------------------------------------


def _without_gvf(argv: list[str]) -> list[str]:
    return [a for i, a in enumerate(argv) if a != "--gvf" and (i == 0 or argv[i - 1] != "--gvf")]


def test_tac_epoch_is_every_clip_of_the_tsp_table(data, tmp_path):
    from tspvideo.datasets.clips import ClipSpec, SegmentClipDataset
    from tspvideo.datasets.segments import read_segment_table
    table = SegmentClipDataset(read_segment_table(data["train"]), data["videos"], train=True,
                               spec=ClipSpec(clip_len=4, clips_per_segment=2)).num_clips()
    assert table["background"] > 0
    all_clips = table["foreground"] + table["background"]
    base = _without_gvf(train_argv(data, tmp_path / "x", "--epochs", "1", "--batch-size", "2"))

    def clips_per_epoch(name: str, *flags: str) -> int:
        argv = [a if a != str(tmp_path / "x") else str(tmp_path / name) for a in base]
        return tiny_train(parse([*argv, *flags]))["metrics"][-1]["train_clips"]

    # The original's TAC: background clips stay in the batches (label -1), an epoch is all clips.
    assert clips_per_epoch("tac", "--heads", "action") == all_clips // 2 * 2
    assert clips_per_epoch("tsp", "--no-gvf", "--no-balance") == all_clips // 2 * 2
    assert clips_per_epoch("tac_fg", "--heads", "action", "--tac-clips", "foreground") == table["foreground"]


def test_tac_batches_carry_background_clips_that_the_loss_ignores(data, tmp_path, monkeypatch):
    seen = []
    real_loss = train_loop.tsp_loss

    def spy(outputs, action, region, *args, **kwargs):
        seen.append(action.clone())
        return real_loss(outputs, action, region, *args, **kwargs)

    monkeypatch.setattr(train_loop, "tsp_loss", spy)
    tiny_train(parse(_without_gvf(train_argv(data, tmp_path / "run", "--epochs", "1", "--heads", "action"))))
    labels = torch.cat(seen)
    assert (labels == -1).any() and (labels >= 0).any()


def test_region_only_needs_no_gvf_and_warns_when_one_is_ignored(data, tmp_path, capsys):
    tiny_train(parse(_without_gvf(train_argv(data, tmp_path / "a", "--epochs", "1", "--heads", "region"))))
    assert read_checkpoint(tmp_path / "a" / "best.pth")["model"]["fc.weight"].shape == (2, 512)
    tiny_train(parse(train_argv(data, tmp_path / "b", "--epochs", "1", "--heads", "region")))
    assert "ignores --gvf" in capsys.readouterr().out
    from tspvideo.core.errors import TspVideoError

    with pytest.raises(TspVideoError, match="needs --gvf"):
        tiny_train(parse(_without_gvf(train_argv(data, tmp_path / "c", "--heads", "region", "--region-only-gvf"))))
    with pytest.raises(TspVideoError, match="--heads region alone"):
        tiny_train(parse(train_argv(data, tmp_path / "d", "--region-only-gvf")))


def test_recipe_fills_options_is_printed_and_explicit_flags_win(data, tmp_path, capsys):
    argv = _without_gvf(train_argv(data, tmp_path / "run", "--epochs", "1", "--recipe", "region-only-activitynet"))
    tiny_train(parse(argv))
    printed = capsys.readouterr().out
    assert "recipe region-only-activitynet" in printed and "fc_lr=0.002 " in printed and "batch_size=4*" in printed
    saved = read_checkpoint(tmp_path / "run" / "checkpoint.pth")["args"]
    assert saved["recipe"] == "region-only-activitynet" and saved["heads"] == ["region"]
    assert saved["fc_lr"] == 2e-3 and saved["batch_size"] == 4 and saved["lr_milestones"] == [4.0, 6.0]


def _gvf_copy(data, path, **attrs):
    with h5py.File(data["gvf"], "r") as src, h5py.File(path, "w") as dst:
        for key in src:
            dst.create_dataset(key, data=src[key][()])
        dst.attrs.update(attrs)
    return path


def test_gvf_pool_is_checked_against_the_file(data, tmp_path, reference_data_dir):
    from tspvideo.core.errors import TspVideoError
    avg = _gvf_copy(data, tmp_path / "avg.h5", pool="avg", encoder="r2plus1d_34-tac_on_kinetics")
    argv = [a if a != str(data["gvf"]) else str(avg) for a in train_argv(data, tmp_path / "run", "--epochs", "1")]
    with pytest.raises(TspVideoError, match="avg-pooled .* --gvf-pool max"):
        tiny_train(parse(argv + ["--gvf-pool", "max"]))
    with pytest.raises(TspVideoError, match="avg-pooled"):  # the max-GVF recipe asks for max too
        tiny_train(parse(argv + ["--recipe", "tsp-activitynet", "--label-map", str(data["label_map"])]))
    assert cli_main(["train", *argv, "--gvf-pool", "max"]) == 2
    tiny_train(parse(argv))  # unset: the file's pooling
    assert read_checkpoint(tmp_path / "run" / "best.pth")["model_config"]["gvf"] == "avg"
    # a file without attributes (the original's released GVFs) still loads, as max unless told
    assert train_run.gvf_attributes(reference_data_dir / "thumos14_r2plus1d_34-max_gvf.h5") == {}
    tiny_train(parse(train_argv(data, tmp_path / "plain", "--epochs", "1", "--gvf-pool", "avg")))
    assert read_checkpoint(tmp_path / "plain" / "best.pth")["model_config"]["gvf"] == "avg"


def test_every_train_flag_is_a_config_field_and_back():
    """A training option lives in two places, the config field and its flag, with the same name."""
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    dests = {action.dest for action in parser._actions if action.dest != "help"}
    assert dests == set(train.TrainConfig.__dataclass_fields__)


def test_train_takes_a_config_and_leaves_it_unchanged(data, tmp_path):
    """``train(config)`` fills recipe options on a copy: the caller's config can be reused for another run."""
    config = train_config(data, tmp_path / "run", epochs=1, no_gvf=True, gvf=None)
    before = config.to_dict()
    result = tiny_train(config)
    assert config.to_dict() == before and config.fc_lr is None
    assert read_checkpoint(tmp_path / "run" / "checkpoint.pth")["args"]["fc_lr"] == 2e-3
    assert result["best"]["epoch"] == 0
