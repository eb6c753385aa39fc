"""Dispatch plans: which positions each attention module reads, as gather indices built once.

Shape glossary: N positions, A atoms, G groups (or calls) in a bucket, Q / K queries / keys per
group after padding, S coordinate axes (t, *spatial).

`plan_dispatch(topology, layout, share_params=..., fusable=...)` is the whole plan the
dispatcher (`nn/dispatcher.py`) executes, a pure function of the declaration: it never sees an
attention module, only, per attention type, whether the type declares itself fusable into one
softmax (`fusable[fn]`: "dot", "cosine" or None; the `softmax_fusion` class attribute of the
type's module class, read by the dispatcher). The plan is made of *units*: one attention module
and the connections it runs (all connections of a type when parameters are shared, one
connection otherwise).

- A softmax unit (fusable type) lowers its connections (`lowering.lower`) and splits the queries
  into *groups* of positions that see the same keys with the same weights (atoms with equal
  weight rows), so a group is one dense SDPA block; a dense topology is a single group. Its
  `FlexTables` hold the same unit for FlexAttention over the whole canvas.
- Any other unit runs *calls*: per connection and per src frame s, the dst frames that
  `frame_edges` pairs with s at fill weight 1 form one key set, and each dst frame with a fill
  weight < 1 (interpolation) forms its own; calls of one connection with the same key set and
  weight merge into one call (so a connection dense in time is one call, src region → dst).
- Mixing: a group carries the largest connection weight among its keys, a call its connection
  weight × fill weight; per type, a position's outputs are averaged with these weights (the
  per-type divisor `DispatchPlan.mix`), and the types are summed.

Groups and calls are then padded into a few *buckets* of similar size (sizes within 2× of each
other), so the hot path runs one batched module call per bucket and no loop over positions,
connections or frames.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass

import torch

from canvas_engineering.errors import bad
from canvas_engineering.lowering.masks import Lowering, frame_edges, lower
from canvas_engineering.lowering.sparse import csr
from canvas_engineering.spec.layout import CanvasLayout
from canvas_engineering.spec.topology import CanvasTopology, Connection

SOFTMAX_KINDS = ("dot", "cosine")


@dataclass
class Block:
    """One group (softmax) or call (other types) before padding.

    q: (Nq,) query positions; k: (Nk,) key positions; bias: (Nk,) log weight per key (softmax)
    or None; weight: the call's mixing weight (connection weight × fill weight; 1 for groups).
    """

    q: torch.Tensor
    k: torch.Tensor
    bias: torch.Tensor | None = None
    weight: float = 1.0


def softmax_blocks(low: Lowering) -> list[Block]:
    """Groups of a lowered softmax unit. A group's mixing weight is the largest connection
    weight among its keys (its queries all share one weight row). Read off the sparse atom
    pairs: O(pairs + N), no (A, A) matrix."""
    q, k, w = (t.tolist() for t in low.pairs)  # sorted by (query atom, key atom)
    counts = low.atom_counts
    rows: dict[tuple, list[int]] = {}  # (key atoms, weights) -> query atoms with that row
    i = 0
    while i < len(q):  # atom pairs, not positions
        j = i
        while j < len(q) and q[j] == q[i]:
            j += 1
        if counts[q[i]] > 0:
            rows.setdefault((tuple(k[i:j]), tuple(w[i:j])), []).append(q[i])
        i = j
    perm, start = csr(low.label, low.num_atoms)  # positions of each atom, ascending

    def positions(atoms, values=None):
        """Positions of `atoms`, ascending, and each one's atom value (or None)."""
        pos = torch.cat([perm[start[a]:start[a + 1]] for a in atoms])
        pos, sort = torch.sort(pos)
        if values is None:
            return pos, None
        per = torch.cat([torch.full((int(start[a + 1] - start[a]),), v)
                         for a, v in zip(atoms, values)])
        return pos, per[sort]

    blocks = []
    for (keys, weights), queries in rows.items():  # groups: at most one per atom
        kpos, kw = positions(keys, weights)
        blocks.append(Block(positions(queries)[0], kpos, kw.log(), float(max(weights))))
    return blocks


def _frame_positions(layout: CanvasLayout, name: str) -> dict[int, torch.Tensor]:
    """Positions of region `name` per canvas frame."""
    spec, idx = layout.region_spec(name), layout.region_index_tensor(name)
    per = spec.num_positions // len(spec.frames)
    return {f: idx[i * per:(i + 1) * per] for i, f in enumerate(spec.frames)}


def call_blocks(conn: Connection, layout: CanvasLayout) -> list[Block]:
    """The calls that execute connection `conn` for a non-softmax type (module docstring)."""
    fe = frame_edges(conn, layout)
    src, dst = _frame_positions(layout, conn.src), _frame_positions(layout, conn.dst)
    per_src: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for s, d, w in zip(fe.src_frame, fe.dst_frame, fe.weight):  # frame pairs, not positions
        per_src[s].append((d, w))
    merged: dict[tuple[tuple[int, ...], float], list[int]] = defaultdict(list)
    for s, pairs in per_src.items():
        full = tuple(d for d, w in pairs if w >= 1.0)
        if full:
            merged[full, 1.0].append(s)
        for d, w in pairs:
            if w < 1.0:
                merged[(d,), w].append(s)
    return [Block(torch.cat([src[s] for s in ss]), torch.cat([dst[d] for d in ds]),
                  weight=conn.weight * w) for (ds, w), ss in merged.items()]


@dataclass
class Bucket:
    """Blocks of similar size padded to one batch (G blocks).

    q_idx (G, Q) / k_idx (G, K): positions, padded by repeating the block's first query / key
    (so coordinates of padding stay inside the block's box); key_bias (G, K): log weight of real
    keys and -inf on padding, None when all zero (softmax) or unused; kv_mask (G, K) bool, None
    without key padding; q_weight (G, Q): normalised mixing weight, 0 on padded queries, None
    when every slot is a real query with weight exactly 1.
    """

    q_idx: torch.Tensor
    k_idx: torch.Tensor
    key_bias: torch.Tensor | None
    kv_mask: torch.Tensor | None
    q_weight: torch.Tensor | None


def _pad(rows: list[torch.Tensor], width: int, fill_first: bool, value=0) -> torch.Tensor:
    """Stack 1-D tensors, padding each to `width` with its first element or `value`."""
    out = []
    for r in rows:
        pad = r[:1].expand(width - len(r)) if fill_first else r.new_full((width - len(r),), value)
        out.append(torch.cat([r, pad]))
    return torch.stack(out)


def bucketize(blocks: list[Block], mix: torch.Tensor, softmax: bool) -> list[Bucket]:
    """Pad blocks into buckets; `mix` (N,) is the summed block weight of each position's type,
    so a block's query slot at position i gets weight block.weight / mix[i]."""
    by_size: dict[tuple[int, int], list[Block]] = defaultdict(list)
    for b in blocks:
        by_size[int(math.log2(len(b.q))), int(math.log2(len(b.k)))].append(b)
    buckets = []
    for group in by_size.values():
        Q, K = max(len(b.q) for b in group), max(len(b.k) for b in group)
        q_idx = _pad([b.q for b in group], Q, True)  # (G, Q)
        k_idx = _pad([b.k for b in group], K, True)  # (G, K)
        real_k = _pad([torch.ones(len(b.k), dtype=torch.bool) for b in group], K, False, False)
        real_q = _pad([torch.ones(len(b.q), dtype=torch.bool) for b in group], Q, False, False)
        w = torch.tensor([b.weight for b in group])[:, None] / mix[q_idx]  # (G, Q)
        w = torch.where(real_q, w, torch.zeros(()))
        bias = None
        if softmax:
            bias = _pad([b.bias for b in group], K, False, -math.inf)  # (G, K)
            if bool((bias == 0).all()):
                bias = None
        buckets.append(Bucket(q_idx, k_idx, bias, None if bool(real_k.all()) else real_k,
                              None if bool((w == 1).all()) else w))
    return buckets


@dataclass
class FlexTables:
    """One softmax unit as FlexAttention over the whole canvas, run in the lowering's execution
    order (`Lowering.order`: positions permuted so blocks are mostly full or empty).

    order (N,) long: canvas position of each execution slot; pos_w (N,): the unit's mixing
    weight at each canvas position; lowering: the unit's `Lowering`, whose
    `block_mask(order="execution", device=...)` and `lookup(log=True, device=...)` (the log
    weight of an atom pair, for the score) the executor builds once per device.
    """

    order: torch.Tensor
    pos_w: torch.Tensor
    lowering: Lowering

    @property
    def label(self) -> torch.Tensor:
        """(N,) atom of each canvas position."""
        return self.lowering.label

    @property
    def log_w(self) -> torch.Tensor:
        """(A, A) log connection weight between atoms, 0 where unconnected. Dense: O(A²)."""
        w = self.lowering.weight
        return torch.where(w > 0, w.log(), torch.zeros(()))


@dataclass
class UnitPlan:
    """One unit: the module of type `fn` running `connections` (indices into the topology).

    kind: "dot" / "cosine" for a fused softmax unit, None for a unit of module calls; inert: the
    type adds nothing (`none`), so the unit has no buckets; buckets: its padded groups or calls;
    flex: FlexAttention tables (softmax units only, else None).
    """

    fn: str
    connections: tuple[int, ...]
    kind: str | None
    inert: bool
    buckets: list[Bucket]
    flex: FlexTables | None


@dataclass
class DispatchPlan:
    """Everything the dispatcher executes, built once from (topology, layout).

    units: unit key ("fn", or "e{i}_fn" per connection i without shared parameters) -> plan, in
    execution order; mix: attention type -> (N,) summed mixing weight of its groups and calls at
    each position (the per-type divisor, 0 where the type reaches nothing); coords (N, S) long:
    canvas coordinates of every position, t first.
    """

    units: dict[str, UnitPlan]
    mix: dict[str, torch.Tensor]
    coords: torch.Tensor


def plan_dispatch(topology: CanvasTopology, layout: CanvasLayout, *, share_params: bool = True,
                  fusable: dict[str, str | None],
                  inert: Collection[str] = ("none",)) -> DispatchPlan:
    """The dispatch plan of `topology` on `layout` (rules in the module docstring).

    fusable: for every attention type the topology resolves to, "dot" / "cosine" when the type
    declares itself one softmax the executor may fuse, else None. inert: types whose edges add
    exactly zero; they get a unit (a module) but no work. Builds no module and no parameter.
    """
    topology.validate(layout)
    fns = [topology.resolve_fn(c, layout) for c in topology.connections]
    if not isinstance(fusable, dict):
        raise bad("fusable", fusable, "a dict of attention type -> 'dot' / 'cosine' / None")
    for fn in sorted(set(fns)):
        if fn not in fusable:
            raise bad("fusable", sorted(fusable), f"an entry for every type used, {fn!r} included")
        if fusable[fn] is not None and fusable[fn] not in SOFTMAX_KINDS:
            raise bad(f"fusable[{fn!r}]", fusable[fn], f"one of {list(SOFTMAX_KINDS)} or None")

    # 1. units: the connection indices each module runs
    members: dict[str, tuple[str, list[int]]] = {}
    for i, fn in enumerate(fns):
        key = fn if share_params else f"e{i}_{fn}"
        members.setdefault(key, (fn, []))[1].append(i)
    # 2. blocks per unit: query groups (softmax) or calls (others)
    blocks: dict[str, list[Block]] = {}
    lowerings: dict[str, Lowering] = {}
    for key, (fn, idx) in members.items():
        if fn in inert:
            continue  # contributes exactly zero, and only to its own type's average
        if fusable[fn]:
            low = lowerings[key] = lower(CanvasTopology([topology.connections[i] for i in idx]),
                                         layout)
            blocks[key] = softmax_blocks(low)
        else:
            blocks[key] = [b for i in idx for b in call_blocks(topology.connections[i], layout)]
    # 3. per-type mixing divisor
    N = layout.num_positions
    mix: dict[str, torch.Tensor] = {}
    for key, bl in blocks.items():
        m = mix.setdefault(members[key][0], torch.zeros(N))  # (N,)
        for b in bl:
            m.index_add_(0, b.q, torch.full((len(b.q),), b.weight))
    # 4. padded buckets, and the FlexAttention tables of softmax units
    units: dict[str, UnitPlan] = {}
    for key, (fn, idx) in members.items():
        if key not in blocks:
            units[key] = UnitPlan(fn, tuple(idx), None, True, [], None)
            continue
        kind, bl, mixer = fusable[fn], blocks[key], mix[fn]
        flex = None
        if kind:
            low, pos_w = lowerings[key], torch.zeros(N)  # (N,)
            for b in bl:
                pos_w[b.q] = b.weight / mixer[b.q]
            flex = FlexTables(low.order, pos_w, low)
        units[key] = UnitPlan(fn, tuple(idx), kind, False,
                              bucketize(bl, mixer, kind is not None), flex)
    grid = torch.meshgrid(*(torch.arange(s) for s in layout.shape), indexing="ij")
    coords = torch.stack(grid, -1).view(N, -1)  # (N, S)
    return DispatchPlan(units, mix, coords)
