"""Canvas geometry: named regions of a T × spatial grid, and the time they live at.

Shape glossary: T frames; S = spatial_shape (H, W for the usual 2-D canvas); N = T·prod(S)
positions, numbered t-major, then h, then w (row-major over (T, *S)).

Time has one definition everywhere in the library: a position at canvas frame t of a region with
period p lives at real time t·p (absolute canvas frame, so a period-1 region that starts at t=2 is
in step with the others). `real_frame` / `canvas_frame` convert between the two, masks and the
dispatcher use the same rule (see `lowering/frame_edges.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from numbers import Integral

import numpy as np
import torch

from canvas_engineering.errors import (
    CanvasError,
    OverlapError,
    RegionError,
    SchemaError,
    bad,
    check_keys,
    check_unique_keys,
    is_finite_number,
    located,
)
from canvas_engineering.spec.attention_types import check_attention_type

# The most positions one canvas may have: flat position indices must fit a signed 32-bit int,
# the index type of FlexAttention's block masks and of the 32-bit indexing fast paths of CUDA
# kernels; a larger canvas could not be addressed on the accelerator. Checked where a size is
# declared, before anything is allocated (10**12 positions would ask numpy for 3.6 TiB). Memory
# is a separate, lower limit: a (B, N, D) canvas at this N is 8·D GiB per sample in float32.
MAX_POSITIONS = 2**31 - 1


def check_positions(field: str, n: int, cls: type[CanvasError]) -> None:
    """Raise `cls` naming `field` if `n` positions exceed `MAX_POSITIONS`."""
    if n > MAX_POSITIONS:
        raise cls(f"{field}: got {n} positions, expected at most {MAX_POSITIONS} "
                  "(MAX_POSITIONS, the int32 index limit)")


def _slices(bounds: tuple[int, ...]) -> tuple[slice, ...]:
    """(t0, t1, h0, h1, …) → the slices that index that box in a (T, *spatial) array."""
    return tuple(slice(bounds[i], bounds[i + 1]) for i in range(0, len(bounds), 2))


def _check_list(data: dict, key: str, where: str) -> None:
    """A JSON array of ints is read as a tuple; refuse anything else before `tuple()` does (a
    string would become its characters, a number a TypeError)."""
    if not isinstance(data[key], list):
        raise bad(f"{where}.{key}", data[key], "a JSON array of ints", SchemaError)


def _is_int(x: object) -> bool:
    return isinstance(x, Integral) and not isinstance(x, bool)


@dataclass(frozen=True)
class RegionSpec:
    """What one region of the canvas is.

    Args:
        bounds: (t0, t1, h0, h1, w0, w1), half-open; one (lo, hi) pair per canvas axis.
        period: canvas frames per real-world update of this region (1 = every frame).
        is_output: whether the region's future positions take part in the diffusion loss.
        loss_weight: relative loss weight of the region's positions.
        semantic_type: human-readable modality description.
        semantic_embedding: a fixed embedding of `semantic_type` (for `transfer_distance`).
        embedding_model: the model that produced `semantic_embedding` (read from an embedder's
            output when not given); only embeddings of one declared model are compared.
        default_attn: attention type for connections that start at this region.
    """

    bounds: tuple[int, ...]
    period: int = 1
    is_output: bool = True
    loss_weight: float = 1.0
    semantic_type: str | None = None
    semantic_embedding: tuple[float, ...] | None = None
    embedding_model: str | None = None
    default_attn: str | None = None

    def __post_init__(self) -> None:
        b = self.bounds
        if not isinstance(b, (tuple, list)) or not all(_is_int(x) for x in b):
            raise bad("bounds", b, "a tuple of ints (t0, t1, h0, h1, w0, w1)", RegionError)
        if len(b) < 4 or len(b) % 2:
            raise bad("bounds", b, "an even number (>= 4) of ints: (lo, hi) per axis", RegionError)
        for axis in range(len(b) // 2):
            lo, hi = b[2 * axis], b[2 * axis + 1]
            if lo < 0 or hi <= lo:
                raise bad("bounds", tuple(b), f"0 <= lo < hi on axis {axis}, got ({lo}, {hi})",
                          RegionError)
        object.__setattr__(self, "bounds", tuple(int(x) for x in b))
        # real time t·period is an int64 tensor in the lowering; t and period both below 2**31
        # keep the product below 2**62
        if not _is_int(self.period) or not 1 <= self.period <= MAX_POSITIONS:
            raise bad("period", self.period, f"an int in [1, {MAX_POSITIONS}]", RegionError)
        object.__setattr__(self, "period", int(self.period))
        if not isinstance(self.is_output, bool):
            raise bad("is_output", self.is_output, "a bool", RegionError)
        lw = self.loss_weight
        if not is_finite_number(lw) or lw < 0:
            raise bad("loss_weight", lw, "a finite number >= 0", RegionError)
        object.__setattr__(self, "loss_weight", float(lw))
        for name in ("semantic_type", "embedding_model"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, str):
                raise bad(name, v, "a string or None", RegionError)
        e = self.semantic_embedding
        # an embedder's output (spec/semantic.py's SemanticEmbedding) names its model
        tagged = getattr(e, "model", None) if isinstance(e, tuple) else None
        if isinstance(tagged, str):
            if self.embedding_model is None:
                object.__setattr__(self, "embedding_model", tagged)
            elif self.embedding_model != tagged:
                raise bad("embedding_model", self.embedding_model, f"{tagged!r}, the model "
                          "that produced semantic_embedding", RegionError)
        if e is not None:
            if isinstance(e, torch.Tensor | np.ndarray):
                e = e.tolist()
            ok = isinstance(e, (tuple, list)) and len(e) > 0 and all(
                is_finite_number(x) for x in e)
            if not ok:
                raise bad("semantic_embedding", e, "a non-empty sequence of finite floats",
                          RegionError)
            object.__setattr__(self, "semantic_embedding", tuple(float(x) for x in e))
        if self.default_attn is not None:
            check_attention_type(self.default_attn, "default_attn")

    @property
    def ndim(self) -> int:
        """Number of canvas axes the bounds cover (1 time + spatial rank)."""
        return len(self.bounds) // 2

    @property
    def shape(self) -> tuple[int, ...]:
        """Extent along each axis: (frames, *spatial extents)."""
        return tuple(hi - lo for lo, hi in self.axis_bounds)

    @property
    def axis_bounds(self) -> tuple[tuple[int, int], ...]:
        """(lo, hi) per axis, time first."""
        b = self.bounds
        return tuple((b[2 * i], b[2 * i + 1]) for i in range(self.ndim))

    @property
    def slices(self) -> tuple[slice, ...]:
        """Index of the region's box in a (T, *spatial) array."""
        return _slices(self.bounds)

    @property
    def frames(self) -> range:
        """Canvas frames the region occupies."""
        return range(self.bounds[0], self.bounds[1])

    @property
    def num_positions(self) -> int:
        return math.prod(self.shape)

    def to_dict(self) -> dict:
        return {
            "bounds": list(self.bounds),
            "period": self.period,
            "is_output": self.is_output,
            "loss_weight": self.loss_weight,
            "semantic_type": self.semantic_type,
            "semantic_embedding": None if self.semantic_embedding is None
            else list(self.semantic_embedding),
            "embedding_model": self.embedding_model,
            "default_attn": self.default_attn,
        }

    @classmethod
    def from_dict(cls, data: dict, where: str = "region") -> RegionSpec:
        """A region from its JSON object; any error is a SchemaError located at `where`."""
        keys = {"period", "is_output", "loss_weight", "semantic_type", "semantic_embedding",
                "embedding_model", "default_attn"}
        check_keys(data, {"bounds"}, keys, where)
        _check_list(data, "bounds", where)
        try:
            return cls(**{**data, "bounds": tuple(data["bounds"])})
        except CanvasError as e:
            raise located(where, e) from e


@dataclass(frozen=True)
class CanvasLayout:
    """A T × spatial canvas of `d_model`-dim positions with named regions.

    Give the spatial size as `H, W` or as any `spatial_shape` (rank 1, 2, 3, …); bounds then have
    one (lo, hi) pair per axis, time first. `regions` values may be raw bounds tuples (wrapped as
    `RegionSpec(bounds=...)`) or `RegionSpec`s. Regions may not overlap unless `allow_overlap`.
    Frames `t >= t_current` are the future that diffusion generates.
    """

    T: int
    H: int | None = None
    W: int | None = None
    d_model: int = 256
    regions: dict[str, RegionSpec] = field(default_factory=dict)
    t_current: int = 0
    spatial_shape: tuple[int, ...] | None = None
    allow_overlap: bool = False

    def __post_init__(self) -> None:
        if not _is_int(self.T) or self.T < 1:
            raise bad("T", self.T, "an int >= 1", RegionError)
        object.__setattr__(self, "T", int(self.T))  # numpy ints in, JSON-serialisable ints out
        self._init_spatial_shape()
        if not _is_int(self.d_model) or self.d_model < 1:
            raise bad("d_model", self.d_model, "an int >= 1", RegionError)
        if not _is_int(self.t_current) or not 0 <= self.t_current <= self.T:
            raise bad("t_current", self.t_current, f"an int in [0, T={self.T}]", RegionError)
        if not isinstance(self.allow_overlap, bool):
            raise bad("allow_overlap", self.allow_overlap, "a bool", RegionError)
        object.__setattr__(self, "d_model", int(self.d_model))
        object.__setattr__(self, "t_current", int(self.t_current))
        if not isinstance(self.regions, dict):
            raise bad("regions", self.regions, "a dict of name -> bounds or RegionSpec",
                      RegionError)
        regions = {name: self._check_region(name, spec) for name, spec in self.regions.items()}
        object.__setattr__(self, "regions", regions)
        if not self.allow_overlap:
            self._check_no_overlap()

    def _init_spatial_shape(self) -> None:
        if self.spatial_shape is None:
            if self.H is None or self.W is None:
                raise bad("spatial_shape", None, "H and W, or a spatial_shape", RegionError)
            shape = (self.H, self.W)
        else:
            shape = self.spatial_shape
            if not isinstance(shape, (tuple, list)) or len(shape) == 0:
                raise bad("spatial_shape", shape, "a non-empty tuple of ints", RegionError)
            shape = tuple(shape)
            if len(shape) == 2 and (self.H, self.W) not in ((None, None), shape):
                raise bad("H, W", (self.H, self.W), f"to agree with spatial_shape={shape}",
                          RegionError)
            if len(shape) != 2 and (self.H is not None or self.W is not None):
                raise bad("H, W", (self.H, self.W), "None when spatial_shape is not 2-D",
                          RegionError)
        for i, s in enumerate(shape):
            if not _is_int(s) or s < 1:
                raise bad(f"spatial_shape[{i}]", s, "an int >= 1", RegionError)
        object.__setattr__(self, "spatial_shape", tuple(int(s) for s in shape))
        check_positions(f"canvas shape {self.shape}", math.prod(self.shape), RegionError)
        if len(shape) == 2:
            object.__setattr__(self, "H", int(shape[0]))
            object.__setattr__(self, "W", int(shape[1]))

    def _check_region(self, name: object, spec: object) -> RegionSpec:
        if not isinstance(name, str) or not name:
            raise bad("regions key", name, "a non-empty string", RegionError)
        if isinstance(spec, (tuple, list)):
            spec = RegionSpec(bounds=tuple(spec))
        if not isinstance(spec, RegionSpec):
            raise bad(f"regions[{name!r}]", spec, "a bounds tuple or a RegionSpec", RegionError)
        extents = (self.T, *self.spatial_shape)
        if len(spec.bounds) != 2 * len(extents):
            raise bad(f"regions[{name!r}].bounds", spec.bounds,
                      f"{2 * len(extents)} ints for a canvas of shape {extents}", RegionError)
        for axis, size in enumerate(extents):
            if spec.bounds[2 * axis + 1] > size:
                raise bad(f"regions[{name!r}].bounds", spec.bounds,
                          f"axis {axis} within [0, {size}] (canvas shape {extents})", RegionError)
        return spec

    def _check_no_overlap(self) -> None:
        # Paint an occupancy count per cell of the grid that the region bounds cut each axis
        # into (at most one cell per position): linear in cells and regions, so a fleet of
        # thousands of regions is checked as fast as a handful, and a huge canvas with a few
        # regions allocates a few cells, not one counter per position.
        bounds = np.array([s.bounds for s in self.regions.values()],
                          dtype=np.int64).reshape(len(self.regions), 2 * len(self.shape))  # (R, 2·axes)
        cuts, cells = [], []  # per axis: sorted cell boundaries; each region's (lo, hi) cells
        for a, size in enumerate(self.shape):
            cuts.append(np.unique(np.concatenate([[0, size], bounds[:, 2 * a:2 * a + 2].ravel()])))
            cells.append(np.searchsorted(cuts[-1], bounds[:, 2 * a:2 * a + 2]).tolist())
        occupancy = np.zeros([len(c) - 1 for c in cuts], dtype=np.int32)
        for r in range(len(bounds)):
            occupancy[tuple(slice(*axis[r]) for axis in cells)] += 1
        if occupancy.max(initial=0) <= 1:
            return
        cell = np.unravel_index(np.argmax(occupancy > 1), occupancy.shape)
        where = tuple(int(c[i]) for c, i in zip(cuts, cell))  # the cell's first position
        a, b = [n for n, s in self.regions.items()
                if all(lo <= c < hi for c, (lo, hi) in zip(where, s.axis_bounds))][:2]
        raise OverlapError(
            f"regions: {a!r} {self.regions[a].bounds} overlaps {b!r} {self.regions[b].bounds} "
            f"(both hold position {where}); expected disjoint regions (pass allow_overlap=True "
            "to permit shared positions)")

    # -- geometry -------------------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        """(T, *spatial_shape)."""
        return (self.T, *self.spatial_shape)

    @property
    def num_positions(self) -> int:
        return math.prod(self.shape)

    @property
    def frame_size(self) -> int:
        """Positions per canvas frame (prod of spatial_shape)."""
        return math.prod(self.spatial_shape)

    @property
    def region_names(self) -> list[str]:
        return list(self.regions)

    def region_spec(self, name: str) -> RegionSpec:
        """The `RegionSpec` of `name`; an unknown name raises listing the valid ones."""
        try:
            return self.regions[name]
        except (KeyError, TypeError):
            raise bad("region", name, f"one of {list(self.regions)}", RegionError) from None

    @cached_property
    def _grid(self) -> torch.Tensor:
        return torch.arange(self.num_positions).view(self.shape)  # (T, *S)

    def _box(self, bounds: tuple[int, ...]) -> torch.Tensor:
        return self._grid[_slices(bounds)].reshape(-1)

    def region_index_tensor(self, name: str) -> torch.Tensor:
        """Flat canvas indices of a region as a LongTensor, t-major then spatial order. (n,)"""
        cache = self.__dict__.setdefault("_index_cache", {})
        if name not in cache:
            cache[name] = self._box(self.region_spec(name).bounds)
        return cache[name]

    def region_indices(self, name: str) -> list[int]:
        """Flat canvas indices of a region, t-major then h then w."""
        return self.region_index_tensor(name).tolist()

    def region_frame_indices(self, name: str, t: int) -> list[int]:
        """Flat indices of the region's positions at canvas frame `t`."""
        spec = self.region_spec(name)
        if not _is_int(t) or t not in spec.frames:
            raise bad("t", t, f"a canvas frame of region {name!r} in [{spec.frames.start}, "
                      f"{spec.frames.stop})", RegionError)
        return self._box((t, t + 1, *spec.bounds[2:])).tolist()

    def region_size(self, name: str) -> int:
        return self.region_spec(name).num_positions

    # -- time -----------------------------------------------------------------------------------

    def real_frame(self, name: str, canvas_t: int) -> int:
        """Real time of the region's canvas frame `canvas_t` (= canvas_t · period)."""
        spec = self.region_spec(name)
        if not _is_int(canvas_t) or canvas_t not in spec.frames:
            raise bad("canvas_t", canvas_t, f"a canvas frame of region {name!r} in "
                      f"[{spec.frames.start}, {spec.frames.stop})", RegionError)
        return canvas_t * spec.period

    def canvas_frame(self, name: str, real_t: int) -> int | None:
        """Canvas frame of the region updated at real time `real_t`, or None if there is none."""
        spec = self.region_spec(name)
        if not _is_int(real_t):
            raise bad("real_t", real_t, "an int", RegionError)
        if real_t % spec.period:
            return None
        t = real_t // spec.period
        return t if t in spec.frames else None

    # -- loss -----------------------------------------------------------------------------------

    def _future_outputs(self):
        """(spec, index into a (T, *S) array) of the future part (t >= t_current) of each
        `is_output` region that has one."""
        for spec in self.regions.values():
            t0 = max(spec.bounds[0], self.t_current)
            if spec.is_output and t0 < spec.bounds[1]:
                yield spec, (slice(t0, spec.bounds[1]), *spec.slices[1:])

    def loss_weight_mask(self, device: torch.device | str | None = None) -> torch.Tensor:
        """Per-position loss weight. (N,) float32

        A position gets its region's `loss_weight` if the region `is_output` and the position's
        frame is the future (t >= t_current); every other position gets 0. Where regions
        overlap the largest weight wins.
        """
        w = torch.zeros(self.shape)
        for spec, sl in self._future_outputs():
            w[sl] = torch.clamp(w[sl], min=spec.loss_weight)
        return w.reshape(-1).to(device)

    def output_mask(self, device: torch.device | str | None = None) -> torch.Tensor:
        """Positions diffusion generates: future frames of `is_output` regions. (N,) bool"""
        m = torch.zeros(self.shape, dtype=torch.bool)
        for _, sl in self._future_outputs():
            m[sl] = True
        return m.reshape(-1).to(device)

    # -- serialisation --------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "T": self.T,
            "spatial_shape": list(self.spatial_shape),
            "d_model": self.d_model,
            "t_current": self.t_current,
            "allow_overlap": self.allow_overlap,
            "regions": {n: s.to_dict() for n, s in self.regions.items()},
        }

    @classmethod
    def from_dict(cls, data: dict, where: str = "layout") -> CanvasLayout:
        """A layout from its JSON object; any error is a SchemaError located at `where`."""
        check_keys(data, {"T", "spatial_shape", "regions"},
                   {"d_model", "t_current", "allow_overlap"}, where)
        if not isinstance(data["regions"], dict):
            raise bad(f"{where}.regions", data["regions"], "a JSON object", SchemaError)
        check_unique_keys(data["regions"], f"{where}.regions")
        _check_list(data, "spatial_shape", where)
        regions = {n: RegionSpec.from_dict(s, f"{where}.regions[{n!r}]")
                   for n, s in data["regions"].items()}
        try:
            return cls(**{**data, "spatial_shape": tuple(data["spatial_shape"]),
                          "regions": regions})
        except CanvasError as e:
            raise located(where, e) from e
