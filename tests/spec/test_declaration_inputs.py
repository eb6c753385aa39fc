"""Declarations take numpy integers like Python ints, refuse canvases too large to address
before allocating anything, and refuse absurdly deep object trees with a FieldError."""

from __future__ import annotations

import json
from dataclasses import dataclass, make_dataclass
from dataclasses import field as dc_field

import numpy as np
import pytest

from canvas_engineering import (
    CanvasLayout,
    Connection,
    Field,
    FieldError,
    RegionError,
    RegionSpec,
    compile_schema,
)
from canvas_engineering.process.program import Clock
from canvas_engineering.spec.layout import MAX_POSITIONS

i64 = np.int64


def _all_python(obj) -> bool:
    """True if every number in a to_dict() tree is a plain Python int / float / bool."""
    if isinstance(obj, dict):
        return all(_all_python(v) for v in obj.values())
    if isinstance(obj, list):
        return all(_all_python(v) for v in obj)
    return obj is None or type(obj) in (int, float, bool, str)


def test_layout_with_numpy_ints_serialises():
    lay = CanvasLayout(T=i64(4), H=np.int32(3), W=i64(3), d_model=i64(8), t_current=i64(1),
                       regions={"a": (i64(0), i64(4), 0, 1, 0, 3),
                                "b": RegionSpec(bounds=(0, 2, 1, 3, 0, 3), period=i64(2))})
    d = lay.to_dict()
    assert _all_python(d)
    assert json.loads(json.dumps(d))["T"] == 4
    assert type(lay.regions["b"].period) is int and type(lay.t_current) is int


def test_field_and_compile_schema_take_numpy_ints():
    @dataclass
    class Robot:
        cam: Field = Field(i64(2), i64(3), period=i64(2), temporal_extent=i64(2))
        arm: Field = Field(spatial_shape=(np.int16(1), np.uint8(4)))

    f = Robot().cam
    assert (type(f.period), type(f.temporal_extent)) == (int, int)
    bound = compile_schema(Robot(), T=i64(4), d_model=i64(8), t_current=i64(1))
    d = bound.schema.to_dict()
    assert _all_python(d)
    json.dumps(d)
    assert bound.layout.T == 4 and bound.layout.regions["cam"].period == 2


def test_connection_and_clock_store_python_ints():
    c = Connection("a", "b", t_src=i64(0), t_dst=i64(-1), temporal_fill="interpolate",
                   interpolation_order=i64(2))
    assert _all_python(c.to_dict())
    clock = Clock(period=i64(3), phase=i64(1), cooldown=i64(1), max_silence=i64(5))
    assert _all_python(clock.to_dict())


# -- canvases too large to address ------------------------------------------------------------

def test_max_positions_is_the_int32_index_limit():
    assert MAX_POSITIONS == 2**31 - 1


def test_huge_layout_rejected_before_allocating():
    # 10**12 positions: the overlap check used to allocate 3.6 TiB (int32 per position)
    with pytest.raises(RegionError, match=r"canvas shape \(10000, 10000, 10000\): got "
                       r"1000000000000 positions, expected at most 2147483647"):
        CanvasLayout(T=10**4, H=10**4, W=10**4, regions={"a": (0, 1, 0, 1, 0, 1)})
    with pytest.raises(RegionError, match="at most 2147483647"):
        CanvasLayout(T=1, spatial_shape=(2**31,), regions={})
    lay = CanvasLayout(T=1, spatial_shape=(2**20,), regions={"a": (0, 1, 0, 2**20)})
    assert lay.num_positions == 2**20  # a large but addressable canvas still works


def test_huge_field_rejected_before_packing():
    # 10**12 positions in one field used to keep the skyline packer busy for minutes
    with pytest.raises(FieldError, match=r"Field.spatial_shape \(1000000, 1000000\): "
                       r"got 1000000000000 positions, expected at most 2147483647"):
        Field(10**6, 10**6)
    with pytest.raises(FieldError, match=r"Field.spatial_shape"):
        Field(spatial_shape=(10**4, 10**4, 10**4))


def test_absurd_period_rejected_where_declared():
    # real time t·period is an int64 tensor in the lowering: 10**30 used to fail there
    with pytest.raises(FieldError, match=r"Field.period: got 10{30}, expected an int in \[1, 2147483647\]"):
        Field(period=10**30)
    with pytest.raises(RegionError, match=r"period: got 10{30}"):
        RegionSpec(bounds=(0, 1, 0, 1, 0, 1), period=10**30)


def test_fields_that_only_together_are_too_large_rejected_before_packing():
    # each field addresses fine, but T frames of all of them do not
    @dataclass
    class Big:
        a: Field = Field(2**15, 2**15)  # 2**30 positions per frame
        b: Field = Field(2**15, 2**15)

    with pytest.raises(FieldError, match=r"T=4 frames.*got 8589934592 positions"):
        compile_schema(Big(), T=4)


# -- deep nesting ---------------------------------------------------------------------------------

def _nest(levels: int):
    """An object tree `levels` dataclasses deep, with one Field at the bottom (built bottom-up:
    a chain of default factories would itself recurse `levels` deep)."""
    obj = make_dataclass("L0", [("x", Field, dc_field(default=Field()))])()
    for i in range(1, levels):
        obj = make_dataclass(f"L{i}", [("c", type(obj))])(c=obj)
    return obj


def test_deep_nesting_is_a_field_error_not_recursion_error():
    with pytest.raises(FieldError, match=r"nesting depth: got 101, expected at most 100") as e:
        compile_schema(_nest(3000))
    assert str(e.value).startswith("c.c.c.")  # the path where the limit was crossed


def test_moderate_nesting_still_compiles():
    bound = compile_schema(_nest(40))
    assert len(bound.fields) == 40  # 39 coarse fields + the leaf
