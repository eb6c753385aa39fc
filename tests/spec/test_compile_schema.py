"""Seed 000's typed-schema snippets, executed as written, and the structure the README claims."""

from __future__ import annotations

import itertools
from collections import deque

import pytest
import torch

# -- the README snippets, verbatim (seed 000) ------------------------------------------------------

SURGICAL = '''
from dataclasses import dataclass, field as dc_field
from canvas_engineering import Field, compile_schema

@dataclass
class Sensor:
    __coarse__ = Field(2, 4)  # when viewed from parent: 2×4 region
    rgb: Field = Field(12, 12)
    depth: Field = Field(6, 6)
    lidar: Field = Field(4, 8)

@dataclass
class Arm:
    joints: Field = Field(1, 7)
    force_torque: Field = Field(1, 6)
    gripper: Field = Field(1, 2, loss_weight=2.0)

@dataclass
class SurgicalRobot:
    # Per-child coarse-grained size via metadata
    sensor: Sensor = dc_field(default_factory=Sensor)
    left_arm: Arm = dc_field(
        default_factory=Arm,
        metadata={"coarse": Field(2, 4)},  # override for this edge
    )
    right_arm: Arm = dc_field(default_factory=Arm)
    safety: Field = Field(2, 4, loss_weight=5.0)

bound = compile_schema(SurgicalRobot(), d_model=256)
'''

FLEET = '''
from dataclasses import dataclass, field as dc_field
from canvas_engineering import Field, compile_schema

@dataclass
class Vehicle:
    __coarse__ = Field(4, 4)  # each vehicle → 4×4 summary
    camera: Field = Field(8, 8)
    lidar: Field = Field(4, 8)
    plan: Field = Field(2, 4)
    action: Field = Field(1, 4, loss_weight=2.0)

@dataclass
class Fleet:
    dispatch: Field = Field(4, 4)
    vehicles: list = dc_field(default_factory=list)

fleet = Fleet(vehicles=[Vehicle() for _ in range(50)])
bound = compile_schema(fleet, d_model=256)
# 50 vehicles × (4×4 coarse + 4 internal fields) = manageable
# dispatch ↔ vehicles[i] (coarse) ↔ vehicles[i].camera, etc.
# vehicles[0] does NOT directly attend to vehicles[1].camera
'''

WORLD = '''
from dataclasses import dataclass, field as dc_field
from canvas_engineering import Field, compile_schema

@dataclass
class MacroEconomy:
    __coarse__ = Field(2, 4)
    gdp: Field = Field(1, 2)
    inflation: Field = Field(1, 2)
    employment: Field = Field(1, 4)
    # ... 50+ fields

@dataclass
class Country:
    __coarse__ = Field(4, 4)
    macro: MacroEconomy = dc_field(default_factory=MacroEconomy)
    politics: Field = Field(2, 8)  # or another nested type
    demographics: Field = Field(1, 4)

@dataclass
class World:
    us: Country = dc_field(default_factory=Country)
    cn: Country = dc_field(default_factory=Country)
    regime: Field = Field(4, 4)

bound = compile_schema(World(), d_model=64)
# regime ↔ us (4×4 coarse) ↔ us.macro (2×4 coarse) ↔ us.macro.gdp
# us (coarse) ↔ cn (coarse) — countries see each other's summaries
# us.macro.gdp does NOT directly attend to cn.macro.inflation
'''


def run_snippet(code: str) -> dict:
    ns = {"__name__": "seed_snippet"}
    # dont_inherit: this module's `from __future__ import annotations` must not leak in
    exec(compile(code, "<seed 000>", "exec", dont_inherit=True), ns)
    return ns


def occupancy_ok(bound) -> bool:
    """Independent no-overlap check: painting every region covers sum(sizes) distinct cells."""
    lay = bound.layout
    grid = torch.zeros(lay.shape, dtype=torch.int32)
    for spec in lay.regions.values():
        sl = tuple(slice(spec.bounds[2 * i], spec.bounds[2 * i + 1]) for i in range(spec.ndim))
        grid[sl] += 1
    return int(grid.max()) == 1


def undirected(bound) -> set[frozenset]:
    return {frozenset((s, d)) for s, d in bound.edges() if s != d}


# -- SurgicalRobot -----------------------------------------------------------------------------


def test_surgical_robot_paths_and_coarse_sizes():
    bound = run_snippet(SURGICAL)["bound"]
    assert bound.field_names == [
        "sensor", "sensor.rgb", "sensor.depth", "sensor.lidar",
        "left_arm", "left_arm.joints", "left_arm.force_torque", "left_arm.gripper",
        "right_arm", "right_arm.joints", "right_arm.force_torque", "right_arm.gripper",
        "safety"]
    assert bound["sensor"].shape == (1, 2, 4)  # the child type's __coarse__
    assert bound["left_arm"].shape == (1, 2, 4)  # the parent's metadata override
    assert bound["right_arm"].shape == (1, 1, 1)  # default
    assert bound.coarse_fields == ["sensor", "left_arm", "right_arm"]
    assert bound.layout.regions["safety"].loss_weight == 5.0
    assert bound.layout.regions["left_arm.gripper"].loss_weight == 2.0
    assert bound.layout.d_model == 256 and bound.layout.T == 1
    assert occupancy_ok(bound)
    used = 8 + 144 + 36 + 32 + 8 + 15 + 1 + 15 + 8
    assert sum(f.num_positions for f in bound.fields.values()) == used
    assert bound.fill_ratio == pytest.approx(used / bound.layout.num_positions)
    assert bound.fill_ratio > 0.85


def test_surgical_robot_wiring():
    bound = run_snippet(SURGICAL)["bound"]
    e = undirected(bound)
    for child in ("rgb", "depth", "lidar"):
        assert {frozenset(("sensor", f"sensor.{child}"))} <= e
    for arm in ("left_arm", "right_arm"):
        for child in ("joints", "force_torque", "gripper"):
            assert frozenset((arm, f"{arm}.{child}")) in e
    # safety connects to every coarse field through the root-level intra connections
    for coarse in ("sensor", "left_arm", "right_arm"):
        assert frozenset(("safety", coarse)) in e
    # the arms do not see each other's internals, nor does safety see inside an entity
    for a, b in itertools.product(("joints", "force_torque", "gripper"), repeat=2):
        assert frozenset((f"left_arm.{a}", f"right_arm.{b}")) not in e
        assert frozenset(("safety", f"left_arm.{a}")) not in e
    assert frozenset(("safety", "sensor.rgb")) not in e
    # every edge is present in both directions (↔), and every field attends to itself
    assert all((d, s) in bound.edges() for s, d in bound.edges())
    assert all((p, p) in bound.edges() for p in bound.field_names)


# -- Fleet -------------------------------------------------------------------------------------


def fleet_of(ns, n):
    from canvas_engineering import compile_schema

    return compile_schema(ns["Fleet"](vehicles=[ns["Vehicle"]() for _ in range(n)]), d_model=32)


def test_fleet_structure():
    ns = run_snippet(FLEET)
    bound = ns["bound"]
    assert len(bound.field_names) == 1 + 50 * 5
    assert bound.arrays == {"vehicles": tuple(f"vehicles[{i}]" for i in range(50))}
    assert "vehicles[3].camera" in bound and bound["vehicles[3]"].shape == (1, 4, 4)
    assert bound["vehicles[49].action"].shape == (1, 1, 4)
    e = undirected(bound)
    for i in range(50):
        assert frozenset(("dispatch", f"vehicles[{i}]")) in e
        assert frozenset((f"vehicles[{i}]", f"vehicles[{i}].camera")) in e
        assert frozenset(("dispatch", f"vehicles[{i}].camera")) not in e
    assert frozenset(("vehicles[0]", "vehicles[1].camera")) not in e
    assert frozenset(("vehicles[0]", "vehicles[1]")) not in e  # elements isolated by default
    assert frozenset(("vehicles[0].plan", "vehicles[1].plan")) not in e
    assert occupancy_ok(bound)
    assert bound.fill_ratio > 0.95


def test_fleet_connections_grow_linearly():
    ns = run_snippet(FLEET)
    counts = {n: len(fleet_of(ns, n).topology.connections) for n in (10, 50, 200)}
    # hand count per vehicle: 5 self + 2 dispatch↔coarse + 8 coarse↔fields + 12 among 4 fields;
    # plus dispatch's self connection
    for n, c in counts.items():
        assert c == 1 + 27 * n


def test_fleet_mask_vehicle_zero_never_reads_vehicle_one_camera():
    pytest.importorskip("canvas_engineering.lowering.masks")
    ns = run_snippet(FLEET)
    bound = fleet_of(ns, 4)
    mask = bound.topology.to_bool_mask(bound.layout)
    v0 = bound["vehicles[0]"].indices
    cam1 = bound["vehicles[1].camera"].indices
    cam0 = bound["vehicles[0].camera"].indices
    assert not mask[v0][:, cam1].any()
    assert mask[v0][:, cam0].all()


# -- World -------------------------------------------------------------------------------------


def flows(bound) -> dict[str, set[str]]:
    """Information-flow graph: Connection(src, dst) carries dst → src."""
    g: dict[str, set[str]] = {p: set() for p in bound.field_names}
    for c in bound.topology.connections:
        g[c.dst].add(c.src)
    return g


def bfs(g, start, goal, removed=()):
    prev, todo = {start: None}, deque([start])
    while todo:
        u = todo.popleft()
        for v in sorted(g[u]):
            if v not in prev and v not in removed:
                prev[v] = u
                todo.append(v)
    if goal not in prev:
        return None
    path = [goal]
    while prev[path[-1]] is not None:
        path.append(prev[path[-1]])
    return path[::-1]


def test_world_readme_path_through_coarse_chain():
    bound = run_snippet(WORLD)["bound"]
    g = flows(bound)
    readme = ["us.macro.gdp", "us.macro", "us", "regime", "cn", "cn.macro", "cn.macro.inflation"]
    for a, b in itertools.pairwise(readme):
        assert b in g[a], f"no flow {a} -> {b}"
        assert a in g[b], f"no flow {b} -> {a} (↔)"
    assert "cn.macro.inflation" not in g["us.macro.gdp"]
    assert "us.macro.gdp" not in g["cn.macro.inflation"]
    # us ↔ cn directly as siblings, so the shortest route skips regime but not the chain
    assert bfs(g, "us.macro.gdp", "cn.macro.inflation") == [
        "us.macro.gdp", "us.macro", "us", "cn", "cn.macro", "cn.macro.inflation"]
    # the coarse fields are a real bottleneck: cut one and gdp reaches nothing outside it
    for cut in ("us.macro", "us", "cn", "cn.macro"):
        assert bfs(g, "us.macro.gdp", "cn.macro.inflation", removed={cut}) is None
    assert bfs(g, "us.macro.gdp", "regime", removed={"us.macro"}) is None


def test_world_sizes_and_layout():
    bound = run_snippet(WORLD)["bound"]
    assert bound["us"].shape == (1, 4, 4) and bound["cn.macro"].shape == (1, 2, 4)
    assert bound.layout.d_model == 64
    assert occupancy_ok(bound)
    used = 2 * (16 + 8 + 2 + 2 + 4 + 16 + 4) + 16
    assert bound.fill_ratio == pytest.approx(used / bound.layout.num_positions)
    assert bound.fill_ratio > 0.85
    text = bound.summary()
    assert "us.macro.gdp" in text and f"{len(bound.topology.connections)} connections" in text


def test_topology_validates_against_layout():
    for code in (SURGICAL, FLEET, WORLD):
        bound = run_snippet(code)["bound"]
        bound.topology.validate(bound.layout)
        assert set(bound.topology.region_names) == set(bound.field_names)


def test_bound_schema_round_trips_through_canvas_schema_json():
    from canvas_engineering import CanvasSchema

    bound = run_snippet(WORLD)["bound"]
    schema = bound.schema
    back = CanvasSchema.from_dict(schema.to_dict())
    assert back.layout == bound.layout
    assert back.topology == bound.topology
