"""A topology as a diagram: regions are nodes, connections are arrows src → dst (src's positions
query dst's), coloured by attention type, as wide as their weight, labelled with their temporal
offsets and fill mode.

Nodes sit on a radial tree read from the region names, so a typed schema shows its nesting:
`vehicles[3]` (a coarse field) on the inner ring, `vehicles[3].camera` outside it. Several
connections between one pair of regions (e.g. same-frame and previous-frame) bend apart; a
region's connections to itself are loops beside its node.

    python -m canvas_engineering.viz.topology_plot [--canvas robot] [--out canvas_out]
"""

from __future__ import annotations

import math
import os
from collections import defaultdict

from canvas_engineering.spec.connection import Connection, TemporalFill
from canvas_engineering.spec.schema import CanvasSchema
from canvas_engineering.viz._common import colours, pyplot, save

MAX_NODE_LABELS = 40  # beyond this, only top-level regions and the first array element's
MAX_EDGE_LABELS = 40


def _parent(name: str, names: set[str]) -> str | None:
    """The nearest region whose path is a prefix of `name` at a '.' (None: a top-level one)."""
    cut = name.rfind(".")
    while cut > 0:
        if name[:cut] in names:
            return name[:cut]
        cut = name.rfind(".", 0, cut)
    return None


def node_positions(names: list[str]) -> dict[str, tuple[float, float]]:
    """Radial tree: depth d on the circle of radius d, each subtree in an angular sector
    proportional to its number of leaves."""
    children: dict[str | None, list[str]] = defaultdict(list)
    known = set(names)
    for n in names:
        children[_parent(n, known)].append(n)

    def leaves(n: str) -> int:
        return sum(leaves(c) for c in children[n]) if children[n] else 1

    pos = {}

    def place(n: str, depth: int, lo: float, hi: float) -> None:
        a = (lo + hi) / 2
        pos[n] = (depth * math.cos(a), depth * math.sin(a))
        start = lo
        total = leaves(n)
        for c in children[n]:
            span = (hi - lo) * leaves(c) / total
            place(c, depth + 1, start, start + span)
            start += span

    roots = children[None]
    total = sum(leaves(r) for r in roots)
    if len(roots) == 1 and not children[roots[0]]:
        return {roots[0]: (0.0, 0.0)}
    start = math.pi / 2  # the first region at the top, then clockwise
    for r in roots:
        span = 2 * math.pi * leaves(r) / total
        place(r, 1, start, start - span)
        start -= span
    return pos


def edge_label(c: Connection) -> str:
    """Offsets (when not 'all frames') and fill (when not the default HOLD)."""
    parts = []
    if c.t_src is not None or c.t_dst is not None:
        parts.append(f"t{c.t_src if c.t_src is not None else '*'}→"
                     f"{c.t_dst if c.t_dst is not None else '*'}")
    if c.temporal_fill != TemporalFill.HOLD:
        parts.append(c.temporal_fill.value if hasattr(c.temporal_fill, "value")
                     else str(c.temporal_fill))
    return " ".join(parts)


def topology_figure(schema: CanvasSchema, title: str | None = None):
    """The diagram of `schema`'s topology. Each connection is one patch whose gid is
    'edge:<index in topology.connections>'; each region one node in the scatter labelled by
    name (up to MAX_NODE_LABELS)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle, FancyArrowPatch

    plt = pyplot()
    layout, topo = schema.layout, schema.topology
    names = layout.region_names
    pos = node_positions(names)
    node_colour = colours(names)
    fns = [topo.resolve_fn(c, layout) for c in topo.connections]
    fn_colour = {f: plt.get_cmap("Dark2")(i % 8) for i, f in enumerate(dict.fromkeys(fns))}
    wmax = max((c.weight for c in topo.connections), default=1.0) or 1.0
    radius = max((math.hypot(*p) for p in pos.values()), default=1.0) or 1.0
    big = len(names) > MAX_NODE_LABELS
    node_size = 300 if not big else 18
    loop_r = 0.07 * radius if not big else 0.02 * radius

    fig, ax = plt.subplots(figsize=(9, 8.5) if big else (7.5, 7))
    seen: dict[tuple[str, str], int] = defaultdict(int)
    labelled = len(topo.connections) <= MAX_EDGE_LABELS
    for i, (c, fn) in enumerate(zip(topo.connections, fns)):
        width = (0.6 + 2.4 * c.weight / wmax) if not big else (0.15 + 0.6 * c.weight / wmax)
        k = seen[(c.src, c.dst)]
        seen[(c.src, c.dst)] += 1
        (x1, y1), (x2, y2) = pos[c.src], pos[c.dst]
        if c.src == c.dst:  # a loop beside the node, outward from the centre
            r = math.hypot(x1, y1)
            ux, uy = (x1 / r, y1 / r) if r > 0 else (0.0, 1.0)
            rr = loop_r * (1 + 0.45 * k)
            cx, cy = x1 + ux * rr, y1 + uy * rr
            patch = Circle((cx, cy), rr, fill=False, lw=width, ec=fn_colour[fn], alpha=0.85)
            lx, ly = x1 + ux * 2 * rr, y1 + uy * 2 * rr
        else:
            rad = 0.12 + 0.18 * k
            patch = FancyArrowPatch((x1, y1), (x2, y2), connectionstyle=f"arc3,rad={rad}",
                                    arrowstyle="-|>", mutation_scale=6 + 3 * width, lw=width,
                                    color=fn_colour[fn], alpha=0.8 if not big else 0.35,
                                    shrinkA=7 if not big else 2, shrinkB=7 if not big else 2)
            lx = (x1 + x2) / 2 + 0.5 * rad * (y2 - y1)  # the arc's midpoint
            ly = (y1 + y2) / 2 - 0.5 * rad * (x2 - x1)
        patch.set_gid(f"edge:{i}")
        ax.add_patch(patch)
        text = edge_label(c)
        if labelled and text:
            ax.text(lx, ly, text, fontsize=6.5, ha="center", va="center", color="0.15",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                          "alpha": 0.8})
    xy = [pos[n] for n in names]
    nodes = ax.scatter([p[0] for p in xy], [p[1] for p in xy], s=node_size, zorder=3,
                       c=[node_colour[n] for n in names], edgecolors="k", linewidths=0.5)
    nodes.set_gid("nodes")
    for n in names:
        if not big:
            ax.annotate(n, pos[n], xytext=(0, 9), textcoords="offset points", ha="center",
                        fontsize=8, zorder=4)
        elif "[" not in n or "[0]" in n:  # the first array element stands for the rest
            x, y = pos[n]
            angle = math.degrees(math.atan2(y, x))
            flip = not -90 <= angle <= 90
            ax.annotate(n, (x, y), xytext=(4 * math.cos(math.radians(angle)),
                                           4 * math.sin(math.radians(angle))),
                        textcoords="offset points", fontsize=6.5, zorder=4,
                        rotation=angle + 180 if flip else angle, rotation_mode="anchor",
                        ha="right" if flip else "left", va="center")
    handles = [Line2D([], [], color=col, lw=2, label=f) for f, col in fn_colour.items()]
    handles.append(Line2D([], [], color="0.4", lw=0.6, label=f"line width ∝ weight (max "
                          f"{wmax:g})"))
    ax.legend(handles=handles, loc="lower left", fontsize=7, title="attention type",
              title_fontsize=7, frameon=False)
    pad = 0.35 * radius
    ax.set(xlim=(-radius - pad, radius + pad), ylim=(-radius - pad, radius + pad), aspect="equal")
    ax.axis("off")
    ax.set_title(title or f"{len(names)} regions, {len(topo.connections)} connections "
                 "(src → dst: src queries dst; tA→B: frame offsets)", fontsize=9)
    fig.tight_layout()
    return fig


def draw_topology(schema: CanvasSchema, path: str | os.PathLike, title: str | None = None):
    """Write the PNG of `topology_figure`; returns the path."""
    return save(topology_figure(schema, title), path)


if __name__ == "__main__":
    from canvas_engineering.viz._common import builtin_schema, script_args

    args = script_args(__doc__.splitlines()[0])
    print(f"wrote {draw_topology(builtin_schema(args.canvas), args.out / f'{args.canvas}_topology.png')}")
