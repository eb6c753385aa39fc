"""Per-token halting (seed 002 Exp 4 / Exp 8): a learned signal that lets a token stop looping
once further loops would barely move it, and the compute that saves.

The halting head of a `LoopedBlockWrapper(halting=True)` gives, before loop ℓ ≥ 1, a
probability per token. It is fitted after training, on the frozen model (so the diffusion
training is unchanged): logistic regression from the token's state h^{ℓ−1} to the label
"loop ℓ moves it by less than `tol` relative to its norm" (‖h^ℓ − h^{ℓ−1}‖ < tol · ‖h^{ℓ−1}‖).
With `halt_threshold` set, a token halts at the first loop whose probability reaches it.

Shapes: B batch, N tokens, D width, L loops.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from canvas_engineering.experiments.loop_stats import record_states
from canvas_engineering.nn.looped import LoopedBlockWrapper


def halting_wrappers(model: torch.nn.Module) -> list[LoopedBlockWrapper]:
    found = [m for m in model.modules() if isinstance(m, LoopedBlockWrapper) and m.halting]
    if not found:
        raise ValueError("halting: the model has no LoopedBlockWrapper built with halting=True "
                         "(BackboneConfig.halting)")
    return found


def fit_halting(model: torch.nn.Module, forward: Callable[[], object], *, tol: float = 0.02,
                steps: int = 300, lr: float = 0.05) -> dict:
    """Fit every halting head of `model` on the loop states of `forward()` (a call that runs the
    model on some inputs). Returns {"halt_label_share": share of (token, loop) pairs labelled
    "halt", "accuracy": of the fitted heads on them}."""
    wrappers = halting_wrappers(model)
    for w in wrappers:
        w.halt_threshold = None  # record the full loops
    with torch.no_grad(), record_states(model) as states:
        forward()
    by_wrapper = {id(w): [] for w in wrappers}
    order = [m for m in model.modules() if isinstance(m, LoopedBlockWrapper)]
    for i, seq in enumerate(states):  # calls cycle through the wrappers in module order
        w = order[i % len(order)]
        if id(w) in by_wrapper:
            by_wrapper[id(w)].append(seq)
    labels_all, correct, total = 0.0, 0.0, 0
    for w in wrappers:
        xs, ys, loops = [], [], []
        for seq in by_wrapper[id(w)]:
            for ell in range(1, len(seq) - 1):  # seq[ell] is the state after loop ell - 1
                before, after = seq[ell], seq[ell + 1]  # (B, N, D)
                moved = (after - before).norm(dim=-1) / before.norm(dim=-1).clamp_min(1e-12)
                xs.append(before.reshape(-1, before.shape[-1]))
                ys.append((moved < tol).float().reshape(-1))
                loops.append(torch.full((before.shape[0] * before.shape[1],), ell,
                                        device=before.device))
        if not xs:
            continue
        x, y, ell = torch.cat(xs), torch.cat(ys), torch.cat(loops)
        index = ell.clamp(max=w.max_loops - 1) - 1  # (n,) which head reads each sample
        scale = x.norm(dim=-1).mean().clamp_min(1e-6)  # fit on unit-scale inputs
        opt = torch.optim.Adam([w.loop_halt_w, w.loop_halt_b], lr=lr)
        for _ in range(steps):
            logits = ((x / scale) * w.loop_halt_w[index]).sum(-1) + w.loop_halt_b[index]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            w.loop_halt_w.div_(scale)  # the head reads raw states
            p = torch.sigmoid((x * w.loop_halt_w[index]).sum(-1) + w.loop_halt_b[index])
        correct += float(((p >= 0.5).float() == y).sum())
        labels_all += float(y.sum())
        total += len(y)
    return {"halt_label_share": labels_all / max(total, 1),
            "accuracy": correct / max(total, 1)}


def compute_saved(model: torch.nn.Module, forward: Callable[[], object], *,
                  threshold: float = 0.5) -> dict:
    """Run `forward()` with halting at `threshold`; returns the output and the share of
    token-loop updates skipped, of all (tokens × loops) of the looped blocks."""
    wrappers = halting_wrappers(model)
    counts = {"skipped": 0, "token_loops": 0}

    def tally(module, args, output):
        h = module.last_halting
        if h is not None and h["token_loops"]:
            hidden = output if isinstance(output, torch.Tensor) else output[0]
            counts["skipped"] += h["skipped"]
            counts["token_loops"] += h["token_loops"] + hidden.shape[0] * hidden.shape[1]

    handles = [w.register_forward_hook(tally) for w in wrappers]
    for w in wrappers:
        w.halt_threshold = threshold
    try:
        out = forward()
    finally:
        for w in wrappers:
            w.halt_threshold = None
        for handle in handles:
            handle.remove()
    total = counts["token_loops"]
    return {"output": out, "skipped": counts["skipped"], "token_loops": total,
            "saved": counts["skipped"] / total if total else 0.0}
