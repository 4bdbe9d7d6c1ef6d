"""ViT video encoders from ``transformers`` (VideoMAE, V-JEPA 2), by name: architectures and their clip feature.

Importing this module does not import ``transformers`` (an optional extra, ``pip install "tspvideo[transformers]"``);
building a model does, in :mod:`tspvideo.models.hf_video`.

Each name fixes the architecture and the clip feature (``pooling``):

- ``tokens``: the mean of the last layer's tokens after the encoder's final layer norm. VideoMAE's
  self-supervised checkpoints (``use_mean_pooling: false``, a final ``layernorm``) and V-JEPA 2's encoder.
- ``fc_norm``: VideoMAE's fine-tuned checkpoints: the mean of the last layer's tokens, then ``fc_norm``,
  which is what their Kinetics classifier reads (``VideoMAEForVideoClassification``).

``videomae_tiny`` and ``vjepa2_tiny`` are 2-layer, 32-wide versions for tests and CPU experiments (no weights).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is not needed to list the registry (the command line reads it)
    from torch import nn

VIDEOMAE, VJEPA2 = "videomae", "vjepa2"
EXTRA_MESSAGE = 'the VideoMAE and V-JEPA 2 backbones need the transformers extra: pip install "tspvideo[transformers]"'


@dataclass(frozen=True)
class HFSpec:
    """One ViT video encoder: its ``transformers`` config values, clip feature and the fields the registry reads."""

    name: str
    family: str  # "videomae" or "vjepa2"
    arch: Mapping[str, object]  # config.json values that define the architecture
    pooling: str  # "tokens" or "fc_norm" (see the module's doc)
    # The input its checkpoints were trained on (tspvideo.models.weights.InputRecipe's fields but the backbone):
    # clip_len, fps, resize, crop, mean, std, hf_processor.
    recipe: Mapping[str, object] = field(default_factory=dict)
    stem_prefixes: tuple[str, ...] = field(default=())
    input_note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "arch", MappingProxyType(dict(self.arch)))
        object.__setattr__(self, "recipe", MappingProxyType(dict(self.recipe)))
        if not self.stem_prefixes:
            stem = "videomae.embeddings." if self.family == VIDEOMAE else "encoder.embeddings."
            object.__setattr__(self, "stem_prefixes", (stem,))

    @property
    def feature_dim(self) -> int:
        """Size of the clip feature (the hidden size)."""
        return int(self.arch["hidden_size"])

    @property
    def num_layers(self) -> int:
        """Number of transformer blocks."""
        return int(self.arch["num_hidden_layers"])

    @property
    def blocks(self):
        """The function listing the transformer blocks (units of gradient checkpointing, drop path, training)."""
        return transformer_blocks

    def build(self) -> nn.Module:
        """A randomly initialised encoder whose forward maps ``[B, 3, T, H, W]`` to ``[B, feature_dim]``."""
        from tspvideo.models.hf_video import build_encoder  # imports transformers

        return build_encoder(self)

    def layer_id(self, name: str) -> int:
        """Depth of a backbone parameter for layer-wise learning-rate decay: 0 for the embeddings, ``i + 1`` for
        block ``i``, ``num_layers + 1`` for the final norms."""
        parts = name.split(".")
        if "layer" in parts:
            return int(parts[parts.index("layer") + 1]) + 1
        if "embeddings" in parts:
            return 0
        return self.num_layers + 1


def transformer_blocks(model: nn.Module) -> list[nn.Module]:
    """The blocks of a :class:`~tspvideo.models.hf_video.HFVideoEncoder`, first to last."""
    return list(model.blocks())


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _recipe(clip_len: int, fps: float, short_side: int, crop: int) -> dict[str, object]:
    # hf_processor: resized and cropped as the checkpoints' processors do (antialiased, crop corner rounded down)
    return {"clip_len": clip_len, "fps": fps, "resize": (short_side,), "crop": (crop, crop), "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD, "hf_processor": True}


# VideoMAE's Kinetics-400 checkpoints (preprocessor_config.json): short side 224, centre crop 224, ImageNet
# mean/std; 16 frames taken every 4th frame of the ~30 fps Kinetics videos in training, so 7.5 fps.
VIDEOMAE_RECIPE = _recipe(16, 7.5, 224, 224)
# V-JEPA 2 (VJEPA2VideoProcessor for crop 256: short side int(256 * 256 / 224) = 292, centre crop 256, ImageNet
# mean/std); 64 frames per clip for the fpc64 checkpoint, sampled at 4 fps as in its pretraining.
VJEPA2_RECIPE = _recipe(64, 4.0, 292, 256)
TINY_RECIPE = _recipe(4, 15.0, 40, 32)


def _videomae(name: str, hidden: int, layers: int, heads: int, pooling: str, frames: int = 16, image: int = 224,
              patch: int = 16) -> HFSpec:
    arch = {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
            "intermediate_size": 4 * hidden, "num_frames": frames, "image_size": image, "patch_size": patch,
            "tubelet_size": 2, "use_mean_pooling": pooling == "fc_norm"}
    recipe = VIDEOMAE_RECIPE if frames == 16 else TINY_RECIPE
    return HFSpec(name, VIDEOMAE, arch, pooling, recipe,
                  input_note=f"VideoMAE takes exactly {frames} frames of {image}x{image} (fixed position embeddings)")


def _vjepa2(name: str, hidden: int, layers: int, heads: int, frames: int, crop: int, patch: int = 16,
            mlp_ratio: float = 4.0, predictor: tuple[int, int, int] = (384, 12, 12)) -> HFSpec:
    # The predictor (pretraining only) is not part of the encoder; its sizes only keep config.json's values.
    arch = {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads, "mlp_ratio": mlp_ratio,
            "frames_per_clip": frames, "crop_size": crop, "patch_size": patch, "tubelet_size": 2,
            "pred_hidden_size": predictor[0], "pred_num_hidden_layers": predictor[1],
            "pred_num_attention_heads": predictor[2]}
    recipe = VJEPA2_RECIPE if frames == 64 else TINY_RECIPE
    return HFSpec(name, VJEPA2, arch, "tokens", recipe,
                  input_note=f"V-JEPA 2 takes frames in multiples of 2 and crops in multiples of {patch}")


HF_BACKBONES: dict[str, HFSpec] = {spec.name: spec for spec in [
    _videomae("videomae_b", 768, 12, 12, "tokens"),  # MCG-NJU/videomae-base (self-supervised)
    _videomae("videomae_b_ft", 768, 12, 12, "fc_norm"),  # MCG-NJU/videomae-base-finetuned-kinetics
    _videomae("videomae_l", 1024, 24, 16, "tokens"),  # MCG-NJU/videomae-large
    _videomae("videomae_l_ft", 1024, 24, 16, "fc_norm"),  # MCG-NJU/videomae-large-finetuned-kinetics
    _vjepa2("vjepa2_vitl", 1024, 24, 16, 64, 256),  # facebook/vjepa2-vitl-fpc64-256
    # Tiny versions (tests, CPU experiments): 2 blocks, 32 wide, 8x8 patches.
    _videomae("videomae_tiny", 32, 2, 2, "fc_norm", frames=4, image=32, patch=8),
    _vjepa2("vjepa2_tiny", 32, 2, 2, 4, 32, patch=8, mlp_ratio=2.0, predictor=(32, 1, 2)),
]}


def is_vit(backbone: str | None) -> bool:
    """Whether ``backbone`` is one of the ViT encoders from ``transformers``."""
    return backbone in HF_BACKBONES


def vit_names() -> list[str]:
    """The registered ViT encoders."""
    return sorted(HF_BACKBONES)
