"""`compile_schema`: a tree of objects holding `Field`s becomes a canvas layout and topology.

Shape glossary: B batch, N = T·prod(spatial) canvas positions, D d_model, n positions of one
region (frames × its spatial size).

The walker visits dataclasses, pydantic models and plain objects (class or instance attributes
holding Fields). An attribute `a` holding an object yields paths `a.x`; a list attribute yields
`a[3].x`. Every nested object and array element also gets a *coarse* field at its own path: the
parent's `dc_field(metadata={"coarse": Field(...)})`, else the child's `__coarse__`, else 1×1
(not an output). See `coarse.py` for the wiring and `packing.py` for the placement.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from numbers import Number

import torch

from canvas_engineering.errors import PlacementError, bad, check_int
from canvas_engineering.spec.coarse import ConnectivityPolicy, Entity, coarse_topology
from canvas_engineering.spec.fields import Field, FieldError
from canvas_engineering.spec.layout import CanvasLayout, RegionSpec, check_positions
from canvas_engineering.spec.packing import LayoutStrategy, pack
from canvas_engineering.spec.topology import CanvasTopology

_DEFAULT_COARSE = object()  # sized to the canvas rank once every field is known
# Deepest object nesting compile_schema walks. The walker and `Entity.walk` recurse, up to two
# Python frames per level (object -> list -> element), and Python stops at 1000 frames; 100
# levels leave the caller most of that stack. The seed's deepest example nests 3 levels.
MAX_DEPTH = 100


@dataclass(frozen=True)
class BoundField:
    """A compiled field: its path, declaration and region on the layout; reads and writes a
    batch of canvases."""

    path: str
    field: Field
    layout: CanvasLayout
    coarse: bool = False  # a coarse-grained summary of an object, not a declared leaf

    @property
    def spec(self) -> RegionSpec:
        return self.layout.regions[self.path]

    @property
    def shape(self) -> tuple[int, ...]:
        """(frames, *spatial) of the region."""
        return self.spec.shape

    @property
    def num_positions(self) -> int:
        return self.spec.num_positions

    @property
    def indices(self) -> torch.Tensor:
        """Flat canvas indices, t-major. (n,) long"""
        return self.layout.region_index_tensor(self.path)

    def _check_canvas(self, canvas: object) -> None:
        want = (self.layout.num_positions, self.layout.d_model)
        if not isinstance(canvas, torch.Tensor) or canvas.ndim != 3 or tuple(canvas.shape[1:]) != want:
            got = tuple(canvas.shape) if isinstance(canvas, torch.Tensor) else type(canvas).__name__
            raise bad(f"{self.path}: canvas", got, f"a tensor (B, {want[0]}, {want[1]})",
                      PlacementError)

    def extract(self, canvas: torch.Tensor, grid: bool = False) -> torch.Tensor:
        """The region's positions. canvas (B, N, D) -> (B, n, D), or (B, frames, *spatial, D)
        with `grid`."""
        self._check_canvas(canvas)
        out = canvas[:, self.indices.to(canvas.device)]  # (B, n, D)
        return out.reshape(canvas.shape[0], *self.shape, -1) if grid else out

    def place(self, canvas: torch.Tensor, values: torch.Tensor, *,
              canvas_module=None) -> torch.Tensor:
        """A copy of `canvas` (B, N, D) with the region's positions set to `values`, given as
        (B, n, D) or (B, frames, *spatial, D), plus the structure embedding of those positions.

        Placing means one thing everywhere: content + structure. The structure (positional,
        modality, period) is learned, so it lives in a `SpatiotemporalCanvas` (`nn/`); pass it
        as `canvas_module` and this is exactly `canvas_module.place(canvas, values, path)`.
        Without one there is no structure to add, and `values` are written as given (what a
        state update needs: `extract(place(c, v)) == v`). A size mismatch raises (no silent
        truncation or padding).
        """
        if canvas_module is not None:
            theirs = getattr(canvas_module, "layout", None)
            if theirs is not self.layout and theirs != self.layout:
                raise bad(f"{self.path}: canvas_module", type(canvas_module).__name__,
                          "a SpatiotemporalCanvas of this field's layout", PlacementError)
            return canvas_module.place(canvas, values, self.path)
        self._check_canvas(canvas)
        b, d = canvas.shape[0], canvas.shape[2]
        ok = isinstance(values, torch.Tensor) and tuple(values.shape) in (
            (b, self.num_positions, d), (b, *self.shape, d))
        if not ok:
            got = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
            raise bad(f"{self.path}: values", got, f"a tensor {(b, self.num_positions, d)} or "
                      f"{(b, *self.shape, d)}", PlacementError)
        idx = self.indices.to(canvas.device)
        return canvas.index_copy(1, idx, values.reshape(b, -1, d).to(canvas.dtype))


@dataclass(frozen=True)
class BoundSchema:
    """A compiled schema: the canvas `layout`, the coarse-graining `topology`, and a
    `BoundField` per path (declaration order, each object's coarse field before its members)."""

    layout: CanvasLayout
    topology: CanvasTopology
    fields: dict[str, BoundField]
    arrays: dict[str, tuple[str, ...]]  # list attribute path -> its element paths
    policy: ConnectivityPolicy
    tree: Entity

    @property
    def field_names(self) -> list[str]:
        return list(self.fields)

    @property
    def coarse_fields(self) -> list[str]:
        return [p for p, f in self.fields.items() if f.coarse]

    def __getitem__(self, path: str) -> BoundField:
        try:
            return self.fields[path]
        except (KeyError, TypeError):
            near = [p for p in self.fields if isinstance(path, str) and path.split(".")[-1] in p]
            raise bad("field path", path, f"one of the compiled paths (close: {near[:5]}; all: "
                      f"bound.field_names)", FieldError) from None

    def __contains__(self, path: object) -> bool:
        return path in self.fields

    def __iter__(self):
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    @property
    def fill_ratio(self) -> float:
        """Positions covered by a field / all canvas positions."""
        return sum(f.num_positions for f in self.fields.values()) / self.layout.num_positions

    def edges(self) -> set[tuple[str, str]]:
        """(src, dst) region pairs with at least one connection (any frames)."""
        return {(c.src, c.dst) for c in self.topology.connections}

    @property
    def schema(self):
        """The layout and topology as a `CanvasSchema` (JSON round-trip lives there)."""
        from canvas_engineering.spec.schema import (
            CanvasSchema,  # the lead's module; imported when asked for
        )

        return CanvasSchema(layout=self.layout, topology=self.topology)

    def summary(self) -> str:
        """A table of paths, kinds, shapes and bounds, then totals."""
        lay = self.layout
        w = max(len(p) for p in self.fields)
        lines = [f"{'path':<{w}}  kind    shape (t, *s)      positions  bounds"]
        for p, f in self.fields.items():
            kind = "coarse" if f.coarse else "field"
            lines.append(f"{p:<{w}}  {kind:<6}  {f.shape!s:<17}  {f.num_positions:>9}  "
                         f"{f.spec.bounds}")
        lines.append(f"canvas {lay.shape} N={lay.num_positions} d_model={lay.d_model}; "
                     f"{len(self.fields)} fields, {len(self.topology.connections)} connections, "
                     f"fill {self.fill_ratio:.1%}")
        return "\n".join(lines)


def _is_pydantic(obj: object) -> bool:
    return hasattr(type(obj), "model_fields") and hasattr(obj, "model_dump")


def _plain_items(obj: object) -> dict[str, object]:
    """Public class attributes (base classes first, definition order), then instance ones."""
    items: dict[str, object] = {}
    for klass in reversed(type(obj).__mro__[:-1]):
        for name, v in vars(klass).items():
            # methods and properties are behaviour, not schema (and a property may raise)
            if not name.startswith("_") and not callable(v) and not isinstance(
                    v, (property, classmethod, staticmethod)):
                items[name] = None
    items.update({n: None for n in getattr(obj, "__dict__", {}) if not n.startswith("_")})
    return {n: getattr(obj, n) for n in items}


def _is_entity(obj: object) -> bool:
    """An object the walker descends into (shallow check for plain objects)."""
    if obj is None or isinstance(obj, (type, Field, str, bytes, Number, list, tuple, dict,
                                       torch.Tensor)):
        return False
    if dataclasses.is_dataclass(obj) or _is_pydantic(obj):
        return True
    if not hasattr(obj, "__dict__"):
        return False
    if isinstance(getattr(obj, "__coarse__", None), Field):
        return True
    return any(isinstance(v, Field) or dataclasses.is_dataclass(v) and not isinstance(v, type)
               for v in _plain_items(obj).values())


def _members(obj: object) -> list[tuple[str, object, dict]]:
    """(attribute name, value, field metadata) in declaration order."""
    if dataclasses.is_dataclass(obj):
        return [(f.name, getattr(obj, f.name), f.metadata) for f in dataclasses.fields(obj)]
    if _is_pydantic(obj):
        return [(n, getattr(obj, n), {}) for n in type(obj).model_fields]
    return [(n, v, {}) for n, v in _plain_items(obj).items()]


def _coarse_of(child: object, meta: dict, path: str) -> object:
    spec = meta.get("coarse") if meta else None
    if spec is None:
        spec = getattr(child, "__coarse__", None)
    if spec is None:
        return _DEFAULT_COARSE
    if not isinstance(spec, Field):
        raise bad(f"{path} (coarse field)", spec, "a Field", FieldError)
    return spec


class _Walker:
    def __init__(self, policy: ConnectivityPolicy) -> None:
        self.policy = policy
        self.fields: dict[str, object] = {}  # path -> Field or _DEFAULT_COARSE, walk order
        self.coarse: list[str] = []
        self.arrays: dict[str, tuple[str, ...]] = {}
        self.stack: list[tuple[int, str]] = []  # (id, path) of the objects being visited

    def add(self, path: str, spec: object) -> None:
        if path in self.fields:
            raise bad("field path", path, "unique paths; two fields compile to this one",
                      FieldError)
        self.fields[path] = spec

    def entity(self, obj: object, path: str, coarse: object) -> Entity:
        for oid, p in self.stack:
            if oid == id(obj):
                raise FieldError(f"{path or '<root>'}: cyclic object graph, this "
                                 f"{type(obj).__name__} is already at {p or '<root>'}; "
                                 "expected a tree of objects")
        if len(self.stack) > MAX_DEPTH:
            raise bad(f"{path}: nesting depth", len(self.stack), f"at most {MAX_DEPTH} levels "
                      "of nested objects (MAX_DEPTH)", FieldError)
        own = getattr(obj, "__connectivity__", None)
        ent = Entity(path, self.policy if own is None
                     else ConnectivityPolicy.parse(own, f"{path or '<root>'}.__connectivity__"))
        if path:
            self.add(path, coarse)
            self.coarse.append(path)
        self.stack.append((id(obj), path))
        for name, value, meta in _members(obj):
            p = f"{path}.{name}" if path else name
            if isinstance(value, Field):
                self.add(p, value)
                ent.fields.append(p)
            elif _is_entity(value):
                ent.children.append(self.entity(value, p, _coarse_of(value, meta, p)))
            elif isinstance(value, (list, tuple)):
                arr = self.array(value, p, meta)
                if arr is not None:
                    ent.arrays.append(arr)
            elif isinstance(value, dict) and any(
                    isinstance(v, Field) or _is_entity(v) for v in value.values()):
                raise bad(p, type(value).__name__, "a Field, an object or a list; dicts of "
                          "fields are not supported (use a dataclass)", FieldError)
        self.stack.pop()
        return ent

    def array(self, items, path: str, meta: dict) -> list[Entity] | None:
        if not any(isinstance(x, (Field, list, tuple)) or _is_entity(x) for x in items):
            return None  # plain data (numbers, strings) or empty: not part of the canvas
        elems = []
        for i, x in enumerate(items):
            p = f"{path}[{i}]"
            if isinstance(x, Field):
                raise bad(p, x, "an object holding Fields (a bare Field inside a list has no "
                          "entity to coarse-grain; wrap it in a dataclass)", FieldError)
            if not _is_entity(x):
                raise bad(p, type(x).__name__, "an object holding Fields (array elements "
                          "must be entities; nested lists are not supported)", FieldError)
            elems.append(self.entity(x, p, _coarse_of(x, meta, p)))
        self.arrays[path] = tuple(e.path for e in elems)
        return elems


def _frames(path: str, f: Field, T: int) -> int:
    """Canvas frames of a compiled field: its temporal_extent, else every frame its period can
    use. Canvas frame t of a period-p region lives at real time t·p (layout.py), so only the
    ceil(T / p) frames with t·p < T fall inside a T-frame canvas."""
    usable = -(-T // f.period)
    if f.temporal_extent is None:
        return usable
    if f.temporal_extent > usable:
        limit = f"T={T}" if f.period == 1 else f"{usable} (ceil(T / period) = ceil({T} / " \
            f"{f.period}), the frames whose real time t·period falls inside the canvas)"
        raise bad(f"{path}.temporal_extent", f.temporal_extent, f"<= {limit}", FieldError)
    return f.temporal_extent


def _check_canvas_size(shapes: list[tuple[int, ...]], T: int,
                       spatial_shape: tuple[int, ...] | None) -> None:
    """Refuse, before packing, fields that no addressable canvas can hold.

    Packing is spatial (every field keeps its footprint in all T frames), so the canvas holds at
    least T × the sum of the footprints, and T × a box as large on every axis as the largest
    field (or the fixed `spatial_shape`). Either bound over `MAX_POSITIONS` raises.
    """
    fixed = () if spatial_shape is None else tuple(
        check_int(f"spatial_shape[{i}]", g, 1, FieldError) for i, g in enumerate(spatial_shape))
    rank = max([len(s) for s in shapes] + [len(fixed)])
    lifted = [(1,) * (rank - len(s)) + s for s in shapes + [fixed]]
    box = [max(s[i] for s in lifted) for i in range(rank)]
    need = T * max(sum(math.prod(s) for s in shapes), math.prod(box))
    check_positions(f"compile_schema: T={T} frames of these fields", need, FieldError)


def compile_schema(root: object, T: int = 1, d_model: int = 256, *, connectivity=None,
                   layout_strategy: LayoutStrategy | str = LayoutStrategy.PACKED,
                   t_current: int = 0, H: int | None = None, W: int | None = None,
                   spatial_shape: tuple[int, ...] | None = None) -> BoundSchema:
    """Compile an object tree of `Field`s into a `BoundSchema` (layout + coarse topology).

    Args:
        root: a dataclass / pydantic / plain object whose attributes hold Fields, nested
            objects and lists of objects.
        T: canvas frames; d_model: channels per position; t_current: first generated frame.
        connectivity: a `ConnectivityPolicy` (or an intra policy name, or a dict of its fields);
            an object's `__connectivity__` overrides it for that entity.
        layout_strategy: how fields are packed (`LayoutStrategy`).
        H, W / spatial_shape: a fixed canvas size (default: the smallest the packing finds, of
            the highest field rank, so 1-D fields give a 1-D canvas).

    A field spans `temporal_extent` canvas frames, or, by default, the ceil(T / period) frames
    whose real time t·period falls inside the canvas.
    """
    policy = ConnectivityPolicy.parse(connectivity)
    if not _is_entity(root):
        raise bad("root", type(root).__name__, "a dataclass or object holding Fields", FieldError)
    walker = _Walker(policy)
    tree = walker.entity(root, "", None)
    if spatial_shape is None and (H is not None or W is not None):
        if H is None or W is None:
            raise bad("H, W", (H, W), "both given, or neither", FieldError)
        spatial_shape = (H, W)
    # The canvas has the rank of its highest-rank field (1-D fields: a 1-D canvas) unless a
    # canvas shape is given; default coarse fields take that rank (2, the seed's H × W, when
    # nothing else says).
    ranks = [f.rank for f in walker.fields.values() if isinstance(f, Field)]
    rank = max(ranks + ([] if spatial_shape is None else [len(spatial_shape)]), default=2)
    default = Field(spatial_shape=(1,) * rank, is_output=False)
    fields = {p: default if f is _DEFAULT_COARSE else f for p, f in walker.fields.items()}

    T = check_int("T", T, 1, FieldError)
    frames = {p: _frames(p, f, T) for p, f in fields.items()}
    _check_canvas_size([f.spatial_shape for f in fields.values()], T, spatial_shape)
    offsets, canvas = pack([f.spatial_shape for f in fields.values()], layout_strategy,
                           spatial_shape)
    regions = {}
    for (p, f), off in zip(fields.items(), offsets):
        shape = (1,) * (len(canvas) - f.rank) + f.spatial_shape
        bounds = (0, frames[p])
        for lo, n in zip(off, shape):
            bounds += (lo, lo + n)
        regions[p] = RegionSpec(bounds=bounds, period=f.period, is_output=f.is_output,
                                loss_weight=f.loss_weight, semantic_type=f.semantic_type,
                                default_attn=f.attn)
    layout = CanvasLayout(T=T, d_model=d_model, regions=regions, t_current=t_current,
                          spatial_shape=canvas)
    topology = coarse_topology(tree, list(fields))
    coarse = set(walker.coarse)
    bound = {p: BoundField(p, f, layout, p in coarse) for p, f in fields.items()}
    return BoundSchema(layout=layout, topology=topology, fields=bound,
                       arrays=walker.arrays, policy=policy, tree=tree)

