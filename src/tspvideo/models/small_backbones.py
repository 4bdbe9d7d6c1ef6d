"""Small video encoders for experiments on a CPU, where the paper's 18-layer networks cannot learn in time.

``c3d_tiny``: a plain C3D-style stack of four 3D convolutions (16-32-64-128 channels, BatchNorm, ReLU)
and a global max pool (a small moving object anywhere in the frame counts): 128-d clip features, ~0.3M
parameters (R3D-18 has 33M). Its input is the clip and the clip minus its mean frame (6 channels), which
hands the network what moves. From random weights and a few thousand synthetic clips it learns motion
patterns in minutes on two CPU cores, which is what `tspvideo experiment` needs; it has no pretrained
weights and is not part of the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def _conv_bn_relu(in_channels: int, out_channels: int, kernel: tuple[int, int, int],
                  stride: tuple[int, int, int]) -> nn.Sequential:
    padding = tuple(k // 2 for k in kernel)
    return nn.Sequential(nn.Conv3d(in_channels, out_channels, kernel, stride, padding, bias=False),
                         nn.BatchNorm3d(out_channels), nn.ReLU(inplace=True))


class TinyC3D(nn.Module):
    """``[B, 3, T, H, W]`` -> ``[B, 128]``: stem (space /2), three stages (space /2 twice, time /2 twice), max pool."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        self.stem = _conv_bn_relu(6, widths[0], (3, 5, 5), (1, 2, 2))
        self.layer1 = _conv_bn_relu(widths[0], widths[1], (3, 3, 3), (1, 2, 2))
        self.layer2 = _conv_bn_relu(widths[1], widths[2], (3, 3, 3), (2, 2, 2))
        self.layer3 = _conv_bn_relu(widths[2], widths[3], (3, 3, 3), (2, 1, 1))
        self.pool = nn.AdaptiveMaxPool3d(1)
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        # The clip and its deviation from the clip's mean frame: the static background and the objects'
        # appearance drop out of the second half, which leaves what moves (learning starts much sooner).
        x = torch.cat([x, x - x.mean(dim=2, keepdim=True)], dim=1)
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.pool(x).flatten(1)


@dataclass(frozen=True)
class SmallSpec:
    """How to build one small encoder (the fields the backbone registry reads)."""

    name: str
    feature_dim: int
    stem_prefixes: tuple[str, ...] = ("stem.",)
    blocks: None = None  # no gradient checkpointing: nothing to save
    input_note: str = ""
    any_input_size: bool = True  # padded convolutions and a global pool: any clip of >= 1 frame of >= 1x1 passes

    def build(self) -> nn.Module:
        """A randomly initialised encoder whose forward maps ``[B, 3, T, H, W]`` to ``[B, feature_dim]``."""
        return TinyC3D()


SMALL_BACKBONES: dict[str, SmallSpec] = {"c3d_tiny": SmallSpec("c3d_tiny", 128)}
