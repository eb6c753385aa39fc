"""Teachers: frozen feature extractors whose full-scene features the student distils.

A teacher is any callable `teacher(images (B, 3, P, P)) -> (patches (B, G², Dt), cls (B, Dt))`
(e.g. a locally stored DINOv3 wrapped by the user). The built-in `FilterBankTeacher` needs no
download and no training: fixed oriented filters that resolve the period-4 textures of
`scenes.texture_scenes` at full resolution, so its features carry what a low-resolution glimpse
cannot.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from canvas_engineering.errors import check_int


def _filters() -> torch.Tensor:
    """(8, 1, 4, 4): sine and cosine phases of horizontal, vertical, checker and diagonal
    waves of period 4, zero-mean."""
    r, c = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    w = 2 * torch.pi / 4
    out = []
    for phase in (r * w, c * w, (r + c) * w, (r - c) * w):
        for f in (torch.cos, torch.sin):
            k = f(phase + torch.pi / 4)
            out.append(k - k.mean())
    return torch.stack(out).unsqueeze(1)


class FilterBankTeacher(nn.Module):
    """patch (cell×cell pixels) -> log-energy of 8 texture filters + RGB mean and std, then a
    seeded random projection to `dim` and tanh; CLS = mean over patches."""

    def __init__(self, dim: int = 64, cell: int = 8, seed: int = 0) -> None:
        super().__init__()
        self.dim, self.cell = check_int("dim", dim, 1), check_int("cell", cell, 1)
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("filters", _filters())
        self.register_buffer("projection", torch.randn(14, dim, generator=g) / 14 ** 0.5)
        self.register_buffer("bias", torch.randn(dim, generator=g) * 0.1)
        self.requires_grad_(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        grey = images.mean(1, keepdim=True)  # (B, 1, P, P)
        energy = F.conv2d(F.pad(grey, (1, 2, 1, 2), mode="replicate"), self.filters) ** 2
        texture = torch.log1p(F.avg_pool2d(energy, self.cell) * 4)  # (B, 8, G, G)
        mean = F.avg_pool2d(images, self.cell)  # (B, 3, G, G)
        std = (F.avg_pool2d(images ** 2, self.cell) - mean ** 2).clamp_min(0).sqrt()
        raw = torch.cat([texture, mean, std], 1).flatten(2).transpose(1, 2)  # (B, G², 14)
        patches = torch.tanh(raw @ self.projection + self.bias)  # (B, G², Dt)
        return patches, patches.mean(1)
