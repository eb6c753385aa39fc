"""Canvas Attention: how the glimpse stream and the canvas exchange information.

A read lets glimpse tokens query the canvas; a write lets canvas cells query the glimpse tokens.
Both compute at the canvas width Dc with `n_heads` heads of size Dc / n_heads, after a LayerNorm
on each side and scene-relative RoPE on the positioned tokens. The canvas side has no learned
projection ("asymmetric"): only LayerNorm, RoPE and softmax touch it, so a read/write costs
O(N_canvas · Dc), never O(N_canvas · Dc²). `projections="qkvo"` is the ablation that adds the
canvas-side maps too.

| map    | read (query = glimpse, D)  | write (query = canvas, Dc) |
|--------|----------------------------|----------------------------|
| q_map  | Linear D→Dc                | identity (qkvo: Dc→Dc)     |
| k_map  | identity (qkvo: Dc→Dc)     | Linear D→Dc                |
| v_map  | identity (qkvo: Dc→Dc)     | Linear D→Dc                |
| o_map  | Linear Dc→D                | identity (qkvo: Dc→Dc)     |

Registered as attention types `canvas_read` and `canvas_write`. They follow the library's
calling convention `cls(d_model, n_heads, **options)` and
`forward(x_q, x_kv, *, q_coords=None, kv_coords=None, kv_mask=None, beta=1.0)`, plus:
the option `kv_dim` (the key/value width when it differs from d_model), and the keyword
arguments `q_pos` / `kv_pos`: scene positions (B, N, 2) or (N, 2) (row, col) of the LAST N
tokens of each side, or a ready `RopeTable`. Tokens before those (CLS, registers, viewpoint
token) are not rotated. Without positions, integer grid coordinates from the dispatcher
(q_coords / kv_coords, last two axes = row, col) are placed at `cell_size` scene units per cell.
Each call returns the residual (B, Nq, d_model) to add to the query stream.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from canvas_engineering.attention import register_attention
from canvas_engineering.canvit.rope import RopeTable, apply_rope, rope_periods, rope_table
from canvas_engineering.errors import bad, check_choice, check_int

PROJECTIONS = ("asymmetric", "qkvo")


def split_heads(x: torch.Tensor, h: int) -> torch.Tensor:
    """(B, N, h·d) -> (B, h, N, d), contiguous slices per head."""
    b, n, _ = x.shape
    return x.view(b, n, h, -1).transpose(1, 2)


class CanvasAttention(nn.Module):
    """Shared body of read and write; `canvas_is_query` says which side is the canvas."""

    canvas_is_query: bool = False
    softmax_fusion = None  # never fused by the dispatcher: the rotation is not in q/k projections

    def __init__(self, d_model: int, n_heads: int = 1, *, kv_dim: int | None = None,
                 projections: str = "asymmetric", rope_base: float = 100.0,
                 cell_size: float = 0.125) -> None:
        super().__init__()
        self.d_model = check_int("d_model", d_model, 1)
        self.kv_dim = check_int("kv_dim", d_model if kv_dim is None else kv_dim, 1)
        self.n_heads = check_int("n_heads", n_heads, 1)
        self.projections = check_choice("projections", projections, PROJECTIONS)
        canvas = self.d_model if self.canvas_is_query else self.kv_dim
        glimpse = self.kv_dim if self.canvas_is_query else self.d_model
        if canvas % n_heads or (canvas // n_heads) % 4:
            raise bad("canvas width", canvas, f"a multiple of 4·n_heads = {4 * n_heads}")
        self.canvas_dim, self.head_dim = canvas, canvas // n_heads
        self.rope_base, self.cell_size = float(rope_base), float(cell_size)
        self.ln_q = nn.LayerNorm(self.d_model)
        self.ln_kv = nn.LayerNorm(self.kv_dim)
        full = projections == "qkvo"
        if self.canvas_is_query:  # write: glimpse-side key/value maps
            self.q_map = nn.Linear(canvas, canvas) if full else nn.Identity()
            self.k_map = nn.Linear(glimpse, canvas)
            self.v_map = nn.Linear(glimpse, canvas)
            self.o_map = nn.Linear(canvas, canvas) if full else nn.Identity()
        else:  # read: glimpse-side query/output maps
            self.q_map = nn.Linear(glimpse, canvas)
            self.k_map = nn.Linear(canvas, canvas) if full else nn.Identity()
            self.v_map = nn.Linear(canvas, canvas) if full else nn.Identity()
            self.o_map = nn.Linear(canvas, glimpse)

    def _table(self, pos, coords, n: int) -> RopeTable | None:
        if isinstance(pos, RopeTable):
            return pos
        if pos is None and coords is not None:
            pos = coords[..., -2:].float() * self.cell_size  # (…, N, 2) grid cells → scene units
        if pos is None:
            return None
        if not isinstance(pos, torch.Tensor) or not pos.dtype.is_floating_point \
                or pos.shape[-1] != 2 or pos.shape[-2] > n:
            raise bad("positions", tuple(getattr(pos, "shape", ())),
                      f"a float tensor (B, N, 2) or (N, 2) with N <= {n}")
        return rope_table(pos, rope_periods(self.head_dim, self.rope_base, pos.device))

    def forward(self, x_q: torch.Tensor, x_kv: torch.Tensor, *, q_coords=None, kv_coords=None,
                kv_mask=None, beta: float = 1.0, q_pos=None, kv_pos=None) -> torch.Tensor:
        """x_q (B, Nq, d_model), x_kv (B, Nk, kv_dim) -> residual (B, Nq, d_model)."""
        for name, x, width in (("x_q", x_q, self.d_model), ("x_kv", x_kv, self.kv_dim)):
            if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != width:
                raise bad(name, tuple(getattr(x, "shape", ())), f"a tensor (B, N, {width})")
        h = self.n_heads
        q = split_heads(self.q_map(self.ln_q(x_q)), h)  # (B, h, Nq, d)
        kv = self.ln_kv(x_kv)  # (B, Nk, kv_dim)
        k = split_heads(self.k_map(kv), h)  # (B, h, Nk, d)
        v = split_heads(self.v_map(kv), h)  # (B, h, Nk, d); values are never rotated
        q_table = self._table(q_pos, q_coords, x_q.shape[1])
        kv_table = self._table(kv_pos, kv_coords, x_kv.shape[1])
        if q_table is not None:
            q = apply_rope(q, q_table)
        if kv_table is not None:
            k = apply_rope(k, kv_table)
        mask = None
        if kv_mask is not None:
            mask = (kv_mask | ~kv_mask.any(1, keepdim=True))[:, None, None, :]  # (B, 1, 1, Nk)
        out = F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype), attn_mask=mask,
                                             scale=beta / self.head_dim ** 0.5)  # (B, h, Nq, d)
        out = self.o_map(out.transpose(1, 2).flatten(2))  # (B, Nq, d_model)
        if kv_mask is not None:
            out = out * kv_mask.any(1).to(out.dtype)[:, None, None]
        return out

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, kv_dim={self.kv_dim}, n_heads={self.n_heads}, "
                f"projections={self.projections!r}")


@register_attention("canvas_read", family="canvas", complexity="O(Nq·Nk·Dc)")
class CanvasRead(CanvasAttention):
    """Glimpse tokens (queries, width d_model) read the canvas (keys/values, width kv_dim)."""

    canvas_is_query = False


@register_attention("canvas_write", family="canvas", complexity="O(Nq·Nk·Dc)")
class CanvasWrite(CanvasAttention):
    """Canvas cells (queries, width d_model) write from the glimpse tokens (width kv_dim)."""

    canvas_is_query = True
