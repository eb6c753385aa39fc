"""Errors raised when a canvas declaration is invalid.

Every error names the offending field, the value it got and what was expected, so a typo in a
declaration fails loudly where it was written instead of producing a silently empty mask.
All of them are `ValueError`s, so existing `except ValueError` code keeps working.
"""

from __future__ import annotations

import math
import re
from numbers import Integral, Real


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


class FieldError(CanvasError):
    """A Field, or the object tree holding Fields, is not a valid schema."""


class ProgramError(CanvasError):
    """A process-layer declaration (family, carrier, clock, mode, operator) is invalid."""


class EpisodeError(CanvasError):
    """An episode file is missing an array, or an array has the wrong shape, length or values."""


class CheckpointError(CanvasError):
    """A loop checkpoint does not match the model it is loaded into."""


class ConfigError(CanvasError):
    """A training configuration value is invalid."""


class RunError(CanvasError):
    """A run directory or training checkpoint is missing or does not match."""


def bad(field: str, value, expected: str, cls: type[CanvasError] = CanvasError) -> CanvasError:
    """Build an error that says which field got which value and what was expected."""
    return cls(f"{field}: got {value!r}, expected {expected}")


class JSONObject(dict):
    """A JSON object given some key more than once (JSON allows it; a dict keeps the last value
    silently). `json_object` builds one so that `check_keys` can say where."""

    duplicate_keys: tuple[str, ...] = ()


def json_object(pairs: list[tuple[str, object]]) -> dict:
    """`object_pairs_hook` for `json.load`: a dict, or a `JSONObject` naming repeated keys."""
    d = dict(pairs)
    if len(d) == len(pairs):
        return d
    seen: set[str] = set()
    out = JSONObject(pairs)
    out.duplicate_keys = tuple(sorted({k for k, _ in pairs if k in seen or seen.add(k)}))
    return out


def check_unique_keys(data: object, where: str) -> None:
    """Raise if `data` was parsed by `json_object` from an object that repeats a key."""
    dups = getattr(data, "duplicate_keys", ())
    if dups:
        raise SchemaError(f"{where}: duplicate keys {list(dups)}, expected each key once")


def located(where: str, error: CanvasError) -> SchemaError:
    """`error` as a SchemaError at JSON path `where` ("layout.regions['cam']"): a message that
    starts with a field name is joined to the path by '.', any other by ': '."""
    msg = str(error)
    if not where:
        return SchemaError(msg)
    return SchemaError(f"{where}.{msg}" if re.match(r"[\w\[\]'.]+:", msg) else f"{where}: {msg}")


def is_finite_number(value: object) -> bool:
    """True for a finite real number that is not a bool (an int too large for a float is not:
    `math.isfinite(10**400)` raises OverflowError)."""
    if not isinstance(value, Real) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def check_keys(data: object, required: set[str], optional: set[str], where: str) -> dict:
    """Check a JSON object has exactly the required keys plus any of the optional ones, each
    once."""
    if not isinstance(data, dict):
        raise SchemaError(f"{where}: got {type(data).__name__}, expected a JSON object")
    check_unique_keys(data, where)
    unknown = set(data) - required - optional
    if unknown:
        raise SchemaError(
            f"{where}: unknown keys {sorted(unknown)}, expected only {sorted(required | optional)}"
        )
    missing = required - set(data)
    if missing:
        raise SchemaError(f"{where}: missing keys {sorted(missing)}")
    return data


def check_int(field: str, value: object, at_least: int = 0,
              cls: type[CanvasError] = CanvasError) -> int:
    """Return `value` as an int if it is an integer (not a bool) >= `at_least`, else raise."""
    if not isinstance(value, Integral) or isinstance(value, bool) or value < at_least:
        raise bad(field, value, f"an int >= {at_least}", cls)
    return int(value)


def check_choice(field: str, value: object, choices, cls: type[CanvasError] = CanvasError):
    """Return `value` if it is one of `choices`, else raise listing them (in their order)."""
    if isinstance(value, (list, dict, set)) or value not in choices:
        raise bad(field, value, f"one of {list(choices)}", cls)
    return value


def int_argument(least: int):
    """An argparse `type=`: the text as an int >= `least`, refused (argparse's usage error)
    with the value and the bound. The command-line twin of `check_int`."""
    import argparse

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"got {text!r}, expected an int >= {least}") \
                from None
        if value < least:
            raise argparse.ArgumentTypeError(f"got {value}, expected an int >= {least}")
        return value

    return parse
