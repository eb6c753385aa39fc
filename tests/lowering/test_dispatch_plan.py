"""plan_dispatch: a pure function of (topology, layout, fusable), checked against plans worked
out here by hand (which positions a dense topology covers, how calls average)."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

import canvas_engineering.lowering as lowering_pkg
from canvas_engineering.errors import CanvasError
from canvas_engineering.lowering.dispatch_plan import DispatchPlan, plan_dispatch
from canvas_engineering.lowering.masks import Lowering
from canvas_engineering.spec.layout import CanvasLayout, RegionSpec
from canvas_engineering.spec.topology import CanvasTopology, Connection


def small_layout() -> CanvasLayout:
    """T=4, 4×4 canvas, three regions (a, b, c) that leave some positions empty."""
    return CanvasLayout(T=4, H=4, W=4, d_model=16, regions={
        "a": RegionSpec((0, 4, 0, 2, 0, 2)),  # 16 positions
        "b": RegionSpec((0, 4, 2, 3, 0, 4)),  # 16
        "c": RegionSpec((1, 4, 3, 4, 0, 2)),  # 6
    })


def dense(layout: CanvasLayout, fn: str = "cross_attention") -> CanvasTopology:
    return CanvasTopology([Connection(c.src, c.dst, fn=fn)
                           for c in CanvasTopology.dense(layout).connections])


def covered(layout: CanvasLayout) -> torch.Tensor:
    """(N,) bool: positions inside some region."""
    mask = torch.zeros(layout.num_positions, dtype=torch.bool)
    for name in layout.region_names:
        mask[layout.region_index_tensor(name)] = True
    return mask


def tensors(obj, path="plan"):
    """Every tensor reachable from a plan, by path (a Lowering by its label and weight)."""
    if isinstance(obj, torch.Tensor):
        yield path, obj
    elif isinstance(obj, Lowering):
        yield from tensors({"label": obj.label, "weight": obj.weight}, path)
    elif dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            yield from tensors(getattr(obj, f.name), f"{path}.{f.name}")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from tensors(v, f"{path}[{k!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from tensors(v, f"{path}[{i}]")


def test_plan_is_pure_and_builds_no_module(monkeypatch):
    layout = small_layout()
    topo = CanvasTopology([Connection("a", "b", weight=2.0), Connection("b", "a", t_src=0,
                                                                          t_dst=-1),
                           Connection("c", "a", fn="pooling"), Connection("a", "c", fn="none")])
    fusable = {"cross_attention": "dot", "pooling": None, "none": None}

    def no_modules(*args, **kwargs):
        raise AssertionError("plan_dispatch built an nn.Module")

    monkeypatch.setattr(nn.Module, "__init__", no_modules)
    first = plan_dispatch(topo, layout, share_params=True, fusable=fusable)
    second = plan_dispatch(topo, layout, share_params=True, fusable=dict(fusable))
    monkeypatch.undo()
    a, b = dict(tensors(first)), dict(tensors(second))
    assert a.keys() == b.keys() and len(a) > 10
    for path, t in a.items():
        assert t is not b[path] and torch.equal(t, b[path]), path
    assert isinstance(first, DispatchPlan)
    assert [u.kind for u in first.units.values()] == ["dot", None, None]
    assert first.units["none"].inert and first.units["none"].buckets == []
    assert "none" not in first.mix  # an inert type mixes nothing


def test_lowering_never_imports_attention_or_nn():
    for path in Path(lowering_pkg.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(("canvas_engineering.attention",
                                                   "canvas_engineering.nn")), path.name


def test_dense_cross_attention_is_one_softmax_group():
    layout = small_layout()
    plan = plan_dispatch(dense(layout), layout, share_params=True,
                         fusable={"cross_attention": "dot"})
    (key, unit), = plan.units.items()
    assert key == "cross_attention" and unit.kind == "dot" and not unit.inert
    assert unit.connections == tuple(range(9))  # 3 regions × 3 regions
    inside = covered(layout)
    pos = torch.nonzero(inside).squeeze(1)  # 38 positions, all queries and all keys
    assert len(pos) == 16 + 16 + 6
    (bucket,) = unit.buckets
    assert torch.equal(bucket.q_idx.sort(1).values, pos[None])  # (1, 38)
    assert torch.equal(bucket.k_idx.sort(1).values, pos[None])
    assert bucket.key_bias is None and bucket.kv_mask is None and bucket.q_weight is None
    assert torch.equal(plan.mix["cross_attention"], inside.float())  # one group, weight 1
    assert torch.equal(unit.flex.pos_w, inside.float())
    assert torch.equal(unit.flex.log_w, torch.zeros_like(unit.flex.log_w))  # log 1 = 0
    t, h, w = torch.meshgrid(torch.arange(4), torch.arange(4), torch.arange(4), indexing="ij")
    assert torch.equal(plan.coords, torch.stack([t, h, w], -1).reshape(64, 3))


def test_dense_unfused_type_is_one_call_per_connection_averaged():
    layout = small_layout()
    plan = plan_dispatch(dense(layout, "pooling"), layout, share_params=True,
                         fusable={"pooling": None})
    unit = plan.units["pooling"]
    assert unit.kind is None and unit.flex is None
    calls = set()
    for bk in unit.buckets:  # padding repeats a real position, so sets drop it
        for q, k in zip(bk.q_idx, bk.k_idx):
            calls.add((frozenset(q.tolist()), frozenset(k.tolist())))
    regions = {n: frozenset(layout.region_index_tensor(n).tolist()) for n in "abc"}
    assert calls == {(regions[s], regions[d]) for s in "abc" for d in "abc"}
    # every covered position is the query of 3 calls of weight 1: each gets weight 1/3
    assert torch.equal(plan.mix["pooling"], 3 * covered(layout).float())
    for bk in unit.buckets:
        real = bk.q_weight > 0
        torch.testing.assert_close(bk.q_weight[real], torch.full_like(bk.q_weight[real], 1 / 3))


def test_unshared_units_are_per_connection():
    layout = small_layout()
    topo = CanvasTopology([Connection("a", "a"), Connection("a", "b", fn="pooling"),
                           Connection("b", "a")])
    plan = plan_dispatch(topo, layout, share_params=False,
                         fusable={"cross_attention": "dot", "pooling": None})
    assert list(plan.units) == ["e0_cross_attention", "e1_pooling", "e2_cross_attention"]
    assert [u.connections for u in plan.units.values()] == [(0,), (1,), (2,)]
    shared = plan_dispatch(topo, layout, share_params=True,
                           fusable={"cross_attention": "dot", "pooling": None})
    assert shared.units["cross_attention"].connections == (0, 2)


@pytest.mark.parametrize("fusable, match", [
    ({}, "fusable: got"), ({"cross_attention": "flash"}, r"fusable\['cross_attention'\]"),
    (["cross_attention"], "fusable: got"),
])
def test_bad_fusable_map_names_the_argument(fusable, match):
    layout = small_layout()
    with pytest.raises(CanvasError, match=match):
        plan_dispatch(dense(layout), layout, share_params=True, fusable=fusable)
