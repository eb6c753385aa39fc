"""Scale the attention logits of an existing block by an inverse temperature β (seed 002 Eq. 2).

softmax(β · q kᵀ / √d) equals ordinary attention with the queries multiplied by β, because the
logits are linear in q. So instead of replacing a diffusers attention processor we scale the
*final* queries: the output of the query norm (`norm_q`, `norm_added_q`) when the attention has
one, else of the query projection (`to_q`, `add_q_proj`). Rotary embeddings act on q linearly
(a rotation), so scaling before them is the same as scaling after. Every attention module inside
the block is scaled (self- and cross-attention alike).

Our own attention modules take a `beta=` keyword instead; `LoopedBlockWrapper` passes it when the
block's forward has a `beta` parameter and uses these hooks otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn


def _query_modules(attn: nn.Module) -> list[nn.Module]:
    """The modules whose output is the final query of an attention module, before RoPE."""
    found = []
    for proj, norm in (("to_q", "norm_q"), ("add_q_proj", "norm_added_q")):
        if getattr(attn, proj, None) is None:
            continue
        target = getattr(attn, norm, None)
        found.append(target if target is not None else getattr(attn, proj))
    return found


def attach_logit_scaling(block: nn.Module, get_beta: Callable[[], float]) -> list:
    """Make every attention module in `block` multiply its logits by `get_beta()`.

    `get_beta` is read on each call; at β == 1 the hooks return the output untouched, so the
    block stays bit-for-bit unchanged. Returns the hook handles (call `.remove()` to detach).
    Raises TypeError when the block has no attention module with a `to_q` projection.
    """
    targets = []
    for module in block.modules():
        if hasattr(module, "to_q") and isinstance(module.to_q, nn.Module):
            targets.extend(_query_modules(module))
    if not targets:
        raise TypeError(
            f"sharpening: {type(block).__name__} has no attention module with a `to_q` "
            "projection and its forward takes no `beta` argument; cannot scale its logits"
        )

    def hook(module, args, output):
        beta = get_beta()
        return None if beta == 1.0 else output * beta

    return [t.register_forward_hook(hook) for t in targets]
