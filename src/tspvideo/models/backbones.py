"""Video backbones, by name: each returns a 512-d clip feature (torchvision's VideoResNet, no fc).

Names follow the released checkpoints: ``r2plus1d_34``, ``r2plus1d_18``, ``r3d_18``. Parameter names
are torchvision's, which is what the released TSP checkpoints store under ``features.``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn
from torchvision.models.video.resnet import (
    BasicBlock,
    BasicStem,
    Conv2Plus1D,
    Conv3DSimple,
    R2Plus1dStem,
    VideoResNet,
)

from tspvideo.errors import TspVideoError


def _midplanes(in_planes: int, out_planes: int) -> int:
    """Mid-planes that give a (2+1)D convolution the parameter count of the 3x3x3 one it replaces."""
    return (in_planes * out_planes * 3 * 3 * 3) // (in_planes * 3 * 3 + 3 * out_planes)


class PerConvMidplanesBlock(BasicBlock):
    """BasicBlock whose second convolution computes its own mid-planes from (planes, planes).

    torchvision's BasicBlock reuses the first convolution's mid-planes for the second one; the
    IG65M R(2+1)D-34 (and so the released TSP R(2+1)D-34 checkpoints) computes them per convolution,
    which differs in the first block of layers 2-4 (e.g. 288 instead of 230 mid-planes in layer2).
    """

    def __init__(self, inplanes: int, planes: int, conv_builder: Callable[..., nn.Module], stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__(inplanes, planes, conv_builder, stride, downsample)
        self.conv2 = nn.Sequential(conv_builder(planes, planes, _midplanes(planes, planes)),
                                   nn.BatchNorm3d(planes))


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone: block layout, convolution type, stem and output feature size."""

    name: str
    layers: tuple[int, int, int, int]
    conv_maker: type
    stem: Callable[[], nn.Module]
    block: type = BasicBlock
    feature_dim: int = 512
    # The IG65M-pretrained R(2+1)D-34 was trained with these BatchNorm settings (the original keeps them).
    batchnorm_eps: float | None = None
    batchnorm_momentum: float | None = None


BACKBONES: dict[str, BackboneSpec] = {
    "r2plus1d_34": BackboneSpec("r2plus1d_34", (3, 4, 6, 3), Conv2Plus1D, R2Plus1dStem,
                                block=PerConvMidplanesBlock, batchnorm_eps=1e-3, batchnorm_momentum=0.9),
    "r2plus1d_18": BackboneSpec("r2plus1d_18", (2, 2, 2, 2), Conv2Plus1D, R2Plus1dStem),
    "r3d_18": BackboneSpec("r3d_18", (2, 2, 2, 2), Conv3DSimple, BasicStem),
}


def available_backbones() -> list[str]:
    """Names accepted by :func:`create_backbone`."""
    return sorted(BACKBONES)


def backbone_spec(name: str) -> BackboneSpec:
    """The spec of a backbone; unknown names get an error suggesting close matches."""
    if name not in BACKBONES:
        close = difflib.get_close_matches(name, BACKBONES, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise TspVideoError(f"unknown backbone {name!r} (available: {', '.join(available_backbones())}){hint}")
    return BACKBONES[name]


def create_backbone(name: str) -> VideoResNet:
    """A randomly initialised backbone whose forward maps ``[B, 3, T, H, W]`` to ``[B, 512]``."""
    spec = backbone_spec(name)
    model = VideoResNet(block=spec.block, conv_makers=[spec.conv_maker] * 4, layers=list(spec.layers),
                        stem=spec.stem)
    model.fc = nn.Identity()  # the feature is the pooled 512-d vector; heads live in TSPModel
    if spec.batchnorm_eps is not None:
        for module in model.modules():
            if isinstance(module, nn.BatchNorm3d):
                module.eps = spec.batchnorm_eps
                module.momentum = spec.batchnorm_momentum
    return model
