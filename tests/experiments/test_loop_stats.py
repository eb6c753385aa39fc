"""Loop-state statistics (Exp 12) on models built to contract or to expand, and the looped
block's hooks and unrolling that they read."""

from __future__ import annotations

import math

import torch
from torch import nn

from canvas_engineering.experiments.loop_stats import (
    group_sequences,
    pair_stats,
    record_states,
    sequence_stats,
)
from canvas_engineering.nn.looped import LoopedBlockWrapper


class Affine(nn.Module):
    """h -> s · Q h + b with Q orthogonal: a contraction for s < 1, an expansion for s > 1."""

    def __init__(self, dim: int, scale: float, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g))
        self.register_buffer("m", scale * q)
        self.register_buffer("b", torch.randn(dim, generator=g))

    def forward(self, x):
        return x @ self.m.T + self.b


def looped(block: nn.Module, dim: int, loops: int) -> LoopedBlockWrapper:
    """A wrapper whose every loop is exactly h <- block(h): gates 1, embeddings 0."""
    w = LoopedBlockWrapper(block, dim=dim, max_loops=loops)
    with torch.no_grad():
        w.loop_gate.fill_(1.0)
        w.loop_emb.zero_()
    return w


def test_pair_stats_by_hand():
    a = torch.tensor([[[1.0, 0.0]]])
    b = torch.tensor([[[1.0, 1.0]]])
    s = pair_stats(a, b)
    assert math.isclose(s["cosine"], 1 / math.sqrt(2), rel_tol=1e-6)
    assert math.isclose(s["velocity"], 1.0, rel_tol=1e-6)  # |b - a| / |a|
    assert math.isclose(s["norm_ratio"], math.sqrt(2), rel_tol=1e-6)


def test_contractive_and_expanding_models_get_opposite_verdicts():
    x = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(1))
    verdicts = {}
    for scale in (0.5, 2.0):
        model = looped(Affine(8, scale), 8, 6)
        with torch.no_grad(), record_states(model) as states:
            model(x)
        assert len(states) == 1 and len(states[0]) == 7  # the input and 6 loop states
        out = sequence_stats(states)
        # successive updates h^{l+1} - h^l = s Q (h^l - h^{l-1}): their norms scale by s exactly
        assert math.isclose(out["contraction"], scale, rel_tol=1e-4)
        verdicts[scale] = out["verdict"]
    assert verdicts == {0.5: "converging", 2.0: "expanding"}
    # contracting to the fixed point: consecutive states align, the relative update decays
    model = looped(Affine(8, 0.5), 8, 6)
    with torch.no_grad(), record_states(model) as states:
        model(x)
    out = sequence_stats(states)
    assert out["cosine"][-1] > out["cosine"][0] and out["velocity"][-1] < out["velocity"][0]


def test_unique_weight_groups_read_like_loops():
    """A chain of 4 single-loop blocks that all compute f, grouped by 4, gives the statistics of
    one block looped 4 times (the unique-weight control is measured the same way)."""
    f = Affine(8, 0.7)
    x = torch.randn(3, 4, 8)
    loop_model = looped(f, 8, 4)
    chain = nn.Sequential(*[LoopedBlockWrapper(f, dim=8, max_loops=1) for _ in range(4)])
    with torch.no_grad(), record_states(loop_model) as a:
        loop_model(x)
    with torch.no_grad(), record_states(chain) as b:
        chain(x)
    grouped = group_sequences(b, 4)
    assert len(grouped) == 1 and len(grouped[0]) == 5
    for s, t in zip(a[0], grouped[0]):
        torch.testing.assert_close(s, t)


def test_unroll_past_the_trained_loop_count_reuses_the_last_loop():
    torch.manual_seed(0)
    w = LoopedBlockWrapper(nn.Linear(6, 6), dim=6, max_loops=3)
    with torch.no_grad():
        w.loop_gate.uniform_(0.2, 0.8)
    x = torch.randn(2, 4, 6)
    seen = []
    w.register_loop_hook(lambda module, loop, h: seen.append(h))
    w.unroll = True
    out5 = w(x, loops=5)
    assert len(seen) == 5
    # by hand: loops 3 and 4 repeat loop 2's embedding and gate
    h = seen[2]
    for _ in range(2):
        h = h + w.loop_gate[1] * (w.block(h + w.loop_emb[2]) - h)
    torch.testing.assert_close(out5, h)
    torch.testing.assert_close(seen[2], w(x, loops=3))  # the first 3 loops are unchanged
