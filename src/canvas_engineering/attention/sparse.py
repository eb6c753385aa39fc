"""Sparse / structured family: top-k attention and windowed attention over grid coordinates.

Shape glossary: B batch, Nq queries, Nk keys, D d_model, h heads, d = D / h head size,
A coordinate axes (t, h, w, ...), W window size (keys a query may see).
"""

from __future__ import annotations

import itertools
import math
from numbers import Integral

import torch

from canvas_engineering.attention._common import (
    QKVAttention,
    check_positive_int,
    masked_softmax,
    merge_heads,
)
from canvas_engineering.attention._coords import CoordIndex, gather_rows
from canvas_engineering.attention.registry import register_attention
from canvas_engineering.errors import CanvasError, bad


@register_attention("sparse_attention")
class SparseAttention(QKVAttention):
    """Top-k attention: per query and head only the `top_k` largest logits enter the softmax.

    Logits are `beta · q·k / sqrt(d)`; the rest get weight exactly 0 (and no gradient), so
    gradient flows to k keys per query. Scoring is O(Nq·Nk); the softmax and value mix O(Nq·k).
    """

    def __init__(self, d_model: int, n_heads: int = 4, *, top_k: int = 8,
                 bias: bool = True) -> None:
        super().__init__(d_model, n_heads, bias=bias)
        self.top_k = check_positive_int("top_k", top_k)

    def _attend(self, x_q, x_kv, *, q_coords, kv_coords, kv_mask, beta):
        q, k, v = self.project(x_q, x_kv)
        logits = q @ k.transpose(-1, -2) * (beta / math.sqrt(self.d_head))  # (B, h, Nq, Nk)
        if kv_mask is not None:
            logits = logits.masked_fill(~kv_mask[:, None, None, :], -math.inf)
        top, idx = logits.topk(min(self.top_k, logits.shape[-1]), dim=-1)  # (B, h, Nq, k)
        w = masked_softmax(top, torch.isfinite(top))  # padded keys never count among the k
        dense = torch.zeros_like(logits).scatter(-1, idx, w)  # (B, h, Nq, Nk), k nonzeros a row
        return self.out_proj(merge_heads(dense @ v))


@register_attention("local_attention")
class LocalAttention(QKVAttention):
    """Softmax attention within a window over the canvas grid coordinates, O(Nq·W).

    Query q sees the real keys k with |coord_q[a] - coord_k[a]| <= window[a] on every axis a
    (time and space), whatever their distance in the flat sequence. `window` is one int for
    all axes or one per axis. The W = Π(2·window[a] + 1) neighbour coordinates of each query
    are looked up in a sorted index of the keys (O((Nq·W + Nk) log Nk)), then attended to.
    Needs q_coords and kv_coords; coordinates must be unique among a row's real keys.
    A query with no real key in its window outputs zeros.
    """

    def __init__(self, d_model: int, n_heads: int = 4, *, window: int | tuple[int, ...] = 1,
                 bias: bool = True) -> None:
        super().__init__(d_model, n_heads, bias=bias)
        ws = (window,) if isinstance(window, Integral) else window
        if not isinstance(ws, (tuple, list)) or not ws or not all(
                isinstance(w, Integral) and not isinstance(w, bool) and w >= 0 for w in ws):
            raise bad("window", window, "an int >= 0 or a tuple of ints >= 0, one per axis")
        self.window = window if isinstance(window, Integral) else tuple(window)

    def offsets(self, n_axes: int, device=None) -> torch.Tensor:
        """The (W, A) coordinate offsets of one window."""
        if isinstance(self.window, Integral):
            ws = (self.window,) * n_axes
        elif len(self.window) == n_axes:
            ws = self.window
        else:
            raise bad("window", self.window, f"{n_axes} half-widths, one per coordinate axis")
        grid = itertools.product(*(range(-w, w + 1) for w in ws))
        return torch.tensor(list(grid), dtype=torch.long, device=device)

    def _attend(self, x_q, x_kv, *, q_coords, kv_coords, kv_mask, beta):
        if q_coords is None or kv_coords is None:
            raise CanvasError("local_attention: got q_coords or kv_coords None, expected both "
                              "(the window is over grid coordinates)")
        b, nq, _ = x_q.shape
        h, d = self.n_heads, self.d_head
        off = self.offsets(q_coords.shape[-1], q_coords.device)  # (W, A)
        target = q_coords[:, :, None, :] + off  # (B, Nq, W, A)
        idx, found = CoordIndex(kv_coords, kv_mask).find(target)  # (B, Nq, W)
        q, k, v = self.project(x_q, x_kv)  # (B, h, N, d)
        q = q.transpose(1, 2)  # (B, Nq, h, d)
        k_w = gather_rows(k.transpose(1, 2), idx)  # (B, Nq, W, h, d)
        v_w = gather_rows(v.transpose(1, 2), idx)  # (B, Nq, W, h, d)
        logits = torch.einsum("bqhd,bqwhd->bqhw", q, k_w) * (beta / math.sqrt(d))
        w = masked_softmax(logits, found[:, :, None, :])  # (B, Nq, h, W)
        return self.out_proj(torch.einsum("bqhw,bqwhd->bqhd", w, v_w).reshape(b, nq, h * d))
