"""Deploy-time passes of the process layer that act on a model.

Shape glossary: B batch, N canvas positions, D d_model, n positions of one region.

The model interface the passes need (`RegionModel` is a tiny reference implementation):
- `region_modules`: an `nn.ModuleDict`, `module_key(region)` -> module (B, n, D) -> (B, n, D)
  computing the region's update;
- `edge_modules`: an `nn.ModuleDict`, `edge_key(connection)` -> module (B, 1, D) -> (B, 1, D)
  carrying the message of one connection (dst → src);
- its forward treats a `ConstantRegion` in `region_modules` as the region's whole output.

Passes (`ProgramCompiler.compile`):
1. freeze — a "freeze" region's module and the edges that write into it stop requiring grad;
2. fold constants — a "constant" region's module becomes a `ConstantRegion` holding its value;
3. eliminate dead connections — a connection whose src is constant (its output no longer reads
   anything) or whose fn is "none" leaves the topology, the program and `edge_modules`;
4. export — `CompiledProgram.export(canvas)` returns only the "export" regions' slices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from canvas_engineering.errors import bad
from canvas_engineering.process.program import CanvasProgram, ProgramError
from canvas_engineering.spec.compile_schema import BoundSchema
from canvas_engineering.spec.connection import Connection
from canvas_engineering.spec.topology import CanvasTopology


def module_key(name: str) -> str:
    """ModuleDict key of a region path (module names may not contain '.')."""
    return name.replace(".", "/")


def edge_key(c) -> str:
    """ModuleDict key of a connection (or a `ProgramEdge`: same src, dst and offsets)."""
    return module_key(f"{c.src}<-{c.dst}@{c.t_src},{c.t_dst}")


class ConstantRegion(nn.Module):
    """A region folded to a constant: returns its value whatever the input. (B, n, D)"""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("value", value)  # (n, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value.to(x.dtype).expand(x.shape[0], -1, -1)


class RegionModel(nn.Module):
    """Reference model for the passes: per region a residual linear update plus, per
    connection, a linear message from the mean of the dst region. Time offsets are ignored:
    this stands in for the dispatcher, it is not one. canvas (B, N, D) -> (B, N, D)"""

    def __init__(self, bound: BoundSchema) -> None:
        super().__init__()
        self.bound = bound
        d = bound.layout.d_model
        self.region_modules = nn.ModuleDict({module_key(n): nn.Linear(d, d) for n in bound})
        self.edge_modules = nn.ModuleDict(
            {edge_key(c): nn.Linear(d, d, bias=False) for c in bound.topology.connections})
        self.connections = list(bound.topology.connections)

    def forward(self, canvas: torch.Tensor, fired: set[str] | None = None) -> torch.Tensor:
        out = canvas
        for name, bf in self.bound.fields.items():
            if fired is not None and name not in fired:
                continue  # not scheduled at this step: hold its value
            x = bf.extract(canvas)  # (B, n, D)
            mod = self.region_modules[module_key(name)]
            if isinstance(mod, ConstantRegion):
                out = bf.place(out, mod(x))
                continue
            y = x + mod(x)
            for c in self.connections:
                if c.src == name and edge_key(c) in self.edge_modules:
                    msg = self.bound[c.dst].extract(canvas).mean(1, keepdim=True)  # (B, 1, D)
                    y = y + self.edge_modules[edge_key(c)](msg)
            out = bf.place(out, y)
        return out


def _check_model(model: nn.Module, program: CanvasProgram) -> None:
    mods = getattr(model, "region_modules", None)
    if not isinstance(mods, nn.ModuleDict):
        raise bad("model.region_modules", type(mods).__name__,
                  "an nn.ModuleDict keyed by module_key(region)", ProgramError)
    missing = [n for n in program.regions if module_key(n) not in mods]
    if missing:
        raise bad("model.region_modules", f"missing {missing[:5]}",
                  "a module for every region of the program", ProgramError)


def freeze_regions(model: nn.Module, program: CanvasProgram) -> list[str]:
    """Stop gradients into every "freeze" region's parameters; returns those regions."""
    frozen = program.in_mode("freeze")
    edges = getattr(model, "edge_modules", {})
    for name in frozen:
        model.region_modules[module_key(name)].requires_grad_(False)
        for e in program.edges:  # messages written into the region are part of it
            if e.src == name and edge_key(e) in edges:
                edges[edge_key(e)].requires_grad_(False)
    return frozen


def fold_constants(model: nn.Module, bound: BoundSchema, program: CanvasProgram,
                   values: dict[str, torch.Tensor] | None = None) -> list[str]:
    """Replace each "constant" region's module with a `ConstantRegion` (its program value, or
    a (n, D) tensor from `values`)."""
    d = bound.layout.d_model
    folded = program.in_mode("constant")
    for name in folded:
        n = bound[name].num_positions
        v = (values or {}).get(name)
        if v is None:
            v = torch.full((n, d), float(program.regions[name].value))
        elif tuple(v.shape) != (n, d):
            raise bad(f"values[{name!r}]", tuple(v.shape), f"a tensor ({n}, {d})", ProgramError)
        model.region_modules[module_key(name)] = ConstantRegion(v.detach().clone())
    return folded


def eliminate_dead_connections(model: nn.Module | None, bound: BoundSchema,
                               program: CanvasProgram) -> tuple[CanvasTopology, CanvasProgram,
                                                                list[Connection]]:
    """Drop connections that cannot affect any output; returns (topology, program, removed)."""
    constant = set(program.in_mode("constant"))
    keep, edges, removed = [], [], []
    for c, e in zip(bound.topology.connections, program.edges):
        dead = c.src in constant or c.fn == "none"
        (removed if dead else keep).append(c)
        if not dead:
            edges.append(e)
    mods = getattr(model, "edge_modules", None)
    if isinstance(mods, nn.ModuleDict):
        for c in removed:
            if edge_key(c) in mods:
                del mods[edge_key(c)]
    topo = CanvasTopology(keep)
    return topo, CanvasProgram(regions=program.regions, edges=tuple(edges)), removed


@dataclass
class CompiledProgram:
    """A model after the passes, with the pruned topology/program and what each pass did."""

    model: nn.Module
    bound: BoundSchema
    topology: CanvasTopology
    program: CanvasProgram
    report: dict[str, list] = field(default_factory=dict)

    def __call__(self, canvas: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return self.model(canvas, *args, **kwargs)

    def export(self, canvas: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the model; return {region: (B, n, D)} for the "export" regions only."""
        names = self.program.in_mode("export")
        if not names:
            raise bad("export", "no region with compile_mode 'export'",
                      "at least one exported region", ProgramError)
        out = self.model(canvas)
        return {n: self.bound[n].extract(out) for n in names}


class ProgramCompiler:
    """Applies the deploy-time passes of a `CanvasProgram` to a model (see module docstring)."""

    def __init__(self, bound: BoundSchema, program: CanvasProgram) -> None:
        program.check(bound.topology)
        self.bound, self.program = bound, program

    def compile(self, model: nn.Module,
                values: dict[str, torch.Tensor] | None = None) -> CompiledProgram:
        _check_model(model, self.program)
        frozen = freeze_regions(model, self.program)
        folded = fold_constants(model, self.bound, self.program, values)
        topo, program, removed = eliminate_dead_connections(model, self.bound, self.program)
        report = {"frozen": frozen, "folded": folded,
                  "eliminated": [(c.src, c.dst) for c in removed],
                  "exported": program.in_mode("export")}
        return CompiledProgram(model, self.bound, topo, program, report)
