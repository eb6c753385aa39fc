"""Seed 000's three canvases — robot manipulation, computer use, multi-robot control — with
their region tables, mask densities and pictures (3-D regions, topology, mask by region).

    python examples/define_canvas.py [--out canvas_out]

Each canvas is declared in `canvas_engineering/spec/canvases.py`; this prints and draws them.
Needs matplotlib (the `[train]` extra).
"""

import argparse
from pathlib import Path

from canvas_engineering.spec.canvases import computer_use, multi_robot, robot
from canvas_engineering.viz.show import show
from canvas_engineering.viz.tables import density_table, region_table

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--out", type=Path, default=Path("canvas_out"))
args = p.parse_args()

for name, schema in [("robot", robot()), ("computer_use", computer_use()),
                     ("multi_robot", multi_robot())]:
    layout = schema.layout
    print(f"== {name}: {layout.T} frames × {layout.spatial_shape} = {layout.num_positions} "
          f"positions, d_model {layout.d_model}")
    print(region_table(schema))
    print(density_table(schema))
    for path in show(schema, args.out, name):
        print(f"wrote {path}")
    print()
