"""The probe network: a few 1-D temporal convolutions with actionness/start/end and class heads."""

from __future__ import annotations

import torch
from torch import nn


class ProbeNet(nn.Module):
    """Temporal conv trunk (dilations 1, 2, 4, ...) then two 1x1 heads.

    Input ``[B, C, T]``; outputs ``(boundary_logits [B, 3, T], class_logits [B, K, T])`` where the
    three boundary channels are actionness, start and end. Deliberately small: the probe measures how
    much localization signal the features carry, it is not meant to compete with ActionFormer.
    """

    def __init__(self, in_dim: int, num_classes: int, hidden: int = 128, num_layers: int = 3,
                 dropout: float = 0.1):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_dim
        for i in range(num_layers):
            dilation = 2 ** i
            layers += [nn.Conv1d(channels, hidden, kernel_size=3, padding=dilation, dilation=dilation),
                       nn.ReLU(inplace=True), nn.Dropout(dropout)]
            channels = hidden
        self.trunk = nn.Sequential(*layers)
        self.boundary_head = nn.Conv1d(hidden, 3, kernel_size=1)
        self.class_head = nn.Conv1d(hidden, max(1, num_classes), kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.boundary_head(h), self.class_head(h)
