"""Every picture of a canvas, and the `show` subcommand that writes them.

    canvas-engineering show                                   # the 3 built-in canvases + fleet
    canvas-engineering show schema.json [other.json] [--out DIR] [--threshold 0.3]

For each schema: `<name>_regions.png` (3-D region allocation), `<name>_topology.png` (the
connection graph), `<name>_mask.png` (the mask by region). Given a second schema, also
`<name>_vs_<other>_compat.png`: their compatible regions linked; regions without embeddings
are embedded first with the default MiniLM embedder (the `[semantic]` extra).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from canvas_engineering.spec.schema import CanvasSchema
from canvas_engineering.viz._common import BUILTIN, builtin_schema
from canvas_engineering.viz.canvas_3d import draw_layout
from canvas_engineering.viz.compat_plot import draw_compatible
from canvas_engineering.viz.mask_plot import draw_mask
from canvas_engineering.viz.topology_plot import draw_topology


def load(name: str) -> tuple[str, CanvasSchema]:
    """(picture name, schema) for a built-in canvas name or a schema JSON file."""
    if name in BUILTIN:
        return name, builtin_schema(name)
    path = Path(name)
    return path.stem, CanvasSchema.from_json(path)


def show(schema: CanvasSchema, out: Path, name: str) -> list[Path]:
    """Write the region, topology and mask pictures of `schema` to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    if len(schema.layout.spatial_shape) <= 2:
        path = out / f"{name}_regions.png"
        draw_layout(schema.layout, path, title=f"{name}: {schema.layout.num_positions} "
                    f"positions, {len(schema.layout.regions)} regions")
        paths.append(path)
    paths.append(draw_topology(schema, out / f"{name}_topology.png"))
    paths.append(draw_mask(schema, out / f"{name}_mask.png"))
    return paths


def embedded(a: CanvasSchema, b: CanvasSchema) -> tuple[CanvasSchema, CanvasSchema]:
    """Both schemas as given when every region has an embedding, else both embedded anew with
    the default embedder (so their distances come from one model)."""
    if all(s.semantic_embedding is not None
           for x in (a, b) for s in x.layout.regions.values()):
        return a, b
    from canvas_engineering.integrations.semantic import default_embedder
    from canvas_engineering.spec.semantic import compute_semantic_embeddings

    embed = default_embedder()
    print(f"embedding the regions' semantic types with {embed.model}")
    return compute_semantic_embeddings(a, embed), compute_semantic_embeddings(b, embed)


def add_parser(sub, parents) -> None:
    p = sub.add_parser("show", parents=parents, help="pictures of a schema: 3-D regions, "
                       "topology, mask by region (and compatible regions with a second one)")
    p.add_argument("schema", nargs="?", default=None,
                   help=f"a schema JSON file or a built-in canvas {list(BUILTIN)} "
                   "(default: all four built-ins)")
    p.add_argument("other", nargs="?", default=None,
                   help="a second schema: also draw the two with their compatible regions")
    p.add_argument("--out", type=Path, default=Path("canvas_out"),
                   help="directory for the PNGs (default: canvas_out)")
    p.add_argument("--threshold", type=float, default=0.3,
                   help="transfer distance at or below which a link is solid (default 0.3)")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    names = [args.schema] if args.schema else list(BUILTIN)
    loaded = [load(n) for n in names]
    for name, schema in loaded:
        for path in show(schema, args.out, name):
            print(f"wrote {path}")
    if args.other:
        (na, a), (nb, b) = loaded[0], load(args.other)
        a, b = embedded(a, b)
        path = draw_compatible(a, b, args.out / f"{na}_vs_{nb}_compat.png", args.threshold,
                               (na, nb))
        print(f"wrote {path}")
    return 0
