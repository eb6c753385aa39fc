"""Loop-state statistics (seed 002 Exp 12): do consecutive loop states converge to a fixed point?

Shapes: B batch, N tokens, D width, L loops (or blocks per group of a unique-weight model).

For a looped block the sequence is its input h⁰ and its state after each loop h¹ … h^L; for a
unique-weight model (the control the paper lacks) it is the input of a group of `group`
consecutive blocks and the output of each. Between consecutive states, averaged over tokens:

- cosine: cos(h^ℓ, h^{ℓ+1});
- velocity: ‖h^{ℓ+1} − h^ℓ‖ / ‖h^ℓ‖, the relative update (the paper's "update velocity");
- norm ratio: ‖h^{ℓ+1}‖ / ‖h^ℓ‖;
- update: ‖h^{ℓ+1} − h^ℓ‖ (absolute), whose successive ratios estimate the contraction
  coefficient; their geometric mean below 1 means the updates shrink (a fixed point is
  approached), above 1 that they grow.
"""

from __future__ import annotations

import contextlib
import itertools
import math

import torch

from canvas_engineering.nn.looped import LoopedBlockWrapper


@contextlib.contextmanager
def record_states(model: torch.nn.Module):
    """Record every looped block's input and state after each loop while the body runs.

    Yields a list with one list per `LoopedBlockWrapper` (in module order) of detached states
    `(B, N, D)`: [input, after loop 1, …]. Several calls append further sequences.
    """
    wrappers = [m for m in model.modules() if isinstance(m, LoopedBlockWrapper)]
    states: list[list[torch.Tensor]] = []
    current: dict[int, list] = {}

    def before(module, args, kwargs):
        kwargs = {k: v for k, v in kwargs.items() if k != "loops"}  # the wrapper's own
        bound = module._signature.bind(*args, **kwargs)
        seq = [bound.arguments[module.hidden_arg].detach().float()]
        current[id(module)] = seq
        states.append(seq)

    def after(module, loop, h):
        current[id(module)].append(h.detach().float())

    handles = [w.register_forward_pre_hook(before, with_kwargs=True) for w in wrappers]
    handles += [w.register_loop_hook(after) for w in wrappers]
    try:
        yield states
    finally:
        for h in handles:
            h.remove()


def group_sequences(states: list[list[torch.Tensor]], group: int) -> list[list[torch.Tensor]]:
    """Chain single-loop blocks into groups of `group` consecutive blocks: each sequence is the
    group's input and every block's output. With `group == 1` the sequences are unchanged."""
    if group == 1:
        return states
    if any(len(s) != 2 for s in states) or len(states) % group:
        raise ValueError(f"group={group}: expected single-loop blocks in a multiple of {group}, "
                         f"got {len(states)} blocks with {[len(s) - 1 for s in states]} loops")
    return [[states[i][0], *(s[1] for s in states[i:i + group])]
            for i in range(0, len(states), group)]


def pair_stats(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    """Statistics of one step a → b, both (B, N, D), averaged over the B·N tokens."""
    eps = 1e-12
    na, nb, nd = a.norm(dim=-1), b.norm(dim=-1), (b - a).norm(dim=-1)  # (B, N)
    return {"cosine": float(torch.nn.functional.cosine_similarity(a, b, dim=-1).mean()),
            "velocity": float((nd / (na + eps)).mean()),
            "norm_ratio": float((nb / (na + eps)).mean()),
            "update": float(nd.mean())}


def sequence_stats(sequences: list[list[torch.Tensor]]) -> dict:
    """Per-step statistics averaged over sequences of equal length, and the verdict."""
    lengths = {len(s) for s in sequences}
    if len(lengths) != 1 or min(lengths) < 2:
        raise ValueError(f"sequences of {sorted(lengths)} states, expected one length >= 2")
    steps = min(lengths) - 1
    out: dict = {k: [] for k in ("cosine", "velocity", "norm_ratio", "update")}
    for i in range(steps):
        rows = [pair_stats(s[i], s[i + 1]) for s in sequences]
        for k, values in out.items():
            values.append(sum(r[k] for r in rows) / len(rows))
    out["contraction"] = contraction(out["update"])
    out["verdict"] = dynamics_verdict(out)
    return out


def contraction(updates: list[float]) -> float | None:
    """Geometric mean of successive update-norm ratios (None with fewer than 2 updates)."""
    ratios = [b / a for a, b in itertools.pairwise(updates) if a > 0 and b > 0]
    if not ratios:
        return None
    return math.exp(sum(math.log(r) for r in ratios) / len(ratios))


def dynamics_verdict(stats: dict) -> str:
    """"converging" (updates shrink, cosine rises), "expanding" (updates grow), else "neither"."""
    c = stats["contraction"]
    if c is None:
        return "neither"
    if c < 1.0 and stats["cosine"][-1] >= stats["cosine"][0]:
        return "converging"
    if c > 1.0:
        return "expanding"
    return "neither"
