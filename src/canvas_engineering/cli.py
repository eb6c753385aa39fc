"""The `canvas-engineering` command-line tool. Thin: it calls the library and prints.

    canvas-engineering                 # report on the built-in canvases (the default job)
    canvas-engineering report --out DIR --canvas robot
    canvas-engineering inspect schema.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .lowering import lower
from .presets import PRESETS
from .schema import CanvasSchema
from .topology import CanvasTopology


def region_table(schema: CanvasSchema) -> str:
    """One line per region: name, bounds, positions, period, loss weight, share of the canvas."""
    layout = schema.layout
    header = (f"{'region':<16} {'bounds (t0,t1,h0,h1,w0,w1)':<28} {'positions':>9} "
              f"{'period':>6} {'loss_w':>6} {'output':>6} {'share':>7}")
    rows = [header]
    for name, spec in layout.regions.items():
        share = spec.num_positions / layout.num_positions
        rows.append(f"{name:<16} {spec.bounds!s:<28} {spec.num_positions:>9} {spec.period:>6} "
                    f"{spec.loss_weight:>6g} {spec.is_output!s:>6} {share:>7.1%}")
    covered = sum(s.num_positions for s in layout.regions.values())
    rows.append(f"{'(unallocated)':<16} {'':<28} {layout.num_positions - covered:>9}")
    return "\n".join(rows)


def density_table(schema: CanvasSchema) -> str:
    """Mask density of the schema's topology and of the standard constructors on its regions."""
    layout = schema.layout
    topologies = {
        "declared": schema.topology,
        "dense": CanvasTopology.dense(layout),
        "isolated": CanvasTopology.isolated(layout),
        "causal_temporal": CanvasTopology.causal_temporal(layout),
    }
    lines = []
    for name, topo in topologies.items():
        lines.append(f"  {name:<16} {len(topo.connections):>4} connections   "
                     f"mask density {lower(topo, layout).density():7.2%}")
    return "\n".join(lines)


def report(schema: CanvasSchema, name: str, out: Path | None) -> None:
    layout = schema.layout
    print(f"== {name}: T={layout.T} spatial={layout.spatial_shape} "
          f"N={layout.num_positions} d_model={layout.d_model} t_current={layout.t_current}")
    print(region_table(schema))
    print("topology mask densities (share of the N×N query-key pairs connected):")
    print(density_table(schema))
    if out is not None and len(layout.spatial_shape) == 2:
        from .pictures import draw_layout

        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{name}.png"
        draw_layout(layout, path, title=f"{name}: {layout.num_positions} positions")
        print(f"picture: {path}")
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="canvas-engineering", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    rep = sub.add_parser("report", help="region maps, mask densities and pictures of the "
                                        "built-in canvases")
    rep.add_argument("--canvas", choices=sorted(PRESETS), action="append",
                     help="only this built-in canvas (repeatable; default: all)")
    rep.add_argument("--out", type=Path, default=Path("canvas_out"),
                     help="directory for the PNG pictures (default: canvas_out)")
    ins = sub.add_parser("inspect", help="report on a schema JSON file")
    ins.add_argument("path", type=Path)
    ins.add_argument("--out", type=Path, default=None, help="directory for a PNG picture")
    args = parser.parse_args(argv)

    if args.command == "inspect":
        try:
            schema = CanvasSchema.from_json(args.path)
        except (OSError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        report(schema, args.path.stem, args.out)
        return 0
    names = (args.canvas if args.command == "report" else None) or list(PRESETS)
    out = args.out if args.command == "report" else Path("canvas_out")
    for name in names:
        report(PRESETS[name](), name, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
