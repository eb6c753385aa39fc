"""A bad schema file raises SchemaError (a ValueError) naming the file, the region or connection
and the key; a missing file raises OSError. Never RecursionError, UnicodeDecodeError,
OverflowError or MemoryError."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from canvas_engineering import (
    CanvasLayout,
    CanvasSchema,
    CanvasTopology,
    Connection,
    RegionSpec,
    SchemaError,
)


def good() -> dict:
    lay = CanvasLayout(T=4, H=4, W=4, d_model=8, regions={
        "cam": RegionSpec(bounds=(0, 4, 0, 2, 0, 4), period=2),
        "act": (0, 4, 2, 3, 0, 1)})
    topo = CanvasTopology([Connection("cam", "cam"), Connection("act", "cam", weight=0.5)])
    return CanvasSchema(lay, topo, {"run": "x"}).to_dict()


def load(tmp_path, data: dict | str | bytes):
    path = tmp_path / "robot.json"
    if isinstance(data, dict):
        data = json.dumps(data)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return CanvasSchema.from_json(path)


def test_good_file_loads(tmp_path):
    assert load(tmp_path, good()).to_dict() == good()


@pytest.mark.parametrize("mutate, where", [
    # a value a declaration rejects: the error names the region and the key
    (lambda d: d["layout"]["regions"]["cam"].update(period=0), r"layout.regions\['cam'\].period"),
    (lambda d: d["layout"]["regions"]["act"].update(bounds=[0, 9, 2, 3, 0, 1]),
     r"layout.regions\['act'\].bounds"),
    (lambda d: d["layout"]["regions"]["act"].update(bounds=5), r"layout.regions\['act'\].bounds"),
    (lambda d: d["layout"].update(spatial_shape="44"), r"layout.spatial_shape"),
    (lambda d: d["layout"].update(d_model=0), r"layout.d_model"),
    # ... or the connection by index
    (lambda d: d["topology"]["connections"][1].update(weight=-1), r"topology.connections\[1\].weight"),
    (lambda d: d["topology"]["connections"][1].update(dst="camera"),
     r"topology.connections\[1\].dst: got 'camera'"),
    (lambda d: d["topology"]["connections"][0].update(t_src=1.5), r"topology.connections\[0\].t_src"),
])
def test_error_names_file_region_or_connection_and_key(tmp_path, mutate, where):
    d = good()
    mutate(d)
    with pytest.raises(SchemaError, match=r"robot\.json: " + where):
        load(tmp_path, d)


@pytest.mark.parametrize("mutate, where", [
    (lambda d: d["layout"].update(T=True), r"layout.T: got True"),
    (lambda d: d["layout"]["regions"]["cam"].update(period=True), r"regions\['cam'\].period: got True"),
    (lambda d: d["layout"]["regions"]["cam"].update(loss_weight=False), r"regions\['cam'\].loss_weight"),
    (lambda d: d["topology"]["connections"][0].update(weight=True), r"connections\[0\].weight"),
    (lambda d: d["topology"]["connections"][0].update(t_dst=False), r"connections\[0\].t_dst"),
])
def test_bool_where_number_expected(tmp_path, mutate, where):
    d = good()
    mutate(d)
    with pytest.raises(SchemaError, match=where):
        load(tmp_path, d)


def test_duplicate_keys_name_the_object(tmp_path):
    text = json.dumps(good())
    region = text.replace('"period": 2', '"period": 2, "period": 3', 1)
    with pytest.raises(SchemaError, match=r"robot\.json: layout.regions\['cam'\]: duplicate keys "
                                          r"\['period'\]"):
        load(tmp_path, region)
    name = text.replace('"act": {', '"cam": {"bounds": [0, 1, 3, 4, 0, 1]}, "act": {', 1)
    with pytest.raises(SchemaError, match=r"layout.regions: duplicate keys \['cam'\]"):
        load(tmp_path, name)
    top = text.replace('"format_version": 1', '"format_version": 1, "format_version": 1', 1)
    with pytest.raises(SchemaError, match=r"robot\.json: schema: duplicate keys"):
        load(tmp_path, top)
    meta = text.replace('"run": "x"', '"run": "x", "run": "y"', 1)
    with pytest.raises(SchemaError, match=r"metadata: duplicate keys \['run'\]"):
        load(tmp_path, meta)


def test_non_utf8_bytes(tmp_path):
    data = json.dumps(good()).encode().replace(b'"x"', b'"\xff\xfe"')
    with pytest.raises(SchemaError, match=r"robot\.json: not UTF-8 .*byte 0xff at offset"):
        load(tmp_path, data)


@pytest.mark.parametrize("mutate, where", [
    (lambda d: d["layout"].update(T=10**30),
     r"layout: canvas shape \(10{30}, 4, 4\): got 160{30} positions, expected at most 2147483647"),
    (lambda d: d["layout"]["regions"]["cam"].update(loss_weight=10**400),
     r"layout.regions\['cam'\].loss_weight: got 10{400}, expected a finite number"),
    (lambda d: d["layout"]["regions"]["cam"].update(semantic_embedding=[10**400]),
     r"layout.regions\['cam'\].semantic_embedding: got \[10{400}\]"),
    (lambda d: d["topology"]["connections"][0].update(weight=10**400),
     r"topology.connections\[0\].weight: got 10{400}"),
    (lambda d: d["layout"]["regions"]["cam"].update(period=10**30),
     r"layout.regions\['cam'\].period: got 10{30}, expected an int in \[1, 2147483647\]"),
    (lambda d: d["layout"].update(spatial_shape=[2**31 - 1], regions={}),
     r"layout: canvas shape \(4, 2147483647\): got 8589934588 positions"),
])
def test_absurd_integers(tmp_path, mutate, where):
    d = good()
    mutate(d)
    with pytest.raises(SchemaError, match=r"robot\.json: " + where):
        load(tmp_path, d)


def test_largest_canvas_loads_without_allocating_per_position(tmp_path):
    # 2**31 - 1 positions is legal; loading the declaration must not allocate per position (the
    # overlap check used to allocate an int32 grid of N entries: 8 GiB here)
    d = good()
    d["layout"].update(T=1, spatial_shape=[2**31 - 1], t_current=0, regions={
        "a": {"bounds": [0, 1, 0, 2**30]}, "b": {"bounds": [0, 1, 2**30, 2**31 - 1]}})
    d["topology"]["connections"] = [{"src": "a", "dst": "b"}]
    tracemalloc.start()
    try:
        schema = load(tmp_path, d)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert schema.layout.num_positions == 2**31 - 1
    assert peak < 2**20  # numpy reports its buffers to tracemalloc


def test_integer_with_too_many_digits(tmp_path):
    text = json.dumps(good()).replace('"T": 4', '"T": ' + "9" * 5000, 1)
    with pytest.raises(SchemaError, match=r"robot\.json: not valid JSON .*digits"):
        load(tmp_path, text)


@pytest.mark.parametrize("depth", [100_000, 900])
def test_pathologically_nested_json(tmp_path, depth):
    d = good()
    text = json.dumps(d).replace('"x"', "[" * depth + "]" * depth, 1)  # inside metadata
    with pytest.raises(SchemaError, match=r"robot\.json: .*nest"):
        load(tmp_path, text)


def test_missing_file_is_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        CanvasSchema.from_json(tmp_path / "absent.json")


@pytest.mark.parametrize("text", ["", "[]", "null", '{"format": 1', "\ufeff{}"])
def test_not_a_schema_object(tmp_path, text):
    with pytest.raises(SchemaError, match=r"robot\.json"):
        load(tmp_path, text)


def _leaves(d, path=()):
    """Paths of every value in a JSON tree (objects and arrays included)."""
    items = d.items() if isinstance(d, dict) else enumerate(d) if isinstance(d, list) else ()
    for k, v in items:
        yield (*path, k)
        yield from _leaves(v, (*path, k))


ODD = [None, True, -1, 0, 1.5, float("inf"), 10**400, "x", "", [], {}, [[1]], {"a": 1}]


def test_any_odd_value_anywhere_loads_or_is_a_schema_error(tmp_path):
    d0 = good()
    d0["layout"]["regions"]["cam"].update(semantic_embedding=[0.5, 1.0], default_attn="mamba")
    d0["topology"]["connections"][1].update(t_src=0, t_dst=-1, fn="gated")
    failures = []
    for path in _leaves(d0):
        for value in ODD:
            d = json.loads(json.dumps(d0))
            node = d
            for k in path[:-1]:
                node = node[k]
            node[path[-1]] = value
            try:
                load(tmp_path, json.dumps(d).replace("Infinity", "1e999"))
            except SchemaError:
                pass
            except Exception as e:  # noqa: BLE001 - the point is to catch every other kind
                failures.append((path, value, type(e).__name__, str(e)[:80]))
    assert failures == []
