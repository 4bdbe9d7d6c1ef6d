"""ViT video encoders from transformers (VideoMAE, V-JEPA 2): registry, parity with transformers, checkpoint
folders, training (TSP, TAC, resume, layer decay, drop path, blocks trained) and extraction.

CPU only, offline: tiny random configurations (2 blocks, 32 wide, 8x8 patches) registered as ``videomae_tiny`` and
``vjepa2_tiny``; checkpoint folders are written by transformers' own ``save_pretrained``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import sys

import h5py
import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")  # the test extra installs it: CI runs these

from tspvideo.cli import main as cli_main  # noqa: E402
from tspvideo.core.errors import TspVideoError  # noqa: E402
from tspvideo.datasets.transforms import preprocess_frames  # noqa: E402
from tspvideo.models.backbones import backbone_spec, check_input_size, enable_gradient_checkpointing  # noqa: E402
from tspvideo.models.encoder import load_encoder  # noqa: E402
from tspvideo.models.flops import RECIPE_GFLOPS, clip_gflops  # noqa: E402
from tspvideo.models.hf_registry import EXTRA_MESSAGE, HF_BACKBONES, HFSpec  # noqa: E402
from tspvideo.models.hf_video import build_encoder, hf_config, set_drop_path  # noqa: E402
from tspvideo.models.hf_weights import hub_url, own_folder, read_checkpoint_folder  # noqa: E402
from tspvideo.models.tsp import create_model  # noqa: E402
from tspvideo.models.weights import WEIGHTS, WeightsInfo, default_recipe, read_checkpoint, resolve_weights  # noqa: E402
from tspvideo.runs.steps import prepare_synthetic_dataset  # noqa: E402
from tspvideo.train import parameter_groups  # noqa: E402
from tspvideo.train.recipes import VIT_VALUES  # noqa: E402

TINY = ["videomae_tiny", "vjepa2_tiny"]
REAL = ["videomae_b", "videomae_b_ft", "videomae_l", "videomae_l_ft", "vjepa2_vitl"]


@pytest.fixture(autouse=True)
def few_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    yield
    torch.set_num_threads(threads)


def save_folder(name: str, folder, *, classifier: bool = True, seed: int = 0, labels: int = 3):
    """A hub-style checkpoint folder of the tiny ``name``: transformers' own model and processor files."""
    spec = HF_BACKBONES[name]
    torch.manual_seed(seed)
    if spec.family == "videomae":
        config = hf_config(spec, num_labels=labels, id2label={i: f"class{i}" for i in range(labels)},
                           label2id={f"class{i}": i for i in range(labels)})
        model = (transformers.VideoMAEForVideoClassification if classifier else transformers.VideoMAEModel)(config)
        processor = transformers.VideoMAEImageProcessor(size={"shortest_edge": 40}, crop_size={"height": 32,
                                                                                                "width": 32})
    else:
        model = transformers.VJEPA2Model(hf_config(spec))
        processor = transformers.VJEPA2VideoProcessor(crop_size=32)
    model.eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    return model


# ----------------------------------------------------------------------------------------------------
# Registry, recipes, FLOPs
# ----------------------------------------------------------------------------------------------------


def test_recipes_are_the_checkpoints_processor_values():
    imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    for name in ("videomae_b", "videomae_b_ft", "videomae_l", "videomae_l_ft"):
        recipe = default_recipe(name)
        assert (recipe.clip_len, recipe.fps, recipe.resize, recipe.crop) == (16, 7.5, (224,), (224, 224))
        assert (recipe.mean, recipe.std) == imagenet
    recipe = default_recipe("vjepa2_vitl")
    assert (recipe.clip_len, recipe.fps, recipe.resize, recipe.crop) == (64, 4.0, (292,), (256, 256))
    assert {backbone_spec(n).feature_dim for n in ("videomae_b", "videomae_b_ft")} == {768}
    assert {backbone_spec(n).feature_dim for n in ("videomae_l", "vjepa2_vitl")} == {1024}
    hub = {w.name: w.url for w in WEIGHTS.values() if w.url.startswith("hf://")}
    assert hub["videomae_b_ft-kinetics400"] == ("hf://MCG-NJU/videomae-base-finetuned-kinetics@"
                                                "488eb9a0565f257b32866000305c8178965eb9f6")
    assert hub["vjepa2_vitl-fpc64_256"].startswith("hf://facebook/vjepa2-vitl-fpc64-256@b3c1679b")


@pytest.mark.parametrize("name", REAL + TINY)
def test_listed_gflops_are_measured_and_the_config_is_transformers(name):
    recipe = default_recipe(name)
    assert RECIPE_GFLOPS[name] == pytest.approx(clip_gflops(name, recipe.clip_len, recipe.crop), abs=0.05)
    spec = HF_BACKBONES[name]
    config = hf_config(spec)
    assert all(getattr(config, key) == value for key, value in spec.arch.items())


def test_videomae_takes_only_its_size_and_vjepa2_any_multiple_of_its_patch():
    with pytest.raises(TspVideoError, match="videomae_tiny cannot take clips of 8 frames of 32x32 .*fixed position"):
        check_input_size("videomae_tiny", 8, (32, 32))
    check_input_size("vjepa2_tiny", 8, (48, 48))


def test_models_command_lists_the_vits(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TSPVIDEO_CACHE", str(tmp_path))
    assert cli_main(["models"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^videomae_b +768 +\d+\.\d  16 @ 7\.5 fps, short 224 -> 224x224$", out, re.M)
    assert re.search(r"^vjepa2_vitl +1024 +\d+\.\d  64 @ 4 fps, short 292 -> 256x256$", out, re.M)
    assert re.search(r"^videomae_b_ft-kinetics400 +action +400 +- +no$", out, re.M)
    assert "hf://" not in out
    assert cli_main(["models", "--urls"]) == 0
    assert "https://huggingface.co/MCG-NJU/videomae-large (revision main)" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------------
# Parity with transformers' own forward and processor
# ----------------------------------------------------------------------------------------------------


def test_clip_features_are_transformers_own_outputs(tmp_path):
    clips = torch.randn(2, 3, 4, 32, 32)
    pixels = clips.transpose(1, 2)  # transformers' [B, T, 3, H, W]
    # Fine-tuned VideoMAE: fc_norm of the mean token, the classifier's input; our TAC head is its classifier.
    reference = save_folder("videomae_tiny", tmp_path / "ft")
    encoder = load_encoder(tmp_path / "ft")
    assert encoder.model.config.heads == ("action",) and encoder.label_map == ["class0", "class1", "class2"]
    with torch.no_grad():
        ours = encoder.model(clips)
        tokens = reference.videomae(pixel_values=pixels).last_hidden_state
        assert torch.allclose(ours["features"], reference.fc_norm(tokens.mean(1)), atol=1e-5)
        assert torch.allclose(ours["action"], reference(pixel_values=pixels).logits, atol=1e-5)
    # Self-supervised VideoMAE layout (final layer norm, no fc_norm): the mean of VideoMAEModel's tokens.
    ssl = HFSpec("videomae_ssl_test", "videomae", {**HF_BACKBONES["videomae_tiny"].arch, "use_mean_pooling": False},
                 "tokens")
    torch.manual_seed(1)
    body = transformers.VideoMAEModel(hf_config(ssl)).eval()
    ours = build_encoder(ssl).eval()
    ours.videomae.load_state_dict(body.state_dict())
    with torch.no_grad():
        assert torch.allclose(ours(clips), body(pixel_values=pixels).last_hidden_state.mean(1), atol=1e-5)
    # V-JEPA 2: the mean of the encoder's tokens (VJEPA2Model without its predictor).
    reference = save_folder("vjepa2_tiny", tmp_path / "vjepa2")
    encoder = load_encoder(tmp_path / "vjepa2")
    with torch.no_grad():
        expected = reference(pixel_values_videos=pixels, skip_predictor=True).last_hidden_state.mean(1)
        assert torch.allclose(encoder.model(clips)["features"], expected, atol=1e-5)
    assert not any(k.startswith("features.predictor") for k in encoder.model.state_dict())


def test_folder_recipe_comes_from_its_processor_configuration(tmp_path):
    save_folder("vjepa2_tiny", tmp_path / "v")
    recipe = read_checkpoint_folder(tmp_path / "v")["recipe"]
    assert recipe["crop"] == [32, 32] and recipe["resize"] == [int(32 * 256 / 224)] and recipe["clip_len"] == 4
    save_folder("videomae_tiny", tmp_path / "m")
    data = json.loads((tmp_path / "m" / "preprocessor_config.json").read_text())
    data.update(image_mean=[0.5, 0.5, 0.5], image_std=[0.25, 0.25, 0.25], size={"shortest_edge": 48})
    (tmp_path / "m" / "preprocessor_config.json").write_text(json.dumps(data))
    encoder = load_encoder(tmp_path / "m")
    assert encoder.recipe.mean == (0.5, 0.5, 0.5) and encoder.recipe.resize == (48,) and encoder.recipe.crop == (32, 32)
    assert encoder.resolve_input().prep.std == (0.25, 0.25, 0.25)


def smooth_frames(rng, count: int, height: int, width: int) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` frames as smooth as video frames: low-resolution noise upsampled 12x."""
    low = torch.from_numpy(rng.random((count, 3, height // 12, width // 12))).float()
    frames = torch.nn.functional.interpolate(low, size=(height, width), mode="bicubic", align_corners=False)
    return (frames.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


@pytest.mark.parametrize("name", ["videomae_b", "vjepa2_vitl"])
def test_preprocessing_is_the_checkpoints_processors(name):
    """The ViT recipes resize and crop as the processors do (antialiased bilinear, crop corner rounded down); they
    differ by the rounding of the processors' resized uint8 frames only. The original TSP rule differs more, and
    by a pixel's shift where the crop margin is odd (640x360 -> 519x292 -> 256)."""
    rng = np.random.default_rng(0)
    recipe = default_recipe(name)
    assert recipe.hf_processor and recipe.preprocessing.hf_processor and not default_recipe("swin3d_t").hf_processor
    if name == "vjepa2_vitl":
        processor = transformers.VJEPA2VideoProcessor(crop_size=recipe.crop[0])
    else:
        processor = transformers.VideoMAEImageProcessor(size={"shortest_edge": recipe.resize[0]},
                                                        crop_size={"height": recipe.crop[0], "width": recipe.crop[1]},
                                                        image_mean=list(recipe.mean), image_std=list(recipe.std))
    for height, width in ((recipe.resize[0], 400), (360, 640)):
        frames = smooth_frames(rng, 2, height, width)
        if name == "vjepa2_vitl":
            theirs = processor(frames.permute(0, 3, 1, 2), return_tensors="pt")["pixel_values_videos"][0]
        else:
            theirs = processor(list(frames.numpy()), return_tensors="pt")["pixel_values"][0]
        ours = preprocess_frames(frames, recipe.preprocessing)
        assert ours.shape == theirs.shape == (2, 3, *recipe.crop)
        difference = (ours - theirs).abs()
        if height == recipe.resize[0]:  # no resize: the same values
            assert float(difference.max()) < 1e-5
        else:  # half a grey level of 255 over the std, at most, plus float rounding
            assert float(difference.max()) < 0.6 / 255 / min(recipe.std) * 4 and float(difference.mean()) < 0.01
            original = preprocess_frames(frames, dataclasses.replace(recipe.preprocessing, hf_processor=False))
            assert float((original - theirs).abs().mean()) > 2 * float(difference.mean())


# ----------------------------------------------------------------------------------------------------
# Weights: registered hub checkpoints, local folders, offline, the extra missing
# ----------------------------------------------------------------------------------------------------


def test_offline_hub_weights_say_what_to_download_and_where(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("TSPVIDEO_CACHE", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(TspVideoError) as info:
        resolve_weights("videomae_b_ft-kinetics400")
    message = str(info.value)
    assert "\n" not in message
    assert "https://huggingface.co/MCG-NJU/videomae-base-finetuned-kinetics/tree/488eb9a0" in message
    assert str(tmp_path / "hf" / "MCG-NJU--videomae-base-finetuned-kinetics") in message
    # Put there by hand, the folder is used: a registered name then loads offline.
    monkeypatch.setitem(WEIGHTS, "videomae_tiny-test", WeightsInfo(
        "videomae_tiny-test", hub_url("someone/videomae-tiny", "main"), "videomae_tiny", ("action",), 3, None, None))
    save_folder("videomae_tiny", own_folder("someone/videomae-tiny", tmp_path))
    path, known = resolve_weights("videomae_tiny-test")
    assert path == own_folder("someone/videomae-tiny", tmp_path) and known.name == "videomae_tiny-test"
    encoder = load_encoder("videomae_tiny-test")
    assert encoder.weights == "videomae_tiny-test" and encoder.sha256 and encoder.model.fc.out_features == 3


def test_a_folder_of_another_architecture_is_refused(tmp_path):
    spec = HF_BACKBONES["videomae_tiny"]
    transformers.VideoMAEModel(hf_config(spec, hidden_size=48, intermediate_size=96)).save_pretrained(tmp_path)
    with pytest.raises(TspVideoError, match="no registered backbone has this videomae architecture"):
        read_checkpoint(tmp_path)


def test_without_the_extra_a_vit_is_a_one_line_message(data, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers now fails
    argv = ["train", "--train-csv", str(data["train"]), "--video-dir", str(data["videos"]), "--label-map",
            str(data["label_map"]), "--out", str(tmp_path / "run"), "--backbone", "videomae_tiny", "--no-gvf",
            "--weights", "none", "--workers", "0", "--device", "cpu", "--no-progress"]
    assert cli_main(argv) in (1, 2)
    err = capsys.readouterr().err
    assert EXTRA_MESSAGE in err and err.strip().count("\n") == 0 and "Traceback" not in err
    assert cli_main(["extract", str(data["videos"]), "--random-init", "vjepa2_tiny", "--out",
                     str(tmp_path / "f")]) in (1, 2)
    assert EXTRA_MESSAGE in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------
# Fine-tuning: layer decay, blocks trained, drop path, gradient checkpointing
# ----------------------------------------------------------------------------------------------------


def test_layer_decay_and_train_blocks_make_one_group_per_depth():
    model = create_model("videomae_tiny", 3, heads=("action", "region"), gvf=None)
    groups = parameter_groups(model, 1e-3, 1e-2, freeze_stem=False, layer_decay=0.5)
    assert [g["lr"] for g in groups] == pytest.approx([1e-3, 1e-2, 5e-4, 2.5e-4, 1.25e-4])
    assert groups[1]["name"] == "heads" and len(groups[1]["params"]) == 4
    named = {id(p): n for n, p in model.named_parameters()}
    assert all("embeddings" in named[id(p)] for p in groups[-1]["params"])
    assert all(".layer.1." in named[id(p)] for p in groups[2]["params"])
    assert {named[id(p)] for p in groups[0]["params"]} == {"features.fc_norm.weight", "features.fc_norm.bias"}
    # the last block only: the first block and the embeddings are frozen
    model = create_model("vjepa2_tiny", 3, heads=("action",), gvf=None)
    groups = parameter_groups(model, 1e-3, 1e-2, freeze_stem=False, layer_decay=0.5, train_blocks=1)
    assert len(groups) == 3
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(".layer.0." in n or "embeddings" in n for n in frozen)
    assert all(p.requires_grad for n, p in model.named_parameters() if ".layer.1." in n or "layernorm" in n)
    with pytest.raises(TspVideoError, match="--train-blocks must be between 0 and 2"):
        parameter_groups(model, 1e-3, 1e-2, False, train_blocks=3)


@pytest.mark.parametrize("name", TINY)
def test_drop_path_and_checkpointing_keep_outputs_and_gradients(name):
    torch.manual_seed(0)
    encoder = build_encoder(HF_BACKBONES[name])
    clips = torch.randn(2, 3, 4, 32, 32)
    encoder.eval()
    reference = encoder(clips).detach()
    assert set_drop_path(encoder, 0.3) == [0.0, 0.3]
    assert torch.allclose(encoder(clips), reference, atol=1e-6)  # evaluation: no drop
    encoder.train()
    torch.manual_seed(4)
    dropped = [encoder(clips) for _ in range(8)]
    assert any(not torch.allclose(d, reference, atol=1e-6) for d in dropped)  # training: some branches dropped
    set_drop_path(encoder, 0.0)
    plain = encoder(clips)
    plain.sum().backward()
    grads = {n: p.grad.clone() for n, p in encoder.named_parameters()}
    encoder.zero_grad()
    assert enable_gradient_checkpointing(encoder, name) == 2
    checkpointed = encoder(clips)
    checkpointed.sum().backward()
    assert torch.allclose(checkpointed, plain, atol=1e-6)
    assert all(torch.allclose(p.grad, grads[n], atol=1e-5) for n, p in encoder.named_parameters())


# ----------------------------------------------------------------------------------------------------
# End to end through `tspvideo train` and `tspvideo extract`
# ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vit_data(tmp_path_factory):
    """Real encoded synthetic videos and a two-segment table: one step of two clips per epoch."""
    root = tmp_path_factory.mktemp("vit-data")
    paths = prepare_synthetic_dataset(root, num_videos=3, num_classes=2, min_duration=5.0, max_duration=6.0,
                                      progress=False)
    with open(paths["train"], newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    picked = [next(r for r in rows if r["temporal-region-label"] == "Action"),
              next(r for r in rows if r["temporal-region-label"] != "Action")]
    paths["two"] = root / "two.csv"
    with open(paths["two"], "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(picked)
    paths["video"] = paths["videos"] / picked[0]["filename"]
    return paths


def vit_train_argv(paths, backbone: str, out, *extra: str) -> list[str]:
    return ["train", "--train-csv", str(paths["two"]), "--video-dir", str(paths["videos"]), "--label-map",
            str(paths["label_map"]), "--out", str(out), "--backbone", backbone, "--clips-per-segment", "1",
            "--no-balance", "--batch-size", "2", "--workers", "0", "--device", "cpu", "--lr-warmup-epochs", "0",
            "--no-progress", "--seed", "3", *extra]


def test_tsp_trains_resumes_loads_back_and_extracts(vit_data, tmp_path, capsys):
    """videomae_tiny from a local checkpoint folder: TSP with a GVF, interrupted after one epoch and resumed."""
    folder = tmp_path / "snapshot"
    save_folder("videomae_tiny", folder)
    gvf = tmp_path / "gvf.h5"
    rng = np.random.default_rng(0)
    with h5py.File(gvf, "w") as h5:
        for video in sorted(vit_data["videos"].glob("*.mp4")):
            h5.create_dataset(video.stem, data=rng.standard_normal(32).astype(np.float32))
    out = tmp_path / "run"
    argv = vit_train_argv(vit_data, "videomae_tiny", out, "--weights", str(folder), "--gvf", str(gvf))
    assert cli_main([*argv, "--epochs", "1"]) == 0, capsys.readouterr().err
    log = (out / "train.log").read_text(encoding="utf-8")
    assert "optimizer=adamw" in log and "layer_decay=0.75" in log and "drop path rising to 0.1 over 2 blocks" in log
    first = read_checkpoint(out / "checkpoint.pth")
    initial = read_checkpoint(folder)["model"]
    key = "features.videomae.encoder.layer.0.attention.attention.query.weight"
    assert not torch.equal(first["model"][key], initial[key])  # trained from the folder's weights...
    assert torch.allclose(first["model"][key], initial[key], atol=1e-2)  # ... by one small step
    stem = "features.videomae.embeddings.patch_embeddings.projection.weight"
    assert torch.equal(first["model"][stem], initial[stem])  # frozen stem
    assert cli_main([*argv, "--epochs", "2", "--resume"]) == 0, capsys.readouterr().err
    second = read_checkpoint(out / "checkpoint.pth")
    assert second["epoch"] == 1 and not torch.equal(first["model"][key], second["model"][key])
    assert [int(r["epoch"]) for r in csv.DictReader(open(out / "metrics.csv", encoding="utf-8"))] == [1, 2]

    encoder = load_encoder(out / "best.pth")
    assert encoder.model.config.backbone == "videomae_tiny" and encoder.model.config.heads == ("action", "region")
    recipe = default_recipe("videomae_tiny")
    assert encoder.description()["recipe"] == {**recipe.to_dict(), "resize": [40], "crop": [32, 32]}

    # Extraction from a real encoded video: default stride (one clip length) and a dense stride of 1 frame.
    for stride, folder_name in ((None, "features"), ("1", "dense")):
        features_dir = tmp_path / folder_name
        extra = ["--stride", stride] if stride else []
        code = cli_main(["extract", str(vit_data["video"]), "--checkpoint", str(out / "best.pth"), "--out",
                         str(features_dir), "--batch-size", "4", "--workers", "0", "--device", "cpu", "--no-progress",
                         *extra])
        assert code == 0, capsys.readouterr().err
        features = np.load(features_dir / f"{vit_data['video'].stem}.npy")
        sidecar = json.loads((features_dir / f"{vit_data['video'].stem}.json").read_text())
        assert features.shape[1] == 32 and np.isfinite(features).all()
        assert sidecar["backbone"] == "videomae_tiny" and sidecar["recipe"]["mean"] == list(recipe.mean)
        assert sidecar["clip_len"] == 4 and sidecar["fps"] == 15.0 and sidecar["stride"] == int(stride or 4)
    dense = np.load(tmp_path / "dense" / f"{vit_data['video'].stem}.npy")
    sparse = np.load(tmp_path / "features" / f"{vit_data['video'].stem}.npy")
    assert len(dense) > 3 * len(sparse)
    assert np.allclose(dense[::4][:len(sparse)], sparse, atol=1e-4)  # every 4th dense clip is a stride-4 clip
    # exported to a localizer's layout as any other feature
    assert cli_main(["export", str(tmp_path / "dense"), "--format", "gtad", "--out", str(tmp_path / "gtad"),
                     "--temporal-size", "8"]) == 0
    with h5py.File(tmp_path / "gtad" / "gtad_features_8.hdf5", "r") as h5:
        assert [h5[key].shape for key in h5] == [(8, 32)]


def test_tac_with_vjepa2_checkpointing_and_the_last_block_only(vit_data, tmp_path, capsys):
    out = tmp_path / "tac"
    argv = vit_train_argv(vit_data, "vjepa2_tiny", out, "--heads", "action", "--weights", "none", "--epochs", "1",
                          "--grad-checkpointing", "--train-blocks", "1", "--layer-decay", "0.5", "--amp", "bf16")
    assert cli_main(argv) == 0, capsys.readouterr().err
    state = read_checkpoint(out / "checkpoint.pth")["model"]
    encoder = load_encoder(out / "best.pth")
    assert encoder.model.config.heads == ("action",) and encoder.model.fc.in_features == 32
    log = (out / "train.log").read_text(encoding="utf-8")
    assert "layer_decay=0.5*" in log and "gradient checkpointing over 2 blocks" in log
    # the frozen first block kept its seeded initial values: rebuilt with the same seed, equal
    torch.manual_seed(3)
    fresh = create_model("vjepa2_tiny", 2, heads=("action",), gvf=None).state_dict()
    first = "features.encoder.layer.0.mlp.fc1.weight"
    last = "features.encoder.layer.1.mlp.fc1.weight"
    assert torch.equal(state[first], fresh[first]) and not torch.equal(state[last], fresh[last])


def test_vit_options_are_refused_for_other_backbones(vit_data, tmp_path, capsys):
    argv = vit_train_argv(vit_data, "c3d_tiny", tmp_path / "run", "--no-gvf", "--weights", "none", "--layer-decay",
                          "0.7")
    assert cli_main(argv) == 2
    assert "--layer-decay apply to the ViT backbones" in capsys.readouterr().err
    assert VIT_VALUES["optimizer"] == "adamw"
