"""Every registered attention type through the dispatcher on the seed's example canvas, custom
types registered at runtime, per-edge parameters, and argument validation."""

from __future__ import annotations

import pytest
import torch

from canvas_engineering import AttentionDispatcher
from canvas_engineering.attention import AttentionModule, attention_names, register_attention
from canvas_engineering.attention import registry as attn_registry
from canvas_engineering.errors import CanvasError, TopologyError
from canvas_engineering.spec.attention_types import ATTENTION_TYPES
from canvas_engineering.spec.connection import Connection
from canvas_engineering.spec.layout import CanvasLayout, RegionSpec
from canvas_engineering.spec.topology import CanvasTopology

D, H = 8, 2
OPTIONS = {"mixture": {"block_size": 8}, "perceiver": {"n_latents": 4},
           "mamba": {"d_state": 4}, "random_fixed": {"k": 4, "seed": 1}}


def seed_layout() -> CanvasLayout:
    """The visual / proprio / thought / goal canvas of seed 000, "Attention function types"."""
    return CanvasLayout(T=8, H=16, W=16, d_model=D, regions={
        "visual": RegionSpec(bounds=(0, 8, 0, 12, 0, 12), default_attn="cross_attention"),
        "proprio": RegionSpec(bounds=(0, 8, 12, 13, 0, 2), default_attn="linear_attention"),
        "thought": RegionSpec(bounds=(0, 4, 13, 15, 0, 4), default_attn="mamba"),
        "goal": RegionSpec(bounds=(0, 1, 15, 16, 0, 4), default_attn="cross_attention",
                           is_output=False),
    })


SEED_CONNECTIONS = [
    Connection(src="visual", dst="visual"),
    Connection(src="proprio", dst="proprio"),
    Connection(src="thought", dst="thought"),
    Connection(src="goal", dst="goal"),
    Connection(src="visual", dst="goal", fn="gated"),
    Connection(src="thought", dst="visual", fn="perceiver"),
    Connection(src="proprio", dst="visual", fn="pooling"),
    Connection(src="thought", dst="thought", fn="copy", t_src=0, t_dst=-1),
]


def with_fn(i: int, fn: str) -> CanvasTopology:
    conns = list(SEED_CONNECTIONS)
    c = conns[i]
    conns[i] = Connection(c.src, c.dst, weight=c.weight, t_src=c.t_src, t_dst=c.t_dst, fn=fn)
    return CanvasTopology(conns)


BUILTIN = sorted(set(attention_names()))
assert len(BUILTIN) >= 18


@pytest.mark.parametrize("name", BUILTIN)
def test_every_type_runs_forward_and_backward_on_the_seed_topology(name):
    torch.manual_seed(0)
    layout = seed_layout()
    i = BUILTIN.index(name) % len(SEED_CONNECTIONS)  # each type on a connection in turn
    topo = with_fn(i, name)
    opts = {k: v for k, v in OPTIONS.items() if k in {topo.resolve_fn(c, layout)
                                                         for c in topo.connections}}
    disp = AttentionDispatcher(topo, layout, D, H, options=opts)
    x = torch.randn(2, layout.num_positions, D, requires_grad=True)
    out = disp(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    out.square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    params = list(disp.attn[name].parameters())
    if params and name != "gated":  # gated starts closed: only its gate gets gradient
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)


def test_seed_topology_uses_each_resolved_type_once_with_shared_params():
    layout = seed_layout()
    disp = AttentionDispatcher(CanvasTopology(SEED_CONNECTIONS), layout, D, H,
                               options={"perceiver": {"n_latents": 2}})
    assert sorted(disp.attn) == sorted({"cross_attention", "linear_attention", "mamba", "gated",
                                        "perceiver", "pooling", "copy"})
    assert disp.attn["perceiver"].n_latents == 2


def test_share_params_false_builds_one_module_per_connection():
    layout = seed_layout()
    topo = CanvasTopology(SEED_CONNECTIONS)
    disp = AttentionDispatcher(topo, layout, D, H, share_params=False)
    assert len(disp.attn) == len(SEED_CONNECTIONS)
    ids = {id(m) for m in disp.attn.values()}
    assert len(ids) == len(SEED_CONNECTIONS)
    x = torch.randn(1, layout.num_positions, D)
    assert disp(x).shape == x.shape


class Sevens(AttentionModule):
    """A custom type: every query receives 7."""

    def _attend(self, x_q, x_kv, *, q_coords, kv_coords, kv_mask, beta):
        return torch.full_like(x_q, 7.0)


def test_custom_type_registered_at_runtime_is_dispatched():
    name = "sevens_dispatch_test"
    register_attention(name, Sevens)
    try:
        layout = seed_layout()
        topo = CanvasTopology([Connection("proprio", "visual", fn=name)])
        disp = AttentionDispatcher(topo, layout, D, H)
        assert isinstance(disp.attn[name], Sevens)
        out = disp(torch.randn(1, layout.num_positions, D))
        prop = layout.region_index_tensor("proprio")
        assert torch.equal(out[:, prop], torch.full_like(out[:, prop], 7.0))
        rest = torch.ones(layout.num_positions, dtype=torch.bool)
        rest[prop] = False
        assert out[:, rest].abs().sum() == 0
    finally:
        attn_registry._REGISTRY.pop(name, None)
        ATTENTION_TYPES.pop(name, None)


@pytest.mark.parametrize("kwargs, match", [
    ({"d_model": 0}, "d_model"), ({"d_model": 10, "n_heads": 4}, "d_model: got 10"),
    ({"n_heads": True}, "n_heads"), ({"share_params": 1}, "share_params"),
    ({"backend": "triton"}, "backend"), ({"options": {"hyena": {}}}, "options: got 'hyena'"),
    ({"options": {"mamba": 3}}, r"options\['mamba'\]"),
])
def test_bad_arguments_name_the_argument(kwargs, match):
    args = {"d_model": D, "n_heads": H, **kwargs}
    with pytest.raises(CanvasError, match=match):
        AttentionDispatcher(CanvasTopology(SEED_CONNECTIONS), seed_layout(), **args)


def test_unknown_option_names_the_type():
    with pytest.raises(TypeError, match="mamba"):
        AttentionDispatcher(CanvasTopology(SEED_CONNECTIONS), seed_layout(), D, H,
                            options={"mamba": {"d_stat": 4}})


def test_unknown_region_and_bad_input_shape_raise_clearly():
    layout = seed_layout()
    with pytest.raises(TopologyError, match="nowhere"):
        AttentionDispatcher(CanvasTopology([Connection("visual", "nowhere")]), layout, D, H)
    disp = AttentionDispatcher(CanvasTopology([Connection("goal", "goal")]), layout, D, H)
    N = layout.num_positions
    for bad_x in (torch.randn(2, N - 1, D), torch.randn(2, N, D + 1), torch.randn(N, D), "x"):
        with pytest.raises(CanvasError, match=rf"x: got .*expected a tensor of shape \(B, {N}"):
            disp(bad_x)
    with pytest.raises(CanvasError, match="beta"):
        disp(torch.randn(1, N, D), beta=float("nan"))
