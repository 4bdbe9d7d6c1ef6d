"""torchvision's newer video backbones (S3D, MViT-v2-S, Swin3D-T/S/B): registry, recipes, training, extraction.

CPU only, random weights. Inputs are as small as each architecture takes: MViT-v2 only takes 16x224x224
clips (its relative positions are sized for them), so it runs at that size with one clip per step; S3D
(its final pooling window clipped to small maps) and the Swin models take tiny clips.
"""

from __future__ import annotations

import csv
import json
import re
import urllib.error
import urllib.request

import h5py
import numpy as np
import pytest
import torch
import torchvision.models.video as tv_video
import torchvision.transforms.v2.functional as TF

from tspvideo.cli import main as cli_main
from tspvideo.core.errors import TspVideoError
from tspvideo.datasets.transforms import Preprocessing, resized_size
from tspvideo.extract.streaming import FrameStream
from tspvideo.features.gvf import write_gvf
from tspvideo.models.backbones import (
    backbone_spec,
    batchnorm_momentum,
    check_input_size,
    create_backbone,
    enable_gradient_checkpointing,
    set_batchnorm_momentum,
)
from tspvideo.models.encoder import load_encoder
from tspvideo.models.flops import RECIPE_GFLOPS, clip_gflops
from tspvideo.models.tsp import create_model
from tspvideo.models.weights import WEIGHTS, default_recipe, read_checkpoint, resolve_weights
from tspvideo.runs.steps import prepare_synthetic_dataset
from tspvideo.train import build_model, parameter_groups

NEW = ["s3d", "mvit_v2_s", "swin3d_t", "swin3d_s", "swin3d_b"]
TORCHVISION_WEIGHTS = {  # our registered name -> torchvision's weights enum member
    "s3d-kinetics400": tv_video.S3D_Weights.KINETICS400_V1,
    "mvit_v2_s-kinetics400": tv_video.MViT_V2_S_Weights.KINETICS400_V1,
    "swin3d_t-kinetics400": tv_video.Swin3D_T_Weights.KINETICS400_V1,
    "swin3d_s-kinetics400": tv_video.Swin3D_S_Weights.KINETICS400_V1,
    "swin3d_b-kinetics400": tv_video.Swin3D_B_Weights.KINETICS400_V1,
    "swin3d_b-kinetics400_imagenet22k": tv_video.Swin3D_B_Weights.KINETICS400_IMAGENET22K_V1,
}
# Training/extraction inputs the tests use: the smallest each architecture takes (None: the recipe's).
TEST_INPUTS = {
    "s3d": {"clip_len": 8, "fps": 15.0, "resize": [72], "crop": 64},  # 2x2 final maps: batch norm needs > 1 value
    "mvit_v2_s": {"clip_len": None, "fps": None, "resize": None, "crop": None},  # 16 @ 7.5 fps, 224x224
    "swin3d_t": {"clip_len": 4, "fps": 15.0, "resize": [40], "crop": 32},
    "swin3d_s": {"clip_len": 2, "fps": 15.0, "resize": [40], "crop": 32},
    "swin3d_b": {"clip_len": 2, "fps": 15.0, "resize": [40], "crop": 32},
}


@pytest.fixture(autouse=True)
def few_threads():
    """Two threads: the tests run beside other work; results do not depend on it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------------------------------
# Registry and recipes
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TORCHVISION_WEIGHTS))
def test_weights_and_recipes_are_torchvisions(name):
    info, enum = WEIGHTS[name], TORCHVISION_WEIGHTS[name]
    assert info.url == enum.url
    assert info.hash_prefix == enum.url.rsplit("-", 1)[-1].split(".")[0]  # what the download is checked against
    assert info.num_classes == len(enum.meta["categories"]) and info.heads == ("action",)
    transforms, recipe = enum.transforms(), info.recipe
    assert recipe.backbone == info.backbone
    assert list(recipe.crop) == list(transforms.crop_size)
    assert list(recipe.resize) == list(transforms.resize_size)
    assert list(recipe.mean) == pytest.approx(transforms.mean) and list(recipe.std) == pytest.approx(transforms.std)
    docs = enum.meta["_docs"]  # "... with parameters `frame_rate=15`, `clips_per_video=12`, and `clip_len=32`"
    assert recipe.fps == float(re.search(r"frame_rate=([\d.]+)", docs).group(1))
    assert recipe.clip_len == int(re.search(r"clip_len=(\d+)", docs).group(1))
    assert default_recipe(info.backbone) == recipe


@pytest.mark.parametrize("name", sorted(RECIPE_GFLOPS))
def test_listed_gflops_and_feature_dims_are_measured(name):
    recipe = default_recipe(name)
    assert clip_gflops(name, recipe.clip_len, recipe.crop) == pytest.approx(RECIPE_GFLOPS[name], abs=0.05)
    with torch.device("meta"):
        out = create_model(name, 3, gvf="max").eval()(torch.empty(2, 3, recipe.clip_len, *recipe.crop),
                                                      torch.empty(2, backbone_spec(name).feature_dim))
    assert out["features"].shape == (2, backbone_spec(name).feature_dim)
    assert out["region"].shape == (2, 2) and out["action"].shape == (2, 3)


def test_torchvision_ops_agree_with_our_count():
    # torchvision's tables count multiply-adds (1 FLOP each) on 16-frame clips; we count 2 per multiply-add.
    assert clip_gflops("mvit_v2_s", 16, (224, 224)) / 2 == pytest.approx(
        tv_video.MViT_V2_S_Weights.KINETICS400_V1.meta["_ops"], abs=0.01)
    assert clip_gflops("swin3d_t", 16, (224, 224)) / 2 == pytest.approx(
        tv_video.Swin3D_T_Weights.KINETICS400_V1.meta["_ops"], abs=0.01)


def test_inputs_an_architecture_cannot_take_are_clear_errors():
    with pytest.raises(TspVideoError, match=r"mvit_v2_s cannot take clips of 8 frames of 224x224 .*exactly 16"):
        check_input_size("mvit_v2_s", 8, (224, 224))
    with pytest.raises(TspVideoError, match=r"s3d cannot take clips of 4 frames of 64x64 .*at least 5 frames"):
        check_input_size("s3d", 4, (64, 64))
    with pytest.raises(TspVideoError, match=r"s3d cannot take clips of 8 frames of 16x16 .*crops of at least 17"):
        check_input_size("s3d", 8, (16, 16))
    check_input_size("swin3d_t", 2, (32, 32))
    check_input_size("s3d", 5, (17, 17))
    check_input_size("s3d", 13, (224, 224))


def test_s3d_is_torchvisions_where_its_pooling_window_fits_and_averages_the_whole_map_below():
    torch.manual_seed(0)
    ours = create_backbone("s3d").eval()
    reference = tv_video.s3d()
    reference.classifier = torch.nn.Identity()
    reference.load_state_dict(ours.state_dict())
    reference.eval()
    with torch.no_grad():
        for shape in [(1, 3, 13, 224, 224), (1, 3, 18, 224, 256)]:  # feature maps 2x7x7 and 3x7x8
            x = torch.randn(shape)
            assert torch.equal(ours(x), reference(x))
        for shape in [(2, 3, 8, 32, 32), (1, 3, 16, 64, 96), (1, 3, 8, 224, 224)]:  # smaller in some dimension
            x = torch.randn(shape)
            features = ours.features(x)
            assert features.shape[-3:] != (2, 7, 7)
            assert torch.allclose(ours(x), features.mean(dim=(2, 3, 4)), atol=1e-6)


def test_short_side_resize_matches_torchvision():
    for height, width in [(272, 640), (640, 272), (48, 64), (100, 100)]:
        expected = TF.resize(torch.zeros(3, height, width), [256], antialias=False).shape[-2:]
        assert resized_size(height, width, (256,)) == tuple(expected)
    assert resized_size(272, 640, (128, 171)) == (128, 171)


def test_decoder_resize_needs_a_fixed_size(tmp_path):
    from tspvideo.extract.streaming import ClipGrid

    with pytest.raises(TspVideoError, match="--decoder-resize needs a fixed frame size"):
        FrameStream([], [], ClipGrid(), Preprocessing(resize=(256,), crop=(224, 224)), decoder_resize=True)


def _torchvision_file(cache, name: str, seed: int = 0) -> torch.nn.Module:
    """A torchvision model with random weights, saved where the registered weights ``name`` are cached."""
    torch.manual_seed(seed)
    model = getattr(tv_video, WEIGHTS[name].backbone)().eval()
    torch.save(model.state_dict(), cache / WEIGHTS[name].filename)
    return model


@pytest.mark.parametrize("name, clips", [("s3d-kinetics400", (1, 3, 13, 224, 224)),
                                         ("swin3d_t-kinetics400", (2, 3, 4, 32, 32))])
def test_cached_torchvision_file_loads_with_its_classifier_as_the_tac_head(name, clips, tmp_path, monkeypatch):
    monkeypatch.setenv("TSPVIDEO_CACHE", str(tmp_path))
    reference = _torchvision_file(tmp_path, name)
    encoder = load_encoder(name)
    model = encoder.model
    description = encoder.description()
    assert model.config.backbone == WEIGHTS[name].backbone and model.config.heads == ("action",)
    assert description["backbone"] == WEIGHTS[name].backbone
    assert description["recipe"] == WEIGHTS[name].recipe.to_dict()
    x = torch.randn(clips)
    with torch.no_grad():
        assert torch.allclose(model(x)["action"], reference(x), atol=1e-5)


def test_mvit_file_maps_its_head_and_renamed_files_are_recognised(tmp_path, monkeypatch):
    monkeypatch.setenv("TSPVIDEO_CACHE", str(tmp_path))
    reference = _torchvision_file(tmp_path, "mvit_v2_s-kinetics400")
    encoder = load_encoder("mvit_v2_s-kinetics400")
    model = encoder.model
    assert torch.equal(model.fc.weight, reference.head[1].weight)
    renamed = tmp_path / "my_encoder.pth"  # unregistered name: the architecture comes from the parameters
    (tmp_path / WEIGHTS["mvit_v2_s-kinetics400"].filename).rename(renamed)
    encoder = load_encoder(renamed)
    model = encoder.model
    description = encoder.description()
    assert model.config.backbone == "mvit_v2_s" and model.config.num_classes == 400
    assert description["recipe"] == default_recipe("mvit_v2_s").to_dict()


def test_offline_failure_names_the_file_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TSPVIDEO_CACHE", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(TspVideoError) as info:
        resolve_weights("swin3d_t-kinetics400")
    message = str(info.value)
    assert "https://download.pytorch.org/models/swin3d_t-7615ae03.pth" in message and str(tmp_path) in message
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.mark.parametrize("name", NEW)
def test_freeze_stem_maps_to_each_architectures_first_layer(name):
    with torch.device("meta"):  # names and sizes are all this needs
        model = create_model(name, 3, gvf="max")
    groups = parameter_groups(model, 1e-4, 2e-3, freeze_stem=True)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen, f"{name}: no stem parameter found"
    first = next(n for n, _ in model.named_parameters())
    assert first in frozen  # the input layer
    trained = sum(p.numel() for g in groups for p in g["params"])
    assert trained + sum(p.numel() for p in model.parameters() if not p.requires_grad) == sum(
        p.numel() for p in model.parameters())
    assert sum(p.numel() for p in model.parameters() if not p.requires_grad) < 0.05 * trained


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = create_model("swin3d_t", 3, heads=("action",), gvf=None).train()
    names = list(model.state_dict())
    clips = torch.randn(2, 3, 4, 32, 32)
    grads = []
    for checkpointed in (False, True):
        if checkpointed:
            assert enable_gradient_checkpointing(model.features, "swin3d_t") == 12
        model.zero_grad()
        torch.manual_seed(1)  # the same stochastic depth draws
        model(clips)["action"].sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], atol=1e-5)
    assert list(model.state_dict()) == names  # checkpoints load either way
    with torch.device("meta"):
        mvit = create_model("mvit_v2_s", 3, heads=("action",), gvf=None)
    assert enable_gradient_checkpointing(mvit.features, "mvit_v2_s") == len(mvit.features.blocks)
    with pytest.raises(TspVideoError, match="transformer backbones"):
        enable_gradient_checkpointing(torch.nn.Module(), "s3d")


# ----------------------------------------------------------------------------------------------------
# End to end: train two steps (interrupted after one, resumed), load back, extract from a real video
# ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Synthetic videos (real encoded mp4) and a one-segment table: one clip per epoch, one step of one clip."""
    root = tmp_path_factory.mktemp("backbone-data")
    paths = prepare_synthetic_dataset(root, num_videos=4, num_classes=2, min_duration=6.0, max_duration=8.0,
                                      progress=False)
    with open(paths["train"], newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    longest = max((r for r in rows if r["temporal-region-label"] == "Action"),
                  key=lambda r: float(r["t-end"]) - float(r["t-start"]))
    assert float(longest["t-end"]) - float(longest["t-start"]) > 16 / 7.5  # one MViT clip fits
    paths["one"] = root / "one.csv"
    with open(paths["one"], "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerow(longest)
    paths["video"] = paths["videos"] / longest["filename"]
    return paths


def write_random_gvf(paths, dim: int, out):
    rng = np.random.default_rng(0)
    with h5py.File(out, "w") as h5:
        for video in sorted(paths["videos"].glob("*.mp4")):
            h5.create_dataset(video.stem, data=rng.standard_normal(dim).astype(np.float32))
    return out


def train_argv(paths, backbone: str, out, gvf, *extra: str) -> list[str]:
    argv = ["train", "--train-csv", str(paths["one"]), "--video-dir", str(paths["videos"]),
            "--label-map", str(paths["label_map"]), "--out", str(out), "--backbone", backbone, "--weights", "none",
            "--clips-per-segment", "1", "--no-balance", "--batch-size", "1", "--workers", "0", "--device", "cpu",
            "--lr-warmup-epochs", "0", "--no-progress", "--seed", "3"]
    if gvf is not None:
        argv += ["--gvf", str(gvf)]
    for key, value in TEST_INPUTS[backbone].items():
        if value is not None:
            argv += [f"--{key.replace('_', '-')}", *map(str, value if isinstance(value, list) else [value])]
    return argv + list(extra)


@pytest.mark.parametrize("backbone", NEW)
def test_train_resume_load_and_extract(backbone, data, tmp_path, capsys):
    dim = backbone_spec(backbone).feature_dim
    gvf = write_random_gvf(data, dim, tmp_path / "gvf.h5")
    out = tmp_path / "run"
    assert cli_main(train_argv(data, backbone, out, gvf, "--epochs", "1")) == 0
    first = read_checkpoint(out / "checkpoint.pth")
    assert first["epoch"] == 0 and first["model"]["fc2.weight"].shape == (2, 2 * dim)
    assert cli_main(train_argv(data, backbone, out, gvf, "--epochs", "2", "--resume")) == 0
    second = read_checkpoint(out / "checkpoint.pth")
    assert second["epoch"] == 1
    assert [int(r["epoch"]) for r in csv.DictReader(open(out / "metrics.csv", encoding="utf-8"))] == [1, 2]
    stem = next(k for k in second["model"] if k.startswith("features.") and second["model"][k].is_floating_point())
    assert torch.equal(first["model"][stem], second["model"][stem])  # frozen stem
    changed = [k for k in second["model"] if k.startswith("features.") and second["model"][k].is_floating_point()
               and not torch.equal(first["model"][k], second["model"][k])]
    assert changed  # the second step trained the backbone

    # The checkpoint loads back with its architecture and the recipe it was trained with.
    encoder = load_encoder(out / "best.pth")
    model = encoder.model
    description = encoder.description()
    assert model.config.backbone == backbone and model.config.heads == ("action", "region")
    recipe = default_recipe(backbone)
    inputs = TEST_INPUTS[backbone]
    expected = {"backbone": backbone, "clip_len": inputs["clip_len"] or recipe.clip_len,
                "fps": inputs["fps"] or recipe.fps, "resize": inputs["resize"] or list(recipe.resize),
                "crop": [inputs["crop"] or recipe.crop[0]] * 2, "mean": list(recipe.mean), "std": list(recipe.std)}
    assert description["recipe"] == expected

    # Extraction from a real encoded video takes its grid and transforms from the checkpoint.
    features_dir = tmp_path / "features"
    code = cli_main(["extract", str(data["video"]), "--checkpoint", str(out / "best.pth"), "--out",
                     str(features_dir), "--stride", "64", "--batch-size", "2", "--workers", "0", "--device", "cpu",
                     "--no-progress"])
    assert code == 0, capsys.readouterr()
    features = np.load(features_dir / f"{data['video'].stem}.npy")
    sidecar = json.loads((features_dir / f"{data['video'].stem}.json").read_text())
    assert features.ndim == 2 and features.shape[1] == dim and len(features) >= 1 and np.isfinite(features).all()
    assert sidecar["feature_dim"] == dim and sidecar["backbone"] == backbone
    assert sidecar["recipe"] == expected and sidecar["clip_len"] == expected["clip_len"]
    assert sidecar["fps"] == expected["fps"]
    assert sidecar["preprocessing"]["mean"] == pytest.approx(recipe.mean)
    gvf_out = tmp_path / "pooled.h5"
    write_gvf(features_dir, gvf_out, encoder=description["weights"], backbone=description["backbone"])
    with h5py.File(gvf_out) as h5:
        assert h5.attrs["feature_dim"] == dim and h5.attrs["backbone"] == backbone
        assert h5.attrs["encoder"] == description["weights"] and h5.attrs["pool"] == "max"


def test_tac_trains_with_the_same_code_path(data, tmp_path, capsys):
    out = tmp_path / "tac"
    assert cli_main(train_argv(data, "swin3d_t", out, None, "--heads", "action", "--epochs", "1",
                               "--grad-checkpointing")) == 0
    encoder = load_encoder(out / "best.pth")
    model = encoder.model
    description = encoder.description()
    assert model.config.heads == ("action",) and model.fc.in_features == 768
    assert description["recipe"]["clip_len"] == 4
    # Resuming with another input recipe would silently train on other clips: refused.
    argv = train_argv(data, "swin3d_t", out, None, "--heads", "action", "--epochs", "2", "--resume")
    assert cli_main([a if a != "4" else "2" for a in argv]) == 2
    assert "cannot resume with another input: clip_len differ" in capsys.readouterr().err


def test_bn_momentum_sets_how_far_one_step_moves_the_running_statistics(data, tmp_path, capsys):
    assert batchnorm_momentum("s3d") == 0.001 and batchnorm_momentum("r2plus1d_18") == 0.1
    assert batchnorm_momentum("swin3d_t") is None
    runs = {}
    for momentum in (None, 0.5):
        out = tmp_path / f"bn{momentum}"
        extra = ["--bn-momentum", str(momentum)] if momentum is not None else []
        assert cli_main(train_argv(data, "s3d", out, None, "--heads", "action", "--epochs", "1", *extra)) == 0
        runs[momentum or 0.001] = read_checkpoint(out / "checkpoint.pth")["model"]
    assert "batch-norm momentum 0.5 in 77 layers" in (tmp_path / "bn0.5" / "train.log").read_text(encoding="utf-8")
    # Resuming with another momentum would mix two trainings: refused, the checkpoint kept.
    assert cli_main(train_argv(data, "s3d", tmp_path / "bn0.5", None, "--heads", "action", "--epochs", "2",
                               "--resume")) == 2
    assert "cannot resume with another batch-norm momentum: the run used 0.5, now the architecture's own" in \
        capsys.readouterr().err
    assert read_checkpoint(tmp_path / "bn0.5" / "checkpoint.pth")["epoch"] == 0
    # One step from running means of 0: each layer's running mean is momentum x the same batch mean.
    means = [k for k in runs[0.5] if k.endswith("running_mean") and runs[0.5][k].abs().sum() > 0]
    assert len(means) > 60
    for key in means:
        assert torch.allclose(runs[0.5][key] / 0.5, runs[0.001][key] / 0.001, rtol=1e-3, atol=1e-6), key
    with pytest.raises(TspVideoError, match="swin3d_t has no batch-norm layers"):
        set_batchnorm_momentum(create_backbone("swin3d_t"), 0.1, "swin3d_t")
    with pytest.raises(TspVideoError, match=r"momentum must be in \(0, 1\], got 0"):
        set_batchnorm_momentum(create_backbone("s3d"), 0.0, "s3d")


def test_gvf_of_another_dimension_is_an_error_before_training(data, tmp_path, capsys):
    gvf = write_random_gvf(data, 512, tmp_path / "gvf512.h5")
    out = tmp_path / "run"
    assert cli_main(train_argv(data, "swin3d_t", out, gvf, "--epochs", "1")) == 2
    err = capsys.readouterr().err
    assert "gvf512.h5: GVFs have 512 values, the swin3d_t feature has 768" in err and err.count("\n") == 1
    assert not (out / "checkpoint.pth").exists()


def test_gradient_checkpointing_of_a_cnn_and_impossible_inputs_are_refused(data, tmp_path, capsys):
    assert cli_main(train_argv(data, "s3d", tmp_path / "run", None, "--no-gvf", "--grad-checkpointing")) == 2
    assert "not s3d" in capsys.readouterr().err
    argv = train_argv(data, "mvit_v2_s", tmp_path / "run", None, "--no-gvf", "--clip-len", "8")
    assert cli_main(argv) == 2
    assert "mvit_v2_s cannot take clips of 8 frames" in capsys.readouterr().err
    out = tmp_path / "features"
    assert cli_main(["extract", str(data["video"]), "--random-init", "mvit_v2_s", "--clip-len", "8", "--out",
                     str(out)]) == 2
    assert "mvit_v2_s cannot take clips of 8 frames of 224x224" in capsys.readouterr().err
    assert not out.exists()  # refused before any video was decoded


def test_weights_auto_starts_from_the_cached_torchvision_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TSPVIDEO_CACHE", str(tmp_path))
    reference = _torchvision_file(tmp_path, "swin3d_t-kinetics400", seed=5)
    model = build_model("swin3d_t", ("action", "region"), 3, "max", weights="auto", seed=0)
    expected = {k: v for k, v in reference.state_dict().items() if not k.startswith("head.")}
    assert expected.keys() == model.features.state_dict().keys()
    assert all(torch.equal(v, model.features.state_dict()[k]) for k, v in expected.items())
    assert model.fc1.weight.shape == (3, 768) and model.fc2.weight.shape == (2, 1536)


def test_models_command_lists_backbones_with_dim_gflops_and_recipe(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TSPVIDEO_CACHE", str(tmp_path))
    assert cli_main(["models"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^mvit_v2_s +768 +128\.4  16 @ 7\.5 fps, short 256 -> 224x224$", out, re.M)
    assert re.search(r"^s3d +1024 +287\.7  128 @ 15 fps, 256x256 -> 224x224$", out, re.M)
    assert re.search(r"^r2plus1d_34 +512 +152\.4  16 @ 15 fps, 128x171 -> 112x112$", out, re.M)
    for name in TORCHVISION_WEIGHTS:
        assert re.search(rf"^{name} +action +400 +- +no$", out, re.M)
