"""Region codecs: parameter-free maps between a region's data and its canvas positions.

Shape glossary: B batch, T canvas frames, T_r frames of region r, C channels, S image side,
n_r = T_r · h_r · w_r positions of region r (t-major, then h, then w, as
`CanvasLayout.region_index_tensor`), d_r data values per position, P = h_r · w_r positions per
frame of the region, ph × pw pixels per patch.

A codec rearranges numbers and, once `fit` to example data, standardises them: each of the d_r
values per position is shifted and scaled to mean 0 and standard deviation 1 over the examples
(one shift and scale for a whole video region). Regions whose raw values differ in scale (pixels
in [-1, 1], a reward with a spread of 0.15) then meet the diffusion noise, whose scale is 1, on
equal terms, and a model that predicts 0 predicts the examples' mean. `decode(encode(d))` is `d`
up to float rounding. A residual video codec stores each future frame as its change from the last
context frame, so a model that predicts 0 there predicts "nothing moves" (see `VideoCodec`). The learned encoders and decoders (data values → d_model and back) live in
the backbone.
"""

from __future__ import annotations

import math

import torch

from canvas_engineering.errors import CanvasError, bad
from canvas_engineering.spec.layout import CanvasLayout
from canvas_engineering.spec.patches import from_patches, to_patches


def _check_shape(name: str, x: object, expected: tuple[int | None, ...], what: str) -> None:
    """Raise unless `x` is a tensor whose shape matches `expected` (None = any size)."""
    shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
    ok = isinstance(x, torch.Tensor) and x.dim() == len(expected) and all(
        e is None or s == e for s, e in zip(x.shape, expected))
    if not ok:
        want = ", ".join("B" if e is None else str(e) for e in expected)
        raise bad(name, shape, f"a tensor of shape ({want}) {what}")


def region_frames(layout: CanvasLayout, region: str, clip: torch.Tensor) -> torch.Tensor:
    """Frames [t0, t1) of a region from a full clip `(B, T, ...)` → `(B, T_r, ...)`.

    The clip's frame axis counts canvas frames (one per canvas time step, T = layout.T).
    """
    spec = layout.region_spec(region)
    if not isinstance(clip, torch.Tensor) or clip.dim() < 2 or clip.shape[1] != layout.T:
        shape = tuple(clip.shape) if isinstance(clip, torch.Tensor) else type(clip).__name__
        raise bad(f"clip for region {region!r}", shape,
                  f"a tensor (B, T={layout.T}, ...) with one entry per canvas frame")
    return clip[:, spec.bounds[0]:spec.bounds[1]]


class RegionCodec:
    """Base codec of one region. Subclasses set `position_dim` (d_r) and `data_shape`.

    Attributes:
        region: the region's name; frames: T_r; num_positions: n_r;
        positions_per_frame: P; position_dim: d_r;
        data_shape: the shape of one sample's data, without the batch axis.
    """

    position_dim: int
    data_shape: tuple[int, ...]

    def __init__(self, layout: CanvasLayout, region: str):
        if not isinstance(layout, CanvasLayout):
            raise bad("layout", type(layout).__name__, "a CanvasLayout")
        spec = layout.region_spec(region)  # unknown region: error listing the valid ones
        self.region = region
        self.frames = spec.shape[0]
        self.spatial = spec.shape[1:]  # (h_r, w_r) on a 2-D canvas
        self.positions_per_frame = math.prod(self.spatial)
        self.num_positions = spec.num_positions

    shift: torch.Tensor | None = None  # (d_r,) once fit
    scale: torch.Tensor | None = None  # (d_r,) once fit

    def encode(self, data: torch.Tensor) -> torch.Tensor:
        """Region data `(B, *data_shape)` → `(B, n_r, d_r)`, t-major, standardised once fit."""
        x = self._to_positions(data)
        if self.shift is None:
            return x
        return (x - self.shift.to(x.device, x.dtype)) / self.scale.to(x.device, x.dtype)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """`(B, n_r, d_r)` → region data `(B, *data_shape)`; the inverse of `encode`."""
        self._check_positions(x)
        if self.shift is not None:
            x = x * self.scale.to(x.device, x.dtype) + self.shift.to(x.device, x.dtype)
        return self._from_positions(x)

    def fit(self, data: torch.Tensor, *, shared: bool = False) -> RegionCodec:
        """Standardise from example data `(B, *data_shape)`: per value of a position (d_r,),
        or one shift and scale for all of them when `shared`; separately for each group of
        positions of `stat_groups` (shift and scale are then (n_r, d_r)). A value that does not
        vary keeps scale 1. Returns self."""
        x = self._to_positions(data).double()  # (B, n_r, d_r)
        groups = self.stat_groups()
        shift = torch.zeros(self.num_positions, self.position_dim, dtype=torch.float64)
        scale = torch.ones_like(shift)
        for group in groups:
            g = x[:, group].reshape(-1, self.position_dim)  # (B·n_g, d_r)
            m, sd = (g.mean(), g.std()) if shared else (g.mean(dim=0), g.std(dim=0))
            shift[group] = m
            scale[group] = torch.where(sd > 1e-6, sd, torch.ones_like(sd))
        self.shift, self.scale = shift.float(), scale.float()  # (n_r, d_r)
        if len(groups) == 1:  # one group: one row says it all
            self.shift, self.scale = self.shift[0].clone(), self.scale[0].clone()  # (d_r,)
        return self

    def stat_groups(self) -> list[slice]:
        """Groups of positions standardised separately by `fit` (default: all together)."""
        return [slice(None)]

    def _to_positions(self, data: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _from_positions(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _check_positions(self, x: torch.Tensor) -> None:
        _check_shape(f"positions of region {self.region!r}", x,
                     (None, self.num_positions, self.position_dim), "(B, n_r, d_r)")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(region={self.region!r}, data_shape={self.data_shape}, "
                f"n_r={self.num_positions}, d_r={self.position_dim})")


class VideoCodec(RegionCodec):
    """Video frames `(B, T_r, C, S, S)` cut into the region's h_r × w_r grid of patches.

    Patch (i, j) of frame t holds pixels [i·ph, (i+1)·ph) × [j·pw, (j+1)·pw) and sits at the
    region's position (t, i, j); inside a position the values are ordered (c, y, x), so pixel
    (c, y, x) of patch (i, j) is value c·ph·pw + (y − i·ph)·pw + (x − j·pw) (`spec.patches`).

    With `residual`, every frame after the last context frame (canvas frame t_current − 1) is
    stored as its difference from that frame: the future is coded as change, and predicting 0
    there is copying the last frame, the trivial video baseline, from which a model can only
    learn to do better. `fit` then standardises the context frames and the changes separately
    (their scales differ: most pixels do not change). Needs a region with context and future.
    """

    def __init__(self, layout: CanvasLayout, region: str, channels: int = 3,
                 image_size: int = 24, residual: bool = False):
        super().__init__(layout, region)
        if not isinstance(residual, bool):
            raise bad("residual", residual, "a bool")
        t0, t1 = layout.region_spec(region).bounds[:2]
        if residual and not t0 < layout.t_current < t1:
            raise bad("residual", residual, f"False for region {region!r}: its frames "
                      f"[{t0}, {t1}) need a context frame before t_current={layout.t_current} "
                      "and a future frame from it on")
        self.residual = residual
        self.reference = layout.t_current - 1 - t0  # region frame the future is coded against
        for name, v in (("channels", channels), ("image_size", image_size)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise bad(name, v, "an int >= 1")
        if len(self.spatial) != 2:
            raise bad(f"region {region!r} spatial shape", self.spatial,
                      "2 axes (h, w): a video region needs a 2-D canvas")
        h, w = self.spatial
        if image_size % h or image_size % w:
            raise bad("image_size", image_size,
                      f"a multiple of the region's {h} × {w} patch grid (region {region!r})")
        self.channels, self.image_size = channels, image_size
        self.patch = (image_size // h, image_size // w)  # (ph, pw)
        self.position_dim = channels * self.patch[0] * self.patch[1]
        self.data_shape = (self.frames, channels, image_size, image_size)

    def _to_positions(self, data: torch.Tensor) -> torch.Tensor:
        _check_shape(f"video of region {self.region!r}", data, (None, *self.data_shape),
                     "(B, T_r, C, S, S)")
        if self.residual:
            ref = self.reference
            data = torch.cat([data[:, :ref + 1], data[:, ref + 1:] - data[:, ref:ref + 1]], 1)
        return to_patches(data, self.spatial, self.patch)  # (B, n_r, d_r)

    def _from_positions(self, x: torch.Tensor) -> torch.Tensor:
        frames = from_patches(x, self.frames, self.spatial, self.patch)  # (B, T_r, C, S, S)
        if self.residual:
            ref = self.reference
            frames = torch.cat([frames[:, :ref + 1],
                                frames[:, ref + 1:] + frames[:, ref:ref + 1]], 1)
        return frames

    def stat_groups(self) -> list[slice]:
        if not self.residual:
            return [slice(None)]
        cut = (self.reference + 1) * self.positions_per_frame  # first future position
        return [slice(0, cut), slice(cut, None)]


class VectorCodec(RegionCodec):
    """A vector per frame `(B, T_r, dim)`, split evenly over the region's P positions per frame.

    Value k of frame t goes to the frame's position k // d_r (row-major over h_r × w_r), at
    offset k % d_r, with d_r = dim / P.
    """

    def __init__(self, layout: CanvasLayout, region: str, dim: int):
        super().__init__(layout, region)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise bad("dim", dim, "an int >= 1")
        P = self.positions_per_frame
        if dim % P:
            raise bad("dim", dim, f"a multiple of the {P} positions per frame of region "
                      f"{region!r} (each position carries dim / {P} values)")
        self.dim = dim
        self.position_dim = dim // P
        self.data_shape = (self.frames, dim)

    def _to_positions(self, data: torch.Tensor) -> torch.Tensor:
        _check_shape(f"vectors of region {self.region!r}", data, (None, *self.data_shape),
                     "(B, T_r, dim)")
        return data.reshape(data.shape[0], self.num_positions, self.position_dim)

    def _from_positions(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.data_shape)


CODECS: dict[str, type[RegionCodec]] = {"video": VideoCodec, "vector": VectorCodec}


def make_codecs(layout: CanvasLayout, specs: dict[str, dict]) -> dict[str, RegionCodec]:
    """Build codecs from `{region: {"kind": "video" | "vector", **options}}`, in the layout's
    region order."""
    if not isinstance(specs, dict):
        raise bad("codec specs", type(specs).__name__, "a dict of region -> {'kind': ..., ...}")
    codecs = {}
    # In the layout's region order, whatever order `specs` lists them in: a model's parameter
    # order (which its optimizer state is keyed by) and the noise drawn per region follow it.
    rank = {name: i for i, name in enumerate(layout.region_names)}
    for region in sorted(specs, key=lambda r: rank.get(r, len(rank))):
        spec = specs[region]
        if not isinstance(spec, dict) or "kind" not in spec:
            raise bad(f"codec spec of {region!r}", spec, "a dict with a 'kind' key")
        options = {k: v for k, v in spec.items() if k != "kind"}
        cls = CODECS.get(spec["kind"])
        if cls is None:
            raise bad(f"codec kind of {region!r}", spec["kind"], f"one of {list(CODECS)}")
        try:
            codecs[region] = cls(layout, region, **options)
        except TypeError as e:  # unknown option names: say which codec and what it takes
            raise CanvasError(f"codec spec of {region!r} ({spec['kind']}): {e}") from None
    return codecs
