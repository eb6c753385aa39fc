"""Conformance with the seed (000): a schema may omit its topology; compiled fields with a
period span only the frames the period uses; 1-D fields compile to a 1-D canvas."""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import field as dc_field

import pytest

from canvas_engineering import (
    CanvasLayout,
    CanvasSchema,
    CanvasTopology,
    Connection,
    Field,
    FieldError,
    compile_schema,
)


def test_schema_without_topology_is_dense_over_the_regions(tmp_path):
    lay = CanvasLayout(T=2, H=2, W=2, regions={"a": (0, 2, 0, 1, 0, 2), "b": (0, 2, 1, 2, 0, 2)})
    schema = CanvasSchema(lay)
    pairs = {(c.src, c.dst) for c in schema.topology.connections}
    assert pairs == {("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")}
    assert all(c.dense_in_time and c.weight == 1.0 for c in schema.topology.connections)
    assert CanvasSchema(lay, metadata={"k": 1}).metadata == {"k": 1}
    schema.to_json(tmp_path / "s.json")
    assert CanvasSchema.from_json(tmp_path / "s.json") == schema
    explicit = CanvasSchema(lay, CanvasTopology([Connection("a", "b")]))
    assert len(explicit.topology.connections) == 1  # a given topology is kept as it is


@pytest.mark.parametrize("T, period, frames", [(8, 1, 8), (8, 2, 4), (8, 3, 3), (7, 4, 2),
                                               (1, 5, 1), (12, 12, 1)])
def test_period_field_spans_only_its_usable_frames(T, period, frames):
    # canvas frame t of a period-p region lives at real time t·p, so it has ceil(T / p) frames
    # whose real time falls inside the canvas (0 … T-1)
    @dataclass
    class R:
        fast: Field = Field(2, 2)
        slow: Field = Field(1, 2, period=period)

    bound = compile_schema(R(), T=T)
    spec = bound.layout.regions["slow"]
    assert spec.bounds[:2] == (0, frames)
    assert frames == len([t for t in range(T) if t * period < T])
    assert bound["slow"].num_positions == frames * 2
    assert bound.layout.regions["fast"].bounds[:2] == (0, T)
    assert max(bound.layout.real_frame("slow", t) for t in spec.frames) < T


def test_temporal_extent_beyond_the_period_frames_is_refused():
    @dataclass
    class R:
        slow: Field = Field(1, 2, period=4, temporal_extent=3)

    with pytest.raises(FieldError, match=r"slow.temporal_extent: got 3, expected <= 2 "):
        compile_schema(R(), T=8)
    assert compile_schema(R(), T=9).layout.regions["slow"].bounds[:2] == (0, 3)


@dataclass
class Joint:
    angle: Field = Field(spatial_shape=(3,))


@dataclass
class Arm:
    joints: list = dc_field(default_factory=lambda: [Joint(), Joint()])
    grip: Field = Field(spatial_shape=(2,))
    wrist: Joint = dc_field(default_factory=Joint)


def test_nested_1d_fields_compile_to_a_1d_canvas():
    bound = compile_schema(Arm(), T=2)
    assert len(bound.layout.spatial_shape) == 1
    sizes = sum(f.field.size for f in bound.fields.values())
    assert bound.layout.spatial_shape == (sizes,)  # concatenated: dense
    assert all(len(f.field.spatial_shape) == 1 for f in bound.fields.values())  # coarse too
    assert math.isclose(bound.fill_ratio, 1.0)


def test_1d_fields_keep_an_explicit_2d_canvas():
    assert len(compile_schema(Arm(), T=2, H=3, W=8).layout.spatial_shape) == 2
    assert compile_schema(Arm(), T=2, spatial_shape=(4, 8)).layout.spatial_shape == (4, 8)
    assert compile_schema(Arm(), T=2, spatial_shape=(20,)).layout.spatial_shape == (20,)
