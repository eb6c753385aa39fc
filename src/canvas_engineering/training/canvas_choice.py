"""Which canvas a run trains: a built-in name, a schema JSON file, or a Python object.

    --canvas=robot                       a built-in canvas (`spec.canvases.PRESETS`)
    --canvas=path/to/schema.json         a `CanvasSchema` saved with `to_json`
    --canvas=my_package.canvases:fleet   a `CanvasSchema`, a `BoundSchema` from
                                         `compile_schema`, or a function returning either

A typed schema (an object tree of `Field`s) needs its frame count and present frame to become a
canvas, so name a function that compiles it: `def fleet(): return compile_schema(Fleet(),
T=4, t_current=2)`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from canvas_engineering.errors import ConfigError, bad
from canvas_engineering.spec.canvases import PRESETS
from canvas_engineering.spec.compile_schema import BoundSchema
from canvas_engineering.spec.schema import CanvasSchema

EXPECTED = (f"a built-in canvas {sorted(PRESETS)}, a schema .json file, or module:attribute "
            "naming a CanvasSchema, a BoundSchema or a function returning one")


def resolve_canvas(name: str) -> CanvasSchema:
    """The `CanvasSchema` that `--canvas=name` names (see the module docstring)."""
    if name in PRESETS:
        return PRESETS[name]()
    if name.endswith(".json"):
        if not Path(name).is_file():
            raise bad("canvas", name, f"{EXPECTED} (no such file)", ConfigError)
        return CanvasSchema.from_json(name)
    if ":" not in name:
        raise bad("canvas", name, EXPECTED, ConfigError)
    module_name, attr = name.split(":", 1)
    try:
        value = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise bad("canvas", name, f"{EXPECTED} ({e})", ConfigError) from None
    if callable(value) and not isinstance(value, (CanvasSchema, BoundSchema, type)):
        value = value()
    if isinstance(value, BoundSchema):
        return CanvasSchema(value.layout, value.topology, {"name": name})
    if isinstance(value, CanvasSchema):
        return value
    raise bad("canvas", name, f"{EXPECTED}; it names a {type(value).__name__} (a typed schema "
              "must be compiled: name a function that calls compile_schema)", ConfigError)
