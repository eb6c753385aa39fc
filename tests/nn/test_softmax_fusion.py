"""Fusion is declared (`softmax_fusion`), never guessed: subclasses that change how q / k / v are
computed are called, not fused, unless they declare otherwise. References are written here: one
module call per (query, connection), or one softmax per query over all its keys."""

from __future__ import annotations

import math

import pytest
import torch

from canvas_engineering import AttentionDispatcher
from canvas_engineering.attention import (
    AttentionModule,
    CrossAttention,
    LinearAttention,
    SigmoidAttention,
    attention_names,
    get_attention_class,
    register_attention,
)
from canvas_engineering.attention import registry as attn_registry
from canvas_engineering.attention._common import QKVAttention
from canvas_engineering.errors import CanvasError
from canvas_engineering.lowering.dispatch_plan import plan_dispatch
from canvas_engineering.nn.dispatcher import softmax_kind
from canvas_engineering.spec.attention_types import ATTENTION_TYPES
from canvas_engineering.spec.layout import CanvasLayout, RegionSpec
from canvas_engineering.spec.topology import CanvasTopology, Connection

D, H = 16, 2


class ScaledQuery(CrossAttention):
    """Like a position-dependent q/k rotation, a change inside `project`: q is scaled by 3."""

    def project(self, x_q, x_kv):
        q, k, v = super().project(x_q, x_kv)
        return 3.0 * q, k, v


class DeclaredDot(CrossAttention):
    """Overrides `project` without changing it, and says so."""

    softmax_fusion = "dot"

    def project(self, x_q, x_kv):
        return super().project(x_q, x_kv)


@pytest.fixture
def register():
    """register(name, cls) for the test; the registry forgets the names afterwards."""
    names = []

    def add(name, cls):
        names.append(name)
        register_attention(name, cls)
        return name

    yield add
    for name in names:
        attn_registry._REGISTRY.pop(name, None)
        ATTENTION_TYPES.pop(name, None)


def small_layout() -> CanvasLayout:
    return CanvasLayout(T=4, H=4, W=4, d_model=D, regions={
        "a": RegionSpec((0, 4, 0, 2, 0, 2)), "b": RegionSpec((0, 4, 2, 3, 0, 4)),
        "c": RegionSpec((1, 4, 3, 4, 0, 2)),
    })


def dense(layout, fn) -> CanvasTopology:
    return CanvasTopology([Connection(c.src, c.dst, fn=fn)
                           for c in CanvasTopology.dense(layout).connections])


def fused_reference(m, x, keys):
    """What fusing `m` means: per query i, one softmax over keys[i] with m's q / kv / out
    projections and plain attention. keys: dict query position -> (n,) key positions."""
    out = torch.zeros_like(x)
    for i, k in keys.items():  # one query at a time
        q = m.q_proj(x[:, i]).view(x.shape[0], H, 1, -1)  # (B, h, 1, d)
        kk, v = (t.view(x.shape[0], len(k), H, -1).transpose(1, 2)
                 for t in m.kv_proj(x[:, k]).chunk(2, -1))  # (B, h, n, d)
        p = torch.softmax(q @ kk.transpose(-1, -2) / math.sqrt(m.d_head), -1)  # (B, h, 1, n)
        out[:, i] = m.out_proj((p @ v).reshape(x.shape[0], D))
    return out


def test_builtin_declarations():
    expected = {"cross_attention": "dot", "self_attention": "dot", "cogvideox": "dot",
                "cosine_attention": "cosine"}
    for name in attention_names():
        assert get_attention_class(name).softmax_fusion == expected.get(name), name
    assert AttentionModule.softmax_fusion is None
    assert LinearAttention.softmax_fusion is None and SigmoidAttention.softmax_fusion is None


@pytest.mark.parametrize("method", ["project", "_attend", "forward"])
def test_overriding_compute_without_declaring_disables_fusion(method):
    def passthrough(self, *args, **kwargs):
        return getattr(super(cls, self), method)(*args, **kwargs)

    cls = type("Changed", (CrossAttention,), {method: passthrough})
    assert cls.softmax_fusion is None and softmax_kind(cls(D, H)) is None
    assert type("Child", (cls,), {}).softmax_fusion is None  # inherits the reset
    declared = type("Declared", (CrossAttention,), {method: passthrough, "softmax_fusion": "dot"})
    assert declared.softmax_fusion == "dot"


def test_other_overrides_keep_the_inherited_declaration():
    class Wider(CrossAttention):
        def __init__(self, d_model, n_heads=4):
            super().__init__(d_model, n_heads, bias=False)

    assert Wider.softmax_fusion == "dot" and QKVAttention.softmax_fusion == "dot"


def test_unknown_fusion_kind_is_rejected():
    with pytest.raises(CanvasError, match="softmax_fusion: got 'flash'"):
        type("Flash", (CrossAttention,), {"softmax_fusion": "flash"})


def test_subclass_changing_project_is_called_not_fused(register):
    name = register("scaled_query_fusion_test", ScaledQuery)
    torch.manual_seed(0)
    layout = small_layout()
    disp = AttentionDispatcher(dense(layout, name), layout, D, H)
    assert disp._kind == {name: None}
    m = disp.attn[name]
    x = torch.randn(2, layout.num_positions, D)
    regions = [layout.region_index_tensor(n) for n in "abc"]
    ref = torch.zeros_like(x)  # per query: the mean of the module over each connection's keys
    for src in regions:
        for i in src.tolist():
            ref[:, i] = sum(m(x[:, [i]], x[:, dst])[:, 0] for dst in regions) / 3
    with torch.no_grad():
        out = disp(x)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
        # fusing would have read q_proj directly, dropping the ×3: a different layer
        keys = torch.cat(regions)
        fused = fused_reference(m, x, {i: keys for i in keys.tolist()})
        assert (out - fused).abs().max() > 1e-2
        # ...and a dispatcher that believed the class fused gives exactly that answer
        name2 = register("scaled_query_declared_test",
                         type("ScaledDeclared", (ScaledQuery,), {"softmax_fusion": "dot"}))
        wrong = AttentionDispatcher(dense(layout, name2), layout, D, H)
        wrong.attn[name2].load_state_dict(m.state_dict())
        torch.testing.assert_close(wrong(x), fused, atol=1e-5, rtol=1e-5)


def test_declared_dot_subclass_stays_fused(register):
    name = register("declared_dot_fusion_test", DeclaredDot)
    torch.manual_seed(0)
    layout = small_layout()
    topo = dense(layout, name)
    plan = plan_dispatch(topo, layout, share_params=True,
                         fusable={name: softmax_kind(get_attention_class(name))})
    unit = plan.units[name]
    assert unit.kind == "dot" and len(unit.buckets) == 1 and unit.flex is not None
    disp = AttentionDispatcher(topo, layout, D, H)
    assert disp._kind == {name: "dot"}
    x = torch.randn(2, layout.num_positions, D)
    keys = torch.cat([layout.region_index_tensor(n) for n in "abc"])
    with torch.no_grad():
        ref = fused_reference(disp.attn[name], x, {i: keys for i in keys.tolist()})
        torch.testing.assert_close(disp(x), ref, atol=1e-5, rtol=1e-5)
