"""Scene-relative RoPE: golden values, norm preservation, the prefix rule, channel layout."""

import math

import pytest
import torch

from canvas_engineering.canvit import apply_rope, rope_periods, rope_table
from canvas_engineering.canvit.rope import rotate_half
from canvas_engineering.errors import CanvasError


def test_periods_are_geometric_from_one_to_base():
    p = rope_periods(128)
    assert p.shape == (32,) and p.dtype == torch.float32
    assert torch.allclose(p, torch.tensor([100 ** (k / 32) for k in range(32)]))
    assert p[0] == 1 and abs(p[-1].item() - 100 ** (31 / 32)) < 1e-3
    with pytest.raises(CanvasError, match="head_dim"):
        rope_periods(6)


def test_table_golden_values():
    # head 8: periods (1, 10); row 0.25, col -0.5 -> angles [2π·.25, 2π·.025, -π, -π/10] twice
    t = rope_table(torch.tensor([[0.25, -0.5]]), rope_periods(8, base=100.0))
    angles = torch.tensor([math.pi / 2, math.pi / 20, -math.pi, -math.pi / 10] * 2)
    assert t.sin.shape == (1, 1, 1, 8)
    assert torch.allclose(t.sin[0, 0, 0], angles.sin(), atol=1e-6)
    assert torch.allclose(t.cos[0, 0, 0], angles.cos(), atol=1e-6)
    origin = rope_table(torch.zeros(1, 2), rope_periods(8))
    assert torch.equal(origin.sin, torch.zeros(1, 1, 1, 8))
    assert torch.equal(origin.cos, torch.ones(1, 1, 1, 8))


def test_rotation_preserves_norms_and_leaves_prefix_alone():
    x = torch.randn(2, 3, 5 + 7, 16)
    t = rope_table(torch.rand(2, 7, 2) * 2 - 1, rope_periods(16))
    y = apply_rope(x, t)
    assert torch.equal(y[:, :, :5], x[:, :, :5])  # unpositioned prefix: bit for bit
    assert torch.allclose(y.norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    assert not torch.allclose(y[:, :, 5:], x[:, :, 5:])


def test_rotate_half_is_the_explicit_two_half_formula():
    x = torch.randn(1, 1, 4, 8, dtype=torch.float64)
    t = rope_table(torch.rand(4, 2), rope_periods(8))
    a, b = x[..., :4], x[..., 4:]
    c, s = t.cos[..., :4].double(), t.sin[..., :4].double()
    expected = torch.cat([a * c - b * s, b * c + a * s], dim=-1)  # pair (i, i + d/2) per angle
    assert torch.allclose(apply_rope(x, t), expected, atol=1e-6)
    assert torch.equal(rotate_half(torch.arange(4.0)), torch.tensor([-2.0, -3.0, 0.0, 1.0]))


def test_rows_drive_the_first_quarter_columns_the_second():
    p = rope_periods(8)
    row = rope_table(torch.tensor([[0.3, 0.0]]), p).sin[0, 0, 0]
    col = rope_table(torch.tensor([[0.0, 0.3]]), p).sin[0, 0, 0]
    assert (row[:2] != 0).all() and (row[2:4] == 0).all()
    assert (col[:2] == 0).all() and (col[2:4] != 0).all()


def test_too_short_input_is_refused():
    with pytest.raises(CanvasError, match="rope table"):
        apply_rope(torch.randn(1, 1, 2, 8), rope_table(torch.rand(3, 2), rope_periods(8)))
