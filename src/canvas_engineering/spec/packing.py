"""Packing typed fields onto the canvas: non-overlapping boxes, as few positions as possible.

Shape glossary: R spatial rank; a field's footprint is its spatial shape (rank R after lifting
lower-rank fields with leading 1s). Every field spans frames [0, extent) in time, so packing is
a spatial problem.

Strategies (`LayoutStrategy`):
- PACKED (default): skyline bottom-left packing of the last two axes, tallest first, trying a few
  canvas widths around √(total area) and keeping the smallest canvas (then the squarest).
- SHELF: next-fit shelves, tallest first, at the same candidate widths.
- STACKED: one band per field along the rows, in declaration order (simple, predictable, sparse).
Leading axes of rank >= 3 fields are a fixed depth (the maximum over fields). Rank-1 canvases are
concatenated, which is always dense.
"""

from __future__ import annotations

import math
from enum import Enum

import numpy as np

from canvas_engineering.errors import bad
from canvas_engineering.spec.fields import FieldError

Shape = tuple[int, ...]


class LayoutStrategy(str, Enum):
    """How `compile_schema` places fields on the canvas."""

    PACKED = "packed"
    SHELF = "shelf"
    STACKED = "stacked"

    @classmethod
    def parse(cls, value: object) -> LayoutStrategy:
        if isinstance(value, cls):
            return value
        for m in cls:
            if isinstance(value, str) and value.lower() in (m.value, m.name.lower()):
                return m
        raise bad("layout_strategy", value, f"one of {[m.value for m in cls]}", FieldError)


def _window_max(heights: np.ndarray, w: int) -> np.ndarray:
    """Max over every window of `w` columns, per row: (K, W) -> (K, W - w + 1), by doubling
    (log w array ops, not one per window)."""
    m, p = heights, 1
    while 2 * p <= w:
        m = np.maximum(m[:, :-p], m[:, p:])  # m[:, i] = max of heights[:, i : i + 2p]
        p *= 2
    n = heights.shape[1] - w + 1
    return np.maximum(m[:, :n], m[:, w - p:w - p + n])


def _skyline(rects: list[tuple[int, int]],
             widths: list[int]) -> list[tuple[list[tuple[int, int]], int]]:
    """Bottom-left skyline at each canvas width: each rect goes where its top is lowest
    (leftmost on ties). All widths advance together, one rect at a time, so the cost is a few
    array operations per rect rather than per (rect, width). Returns (positions, rows) per width.
    """
    K, wide = len(widths), max(widths)
    heights = np.zeros((K, wide), dtype=np.int64)  # (K, wide) current top of each column
    heights[np.arange(wide)[None] >= np.array(widths)[:, None]] = np.iinfo(np.int64).max // 2
    ys = np.zeros((K, len(rects)), dtype=np.int64)
    xs = np.zeros((K, len(rects)), dtype=np.int64)
    rows = np.arange(K)[:, None]
    for i, (h, w) in enumerate(rects):
        tops = _window_max(heights, w)  # (K, wide - w + 1)
        x = np.argmin(tops, axis=1)  # first minimum: leftmost
        y = tops[np.arange(K), x]
        heights[rows, x[:, None] + np.arange(w)] = (y + h)[:, None]
        ys[:, i], xs[:, i] = y, x
    out = []
    for k, width in enumerate(widths):
        pos = list(zip(ys[k].tolist(), xs[k].tolist()))
        out.append((pos, int(heights[k, :width].max())))
    return out


def _shelf(rects: list[tuple[int, int]], width: int) -> tuple[list[tuple[int, int]], int]:
    """Next-fit shelves: fill a row left to right, open a new one when the next rect overflows."""
    pos, y, x, shelf_h = [], 0, 0, 0
    for h, w in rects:
        if x + w > width:
            y, x, shelf_h = y + shelf_h, 0, 0
        pos.append((y, x))
        x, shelf_h = x + w, max(shelf_h, h)
    return pos, y + shelf_h


def _pack_2d(fps: list[tuple[int, int]], strategy: LayoutStrategy,
             width: int | None) -> tuple[list[tuple[int, int]], int, int]:
    """Place (rows, cols) footprints; returns positions (row, col) in input order, rows, cols."""
    if strategy is LayoutStrategy.STACKED:
        pos, y = [], 0
        for h, _ in fps:
            pos.append((y, 0))
            y += h
        return pos, y, width or max(w for _, w in fps)
    # Tallest (then widest) first: the usual order that keeps skylines and shelves flat.
    order = sorted(range(len(fps)), key=lambda i: (-fps[i][0], -fps[i][1], i))
    rects = [fps[i] for i in order]
    w_min = max(w for _, w in fps)
    if width is not None:
        candidates = [width]
    else:
        side = math.sqrt(sum(h * w for h, w in fps))
        # Small problems try many widths; large ones (thousands of fields) a few, since their
        # fill is near 1 at any width close to the square root.
        factors = np.linspace(0.7, 1.6, 19 if len(fps) < 500 else 3)
        candidates = sorted({max(w_min, math.ceil(side * f)) for f in factors})
    if strategy is LayoutStrategy.PACKED:
        placed = _skyline(rects, candidates)
    else:
        placed = [_shelf(rects, cand) for cand in candidates]
    best = None
    for cand, (pos, rows) in zip(candidates, placed):
        key = (rows * cand, abs(rows - cand), cand)
        if best is None or key < best[0]:
            best = (key, pos, rows, cand)
    _, pos, rows, cols = best
    out = [(0, 0)] * len(fps)
    for i, p in zip(order, pos):
        out[i] = p
    return out, rows, cols


def pack(shapes: list[Shape], strategy: LayoutStrategy | str = LayoutStrategy.PACKED,
         spatial_shape: Shape | None = None) -> tuple[list[Shape], Shape]:
    """Place spatial boxes without overlap.

    Args:
        shapes: per field, its spatial shape (any rank; lower ranks get leading 1s).
        strategy: a `LayoutStrategy` or its name.
        spatial_shape: a fixed canvas size to pack into (None: choose one).
    Returns:
        (offsets, canvas_shape): per field its corner (rank R), and the canvas's spatial shape.
    """
    strategy = LayoutStrategy.parse(strategy)
    if not shapes:
        raise FieldError("compile_schema: the object holds no Field; expected at least one")
    rank = max(len(s) for s in shapes)
    if spatial_shape is not None:
        rank = max(rank, len(spatial_shape))
    lifted = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    if rank == 1:
        starts = np.cumsum([0] + [s[0] for s in lifted])
        offsets, canvas = [(int(a),) for a in starts[:-1]], (int(starts[-1]),)
    else:
        depth = tuple(max(s[i] for s in lifted) for i in range(rank - 2))
        width = None if spatial_shape is None else spatial_shape[-1]
        if width is not None and width < max(s[-1] for s in lifted):
            raise bad("spatial_shape", tuple(spatial_shape),
                      f"a last axis >= {max(s[-1] for s in lifted)} (the widest field)", FieldError)
        pos, rows, cols = _pack_2d([s[-2:] for s in lifted], strategy, width)
        offsets = [(0,) * (rank - 2) + p for p in pos]
        canvas = depth + (rows, cols)
    if spatial_shape is not None:
        need = canvas
        if len(spatial_shape) != rank or any(n > g for n, g in zip(need, spatial_shape)):
            raise bad("spatial_shape", tuple(spatial_shape),
                      f"at least {need} to hold every field ({strategy.value} packing)", FieldError)
        canvas = tuple(spatial_shape)
    return offsets, canvas
