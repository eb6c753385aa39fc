"""Field declarations and the errors compile_schema raises for bad object trees."""



from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field

import pytest
import torch

from canvas_engineering import CanvasError, Field, FieldError, PlacementError, compile_schema


def test_field_defaults_and_shapes():
    f = Field()
    assert (f.h, f.w, f.spatial_shape, f.size) == (1, 1, (1, 1), 1)
    g = Field(3, 5, family="state", carrier="filter", tags=["belief"])
    assert g.spatial_shape == (3, 5) and g.tags == ("belief",)
    v = Field(spatial_shape=(2, 3, 4))
    assert v.rank == 3 and v.size == 24 and v.h is None
    assert Field(spatial_shape=(2, 3)).h == 2
    hash(g)  # a dataclass accepts it as a class-level default only if hashable


@pytest.mark.parametrize("kwargs, where", [
    ({"h": 0}, "Field.h"), ({"w": -2}, "Field.w"), ({"h": 1.5}, "Field.h"),
    ({"spatial_shape": (2, 0)}, "Field.spatial_shape[1]"), ({"spatial_shape": ()}, "spatial_shape"),
    ({"h": 2, "spatial_shape": (3, 3)}, "Field.h, w"),
    ({"period": 0}, "Field.period"), ({"temporal_extent": 0}, "Field.temporal_extent"),
    ({"loss_weight": -1.0}, "Field.loss_weight"), ({"is_output": 1}, "Field.is_output"),
    ({"family": "observations"}, "Field.family"), ({"carrier": "diffusion"}, "Field.carrier"),
    ({"attn": "crossattention"}, "Field.attn"), ({"tags": "belief"}, "Field.tags"),
])
def test_field_rejects_bad_values(kwargs, where):
    with pytest.raises(CanvasError) as e:
        Field(**kwargs)
    assert where in str(e.value)
    assert "got" in str(e.value) and "expected" in str(e.value)


def test_unknown_family_lists_valid_ones():
    with pytest.raises(FieldError, match="observation.*state"):
        Field(family="belief")


@dataclass
class Leaf:
    x: Field = Field(2, 2)


def test_bare_field_in_list_names_the_path():
    @dataclass
    class Bad:
        a: Field = Field()
        items: list = dc_field(default_factory=lambda: [Leaf(), Field(1, 1)])

    with pytest.raises(FieldError, match=r"items\[1\].*bare Field"):
        compile_schema(Bad())


def test_nested_list_and_dict_of_fields_rejected():
    @dataclass
    class Nested:
        grid: list = dc_field(default_factory=lambda: [[Leaf()]])

    with pytest.raises(FieldError, match=r"grid\[0\]"):
        compile_schema(Nested())

    @dataclass
    class Dicty:
        a: Field = Field()
        parts: dict = dc_field(default_factory=lambda: {"x": Field()})

    with pytest.raises(FieldError, match="parts"):
        compile_schema(Dicty())


def test_plain_data_lists_are_ignored():
    @dataclass
    class WithData:
        a: Field = Field()
        names: list = dc_field(default_factory=lambda: ["x", "y"])
        empty: list = dc_field(default_factory=list)

    assert compile_schema(WithData()).field_names == ["a"]


def test_cyclic_object_graph_names_the_path():
    class Node:
        def __init__(self):
            self.value = Field(1, 2)
            self.next = None

    a, b = Node(), Node()
    a.next, b.next = b, a
    with pytest.raises(FieldError, match=r"next\.next: cyclic.*already at <root>"):
        compile_schema(a)


def test_shared_but_acyclic_object_is_fine():
    shared = Leaf()

    @dataclass
    class Two:
        left: Leaf = dc_field(default_factory=lambda: shared)
        right: Leaf = dc_field(default_factory=lambda: shared)

    assert compile_schema(Two()).field_names == ["left", "left.x", "right", "right.x"]


def test_duplicate_path_rejected():
    class Root:
        pass

    root = Root()
    root.sensor = Leaf()
    setattr(root, "sensor.x", Field(1, 1))  # spells the same path as root.sensor.x
    with pytest.raises(FieldError, match="'sensor.x'.*unique"):
        compile_schema(root)


def test_temporal_extent_beyond_T_names_the_path():
    @dataclass
    class R:
        a: Field = Field()
        b: Field = Field(temporal_extent=5)

    with pytest.raises(FieldError, match=r"b\.temporal_extent: got 5, expected <= T=4"):
        compile_schema(R(), T=4)
    assert compile_schema(R(), T=5)["b"].shape == (5, 1, 1)


def test_root_without_fields_and_bad_coarse_metadata():
    with pytest.raises(FieldError, match="root"):
        compile_schema(42)

    @dataclass
    class Empty:
        pass

    with pytest.raises(FieldError, match="no Field"):
        compile_schema(Empty())

    @dataclass
    class BadCoarse:
        child: Leaf = dc_field(default_factory=Leaf, metadata={"coarse": (2, 2)})

    with pytest.raises(FieldError, match=r"child \(coarse field\)"):
        compile_schema(BadCoarse())


def test_unknown_path_lookup_and_policy_values():
    bound = compile_schema(Leaf())
    with pytest.raises(FieldError, match="'y'"):
        bound["y"]
    with pytest.raises(FieldError, match=r"ConnectivityPolicy.intra.*'dense'"):
        compile_schema(Leaf(), connectivity="fully_connected")
    with pytest.raises(FieldError, match="ConnectivityPolicy.array"):
        compile_schema(Leaf(), connectivity={"array": "mesh"})
    with pytest.raises(FieldError, match="ConnectivityPolicy.temporal"):
        compile_schema(Leaf(), connectivity={"temporal": "future"})
    with pytest.raises(FieldError, match="layout_strategy"):
        compile_schema(Leaf(), layout_strategy="tetris")


def test_fixed_canvas_too_small_raises():
    with pytest.raises(FieldError, match="spatial_shape"):
        compile_schema(Leaf(), H=1, W=1)
    bound = compile_schema(Leaf(), H=4, W=4)
    assert bound.layout.spatial_shape == (4, 4) and bound.fill_ratio == pytest.approx(4 / 16)


def test_place_and_extract_round_trip_and_size_checks():
    @dataclass
    class R:
        a: Field = Field(2, 3)
        b: Field = Field(1, 4, period=2)

    bound = compile_schema(R(), T=3, d_model=5)
    n = bound.layout.num_positions
    canvas = torch.zeros(2, n, 5)
    vals = torch.randn(2, 3, 2, 3, 5)  # (B, frames, h, w, D)
    out = bound["a"].place(canvas, vals)
    assert torch.equal(bound["a"].extract(out, grid=True), vals)
    assert torch.equal(bound["a"].extract(out), vals.reshape(2, 18, 5))
    # every other position untouched, and the input canvas not modified in place
    mask = torch.ones(n, dtype=torch.bool)
    mask[bound["a"].indices] = False
    assert torch.equal(out[:, mask], canvas[:, mask]) and canvas.abs().sum() == 0
    assert bound["b"].spec.period == 2
    with pytest.raises(PlacementError, match=r"a: values.*\(2, 17, 5\)"):
        bound["a"].place(canvas, torch.zeros(2, 17, 5))
    with pytest.raises(PlacementError, match=r"b: canvas"):
        bound["b"].extract(torch.zeros(2, n + 1, 5))
