"""ConnectivityPolicy variants, layout strategies and spatial ranks of compile_schema."""



from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canvas_engineering import ConnectivityPolicy, Field, compile_schema
from canvas_engineering.spec.packing import LayoutStrategy, pack


@dataclass
class Unit:
    __coarse__ = Field(1, 2)
    a: Field = Field(1, 2)
    b: Field = Field(2, 2)


@dataclass
class Team:
    lead: Field = Field(2, 2)
    notes: Field = Field(1, 3)
    log: Field = Field(1, 1)
    units: list = dc_field(default_factory=lambda: [Unit() for _ in range(4)])


def pairs(bound):
    return {(c.src, c.dst) for c in bound.topology.connections if c.src != c.dst}


def test_intra_policies_among_root_members():
    members = ["lead", "notes", "log"]
    dense = pairs(compile_schema(Team(), connectivity="dense"))
    assert {(a, b) for a in members for b in members if a != b} <= dense
    iso = pairs(compile_schema(Team(), connectivity="isolated"))
    assert not {(a, b) for a in members for b in members} & iso
    chain = pairs(compile_schema(Team(), connectivity="causal-chain"))
    # later members read earlier ones only: notes queries lead, log queries notes
    assert {(a, b) for a in members for b in members} & chain == {("notes", "lead"),
                                                                  ("log", "notes")}
    star = pairs(compile_schema(Team(), connectivity="star"))
    assert {(a, b) for a in members for b in members} & star == {
        ("lead", "notes"), ("notes", "lead"), ("lead", "log"), ("log", "lead")}


def test_star_inside_entity_routes_through_its_coarse_field():
    p = pairs(compile_schema(Team(), connectivity="star"))
    assert ("units[0].a", "units[0].b") not in p
    assert {("units[0].a", "units[0]"), ("units[0]", "units[0].a")} <= p


def test_array_policies():
    el = [f"units[{i}]" for i in range(4)]
    iso = pairs(compile_schema(Team()))
    assert not {(a, b) for a in el for b in el} & iso
    dense = pairs(compile_schema(Team(), connectivity={"array": "dense"}))
    assert {(a, b) for a in el for b in el if a != b} <= dense
    ring = pairs(compile_schema(Team(), connectivity={"array": "ring"}))
    expect = {(el[i], el[(i + 1) % 4]) for i in range(4)}
    expect |= {(b, a) for a, b in expect}
    assert {(a, b) for a in el for b in el} & ring == expect
    # in every policy an element reaches the parent level only through its coarse field
    for p in (iso, dense, ring):
        assert ("lead", "units[0]") in p and ("lead", "units[0].a") not in p
        assert ("units[0].a", "units[1].a") not in p


def test_temporal_policies():
    def offsets(bound, src, dst):
        return sorted((c.t_src, c.t_dst) for c in bound.topology.connections
                      if (c.src, c.dst) == (src, dst))

    assert offsets(compile_schema(Team(), T=3), "lead", "notes") == [(None, None)]
    same = compile_schema(Team(), T=3, connectivity={"temporal": "same_frame"})
    assert offsets(same, "lead", "notes") == [(0, 0)] == offsets(same, "lead", "lead")
    causal = compile_schema(Team(), T=3, connectivity={"temporal": "causal"})
    assert offsets(causal, "units[1]", "lead") == [(0, -1), (0, 0)]
    assert offsets(causal, "units[1].a", "units[1].a") == [(0, -1), (0, 0)]
    assert len(causal.topology.connections) == 2 * len(compile_schema(Team()).topology.connections)


def test_entity_connectivity_override():
    @dataclass
    class Quiet:
        __connectivity__ = ConnectivityPolicy(intra="isolated")
        x: Field = Field()
        y: Field = Field()

    @dataclass
    class Root:
        q: Quiet = dc_field(default_factory=Quiet)
        r: Field = Field()
        s: Field = Field()

    p = pairs(compile_schema(Root()))
    assert ("q.x", "q.y") not in p and ("r", "s") in p and ("q", "q.x") in p


def test_plain_objects_and_duck_typed_models():
    class Eye:
        __coarse__ = Field(1, 3)
        iris = Field(2, 2)

        def blink(self):  # methods are not schema
            return 0

    class Body:
        def __init__(self):
            self.left = Eye()
            self.pose = Field(1, 4)

    bound = compile_schema(Body())
    assert bound.field_names == ["left", "left.iris", "pose"]
    assert bound["left"].shape == (1, 1, 3)

    class FakeModel:  # the pydantic v2 surface the walker reads
        model_fields: ClassVar[dict] = {"speed": None, "heading": None}

        def __init__(self):
            self.speed, self.heading = Field(1, 1), Field(1, 2)

        def model_dump(self):
            return {}

    assert compile_schema(FakeModel()).field_names == ["speed", "heading"]


def test_any_spatial_rank():
    @dataclass
    class Volumes:
        vox: Field = Field(spatial_shape=(2, 3, 4))
        img: Field = Field(2, 2)
        tiny: Field = Field(spatial_shape=(1, 1, 5))

    bound = compile_schema(Volumes(), T=2)
    assert len(bound.layout.spatial_shape) == 3
    assert bound["img"].shape == (2, 1, 2, 2)
    assert bound["vox"].shape == (2, 2, 3, 4)
    assert bound["tiny"].shape == (2, 1, 1, 5)

    @dataclass
    class Line:
        a: Field = Field(spatial_shape=(3,))
        b: Field = Field(spatial_shape=(5,))

    line = compile_schema(Line())
    assert line.layout.spatial_shape == (8,) and line.fill_ratio == 1.0
    assert line["b"].spec.bounds == (0, 1, 3, 8)


@pytest.mark.parametrize("strategy", list(LayoutStrategy))
def test_strategies_give_valid_layouts(strategy):
    bound = compile_schema(Team(), layout_strategy=strategy)
    sizes = sum(f.num_positions for f in bound.fields.values())
    covered = set()
    for f in bound.fields.values():
        covered |= set(f.indices.tolist())
    assert len(covered) == sizes  # disjoint


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 9), st.integers(1, 9)), min_size=1, max_size=30),
       st.sampled_from(list(LayoutStrategy)))
def test_pack_never_overlaps(shapes, strategy):
    offsets, canvas = pack(shapes, strategy)
    cells = set()
    for (y, x), (h, w) in zip(offsets, shapes):
        assert 0 <= y and y + h <= canvas[0] and 0 <= x and x + w <= canvas[1]
        box = {(i, j) for i in range(y, y + h) for j in range(x, x + w)}
        assert not box & cells
        cells |= box
