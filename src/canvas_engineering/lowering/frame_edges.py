"""Frame edges: the library's single time rule, turning one connection into the (src frame,
dst frame, fill weight) triples it links.

The time rule (PRODUCT.md §3.7). A position at canvas frame t of a region with period p lives at
real time t·p. For a connection with offsets, each reference frame ref in [0, T) pairs the src
positions at canvas frame ref + t_src with the dst at real time r = (ref + t_dst)·p_src; a
reference whose ref + t_src or ref + t_dst is outside [0, T) is skipped, and an offset of None
means all of that side's frames. When r is not one of the dst's update times, `temporal_fill`
decides: HOLD takes the latest update before r, DROP connects nothing, INTERPOLATE blends the
n+1 nearest updates with weights ∝ 1/dist^n (n = interpolation_order), falling back to the
update that exists when r lies before the first or after the last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from canvas_engineering.spec.connection import Connection, TemporalFill
from canvas_engineering.spec.layout import CanvasLayout, RegionSpec


@dataclass(frozen=True)
class FrameEdges:
    """The frame pairs one connection links: src frame ↔ dst frame, with a fill weight in (0, 1]."""

    src_frame: tuple[int, ...]
    dst_frame: tuple[int, ...]
    weight: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.weight)


def _fill(real_t: int, dst: RegionSpec, conn: Connection) -> list[tuple[int, float]]:
    """Dst frames (and blend weights) that answer a request for real time `real_t`."""
    p, frames = dst.period, dst.frames
    if real_t % p == 0 and real_t // p in frames:
        return [(real_t // p, 1.0)]
    if conn.temporal_fill is TemporalFill.DROP:
        return []
    if conn.temporal_fill is TemporalFill.HOLD:
        f = min(real_t // p, frames.stop - 1)
        return [(f, 1.0)] if f >= frames.start else []
    # INTERPOLATE: never extrapolate; outside the updates, use the one that exists.
    if real_t < frames.start * p:
        return [(frames.start, 1.0)]
    if real_t > (frames.stop - 1) * p:
        return [(frames.stop - 1, 1.0)]
    n = conn.interpolation_order
    nearest = sorted(frames, key=lambda f: (abs(f * p - real_t), f))[: n + 1]
    inv = [1.0 / abs(f * p - real_t) ** n for f in nearest]
    return [(f, w / sum(inv)) for f, w in zip(nearest, inv)]


def frame_edges(conn: Connection, layout: CanvasLayout) -> FrameEdges:
    """Lower one connection to the (src frame, dst frame, weight) triples it links.

    A frame pair reached from several reference frames keeps its largest weight. The result
    depends only on the connection's timing and the two regions' frames and periods, so it is
    memoised on those: a fleet's thousands of alike connections are lowered once.
    """
    src, dst = layout.region_spec(conn.src), layout.region_spec(conn.dst)
    return _frame_edges(conn.t_src, conn.t_dst, conn.temporal_fill, conn.interpolation_order,
                        conn.dense_in_time, (src.bounds[0], src.bounds[1], src.period),
                        (dst.bounds[0], dst.bounds[1], dst.period), layout.T)


@lru_cache(maxsize=4096)
def _frame_edges(t_src, t_dst, fill, order, dense, src_t, dst_t, T) -> FrameEdges:
    src = RegionSpec((src_t[0], src_t[1], 0, 1), period=src_t[2])  # only frames and period matter
    dst = RegionSpec((dst_t[0], dst_t[1], 0, 1), period=dst_t[2])
    conn = Connection("src", "dst", t_src=t_src, t_dst=t_dst, temporal_fill=fill,
                      interpolation_order=order)
    best: dict[tuple[int, int], float] = {}
    if dense:
        best = {(s, d): 1.0 for s in src.frames for d in dst.frames}
    else:
        for ref in range(T):  # frames, not positions: T is small
            s = None if t_src is None else ref + t_src
            d = None if t_dst is None else ref + t_dst
            if (s is not None and not 0 <= s < T) or (d is not None and not 0 <= d < T):
                continue
            src_frames = src.frames if s is None else [s] if s in src.frames else []
            dst_frames = [(f, 1.0) for f in dst.frames] if d is None else _fill(d * src.period,
                                                                                   dst, conn)
            for sf in src_frames:
                for df, w in dst_frames:
                    best[sf, df] = max(best.get((sf, df), 0.0), w)
    keys = sorted(best)
    return FrameEdges(tuple(k[0] for k in keys), tuple(k[1] for k in keys),
                      tuple(best[k] for k in keys))
