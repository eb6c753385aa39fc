"""A chunked parallel scan for first-order linear recurrences h_t = a_t ⊙ h_{t-1} + b_t.

Used by mamba (per-step decays) and rwkv (chunk states). No Python loop over positions: inside
chunks of length c and across the L / c chunk ends, a Hillis–Steele scan takes log2 steps of
vectorised work, so the cost is O(L log c + (L / c) log(L / c)) and every product of decays is
a product of numbers in [0, 1] (no division, no overflow).

Shape glossary: B batch, L sequence length, S any trailing state shape.
"""

from __future__ import annotations

import math

import torch


def _shift(x: torch.Tensor, s: int, dim: int, fill: float) -> torch.Tensor:
    """x shifted by s along dim (towards higher indices), the first s entries set to fill."""
    n = x.shape[dim]
    head = torch.full_like(x.narrow(dim, 0, s), fill)
    return torch.cat([head, x.narrow(dim, 0, n - s)], dim=dim)


def hillis_steele(a: torch.Tensor, b: torch.Tensor, dim: int):
    """Inclusive scan along dim from a zero state.

    Returns (P, H): P_t = a_0 ⊙ ... ⊙ a_t and H_t = h_t, both shaped like b.
    """
    n, s = b.shape[dim], 1
    while s < n:
        b = a * _shift(b, s, dim, 0.0) + b  # uses the old a: the product over (t - s, t]
        a = a * _shift(a, s, dim, 1.0)
        s *= 2
    return a, b


def linear_scan(a: torch.Tensor, b: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """h_t = a_t ⊙ h_{t-1} + b_t along dim 1 with h_{-1} = 0.

    Args: a, b: (B, L, *S), same shape. Returns h: (B, L, *S).
    """
    bsz, length, rest = b.shape[0], b.shape[1], b.shape[2:]
    c = max(1, min(chunk, length))
    n = math.ceil(length / c)
    pad = n * c - length
    if pad:  # identity steps at the end: a = 1, b = 0
        a = torch.cat([a, a.new_ones(bsz, pad, *rest)], dim=1)
        b = torch.cat([b, b.new_zeros(bsz, pad, *rest)], dim=1)
    a = a.reshape(bsz, n, c, *rest)
    b = b.reshape(bsz, n, c, *rest)
    prod, local = hillis_steele(a, b, dim=2)  # (B, n, c, *S) within each chunk
    _, ends = hillis_steele(prod[:, :, -1], local[:, :, -1], dim=1)  # (B, n, *S) chunk-end states
    enter = _shift(ends, 1, dim=1, fill=0.0)  # state entering each chunk
    h = local + prod * enter.unsqueeze(2)  # (B, n, c, *S)
    return h.reshape(bsz, n * c, *rest)[:, :length]
