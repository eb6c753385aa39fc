"""What every attention function type shares: the calling convention, input checks, head
splitting, and softmax helpers that stay finite when a query has no key to look at.

Shape glossary: B batch, Nq queries, Nk keys, D d_model, h heads, d = D / h head size,
A coordinate axes (t, h, w, ...).

The calling convention (one for all 18 types, so the dispatcher can treat them alike)::

    module(x_q, x_kv, *, q_coords=None, kv_coords=None, kv_mask=None, beta=1.0) -> (B, Nq, D)

x_q (B, Nq, D) are the connection's src positions (queries), x_kv (B, Nk, D) its dst positions
(keys and values). q_coords / kv_coords are (Nq, A) / (Nk, A) long grid coordinates, or batched
(B, Nq, A) / (B, Nk, A); the sequence order is t-major canvas order. kv_mask (B, Nk) bool marks
real keys (False = padding); padding never changes a real query's output, and a query with no
real key outputs zeros. beta multiplies the logits of types that have logits.

Fusion is declared, not guessed: a class sets `softmax_fusion` to "dot" (softmax of
q·k / sqrt(d)) or "cosine" (softmax of scale · cos(q, k)) to say the dispatcher may replace its
calls by ONE softmax over all of a unit's keys, computed from its `q_proj`, `kv_proj` and
`out_proj` (and `d_head` / `scale`) with plain SDPA. A subclass that overrides `project`,
`_attend` or `forward` in its own body without declaring `softmax_fusion` there gets None, so a
change to how q, k, v or the output are computed is never fused silently.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from canvas_engineering.errors import CanvasError, bad


def check_positive_int(field: str, value: object) -> int:
    """Return `value` if it is an int >= 1, else raise naming `field`."""
    if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
        raise bad(field, value, "a positive int")
    return int(value)


def check_positive_float(field: str, value: object) -> float:
    """Return `value` as a float if it is a finite real > 0, else raise naming `field`."""
    if not isinstance(value, Real) or isinstance(value, bool) or not 0 < value < math.inf:
        raise bad(field, value, "a finite number > 0")
    return float(value)


def _shape(x: object) -> object:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__


def check_coords(field: str, coords: torch.Tensor | None, batch: int, n: int) -> torch.Tensor | None:
    """Return coordinates as a (B, n, A) long tensor (or None), checking their shape."""
    if coords is None:
        return None
    if not isinstance(coords, torch.Tensor) or coords.dtype.is_floating_point \
            or coords.dtype == torch.bool or coords.dim() not in (2, 3):
        raise bad(field, _shape(coords), f"an integer tensor of shape ({n}, A) or ({batch}, {n}, A)")
    if coords.dim() == 2:
        coords = coords.unsqueeze(0).expand(batch, -1, -1)
    if coords.shape[:2] != (batch, n) or coords.shape[2] < 1:
        raise bad(field, _shape(coords), f"shape ({n}, A) or ({batch}, {n}, A) with A >= 1")
    return coords.long()


_FUSIONS = (None, "dot", "cosine")
_COMPUTE = ("project", "_attend", "forward")  # overriding any of these may change the output


class AttentionModule(nn.Module):
    """Base class: checks the calling convention, then calls `_attend` (subclasses).

    softmax_fusion: "dot" / "cosine" when the dispatcher may fuse the type into one softmax
    (module docstring), None otherwise; reset to None on subclasses that override `project`,
    `_attend` or `forward` without declaring it themselves.
    """

    softmax_fusion: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        own = vars(cls)
        if "softmax_fusion" not in own and any(name in own for name in _COMPUTE):
            cls.softmax_fusion = None  # changed computation, no declaration: never fused
        if cls.softmax_fusion not in _FUSIONS:
            raise bad(f"{cls.__qualname__}.softmax_fusion", cls.softmax_fusion,
                      f"one of {list(_FUSIONS)}")

    def __init__(self, d_model: int, n_heads: int = 4) -> None:
        super().__init__()
        self.d_model = check_positive_int("d_model", d_model)
        self.n_heads = check_positive_int("n_heads", n_heads)
        if d_model % n_heads:
            raise bad("d_model", d_model, f"a multiple of n_heads={n_heads}")
        self.d_head = d_model // n_heads

    def forward(self, x_q: torch.Tensor, x_kv: torch.Tensor, *,
                q_coords: torch.Tensor | None = None, kv_coords: torch.Tensor | None = None,
                kv_mask: torch.Tensor | None = None, beta: float = 1.0) -> torch.Tensor:
        """Args: x_q (B, Nq, D), x_kv (B, Nk, D); see the module docstring. Returns (B, Nq, D)."""
        d = self.d_model
        if not isinstance(x_q, torch.Tensor) or x_q.dim() != 3 or x_q.shape[-1] != d:
            raise bad("x_q", _shape(x_q), f"a tensor of shape (B, Nq, {d})")
        b, nq, _ = x_q.shape
        if not isinstance(x_kv, torch.Tensor) or x_kv.dim() != 3 or x_kv.shape[0] != b \
                or x_kv.shape[-1] != d:
            raise bad("x_kv", _shape(x_kv), f"a tensor of shape ({b}, Nk, {d})")
        nk = x_kv.shape[1]
        if kv_mask is not None and (not isinstance(kv_mask, torch.Tensor)
                                    or kv_mask.dtype != torch.bool
                                    or tuple(kv_mask.shape) != (b, nk)):
            raise bad("kv_mask", _shape(kv_mask), f"a bool tensor of shape ({b}, {nk})")
        if isinstance(beta, torch.Tensor):
            beta = float(beta)
        if not isinstance(beta, Real) or isinstance(beta, bool) or not math.isfinite(beta):
            raise bad("beta", beta, "a finite number")
        q_coords = check_coords("q_coords", q_coords, b, nq)
        kv_coords = check_coords("kv_coords", kv_coords, b, nk)
        if q_coords is not None and kv_coords is not None \
                and q_coords.shape[-1] != kv_coords.shape[-1]:
            raise CanvasError(f"q_coords has {q_coords.shape[-1]} axes but kv_coords has "
                              f"{kv_coords.shape[-1]}; expected the same number of axes")
        out = self._attend(x_q, x_kv, q_coords=q_coords, kv_coords=kv_coords, kv_mask=kv_mask,
                           beta=float(beta))
        if kv_mask is not None:  # a query whose keys are all padding outputs zeros
            out = out * kv_mask.any(dim=1).to(out.dtype)[:, None, None]
        return out

    def _attend(self, x_q, x_kv, *, q_coords, kv_coords, kv_mask, beta):  # pragma: no cover
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, n_heads={self.n_heads}"


def split_heads(x: torch.Tensor, h: int) -> torch.Tensor:
    """(B, N, h·d) -> (B, h, N, d)."""
    b, n, _ = x.shape
    return x.view(b, n, h, -1).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, h, N, d) -> (B, N, h·d)."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kv_mask: torch.Tensor | None,
         scale: float) -> torch.Tensor:
    """Softmax attention through `scaled_dot_product_attention`.

    q (B, h, Nq, d), k / v (B, h, Nk, d), kv_mask (B, Nk) or None. Rows of kv_mask with no real
    key are opened fully (so SDPA stays finite; the caller zeroes those queries).
    """
    mask = None
    if kv_mask is not None:
        safe = kv_mask | ~kv_mask.any(dim=1, keepdim=True)  # (B, Nk)
        mask = safe[:, None, None, :]  # (B, 1, 1, Nk)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)


def masked_softmax(logits: torch.Tensor, valid: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax over `dim` among `valid` entries; exactly 0 elsewhere and on rows with none."""
    filled = logits.masked_fill(~valid, torch.finfo(logits.dtype).min)
    # a finite fill keeps empty rows finite (uniform), then the product zeroes them
    return torch.softmax(filled, dim=dim) * valid.to(logits.dtype)


class QKVAttention(AttentionModule):
    """Softmax attention with learned q, k, v and output projections (the standard type).

    Its computation is exactly the dispatcher's fused "dot" path; subclasses keep that
    declaration unless they override `project`, `_attend` or `forward`.
    """

    softmax_fusion = "dot"

    def __init__(self, d_model: int, n_heads: int = 4, *, bias: bool = True) -> None:
        super().__init__(d_model, n_heads)
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.kv_proj = nn.Linear(d_model, 2 * d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def project(self, x_q: torch.Tensor, x_kv: torch.Tensor):
        """Return q (B, h, Nq, d), k (B, h, Nk, d), v (B, h, Nk, d)."""
        h = self.n_heads
        k, v = self.kv_proj(x_kv).chunk(2, dim=-1)
        return split_heads(self.q_proj(x_q), h), split_heads(k, h), split_heads(v, h)

    def _attend(self, x_q, x_kv, *, q_coords, kv_coords, kv_mask, beta):
        q, k, v = self.project(x_q, x_kv)
        o = sdpa(q, k, v, kv_mask, scale=beta / math.sqrt(self.d_head))  # (B, h, Nq, d)
        return self.out_proj(merge_heads(o))
