"""The skyline packer advances every candidate width at once; it must place every rect exactly
where a plain one-width-at-a-time bottom-left skyline (written here) does."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canvas_engineering import compile_schema
from canvas_engineering.spec.canvases import fleet
from canvas_engineering.spec.packing import _skyline


def reference_skyline(rects, width):
    """Each rect goes where the highest column under it is lowest, leftmost on ties."""
    heights = [0] * width
    pos = []
    for h, w in rects:
        tops = [max(heights[x:x + w]) for x in range(width - w + 1)]
        x = tops.index(min(tops))
        y = tops[x]
        heights[x:x + w] = [y + h] * w
        pos.append((y, x))
    return pos, max(heights)


rects = st.lists(st.tuples(st.integers(1, 6), st.integers(1, 9)), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(rects, st.lists(st.integers(0, 12), min_size=1, max_size=6))
def test_all_widths_at_once_equal_one_width_at_a_time(rs, extra):
    widths = sorted({max(w for _, w in rs) + e for e in extra})
    got = _skyline(rs, widths)
    assert got == [reference_skyline(rs, w) for w in widths]


def test_window_max_by_doubling_matches_a_plain_sliding_max():
    from canvas_engineering.spec.packing import _window_max

    rng = np.random.default_rng(0)
    h = rng.integers(0, 50, size=(3, 37))
    for w in range(1, 38):
        expected = np.stack([h[:, i:i + w].max(1) for i in range(37 - w + 1)], 1)
        assert np.array_equal(_window_max(h, w), expected)


@pytest.mark.parametrize(("n", "shape"), [(50, (1, 111, 56))])
def test_fleet_packs_as_tightly_as_before(n, shape):
    """The 50-vehicle fleet's canvas: 6,216 positions (2.1× tighter than the public package)."""
    assert compile_schema(fleet(n)).layout.shape == shape
