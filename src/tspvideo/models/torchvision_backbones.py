"""torchvision's newer Kinetics video backbones: S3D, MViT-v2-S and Video Swin (T, S, B).

Each is torchvision's own model with its classifier replaced by ``nn.Identity``, so the forward pass
returns the pooled clip feature and the parameter names stay torchvision's (the Kinetics weight files
load under ``features.`` unchanged; their classifier becomes the ``fc`` head). torchvision is imported
when one of them is built, not before: its import costs about as much as torch's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn
from torch.nn import functional


class ClippedAvgPool3d(nn.Module):
    """Average pooling whose window is clipped to the feature map (stride 1, no padding).

    S3D ends with a fixed 2x7x7 average window, so clips shorter than 13 frames or crops under 224x224
    cannot pass. Where the map is at least the window this is that same pooling, bit for bit; where it is
    smaller in a dimension, the window covers the whole of that dimension (a global average there).
    """

    def __init__(self, kernel_size: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel_size = tuple(kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        window = tuple(min(k, size) for k, size in zip(self.kernel_size, x.shape[-3:], strict=True))
        return functional.avg_pool3d(x, window, stride=1)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, clipped to the input"


def _torchvision_video(name: str) -> Callable[..., nn.Module]:
    """The model builder ``torchvision.models.video.<name>``."""
    import torchvision.models.video as tv_video

    return getattr(tv_video, name)


def _s3d(weights: None = None) -> nn.Module:
    """torchvision's S3D with its final 2x7x7 pooling clipped to smaller feature maps (no parameters change)."""
    model = _torchvision_video("s3d")(weights=weights)
    model.avgpool = ClippedAvgPool3d(model.avgpool.kernel_size)
    return model


def _mvit_blocks(model: nn.Module) -> list[nn.Module]:
    return list(model.blocks)


def _swin_blocks(model: nn.Module) -> list[nn.Module]:
    # model.features alternates stages (Sequential of SwinTransformerBlock3d) and PatchMerging layers.
    return [block for stage in model.features if isinstance(stage, nn.Sequential) for block in stage]


@dataclass(frozen=True)
class TorchvisionSpec:
    """How to build one torchvision video model as a feature extractor."""

    name: str
    builder: str | Callable[..., nn.Module]  # the name of torchvision.models.video.<name>, or a function
    head: str  # attribute holding the Kinetics classifier
    feature_dim: int
    stem_prefixes: tuple[str, ...]  # parameters of the stem (frozen by --freeze-stem), under features.
    blocks: Callable[[nn.Module], list[nn.Module]] | None = None  # units of gradient checkpointing
    input_note: str = ""  # what inputs the architecture takes, for error messages

    def build(self) -> nn.Module:
        """A randomly initialised model whose forward maps ``[B, 3, T, H, W]`` to ``[B, feature_dim]``."""
        builder = _torchvision_video(self.builder) if isinstance(self.builder, str) else self.builder
        model = builder(weights=None)
        setattr(model, self.head, nn.Identity())
        return model


TORCHVISION_BACKBONES: dict[str, TorchvisionSpec] = {spec.name: spec for spec in [
    # S3D's final 2x7x7 window is clipped to smaller maps, so short clips and small crops pass too.
    TorchvisionSpec("s3d", _s3d, "classifier", 1024, ("features.0.",),
                    input_note="S3D takes clips of at least 5 frames and crops of at least 17x17"),
    # MViT-v2's relative positions are sized for 16x224x224: no other input size works.
    TorchvisionSpec("mvit_v2_s", "mvit_v2_s", "head", 768, ("conv_proj.", "pos_encoding."), _mvit_blocks,
                    input_note="MViT-v2-S takes exactly 16 frames of 224x224 (its positional sizes are fixed)"),
    TorchvisionSpec("swin3d_t", "swin3d_t", "head", 768, ("patch_embed.",), _swin_blocks),
    TorchvisionSpec("swin3d_s", "swin3d_s", "head", 768, ("patch_embed.",), _swin_blocks),
    TorchvisionSpec("swin3d_b", "swin3d_b", "head", 1024, ("patch_embed.",), _swin_blocks),
]}
