"""SpatiotemporalCanvas: the canvas as a tensor of positions, with learned structure embeddings.

Shape glossary: B batch, N positions (T·H·W), D d_model, n positions of one region.

Every position carries a structure embedding — a learned positional encoding over (t, *spatial)
that starts as factorised sincos, its region's modality embedding and a period embedding — so
the model knows where a token is and what it is. `create_empty` fills the canvas with a learned empty token plus structure; `place`
writes region content plus the region's structure; `extract` reads positions back as they are.
"""

from __future__ import annotations

import torch
from torch import nn

from canvas_engineering.errors import PlacementError
from canvas_engineering.spec.layout import CanvasLayout


class PeriodEmbedding(nn.Module):
    """Learned embedding of a temporal period, indexed by bucket floor(log2(period)).

    Periods 1, 2–3, 4–7, … share a bucket; periods beyond the last bucket use the last one.
    """

    def __init__(self, d_model: int, num_buckets: int = 8):
        super().__init__()
        if num_buckets < 1:
            raise PlacementError(f"num_buckets: got {num_buckets}, expected an int >= 1")
        self.num_buckets = num_buckets
        self.table = nn.Parameter(torch.randn(num_buckets, d_model) * 0.02)

    def bucket(self, period: torch.Tensor | int) -> torch.Tensor:
        p = torch.as_tensor(period)
        if (p < 1).any():
            raise PlacementError(f"period: got {p.tolist()}, expected values >= 1")
        return torch.log2(p.double()).floor().long().clamp(max=self.num_buckets - 1)

    def forward(self, period: torch.Tensor | int) -> torch.Tensor:
        """period: int or (...,) ints → (..., D)"""
        return self.table[self.bucket(period)]


def sincos_axis_tables(shape: tuple[int, ...], d_model: int) -> list[torch.Tensor]:
    """Initial per-axis position tables: axis a writes sin/cos features into its own slice of the
    channels, so the sum over axes is the usual factorised 3-D sincos encoding (as in DiT).

    Starting from sincos rather than noise lets attention match the same (h, w) across frames
    from the first step. Returns one (size_a, D) table per axis.
    """
    bounds = torch.linspace(0, d_model, len(shape) + 1).round().long().tolist()
    tables = []
    for axis, size in enumerate(shape):
        lo, hi = bounds[axis], bounds[axis + 1]
        half = (hi - lo) // 2
        table = torch.zeros(size, d_model)
        if half:
            freq = 1.0 / 10000 ** (torch.arange(half) / half)  # (half,)
            angle = torch.arange(size).unsqueeze(1) * freq  # (size, half)
            table[:, lo: lo + half] = angle.sin()
            table[:, lo + half: lo + 2 * half] = angle.cos()
        tables.append(table)
    return tables


class SpatiotemporalCanvas(nn.Module):
    """Canvas tensor operations for a `CanvasLayout`: create_empty, place, extract."""

    def __init__(self, layout: CanvasLayout, num_period_buckets: int = 8):
        super().__init__()
        if not isinstance(layout, CanvasLayout):
            raise PlacementError(f"layout: got {type(layout).__name__}, expected a CanvasLayout")
        self.layout = layout
        D, names = layout.d_model, layout.region_names
        self.empty_token = nn.Parameter(torch.randn(D) * 0.02)
        self.axis_embeddings = nn.ParameterList(
            nn.Parameter(table) for table in sincos_axis_tables(layout.shape, D))  # one per axis
        self.modality = nn.Parameter(torch.randn(max(len(names), 1), D) * 0.02)
        self.period_embedding = PeriodEmbedding(D, num_period_buckets)
        region_id = torch.full((layout.num_positions,), -1, dtype=torch.long)
        period = torch.ones(layout.num_positions, dtype=torch.long)
        for r, name in enumerate(names):  # later regions win where overlap was allowed
            idx = layout.region_index_tensor(name)
            region_id[idx] = r
            period[idx] = layout.regions[name].period
        self.register_buffer("region_id", region_id, persistent=False)  # (N,)
        self.register_buffer("period", period, persistent=False)  # (N,)

    def positional_encoding(self) -> torch.Tensor:
        """Sum of learned per-axis embeddings at every position. (N, D)"""
        pe = 0
        for axis, table in enumerate(self.axis_embeddings):
            shape = [1] * len(self.layout.shape) + [table.shape[1]]
            shape[axis] = table.shape[0]
            pe = pe + table.view(shape)  # broadcast to (T, *S, D)
        return pe.reshape(self.layout.num_positions, -1)

    def structure(self) -> torch.Tensor:
        """Positional + modality + period embedding of every position. (N, D)"""
        in_region = (self.region_id >= 0).unsqueeze(1)
        modality = self.modality[self.region_id.clamp(min=0)] * in_region
        period = self.period_embedding(self.period) * in_region
        return self.positional_encoding() + modality + period

    def create_empty(self, batch_size: int) -> torch.Tensor:
        """A canvas of empty tokens plus structure. (B, N, D)"""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise PlacementError(f"batch_size: got {batch_size!r}, expected an int >= 1")
        x = self.empty_token + self.structure()  # (N, D)
        return x.unsqueeze(0).expand(batch_size, -1, -1).clone()

    def _region_positions(self, region: str) -> torch.Tensor:
        return self.layout.region_index_tensor(region).to(self.empty_token.device)

    def _check(self, canvas: torch.Tensor) -> None:
        N, D = self.layout.num_positions, self.layout.d_model
        if canvas.dim() != 3 or canvas.shape[1:] != (N, D):
            raise PlacementError(f"canvas: got shape {tuple(canvas.shape)}, expected (B, {N}, {D})")

    def place(self, canvas: torch.Tensor, embeddings: torch.Tensor, region: str) -> torch.Tensor:
        """Write `embeddings` (B, n, D) — or (B, *region shape, D) — into a region, adding the
        structure embedding of its positions (positional + modality + period, as `create_empty`
        gives every position). Returns a new canvas (B, N, D); the input is unchanged.

        `BoundField.place(canvas, values, canvas_module=self)` is this same call; without a
        module a BoundField has no structure to add and writes `values` as given.
        """
        self._check(canvas)
        spec = self.layout.region_spec(region)
        n, D = spec.num_positions, self.layout.d_model
        B = canvas.shape[0]
        ok = embeddings.dim() >= 3 and embeddings.shape[0] == B and embeddings.shape[-1] == D and (
            embeddings.shape[1:-1] == (n,) or tuple(embeddings.shape[1:-1]) == spec.shape)
        if not ok:
            raise PlacementError(
                f"embeddings for region {region!r}: got shape {tuple(embeddings.shape)}, expected "
                f"({B}, {n}, {D}) or ({B}, {', '.join(map(str, spec.shape))}, {D}); the canvas "
                "never truncates or pads")
        idx = self._region_positions(region)
        out = canvas.clone()
        out[:, idx] = embeddings.reshape(B, n, D).to(canvas.dtype) + self.structure()[idx]
        return out

    def extract(self, canvas: torch.Tensor, region: str) -> torch.Tensor:
        """Read a region's positions, t-major. (B, n, D)"""
        self._check(canvas)
        return canvas[:, self._region_positions(region)]

    def extra_repr(self) -> str:
        return f"shape={self.layout.shape}, d_model={self.layout.d_model}, " \
               f"regions={self.layout.region_names}, params={sum(p.numel() for p in self.parameters())}"


