"""Procedural texture scenes that need zooming: no download, seeded, labelled per pixel.

Each scene: a smooth random background and 3–6 discs or squares, each filled with one of four
period-4-pixel textures (horizontal, vertical, checker, diagonal stripes) in a random colour.
A full-scene glimpse 4× smaller point-samples the scene, so the period-4 textures alias away:
the object's layout and colour survive, its class does not. A quadrant glimpse (2×) keeps
period 2; a sixteenth keeps the texture native. Class identity therefore needs zooming in.

Shape glossary: S scenes, P pixels per side, G label grid side (P / cell).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from canvas_engineering.errors import check_int

CLASSES = ("background", "horizontal", "vertical", "checker", "diagonal")
PERIOD = 4  # pixels


def _texture(kind: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """(S, P, P) ±1 square waves of period 4; kind (S,) in 1..4 picks horizontal, vertical,
    checker or diagonal; rows / cols (S, P, P) integer pixel positions plus phase."""
    h = ((rows % PERIOD) < PERIOD // 2).float() * 2 - 1
    v = ((cols % PERIOD) < PERIOD // 2).float() * 2 - 1
    d = (((rows + cols) % PERIOD) < PERIOD // 2).float() * 2 - 1
    k = kind[:, None, None]
    return torch.where(k == 1, h, torch.where(k == 2, v, torch.where(k == 3, h * v, d)))


def texture_scenes(n: int, size: int = 128, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """images (S, 3, P, P) float32 roughly zero-mean, labels (S, P, P) long in 0..4.
    Objects are drawn in slots, all scenes at once; later objects cover earlier ones."""
    check_int("n", n, 1)
    check_int("size", size, 16)
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(n, 3, 4, 4, generator=g) * 0.35
    images = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)
    labels = torch.zeros(n, size, size, dtype=torch.long)
    rr, cc = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")  # (P, P)
    count = torch.randint(3, 7, (n,), generator=g)  # objects per scene
    for slot in range(6):
        kind = torch.randint(1, 5, (n,), generator=g)
        radius = (10 + 18 * torch.rand(n, generator=g)) * (size / 128)  # (S,)
        cy, cx = (torch.rand(2, n, generator=g) * (size - 2 * radius) + radius)[..., None, None]
        r = radius[:, None, None]
        disc = (rr - cy) ** 2 + (cc - cx) ** 2 <= r ** 2  # (S, P, P)
        square = ((rr - cy).abs() <= r / math.sqrt(2)) & ((cc - cx).abs() <= r / math.sqrt(2))
        is_disc = (torch.rand(n, generator=g) < 0.5)[:, None, None]
        inside = torch.where(is_disc, disc, square) & (slot < count)[:, None, None]
        phase = torch.randint(0, PERIOD, (2, n, 1, 1), generator=g)
        wave = _texture(kind, rr + phase[0], cc + phase[1])  # (S, P, P)
        colour = torch.randn(n, 3, 1, 1, generator=g) * 0.6
        fill = colour * (1 + 0.35 * wave[:, None]) + 0.35 * wave[:, None]  # (S, 3, P, P)
        images = torch.where(inside[:, None], fill, images)
        labels = torch.where(inside, kind[:, None, None], labels)
    return images, labels


def cell_labels(labels: torch.Tensor, cell: int) -> torch.Tensor:
    """(S, P, P) pixel labels -> (S, G, G) majority label per cell×cell block."""
    s, p, _ = labels.shape
    g = p // cell
    blocks = labels[:, :g * cell, :g * cell].reshape(s, g, cell, g, cell)
    counts = F.one_hot(blocks, len(CLASSES)).sum(dim=(2, 4))  # (S, G, G, classes)
    return counts.argmax(-1)
