"""A topology's attention mask at region resolution: for each (query region, key region), the
share of their position pairs that are connected, over all frames, read off the lowering
without building the N × N mask (so the 16k-position computer-use canvas draws in a blink).

    python -m canvas_engineering.viz.mask_plot [--canvas robot] [--out canvas_out]
"""

from __future__ import annotations

import os

import torch

from canvas_engineering.lowering.masks import lower
from canvas_engineering.spec.schema import CanvasSchema
from canvas_engineering.viz._common import pyplot, save

MAX_TICKS = 40  # region names on the axes; beyond this, one tick per group
MAX_VALUES = 12  # regions up to which each cell prints its share


def region_density(schema: CanvasSchema) -> tuple[list[str], torch.Tensor, float]:
    """(region names, (R, R) float64 share of query × key position pairs connected, the whole
    mask's density). A position in no region counts only in the whole mask's density; where
    regions overlap, a shared position counts for the first of them."""
    layout = schema.layout
    low = lower(schema.topology, layout)
    names = layout.region_names
    region_of_position = torch.full((layout.num_positions,), len(names), dtype=torch.long)
    for r in reversed(range(len(names))):  # the first region wins a shared position
        region_of_position[layout.region_index_tensor(names[r])] = r
    region_of_atom = torch.full((low.num_atoms,), len(names), dtype=torch.long)
    region_of_atom[low.label] = region_of_position  # every position of an atom: one region
    q, k, _ = low.pairs  # connected atom pairs
    counts = low.atom_counts.double()
    connected = torch.zeros(len(names) + 1, len(names) + 1, dtype=torch.float64)
    connected.index_put_((region_of_atom[q], region_of_atom[k]), counts[q] * counts[k],
                         accumulate=True)
    size = torch.bincount(region_of_position, minlength=len(names) + 1).double()
    share = connected[:-1, :-1] / torch.outer(size[:-1], size[:-1]).clamp(min=1)
    return names, share, low.density()


def mask_figure(schema: CanvasSchema, title: str | None = None):
    """A heat map of `region_density`: rows query (src) regions, columns key (dst) regions;
    the image's gid is 'mask'."""
    plt = pyplot()
    names, share, density = region_density(schema)
    R = len(names)
    fig, ax = plt.subplots(figsize=(7.5, 6.5) if R > MAX_TICKS else (6, 5.2))
    image = ax.imshow(share.numpy(), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    image.set_gid("mask")
    fig.colorbar(image, ax=ax, label="share of position pairs connected")
    if R <= MAX_TICKS:
        ax.set_xticks(range(R), names, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(R), names, fontsize=7)
    else:  # top-level regions only, every 10th element of an array
        ticks = {i: n for i, n in enumerate(names) if "." not in n and
                 ("[" not in n or int(n[n.rindex("[") + 1:-1]) % 10 == 0)}
        ax.set_xticks(list(ticks), list(ticks.values()), rotation=60, ha="right", fontsize=6)
        ax.set_yticks(list(ticks), list(ticks.values()), fontsize=6)
    if R <= MAX_VALUES:
        for i in range(R):
            for j in range(R):
                v = float(share[i, j])
                if v > 0:
                    ax.text(j, i, f"{v:.0%}" if v >= 0.01 else "<1%", ha="center",
                            va="center", fontsize=7, color="white" if v < 0.6 else "black")
    ax.set(xlabel="key region (dst)", ylabel="query region (src)")
    ax.set_title(title or f"attention mask by region: {schema.layout.num_positions} positions, "
                 f"density {density:.2%}", fontsize=9)
    fig.tight_layout()
    return fig


def draw_mask(schema: CanvasSchema, path: str | os.PathLike, title: str | None = None):
    """Write the PNG of `mask_figure`; returns the path."""
    return save(mask_figure(schema, title), path)


if __name__ == "__main__":
    from canvas_engineering.viz._common import builtin_schema, script_args

    args = script_args(__doc__.splitlines()[0])
    print(f"wrote {draw_mask(builtin_schema(args.canvas), args.out / f'{args.canvas}_mask.png')}")
