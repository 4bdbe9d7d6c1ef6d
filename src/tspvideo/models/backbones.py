"""Video backbones, by name: each maps a clip to one feature vector (no classifier).

The paper's: ``r2plus1d_34``, ``r2plus1d_18``, ``r3d_18`` (torchvision's VideoResNet, 512-d features, built
by ``video_resnet`` without importing torchvision), named as the released checkpoints. torchvision's newer
Kinetics models: ``s3d`` (1024-d), ``mvit_v2_s`` (768-d), ``swin3d_t``/``swin3d_s`` (768-d), ``swin3d_b``
(1024-d), see ``torchvision_backbones``. For
experiments on a CPU: ``c3d_tiny`` (128-d, no pretrained weights), see ``small_backbones``.
Parameter names are torchvision's, which is what checkpoints store under ``features.``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from tspvideo.core.choices import BACKBONES as BACKBONE_NAMES
from tspvideo.core.errors import TspVideoError, lookup
from tspvideo.models.hf_registry import HF_BACKBONES, HFSpec
from tspvideo.models.small_backbones import SMALL_BACKBONES, SmallSpec
from tspvideo.models.torchvision_backbones import TORCHVISION_BACKBONES, TorchvisionSpec
from tspvideo.models.video_resnet import BasicBlock, BasicStem, Conv2Plus1D, Conv3DSimple, R2Plus1dStem, VideoResNet


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
    stem_prefixes: tuple[str, ...] = ("stem.",)  # parameters frozen by --freeze-stem, under features.
    blocks: Callable[[nn.Module], list[nn.Module]] | None = None  # no gradient checkpointing for these CNNs
    input_note: str = ""
    # Every convolution is padded and the shortcuts stride as their blocks do: any clip of >= 1 frame of >= 1x1
    # pixels passes (tested), so the input check need not run the network.
    any_input_size: bool = True

    def build(self) -> VideoResNet:
        """A randomly initialised backbone whose forward maps ``[B, 3, T, H, W]`` to ``[B, 512]``."""
        model = VideoResNet(block=self.block, conv_makers=[self.conv_maker] * 4, layers=list(self.layers),
                            stem=self.stem)
        model.fc = nn.Identity()  # the feature is the pooled 512-d vector; heads live in TSPModel
        if self.batchnorm_eps is not None:
            for module in model.modules():
                if isinstance(module, nn.BatchNorm3d):
                    module.eps = self.batchnorm_eps
                    module.momentum = self.batchnorm_momentum
        return model


BACKBONES: dict[str, BackboneSpec | TorchvisionSpec | SmallSpec | HFSpec] = {
    "r2plus1d_34": BackboneSpec("r2plus1d_34", (3, 4, 6, 3), Conv2Plus1D, R2Plus1dStem,
                                block=PerConvMidplanesBlock, batchnorm_eps=1e-3, batchnorm_momentum=0.9),
    "r2plus1d_18": BackboneSpec("r2plus1d_18", (2, 2, 2, 2), Conv2Plus1D, R2Plus1dStem),
    "r3d_18": BackboneSpec("r3d_18", (2, 2, 2, 2), Conv3DSimple, BasicStem),
    **TORCHVISION_BACKBONES,
    **SMALL_BACKBONES,  # for experiments on a CPU; no pretrained weights
    **HF_BACKBONES,  # ViT video encoders from transformers (an optional extra), see hf_registry
}


if set(BACKBONES) != set(BACKBONE_NAMES):  # the command line lists core.choices.BACKBONES without importing this
    raise ImportError(f"core.choices.BACKBONES is out of date: the registry has {sorted(BACKBONES)}")


def available_backbones() -> list[str]:
    """Names accepted by :func:`create_backbone`."""
    return sorted(BACKBONES)


def backbone_spec(name: str) -> BackboneSpec | TorchvisionSpec | SmallSpec | HFSpec:
    """The spec of a backbone; unknown names get an error suggesting close matches."""
    return lookup(BACKBONES, name, "backbone", f"available: {', '.join(available_backbones())}", cutoff=0.5)


def create_backbone(name: str) -> nn.Module:
    """A randomly initialised backbone whose forward maps ``[B, 3, T, H, W]`` to ``[B, feature_dim]``."""
    return backbone_spec(name).build()


def check_input_size(name: str, clip_len: int, crop: tuple[int, int]) -> None:
    """Raise a clear error when the backbone cannot take clips of this length and crop size.

    Runs the architecture once on shapes only (the ``meta`` device: no memory, no compute), so the
    check is exact for every architecture and costs a fraction of a second.
    """
    spec = backbone_spec(name)
    if clip_len >= 1 and min(crop) >= 1 and getattr(spec, "any_input_size", False):
        return  # no run on the meta device: its kernels import torch._dynamo (seconds at every start)
    model = build_on_meta(name)
    try:
        model(torch.empty(1, 3, clip_len, crop[0], crop[1], device="meta"))
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0]
        note = f" ({spec.input_note})" if spec.input_note else ""
        raise TspVideoError(f"{name} cannot take clips of {clip_len} frames of {crop[0]}x{crop[1]}{note}: "
                            f"{first_line}") from error


def build_on_meta(name: str) -> nn.Module:
    """The backbone with shapes only (no memory, no compute): for checking input sizes and counting FLOPs."""
    with torch.random.fork_rng(), torch.device("meta"):  # initialisers must not move the seeded RNG
        return create_backbone(name).eval()


def require_gradient_checkpointing(name: str) -> Callable[[nn.Module], list[nn.Module]]:
    """The function listing the backbone's checkpointable blocks; an error for backbones without one."""
    blocks = backbone_spec(name).blocks
    if blocks is None:
        transformers = [n for n in available_backbones() if backbone_spec(n).blocks is not None]
        raise TspVideoError(f"gradient checkpointing is available for the transformer backbones "
                            f"({', '.join(transformers)}), not {name}")
    return blocks


def batchnorm_momentum(name: str) -> float | None:
    """The smallest running-statistics momentum among the backbone's batch-norm layers (None: it has none)."""
    return min((m.momentum for m in build_on_meta(name).modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)),
               default=None)


def set_batchnorm_momentum(model: nn.Module, momentum: float, name: str) -> int:
    """Set the running-statistics momentum of every batch-norm layer of ``model``; returns how many.

    Architectures choose their own (VideoResNet 0.1, S3D 0.001 from its TensorFlow origin): at 0.001 the
    statistics of an encoder trained from random weights keep most of their initial values for thousands
    of steps, and evaluation-mode outputs (validation, features) use them.
    """
    if not 0.0 < momentum <= 1.0:
        raise TspVideoError(f"batch-norm momentum must be in (0, 1], got {momentum:g}")
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not layers:
        raise TspVideoError(f"{name} has no batch-norm layers: --bn-momentum does not apply")
    for layer in layers:
        layer.momentum = momentum
    return len(layers)


def enable_gradient_checkpointing(backbone: nn.Module, name: str) -> int:
    """Recompute each block's activations in the backward pass instead of storing them; returns the block count.

    Trades about one extra forward pass for much less activation memory (transformer backbones only).
    Parameter names do not change, so checkpoints stay loadable either way.
    """
    blocks = require_gradient_checkpointing(name)(backbone)
    for block in blocks:
        block.forward = functools.partial(_checkpointed_forward, block, block.forward)
    return len(blocks)


def _checkpointed_forward(block: nn.Module, forward: Callable, *args, **kwargs):
    if block.training and torch.is_grad_enabled():
        return checkpoint(forward, *args, use_reentrant=False, **kwargs)
    return forward(*args, **kwargs)
