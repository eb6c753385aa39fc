"""State-space family, part 2: RWKV-style linear attention with learned exponential decay, in
chunked form.

Shape glossary: B batch, Nq queries, L = Nk keys, D d_model, h heads, d = D / h head size,
c chunk length, n = ceil(L / c) chunks.

The state after key t is S_t = Σ_{s ≤ t} exp(-(t - s) w) ⊙ φ(k_s) [v_s, 1]ᵀ, a (d × (d + 1))
matrix per head whose last column is the normaliser; w > 0 is a learned decay rate per head
and channel (position-dependent forgetting, as in RWKV's time decay). Query i reads
S at the last key it may see (see `readout_positions`):
    out_i = W_o(σ(W_g x_q,i) ⊙ (φ(r_i)ᵀ S[:, :d]) / (φ(r_i)ᵀ S[:, d] + eps)),
with σ(W_g x) RWKV's receptance gate. Chunked: chunk-end states come from a parallel scan over
the n chunks, and each query adds the keys of its own chunk up to its read position, so the cost
is O(L·d² + Nq·c·d + Nq·d²) with no loop over positions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from canvas_engineering.attention._common import (
    AttentionModule,
    check_positive_float,
    check_positive_int,
)
from canvas_engineering.attention._coords import gather_rows, pack_keys, readout_positions
from canvas_engineering.attention._scan import hillis_steele
from canvas_engineering.attention.registry import register_attention


@register_attention("rwkv")
class RWKVAttention(AttentionModule):
    """Linear attention with learned per-channel exponential decay over the key sequence, O(N).

    causal=True (default): with coordinates a query reads the keys whose time is at most its
    own; without coordinates and Nq == Nk, query i reads keys 0..i; otherwise all keys.
    causal=False: every query reads all real keys (decay measured from the last one).
    No logits: `beta` is ignored.
    """

    def __init__(self, d_model: int, n_heads: int = 4, *, causal: bool = True, chunk: int = 16,
                 eps: float = 1e-6, bias: bool = True) -> None:
        super().__init__(d_model, n_heads)
        self.causal = bool(causal)
        self.chunk = check_positive_int("chunk", chunk)
        self.eps = check_positive_float("eps", eps)
        self.r_proj = nn.Linear(d_model, d_model, bias=bias)
        self.g_proj = nn.Linear(d_model, d_model, bias=bias)
        self.kv_proj = nn.Linear(d_model, 2 * d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        # decay rates spread from slow (0.005 per step) to fast (1 per step) across channels
        rates = torch.linspace(math.log(0.005), 0.0, d_model).view(n_heads, self.d_head)
        self.w_log = nn.Parameter(rates)  # (h, d); w = exp(w_log)

    def _attend(self, x_q, x_kv, *, q_coords, kv_coords, kv_mask, beta):
        b, nq, _ = x_q.shape
        h, d = self.n_heads, self.d_head
        x, mask, kc, n_real = pack_keys(x_kv, kv_mask, kv_coords)
        length = x.shape[1]
        p = readout_positions(nq, length, n_real, mask, q_coords, kc, self.causal)  # (B, Nq)
        # 1. features; padded keys get k = 0, so they add nothing to any state
        k, v = self.kv_proj(x).chunk(2, dim=-1)
        k = F.elu(k.view(b, length, h, d)) + 1  # (B, L, h, d)
        if mask is not None:
            k = k * mask[:, :, None, None].to(k.dtype)
        v = torch.cat([v.view(b, length, h, d), v.new_ones(b, length, h, 1)], -1)  # (B,L,h,d+1)
        r = F.elu(self.r_proj(x_q).view(b, nq, h, d)) + 1  # (B, Nq, h, d)
        w = torch.exp(self.w_log)  # (h, d)
        # 2. chunk the keys and scan the chunk-end states
        c = min(self.chunk, length)
        n = math.ceil(length / c)
        if n * c > length:
            k = F.pad(k, (0, 0, 0, 0, 0, n * c - length))
            v = F.pad(v, (0, 0, 0, 0, 0, n * c - length))
        k, v = k.view(b, n, c, h, d), v.view(b, n, c, h, d + 1)
        pos = torch.arange(c, device=x.device, dtype=k.dtype)  # (c,)
        to_end = torch.exp(-(c - 1 - pos)[:, None, None] * w)  # (c, h, d) decay to chunk end
        u = torch.einsum("bnchd,bnche->bnhde", k * to_end, v)  # (B, n, h, d, d+1)
        a = torch.exp(-c * w)[None, None, :, :, None].expand_as(u)
        _, ends = hillis_steele(a, u, dim=1)  # (B, n, h, d, d+1) state at each chunk end
        # 3. each query: the state entering its chunk, plus its chunk's keys up to its position
        last = (p - 1).clamp(min=0)  # (B, Nq) index of the last key read
        m, o = last // c, last % c  # chunk and offset within it
        enter = gather_rows(F.pad(ends, (0, 0, 0, 0, 0, 0, 1, 0))[:, :-1], m)  # (B,Nq,h,d,d+1)
        of = o.to(k.dtype)[..., None, None]  # (B, Nq, 1, 1)
        out = torch.einsum("bqhd,bqhde->bqhe", r * torch.exp(-(of + 1) * w), enter)
        gap = (of[..., None] - pos[:, None, None])  # (B, Nq, c, 1, 1) steps from key to read
        decay = torch.exp(-gap.clamp(min=0) * w) * (gap >= 0).to(k.dtype)  # (B, Nq, c, h, d)
        scores = (r[:, :, None] * gather_rows(k, m) * decay).sum(-1)  # (B, Nq, c, h)
        out = out + torch.einsum("bqch,bqche->bqhe", scores, gather_rows(v, m))
        o_attn = out[..., :d] / (out[..., d:] + self.eps)  # (B, Nq, h, d)
        o_attn = o_attn * (p > 0)[:, :, None, None].to(o_attn.dtype)  # nothing to read: zero
        return self.out_proj(torch.sigmoid(self.g_proj(x_q)) * o_attn.reshape(b, nq, h * d))
