"""Dispatch plans: which positions each attention module reads, as gather indices built once.

Shape glossary: N positions, A atoms, G groups (or calls) in a bucket, Q / K queries / keys per
group after padding, S coordinate axes (t, *spatial).

The dispatcher (`dispatcher.py`) executes *units*: one attention module and the connections it
runs (all connections of a type when parameters are shared, one connection otherwise).

- A softmax unit lowers its connections (`lowering.lower`) and splits the queries into *groups*
  of positions that see the same keys with the same weights (atoms with equal weight rows), so
  a group is one dense SDPA block; a dense topology is a single group.
- Any other unit runs *calls*: per connection and per src frame s, the dst frames that
  `frame_edges` pairs with s at fill weight 1 form one key set, and each dst frame with a fill
  weight < 1 (interpolation) forms its own; calls of one connection with the same key set and
  weight merge into one call (so a connection dense in time is one call, src region → dst).

Groups and calls are then padded into a few *buckets* of similar size (sizes within 2× of each
other), so the hot path runs one batched module call per bucket and no loop over positions,
connections or frames.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import torch

from canvas_engineering.lowering.masks import Lowering, frame_edges
from canvas_engineering.spec.layout import CanvasLayout
from canvas_engineering.spec.topology import Connection


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
    weight among its keys (its queries all share one weight row)."""
    W, label = low.weight, low.label  # (A, A), (N,)
    live = (W > 0).any(1) & (low.atom_counts > 0)  # (A,) atoms that are queries with keys
    rows, group_of = torch.unique(W[live], dim=0, return_inverse=True)  # one group per key set
    atoms = torch.nonzero(live).squeeze(1)
    atom_group = torch.full((W.shape[0],), -1, dtype=torch.long)
    atom_group[atoms] = group_of
    pos_group = atom_group[label]  # (N,) group of each position, -1 = no key
    blocks = []
    for g, row in enumerate(rows):  # groups, not positions: at most one per atom
        k = torch.nonzero(row[label] > 0).squeeze(1)
        blocks.append(Block(torch.nonzero(pos_group == g).squeeze(1), k, row[label[k]].log(),
                            float(row.max())))
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
