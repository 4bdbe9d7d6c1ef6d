"""Small stand-ins shared by several test files (pytest puts this folder on the import path)."""

from __future__ import annotations

import torch


class ChannelMeanEncoder(torch.nn.Module):
    """A cheap deterministic encoder for any clip size: each clip's channel means through a fixed 3 -> 8 map."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:  # [B, 3, L, h, w] -> [B, 8]
        return clips.mean(dim=(2, 3, 4)) @ self.weight
