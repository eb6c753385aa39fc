"""Two schemas side by side with their semantically aligned regions linked (seed 000's figure):
a solid line where the transfer distance is at most the threshold (direct latent transfer), a
dashed one above it (an adapter is needed).

Each region is linked at most once: pairs are taken closest first, one-to-one, from all of
`compatible_regions`' distances; a region whose counterparts are all taken stays unlinked.

    python -m canvas_engineering.viz.compat_plot [--out canvas_out]   # needs the [semantic] extra
"""

from __future__ import annotations

import os

from canvas_engineering.spec.schema import CanvasSchema
from canvas_engineering.viz._common import colours, pyplot, save


def links(a: CanvasSchema, b: CanvasSchema) -> list[tuple[str, str, float]]:
    """One-to-one (a region, b region, distance), closest first (every pair's distance comes
    from `a.compatible_regions(b, threshold=2)`: cosine distances are at most 2)."""
    used_a, used_b, out = set(), set(), []
    for ra, rb, d in a.compatible_regions(b, threshold=2.0):
        if ra not in used_a and rb not in used_b:
            used_a.add(ra)
            used_b.add(rb)
            out.append((ra, rb, d))
    return out


def _short(text: str | None, n: int = 38) -> str:
    if not text:
        return ""
    return text if len(text) <= n else text[: n - 1] + "…"


def compat_figure(a: CanvasSchema, b: CanvasSchema, threshold: float = 0.3,
                  names: tuple[str, str] = ("schema A", "schema B")):
    """The two schemas' regions as two columns of boxes, linked by `links`; each link is one
    Line2D whose gid is 'link:<a region>-><b region>' (solid at distance <= threshold, dashed
    above)."""
    from matplotlib.patches import FancyBboxPatch

    plt = pyplot()
    pairs = links(a, b)
    ra, rb = a.layout.region_names, b.layout.region_names
    rows = max(len(ra), len(rb))
    fig, ax = plt.subplots(figsize=(9, 1.0 + 0.62 * rows))
    ys = {}
    for side, (schema, regions, x) in enumerate(((a, ra, 0.0), (b, rb, 1.0))):
        colour = colours(regions)
        for i, name in enumerate(regions):
            y = rows - 1 - i * (rows - 1) / max(len(regions) - 1, 1) if len(regions) > 1 \
                else (rows - 1) / 2
            ys[(side, name)] = y
            box = FancyBboxPatch((x - 0.17, y - 0.22), 0.34, 0.44, boxstyle="round,pad=0.02",
                                 fc=colour[name], ec="k", lw=0.5, alpha=0.45)
            box.set_gid(f"region:{'ab'[side]}:{name}")
            ax.add_patch(box)
            spec = schema.layout.regions[name]
            ax.text(x, y + 0.06, name, ha="center", va="center", fontsize=8.5, weight="bold")
            ax.text(x, y - 0.12, _short(spec.semantic_type), ha="center", va="center",
                    fontsize=6.5, color="0.2")
    for na, nb, d in pairs:
        y1, y2 = ys[(0, na)], ys[(1, nb)]
        solid = d <= threshold
        (line,) = ax.plot([0.17, 0.83], [y1, y2], "-" if solid else "--",
                          color="tab:green" if solid else "0.45", lw=2.0 if solid else 1.2)
        line.set_gid(f"link:{na}->{nb}")
        ax.text(0.5, (y1 + y2) / 2 + 0.08, f"{d:.2f}", ha="center", fontsize=7.5,
                color="tab:green" if solid else "0.35",
                bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none"})
    for x, title in ((0.0, names[0]), (1.0, names[1])):
        ax.text(x, rows - 0.35, title, ha="center", fontsize=10, weight="bold")
    model = next((s.embedding_model for s in a.layout.regions.values() if s.embedding_model),
                 "no model")
    ax.set_title(f"compatible regions (transfer distance, {model}): solid ≤ {threshold:g} "
                 f"direct transfer, dashed > {threshold:g} needs an adapter", fontsize=8.5)
    ax.set(xlim=(-0.3, 1.3), ylim=(-0.6, rows - 0.1))
    ax.axis("off")
    fig.tight_layout()
    return fig


def draw_compatible(a: CanvasSchema, b: CanvasSchema, path: str | os.PathLike,
                    threshold: float = 0.3, names: tuple[str, str] = ("schema A", "schema B")):
    """Write the PNG of `compat_figure`; returns the path."""
    return save(compat_figure(a, b, threshold, names), path)


def _another_robot() -> CanvasSchema:
    """A robot schema another lab might write: other names, other words, one extra sensor."""
    from canvas_engineering.spec.layout import CanvasLayout, RegionSpec

    types = {"camera": "RGB camera images of the workspace",
             "gripper_cmd": "end-effector pose delta and gripper open/close command",
             "joint_state": "robot arm joint positions",
             "success": "task success reward signal",
             "audio": "microphone audio spectrogram"}
    regions = {n: RegionSpec((0, 4, i, i + 1, 0, 8), semantic_type=t)
               for i, (n, t) in enumerate(types.items())}
    return CanvasSchema(CanvasLayout(T=4, H=8, W=8, regions=regions))


if __name__ == "__main__":
    import argparse
    from pathlib import Path

    from canvas_engineering.integrations.semantic import default_embedder
    from canvas_engineering.spec.canvases import robot
    from canvas_engineering.spec.semantic import compute_semantic_embeddings

    p = argparse.ArgumentParser(description="the built-in robot canvas against another lab's "
                                "robot schema, embedded with the default MiniLM")
    p.add_argument("--out", type=Path, default=Path("canvas_out"))
    p.add_argument("--threshold", type=float, default=0.5)
    args = p.parse_args()
    embed = default_embedder()
    a, b = (compute_semantic_embeddings(s, embed) for s in (robot(), _another_robot()))
    path = draw_compatible(a, b, args.out / "robot_compat.png", args.threshold,
                           ("robot (built-in)", "another robot schema"))
    print(f"wrote {path}")
