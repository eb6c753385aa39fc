"""Pictures of a canvas: each region drawn as one coloured block on the T × H × W grid.

Needs matplotlib (the `[train]` extra); imported only when a picture is drawn.
"""

from __future__ import annotations

import os

from canvas_engineering.spec.layout import CanvasLayout


def _cuboid(t0, t1, h0, h1, w0, w1):
    """The six faces of a box in plot coordinates (x = t, y = w, z = h)."""
    c = [(t, w, h) for t in (t0, t1) for w in (w0, w1) for h in (h0, h1)]
    faces = [(0, 1, 3, 2), (4, 5, 7, 6), (0, 1, 5, 4), (2, 3, 7, 6), (0, 2, 6, 4), (1, 3, 7, 5)]
    return [[c[i] for i in f] for f in faces]


def draw_layout(layout: CanvasLayout, path: str | os.PathLike, title: str | None = None) -> None:
    """Write a PNG of the layout's 3-D region allocation (2-D spatial canvases only)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from mpl_toolkits.mplot3d.art3d import Poly3DCollection
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("drawing canvases needs matplotlib: pip install "
                          "'canvas-engineering[train]'") from e
    if len(layout.spatial_shape) != 2:
        raise ValueError(f"layout.spatial_shape: got {layout.spatial_shape}, expected a 2-D "
                         "canvas (T, H, W) to draw")
    fig = plt.figure(figsize=(7, 6))
    ax = fig.add_subplot(projection="3d")
    colours = plt.get_cmap("tab10")
    for i, (name, spec) in enumerate(layout.regions.items()):
        box = Poly3DCollection(_cuboid(*spec.bounds), alpha=0.55, edgecolor="k", linewidths=0.4,
                               facecolor=colours(i % 10))
        ax.add_collection3d(box)
        ax.plot([], [], "s", color=colours(i % 10),
                label=f"{name} ({spec.num_positions} pos, period {spec.period})")
    T, H, W = layout.shape
    ax.set(xlim=(0, T), ylim=(0, W), zlim=(H, 0), xlabel="t (frame)", ylabel="w", zlabel="h")
    ax.set_box_aspect((max(T, 1), W, H))
    ax.view_init(elev=22, azim=-58)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title or f"canvas {T}×{H}×{W} = {layout.num_positions} positions")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
