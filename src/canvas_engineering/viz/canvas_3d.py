"""Pictures of a canvas: each region drawn as one coloured block on the T × H × W grid, as in
seed 000's figures. 1-D canvases are drawn with H = 1.

    python -m canvas_engineering.viz.canvas_3d [--canvas robot] [--out canvas_out]

Needs matplotlib (the `[train]` extra); imported only when a picture is drawn.
"""

from __future__ import annotations

import os

from canvas_engineering.spec.layout import CanvasLayout
from canvas_engineering.viz._common import colours, group, pyplot, save

MAX_LABELS = 12  # regions named on their blocks; larger canvases are named in the legend only
MAX_LEGEND = 20


def _cuboid(t0, t1, h0, h1, w0, w1):
    """The six faces of a box in plot coordinates (x = t, y = w, z = h)."""
    c = [(t, w, h) for t in (t0, t1) for w in (w0, w1) for h in (h0, h1)]
    faces = [(0, 1, 3, 2), (4, 5, 7, 6), (0, 1, 5, 4), (2, 3, 7, 6), (0, 2, 6, 4), (1, 3, 7, 5)]
    return [[c[i] for i in f] for f in faces]


def _bounds3(layout: CanvasLayout, bounds: tuple[int, ...]) -> tuple[int, ...]:
    return bounds if len(layout.spatial_shape) == 2 else (*bounds[:2], 0, 1, *bounds[2:])


def region_figure(layout: CanvasLayout, title: str | None = None):
    """A figure of the layout's 3-D region allocation: one `Poly3DCollection` per region (its
    gid is the region's name), labelled on the block or in the legend."""
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    plt = pyplot()
    if len(layout.spatial_shape) not in (1, 2):
        raise ValueError(f"layout.spatial_shape: got {layout.spatial_shape}, expected a 1-D or "
                         "2-D canvas (T, W) or (T, H, W) to draw")
    T, H, W = layout.shape if len(layout.spatial_shape) == 2 else (layout.T, 1,
                                                                     layout.spatial_shape[0])
    names = layout.region_names
    colour = colours(names)
    fig = plt.figure(figsize=(8, 6.5))
    ax = fig.add_subplot(projection="3d")
    legend = {}
    for name in names:
        spec = layout.regions[name]
        b = _bounds3(layout, spec.bounds)
        box = Poly3DCollection(_cuboid(*b), alpha=0.55, edgecolor="k", linewidths=0.3,
                               facecolor=colour[name])
        box.set_gid(name)
        ax.add_collection3d(box)
        key = name if len(names) <= MAX_LEGEND else group(name)
        if key not in legend:
            size = f"{spec.num_positions} pos" if key == name else "each"
            legend[key] = f"{key} ({size}, period {spec.period})"
            ax.plot([], [], "s", color=colour[name], label=legend[key])
        if len(names) <= MAX_LABELS:
            ax.text((b[0] + b[1]) / 2, (b[4] + b[5]) / 2, (b[2] + b[3]) / 2, name,
                    fontsize=8, ha="center", va="center", weight="bold")
    ax.set(xlim=(0, T), ylim=(0, W), zlim=(H, 0), xlabel="t (frame)", ylabel="w", zlabel="h")
    ax.set_box_aspect((max(T, max(H, W) / 2), W, H))
    ax.view_init(elev=22, azim=-58)
    ax.set_xticks(range(0, T + 1, max(1, T // 6)))
    if len(legend) <= MAX_LEGEND:
        fig.legend(loc="lower center", ncol=min(3, len(legend)), fontsize=7, frameon=False)
    covered = sum(s.num_positions for s in layout.regions.values())
    ax.set_title(title or f"canvas {T}×{H}×{W} = {layout.num_positions} positions, "
                 f"{len(names)} regions ({covered / layout.num_positions:.0%} allocated)")
    fig.tight_layout(rect=(0, 0.03 * min(1 + len(legend) // 3, 4), 1, 1))
    return fig


def draw_layout(layout: CanvasLayout, path: str | os.PathLike, title: str | None = None) -> None:
    """Write a PNG of the layout's 3-D region allocation."""
    save(region_figure(layout, title), path)


if __name__ == "__main__":
    from canvas_engineering.viz._common import builtin_schema, script_args

    args = script_args(__doc__.splitlines()[0])
    out = args.out / f"{args.canvas}_regions.png"
    draw_layout(builtin_schema(args.canvas).layout, out)
    print(f"wrote {out}")
