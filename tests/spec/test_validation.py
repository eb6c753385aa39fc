"""Bad declarations fail where they are written, with an error naming field, value, expectation."""

import json

import pytest
import torch

from canvas_engineering import (
    AttentionTypeError,
    CanvasLayout,
    CanvasSchema,
    CanvasTopology,
    Connection,
    OverlapError,
    PlacementError,
    RegionError,
    RegionSpec,
    SchemaError,
    SpatiotemporalCanvas,
    TemporalFill,
    TopologyError,
)


def layout(**regions):
    return CanvasLayout(T=4, H=4, W=4, regions=regions or {"a": (0, 4, 0, 2, 0, 4)})


@pytest.mark.parametrize("bounds, match", [
    ((0, 4, 0, 2), None),  # valid on its own, wrong length for a 2-D canvas (checked below)
    ((0, 4, 0, 2, 0), "even number"),
    ((0, 0, 0, 2, 0, 2), "0 <= lo < hi on axis 0"),
    ((-1, 2, 0, 2, 0, 2), "0 <= lo < hi on axis 0"),
    ((0, 2, 3, 1, 0, 2), "0 <= lo < hi on axis 1"),
    ((0, 2.5, 0, 1, 0, 1), "tuple of ints"),
])
def test_regionspec_bounds(bounds, match):
    if match is None:
        RegionSpec(bounds=bounds)
        with pytest.raises(RegionError, match=r"regions\['a'\].bounds.*6 ints"):
            layout(a=bounds)
        return
    with pytest.raises(RegionError, match="bounds") as e:
        RegionSpec(bounds=bounds)
    assert match in str(e.value)


def test_bounds_outside_canvas_name_the_region_and_axis():
    with pytest.raises(RegionError, match=r"regions\['a'\].*axis 2 within \[0, 4\]"):
        layout(a=(0, 4, 0, 2, 0, 5))
    with pytest.raises(RegionError, match=r"axis 0 within \[0, 4\]"):
        layout(a=(0, 5, 0, 2, 0, 4))


@pytest.mark.parametrize("kwargs, field", [
    ({"period": 0}, "period"), ({"period": 1.5}, "period"),
    ({"loss_weight": -1.0}, "loss_weight"), ({"loss_weight": float("nan")}, "loss_weight"),
    ({"is_output": "yes"}, "is_output"), ({"default_attn": "flash"}, "default_attn"),
    ({"semantic_embedding": (0.1, ...)}, "semantic_embedding"),
    ({"semantic_embedding": ()}, "semantic_embedding"),
])
def test_regionspec_fields(kwargs, field):
    with pytest.raises((RegionError, AttentionTypeError), match=field) as e:
        RegionSpec(bounds=(0, 1, 0, 1, 0, 1), **kwargs)
    assert repr(next(iter(kwargs.values())))[:4] in str(e.value)


def test_overlap_is_an_error_unless_opted_in():
    with pytest.raises(OverlapError, match="'a'.*overlaps 'b'.*allow_overlap=True"):
        layout(a=(0, 4, 0, 2, 0, 4), b=(1, 2, 1, 3, 0, 1))
    lay = CanvasLayout(T=4, H=4, W=4, allow_overlap=True,
                       regions={"a": (0, 4, 0, 2, 0, 4), "b": (1, 2, 1, 3, 0, 1)})
    assert set(lay.region_indices("a")) & set(lay.region_indices("b"))
    layout(a=(0, 4, 0, 2, 0, 4), b=(0, 4, 2, 4, 0, 4))  # touching is not overlapping


@pytest.mark.parametrize("kwargs, field", [
    ({"T": 0, "H": 2, "W": 2}, "T"), ({"T": 2, "H": 2}, "spatial_shape"),
    ({"T": 2, "H": 2, "W": 2, "t_current": 3}, "t_current"),
    ({"T": 2, "H": 2, "W": 2, "d_model": 0}, "d_model"),
    ({"T": 2, "spatial_shape": (2, 0)}, r"spatial_shape\[1\]"),
    ({"T": 2, "H": 3, "W": 2, "spatial_shape": (2, 2)}, "H, W"),
    ({"T": 2, "H": 2, "W": 2, "regions": {"a": "everywhere"}}, r"regions\['a'\]"),
    ({"T": 2, "H": 2, "W": 2, "regions": {"": (0, 1, 0, 1, 0, 1)}}, "regions key"),
])
def test_layout_fields(kwargs, field):
    with pytest.raises(RegionError, match=field):
        CanvasLayout(**kwargs)


def test_unknown_region_lookups_list_valid_names():
    lay = layout()
    with pytest.raises(RegionError, match=r"region: got 'b', expected one of \['a'\]"):
        lay.region_indices("b")
    with pytest.raises(RegionError, match="canvas_t"):
        lay.real_frame("a", canvas_t=4)  # outside the region's frames [0, 4)


@pytest.mark.parametrize("kwargs, field", [
    ({"src": ""}, "src"), ({"dst": 3}, "dst"), ({"weight": 0}, "weight"),
    ({"weight": float("inf")}, "weight"), ({"t_src": 0.5}, "t_src"), ({"t_dst": True}, "t_dst"),
    ({"fn": "flash_attention"}, "fn"), ({"temporal_fill": "smear"}, "temporal_fill"),
    ({"interpolation_order": 0, "temporal_fill": TemporalFill.INTERPOLATE}, "interpolation_order"),
    ({"interpolation_order": 2}, "interpolation_order"),
])
def test_connection_fields(kwargs, field):
    args = {"src": "a", "dst": "a", **kwargs}
    with pytest.raises((TopologyError, AttentionTypeError), match=field):
        Connection(**args)


def test_connection_to_missing_region_is_an_error_not_an_empty_mask():
    topo = CanvasTopology([Connection("a", "a"), Connection("a", "acton")])
    msg = r"connections\[1\].dst: got 'acton', expected a region of the layout, one of \['a'\]"
    for use in (topo.to_attention_mask, topo.to_block_mask, topo.to_index_pairs,
                topo.attention_ops, topo.validate):
        with pytest.raises(TopologyError, match=msg):
            use(layout())
    with pytest.raises(TopologyError, match="acton"):
        CanvasSchema(layout(), topo)


def test_topology_arguments():
    with pytest.raises(TopologyError, match=r"connections\[0\]"):
        CanvasTopology(["a->b"])
    with pytest.raises(TopologyError, match="regions"):
        CanvasTopology.dense("abc")
    with pytest.raises(TopologyError, match="hub"):
        CanvasTopology.hub_spoke("r1", ["r1", "r2"])


def test_unknown_attention_type_lists_valid_names():
    with pytest.raises(AttentionTypeError, match="cross_attention"):
        Connection("a", "b", fn="crossattention")


def test_place_rejects_wrong_sizes_instead_of_truncating():
    canvas = SpatiotemporalCanvas(CanvasLayout(T=2, H=2, W=2, d_model=8,
                                               regions={"a": (0, 2, 0, 1, 0, 2)}))
    batch = canvas.create_empty(2)
    for bad_shape in [(2, 3, 8), (2, 5, 8), (2, 4, 7), (3, 4, 8), (4, 8)]:
        with pytest.raises(PlacementError, match=r"region 'a'.*expected \(2, 4, 8\)"):
            canvas.place(batch, torch.zeros(bad_shape), "a")
    canvas.place(batch, torch.zeros(2, 2, 1, 2, 8), "a")  # the region's own shape is fine
    with pytest.raises(PlacementError, match="canvas"):
        canvas.extract(torch.zeros(2, 7, 8), "a")
    with pytest.raises(RegionError, match="region"):
        canvas.extract(batch, "b")


def schema_dict():
    s = CanvasSchema(layout(), CanvasTopology.isolated(["a"]))
    return s.to_dict()


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d.update(extra=1), r"unknown keys \['extra'\]"),
    (lambda d: d.pop("topology"), r"missing keys \['topology'\]"),
    (lambda d: d.update(format_version=99), "format_version: got 99"),
    (lambda d: d.update(format="other"), "format"),
    (lambda d: d["layout"]["regions"]["a"].update(perod=2), r"regions\['a'\].*perod"),
    (lambda d: d["topology"]["connections"][0].update(fill="hold"), r"connections\[0\].*fill"),
    (lambda d: d["topology"]["connections"][0].update(temporal_fill="HOLDD"), "temporal_fill"),
    (lambda d: d["layout"].pop("T"), r"missing keys \['T'\]"),
])
def test_schema_json_rejects_bad_keys(tmp_path, mutate, match):
    d = schema_dict()
    mutate(d)
    path = tmp_path / "s.json"
    path.write_text(json.dumps(d))
    with pytest.raises((SchemaError, TopologyError), match=match):
        CanvasSchema.from_json(path)


def test_schema_json_round_trips_every_field(tmp_path):
    lay = CanvasLayout(T=8, spatial_shape=(4, 4), d_model=32, t_current=3, regions={
        "a": RegionSpec(bounds=(0, 8, 0, 2, 0, 4), period=2, is_output=False, loss_weight=0.5,
                        semantic_type="x", semantic_embedding=(1.0, -2.0), embedding_model="m",
                        default_attn="mamba"),
        "b": (0, 4, 2, 4, 0, 4)})
    topo = CanvasTopology([
        Connection("a", "b", weight=0.25, t_src=0, t_dst=-1, fn="gated",
                   temporal_fill=TemporalFill.INTERPOLATE, interpolation_order=3),
        Connection("b", "a", temporal_fill=TemporalFill.DROP, t_src=None, t_dst=0)])
    schema = CanvasSchema(lay, topo, {"note": [1, 2]})
    schema.to_json(tmp_path / "s.json")
    back = CanvasSchema.from_json(tmp_path / "s.json")
    assert back == schema
    assert back.to_dict() == schema.to_dict()
    assert back.topology.connections[0].temporal_fill is TemporalFill.INTERPOLATE


def test_failed_write_leaves_no_file(tmp_path):
    schema = CanvasSchema(layout(), CanvasTopology.isolated(["a"]))
    object.__setattr__(schema, "metadata", {"x": object()})  # bypass validation to force a failure
    with pytest.raises(TypeError):
        schema.to_json(tmp_path / "s.json")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SchemaError, match="metadata"):
        CanvasSchema(layout(), CanvasTopology.isolated(["a"]), {"x": object()})
