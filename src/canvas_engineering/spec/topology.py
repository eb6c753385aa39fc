"""Topology: a directed graph of attention operations between canvas regions.

Each `Connection` is one attention operation: the src region's positions are queries, the dst
region's positions are keys/values (information flows dst → src). Temporal offsets restrict which
frames pair up; `temporal_fill` says what happens when a fast region asks a slow one for a frame
it does not update at. The exact rule lives in `lowering.frame_edges`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from enum import Enum
from numbers import Integral, Real
from typing import TYPE_CHECKING

from canvas_engineering.errors import TopologyError, bad, check_keys
from canvas_engineering.spec.attention_types import DEFAULT_ATTENTION, check_attention_type

if TYPE_CHECKING:
    import torch

    from canvas_engineering.spec.layout import CanvasLayout


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
        if not isinstance(w, Real) or isinstance(w, bool) or not math.isfinite(w) or w <= 0:
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
        check_keys(data, {"src", "dst"}, {"weight", "t_src", "t_dst", "fn", "temporal_fill",
                                          "interpolation_order"}, where)
        return cls(**data)


@dataclass(frozen=True)
class CanvasTopology:
    """A directed graph of attention operations (`Connection`s) between regions."""

    connections: tuple[Connection, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        conns = self.connections
        if not isinstance(conns, (list, tuple)):
            raise bad("connections", conns, "a list of Connection", TopologyError)
        for i, c in enumerate(conns):
            if not isinstance(c, Connection):
                raise bad(f"connections[{i}]", c, "a Connection", TopologyError)
        object.__setattr__(self, "connections", tuple(conns))

    # -- constructors ---------------------------------------------------------------------------

    @staticmethod
    def _names(regions: object, what: str = "regions") -> list[str]:
        from canvas_engineering.spec.layout import (
            CanvasLayout,  # a layout stands for all of its regions
        )

        if isinstance(regions, CanvasLayout):
            return regions.region_names
        if isinstance(regions, str) or not isinstance(regions, (list, tuple)) or not regions:
            raise bad(what, regions, "a non-empty list of region names", TopologyError)
        return list(regions)

    @classmethod
    def dense(cls, regions) -> CanvasTopology:
        """Every region attends to every region, itself included (a standard transformer)."""
        names = cls._names(regions)
        return cls([Connection(a, b) for a in names for b in names])

    @classmethod
    def isolated(cls, regions) -> CanvasTopology:
        """Each region attends only to itself (block-diagonal)."""
        return cls([Connection(a, a) for a in cls._names(regions)])

    @classmethod
    def hub_spoke(cls, hub: str, spokes, bidirectional: bool = True) -> CanvasTopology:
        """Star: every region self-attends, the hub reads every spoke and (if bidirectional)
        every spoke reads the hub."""
        names = cls._names(spokes, "spokes")
        if not isinstance(hub, str) or not hub or hub in names:
            raise bad("hub", hub, "a region name that is not one of the spokes", TopologyError)
        conns = [Connection(hub, hub)] + [Connection(s, s) for s in names]
        conns += [Connection(hub, s) for s in names]
        if bidirectional:
            conns += [Connection(s, hub) for s in names]
        return cls(conns)

    @classmethod
    def causal_chain(cls, regions) -> CanvasTopology:
        """A → B → C: every region self-attends and reads its predecessor."""
        names = cls._names(regions)
        conns = [Connection(a, a) for a in names]
        conns += [Connection(b, a) for a, b in itertools.pairwise(names)]
        return cls(conns)

    @classmethod
    def causal_temporal(cls, regions) -> CanvasTopology:
        """Same-frame self-attention per region, plus every region reading every region
        (itself included) at the previous frame: no future leakage."""
        names = cls._names(regions)
        conns = [Connection(a, a, t_src=0, t_dst=0) for a in names]
        conns += [Connection(a, b, t_src=0, t_dst=-1) for a in names for b in names]
        return cls(conns)

    # -- resolution -----------------------------------------------------------------------------

    @property
    def region_names(self) -> list[str]:
        """Regions the connections mention, in first-mention order."""
        seen: dict[str, None] = {}
        for c in self.connections:
            seen.setdefault(c.src)
            seen.setdefault(c.dst)
        return list(seen)

    def validate(self, layout: CanvasLayout) -> None:
        """Raise if a connection names a region `layout` lacks."""
        for i, c in enumerate(self.connections):
            for end in ("src", "dst"):
                name = getattr(c, end)
                if name not in layout.regions:
                    raise bad(f"connections[{i}].{end}", name,
                              f"a region of the layout, one of {layout.region_names}",
                              TopologyError)

    def resolve_fn(self, connection: Connection, layout: CanvasLayout | None = None) -> str:
        """connection.fn → src region's default_attn (with a layout) → "cross_attention"."""
        if connection.fn is not None:
            return connection.fn
        if layout is not None:
            if connection.src not in layout.regions:
                raise bad("connection.src", connection.src,
                          f"a region of the layout, one of {layout.region_names}", TopologyError)
            default = layout.regions[connection.src].default_attn
            if default is not None:
                return default
        return DEFAULT_ATTENTION

    def attention_ops(self, layout: CanvasLayout | None = None) -> list[tuple[str, str, float, str]]:
        """`(src, dst, weight, fn)` per connection, with fn resolved."""
        if layout is not None:
            self.validate(layout)
        return [(c.src, c.dst, c.weight, self.resolve_fn(c, layout)) for c in self.connections]

    # -- lowering (implemented in lowering.py; these are the seed's entry points) ---------------

    def to_attention_mask(self, layout: CanvasLayout) -> torch.Tensor:
        """(N, N) float32: entry (i, j) > 0 iff query i attends to key j; value = weight."""
        from canvas_engineering.lowering.masks import lower

        return lower(self, layout).dense_mask()

    def to_bool_mask(self, layout: CanvasLayout) -> torch.Tensor:
        """(N, N) bool: True where query i may attend to key j."""
        from canvas_engineering.lowering.masks import lower

        return lower(self, layout).bool_mask()

    def to_additive_mask(self, layout: CanvasLayout, dtype=None) -> torch.Tensor:
        """(N, N) additive mask for SDPA: log(weight) where connected, -inf elsewhere."""
        from canvas_engineering.lowering.masks import lower

        return lower(self, layout).additive_mask(dtype)

    def to_index_pairs(self, layout: CanvasLayout):
        """(q_idx, kv_idx, weight), each (P,), sorted by (q, kv): every connected pair once."""
        from canvas_engineering.lowering.masks import lower

        return lower(self, layout).index_pairs()

    def to_block_mask(self, layout: CanvasLayout, block_size: int = 128, device=None):
        """A FlexAttention `BlockMask`, built without materialising N×N."""
        from canvas_engineering.lowering.masks import lower

        return lower(self, layout).block_mask(block_size=block_size, device=device)

    def density(self, layout: CanvasLayout) -> float:
        """Fraction of the N×N (query, key) pairs that are connected."""
        from canvas_engineering.lowering.masks import lower

        return lower(self, layout).density()

    # -- serialisation --------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {"connections": [c.to_dict() for c in self.connections]}

    @classmethod
    def from_dict(cls, data: dict, where: str = "topology") -> CanvasTopology:
        check_keys(data, {"connections"}, set(), where)
        if not isinstance(data["connections"], list):
            raise bad(f"{where}.connections", data["connections"], "a list", TopologyError)
        return cls([Connection.from_dict(c, f"{where}.connections[{i}]")
                    for i, c in enumerate(data["connections"])])
