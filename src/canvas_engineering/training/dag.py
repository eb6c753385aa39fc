"""DAG curriculum declarations: training nodes, their checks, and the parents-first order.

A `TrainingNode` names the regions of the canvas it trains on, its parents (nodes whose trained
parameters it starts from), its data sources (names in the trainer's `data_sources`) and its
hyperparameters. `check_dag` refuses a bad DAG before anything trains: duplicate names, unknown
parents, cycles, unknown regions, a node without data or with an unknown source. Pure Python:
no tensors here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from canvas_engineering.errors import (
    ConfigError,
    SchemaError,
    bad,
    check_int,
    check_keys,
    is_finite_number,
)


@dataclass(frozen=True)
class TrainingNode:
    """One node of a DAG curriculum (lists are stored as tuples; round-trips through
    `to_dict` / `from_dict`).

    Args:
        name: unique in the DAG. regions: canvas regions this node trains on (its codecs).
        parents: names of the nodes it starts from (a join when more than one).
        data_sources: names of its data sources in the trainer's `data_sources`.
        steps, lr, batch_size: optimisation. d_model, loops: the canvas width and loops per
            block of its backbone. checkpoint_every: steps between resumable checkpoints.
        description: free text.
    """

    name: str
    regions: tuple = ()
    parents: tuple = ()
    data_sources: tuple = ()
    steps: int = 100
    lr: float = 1e-3
    batch_size: int = 8
    d_model: int = 64
    loops: int = 2
    checkpoint_every: int = 25
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise bad("node name", self.name, "a non-empty string without '/'", ConfigError)
        for key in ("regions", "parents", "data_sources"):
            v = getattr(self, key)
            if isinstance(v, str) or not all(isinstance(x, str) for x in v):
                raise bad(f"node {self.name!r}.{key}", v, "a list of names", ConfigError)
            object.__setattr__(self, key, tuple(v))
        for key, least in (("steps", 1), ("batch_size", 1), ("d_model", 1), ("loops", 1),
                           ("checkpoint_every", 1)):
            check_int(f"node {self.name!r}.{key}", getattr(self, key), least, ConfigError)
        if not is_finite_number(self.lr) or self.lr <= 0:
            raise bad(f"node {self.name!r}.lr", self.lr, "a finite number > 0", ConfigError)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: dict) -> TrainingNode:
        names = {f.name for f in dataclasses.fields(cls)}
        where = f"node {data.get('name', '?')!r}" if isinstance(data, dict) else "node"
        try:
            check_keys(data, {"name"}, names - {"name"}, where)
        except SchemaError as e:  # a DAG is a run's configuration
            raise ConfigError(str(e)) from None
        return cls(**data)


def check_dag(nodes, regions, sources) -> list[TrainingNode]:
    """Validate `nodes` (TrainingNodes or their dicts) against the canvas's `regions` and the
    `sources` names; return them parents-first (depth-first, parents in declaration order).
    Raises ConfigError naming the node, the field, the value and what was expected."""
    if isinstance(nodes, (str, dict)) or not nodes:
        raise bad("nodes", nodes, "a non-empty list of TrainingNode", ConfigError)
    nodes = [n if isinstance(n, TrainingNode) else TrainingNode.from_dict(n) for n in nodes]
    names = [n.name for n in nodes]
    dups = sorted({x for x in names if names.count(x) > 1})
    if dups:
        raise bad("nodes", dups, "unique node names (these repeat)", ConfigError)
    by_name = {n.name: n for n in nodes}
    for n in nodes:
        for p in n.parents:
            if p not in by_name:
                raise bad(f"node {n.name!r}.parents", p, f"one of the nodes {names}",
                          ConfigError)
        unknown = [r for r in n.regions if r not in regions]
        if not n.regions or unknown:
            raise bad(f"node {n.name!r}.regions", list(unknown or n.regions),
                      f"one or more regions of the canvas, {list(regions)}", ConfigError)
        if not n.data_sources:
            raise bad(f"node {n.name!r}.data_sources", [], f"at least one of the data "
                      f"sources {sorted(sources)} (a node without data cannot train)",
                      ConfigError)
        for s in n.data_sources:
            if s not in sources:
                raise bad(f"node {n.name!r}.data_sources", s, f"one of {sorted(sources)}",
                          ConfigError)
    return _parents_first(nodes, by_name)


def _parents_first(nodes: list[TrainingNode], by_name: dict) -> list[TrainingNode]:
    order, state = [], {}  # state: 1 = on the current path, 2 = placed

    def visit(n: TrainingNode, path: list[str]) -> None:
        if state.get(n.name) == 2:
            return
        if state.get(n.name) == 1:
            cycle = path[path.index(n.name):] + [n.name]
            raise bad("nodes", " -> ".join(cycle), "a DAG (this is a cycle)", ConfigError)
        state[n.name] = 1
        for p in n.parents:
            visit(by_name[p], path + [n.name])
        state[n.name] = 2
        order.append(n)

    for n in nodes:
        visit(n, [])
    return order
