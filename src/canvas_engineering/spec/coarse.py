"""Coarse-graining topology: how the fields of a nested schema attend to each other.

An *entity* is the root object, a nested object or an array element. Its *members* are its own
leaf fields plus the coarse fields of its nested objects; array elements are not members. The
wiring (seed 000, "Compositional types and hierarchical coarse-graining"):

1. every field attends to itself;
2. members of one entity connect by the entity's `intra` policy (dense by default);
3. an entity's coarse field ↔ each of its members and array elements (both directions);
4. each array element's coarse field ↔ each member of the entity holding the array, and array
   elements connect among themselves by the `array` policy (isolated by default);
5. each undirected pair becomes connections in time by the `temporal` policy.

So `us.macro.gdp` reaches `cn.macro.inflation` only through us.macro → us → (World level) →
cn → cn.macro, and a fleet's connection count grows linearly with its vehicles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

from canvas_engineering.errors import bad
from canvas_engineering.spec.connection import Connection
from canvas_engineering.spec.fields import FieldError
from canvas_engineering.spec.topology import CanvasTopology

# intra: members (declaration order), hub -> undirected pairs (a != b)
INTRA_POLICIES = {
    "dense": lambda m, hub: [(a, b) for i, a in enumerate(m) for b in m[i + 1:]],
    "isolated": lambda m, hub: [],
    "causal_chain": lambda m, hub: list(pairwise(m)),  # later members read earlier ones
    # the hub is the entity's coarse field (already wired by rule 3) or, at the root, member 0
    "star": lambda m, hub: [] if hub else [(m[0], b) for b in m[1:]],
}
ARRAY_POLICIES = {
    "isolated": lambda e: [],
    "dense": lambda e: [(a, b) for i, a in enumerate(e) for b in e[i + 1:]],
    "ring": lambda e: [(e[i], e[(i + 1) % len(e)]) for i in range(len(e))] if len(e) > 2
    else list(pairwise(e)),
}
# temporal: (t_src, t_dst) offset pairs each edge expands to
TEMPORAL_POLICIES = {
    "dense": ((None, None),),
    "same_frame": ((0, 0),),
    "causal": ((0, 0), (0, -1)),  # same frame plus the previous frame: no future leakage
}
# causal_chain pairs are directed: (earlier, later) means later reads earlier only
_DIRECTED = {"causal_chain"}


def _choice(value: object, table: dict, field_name: str) -> str:
    key = value.replace("-", "_").lower() if isinstance(value, str) else value
    if key not in table:
        raise bad(field_name, value, f"one of {sorted(table)}", FieldError)
    return key


@dataclass(frozen=True)
class ConnectivityPolicy:
    """Which connections `compile_schema` builds.

    Args:
        intra: among one entity's members: dense | isolated | causal_chain | star.
        array: among the elements of one array: isolated | dense | ring.
        temporal: in time, per edge: dense (all frames) | same_frame | causal (same + previous).
    """

    intra: str = "dense"
    array: str = "isolated"
    temporal: str = "dense"

    def __post_init__(self) -> None:
        object.__setattr__(self, "intra", _choice(self.intra, INTRA_POLICIES,
                                                  "ConnectivityPolicy.intra"))
        object.__setattr__(self, "array", _choice(self.array, ARRAY_POLICIES,
                                                  "ConnectivityPolicy.array"))
        object.__setattr__(self, "temporal", _choice(self.temporal, TEMPORAL_POLICIES,
                                                     "ConnectivityPolicy.temporal"))

    @classmethod
    def parse(cls, value: object, where: str = "connectivity") -> ConnectivityPolicy:
        """A policy, a dict of its fields, an intra policy name, or None (the default)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            return cls(intra=value)
        if isinstance(value, dict) and set(value) <= {"intra", "array", "temporal"}:
            return cls(**value)
        raise bad(where, value, "a ConnectivityPolicy, an intra policy name, a dict with keys "
                  "intra/array/temporal, or None", FieldError)


@dataclass
class Entity:
    """One node of the object tree: root, nested object or array element."""

    path: str  # "" for the root, which has no coarse field
    policy: ConnectivityPolicy
    fields: list[str] = field(default_factory=list)  # leaf field paths
    children: list[Entity] = field(default_factory=list)  # nested objects
    arrays: list[list[Entity]] = field(default_factory=list)  # one list per array attribute

    @property
    def members(self) -> list[str]:
        return self.fields + [c.path for c in self.children]

    def walk(self):
        """This entity and every entity below it, depth first."""
        yield self
        for c in self.children:
            yield from c.walk()
        for arr in self.arrays:
            for e in arr:
                yield from e.walk()


def coarse_topology(root: Entity, order: list[str]) -> CanvasTopology:
    """The coarse-graining topology of the tree below `root` (see the module docstring).

    `order` lists every field path; self connections come first in that order.
    """
    pol = {}  # field path -> temporal policy of the entity that owns it (for its self edge)
    pairs: list[tuple[str, str, bool, str]] = []  # (a, b, directed, temporal)
    for ent in root.walk():
        p = ent.policy
        members = ent.members
        elements = [e.path for arr in ent.arrays for e in arr]
        hub = ent.path or None
        for a, b in INTRA_POLICIES[p.intra](members, hub):
            pairs.append((a, b, p.intra in _DIRECTED, p.temporal))
        if hub:
            pairs += [(hub, m, False, p.temporal) for m in members + elements]
        for arr in ent.arrays:
            paths = [e.path for e in arr]
            pairs += [(e, m, False, p.temporal) for e in paths for m in members]
            pairs += [(a, b, False, p.temporal) for a, b in ARRAY_POLICIES[p.array](paths)]
        for f in ent.fields + ([ent.path] if ent.path else []):
            pol[f] = p.temporal
    conns = []
    for f in order:
        conns += [Connection(f, f, t_src=ts, t_dst=td) for ts, td in TEMPORAL_POLICIES[pol[f]]]
    for a, b, directed, temporal in pairs:
        for ts, td in TEMPORAL_POLICIES[temporal]:
            conns.append(Connection(b, a, t_src=ts, t_dst=td))  # b queries a: a → b
            if not directed:
                conns.append(Connection(a, b, t_src=ts, t_dst=td))
    return CanvasTopology(conns)
