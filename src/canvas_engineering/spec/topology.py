"""Topology: a directed graph of attention operations between canvas regions.

Each `Connection` is one attention operation: the src region's positions are queries, the dst
region's positions are keys/values (information flows dst → src). Temporal offsets restrict which
frames pair up; `temporal_fill` says what happens when a fast region asks a slow one for a frame
it does not update at. The exact rule lives in `lowering.frame_edges`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from canvas_engineering.errors import SchemaError, TopologyError, bad, check_keys
from canvas_engineering.spec.attention_types import DEFAULT_ATTENTION
from canvas_engineering.spec.connection import Connection

if TYPE_CHECKING:
    import torch

    from canvas_engineering.spec.layout import CanvasLayout


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

    # -- lowering (implemented in lowering/masks.py; these are the seed's entry points) ---------

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
            raise bad(f"{where}.connections", data["connections"], "a JSON array", SchemaError)
        return cls([Connection.from_dict(c, f"{where}.connections[{i}]")
                    for i, c in enumerate(data["connections"])])
