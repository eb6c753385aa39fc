"""Dot-product family: softmax (cross / self), linear (kernel trick), cosine and sigmoid attention.

Shape glossary: B batch, Nq queries, Nk keys, D d_model, h heads, d = D / h head size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from canvas_engineering.attention._common import (
    QKVAttention,
    check_positive_float,
    merge_heads,
    sdpa,
)
from canvas_engineering.attention.registry import register_attention


@register_attention("self_attention")
@register_attention("cross_attention")
class CrossAttention(QKVAttention):
    """Scaled dot-product attention with softmax, O(Nq·Nk): the default type.

    Logits are `beta · q·k / sqrt(d)`; runs through `scaled_dot_product_attention`.
    `self_attention` is the same class (a connection from a region to itself).
    """

    softmax_fusion = "dot"


@register_attention("linear_attention")
class LinearAttention(QKVAttention):
    """Kernelised attention without softmax, O(Nq + Nk) (Katharopoulos et al., 2020).

    out_i = φ(q_i)ᵀ Σ_j φ(k_j) v_jᵀ / (φ(q_i)ᵀ Σ_j φ(k_j) + eps), φ = elu + 1, so the key side
    is summed once into a (d × d) matrix per head. There are no logits: `beta` is ignored.
    """

    def __init__(self, d_model: int, n_heads: int = 4, *, eps: float = 1e-6,
                 bias: bool = True) -> None:
        super().__init__(d_model, n_heads, bias=bias)
        self.eps = check_positive_float("eps", eps)

    def _attend(self, x_q, x_kv, *, q_coords, kv_coords, kv_mask, beta):
        q, k, v = self.project(x_q, x_kv)
        q, k = F.elu(q) + 1, F.elu(k) + 1  # positive features
        if kv_mask is not None:
            k = k * kv_mask[:, None, :, None].to(k.dtype)  # padded keys add nothing
        kv = torch.einsum("bhnd,bhne->bhde", k, v)  # (B, h, d, d)
        z = k.sum(dim=2)  # (B, h, d)
        num = torch.einsum("bhnd,bhde->bhne", q, kv)  # (B, h, Nq, d)
        den = torch.einsum("bhnd,bhd->bhn", q, z)[..., None] + self.eps  # (B, h, Nq, 1)
        return self.out_proj(merge_heads(num / den))


@register_attention("cosine_attention")
class CosineAttention(QKVAttention):
    """Softmax over cosine similarities, O(Nq·Nk).

    q and k are L2-normalised per head, so logits lie in [-scale, scale]; `scale` is a fixed
    constant (default sqrt(d), the usual magnitude of dot-product logits), not a learned
    temperature. Logits are multiplied by `beta`.
    """

    softmax_fusion = "cosine"

    def __init__(self, d_model: int, n_heads: int = 4, *, scale: float | None = None,
                 bias: bool = True) -> None:
        super().__init__(d_model, n_heads, bias=bias)
        self.scale = math.sqrt(self.d_head) if scale is None else check_positive_float("scale", scale)

    def _attend(self, x_q, x_kv, *, q_coords, kv_coords, kv_mask, beta):
        q, k, v = self.project(x_q, x_kv)
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        o = sdpa(q, k, v, kv_mask, scale=beta * self.scale)  # (B, h, Nq, d)
        return self.out_proj(merge_heads(o))


@register_attention("sigmoid_attention")
class SigmoidAttention(QKVAttention):
    """Each key gated independently by a sigmoid instead of a softmax, O(Nq·Nk).

    out_i = Σ_j σ(beta · q_i·k_j / sqrt(d) - log n) v_j with n the number of real keys: the
    -log n bias keeps the total weight near 1 at init (Ramapuram et al., 2024, "Theory, Analysis,
    and Best Practices for Sigmoid Self-Attention"). Weights do not compete: several keys can
    be fully on at once.
    """

    def _attend(self, x_q, x_kv, *, q_coords, kv_coords, kv_mask, beta):
        q, k, v = self.project(x_q, x_kv)
        nk = x_kv.shape[1]
        n_real = x_kv.new_full((x_kv.shape[0],), nk) if kv_mask is None else kv_mask.sum(1)
        bias = -torch.log(n_real.clamp(min=1).to(q.dtype))[:, None, None, None]  # (B, 1, 1, 1)
        logits = q @ k.transpose(-1, -2) * (beta / math.sqrt(self.d_head)) + bias  # (B,h,Nq,Nk)
        w = torch.sigmoid(logits)
        if kv_mask is not None:
            w = w * kv_mask[:, None, None, :].to(w.dtype)
        return self.out_proj(merge_heads(w @ v))
