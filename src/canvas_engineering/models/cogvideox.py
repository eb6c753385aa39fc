"""The canvas on a frozen, pretrained CogVideoX transformer (seed 004's default backbone).

Shape glossary: B batch, N canvas positions, D d_model (the canvas width), I the transformer's
inner width (heads · head_dim: 1920 for CogVideoX-2b, 3072 for the 5B), n_r / d_r positions /
data values of region r, L loops.

Data flow:
1. per-region encoders (Linear d_r → D) place tokens on a `SpatiotemporalCanvas` (its learned
   structure embedding is the positional encoding) → (B, N, D);
2. `proj_in` (D → I, fp32), cast to the frozen blocks' dtype;
3. the frozen CogVideoX blocks, called directly: the model's own forward needs 226 text tokens
   and a latent video, while a block takes any text length. One learned conditioning token is
   the whole text stream (B, 1, I); the diffusion time t ∈ [0, 1] goes through the pretrained
   time embedding as step 999·t → temb (B, time_embed_dim). Each block is looped L times by a
   `LoopedBlockWrapper` with per-loop embeddings for both streams and a per-loop gate;
4. `proj_out` (I → D, fp32) → LayerNorm → per-region decoders (Linear D → d_r).

Identity at init: loop 0 runs the plain block on h + 0 and later loops enter through gates that
start at 0, so the looped stack equals the frozen stack bit-for-bit at init (the published
σ(0) = 0.5 blend halves every block's update instead; `gate="sigmoid"` keeps it for the paper).

The frozen transformer is *not* a submodule: it is held by reference, so `parameters()`,
`state_dict()` and checkpoints hold only the trainable parameters, and several models (the DAG
curriculum's nodes) share one copy in memory. The blocks attend densely over the canvas:
CogVideoX's attention takes no mask, so the canvas topology is not applied here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from canvas_engineering.data.codecs import RegionCodec
from canvas_engineering.errors import CanvasError, bad, check_int
from canvas_engineering.models.cogvideox_load import DTYPES, load_transformer
from canvas_engineering.models.registry import register_backbone
from canvas_engineering.nn.canvas import SpatiotemporalCanvas
from canvas_engineering.nn.looped import GATES, LoopedBlockWrapper
from canvas_engineering.spec.layout import CanvasLayout
from canvas_engineering.spec.topology import CanvasTopology


@dataclass(frozen=True)
class CogVideoXConfig:
    """Settings of a `CanvasCogVideoX`; round-trips through `to_dict` / `from_dict` (JSON).

    Args:
        pretrained_model_id: a local directory or a hub id found in the local cache.
        d_model: D, the canvas width; loops: L, most (and default) loops per block;
        gate: "zero" (identity at init) or "sigmoid" (the published blend);
        checkpoint: recompute each loop on backward (per-loop activation checkpointing);
        dtype: of the frozen blocks ("bfloat16", "float16", "float32"); trainables stay fp32.
        cache_dir: the hub cache to look in (None: $HF_HUB_CACHE / $HF_HOME/hub).
    """

    pretrained_model_id: str
    d_model: int = 64
    loops: int = 3
    gate: str = "zero"
    checkpoint: bool = False
    dtype: str = "bfloat16"
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.pretrained_model_id, str) or not self.pretrained_model_id:
            raise bad("pretrained_model_id", self.pretrained_model_id,
                      "a local directory or a hub id in the local cache")
        check_int("d_model", self.d_model, 1)
        check_int("loops", self.loops, 1)
        if self.gate not in GATES:
            raise bad("gate", self.gate, f"one of {list(GATES)}")
        if not isinstance(self.checkpoint, bool):
            raise bad("checkpoint", self.checkpoint, "a bool")
        if self.dtype not in DTYPES:
            raise bad("dtype", self.dtype, f"one of {list(DTYPES)}")

    FROM_PRESET = ("d_model", "loops", "gate", "checkpoint")  # what a preset gives it

    @classmethod
    def from_preset(cls, preset, pretrained_model_id: str, dtype: str = "bfloat16"):
        """The canvas-side sizes (`FROM_PRESET`) of a scratch `BackboneConfig` preset, on the
        pretrained blocks of `pretrained_model_id`."""
        return cls(pretrained_model_id, dtype=dtype,
                   **{name: getattr(preset, name) for name in cls.FROM_PRESET})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> CogVideoXConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) - names:
            got = sorted(set(data) - names) if isinstance(data, dict) else type(data).__name__
            raise bad("cogvideox config keys", got, f"a subset of {sorted(names)}")
        return cls(**data)


class _SharedBlock(nn.Module):
    """Calls a frozen block it does not own: the block stays out of this module's parameters
    and state_dict, so looping it adds only the wrapper's loop parameters."""

    def __init__(self, block: nn.Module):
        super().__init__()
        object.__setattr__(self, "shared", block)  # a plain attribute, not a submodule

    def forward(self, hidden_states, encoder_hidden_states, temb):
        return self.shared(hidden_states, encoder_hidden_states, temb)


@register_backbone("cogvideox")
class CanvasCogVideoX(nn.Module):
    """Denoiser on a canvas through frozen CogVideoX blocks (see the module docstring).

    forward(x {region: (B, n_r, d_r)}, timestep (B,) in [0, 1], loops=None) → {region: (B, n_r,
    d_r)}, as `CanvasWorldModel`. `transformer`: an already loaded (frozen) transformer to
    share; None loads `config.pretrained_model_id` from disk.
    """

    def __init__(self, layout: CanvasLayout, topology: CanvasTopology,
                 codecs: dict[str, RegionCodec], config: CogVideoXConfig, *, transformer=None):
        super().__init__()
        if not isinstance(config, CogVideoXConfig):
            raise bad("config", type(config).__name__, "a CogVideoXConfig")
        if not isinstance(codecs, dict) or not codecs:
            raise bad("codecs", codecs, "a non-empty dict of region -> RegionCodec")
        for name, codec in codecs.items():
            layout.region_spec(name)  # unknown region: error listing the valid ones
            if not isinstance(codec, RegionCodec) or codec.num_positions != \
                    layout.region_size(name):
                raise bad(f"codecs[{name!r}]", codec, f"a RegionCodec of region {name!r}")
        if transformer is None:
            transformer = load_transformer(config.pretrained_model_id, config.dtype,
                                           config.cache_dir)
        object.__setattr__(self, "transformer", transformer)  # shared, frozen, not owned
        cfg = transformer.config
        inner = cfg.num_attention_heads * cfg.attention_head_dim  # I
        D = config.d_model
        self.layout, self.config, self.codecs, self.inner_dim = layout, config, dict(codecs), inner
        # 1. canvas and per-region encoders / decoders
        self.canvas = SpatiotemporalCanvas(dataclasses.replace(layout, d_model=D))
        self.encoders = nn.ModuleDict({r: nn.Linear(c.position_dim, D) for r, c in codecs.items()})
        self.decoders = nn.ModuleDict({r: nn.Linear(D, c.position_dim) for r, c in codecs.items()})
        # 2. projections and the conditioning token (the whole text stream)
        self.proj_in = nn.Linear(D, inner)
        self.encoder_token = nn.Parameter(torch.randn(1, 1, inner) * 0.02)  # (1, 1, I)
        # 3. every frozen block looped; the wrappers' loop parameters are fp32
        self.blocks = nn.ModuleList(
            LoopedBlockWrapper(_SharedBlock(b), dim=inner, max_loops=config.loops,
                               encoder_dim=inner,
                               gate=config.gate, checkpoint=config.checkpoint)
            for b in transformer.transformer_blocks)
        # 4. back to the canvas width
        self.proj_out = nn.Linear(inner, D)
        self.norm_out = nn.LayerNorm(D)

    def _frozen_on(self, device: torch.device):
        """The shared transformer, moved to `device` the first time the model runs there
        (`.to()` moves only what this module owns)."""
        t = self.transformer
        if next(t.parameters()).device != device:
            t.to(device)
        return t

    def time_embedding(self, timestep: torch.Tensor) -> torch.Tensor:
        """t ∈ [0, 1] (B,) → the pretrained temb (B, time_embed_dim), in the blocks' dtype.
        CogVideoX was trained on 1000 discrete steps, so t maps to step 999·t."""
        t = self._frozen_on(timestep.device)
        dtype = next(t.parameters()).dtype
        emb = t.time_proj(timestep.float() * 999.0).to(dtype)  # (B, I)
        return t.time_embedding(emb)  # (B, time_embed_dim)

    def run_blocks(self, h: torch.Tensor, enc: torch.Tensor, temb: torch.Tensor,
                   loops: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The looped frozen stack: h (B, N, I), enc (B, M, I), temb (B, E) in the blocks'
        dtype → (h, enc), same shapes."""
        for block in self.blocks:
            h, enc = block(h, enc, temb, loops=loops)
        return h, enc

    def forward(self, x: dict[str, torch.Tensor], timestep: torch.Tensor,
                loops: int | None = None) -> dict[str, torch.Tensor]:
        if not isinstance(x, dict) or set(x) != set(self.codecs):
            got = sorted(x) if isinstance(x, dict) else type(x).__name__
            raise CanvasError(f"x: got regions {got}, expected exactly {sorted(self.codecs)}")
        B = next(iter(x.values())).shape[0]
        if not isinstance(timestep, torch.Tensor) or tuple(timestep.shape) != (B,):
            shape = tuple(timestep.shape) if isinstance(timestep, torch.Tensor) else timestep
            raise bad("timestep", shape, f"a tensor of shape ({B},) with values in [0, 1]")
        h = self.canvas.create_empty(B)  # (B, N, D)
        for r, enc in self.encoders.items():
            h = self.canvas.place(h, enc(x[r]), r)
        temb = self.time_embedding(timestep)  # (B, E), frozen dtype
        dtype = temb.dtype
        # fp32 trainables meet the frozen dtype here: bf16 LayerNorms refuse fp32 inputs.
        hidden = self.proj_in(h).to(dtype)  # (B, N, I)
        enc = self.encoder_token.expand(B, -1, -1).to(dtype)  # (B, 1, I)
        hidden, _ = self.run_blocks(hidden, enc, temb, loops)
        h = self.norm_out(self.proj_out(hidden.float()))  # (B, N, D)
        return {r: dec(self.canvas.extract(h, r)) for r, dec in self.decoders.items()}
