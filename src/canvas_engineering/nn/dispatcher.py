"""AttentionDispatcher: execute a canvas topology as one attention layer.

Shape glossary: B batch, N positions, D d_model, h heads, d = D / h head size, G groups (or
calls) in a bucket, Q / K queries / keys per group, S coordinate axes (t, *spatial).

Every connection is its own operation, with its own offsets and fill mode, executed exactly as
`lowering.frame_edges` / `lowering.lower` define it (two connections that differ only in
offsets stay two operations). The plan is built once, with no module in sight, by
`lowering.dispatch_plan.plan_dispatch`; this module validates the arguments, creates one
attention module per unit, registers the plan's tensors as (non-persistent) buffers and runs
them. How the incoming edges of a position combine:

1. Each connection resolves to an attention type (`CanvasTopology.resolve_fn`). A *unit* is one
   module and the connections it runs: one unit per type when `share_params=True` (default),
   one per connection otherwise.
2. Softmax units (types whose module class declares `softmax_fusion` "dot" or "cosine":
   `cross_attention`, `self_attention`, `cogvideox`, `cosine_attention`; a subclass that
   overrides `project`, `_attend` or `forward` without declaring it again is not fused) give
   each query ONE softmax over the union of the unit's keys, with additive bias
   log(connection weight × fill weight) (max over connections on a shared pair): exactly
   `scaled_dot_product_attention` with the unit's `additive_mask`, using the module's q_proj,
   kv_proj and out_proj. So a dense topology of cross_attention is an ordinary attention layer.
3. Other units run *calls* (see `dispatch_plan`): per connection and src frame, the module reads
   the dst frames at fill weight 1 as one key set, and each interpolated dst frame separately.
4. Mixing: a softmax unit's output at a query carries weight ω = the largest weight among its
   keys; a call carries connection weight × fill weight. The outputs of one type are averaged
   with these weights per query; the results of the different types are summed.
5. A position that no edge of a type reaches gets zero from that type; a position with no
   incoming edge at all gets a zero update. `none` edges are skipped (they add zero).

`positions` runs the layer on part of the canvas: x holds only those positions (in that order),
which must include every position an edge reads or writes. Positions in no region, which no
edge touches, then cost nothing (the robot canvas: 134 of its 320 positions).

Execution: softmax units on CPU gather each bucket of query groups with their key sets and call
SDPA once per bucket (a dense topology is one call); on CUDA (or `backend="flex"`) they run
FlexAttention with the lowering's `BlockMask` and a score_mod adding log weights. Other units
run one batched module call per bucket.
"""

from __future__ import annotations

import dataclasses
import math
from numbers import Integral

import torch
import torch.nn.functional as F
from torch import nn

from canvas_engineering.attention import NoneAttention, create_attention, get_attention_class
from canvas_engineering.errors import bad
from canvas_engineering.lowering.dispatch_plan import Bucket, plan_dispatch
from canvas_engineering.spec.layout import CanvasLayout
from canvas_engineering.spec.topology import CanvasTopology

_BACKENDS = ("auto", "sdpa", "flex")
_compiled_flex = None


def softmax_kind(module: nn.Module | type) -> str | None:
    """The `softmax_fusion` a module (or module class) declares: 'dot' / 'cosine' when the
    dispatcher may fuse it into one softmax, else None (classes that declare nothing)."""
    cls = module if isinstance(module, type) else type(module)
    return getattr(cls, "softmax_fusion", None)


def _gather(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """t (B, N, ...), idx (G, n) -> (B, G, n, ...). index_select, not t[:, idx]: its backward
    is an index_add, where advanced indexing's is a far slower accumulating index_put on CPU."""
    return t.index_select(1, idx.reshape(-1)).view(t.shape[0], *idx.shape, *t.shape[2:])


def _heads_by_group(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """t (B, N, h, d), idx (G, n) -> (G·B, h, n, d): groups become SDPA batch rows."""
    return _gather(t, idx).permute(1, 0, 3, 2, 4).flatten(0, 1)


def _rows_by_group(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """t (B, N, ...), idx (G, n) -> (G·B, n, ...): calls become module batch rows."""
    return _gather(t, idx).transpose(0, 1).flatten(0, 1)


# A softmax unit runs as one masked SDPA over the canvas when N is at most this and its groups
# would gather at least N² / MASKED_WORK_DIVISOR (query, key) pairs, unless it is one group of
# every position (already one unmasked SDPA). Measured on 2 CPU cores: the robot canvas's world
# model (N = 320, five groups) trains ~1.3× faster this way, while at N = 2,048 gathering wins
# from density 1/2 down.
MASKED_MAX_N = 1024
MASKED_WORK_DIVISOR = 4


def _prefers_mask(unit, N: int) -> bool:
    b = unit.buckets
    if len(b) == 1 and b[0].q_idx.numel() == N and b[0].k_idx.numel() == N \
            and b[0].key_bias is None:
        return False  # the whole canvas reads the whole canvas: no mask needed
    work = sum(bk.q_idx.numel() * bk.k_idx.shape[1] for bk in b)  # G·Q·K per bucket
    return N <= MASKED_MAX_N and work * MASKED_WORK_DIVISOR >= N * N


def _zeros_if_none(out: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """The running output (B, N, D), or zeros like x when no unit has written it yet."""
    return torch.zeros_like(like) if out is None else out


def position_ranks(positions: torch.Tensor | None, N: int) -> torch.Tensor | None:
    """(N,) the index in a stream holding `positions` (strictly increasing canvas indices) of
    each of the N canvas positions, -1 where it is not held; None for positions=None (all N)."""
    if positions is None:
        return None
    ok = isinstance(positions, torch.Tensor) and positions.dim() == 1 and len(positions) > 0 \
        and not positions.is_floating_point() and bool((positions[1:] > positions[:-1]).all()) \
        and 0 <= int(positions[0]) and int(positions[-1]) < N
    if not ok:
        shown = positions
        if isinstance(positions, torch.Tensor) and positions.numel() > 8:  # one line, not 300
            shown = f"{positions.flatten()[:8].tolist()}... ({positions.numel()} values)"
        raise bad("positions", shown, f"a non-empty 1-D integer tensor of canvas indices in "
                  f"[0, {N}), strictly increasing")
    rank = torch.full((N,), -1, dtype=torch.long)
    rank[positions] = torch.arange(len(positions))
    return rank


def _held(bucket: Bucket, rank: torch.Tensor | None, key: str) -> Bucket:
    """The bucket with its positions renumbered as indices into x (`rank`)."""
    if rank is None:
        return bucket
    q, k = rank[bucket.q_idx], rank[bucket.k_idx]
    if bool((q < 0).any()) or bool((k < 0).any()):
        missing = torch.cat([bucket.q_idx[q < 0], bucket.k_idx[k < 0]]).unique()
        raise bad("positions", f"{len(rank) - int((rank < 0).sum())} positions", f"every "
                  f"position the topology reads or writes; unit {key!r} uses canvas positions "
                  f"{missing[:8].tolist()} that are not among them")
    return dataclasses.replace(bucket, q_idx=q, k_idx=k)


class _Buffers(nn.Module):
    """Holds one bucket's index tensors as (non-persistent) buffers, so `.to()` moves them."""

    def __init__(self, bucket: Bucket) -> None:
        super().__init__()
        for name, t in vars(bucket).items():
            self.register_buffer(name, t, persistent=False)


class AttentionDispatcher(nn.Module):
    """Runs `topology` on `layout` as an attention layer (rules in the module docstring).

    Args:
        topology, layout: the declaration; the topology is validated against the layout.
        d_model, n_heads: width (must equal `layout.d_model`) and heads of every module.
        share_params: one module per attention type (True) or per connection (False).
        options: per-type keyword options for `create_attention`, e.g. {"perceiver":
            {"n_latents": 4}}; keys must be types the topology uses.
        backend: "auto" (FlexAttention on CUDA, SDPA otherwise), "sdpa" or "flex".
        positions: (M,) canvas indices, strictly increasing, that x holds (default: all N);
            every position an edge reads or writes must be among them.
    """

    def __init__(self, topology: CanvasTopology, layout: CanvasLayout, d_model: int,
                 n_heads: int, *, share_params: bool = True,
                 options: dict[str, dict] | None = None, backend: str = "auto",
                 positions: torch.Tensor | None = None) -> None:
        super().__init__()
        for name, v in (("d_model", d_model), ("n_heads", n_heads)):
            if not isinstance(v, Integral) or isinstance(v, bool) or v < 1:
                raise bad(name, v, "a positive int")
        if d_model % n_heads:
            raise bad("d_model", d_model, f"a multiple of n_heads={n_heads}")
        if not isinstance(share_params, bool):
            raise bad("share_params", share_params, "a bool")
        if backend not in _BACKENDS:
            raise bad("backend", backend, f"one of {list(_BACKENDS)}")
        if not isinstance(topology, CanvasTopology):
            raise bad("topology", type(topology).__name__, "a CanvasTopology")
        if not isinstance(layout, CanvasLayout):
            raise bad("layout", type(layout).__name__, "a CanvasLayout")
        if d_model != layout.d_model:  # x is (B, N, layout.d_model): modules must match it
            raise bad("d_model", d_model, f"the layout's d_model={layout.d_model}")
        topology.validate(layout)
        self.layout, self.topology = layout, topology
        self.d_model, self.n_heads, self.backend = int(d_model), int(n_heads), backend
        self.num_positions = N = layout.num_positions
        fns = [topology.resolve_fn(c, layout) for c in topology.connections]
        options = {} if options is None else options
        if not isinstance(options, dict):
            raise bad("options", options, "a dict of attention type -> dict of options")
        for fn, opts in options.items():
            if fn not in fns:
                raise bad("options", fn, f"a type the topology uses, one of {sorted(set(fns))}")
            if not isinstance(opts, dict):
                raise bad(f"options[{fn!r}]", opts, "a dict of keyword options")

        classes = {fn: get_attention_class(fn) for fn in dict.fromkeys(fns)}
        plan = plan_dispatch(topology, layout, share_params=share_params,
                             fusable={fn: softmax_kind(c) for fn, c in classes.items()},
                             inert={fn for fn, c in classes.items() if issubclass(c, NoneAttention)})
        rank = position_ranks(positions, N)  # (N,) index in x of each canvas position, -1: absent
        self.attn = nn.ModuleDict({key: create_attention(u.fn, d_model, n_heads,
                                                         **options.get(u.fn, {}))
                                   for key, u in plan.units.items()})
        self._kind = {key: u.kind for key, u in plan.units.items() if not u.inert}
        self._lowering = {key: u.flex.lowering for key, u in plan.units.items() if u.flex}
        self.plans = nn.ModuleDict()  # unit key -> its buckets (and FlexAttention tables)
        for key in self._kind:
            unit = plan.units[key]
            buckets = [_held(bk, rank, key) for bk in unit.buckets]
            self.plans[key] = nn.ModuleList(_Buffers(bk) for bk in buckets)
            if unit.flex:  # order (N,): the execution order; pos_w (N,): mixing weights
                self.plans[key].register_buffer("order", unit.flex.order, persistent=False)
                self.plans[key].register_buffer("pos_w", unit.flex.pos_w, persistent=False)
        # Softmax units whose groups would gather about as many (query, key) pairs as the whole
        # canvas holds run as ONE SDPA call over every position with the unit's (N, N)
        # additive mask: no gathers or scatters, which cost more than the masked-out scores on
        # small canvases (the robot canvas: N = 320). Built lazily, per device and dtype.
        M = N if positions is None else len(positions)
        self._masked = {key for key, u in plan.units.items() if u.flex and _prefers_mask(u, M)}
        # (key, device, dtype) -> (additive mask (M, M), mixing weights (M, 1))
        self._dense_masks: dict[tuple[str, str, torch.dtype], tuple[torch.Tensor, ...]] = {}
        self.num_held = M  # positions x holds
        held = torch.arange(N) if positions is None else positions
        self.register_buffer("held", None if positions is None else held, persistent=False)
        self.register_buffer("coords", plan.coords[held], persistent=False)  # (M, S), t first
        self._block_masks: dict[tuple[str, str], object] = {}

    # -- softmax units --------------------------------------------------------------------------

    def _qkv(self, key: str, x: torch.Tensor):
        """Head-split projections of every position: q, k, v each (B, N, h, d)."""
        m, (b, n, _) = self.attn[key], x.shape
        bias = None if m.q_proj.bias is None or m.kv_proj.bias is None else \
            torch.cat([m.q_proj.bias, m.kv_proj.bias])
        if bias is None and (m.q_proj.bias is not None or m.kv_proj.bias is not None):
            q, kv = m.q_proj(x), m.kv_proj(x)
        else:  # one matmul for q, k and v: (B, N, 3D)
            q, kv = F.linear(x, torch.cat([m.q_proj.weight, m.kv_proj.weight]), bias) \
                .split([self.d_model, 2 * self.d_model], dim=-1)
        k, v = kv.chunk(2, dim=-1)
        q, k, v = (t.reshape(b, n, self.n_heads, -1) for t in (q, k, v))
        if self._kind[key] == "cosine":
            q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        return q, k, v

    def _scale(self, key: str, beta: float) -> float:
        m = self.attn[key]
        return beta * m.scale if self._kind[key] == "cosine" else beta / math.sqrt(m.d_head)

    def _softmax_sdpa(self, key: str, x: torch.Tensor, out: torch.Tensor, beta: float):
        """One SDPA call per bucket of query groups; adds the weighted unit output to `out`."""
        q, k, v = self._qkv(key, x)
        B, D, h = x.shape[0], self.d_model, self.n_heads
        out = _zeros_if_none(out, x)
        for bk in self.plans[key]:
            G, Q = bk.q_idx.shape
            K = bk.k_idx.shape[1]

            mask = None
            if bk.key_bias is not None:  # (G, K) -> (G·B, 1, 1, K), shared by a group's queries
                mask = bk.key_bias.to(x.dtype)[:, None, None, None].expand(G, B, 1, 1, K)
                mask = mask.reshape(G * B, 1, 1, K)
            o = F.scaled_dot_product_attention(_heads_by_group(q, bk.q_idx),
                                               _heads_by_group(k, bk.k_idx),
                                               _heads_by_group(v, bk.k_idx), attn_mask=mask,
                                               scale=self._scale(key, beta))  # (G·B, h, Q, d)
            o = o.view(G, B, h, Q, -1).permute(1, 0, 3, 2, 4).reshape(B, G * Q, D)
            out = self._accumulate(out, self.attn[key].out_proj(o), bk)
        return out

    def _softmax_flex(self, key: str, x: torch.Tensor, out: torch.Tensor, beta: float):
        """FlexAttention over the whole canvas with the unit's BlockMask and log-weight bias.

        Runs in the lowering's execution order (positions permuted so that blocks are mostly
        full or empty): x is gathered into it here and the output scattered back, so callers
        see canvas order only. On part of the canvas (`positions`), the others hold zeros: no
        edge reads them, and their outputs are dropped."""
        if self.held is not None:
            full = x.new_zeros(x.shape[0], self.layout.num_positions, x.shape[2])
            full = full.index_copy(1, self.held, x)  # (B, canvas N, D)
            part = self._softmax_flex_canvas(key, full, beta).index_select(1, self.held)
            return part if out is None else out + part
        return _zeros_if_none(out, x) + self._softmax_flex_canvas(key, x, beta)

    def _softmax_flex_canvas(self, key: str, x: torch.Tensor, beta: float) -> torch.Tensor:
        """The flex unit's weighted output (B, N, D) on the whole canvas x (B, N, D)."""
        from torch.nn.attention.flex_attention import flex_attention

        global _compiled_flex
        plan, dev = self.plans[key], x.device
        if (key, str(dev)) not in self._block_masks:  # built once per device
            low = self._lowering[key]
            self._block_masks[key, str(dev)] = (
                low.block_mask(order="execution", device=dev),
                low.label[low.order].to(dev), low.lookup(0.0, log=True, device=dev))
        block_mask, label, log_w = self._block_masks[key, str(dev)]

        def score_mod(score, b, h, q_idx, kv_idx):
            return score + log_w(label[q_idx], label[kv_idx])

        fn = flex_attention
        if x.is_cuda:  # eager flex is a slow reference implementation; compile once
            _compiled_flex = _compiled_flex or torch.compile(flex_attention, dynamic=False)
            fn = _compiled_flex
        xe = x.index_select(1, plan.order)  # (B, N, D) in execution order
        q, k, v = (t.transpose(1, 2) for t in self._qkv(key, xe))  # (B, h, N, d)
        o = fn(q, k, v, score_mod=score_mod, block_mask=block_mask,
               scale=self._scale(key, beta))  # (B, h, N, d)
        y = self.attn[key].out_proj(o.transpose(1, 2).reshape(x.shape))  # (B, N, D)
        w = plan.pos_w.index_select(0, plan.order).to(y.dtype)  # (N,) in execution order
        return torch.zeros_like(x).index_add(1, plan.order, y * w[:, None])

    def _softmax_masked(self, key: str, x: torch.Tensor, out: torch.Tensor, beta: float):
        """One SDPA call over the whole canvas with the unit's additive mask (rows with no key
        attend anywhere and are weighted 0 by pos_w, which avoids all -inf rows)."""
        plan, B, N, D = self.plans[key], *x.shape  # N: the positions x holds
        cache = (key, str(x.device), x.dtype)
        if cache not in self._dense_masks:
            mask = self._lowering[key].additive_mask()  # (canvas N, canvas N)
            pos_w = plan.pos_w.cpu()  # (canvas N,)
            mask[pos_w == 0] = 0.0
            if self.held is not None:
                held = self.held.cpu()
                mask, pos_w = mask[held][:, held], pos_w[held]  # (N, N), (N,)
            self._dense_masks[cache] = (mask.to(x.device, x.dtype),
                                        pos_w.to(x.device, x.dtype)[:, None])  # (N, 1)
        mask, w = self._dense_masks[cache]
        q, k, v = (t.transpose(1, 2) for t in self._qkv(key, x))  # (B, h, N, d)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           scale=self._scale(key, beta))  # (B, h, N, d)
        y = self.attn[key].out_proj(o.transpose(1, 2).reshape(B, N, D))
        return y * w if out is None else torch.addcmul(out, y, w)

    # -- other units ----------------------------------------------------------------------------

    def _calls(self, key: str, x: torch.Tensor, out: torch.Tensor, beta: float):
        """One batched module call per bucket of calls; adds the weighted outputs to `out`."""
        B, D = x.shape[0], self.d_model
        out = _zeros_if_none(out, x)
        for bk in self.plans[key]:
            G, Q = bk.q_idx.shape
            K = bk.k_idx.shape[1]

            coords = self.coords.expand(B, -1, -1)
            kv_mask = None if bk.kv_mask is None else \
                bk.kv_mask[:, None].expand(G, B, K).reshape(G * B, K)
            y = self.attn[key](_rows_by_group(x, bk.q_idx), _rows_by_group(x, bk.k_idx),
                               q_coords=_rows_by_group(coords, bk.q_idx),
                               kv_coords=_rows_by_group(coords, bk.k_idx), kv_mask=kv_mask,
                               beta=beta)  # (G·B, Q, D)
            out = self._accumulate(out, y.view(G, B, Q, D).transpose(0, 1).reshape(B, G * Q, D),
                                   bk)
        return out

    @staticmethod
    def _accumulate(out: torch.Tensor, y: torch.Tensor, bk: nn.Module) -> torch.Tensor:
        """out (B, N, D) + y (B, G·Q, D) weighted by the bucket's q_weight, added at q_idx."""
        if bk.q_weight is not None:
            y = y * bk.q_weight.reshape(-1).to(y.dtype)[None, :, None]
        return out.index_add(1, bk.q_idx.reshape(-1), y)

    # -- forward --------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
        """Args: x (B, N, D) canvas states; beta: logit sharpening for types with logits.

        Returns (B, N, D): the attention update of every position (zero where nothing flows in).
        """
        N, D = self.num_held, self.d_model
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or tuple(x.shape[1:]) != (N, D):
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise bad("x", shape, f"a tensor of shape (B, {N}, {D}) (B, positions, d_model)")
        if isinstance(beta, torch.Tensor):
            beta = float(beta)
        if not isinstance(beta, (int, float)) or isinstance(beta, bool) or not math.isfinite(beta):
            raise bad("beta", beta, "a finite number")
        use_flex = self.backend == "flex" or (self.backend == "auto" and x.is_cuda)
        out = None  # the first unit writes it (a masked unit without a zero-filled canvas)
        for key, kind in self._kind.items():  # units, a handful: not positions or frames
            if kind is None:
                out = self._calls(key, x, out, float(beta))
            elif use_flex:
                out = self._softmax_flex(key, x, out, float(beta))
            elif key in self._masked:
                out = self._softmax_masked(key, x, out, float(beta))
            else:
                out = self._softmax_sdpa(key, x, out, float(beta))
        return torch.zeros_like(x) if out is None else out

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, n_heads={self.n_heads}, units={len(self.attn)}, "
                f"connections={len(self.topology.connections)}, backend={self.backend!r}")


__all__ = ["AttentionDispatcher", "position_ranks", "softmax_kind"]
