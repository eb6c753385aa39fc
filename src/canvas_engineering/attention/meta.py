"""Meta family: none (a disabled edge), random_fixed (frozen random sparse pattern) and mixture
(learned routing of each query to a few blocks of keys).

Shape glossary: B batch, Nq queries, Nk keys, D d_model, h heads, d = D / h head size,
k keys per query (random_fixed), nb key blocks of `block_size` keys, r blocks per query.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from canvas_engineering.attention._common import (
    AttentionModule,
    QKVAttention,
    check_positive_int,
    masked_softmax,
)
from canvas_engineering.attention._coords import gather_rows, pack_keys
from canvas_engineering.attention.registry import register_attention
from canvas_engineering.errors import bad


@register_attention("none")
class NoneAttention(AttentionModule):
    """The edge is declared but contributes nothing: zeros (B, Nq, D), no parameters, O(0)."""

    def _attend(self, x_q, x_kv, *, q_coords, kv_coords, kv_mask, beta):
        return torch.zeros_like(x_q)


def hash_uniform(seed: int, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Deterministic uniform numbers in [0, 1) for each (row, col): a 32-bit integer hash.

    A pure function of its inputs, so row i's numbers do not depend on how many rows exist.
    """
    x = (rows * 73856093) ^ (cols * 19349663) ^ (seed * 83492791)
    mask = 0xFFFFFFFF
    x = x & mask
    for _ in range(2):  # the "lowbias32"-style mixing rounds
        x = ((x ^ (x >> 16)) * 0x45D9F3B) & mask
    x = x ^ (x >> 16)
    return x.double().div(2.0 ** 32)


@register_attention("random_fixed")
class RandomFixedAttention(QKVAttention):
    """Softmax attention over a random sparse pattern frozen at init, O(Nq·k).

    Query i sees k keys by rank among the real keys: for slot j in 0..k-1,
    rank = floor((j + u_ij) · n / k), u_ij = hash(seed, i, j) in [0, 1), n = real keys in the
    row: one key from each of k equal strata, distinct when n >= k (repeats dropped when
    n < k). The seed is a buffer drawn at init (saved in the state dict), so the pattern is
    fixed for the module's life, independent of batch padding, and never learned; the q, k, v
    projections are learned. Logits are multiplied by `beta`.
    """

    def __init__(self, d_model: int, n_heads: int = 4, *, k: int = 8, seed: int | None = None,
                 bias: bool = True) -> None:
        super().__init__(d_model, n_heads, bias=bias)
        self.k = check_positive_int("k", k)
        if seed is None:
            seed = int(torch.randint(0, 2 ** 31 - 1, ()))
        elif not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise bad("seed", seed, "an int >= 0 or None")
        self.register_buffer("seed", torch.tensor(seed, dtype=torch.long))

    def pattern(self, nq: int, n_real: torch.Tensor):
        """Key ranks (B, Nq, k) long and valid (B, Nq, k) bool for rows with n_real keys."""
        dev = n_real.device
        rows = torch.arange(nq, device=dev)[:, None]
        cols = torch.arange(self.k, device=dev)[None, :]
        u = hash_uniform(int(self.seed), rows, cols)  # (Nq, k)
        n = n_real[:, None, None].double()
        rank = ((cols + u) * n / self.k).floor().long()  # (B, Nq, k), non-decreasing in j
        fresh = torch.ones_like(rank, dtype=torch.bool)
        fresh[..., 1:] = rank[..., 1:] != rank[..., :-1]
        return rank.clamp(max=max(int(n_real.max()) - 1, 0)), fresh & (n > 0)

    def _attend(self, x_q, x_kv, *, q_coords, kv_coords, kv_mask, beta):
        b, nq, _ = x_q.shape
        x, _, _, n_real = pack_keys(x_kv, kv_mask)
        q, k, v = (t.transpose(1, 2) for t in self.project(x_q, x))  # (B, N, h, d)
        rank, valid = self.pattern(nq, n_real)  # (B, Nq, k)
        k_s, v_s = gather_rows(k, rank), gather_rows(v, rank)  # (B, Nq, k, h, d)
        logits = torch.einsum("bqhd,bqkhd->bqhk", q, k_s) * (beta / math.sqrt(self.d_head))
        w = masked_softmax(logits, valid[:, :, None, :])  # (B, Nq, h, k)
        return self.out_proj(torch.einsum("bqhk,bqkhd->bqhd", w, v_s).reshape(b, nq, -1))


@register_attention("mixture")
class MixtureAttention(QKVAttention):
    """Mixture-of-experts routing of each query to `top_r` blocks of keys, O(Nq·(nb + r·bs)).

    The real keys, in order, form blocks of `block_size` (bs) keys: the experts. A query's
    router score for a block is q · mean(k over the block) / sqrt(d) per head (as in MoBA, Lu et
    al., 2025); the top r blocks are chosen, the query attends within each chosen block, and
    the block outputs are mixed by a softmax of their router scores, so the router is learned
    through that mix. Router and attention logits are multiplied by `beta`.
    """

    def __init__(self, d_model: int, n_heads: int = 4, *, block_size: int = 16, top_r: int = 2,
                 bias: bool = True) -> None:
        super().__init__(d_model, n_heads, bias=bias)
        self.block_size = check_positive_int("block_size", block_size)
        self.top_r = check_positive_int("top_r", top_r)

    def _attend(self, x_q, x_kv, *, q_coords, kv_coords, kv_mask, beta):
        b, nq, _ = x_q.shape
        h, d, bs = self.n_heads, self.d_head, self.block_size
        x, mask, _, _ = pack_keys(x_kv, kv_mask)
        nk = x.shape[1]
        if mask is None:
            mask = torch.ones(b, nk, dtype=torch.bool, device=x.device)
        q, k, v = self.project(x_q, x)  # (B, h, N, d)
        nb = math.ceil(nk / bs)
        pad = nb * bs - nk
        kb = F.pad(k, (0, 0, 0, pad)).reshape(b * h, nb, bs * d)  # (B·h, nb, bs·d)
        vb = F.pad(v, (0, 0, 0, pad)).reshape(b * h, nb, bs * d)
        mb = F.pad(mask, (0, pad)).view(b, 1, nb, bs).expand(b, h, nb, bs).reshape(b * h, nb, bs)
        # 1. route: score every block by its mean key, keep the top r
        cnt = mb.sum(-1, keepdim=True)  # (B·h, nb, 1)
        mean_k = (kb.view(b * h, nb, bs, d) * mb[..., None]).sum(2) / cnt.clamp(min=1)
        scale = beta / math.sqrt(d)
        route = torch.einsum("bhqd,bhnd->bhqn", q, mean_k.view(b, h, nb, d)) * scale
        route = route.masked_fill((cnt == 0).view(b, h, 1, nb), -math.inf)  # empty blocks out
        top, sel = route.topk(min(self.top_r, nb), dim=-1)  # (B, h, Nq, r)
        gate = masked_softmax(top, torch.isfinite(top))  # (B, h, Nq, r)
        # 2. attend inside each chosen block
        r = sel.shape[-1]
        flat = sel.reshape(b * h, nq * r)
        k_s = gather_rows(kb, flat).view(b, h, nq, r, bs, d)
        v_s = gather_rows(vb, flat).view(b, h, nq, r, bs, d)
        m_s = gather_rows(mb, flat).view(b, h, nq, r, bs)
        logits = torch.einsum("bhqd,bhqrsd->bhqrs", q, k_s) * scale
        w = masked_softmax(logits, m_s)  # (B, h, Nq, r, bs)
        o = torch.einsum("bhqrs,bhqrsd->bhqrd", w, v_s)
        o = (gate[..., None] * o).sum(3)  # (B, h, Nq, d)
        return self.out_proj(o.transpose(1, 2).reshape(b, nq, h * d))
