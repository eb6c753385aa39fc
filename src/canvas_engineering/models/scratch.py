"""A scratch DiT-style backbone for canvases: the world model of seed 002 §3 (architecture v1).

Shape glossary: B batch, N positions, D d_model, n_r positions of region r, d_r data values per
position of region r, F timestep frequency features, L loops.

Data flow (reads bottom-up: small parts first, the model last):
1. per-region encoders (Linear d_r → D) place tokens on a `SpatiotemporalCanvas`; positions in
   a region without a codec keep the canvas's empty token + structure; positions in no region
   are dropped: no edge of a topology reads or writes them, so the blocks run on the M region
   positions only (186 of the robot canvas's 320); with `video_unet`, a convolutional encoder
   adds features of each video region's context frames to their tokens (`VideoUNet`);
2. the diffusion timestep → sinusoidal features → MLP → conditioning vector c (B, D);
3. `n_blocks` `CanvasDiTBlock`s, each looped by a `LoopedBlockWrapper` (weight-tied, learned
   loop embeddings, zero-initialised gates), attention following the canvas topology;
4. final AdaLN + per-region decoders (Linear D → d_r), and with `pixel_head` a convolution
   over each video region's pixels that refines its decoded patches (`PixelHead`), and with
   `video_unet` the convolutional decoder of its future frames (`VideoUNet`), which also reads
   the given values of the vector regions the video region reads (`given_values`).

adaLN-Zero (DiT, Peebles & Xie 2023): every modulation layer starts at zero, so each block is the
identity at init and the model's output at init does not depend on the loop count.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from canvas_engineering.data.codecs import RegionCodec, VideoCodec
from canvas_engineering.errors import CanvasError, bad
from canvas_engineering.models.registry import register_backbone
from canvas_engineering.nn.canvas import SpatiotemporalCanvas
from canvas_engineering.nn.dispatcher import AttentionDispatcher, position_ranks
from canvas_engineering.nn.local_mixing import RegionConv
from canvas_engineering.nn.loop_schedules import SharpeningSchedule
from canvas_engineering.nn.looped import GATES, LoopedBlockWrapper
from canvas_engineering.nn.pixel_head import PixelHead
from canvas_engineering.nn.semantic import SemanticConditioner
from canvas_engineering.nn.video_unet import VideoUNet
from canvas_engineering.spec.layout import CanvasLayout
from canvas_engineering.spec.topology import CanvasTopology


@dataclass(frozen=True)
class BackboneConfig:
    """Size of a `CanvasWorldModel`. Round-trips through `to_dict` / `from_dict` (JSON).

    Args:
        d_model: D; n_heads: attention heads; n_blocks: distinct (weight-untied) blocks;
        loops: L, most (and default) iterations per block; mlp_ratio: SwiGLU hidden width / D;
        gate: loop gate of `LoopedBlockWrapper` ("zero" = identity at init);
        checkpoint: recompute each loop on backward; freq_dim: F, sinusoidal timestep features.
        per_token: per-token loop gates (seed 002 Exp 8) instead of one gate per loop.
        beta_min, beta_max: progressive sharpening (seed 002 Eq. 2), the attention's inverse
            temperature from beta_min at loop 0 to beta_max at the last loop (1, 1: none).
        halting: a per-token halting head on each looped block (`LoopedBlockWrapper`).
        semantic: add each region's projected semantic embedding to its positions
            (`SemanticConditioner`, zero at init); the layout's regions must carry embeddings
            (`compute_semantic_embeddings`).
        local_kernel: k > 0 mixes each position's k × k × k neighbourhood in its region's
            (t, h, w) grid into every block's MLP input (`RegionConv`, depthwise, zero at
            init); 0: none.
        pixel_head: K > 0 refines each video region's decoded patches with two 3 × 3
            convolutions of K channels over its frames' pixels, fed by the tokens upsampled to
            pixels (`PixelHead`, zero at init): much better video samples; 0: none.
        video_unet: W > 0 wraps each video region in a convolutional encoder (its context
            frames → token additions) and decoder (future tokens → pixels, with skips from
            the last context frame) at full and half resolution, W and 2W channels
            (`VideoUNet`, zero at init): better frames and samples, fewer action points; 0: none.
        video_unet_aux: w > 0 also fits each such region's linear decoder alone (before the
            path's correction) to the same target, with w times the region's loss weight
            (`forward(..., auxiliary=True)`, `CanvasDiffusion.loss(..., auxiliary=True)`): the
            tokens keep predicting the future frames themselves, which the actions need.
        video_unet_condition: the path's decoder also reads, as constant channels, the given
            (never noised) values of the vector regions its video region reads in the
            topology, e.g. the context actions (`given_values`, `VideoUNet(conditions=K)`):
            the pixels see what moved them. No effect without video_unet.
    """

    d_model: int = 64
    n_heads: int = 4
    n_blocks: int = 2
    loops: int = 2
    mlp_ratio: float = 4.0
    gate: str = "zero"
    checkpoint: bool = False
    freq_dim: int = 256
    per_token: bool = False
    beta_min: float = 1.0
    beta_max: float = 1.0
    halting: bool = False
    semantic: bool = False
    local_kernel: int = 0
    pixel_head: int = 0
    video_unet: int = 0
    video_unet_aux: float = 0.0
    video_unet_condition: bool = True

    def __post_init__(self) -> None:
        for name in ("d_model", "n_heads", "n_blocks", "loops", "freq_dim"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise bad(name, v, "an int >= 1")
        if self.d_model % self.n_heads:
            raise bad("d_model", self.d_model, f"a multiple of n_heads={self.n_heads}")
        k = self.local_kernel
        if isinstance(k, bool) or not isinstance(k, int) or k < 0 or (k and k % 2 == 0):
            raise bad("local_kernel", k, "0 (none) or an odd int >= 1")
        for name in ("pixel_head", "video_unet"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise bad(name, v, "0 (none) or an int >= 1 (hidden channels)")
        w = self.video_unet_aux
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w < math.inf:
            raise bad("video_unet_aux", w, "a finite number >= 0")
        if w and not self.video_unet:
            raise bad("video_unet_aux", w, "0 without video_unet (it weighs the fit of the "
                      "linear decoder that the video_unet corrects)")
        if self.freq_dim % 2:
            raise bad("freq_dim", self.freq_dim, "an even int")
        r = self.mlp_ratio
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not r > 0 or math.isinf(r):
            raise bad("mlp_ratio", r, "a finite number > 0")
        if self.gate not in GATES:
            raise bad("gate", self.gate, f"one of {list(GATES)}")
        for name in ("checkpoint", "per_token", "halting", "semantic", "video_unet_condition"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, getattr(self, name), "a bool")
        for name in ("beta_min", "beta_max"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf:
                raise bad(name, v, "a finite number > 0")

    def sharpening(self) -> SharpeningSchedule | None:
        """The loop-indexed β schedule, or None without sharpening."""
        if self.beta_min == self.beta_max == 1:
            return None
        return SharpeningSchedule(self.loops, self.beta_min, self.beta_max)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> BackboneConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) - fields:
            got = sorted(set(data) - fields) if isinstance(data, dict) else type(data).__name__
            raise bad("backbone config keys", got, f"a subset of {sorted(fields)}")
        return cls(**data)


# Size presets (DiT-style string registry). paper-toy is seed 002's v1 toy: d_model 128, 3 blocks,
# 3 loops, ~1.49 M parameters; mlp_ratio 6 brings our block to that count on the robot canvas.
# cpu is the main job's: on 2 CPU cores, for the same training time, 3 blocks run once trained a
# better push-task model than 2 blocks looped 1 → 3 times (gap closed frames / actions / reward
# 28 / 43 / 81% against 24 / 40 / 71%, issue 11) — as docs/experiments finds for looping at large
# — and the region convolution (local_kernel 3) beat 26% more steps without it (issue 11); the
# video path with its linear readout also fitted (video_unet 16, video_unet_aux 1), trained
# 900 steps, beat 1,200 without it in the same time on two seeds, and its decoder reading the
# context actions (video_unet_condition) took the frames from 55 / 59% to 71 / 71% (900
# steps; the job now trains 1,800: 76 / 76%; issue 11, README).
BACKBONE_PRESETS: dict[str, BackboneConfig] = {
    "debug": BackboneConfig(d_model=64, n_heads=4, n_blocks=2, loops=2, mlp_ratio=2.0,
                            freq_dim=64),
    "cpu": BackboneConfig(d_model=64, n_heads=4, n_blocks=3, loops=1, mlp_ratio=2.0,
                          freq_dim=64, local_kernel=3, video_unet=16, video_unet_aux=1.0),
    "paper-toy": BackboneConfig(d_model=128, n_heads=4, n_blocks=3, loops=3, mlp_ratio=6.0),
    "small": BackboneConfig(d_model=384, n_heads=6, n_blocks=6, loops=3),
    "base": BackboneConfig(d_model=768, n_heads=12, n_blocks=12, loops=3),
}


def backbone_config(name: str, **overrides) -> BackboneConfig:
    """The preset `name`, with any fields replaced by `overrides`."""
    if name not in BACKBONE_PRESETS:
        raise bad("backbone preset", name, f"one of {list(BACKBONE_PRESETS)}")
    return dataclasses.replace(BACKBONE_PRESETS[name], **overrides)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """AdaLN: x (B, N, D) scaled and shifted per sample by (B, D) vectors."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class TimestepEmbedder(nn.Module):
    """Diffusion time t ∈ [0, 1] (B,) → conditioning vector (B, D): sinusoids → MLP (DiT)."""

    def __init__(self, d_model: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, d_model), nn.SiLU(),
                                 nn.Linear(d_model, d_model))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
        args = 1000.0 * t.float()[:, None] * freqs[None]  # (B, F/2); ×1000: DiT's integer steps
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (B, F)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))


class SwiGLU(nn.Module):
    """Feed-forward w2(silu(w1 x) · w3 x) (Shazeer 2020)."""

    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        self.w1 = nn.Linear(d_model, hidden)
        self.w3 = nn.Linear(d_model, hidden)
        self.w2 = nn.Linear(hidden, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class CanvasDiTBlock(nn.Module):
    """adaLN-Zero transformer block whose attention is an `AttentionDispatcher` over the canvas.

    forward(x (B, N, D), c (B, D), beta=1.0) → (B, N, D); with `positions` (M,), x holds only
    those canvas positions: (B, M, D). `CanvasWorldModel.initialize_weights`
    zeroes the modulation, so inside a model the gates are zero and the block returns x at init.
    """

    def __init__(self, layout: CanvasLayout, topology: CanvasTopology, config: BackboneConfig,
                 positions: torch.Tensor | None = None):
        super().__init__()
        D = config.d_model
        self.norm1 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.attn = AttentionDispatcher(topology, layout, D, config.n_heads, positions=positions)
        self.norm2 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.mlp = SwiGLU(D, max(1, round(config.mlp_ratio * D)))
        self.local = None  # neighbours in each region's grid, mixed into the MLP's input
        if config.local_kernel:
            self.local = RegionConv(layout, positions, D, config.local_kernel)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(D, 6 * D))

    def forward(self, x: torch.Tensor, c: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = \
            self.adaLN_modulation(c).chunk(6, dim=-1)  # 6 × (B, D)
        x = x + gate_a.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_a, scale_a), beta)
        m = modulate(self.norm2(x), shift_m, scale_m)  # (B, N, D)
        if self.local is not None:
            m = self.local(m)
        x = x + gate_m.unsqueeze(1) * self.mlp(m)
        return x


class FinalLayer(nn.Module):
    """Last AdaLN before the region decoders (a plain LayerNorm once the model zeroes it)."""

    def __init__(self, d_model: int):
        super().__init__()
        self.norm = nn.LayerNorm(d_model, elementwise_affine=False, eps=1e-6)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d_model, 2 * d_model))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)  # 2 × (B, D)
        return modulate(self.norm(x), shift, scale)


@register_backbone("scratch")
class CanvasWorldModel(nn.Module):
    """Denoiser on a canvas: region data at diffusion time t → a prediction per region.

    forward(x {region: (B, n_r, d_r)}, timestep (B,) in [0, 1], loops=None) → {region: (B, n_r,
    d_r)}; `x` has exactly one entry per codec. The width D is `config.d_model` (the layout's own
    d_model is not used). `loops` overrides `config.loops` for this call (a curriculum).
    `positions` (M,), strictly increasing canvas indices, are the positions the blocks run on;
    None: those of some region (the result is the same for any M that holds them).
    """

    def __init__(self, layout: CanvasLayout, topology: CanvasTopology,
                 codecs: dict[str, RegionCodec], config: BackboneConfig,
                 positions: torch.Tensor | None = None):
        super().__init__()
        if not isinstance(config, BackboneConfig):
            raise bad("config", type(config).__name__, "a BackboneConfig")
        if not isinstance(codecs, dict) or not codecs:
            raise bad("codecs", codecs, "a non-empty dict of region -> RegionCodec")
        for name, codec in codecs.items():
            layout.region_spec(name)  # unknown region: error listing the valid ones
            if not isinstance(codec, RegionCodec) or codec.region != name:
                raise bad(f"codecs[{name!r}]", codec, f"a RegionCodec of region {name!r}")
            if codec.num_positions != layout.region_size(name):
                raise bad(f"codecs[{name!r}].num_positions", codec.num_positions,
                          f"{layout.region_size(name)} (built for another layout)")
        D = config.d_model
        self.layout, self.config, self.codecs = layout, config, dict(codecs)
        wide = dataclasses.replace(layout, d_model=D)  # the layout at the backbone's width
        # 1. canvas and per-region encoders / decoders
        self.canvas = SpatiotemporalCanvas(wide)
        self.encoders = nn.ModuleDict({r: nn.Linear(c.position_dim, D) for r, c in codecs.items()})
        self.decoders = nn.ModuleDict({r: nn.Linear(D, c.position_dim) for r, c in codecs.items()})
        # the positions the blocks run on: those of some region (no edge touches the others)
        held = (self.canvas.region_id >= 0).nonzero().flatten() if positions is None \
            else positions  # (M,)
        rank = position_ranks(held, layout.num_positions)  # (N,), -1: not held
        self.register_buffer("held", held, persistent=False)
        for r in layout.region_names:
            if bool((rank[layout.region_index_tensor(r)] < 0).any()):
                raise bad("positions", f"{len(held)} positions", f"every position of region "
                          f"{r!r} among them (the blocks run on region positions)")
        for r in codecs:  # each decoded region's positions, as indices into the held ones
            self.register_buffer(f"_held_{r}", rank[layout.region_index_tensor(r)],
                                 persistent=False)
        # 2. timestep conditioning
        self.t_embedder = TimestepEmbedder(D, config.freq_dim)
        # 3. looped blocks; 4. final AdaLN
        self.blocks = nn.ModuleList(
            LoopedBlockWrapper(CanvasDiTBlock(wide, topology, config, held), dim=D,
                               max_loops=config.loops, gate=config.gate,
                               checkpoint=config.checkpoint, per_token=config.per_token,
                               sharpening=config.sharpening(), halting=config.halting)
            for _ in range(config.n_blocks))
        self.final = FinalLayer(D)
        # 5. optional: what each region is declared to be (zero-initialised, draws no randoms)
        self.semantic = SemanticConditioner(layout, d_model=D) if config.semantic else None
        # 6. optional: pixel-level refinement of each video region (last: the rest of the
        # initial weights are the same with and without it)
        self.pixel_heads = nn.ModuleDict({
            r: PixelHead(D, c.channels, c.frames, c.spatial, c.patch, config.pixel_head)
            for r, c in codecs.items() if config.pixel_head and isinstance(c, VideoCodec)})
        # 7. optional: a convolutional path around the blocks for each video region (after the
        # pixel heads, for the same reason)
        # with `video_unet_condition`, conditioned on the given values of the vector regions
        # the video region reads: region -> the read regions, their given positions in buffers
        self.given: dict[str, list[str]] = {}
        self.video_unets = nn.ModuleDict()
        for r, c in codecs.items():
            if not (config.video_unet and isinstance(c, VideoCodec)):
                continue
            reads = given_values(layout, topology, codecs, r) \
                if config.video_unet_condition else {}
            for d, idx in reads.items():
                self.register_buffer(f"_given_{r}_{d}", idx, persistent=False)
            self.given[r] = list(reads)
            K = sum(len(idx) * codecs[d].position_dim for d, idx in reads.items())
            self.video_unets[r] = _video_unet(r, c, D, config.video_unet, K)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """Every zero-init that makes the model start as the identity on its canvas (adaLN-Zero,
        DiT): each block's modulation (so its gates are zero), the final modulation (a plain
        LayerNorm), and the region decoders (the prediction starts at zero). The loop gates are
        zero by construction in `LoopedBlockWrapper`, so loops add nothing until they learn to."""
        for module in [*(w.block for w in self.blocks), self.final]:
            nn.init.zeros_(module.adaLN_modulation[-1].weight)
            nn.init.zeros_(module.adaLN_modulation[-1].bias)
        for dec in self.decoders.values():
            nn.init.zeros_(dec.weight)
            nn.init.zeros_(dec.bias)

    def _check_inputs(self, x: dict, timestep: torch.Tensor) -> int:
        if not isinstance(x, dict) or set(x) != set(self.codecs):
            got = sorted(x) if isinstance(x, dict) else type(x).__name__
            raise CanvasError(f"x: got regions {got}, expected exactly {sorted(self.codecs)} "
                              "(one entry per codec)")
        B = None
        for r, codec in self.codecs.items():
            v, want = x[r], (codec.num_positions, codec.position_dim)
            if not isinstance(v, torch.Tensor) or v.dim() != 3 or tuple(v.shape[1:]) != want \
                    or (B is not None and v.shape[0] != B):
                shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
                raise bad(f"x[{r!r}]", shape, f"a tensor ({B or 'B'}, {want[0]}, {want[1]}) "
                          "(B, n_r, d_r)")
            B = v.shape[0]
        if not isinstance(timestep, torch.Tensor) or tuple(timestep.shape) != (B,):
            shape = tuple(timestep.shape) if isinstance(timestep, torch.Tensor) else timestep
            raise bad("timestep", shape, f"a tensor of shape ({B},) with values in [0, 1]")
        return B

    def forward(self, x: dict[str, torch.Tensor], timestep: torch.Tensor,
                loops: int | None = None, auxiliary: bool = False):
        """region -> prediction (B, n_r, d_r). With `auxiliary`, (that dict, region -> (the
        linear decoder's prediction before the `VideoUNet` correction (B, n_r, d_r), its weight
        `video_unet_aux`)) for the video regions the path wraps (none when the weight is 0)."""
        B = self._check_inputs(x, timestep)
        h = self.canvas.create_empty(B)  # (B, N, D)
        skips = {}
        for r, enc in self.encoders.items():
            tokens = enc(x[r])  # (B, n_r, D)
            if r in self.video_unets:
                add, skips[r] = self.video_unets[r].encode(x[r])
                tokens = tokens + add
            h = self.canvas.place(h, tokens, r)  # region tokens + structure
        if self.semantic is not None:
            h = self.semantic(h)
        h = h.index_select(1, self.held)  # (B, M, D): the region positions
        c = self.t_embedder(timestep)  # (B, D)
        for block in self.blocks:
            h = block(h, c, loops=loops)
        h = self.final(h, c)
        out, aux = {}, {}
        for r, dec in self.decoders.items():
            tokens = h.index_select(1, getattr(self, f"_held_{r}"))  # (B, n_r, D)
            out[r] = dec(tokens)  # (B, n_r, d_r)
            if r in self.pixel_heads:
                out[r] = self.pixel_heads[r](tokens, out[r])
            if r in self.video_unets:
                if self.config.video_unet_aux:
                    aux[r] = (out[r], self.config.video_unet_aux)
                out[r] = self.video_unets[r].decode(tokens, out[r], skips[r],
                                                    self._given_values(x, r))
        return (out, aux) if auxiliary else out

    def _given_values(self, x: dict[str, torch.Tensor], region: str) -> torch.Tensor | None:
        """The values the video path of `region` is conditioned on (`given_values`), flattened
        in layout order. (B, K), or None when there are none."""
        parts = [x[d].index_select(1, getattr(self, f"_given_{region}_{d}")).flatten(1)
                 for d in self.given[region]]  # each (B, k·d_d)
        return torch.cat(parts, 1) if parts else None


def given_values(layout: CanvasLayout, topology: CanvasTopology,
                 codecs: dict[str, RegionCodec], region: str) -> dict[str, torch.Tensor]:
    """What the video path of `region` is conditioned on: for each region it reads (an edge
    `region` → it in the topology, any frames) that has a vector codec, the positions of it
    that are given, never noised (context frames, or every frame of a region that is not an
    output). read region -> (k,) indices into its positions, in layout order; regions with none
    are left out."""
    layout.region_spec(region)  # unknown region: error listing the valid ones
    reads = {c.dst for c in topology.connections if c.src == region and c.dst != region}
    output = layout.output_mask()  # (N,) bool
    given = {}
    for d in layout.region_names:
        if d in reads and d in codecs and not isinstance(codecs[d], VideoCodec):
            idx = (~output[layout.region_index_tensor(d)]).nonzero().flatten()  # (k,)
            if len(idx):
                given[d] = idx
    return given


def _video_unet(region: str, codec: VideoCodec, width: int, hidden: int,
                conditions: int) -> VideoUNet:
    """The `VideoUNet` of a video region; a region it cannot wrap is refused by name."""
    try:
        return VideoUNet(width, codec.channels, codec.frames, tuple(codec.spatial),
                         tuple(codec.patch), codec.reference, hidden, conditions)
    except ValueError as e:
        # the `cpu` preset turns the path on, so say how to train such a canvas without it
        raise bad("video_unet", hidden, f"video regions with context and future frames and "
                  f"even patch sides; region {region!r}: {e}. Without the path: "
                  "video_unet=0, video_unet_aux=0 (`--backbone_options="
                  "'{\"video_unet\": 0, \"video_unet_aux\": 0}'`)") from None


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
