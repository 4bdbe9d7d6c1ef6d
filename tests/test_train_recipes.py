"""Training recipes: each fills every option as the original's training script, explicit flags win."""

from __future__ import annotations

import argparse

import pytest

from tspvideo.commands.train import add_train_arguments, config_from_args
from tspvideo.core.errors import TspVideoError
from tspvideo.train import TrainConfig
from tspvideo.train.recipes import DEFAULTS, GVF_ENCODER, RECIPES, apply_recipe

# The values of the original's train/*.sh scripts (DOWNSCALE_FACTOR=1) and train/opts.py defaults.
ORIGINAL_OPTS = {"backbone": "r2plus1d_34", "clip_len": 16, "fps": 15.0, "clips_per_segment": 5, "batch_size": 32,
                 "epochs": 8, "momentum": 0.9, "weight_decay": 0.005, "lr_warmup_epochs": 2.0,
                 "lr_milestones": [4.0, 6.0], "lr_gamma": 0.01, "alpha_action": 1.0, "alpha_region": 1.0,
                 "resize": [128, 171], "crop": 112, "freeze_stem": True, "action_loss_norm": "foreground"}
ORIGINAL_SCRIPTS = {
    "tsp-activitynet": {"heads": ["action", "region"], "label_map": "activitynet", "backbone_lr": 1e-4,
                        "fc_lr": 0.002, "no_gvf": False, "gvf_pool": "max"},
    "tac-activitynet": {"heads": ["action"], "label_map": "activitynet", "backbone_lr": 1e-4, "fc_lr": 0.002,
                        "tac_clips": "all"},
    "tsp-thumos14": {"heads": ["action", "region"], "label_map": "thumos14", "backbone_lr": 1e-4, "fc_lr": 0.004,
                     "gvf_pool": "max"},
    "tac-thumos14": {"heads": ["action"], "label_map": "thumos14", "backbone_lr": 1e-5, "fc_lr": 0.002,
                     "tac_clips": "all"},
}


def parse(*argv: str) -> TrainConfig:
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    return config_from_args(parser.parse_args(["--train-csv", "t.csv", "--video-dir", "v", "--out", "o", *argv]))


@pytest.mark.parametrize("name", sorted(ORIGINAL_SCRIPTS))
def test_recipe_fills_every_option_as_the_original_script(name):
    args, resolved = apply_recipe(parse("--recipe", name))
    for key, value in {**ORIGINAL_OPTS, **ORIGINAL_SCRIPTS[name]}.items():
        assert getattr(args, key) == value, (name, key)
    assert all(getattr(args, key) is not None or key in ("label_map", "gvf_pool") for key in DEFAULTS)
    assert set(resolved.origins.values()) == {name}
    line = resolved.describe(args)
    assert line.startswith(f"recipe {name} (train/") and f"fc_lr={ORIGINAL_SCRIPTS[name]['fc_lr']:g}" in line


def test_ablation_recipes():
    args, _ = apply_recipe(parse("--recipe", "region-only-activitynet"))
    assert args.heads == ["region"] and not args.region_only_gvf and args.gvf_pool is None
    args, resolved = apply_recipe(parse("--recipe", "tsp-activitynet-no-gvf"))
    assert args.no_gvf and args.fc_lr == 0.004 and resolved.gvf_encoder is None
    args, resolved = apply_recipe(parse("--recipe", "tsp-activitynet-avg-gvf"))
    assert args.gvf_pool == "avg" and resolved.gvf_encoder == GVF_ENCODER
    assert all(RECIPES[n].gvf_encoder in (None, GVF_ENCODER) for n in RECIPES)  # one GVF encoder everywhere


def test_explicit_flags_win_and_downscale_divides_batch_and_rates_together():
    args, _ = apply_recipe(parse("--recipe", "tsp-thumos14", "--downscale-factor", "4"))
    assert (args.batch_size, args.backbone_lr, args.fc_lr) == (8, pytest.approx(2.5e-5), pytest.approx(1e-3))
    args, resolved = apply_recipe(parse("--recipe", "tsp-thumos14", "--downscale-factor", "2", "--fc-lr", "0.01",
                                        "--epochs", "3", "--heads", "action"))
    assert (args.batch_size, args.backbone_lr, args.fc_lr, args.epochs, args.heads) == (16, 5e-5, 0.01, 3, ["action"])
    assert resolved.origins["fc_lr"] == "explicit" and resolved.origins["batch_size"] == "tsp-thumos14"
    assert "fc_lr=0.01*" in resolved.describe(args) and "downscale factor 2" in resolved.describe(args)
    args, _ = apply_recipe(parse())  # no recipe: the original's opts.py defaults
    assert all(getattr(args, key) == value for key, value in ORIGINAL_OPTS.items())
    assert (args.heads, args.backbone_lr, args.fc_lr) == (["action", "region"], 1e-4, 0.002)
    with pytest.raises(TspVideoError, match="batch of 0"):
        apply_recipe(parse("--downscale-factor", "64"))


@pytest.mark.parametrize("recipe", [None, "tsp-thumos14"])
def test_clip_grid_left_unset_comes_from_the_backbones_input_recipe(recipe):
    from tspvideo.models.weights import default_recipe

    args, _ = apply_recipe(parse("--backbone", "swin3d_t", "--fps", "10", *(["--recipe", recipe] if recipe else [])))
    swin = default_recipe("swin3d_t")
    assert (args.clip_len, args.resize, args.crop) == (swin.clip_len, list(swin.resize), swin.crop[0])
    assert args.fps == 10.0  # an explicit flag still wins
    paper, _ = apply_recipe(parse(*(["--recipe", recipe] if recipe else [])))
    assert (paper.clip_len, paper.fps, paper.resize, paper.crop) == (16, 15.0, [128, 171], 112)
