"""Compression and transfer family: perceiver (latent bottleneck), pooling (mean), copy (no
parameters).

Shape glossary: B batch, Nq queries, Nk keys, K latents, D d_model, A coordinate axes.
"""

from __future__ import annotations

import torch
from torch import nn

from canvas_engineering.attention._common import AttentionModule, QKVAttention, check_positive_int
from canvas_engineering.attention._coords import CoordIndex, gather_rows, pack_keys
from canvas_engineering.attention.registry import register_attention


@register_attention("perceiver")
class PerceiverAttention(AttentionModule):
    """Cross-attention through K learned latents, O(K·(Nq + Nk)) (Jaegle et al., 2021).

    The latents first read the keys (latents <- x_kv), then every query reads the latents
    (x_q <- latents), so a large dst region reaches the queries through K << Nk slots.
    """

    def __init__(self, d_model: int, n_heads: int = 4, *, n_latents: int = 8,
                 bias: bool = True) -> None:
        super().__init__(d_model, n_heads)
        self.n_latents = check_positive_int("n_latents", n_latents)
        self.latents = nn.Parameter(torch.randn(n_latents, d_model) * 0.02)  # (K, D)
        self.read = QKVAttention(d_model, n_heads, bias=bias)
        self.norm = nn.LayerNorm(d_model)
        self.write = QKVAttention(d_model, n_heads, bias=bias)

    def _attend(self, x_q, x_kv, *, q_coords, kv_coords, kv_mask, beta):
        lat = self.latents.expand(x_q.shape[0], -1, -1)  # (B, K, D)
        z = lat + self.read(lat, x_kv, kv_mask=kv_mask, beta=beta)  # (B, K, D)
        return self.write(x_q, self.norm(z), beta=beta)  # (B, Nq, D)


@register_attention("pooling")
class PoolingAttention(AttentionModule):
    """Mean of the real keys, projected once and broadcast to every query, O(Nq + Nk).

    No logits (`beta` ignored); `n_heads` is only validated.
    """

    def __init__(self, d_model: int, n_heads: int = 4, *, bias: bool = True) -> None:
        super().__init__(d_model, n_heads)
        self.proj = nn.Linear(d_model, d_model, bias=bias)

    def _attend(self, x_q, x_kv, *, q_coords, kv_coords, kv_mask, beta):
        if kv_mask is None:
            mean = x_kv.mean(dim=1)  # (B, D)
        else:
            w = kv_mask.to(x_kv.dtype)  # (B, Nk)
            mean = (x_kv * w[..., None]).sum(1) / w.sum(1, keepdim=True).clamp(min=1)
        return self.proj(mean)[:, None, :].expand(-1, x_q.shape[1], -1)  # (B, Nq, D)


@register_attention("copy")
class CopyAttention(AttentionModule):
    """Direct transfer of key vectors to queries: no parameters, O(Nq + Nk log Nk).

    Which key each query copies (nearest-neighbour resampling, like
    `F.interpolate(mode="nearest")`: source = floor(dest · in / out)):

    - with q_coords and kv_coords: per axis, relative to each side's bounding box (the real
      keys' box, the queries' box), key coord = lo_k + floor((c_q - lo_q) · E_k / E_q), E the
      box extents. Same-shaped regions copy position by position, wherever they sit on the
      canvas (a previous frame, another agent); a query whose target coordinate holds no real
      key gets zeros. Padded queries should repeat real query coordinates (they set lo_q, E_q).
    - without coordinates: query i copies real key floor(i · n / Nq), n the number of real keys
      in its row; so with Nq == n it is position-aligned.

    `x_q` only sets the number of queries; `beta` and `n_heads` are unused.
    """

    def _attend(self, x_q, x_kv, *, q_coords, kv_coords, kv_mask, beta):
        nq = x_q.shape[1]
        if q_coords is None or kv_coords is None:
            x, _, _, n_real = pack_keys(x_kv, kv_mask)
            i = torch.arange(nq, device=x.device)
            src = (i[None, :] * n_real[:, None]) // nq  # (B, Nq) rank of the copied key
            return gather_rows(x, src.clamp(max=x.shape[1] - 1))
        real = kv_mask if kv_mask is not None else \
            torch.ones(kv_coords.shape[:2], dtype=torch.bool, device=x_kv.device)
        big = 2 ** 40
        lo_k = kv_coords.masked_fill(~real[..., None], big).amin(dim=1, keepdim=True)  # (B,1,A)
        hi_k = kv_coords.masked_fill(~real[..., None], -big).amax(dim=1, keepdim=True)
        lo_q = q_coords.amin(dim=1, keepdim=True)  # (B, 1, A)
        ext_q = q_coords.amax(dim=1, keepdim=True) - lo_q + 1
        target = lo_k + (q_coords - lo_q) * (hi_k - lo_k + 1).clamp(min=1) // ext_q  # (B,Nq,A)
        idx, found = CoordIndex(kv_coords, kv_mask).find(target)  # (B, Nq)
        return gather_rows(x_kv, idx) * found[..., None].to(x_kv.dtype)
