"""Small stand-ins shared by several test files (pytest puts this folder on the import path)."""

from __future__ import annotations

import torch

from tspvideo.datasets.segments import ACTION, NO_ACTION, Segment


class ChannelMeanEncoder(torch.nn.Module):
    """A cheap deterministic encoder for any clip size: each clip's channel means through a fixed 3 -> 8 map."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:  # [B, 3, L, h, w] -> [B, 8]
        return clips.mean(dim=(2, 3, 4)) @ self.weight


def table_segment(video: str, t_start: float, t_end: float, label: str | None, duration: float,
                  fps: float = 15.0) -> Segment:
    """A segment-table row of ``video.mp4`` (label None: background), as the importers write them."""
    return Segment(video, t_start, t_end, label, duration, f"{video}.mp4", fps, int(duration * fps),
                   ACTION if label else NO_ACTION)
