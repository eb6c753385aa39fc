"""Connection: one attention operation between two canvas regions, and `TemporalFill`, what it
reads when the key region has no update at the requested time.

The `src` region's positions are queries, the `dst` region's positions are keys/values
(information flows dst → src). Temporal offsets restrict which frames pair up; the exact time rule
lives in `lowering.frame_edges`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from numbers import Integral

from canvas_engineering.errors import (
    CanvasError,
    TopologyError,
    bad,
    check_keys,
    is_finite_number,
    located,
)
from canvas_engineering.spec.attention_types import check_attention_type


class TemporalFill(str, Enum):
    """What a connection reads when the dst region has no update at the requested real time."""

    HOLD = "hold"  # the latest dst update before that time (state)
    DROP = "drop"  # nothing (events)
    INTERPOLATE = "interpolate"  # inverse-distance blend of the nearest updates (smooth signals)

    @classmethod
    def parse(cls, value: object, field_name: str = "temporal_fill") -> TemporalFill:
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            for member in cls:
                if value.lower() in (member.value, member.name.lower()):
                    return member
        raise bad(field_name, value, f"one of {[m.name for m in cls]}", TopologyError)


def _offset(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, Integral) and not isinstance(value, bool):
        return int(value)
    raise bad(name, value, "an int frame offset or None (all frames)", TopologyError)


@dataclass(frozen=True)
class Connection:
    """One attention operation: `src` positions query `dst` keys/values.

    Args:
        src, dst: region names.
        weight: connection strength (> 0); the dense mask stores it.
        t_src, t_dst: frame offsets from a shared reference frame; None = all frames.
        fn: attention type for this edge (None: the src region's default, then cross_attention).
        temporal_fill: HOLD / DROP / INTERPOLATE when dst has no update at the requested time.
        interpolation_order: n for INTERPOLATE: blend n+1 nearest updates with weights 1/dist^n.
    """

    src: str
    dst: str
    weight: float = 1.0
    t_src: int | None = None
    t_dst: int | None = None
    fn: str | None = None
    temporal_fill: TemporalFill = TemporalFill.HOLD
    interpolation_order: int = 1

    def __post_init__(self) -> None:
        for name in ("src", "dst"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v:
                raise bad(name, v, "a non-empty region name", TopologyError)
        w = self.weight
        if not is_finite_number(w) or w <= 0:
            raise bad("weight", w, "a finite number > 0", TopologyError)
        object.__setattr__(self, "weight", float(w))
        object.__setattr__(self, "t_src", _offset(self.t_src, "t_src"))
        object.__setattr__(self, "t_dst", _offset(self.t_dst, "t_dst"))
        if self.fn is not None:
            check_attention_type(self.fn, "fn")
        object.__setattr__(self, "temporal_fill", TemporalFill.parse(self.temporal_fill))
        n = self.interpolation_order
        if not isinstance(n, Integral) or isinstance(n, bool) or n < 1:
            raise bad("interpolation_order", n, "an int >= 1", TopologyError)
        object.__setattr__(self, "interpolation_order", int(n))  # numpy ints serialise too
        if n != 1 and self.temporal_fill is not TemporalFill.INTERPOLATE:
            raise bad("interpolation_order", n, "1 unless temporal_fill is INTERPOLATE",
                      TopologyError)

    @property
    def dense_in_time(self) -> bool:
        return self.t_src is None and self.t_dst is None

    def to_dict(self) -> dict:
        return {
            "src": self.src, "dst": self.dst, "weight": self.weight,
            "t_src": self.t_src, "t_dst": self.t_dst, "fn": self.fn,
            "temporal_fill": self.temporal_fill.name,
            "interpolation_order": self.interpolation_order,
        }

    @classmethod
    def from_dict(cls, data: dict, where: str = "connection") -> Connection:
        """A connection from its JSON object; any error is a SchemaError located at `where`."""
        check_keys(data, {"src", "dst"}, {"weight", "t_src", "t_dst", "fn", "temporal_fill",
                                          "interpolation_order"}, where)
        try:
            return cls(**data)
        except CanvasError as e:
            raise located(where, e) from e


__all__ = ["Connection", "TemporalFill"]
