"""Gating family: Flamingo-style gated cross-attention that starts closed.

Shape glossary: B batch, Nq queries, Nk keys, D d_model, h heads, d = D / h head size.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from canvas_engineering.attention._common import QKVAttention, merge_heads, sdpa
from canvas_engineering.attention.registry import register_attention


@register_attention("gated")
class GatedAttention(QKVAttention):
    """Softmax cross-attention behind a learned tanh gate, O(Nq·Nk) (Alayrac et al., 2022).

    out = tanh(alpha) · attention(LayerNorm(x_q), x_kv), with one gate value per channel.
    alpha starts at 0, so the output is exactly zero at init and adding a gated edge leaves a
    model unchanged; training opens the gate (d tanh / d alpha = 1 at 0, so it gets gradient).
    Flamingo uses one scalar per layer; a per-channel gate lets channels open independently.
    """

    def __init__(self, d_model: int, n_heads: int = 4, *, bias: bool = True) -> None:
        super().__init__(d_model, n_heads, bias=bias)
        self.norm_q = nn.LayerNorm(d_model)
        self.alpha = nn.Parameter(torch.zeros(d_model))  # closed at init

    def _attend(self, x_q, x_kv, *, q_coords, kv_coords, kv_mask, beta):
        q, k, v = self.project(self.norm_q(x_q), x_kv)
        o = sdpa(q, k, v, kv_mask, scale=beta / math.sqrt(self.d_head))  # (B, h, Nq, d)
        return torch.tanh(self.alpha) * self.out_proj(merge_heads(o))
