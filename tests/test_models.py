"""Models: released state_dict layout, checkpoint loading, registry and errors."""

from __future__ import annotations

import json
import urllib.request

import pytest
import torch

from tspvideo.core.errors import TspVideoError
from tspvideo.models.backbones import backbone_spec, create_backbone
from tspvideo.models.encoder import load_encoder
from tspvideo.models.tsp import ModelConfig, TSPModel, create_model, infer_config
from tspvideo.models.weights import WEIGHTS, read_checkpoint, resolve_weights, weights_info

VARIANTS = {  # layout key -> (heads, gvf)
    "tsp_gvf": (("action", "region"), "max"),
    "tsp_no_gvf": (("action", "region"), None),
    "tac": (("action",), None),
}


def test_state_dicts_match_the_released_layout(reference_data_dir):
    layout = json.loads((reference_data_dir / "released_checkpoint_state_dict_layout.json").read_text())
    for key, shapes in layout.items():
        backbone, variant = key.split("/")
        heads, gvf = VARIANTS[variant]
        model = create_model(backbone, 200, heads=heads, gvf=gvf)
        ours = {name: list(t.shape) for name, t in model.state_dict().items()}
        assert ours == shapes, key


def test_r2plus1d_34_midplanes_are_per_convolution():
    model = create_backbone("r2plus1d_34")
    # First block of layer2: conv1 maps 64 -> 128 (230 mid-planes), conv2 maps 128 -> 128 (288).
    assert model.layer2[0].conv1[0][0].out_channels == 230
    assert model.layer2[0].conv2[0][0].out_channels == 288
    bn = model.layer1[0].conv1[1]
    assert bn.eps == 1e-3 and bn.momentum == 0.9


def test_forward_shapes_and_gvf_concatenation():
    model = create_model("r3d_18", 5, gvf="max").eval()
    clips = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        out = model(clips, gvf=torch.randn(2, 512))
    assert out["features"].shape == (2, 512)
    assert out["action"].shape == (2, 5) and out["region"].shape == (2, 2)
    with pytest.raises(TspVideoError, match="gvf"):
        model(clips)
    tac = create_model("r3d_18", 7, heads=("action",), gvf=None)
    assert set(tac.state_dict()) - set(tac.features.state_dict(prefix="features.")) == {"fc.weight", "fc.bias"}


@pytest.mark.parametrize("heads, gvf, layers", [
    (("action", "region"), "max", {"fc1": (200, 512), "fc2": (2, 1024)}),
    (("action",), None, {"fc": (200, 512)}),
    (("region",), None, {"fc": (2, 512)}),  # region-only: the original's one head ignores the GVF
])
def test_heads_start_as_the_originals_normal_0_001_with_zero_bias(heads, gvf, layers):
    torch.manual_seed(0)
    model = create_model("r3d_18", 200, heads=heads, gvf=gvf)
    for name, shape in layers.items():
        layer = getattr(model, name).requires_grad_(False)
        assert tuple(layer.weight.shape) == shape
        # PyTorch's default would be uniform with std 1/sqrt(3 * fan_in) ~ 0.026 and a non-zero bias
        assert abs(float(layer.weight.std()) - 0.01) < 0.01 * (0.05 if shape[0] > 2 else 0.2), name
        assert abs(float(layer.weight.mean())) < 0.002 and torch.all(layer.bias == 0), name


@pytest.mark.parametrize("backbone", ["r2plus1d_18", "r3d_18"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_infer_config_recovers_architecture(backbone, variant):
    heads, gvf = VARIANTS[variant]
    model = create_model(backbone, 20, heads=heads, gvf=gvf)
    config = infer_config(model.state_dict())
    assert (config.backbone, config.num_classes, config.heads, config.gvf) == (backbone, 20, heads, gvf)


def test_released_format_file_loads_and_gives_same_features(tmp_path):
    torch.manual_seed(0)
    model = create_model("r3d_18", 20, gvf="max").eval()
    # Released files are dicts with the state_dict under "model"; some also carry the training args.
    import argparse
    path = tmp_path / "r3d_18-tsp_on_custom.pth"
    torch.save({"model": model.state_dict(), "args": argparse.Namespace(lr=0.1)}, path)
    encoder = load_encoder(path)
    loaded = encoder.model
    description = encoder.description()
    clips = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.features(clips), model.features(clips))
    assert tuple(description["model_config"]["heads"]) == ("action", "region")


def test_torchvision_style_backbone_file_maps_to_released_layout(tmp_path):
    backbone = create_backbone("r2plus1d_18")
    state = {f"{k}": v for k, v in backbone.state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.zeros(400, 512), torch.zeros(400)
    path = tmp_path / "kinetics.pth"
    torch.save(state, path)
    encoder = load_encoder(path)
    model = encoder.model
    assert model.config.backbone == "r2plus1d_18" and model.config.heads == ("action",)
    assert model.config.num_classes == 400


class Custom:  # an arbitrary object: loading it would need code execution
    pass


def test_unsafe_checkpoint_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "extra": Custom()}, path)
    with pytest.raises(TspVideoError, match="cannot read checkpoint"):
        read_checkpoint(path)


def test_registry_and_offline_error(tmp_path, monkeypatch):
    assert len([w for w in WEIGHTS.values() if "tsp_on" in w.name or "tac_on" in w.name]) == 13
    assert weights_info("r2plus1d_34-tsp_on_activitynet").hash_prefix == "0d2cf854"
    with pytest.raises(TspVideoError, match="did you mean"):
        weights_info("r2plus1d_34-tsp_on_activitynett")
    monkeypatch.setenv("TSPVIDEO_CACHE", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(TspVideoError) as info:
        resolve_weights("r3d_18-tsp_on_activitynet")
    message = str(info.value)
    assert "r3d_18-tsp_on_activitynet-max_gvf" in message and str(tmp_path) in message
    assert not list(tmp_path.iterdir())  # nothing partial left in the cache


def test_cached_file_is_used_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv("TSPVIDEO_CACHE", str(tmp_path))
    info = weights_info("r3d_18-tac_on_kinetics")
    torch.save({"model": create_model("r3d_18", 400, heads=("action",), gvf=None).state_dict()},
               tmp_path / info.filename)
    encoder = load_encoder("r3d_18-tac_on_kinetics")
    model = encoder.model
    description = encoder.description()
    assert description["weights"] == "r3d_18-tac_on_kinetics" and description["label_map"] == "kinetics400"
    assert isinstance(model, TSPModel)


def test_unknown_backbone_suggests_close_names():
    with pytest.raises(TspVideoError, match="r2plus1d_18"):
        backbone_spec("r2plus1d18")
    with pytest.raises(TspVideoError):
        ModelConfig("r3d_18", 0, ("action",), None)


def test_tiny_experiment_encoder_maps_clips_to_128_d_and_sees_motion():
    torch.manual_seed(0)
    model = create_backbone("c3d_tiny").eval()
    clips = torch.randn(2, 3, 8, 32, 32)
    assert model(clips).shape == (2, 128)
    # The second input half is the clip minus its mean frame: it is zero for a static clip, so the
    # network can tell a moving clip from a frozen one with the same mean frame.
    static = clips.mean(dim=2, keepdim=True).expand_as(clips)
    assert not torch.allclose(model(clips), model(static))


@pytest.mark.parametrize("content", [b"junk\n", bytes(range(256)) * 4, b"PK\x03\x04" + b"\x00" * 60,
                                     b"\x80\x02}q\x00."])
def test_a_damaged_or_foreign_checkpoint_is_one_error(tmp_path, content):
    from tspvideo.models.weights import read_checkpoint

    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(TspVideoError, match=f"cannot read checkpoint {path}") as caught:
        read_checkpoint(path)
    assert len(str(caught.value).splitlines()) == 1
