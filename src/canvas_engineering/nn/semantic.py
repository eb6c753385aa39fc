"""SemanticConditioner: each region's frozen semantic embedding, projected and added to its
positions, so a model can tell a camera from a joint-angle region by what it is declared to be.

Shape glossary: B batch, N positions, D d_model, R regions with an embedding, E embedding width,
M (position, region) memberships (N when regions do not overlap).

The projection starts at zero (adaLN-Zero style, DiT), so a model is unchanged — bit for bit —
until it learns to use the embeddings. The embeddings are buffers (frozen: a declared type, not
a parameter); fill them with `compute_semantic_embeddings` first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from canvas_engineering.errors import RegionError, bad
from canvas_engineering.spec.layout import CanvasLayout


class SemanticConditioner(nn.Module):
    """x (B, N, D) -> x + W·e_r (+ b) at the positions of each region r with an embedding e_r.

    Args:
        layout: the canvas; every region must carry a `semantic_embedding`, all of one width
            and one `embedding_model` (unless `allow_missing`, which leaves regions without one
            unconditioned).
        d_model: D, the width of the canvas tensor it conditions (default: `layout.d_model`).
    """

    def __init__(self, layout: CanvasLayout, *, d_model: int | None = None,
                 allow_missing: bool = False):
        super().__init__()
        if not isinstance(layout, CanvasLayout):
            raise bad("layout", type(layout).__name__, "a CanvasLayout", RegionError)
        D = layout.d_model if d_model is None else d_model
        regions = {n: s for n, s in layout.regions.items() if s.semantic_embedding is not None}
        missing = [n for n in layout.regions if n not in regions]
        if not regions or (missing and not allow_missing):
            raise bad("regions without semantic_embedding", missing or list(layout.regions),
                      "none (fill them with compute_semantic_embeddings(schema, embedder))",
                      RegionError)
        widths = {len(s.semantic_embedding) for s in regions.values()}
        models = {s.embedding_model for s in regions.values()}
        if len(widths) > 1 or len(models) > 1:
            raise bad("semantic embeddings", f"widths {sorted(widths)}, models {models}",
                      "one width and one model for every region", RegionError)
        self.names = list(regions)
        self.model_name = models.pop()
        emb = torch.tensor([regions[n].semantic_embedding for n in self.names])  # (R, E)
        idx = [layout.region_index_tensor(n) for n in self.names]
        # not in the state dict: they are the layout's declaration, rebuilt from it, so a
        # checkpoint holds only what was learned and cannot override what the canvas declares
        self.register_buffer("embeddings", emb.float(), persistent=False)
        self.register_buffer("positions", torch.cat(idx), persistent=False)  # (M,)
        self.register_buffer("region_of", torch.cat(
            [torch.full((len(i),), r) for r, i in enumerate(idx)]), persistent=False)  # (M,)
        self.num_positions = layout.num_positions
        # zeros from the start, not a re-initialised nn.Linear: no random numbers are drawn, so
        # adding the conditioner to a model leaves the rest of its initialisation as it was
        self.weight = nn.Parameter(torch.zeros(D, emb.shape[1]))  # (D, E)
        self.bias = nn.Parameter(torch.zeros(D))

    def init_weights(self) -> None:
        """Zero projection: the conditioner adds exactly 0 until it learns."""
        nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)

    def region_vectors(self) -> torch.Tensor:
        """The projected embedding of each region. (R, D)"""
        return F.linear(self.embeddings, self.weight, self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.num_positions:
            raise bad("x", tuple(x.shape), f"(B, {self.num_positions}, D)", RegionError)
        per_region = self.region_vectors().to(x.dtype)  # (R, D)
        add = torch.zeros(x.shape[1:], dtype=x.dtype, device=x.device)  # (N, D)
        add = add.index_add(0, self.positions, per_region[self.region_of])
        return x + add  # (B, N, D)
