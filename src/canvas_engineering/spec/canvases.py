"""Built-in canvases from the seed: robot manipulation, computer use, multi-robot control.

Each is a `CanvasSchema` (layout + the topology the seed pairs with it), used by the command-line
tool's default job, the benchmarks and the examples. `fleet(n)` is the seed's typed fleet of
vehicles, to compile with `compile_schema`.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field

from canvas_engineering.spec.connection import Connection
from canvas_engineering.spec.fields import Field
from canvas_engineering.spec.layout import CanvasLayout, RegionSpec
from canvas_engineering.spec.schema import CanvasSchema
from canvas_engineering.spec.topology import CanvasTopology


def robot() -> CanvasSchema:
    """Seed 000's robot manipulation canvas: 5 frames of 8×8, video + actions + reward; the
    canvas the main job trains.

    Two changes from the seed, both measured on the built-in task (issue 11, 1,000 steps):
    actions and reward weigh 24, not 2 and 1 — their 3 and 1 future positions against the
    video's 108 had left them ~5% and ~1% of the objective, and the model predicted their mean —
    and a frame attends to the actions of the two frames before it, the actions that moved what
    it shows (the seed's topology gave future frames no path to them).
    """
    layout = CanvasLayout(T=5, H=8, W=8, d_model=256, t_current=2, regions={
        "visual": RegionSpec((0, 5, 0, 6, 0, 6), semantic_type="RGB video patches"),
        "action": RegionSpec((0, 5, 6, 7, 0, 1), loss_weight=24.0,
                             semantic_type="6-DOF end-effector + gripper"),
        "reward": RegionSpec((2, 3, 7, 8, 0, 1), loss_weight=24.0,
                             semantic_type="scalar reward"),
    })
    topology = CanvasTopology([
        Connection("visual", "visual"),  # global context over all frames
        # most of a frame is the frame before it: relay each patch from one frame back
        Connection("visual", "visual", t_src=0, t_dst=-1, fn="copy"),
        Connection("visual", "action", t_src=0, t_dst=-1),  # a frame shows what the actions
        Connection("visual", "action", t_src=0, t_dst=-2),  # just before it did
        Connection("action", "visual", t_src=0, t_dst=0),  # act on what is seen now…
        Connection("action", "visual", t_src=0, t_dst=-1),  # …and just before
        Connection("action", "action", t_src=0, t_dst=-1),
        Connection("action", "action", t_src=0, t_dst=0),
        Connection("reward", "visual"),
        Connection("reward", "action"),
    ])
    return CanvasSchema(layout, topology, {"name": "robot manipulation"})


def computer_use() -> CanvasSchema:
    """Seed 000's computer-use canvas: 16,384 positions, screen + mouse + keyboard + LLM."""
    layout = CanvasLayout(T=16, H=32, W=32, d_model=768, regions={
        "screen": (0, 16, 0, 24, 0, 24),
        "mouse": RegionSpec((0, 16, 24, 26, 0, 4), loss_weight=2.0),
        "keyboard": (0, 16, 26, 28, 0, 4),
        "llm": (0, 16, 28, 32, 0, 8),
    })
    topology = CanvasTopology.causal_temporal(layout)
    return CanvasSchema(layout, topology, {"name": "computer use"})


def multi_robot() -> CanvasSchema:
    """Seed 000's two-robot coordination topology on a 4-frame 8×8 canvas."""
    layout = CanvasLayout(T=4, H=8, W=8, d_model=256, t_current=1, regions={
        "robot1_cam": (0, 4, 0, 4, 0, 4),
        "robot2_cam": (0, 4, 0, 4, 4, 8),
        "robot1_action": RegionSpec((0, 4, 4, 5, 0, 2), loss_weight=2.0),
        "robot2_action": RegionSpec((0, 4, 4, 5, 2, 4), loss_weight=2.0),
        "shared_task": RegionSpec((0, 1, 5, 6, 0, 4), is_output=False),
    })
    self_edges = [Connection(n, n) for n in layout.regions]
    topology = CanvasTopology(self_edges + [
        Connection("robot1_action", "robot1_cam"),
        Connection("robot2_action", "robot2_cam"),
        Connection("robot1_cam", "robot2_cam", weight=0.5),
        Connection("robot2_cam", "robot1_cam", weight=0.5),
        Connection("shared_task", "robot1_cam"),
        Connection("shared_task", "robot2_cam"),
        Connection("robot1_action", "shared_task"),
        Connection("robot2_action", "shared_task"),
    ])
    return CanvasSchema(layout, topology, {"name": "multi-robot control"})


@dataclass
class Vehicle:
    """Seed 000's vehicle: sensors, a plan and an action, seen from the fleet as a 4×4 summary."""

    __coarse__ = Field(4, 4)
    camera: Field = Field(8, 8)
    lidar: Field = Field(4, 8)
    plan: Field = Field(2, 4)
    action: Field = Field(1, 4, loss_weight=2.0)


@dataclass
class Fleet:
    """Seed 000's fleet: a dispatch field and an array of vehicles."""

    dispatch: Field = Field(4, 4)
    vehicles: list = dc_field(default_factory=list)


def fleet(n_vehicles: int = 50) -> Fleet:
    """A fleet of `n_vehicles` (typed; compile it with `compile_schema`)."""
    if not isinstance(n_vehicles, int) or n_vehicles < 1:
        raise ValueError(f"n_vehicles: got {n_vehicles!r}, expected an int >= 1")
    return Fleet(vehicles=[Vehicle() for _ in range(n_vehicles)])


PRESETS = {"robot": robot, "computer_use": computer_use, "multi_robot": multi_robot}
