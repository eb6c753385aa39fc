"""Scene-relative 2-D rotary position embeddings (SR-RoPE).

Positions are points of the scene square [-1, 1]² in (row, col) order, so the rotation a token
gets depends on where it sits in the scene, not on its index in a sequence: a glimpse patch and
the canvas cell under it turn alike, and a logit between two rotated tokens depends only on the
difference of their positions.

Shape glossary: B batch, N rotated tokens, P prefix (unrotated) tokens, h heads, d head size.

Channel layout (rotate-half): channel i pairs with channel i + d/2 under one angle; the first d/4
pairs encode the row, the next d/4 the column; periods grow geometrically from 1 to `base`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from canvas_engineering.errors import bad


class RopeTable(NamedTuple):
    """sin and cos of the rotation angles, float32, each (B, 1, N, d): one row per rotated token."""

    sin: torch.Tensor
    cos: torch.Tensor


def rope_periods(head_dim: int, base: float = 100.0, device=None) -> torch.Tensor:
    """(d/4,) float32 wavelengths in scene units: base ** (k / (d/4)), k = 0 … d/4 − 1."""
    if not isinstance(head_dim, int) or head_dim < 4 or head_dim % 4:
        raise bad("head_dim", head_dim, "a positive int divisible by 4 (2-D rotary pairs)")
    n = head_dim // 4
    return base ** (torch.arange(n, device=device, dtype=torch.float32) / n)


def rope_table(positions: torch.Tensor, periods: torch.Tensor) -> RopeTable:
    """The table for `positions` (B, N, 2) or (N, 2) (row, col in scene units), float32."""
    if positions.dim() == 2:
        positions = positions.unsqueeze(0)
    if positions.dim() != 3 or positions.shape[-1] != 2:
        raise bad("positions", tuple(positions.shape), "shape (B, N, 2) or (N, 2) of (row, col)")
    angles = 2 * math.pi * positions.float().unsqueeze(-1) / periods  # (B, N, 2, d/4)
    angles = angles.flatten(-2).repeat(1, 1, 2)  # (B, N, d): [rows, cols, rows, cols]
    return RopeTable(angles.sin().unsqueeze(1), angles.cos().unsqueeze(1))


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(…, d) -> (…, d): [−x[d/2:], x[:d/2]]."""
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rope(x: torch.Tensor, table: RopeTable) -> torch.Tensor:
    """Rotate the last N tokens of x (B, h, P + N, d) by `table`; the P prefix tokens (CLS,
    registers, viewpoint token) carry no position and pass through unchanged. Computed in
    float32, returned in x's dtype."""
    n = table.sin.shape[2]
    p = x.shape[2] - n
    if p < 0 or table.sin.shape[-1] != x.shape[-1]:
        raise bad("rope table", tuple(table.sin.shape),
                  f"at most {x.shape[2]} tokens of head size {x.shape[-1]}")
    tail = x[:, :, p:].float()  # (B, h, N, d)
    rotated = (tail * table.cos + rotate_half(tail) * table.sin).to(x.dtype)
    return torch.cat([x[:, :, :p], rotated], dim=2) if p else rotated
