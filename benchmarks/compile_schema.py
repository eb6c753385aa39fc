"""compile_schema at scale: fleets of 50 and 1,000 vehicles and a deep nested world.

One JSON line per case: compile time, canvas positions N, connection count, and the time to build
the topology's block-sparse (FlexAttention) mask. The public package needs ~5.7 s to build the
50-vehicle fleet's mask (N = 13,345); the target is under 0.5 s.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/compile_schema.py
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from dataclasses import field as dc_field

import torch

from canvas_engineering import Field, compile_schema
from canvas_engineering.lowering.masks import lower
from canvas_engineering.spec.canvases import fleet


@dataclass
class Sector:
    __coarse__ = Field(2, 4)
    output: Field = Field(1, 4)
    prices: Field = Field(1, 4)
    employment: Field = Field(1, 2)


@dataclass
class Region:
    __coarse__ = Field(2, 4)
    sectors: list = dc_field(default_factory=lambda: [Sector() for _ in range(4)])
    policy: Field = Field(2, 4)


@dataclass
class Country:
    __coarse__ = Field(4, 4)
    regions: list = dc_field(default_factory=lambda: [Region() for _ in range(4)])
    politics: Field = Field(2, 8)


@dataclass
class World:
    countries: list = dc_field(default_factory=lambda: [Country() for _ in range(6)])
    regime: Field = Field(4, 4)


def case(name: str, root: object) -> dict:
    start = time.perf_counter()
    bound = compile_schema(root, d_model=256)
    compiled = time.perf_counter() - start
    start = time.perf_counter()
    lower(bound.topology, bound.layout).block_mask()
    mask = time.perf_counter() - start
    return {"benchmark": "compile_schema", "case": name, "N": bound.layout.num_positions,
            "regions": len(bound.layout.regions), "connections": len(bound.topology.connections),
            "compile_seconds": round(compiled, 4), "block_mask_seconds": round(mask, 4),
            "mask_under_0_5s": mask < 0.5}


def main() -> None:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    case("warm-up", fleet(2))
    for name, root in [("fleet_50", fleet(50)), ("fleet_1000", fleet(1000)),
                       ("deep_world_6x4x4", World())]:
        print(json.dumps(case(name, root)), flush=True)


if __name__ == "__main__":
    main()
