"""Graft looped blocks onto pretrained diffusers video transformers, and freeze the backbone.

Supported backbones and their block conventions (detected from the model's class, so diffusers
is never imported here):

| model                          | blocks               | block returns            | latent layout    |
|--------------------------------|----------------------|--------------------------|------------------|
| `CogVideoXTransformer3DModel`  | `transformer_blocks` | (hidden, encoder) D, D   | (B, F, C, H, W)  |
| `WanTransformer3DModel`        | `blocks`             | hidden (text is context) | (B, C, F, H, W)  |
| `MochiTransformer3DModel`      | `transformer_blocks` | (hidden, encoder) D, E   | (B, C, F, H, W)  |

D = num_attention_heads · attention_head_dim; Mochi's encoder stream has width
E = pooled_projection_dim.

Freeze levels (seed 000 "Freeze strategies"):
- "full": only the loop parameters (and the action head, which lives outside the model) train;
- "half": everything trains except the patch embedding;
- "none": everything trains.
Loop parameters are float32 whatever the backbone's dtype (load it in bf16 to save memory); they
are cast to the stream's dtype inside each loop. Cast the backbone *before* grafting:
`transformer.to(dtype)` afterwards casts the loop parameters too. Each wrapper keeps the original
block as `.block`, so the grafted model's state-dict keys gain a `.block` segment; save loop
parameters with `save_loop_checkpoint` and reload the backbone from its pretrained weights.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from canvas_engineering.errors import bad
from canvas_engineering.nn.heads import ActionHead
from canvas_engineering.nn.looped import LoopedBlockWrapper

FREEZE_LEVELS = ("full", "half", "none")


@dataclass(frozen=True)
class BlockConvention:
    """How one diffusers transformer lays out and calls its blocks."""

    model: str  # class name of the transformer
    blocks_attr: str  # attribute holding the nn.ModuleList of blocks
    patch_attr: str  # attribute holding the patch embedding
    encoder_dim_key: str | None  # config key of the returned encoder width; "inner" = D
    channel_dim: int  # axis of the latent channels in the model's output


CONVENTIONS = {
    c.model: c
    for c in (
        BlockConvention("CogVideoXTransformer3DModel", "transformer_blocks", "patch_embed",
                        "inner", 2),
        BlockConvention("WanTransformer3DModel", "blocks", "patch_embedding", None, 1),
        BlockConvention("MochiTransformer3DModel", "transformer_blocks", "patch_embed",
                        "pooled_projection_dim", 1),
    )
}


def detect_convention(transformer) -> BlockConvention:
    """The `BlockConvention` of a supported transformer (subclasses count); else TypeError."""
    if isinstance(transformer, nn.Module):
        for cls in type(transformer).__mro__:
            if cls.__name__ in CONVENTIONS:
                return CONVENTIONS[cls.__name__]
    raise TypeError(
        f"transformer: got {type(transformer).__name__}, expected one of {sorted(CONVENTIONS)} "
        "from diffusers (wrap other blocks with LoopedBlockWrapper directly)"
    )


def _loop_param_ids(module: nn.Module) -> set[int]:
    return {id(p) for m in module.modules() if isinstance(m, LoopedBlockWrapper)
            for _, p in m.named_loop_parameters()}


def freeze_full(transformer: nn.Module) -> int:
    """Freeze everything except loop parameters; returns the number of trainable parameters."""
    loop_ids = _loop_param_ids(transformer)
    for p in transformer.parameters():
        p.requires_grad_(id(p) in loop_ids)
    return sum(p.numel() for p in transformer.parameters() if p.requires_grad)


def freeze_half(transformer: nn.Module) -> int:
    """Freeze only the patch embedding; returns the number of trainable parameters."""
    patch = getattr(transformer, detect_convention(transformer).patch_attr)
    patch_ids = {id(p) for p in patch.parameters()}
    for p in transformer.parameters():
        p.requires_grad_(id(p) not in patch_ids)
    return sum(p.numel() for p in transformer.parameters() if p.requires_grad)


def unfreeze(transformer: nn.Module) -> int:
    """Make every parameter trainable (freeze="none"); returns their number."""
    for p in transformer.parameters():
        p.requires_grad_(True)
    return sum(p.numel() for p in transformer.parameters())


def graft_looped_blocks(transformer: nn.Module, max_loops: int = 3, freeze: str = "full",
                        action_dim: int | None = None, *, gate: str = "zero",
                        per_token: bool = False, checkpoint: bool = False, sharpening=None,
                        action_head: str = "mlp", emb_init_std: float = 0.02):
    """Replace every block of a CogVideoX / Wan / Mochi transformer with a looped one, in place.

    Args:
        transformer: a diffusers `CogVideoXTransformer3DModel`, `WanTransformer3DModel` or
            `MochiTransformer3DModel` (any dtype; bf16 is the intended frozen backbone).
        max_loops: loops per block (the curriculum can run fewer per call).
        freeze: "full", "half" or "none" (see the module docstring).
        action_dim: when set, also build an `ActionHead` from the output latent channels.
        gate, per_token, checkpoint, sharpening, emb_init_std: passed to `LoopedBlockWrapper`.
        action_head: "mlp" (default `ActionHead`) or "paper" (`ActionHead.paper()`, 8 hidden).

    Returns:
        (looped_blocks, head): an `nn.ModuleList` of the wrappers now inside the model,
        and the float32 `ActionHead` (or None when action_dim is None).
    """
    conv = detect_convention(transformer)
    if isinstance(max_loops, bool) or not isinstance(max_loops, int) or max_loops < 1:
        raise bad("max_loops", max_loops, "an int >= 1")
    if freeze not in FREEZE_LEVELS:
        raise bad("freeze", freeze, f"one of {list(FREEZE_LEVELS)}")
    if action_head not in ("mlp", "paper"):
        raise bad("action_head", action_head, "'mlp' or 'paper'")
    if action_dim is not None and (isinstance(action_dim, bool)
                                   or not isinstance(action_dim, int) or action_dim < 1):
        raise bad("action_dim", action_dim, "None or an int >= 1")
    blocks = getattr(transformer, conv.blocks_attr)
    if any(isinstance(b, LoopedBlockWrapper) for b in blocks):
        raise ValueError(f"transformer: its {conv.blocks_attr} are already looped; graft once")

    cfg = transformer.config
    dim = cfg.num_attention_heads * cfg.attention_head_dim
    enc_dim = None
    if conv.encoder_dim_key is not None:
        enc_dim = dim if conv.encoder_dim_key == "inner" else cfg[conv.encoder_dim_key]
    for i, block in enumerate(blocks):
        blocks[i] = LoopedBlockWrapper(
            block, dim=dim, max_loops=max_loops, encoder_dim=enc_dim, gate=gate,
            per_token=per_token, checkpoint=checkpoint, sharpening=sharpening,
            hidden_arg="hidden_states", encoder_arg="encoder_hidden_states",
            emb_init_std=emb_init_std)

    {"full": freeze_full, "half": freeze_half, "none": unfreeze}[freeze](transformer)

    head = None
    if action_dim is not None:
        channels = cfg.get("out_channels") or cfg.in_channels
        build = ActionHead.paper if action_head == "paper" else ActionHead
        head = build(channels, action_dim, channel_dim=conv.channel_dim)
        head.to(next(transformer.parameters()).device)
    return nn.ModuleList(blocks), head
