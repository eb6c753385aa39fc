"""The process layer (seed 000, "Typed process layer (v2)"): what each region is, how it learns,
when it runs, and what is compiled away at deploy.

A `CanvasProgram` gives every region of a compiled schema a family, a carrier, a `Clock`, a
`LearningSpec` and a compile mode, and every connection of the schema's topology an operator
derived from the families at its two ends (information flows dst → src, so
`Connection(src=state, dst=observation)` is "observe"). `program.edges[i]` describes
`bound.topology.connections[i]`: the operators annotate the very topology the rest of the
library lowers and dispatches, rather than a parallel graph that could drift from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from canvas_engineering.errors import ProgramError, bad, check_int, check_keys, is_finite_number
from canvas_engineering.spec.compile_schema import BoundSchema, compile_schema
from canvas_engineering.spec.fields import CARRIERS, FAMILIES, check_choice
from canvas_engineering.spec.topology import CanvasTopology

CLOCK_MODES = {
    "periodic": "fires every `period` steps from `phase`",
    "event": "fires when an event for the region is reported",
    "boundary": "fires at episode boundaries (and the first step)",
}
COMPILE_MODES = {
    "runtime": "trained and run as usual",
    "freeze": "run, but its parameters receive no gradient",
    "constant": "folded to a fixed value; reads nothing",
    "export": "what a deployed model's export call returns",
}
OBJECTIVES = {"denoise": "diffusion loss", "regress": "direct regression loss",
              "none": "no loss of its own"}

# (from family, to family) -> operator; information flows from the first to the second.
_FAMS = ("observation", "state", "memory", "residual", "action")
_TABLE = {  # rows: from; columns: to (observation, state, memory, residual, action)
    "observation": ("encode", "observe", "record", "compare", "react"),
    "state": ("predict", "transition", "write", "compare", "act"),
    "memory": ("recall", "recall", "retain", "recall", "recall"),
    "residual": ("correct", "correct", "record", "accumulate", "correct"),
    "action": ("predict", "feedback", "record", "compare", "coordinate"),
}
OPERATORS: dict[tuple[str, str], str] = {
    (a, b): op for a, row in _TABLE.items() for b, op in zip(_FAMS, row)}
OPERATOR_NAMES = frozenset(OPERATORS.values())
DEFAULT_CARRIER = {"observation": "deterministic", "state": "diffusive", "memory": "memory",
                   "residual": "residual", "action": "diffusive"}


def derive_operator(src_family: str, dst_family: str) -> str:
    """Operator of `Connection(src, dst)`: information flows dst → src."""
    return OPERATORS[(dst_family, src_family)]


@dataclass(frozen=True)
class Clock:
    """When a region fires. See `RegionScheduler` for the exact rule.

    Args:
        mode: periodic | event | boundary ("event-triggered" is accepted for "event").
        period, phase: a periodic clock fires at steps phase, phase + period, ...
        cooldown: after firing, the next `cooldown` steps cannot fire.
        max_silence: fire anyway once this many consecutive steps passed without firing.
    """

    mode: str = "periodic"
    period: int = 1
    phase: int = 0
    cooldown: int = 0
    max_silence: int | None = None

    def __post_init__(self) -> None:
        mode = self.mode.replace("-", "_") if isinstance(self.mode, str) else self.mode
        mode = "event" if mode == "event_triggered" else mode
        object.__setattr__(self, "mode", check_choice("Clock.mode", mode, sorted(CLOCK_MODES), ProgramError))
        # check_int returns a Python int: numpy ints in, JSON-serialisable ints out
        for name, at_least in (("period", 1), ("phase", 0), ("cooldown", 0)):
            object.__setattr__(self, name, check_int(f"Clock.{name}", getattr(self, name),
                                                     at_least, ProgramError))
        if self.max_silence is not None:
            object.__setattr__(self, "max_silence", check_int(
                "Clock.max_silence", self.max_silence, 1, ProgramError))
            if self.max_silence <= self.cooldown:
                raise bad("Clock.max_silence", self.max_silence,
                          f"> cooldown={self.cooldown} (else the two rules contradict)",
                          ProgramError)

    def to_dict(self) -> dict:
        return {"mode": self.mode, "period": self.period, "phase": self.phase,
                "cooldown": self.cooldown, "max_silence": self.max_silence}

    @classmethod
    def from_dict(cls, data: dict, where: str = "clock") -> Clock:
        return cls(**check_keys(data, {"mode"}, {"period", "phase", "cooldown", "max_silence"},
                                where))


@dataclass(frozen=True)
class LearningSpec:
    """How a region learns: its objective and a learning-rate multiplier (0 = not trained)."""

    objective: str = "denoise"
    lr_scale: float = 1.0

    def __post_init__(self) -> None:
        check_choice("LearningSpec.objective", self.objective, sorted(OBJECTIVES), ProgramError)
        s = self.lr_scale
        if not is_finite_number(s) or s < 0:
            raise bad("LearningSpec.lr_scale", s, "a finite number >= 0", ProgramError)
        object.__setattr__(self, "lr_scale", float(s))

    def to_dict(self) -> dict:
        return {"objective": self.objective, "lr_scale": self.lr_scale}

    @classmethod
    def from_dict(cls, data: dict, where: str = "learning") -> LearningSpec:
        return cls(**check_keys(data, set(), {"objective", "lr_scale"}, where))


@dataclass(frozen=True)
class RegionProgram:
    """The process declaration of one region. A "constant" region needs its `value`."""

    family: str
    carrier: str
    clock: Clock = field(default_factory=Clock)
    learning: LearningSpec = field(default_factory=LearningSpec)
    compile_mode: str = "runtime"
    tags: tuple[str, ...] = ()
    value: float | None = None

    def __post_init__(self) -> None:
        check_choice("RegionProgram.family", self.family, sorted(FAMILIES), ProgramError)
        check_choice("RegionProgram.carrier", self.carrier, sorted(CARRIERS), ProgramError)
        check_choice("RegionProgram.compile_mode", self.compile_mode, sorted(COMPILE_MODES), ProgramError)
        for name, cls in (("clock", Clock), ("learning", LearningSpec)):
            if not isinstance(getattr(self, name), cls):
                raise bad(f"RegionProgram.{name}", getattr(self, name), f"a {cls.__name__}",
                          ProgramError)
        if isinstance(self.tags, str) or not all(isinstance(t, str) for t in self.tags):
            raise bad("RegionProgram.tags", self.tags, "a tuple of strings", ProgramError)
        object.__setattr__(self, "tags", tuple(self.tags))
        v = self.value
        if (self.compile_mode == "constant") != (v is not None) or v is not None and (
                not is_finite_number(v)):
            raise bad("RegionProgram.value", v, "a finite number exactly when compile_mode is "
                      f"'constant' (compile_mode={self.compile_mode!r})", ProgramError)

    def to_dict(self) -> dict:
        return {"family": self.family, "carrier": self.carrier, "clock": self.clock.to_dict(),
                "learning": self.learning.to_dict(), "compile_mode": self.compile_mode,
                "tags": list(self.tags), "value": self.value}

    @classmethod
    def from_dict(cls, data: dict, where: str = "region") -> RegionProgram:
        check_keys(data, {"family", "carrier"},
                   {"clock", "learning", "compile_mode", "tags", "value"}, where)
        d = dict(data)
        d["clock"] = Clock.from_dict(d.get("clock", {"mode": "periodic"}), f"{where}.clock")
        d["learning"] = LearningSpec.from_dict(d.get("learning", {}), f"{where}.learning")
        d["tags"] = tuple(d.get("tags", ()))
        return cls(**d)


@dataclass(frozen=True)
class ProgramEdge:
    """The operator of one topology connection (same src, dst and offsets)."""

    src: str
    dst: str
    operator: str
    t_src: int | None = None
    t_dst: int | None = None

    def __post_init__(self) -> None:
        if self.operator not in OPERATOR_NAMES:
            raise bad(f"edge {self.src}<-{self.dst}: operator", self.operator,
                      f"one of {sorted(OPERATOR_NAMES)}", ProgramError)

    def matches(self, conn) -> bool:
        return (self.src, self.dst, self.t_src, self.t_dst) == (
            conn.src, conn.dst, conn.t_src, conn.t_dst)


PROGRAM_VERSION = 1


@dataclass(frozen=True)
class CanvasProgram:
    """Process declarations per region, and one operator per topology connection."""

    regions: dict[str, RegionProgram]
    edges: tuple[ProgramEdge, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.regions, dict):
            raise bad("CanvasProgram.regions", self.regions, "a dict name -> RegionProgram",
                      ProgramError)
        for name, r in self.regions.items():
            if not isinstance(r, RegionProgram):
                raise bad(f"regions[{name!r}]", r, "a RegionProgram", ProgramError)
        object.__setattr__(self, "edges", tuple(self.edges))
        for i, e in enumerate(self.edges):
            if not isinstance(e, ProgramEdge):
                raise bad(f"edges[{i}]", e, "a ProgramEdge", ProgramError)
            for end in (e.src, e.dst):
                if end not in self.regions:
                    raise bad(f"edges[{i}]", end, "a region of the program", ProgramError)
            want = derive_operator(self.regions[e.src].family, self.regions[e.dst].family)
            if e.operator != want:
                raise bad(f"edges[{i}] ({e.src}<-{e.dst}).operator", e.operator,
                          f"{want!r}, derived from the families at its ends", ProgramError)

    def check(self, topology: CanvasTopology) -> None:
        """Raise unless `edges[i]` describes `topology.connections[i]` for every i."""
        conns = topology.connections
        if len(conns) != len(self.edges):
            raise bad("program.edges", f"{len(self.edges)} edges",
                      f"one per topology connection ({len(conns)})", ProgramError)
        for i, (e, c) in enumerate(zip(self.edges, conns)):
            if not e.matches(c):
                raise bad(f"program.edges[{i}]", (e.src, e.dst, e.t_src, e.t_dst),
                          f"topology.connections[{i}] = {(c.src, c.dst, c.t_src, c.t_dst)}",
                          ProgramError)

    def operator(self, index: int) -> str:
        """Operator of topology connection `index`."""
        return self.edges[index].operator

    def in_mode(self, mode: str) -> list[str]:
        """Regions whose compile mode is `mode`."""
        check_choice("compile_mode", mode, sorted(COMPILE_MODES), ProgramError)
        return [n for n, r in self.regions.items() if r.compile_mode == mode]

    def to_dict(self) -> dict:
        return {"version": PROGRAM_VERSION,
                "regions": {n: r.to_dict() for n, r in self.regions.items()},
                "edges": [{"src": e.src, "dst": e.dst, "operator": e.operator,
                           "t_src": e.t_src, "t_dst": e.t_dst} for e in self.edges]}

    @classmethod
    def from_dict(cls, data: dict, where: str = "program") -> CanvasProgram:
        check_keys(data, {"version", "regions", "edges"}, set(), where)
        if data["version"] != PROGRAM_VERSION:
            raise bad(f"{where}.version", data["version"], str(PROGRAM_VERSION), ProgramError)
        if not isinstance(data["regions"], dict) or not isinstance(data["edges"], list):
            raise bad(where, data, "regions: an object, edges: a list", ProgramError)
        regions = {n: RegionProgram.from_dict(r, f"{where}.regions[{n!r}]")
                   for n, r in data["regions"].items()}
        edges = [ProgramEdge(**check_keys(e, {"src", "dst", "operator"}, {"t_src", "t_dst"},
                                          f"{where}.edges[{i}]"))
                 for i, e in enumerate(data["edges"])]
        return cls(regions=regions, edges=tuple(edges))

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls, text: str) -> CanvasProgram:
        return cls.from_dict(json.loads(text))


def _objective(carrier: str, is_output: bool) -> str:
    if not is_output or carrier == "memory":
        return "none"
    return "denoise" if carrier == "diffusive" else "regress"


def _overrides(table: dict | None, bound: BoundSchema, what: str) -> dict:
    table = dict(table or {})
    for path in table:
        if path not in bound:
            raise bad(f"{what} key", path, f"a compiled field path, one of {bound.field_names}",
                      ProgramError)
    return table


def compile_program(root: object, T: int = 1, d_model: int = 256, *,
                    clocks: dict[str, Clock] | None = None,
                    compile_modes: dict[str, str] | None = None,
                    learning: dict[str, LearningSpec] | None = None,
                    values: dict[str, float] | None = None,
                    **schema_kwargs) -> tuple[BoundSchema, CanvasProgram]:
    """`compile_schema`, then a `CanvasProgram` read from each Field's family/carrier/tags.

    A field without a family (coarse fields included) is "state"; without a carrier it gets its
    family's default. `clocks`, `compile_modes`, `learning` and `values` (the value of each
    "constant" region) override per path. Other keyword arguments go to `compile_schema`.
    """
    bound = compile_schema(root, T=T, d_model=d_model, **schema_kwargs)
    clocks = _overrides(clocks, bound, "clocks")
    modes = _overrides(compile_modes, bound, "compile_modes")
    learn = _overrides(learning, bound, "learning")
    vals = _overrides(values, bound, "values")
    regions = {}
    for path, bf in bound.fields.items():
        f = bf.field
        family = f.family or "state"
        carrier = f.carrier or DEFAULT_CARRIER[family]
        try:
            regions[path] = RegionProgram(
                family=family, carrier=carrier, clock=clocks.get(path, Clock()),
                learning=learn.get(path, LearningSpec(_objective(carrier, f.is_output))),
                compile_mode=modes.get(path, "runtime"), tags=f.tags, value=vals.get(path))
        except ProgramError as e:
            raise ProgramError(f"{path}: {e}") from None
    edges = tuple(
        ProgramEdge(c.src, c.dst, derive_operator(regions[c.src].family, regions[c.dst].family),
                    c.t_src, c.t_dst)
        for c in bound.topology.connections)
    program = CanvasProgram(regions=regions, edges=edges)
    program.check(bound.topology)
    return bound, program
