"""The report on one canvas: its regions, mask densities and 3-D picture, printed and drawn."""

from __future__ import annotations

from pathlib import Path

from canvas_engineering.spec.schema import CanvasSchema
from canvas_engineering.viz.tables import density_table, region_table


def report(schema: CanvasSchema, name: str, out: Path | None) -> None:
    """Print the tables of `schema` and, with `out`, draw its 3-D region allocation there."""
    layout = schema.layout
    print(f"== {name}: T={layout.T} spatial={layout.spatial_shape} "
          f"N={layout.num_positions} d_model={layout.d_model} t_current={layout.t_current}")
    print(region_table(schema))
    print("topology mask densities (share of the N×N query-key pairs connected):")
    print(density_table(schema))
    if out is not None and len(layout.spatial_shape) == 2:
        from canvas_engineering.viz.canvas_3d import draw_layout  # matplotlib: only when drawn

        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{name}.png"
        draw_layout(layout, path, title=f"{name}: {layout.num_positions} positions")
        print(f"picture: {path}")
    print()
