"""Viewpoint encoding: the viewpoint as one token of the glimpse stream.

(row, col, scale) -> z = (row/scale, col/scale, log scale), then fixed random Fourier features
(seeded, a buffer) and a LayerNorm whose weight starts at 1/√D. Float32 even under autocast.
"""

from __future__ import annotations

import torch
from torch import nn

from canvas_engineering.canvit.viewpoint import Viewpoint


class ViewpointEncoding(nn.Module):
    def __init__(self, dim: int, seed: int = 42) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("frequencies", torch.randn(dim // 2, 3, generator=g))  # (D/2, 3)
        self.norm = nn.LayerNorm(dim)
        nn.init.constant_(self.norm.weight, dim ** -0.5)

    def forward(self, viewpoint: Viewpoint) -> torch.Tensor:
        """-> (B, D) float32."""
        s = viewpoint.scales
        with torch.autocast(device_type=s.device.type, enabled=False):
            z = torch.cat([viewpoint.centers / s[:, None], s.log()[:, None]], dim=1)  # (B, 3)
            phase = z @ self.frequencies.T  # (B, D/2)
            return self.norm(torch.cat([phase.cos(), phase.sin()], dim=1))
