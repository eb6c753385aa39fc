"""Train the world model on your own canvas: the robot canvas plus proprioception.

    python examples/robot_proprio.py [--key=value ...]   # e.g. --seed=1 --out=runs/proprio

`robot_proprio()` adds a `proprio` region to the built-in robot canvas: one position per frame
holding the push task's agent position and velocity (4 values), wired to the video and actions
of its own frame and the frame before. The script trains it as `canvas-engineering train
--canvas=robot_proprio:robot_proprio --regions=...` would with this folder on the import path
(`PYTHONPATH=examples`, which `evaluate --run` of such a run needs too); any `--key=value` is a
`TrainConfig` field. On the push task (README "The world model") it closed 1–4 points more of
the action gap than the robot canvas and no more of the frames'. Needs the `[train]` extra.
"""

import dataclasses
import json
import sys
from pathlib import Path

from canvas_engineering import CanvasLayout, CanvasSchema, CanvasTopology, Connection, RegionSpec
from canvas_engineering.spec.canvases import robot


def robot_proprio() -> CanvasSchema:
    base = robot()
    regions = dict(base.layout.regions)
    regions["proprio"] = RegionSpec((0, 5, 6, 7, 1, 2), loss_weight=24.0,
                                    semantic_type="agent position + velocity")
    layout: CanvasLayout = dataclasses.replace(base.layout, regions=regions)
    topology = CanvasTopology([
        *base.topology.connections,
        Connection("proprio", "proprio", t_src=0, t_dst=-1),  # where it was, how it moved
        Connection("proprio", "proprio", t_src=0, t_dst=0),
        Connection("proprio", "visual", t_src=0, t_dst=0),  # where the frame shows it…
        Connection("proprio", "visual", t_src=0, t_dst=-1),
        Connection("proprio", "action", t_src=0, t_dst=-1),  # …and the action that moved it
        Connection("action", "proprio", t_src=0, t_dst=0),  # act from where the agent is
        Connection("action", "proprio", t_src=0, t_dst=-1),
        Connection("visual", "proprio", t_src=0, t_dst=0),
        Connection("visual", "proprio", t_src=0, t_dst=-1),
    ])
    return CanvasSchema(layout, topology, {"name": "robot manipulation + proprioception"})


if __name__ == "__main__":
    from canvas_engineering.cli import main

    sys.path.insert(0, str(Path(__file__).resolve().parent))  # `robot_proprio` importable
    regions = {"visual": "video", "action": "action", "reward": "reward", "proprio": "proprio"}
    sys.argv = [sys.argv[0], "train", "--canvas=robot_proprio:robot_proprio",
                f"--regions={json.dumps(regions)}", *sys.argv[1:]]
    sys.exit(main())
