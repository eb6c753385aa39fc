"""What the canvas pictures share: pyplot (`integrations.plotting`), region colours
(elements of an array share their field's colour), and the script entry point."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from canvas_engineering.integrations.plotting import pyplot, save_figure

_INDEX = re.compile(r"\[\d+\]")


def group(name: str) -> str:
    """The name with array indices starred: 'vehicles[3].camera' -> 'vehicles[*].camera'."""
    return _INDEX.sub("[*]", name)


def colours(names: list[str]) -> dict[str, tuple]:
    """A colour per region, one per group (so 50 vehicles' cameras share one), in order."""
    cmap = pyplot().get_cmap("tab20" if len({group(n) for n in names}) > 10 else "tab10")
    order: dict[str, int] = {}
    for n in names:
        order.setdefault(group(n), len(order))
    return {n: cmap(order[group(n)] % cmap.N) for n in names}


def save(fig, path: str | Path) -> Path:
    """Write `fig` as a PNG and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path, dpi=110)


def script_args(description: str) -> argparse.Namespace:
    """`python -m canvas_engineering.viz.X [--canvas NAME] [--out DIR]`."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--canvas", default="robot",
                   help="robot, computer_use, multi_robot or fleet (default: robot)")
    p.add_argument("--out", type=Path, default=Path("canvas_out"),
                   help="directory for the PNG (default: canvas_out)")
    return p.parse_args()


BUILTIN = ("robot", "computer_use", "multi_robot", "fleet")


def builtin_schema(name: str):
    """A built-in canvas as a `CanvasSchema`: the seed's three, or its 50-vehicle fleet
    (`compile_schema(fleet(50))`)."""
    from canvas_engineering.spec.canvases import PRESETS, fleet
    from canvas_engineering.spec.compile_schema import compile_schema
    from canvas_engineering.spec.schema import CanvasSchema

    if name == "fleet":
        bound = compile_schema(fleet(50), d_model=256)
        return CanvasSchema(bound.layout, bound.topology, {"name": "fleet of 50 vehicles"})
    if name not in PRESETS:
        raise ValueError(f"canvas: got {name!r}, expected one of {list(BUILTIN)}")
    return PRESETS[name]()
