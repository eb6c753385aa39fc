"""Brute-force reference lowering, written from the rule text (PRODUCT.md §3.7) and nothing else:
it loops over every (query, key) position pair and every reference frame."""

from __future__ import annotations

import itertools

import torch


def position_frame(layout, name, i):
    """Canvas frame of position i if it lies in region `name`, else None."""
    coords = []
    for size in reversed(layout.shape):
        coords.append(i % size)
        i //= size
    coords = coords[::-1]  # (t, *spatial)
    b = layout.regions[name].bounds
    inside = all(b[2 * a] <= c < b[2 * a + 1] for a, c in enumerate(coords))
    return coords[0] if inside else None


def fill_weight(conn, layout, real_t, dst_frame):
    """Weight with which dst canvas frame `dst_frame` answers a request for real time real_t."""
    dst = layout.regions[conn.dst]
    p = dst.period
    updates = {f: f * p for f in range(dst.bounds[0], dst.bounds[1])}
    if real_t in updates.values():
        return 1.0 if updates[dst_frame] == real_t else 0.0
    mode = conn.temporal_fill.name
    if mode == "DROP":
        return 0.0
    if mode == "HOLD":
        before = [f for f, u in updates.items() if u <= real_t]
        return 1.0 if before and dst_frame == max(before) else 0.0
    lo, hi = min(updates.values()), max(updates.values())
    if real_t < lo:
        return 1.0 if updates[dst_frame] == lo else 0.0
    if real_t > hi:
        return 1.0 if updates[dst_frame] == hi else 0.0
    n = conn.interpolation_order
    ranked = sorted(updates, key=lambda f: (abs(updates[f] - real_t), f))[: n + 1]
    if dst_frame not in ranked:
        return 0.0
    total = sum(abs(updates[f] - real_t) ** -n for f in ranked)
    return abs(updates[dst_frame] - real_t) ** -n / total


def frame_pair_weight(conn, layout, ts, td):
    """Largest weight over reference frames with which src frame ts links dst frame td."""
    if conn.t_src is None and conn.t_dst is None:
        return 1.0
    p_src = layout.regions[conn.src].period
    best = 0.0
    for ref in range(layout.T):
        if conn.t_src is not None and (not 0 <= ref + conn.t_src < layout.T
                                       or ref + conn.t_src != ts):
            continue
        if conn.t_dst is None:
            best = max(best, 1.0)
            continue
        d = ref + conn.t_dst
        if not 0 <= d < layout.T:
            continue
        best = max(best, fill_weight(conn, layout, d * p_src, td))
    return best


def reference_mask(topology, layout) -> torch.Tensor:
    N = layout.num_positions
    mask = torch.zeros(N, N, dtype=torch.float64)
    for conn in topology.connections:
        for i, j in itertools.product(range(N), range(N)):
            ts = position_frame(layout, conn.src, i)
            td = position_frame(layout, conn.dst, j)
            if ts is None or td is None:
                continue
            w = conn.weight * frame_pair_weight(conn, layout, ts, td)
            mask[i, j] = max(mask[i, j], w)
    return mask
