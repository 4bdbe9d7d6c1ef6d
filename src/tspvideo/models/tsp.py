"""The TSP model: a backbone plus an action head and a temporal-region head that also sees the GVF.

Parameter names match the released checkpoints: ``features.*`` (backbone), ``fc1`` (action head) and
``fc2`` (region head) when there are two heads, ``fc`` when there is one (TAC, or region only).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from tspvideo.core.choices import GVF_POOLS, HEAD_CHOICES
from tspvideo.core.errors import TspVideoError
from tspvideo.models.backbones import backbone_spec, build_on_meta, create_backbone
from tspvideo.models.torchvision_backbones import TORCHVISION_BACKBONES

GVF_CHOICES = GVF_POOLS


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model's architecture (saved in our checkpoints)."""

    backbone: str
    num_classes: int = 0  # action classes; 0 when there is no action head
    heads: tuple[str, ...] = ("action", "region")
    gvf: str | None = "max"  # how the GVF was pooled, or None when the region head does not use one
    num_regions: int = 2

    def __post_init__(self) -> None:
        backbone_spec(self.backbone)
        if not self.heads or any(h not in HEAD_CHOICES for h in self.heads) or len(set(self.heads)) != len(
                self.heads):
            raise TspVideoError(f"heads must be a non-empty subset of {HEAD_CHOICES}, got {self.heads}")
        if "action" in self.heads and self.num_classes <= 0:
            raise TspVideoError("an action head needs num_classes > 0")
        if self.gvf is not None and self.gvf not in GVF_CHOICES:
            raise TspVideoError(f"gvf must be one of {GVF_CHOICES} or None, got {self.gvf!r}")

    @property
    def uses_gvf(self) -> bool:
        """Whether the region head takes ``concat(feature, gvf)``."""
        return "region" in self.heads and self.gvf is not None

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        data["heads"] = tuple(data.get("heads", ("action", "region")))
        return cls(**data)


class TSPModel(nn.Module):
    """Backbone + classification heads.

    ``forward(clips, gvf)`` returns a dict with ``features`` ``[B, 512]`` and the logits of each head
    (``action`` ``[B, C]``, ``region`` ``[B, 2]``).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.features = create_backbone(config.backbone)
        dim = backbone_spec(config.backbone).feature_dim
        self.feature_dim = dim
        region_in = 2 * dim if config.uses_gvf else dim
        layers = {"action": lambda: nn.Linear(dim, config.num_classes),
                  "region": lambda: nn.Linear(region_in, config.num_regions)}
        self.head_names = {}
        if len(config.heads) == 1:
            self.fc = layers[config.heads[0]]()
            self.head_names[config.heads[0]] = "fc"
        else:
            # The original names heads fc1, fc2 in this order: action first, region second.
            for index, head in enumerate(HEAD_CHOICES, start=1):
                if head in config.heads:
                    setattr(self, f"fc{index}", layers[head]())
                    self.head_names[head] = f"fc{index}"
        for attr in self.head_names.values():
            init_head(getattr(self, attr))

    def forward(self, clips: torch.Tensor, gvf: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Clip features and head logits for a batch ``[B, 3, T, H, W]``."""
        features = self.features(clips)
        out = {"features": features}
        for head, attr in self.head_names.items():
            head_input = features
            if head == "region" and self.config.uses_gvf:
                if gvf is None:
                    raise TspVideoError("this model's region head needs the global video feature (gvf)")
                head_input = torch.cat([features, gvf.to(features.dtype)], dim=1)
            out[head] = getattr(self, attr)(head_input)
        return out


def init_head(layer: nn.Linear, std: float = 0.01) -> None:
    """The original's head initialisation: weights ~ N(0, ``std``), bias 0 (not PyTorch's default uniform)."""
    nn.init.normal_(layer.weight, 0.0, std)
    nn.init.zeros_(layer.bias)


def create_model(backbone: str, num_classes: int = 0, heads: tuple[str, ...] = ("action", "region"),
                 gvf: str | None = "max") -> TSPModel:
    """Build a TSP (two heads), TAC (``heads=("action",)``) or region-only model with random weights."""
    return TSPModel(ModelConfig(backbone=backbone, num_classes=num_classes, heads=tuple(heads), gvf=gvf))


def infer_config(state_dict: dict[str, torch.Tensor], gvf: str | None = "max") -> ModelConfig:
    """Recover the architecture from a state_dict in the released layout.

    The backbone follows from the stem (R(2+1)D has a factorised stem) and the number of blocks in
    layer3, or, for torchvision's newer models, from matching every parameter name and shape; the heads
    from ``fc``/``fc1``/``fc2`` and their shapes. A two-head model whose region head takes twice the
    feature size uses a GVF (max-pooled unless ``gvf`` says otherwise: the file cannot tell).
    """
    if not any(key.startswith("features.") for key in state_dict):
        raise TspVideoError("not a TSP state_dict: no 'features.*' keys (expected the released layout)")
    backbone = _torchvision_backbone_of(state_dict)
    factorised_stem = "features.stem.3.weight" in state_dict
    layer3_blocks = {key.split(".")[2] for key in state_dict if key.startswith("features.layer3.")}
    depth = {2: 18, 6: 34}.get(len(layer3_blocks))
    backbone = backbone or f"{'r2plus1d' if factorised_stem else 'r3d'}_{depth}"
    if backbone not in ("r2plus1d_34", "r2plus1d_18", "r3d_18", *TORCHVISION_BACKBONES):
        raise TspVideoError(f"cannot recognise the backbone of this state_dict ({len(layer3_blocks)} blocks in "
                            f"layer3, {'factorised' if factorised_stem else '3D'} stem)")
    if "fc1.weight" in state_dict and "fc2.weight" in state_dict:
        num_classes = state_dict["fc1.weight"].shape[0]
        region_in = state_dict["fc2.weight"].shape[1]
        dim = state_dict["fc1.weight"].shape[1]
        return ModelConfig(backbone, num_classes, ("action", "region"), gvf if region_in == 2 * dim else None)
    if "fc.weight" in state_dict:
        # A single head is the TAC action head in every released file.
        return ModelConfig(backbone, state_dict["fc.weight"].shape[0], ("action",), None)
    raise TspVideoError("state_dict has no heads (fc, or fc1 and fc2); use a backbone-only loader")


def _torchvision_backbone_of(state_dict: dict[str, torch.Tensor]) -> str | None:
    """The S3D / MViT / Swin backbone whose parameter names and shapes are exactly the state_dict's, if any."""
    shapes = {k.removeprefix("features."): tuple(v.shape) for k, v in state_dict.items() if k.startswith("features.")}
    if any(key.startswith(("stem.", "layer1.")) for key in shapes):  # a VideoResNet: no need to build the others
        return None
    for name in TORCHVISION_BACKBONES:
        expected = {k: tuple(v.shape) for k, v in build_on_meta(name).state_dict().items()}
        if expected == shapes:
            return name
    return None
