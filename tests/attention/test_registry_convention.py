"""`register_attention` checks a class's calling convention when it is registered, not when the
dispatcher first calls it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from canvas_engineering import AttentionTypeError, create_attention, register_attention
from canvas_engineering.attention import registry
from canvas_engineering.spec.attention_types import ATTENTION_TYPES


@pytest.fixture(autouse=True)
def restore_registries():
    """The registries are process-wide: leave them as this file found them."""
    saved = dict(registry._REGISTRY), dict(ATTENTION_TYPES)
    yield
    for live, old in zip((registry._REGISTRY, ATTENTION_TYPES), saved):
        live.clear()
        live.update(old)


class Good(nn.Module):
    def __init__(self, d_model, n_heads=4, **options):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x_q, x_kv, *, q_coords=None, kv_coords=None, kv_mask=None, beta=1.0):
        return self.proj(x_q)


class NoKeywords(nn.Module):
    def __init__(self, d_model, n_heads=4):
        super().__init__()

    def forward(self, x_q, x_kv):  # the dispatcher passes q_coords, kv_coords, kv_mask, beta
        return x_q


class OneInput(nn.Module):
    def __init__(self, d_model, n_heads=4):
        super().__init__()

    def forward(self, x, *, q_coords=None, kv_coords=None, kv_mask=None, beta=1.0):
        return x


class NoHeads(nn.Module):
    def __init__(self, d_model):  # create_attention passes (d_model, n_heads)
        super().__init__()

    def forward(self, x_q, x_kv, **kwargs):
        return x_q


@pytest.mark.parametrize("cls, what", [
    (NoKeywords, r"forward"), (OneInput, r"forward"), (NoHeads, r"__init__")])
def test_wrong_calling_convention_refused_at_registration(cls, what):
    name = f"conv_{cls.__name__.lower()}"
    with pytest.raises(AttentionTypeError, match=rf"{cls.__qualname__}.{what}.*expected"):
        register_attention(name, cls)
    with pytest.raises(AttentionTypeError, match="expected one of"):
        create_attention(name, 8, 2)  # nothing was registered


def test_good_convention_registers_and_runs():
    register_attention("conv_good", Good)
    m = create_attention("conv_good", 8, 2)
    assert m(torch.zeros(1, 3, 8), torch.zeros(1, 5, 8), kv_mask=None, beta=1.0).shape == (1, 3, 8)
