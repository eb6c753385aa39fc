"""The canvas the experiments train: seed 002's toy size (N = 120 positions) on the built-in
push task.

Seed 002's v1 toy model ran on a 120-position canvas with dense attention. The README's robot
canvas has 320 positions (134 of them empty) and a sparse topology; on 2 CPU cores a step of it
costs ~3x more, so the experiments use this compact one: 5 frames of 4 x 6, a 4 x 4 patch grid
of a 16 px frame, one action and (at the present frame) one reward position per frame, every
region attending to every region (the paper's dense canvas).
"""

from __future__ import annotations

from canvas_engineering.spec.connection import Connection
from canvas_engineering.spec.layout import CanvasLayout, RegionSpec
from canvas_engineering.spec.schema import CanvasSchema
from canvas_engineering.spec.topology import CanvasTopology

CANVAS = "canvas_engineering.experiments.tasks:paper_canvas"  # TrainConfig.canvas for it
IMAGE_SIZE = 16  # 4 x 4 patches of 4 x 4 px


def paper_canvas() -> CanvasSchema:
    """T=5, H=4, W=6 (N = 120), t_current = 2: visual 4 x 4 per frame, action and reward
    columns; actions and reward weigh 8 (their 3 and 1 future positions against 48 visual)."""
    layout = CanvasLayout(T=5, H=4, W=6, d_model=128, t_current=2, regions={
        "visual": RegionSpec((0, 5, 0, 4, 0, 4), semantic_type="RGB video patches"),
        "action": RegionSpec((0, 5, 0, 1, 4, 5), loss_weight=8.0,
                             semantic_type="2-D agent velocity"),
        "reward": RegionSpec((2, 3, 0, 1, 5, 6), loss_weight=8.0, semantic_type="scalar reward"),
    })
    names = ("visual", "action", "reward")
    topology = CanvasTopology([Connection(a, b) for a in names for b in names])
    return CanvasSchema(layout, topology, {"name": "seed 002 toy canvas (N = 120)"})
