"""Per-token halting: fitted on a block where some tokens are already fixed points (trivially
easy: a loop does not move them) and the others move by a large step every loop (hard)."""

from __future__ import annotations

import torch
from torch import nn

from canvas_engineering.experiments.halting import compute_saved, fit_halting
from canvas_engineering.nn.looped import LoopedBlockWrapper

D, LOOPS = 6, 4


class EasyOrHard(nn.Module):
    """h -> h on tokens whose feature 0 is positive (easy); h + v elsewhere (hard)."""

    def forward(self, x):
        v = torch.zeros(D)
        v[1:] = 3.0  # leaves feature 0 (the easy/hard flag) unchanged
        return x + (x[..., :1] <= 0).float() * v


def tokens(seed: int, n: int = 40):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, n, D, generator=g)
    easy = torch.rand(2, n, generator=g) < 0.5
    x[..., 0] = torch.where(easy, 1.0, -1.0)
    return x, easy


def test_halting_skips_easy_tokens_only():
    w = LoopedBlockWrapper(EasyOrHard(), dim=D, max_loops=LOOPS, halting=True)
    with torch.no_grad():
        w.loop_gate.fill_(1.0)  # every loop is h <- block(h)
        w.loop_emb.zero_()
    x_fit, _ = tokens(0)
    fit = fit_halting(w, lambda: w(x_fit), tol=0.02)
    assert fit["accuracy"] == 1.0

    x, easy = tokens(1)
    full = w(x)
    w.eval()
    result = compute_saved(w, lambda: w(x), threshold=0.5)
    # easy tokens skip loops 1..L-1; hard tokens run all L loops
    n_easy = int(easy.sum())
    assert result["skipped"] == n_easy * (LOOPS - 1)
    assert result["token_loops"] == x.shape[0] * x.shape[1] * LOOPS
    assert 0 < result["saved"] < 1
    # the easy tokens were fixed points, so halting them changes nothing
    torch.testing.assert_close(result["output"], full)
    # without a threshold the head does nothing: the same as a wrapper without halting
    plain = LoopedBlockWrapper(EasyOrHard(), dim=D, max_loops=LOOPS)
    plain.load_state_dict({k: v for k, v in w.state_dict().items() if "halt" not in k})
    assert torch.equal(plain(x), w(x))


def test_all_hard_tokens_save_nothing():
    w = LoopedBlockWrapper(EasyOrHard(), dim=D, max_loops=LOOPS, halting=True)
    with torch.no_grad():
        w.loop_gate.fill_(1.0)
    x_fit, _ = tokens(0)
    fit_halting(w, lambda: w(x_fit), tol=0.02)
    x, _ = tokens(2)
    x[..., 0] = -1.0  # every token hard
    w.eval()
    assert compute_saved(w, lambda: w(x), threshold=0.5)["skipped"] == 0
