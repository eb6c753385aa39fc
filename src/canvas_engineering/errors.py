"""Errors raised when a canvas declaration is invalid.

Every error names the offending field, the value it got and what was expected, so a typo in a
declaration fails loudly where it was written instead of producing a silently empty mask.
All of them are `ValueError`s, so existing `except ValueError` code keeps working.
"""

from __future__ import annotations


class CanvasError(ValueError):
    """Base class of every declaration error in canvas_engineering."""


class RegionError(CanvasError):
    """A region's bounds, period, weight or semantic fields are invalid."""


class OverlapError(RegionError):
    """Two regions share canvas positions and the layout did not opt in to overlap."""


class TopologyError(CanvasError):
    """A connection's fields are invalid or name a region the layout lacks."""


class AttentionTypeError(CanvasError):
    """An attention function type name is not registered."""


class SchemaError(CanvasError):
    """A serialised schema has unknown or missing keys, or a wrong format version."""


class PlacementError(CanvasError):
    """A tensor placed on or read from the canvas does not match the region's size."""


def bad(field: str, value, expected: str, cls: type[CanvasError] = CanvasError) -> CanvasError:
    """Build an error that says which field got which value and what was expected."""
    return cls(f"{field}: got {value!r}, expected {expected}")


def check_keys(data: object, required: set[str], optional: set[str], where: str) -> dict:
    """Check a JSON object has exactly the required keys plus any of the optional ones."""
    if not isinstance(data, dict):
        raise SchemaError(f"{where}: got {type(data).__name__}, expected a JSON object")
    unknown = set(data) - required - optional
    if unknown:
        raise SchemaError(
            f"{where}: unknown keys {sorted(unknown)}, expected only {sorted(required | optional)}"
        )
    missing = required - set(data)
    if missing:
        raise SchemaError(f"{where}: missing keys {sorted(missing)}")
    return data
