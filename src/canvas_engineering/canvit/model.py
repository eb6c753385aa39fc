"""CanViT: a ViT that looks at a scene through glimpses and keeps what it saw on a canvas.

Shape glossary: B batch, g glimpse grid side (glimpse pixels / patch), G canvas grid side,
R canvas registers, D backbone width, Dc canvas width.

One step: embed the glimpse's g² patches; prepend [viewpoint token?, recurrent CLS, backbone
registers]; run the blocks, reading the canvas and writing to it after the scheduled blocks
(read before write when a block has both). Glimpse patches sit at their scene positions
(centre + scale · cell offset), canvas cells at the G×G cell centres; both streams rotate by
those scene positions. The state carried between steps is the canvas (B, R + G², Dc) and the
recurrent CLS (B, 1, D): constant size however many glimpses come.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from canvas_engineering.canvit.backbone import Backbone
from canvas_engineering.canvit.canvas_attention import CanvasRead, CanvasWrite
from canvas_engineering.canvit.config import CanViTConfig, canvas_attention_schedule
from canvas_engineering.canvit.rope import rope_periods, rope_table
from canvas_engineering.canvit.viewpoint import Viewpoint, grid_coords, viewpoint_grid_coords
from canvas_engineering.canvit.vpe import ViewpointEncoding
from canvas_engineering.errors import CanvasError, bad, check_int


@dataclass(frozen=True)
class RecurrentState:
    """canvas (B, R + G², Dc): registers, then G×G cells row-major; recurrent_cls (B, 1, D)."""

    canvas: torch.Tensor
    recurrent_cls: torch.Tensor

    def detach(self) -> RecurrentState:
        return RecurrentState(self.canvas.detach(), self.recurrent_cls.detach())


@dataclass(frozen=True)
class CanViTOutput:
    """state; glimpse_patches (B, g², D) after the last block; vpe (B, D) the viewpoint token
    after the last block, or None without VPE."""

    state: RecurrentState
    glimpse_patches: torch.Tensor
    vpe: torch.Tensor | None


class CanViT(nn.Module):
    def __init__(self, config: CanViTConfig | None = None) -> None:
        super().__init__()
        config = config or CanViTConfig()
        if not isinstance(config, CanViTConfig):
            raise bad("config", type(config).__name__, "a CanViTConfig")
        self.config = config
        spec = config.backbone_spec
        d, dc = spec.embed_dim, config.canvas_dim
        # 1. The glimpse stream and its schedule of canvas reads and writes.
        self.backbone = Backbone(spec)
        self.read_after, self.write_after = canvas_attention_schedule(
            spec.num_blocks, config.rw_stride, config.enable_reads)
        opts = {"projections": config.canvas_projections, "rope_base": spec.rope_base}
        self.canvas_reads = nn.ModuleList(
            CanvasRead(d, config.canvas_num_heads, kv_dim=dc, **opts) for _ in self.read_after)
        self.canvas_writes = nn.ModuleList(
            CanvasWrite(dc, config.canvas_num_heads, kv_dim=d, **opts) for _ in self.write_after)
        # 2. Learned initial state and per-step tokens; none depends on G.
        self.init_canvas_registers = nn.Parameter(
            torch.randn(1, config.num_canvas_registers, dc) / math.sqrt(dc))
        self.init_canvas_patch = nn.Parameter(torch.randn(1, 1, dc) / math.sqrt(dc))
        self.init_recurrent_cls = nn.Parameter(torch.randn(1, 1, d) / math.sqrt(d))
        self.backbone_registers = nn.Parameter(
            torch.randn(1, config.num_backbone_registers, d) * 0.02)
        self.vpe = ViewpointEncoding(d) if config.enable_vpe else None
        self._canvas_tables: dict = {}

    @property
    def backbone_dim(self) -> int:
        return self.config.backbone_spec.embed_dim

    @property
    def canvas_dim(self) -> int:
        return self.config.canvas_dim

    @property
    def patch_size(self) -> int:
        return self.config.backbone_spec.patch_size

    def init_state(self, batch_size: int, canvas_grid_size: int) -> RecurrentState:
        """The state before any glimpse: canvas (B, R + G², Dc), recurrent CLS (B, 1, D)."""
        check_int("batch_size", batch_size, 1)
        check_int("canvas_grid_size", canvas_grid_size, 1)
        cells = self.init_canvas_patch.expand(batch_size, canvas_grid_size ** 2, -1)
        canvas = torch.cat([self.init_canvas_registers.expand(batch_size, -1, -1), cells], 1)
        return RecurrentState(canvas, self.init_recurrent_cls.expand(batch_size, -1, -1))

    def canvas_grid_size(self, canvas: torch.Tensor) -> int:
        cells = canvas.shape[1] - self.config.num_canvas_registers
        side = math.isqrt(max(cells, 0))
        if cells < 1 or side * side != cells:
            raise CanvasError(f"canvas: got {cells} cells after "
                              f"{self.config.num_canvas_registers} registers, expected a "
                              "square number G² ≥ 1")
        return side

    def canvas_patches(self, canvas: torch.Tensor) -> torch.Tensor:
        """(B, R + G², Dc) -> (B, G², Dc): the cells, registers dropped."""
        return canvas[:, self.config.num_canvas_registers:]

    def canvas_patch_grid(self, canvas: torch.Tensor) -> torch.Tensor:
        """(B, R + G², Dc) -> (B, G, G, Dc)."""
        side = self.canvas_grid_size(canvas)
        return self.canvas_patches(canvas).unflatten(1, (side, side))

    def _canvas_table(self, side: int, device):
        key = (side, str(device))  # the cells never move: one table per (G, device)
        if key in self._canvas_tables:
            return self._canvas_tables[key]
        periods = rope_periods(self.config.canvas_head_dim, self.config.backbone_spec.rope_base,
                               device)
        table = rope_table(grid_coords(side, device).flatten(0, 1), periods)  # (1, 1, G², dc)
        if not torch.is_inference_mode_enabled():  # inference tensors cannot enter autograd
            self._canvas_tables[key] = table
        return table

    def _check(self, glimpse, state, viewpoint) -> int:
        p, b = self.patch_size, viewpoint.batch_size if isinstance(viewpoint, Viewpoint) else -1
        if b < 0:
            raise bad("viewpoint", type(viewpoint).__name__, "a Viewpoint")
        if not isinstance(glimpse, torch.Tensor) or glimpse.dim() != 4 \
                or glimpse.shape[:2] != (b, 3) or glimpse.shape[2] != glimpse.shape[3] \
                or glimpse.shape[2] % p:
            raise bad("glimpse", tuple(getattr(glimpse, "shape", ())),
                      f"({b}, 3, n, n) with n a multiple of the patch size {p}")
        dc, d = self.canvas_dim, self.backbone_dim
        if state.canvas.dim() != 3 or state.canvas.shape[0] != b or state.canvas.shape[2] != dc:
            raise bad("state.canvas", tuple(state.canvas.shape), f"({b}, R + G², {dc})")
        if tuple(state.recurrent_cls.shape) != (b, 1, d):
            raise bad("state.recurrent_cls", tuple(state.recurrent_cls.shape), f"({b}, 1, {d})")
        return glimpse.shape[2] // p

    def forward(self, *, glimpse: torch.Tensor, state: RecurrentState,
                viewpoint: Viewpoint) -> CanViTOutput:
        """glimpse (B, 3, n, n) seen at `viewpoint`, n = g · patch -> CanViTOutput."""
        g = self._check(glimpse, state, viewpoint)
        b, spec = glimpse.shape[0], self.config.backbone_spec
        # 1. Tokens: [vpe?, cls, registers, patches].
        patches = self.backbone.patch_embed(glimpse)  # (B, g², D)
        prefix = [state.recurrent_cls, self.backbone_registers.expand(b, -1, -1)]
        if self.vpe is not None:
            prefix.insert(0, self.vpe(viewpoint).unsqueeze(1).to(patches.dtype))  # (B, 1, D)
        n_prefix = sum(t.shape[1] for t in prefix)
        tokens = torch.cat([*prefix, patches], dim=1)  # (B, P + g², D)
        # 2. Scene positions and their rotations, at both head sizes.
        where = viewpoint_grid_coords(viewpoint, g).flatten(1, 2)  # (B, g², 2)
        device = glimpse.device
        glimpse_rope = rope_table(where, rope_periods(spec.head_dim, spec.rope_base, device))
        glimpse_rope_c = rope_table(where, rope_periods(self.config.canvas_head_dim,
                                                        spec.rope_base, device))
        canvas = state.canvas
        canvas_rope = self._canvas_table(self.canvas_grid_size(canvas), device)
        # 3. Blocks, with reads and writes after the scheduled ones.
        reads = dict(zip(self.read_after, self.canvas_reads))
        writes = dict(zip(self.write_after, self.canvas_writes))
        for i, block in enumerate(self.backbone.blocks):
            tokens = block(tokens, glimpse_rope)
            if i in reads:
                tokens = tokens + reads[i](tokens, canvas, q_pos=glimpse_rope_c,
                                           kv_pos=canvas_rope)
            if i in writes:
                canvas = canvas + writes[i](canvas, tokens, q_pos=canvas_rope,
                                            kv_pos=glimpse_rope_c)
        # 4. Unpack; no final norm (readouts carry their own).
        cls_at = 1 if self.vpe is not None else 0
        return CanViTOutput(
            state=RecurrentState(canvas, tokens[:, cls_at:cls_at + 1].contiguous()),
            glimpse_patches=tokens[:, n_prefix:].contiguous(),
            vpe=tokens[:, 0] if self.vpe is not None else None)

    @classmethod
    def from_pretrained(cls, directory, **kwargs) -> CanViT:
        from canvas_engineering.canvit.checkpoint import load_canvit
        return load_canvit(directory, **kwargs)

    def save_pretrained(self, directory) -> None:
        from canvas_engineering.canvit.checkpoint import save_pretrained
        save_pretrained(self, directory)
