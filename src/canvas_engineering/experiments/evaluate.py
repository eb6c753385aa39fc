"""Held-out scores with common random numbers: every arm and seed is scored on the same
held-out clips with the same diffusion times and noise.

Shape glossary: n held-out clips, K noise draws per clip, n_r positions of region r.

The score is the library's diffusion objective (`CanvasDiffusion.loss`, region-weighted, the
paper's "total loss") averaged over K draws per clip; draw k of clip i has t and noise seeded by
(EVAL_NOISE_SEED, k, i), whatever the arm. The clips come from one seed stream
(EVAL_DATA_SEED) shared by every run. Values are in the run's standardised units, which depend
on the seed's training data (`TrainConfig.standardize`), so arms are compared seed by seed.
"""

from __future__ import annotations

import torch

from canvas_engineering.experiments.halting import compute_saved, fit_halting
from canvas_engineering.experiments.loop_stats import group_sequences, record_states, sequence_stats
from canvas_engineering.training.batches import build_dataset, collate, draw_noise, to_positions

EVAL_DATA_SEED = 424_242  # held-out clips: one stream for every run and seed
EVAL_NOISE_SEED = 977  # diffusion times and noise of the held-out score
CHUNK = 64  # clips per forward pass


def heldout_positions(run, items: int) -> dict[str, torch.Tensor]:
    """The shared held-out clips as region positions of this run's codecs. region -> (n, n_r, d_r)"""
    config = run.config.replace(seed=EVAL_DATA_SEED, eval_episodes=items)
    clips = build_dataset(config, "eval", run.layout.T)
    clip = collate(clips, torch.arange(len(clips)))
    return to_positions(clip, run.layout, run.codecs, run.config.regions)


@torch.no_grad()
def heldout_loss(run, model, x0: dict, *, draws: int, loops: int | None = None) -> dict:
    """Mean objective over the clips × `draws` noise draws: {"total": float, region: float}."""
    model.eval()
    device = next(model.parameters()).device
    n = next(iter(x0.values())).shape[0]
    kwargs = None if loops is None else {"loops": loops}
    sums: dict[str, float] = {}
    for k in range(draws):
        ids = torch.arange(n)
        t, noise = draw_noise(x0, EVAL_NOISE_SEED, k, ids, run.config.t_power)
        for s in range(0, n, CHUNK):
            part = slice(s, s + CHUNK)
            xs = {r: v[part].to(device) for r, v in x0.items()}
            ns = {r: v[part].to(device) for r, v in noise.items()}
            loss, parts = run.diffusion.loss(model, xs, t[part].to(device), ns,
                                             model_kwargs=kwargs)
            w = len(t[part]) / (n * draws)
            sums["total"] = sums.get("total", 0.0) + float(loss) * w
            for r, v in parts.items():
                sums[r] = sums.get(r, 0.0) + float(v) * w
    return sums


@torch.no_grad()
def loop_statistics(run, model, x0: dict, *, group: int = 1, loops: int | None = None,
                    clips: int = 16, draws: int = 2) -> dict:
    """Exp 12's statistics of the loop states (or of groups of `group` consecutive unique
    blocks) on the first `clips` held-out clips at `draws` shared noise draws."""
    model.eval()
    device = next(model.parameters()).device
    sub = {r: v[:clips] for r, v in x0.items()}
    ids = torch.arange(len(next(iter(sub.values()))))
    sequences = []
    for k in range(draws):
        t, noise = draw_noise(sub, EVAL_NOISE_SEED, k, ids, run.config.t_power)
        xt = run.diffusion.q_sample(sub, t, noise)
        with record_states(model) as states:
            model({r: v.to(device) for r, v in xt.items()}, t.to(device), loops=loops)
        sequences += group_sequences(states, group)
    return sequence_stats(sequences)


def unrolled(run, model, x0: dict, *, draws: int, up_to: int) -> dict:
    """Held-out loss at 1 … up_to loops; loops past the trained count reuse the last loop's
    parameters (`LoopedBlockWrapper.unroll`). {loops: {"total": …}}"""
    for block in model.blocks:
        block.unroll = True
    try:
        return {n: heldout_loss(run, model, x0, draws=draws, loops=n)
                for n in range(1, up_to + 1)}
    finally:
        for block in model.blocks:
            block.unroll = False


def halting_measurement(run, model, x0: dict, *, draws: int, tol: float = 0.02,
                        thresholds=(0.5, 0.8)) -> dict:
    """Fit the halting heads on held-out loop states (first half of the clips) and measure, on
    the other half, the compute saved and the loss with halting against without."""
    n = next(iter(x0.values())).shape[0]
    fit_x = {r: v[: n // 2] for r, v in x0.items()}
    test_x = {r: v[n // 2:] for r, v in x0.items()}
    ids = torch.arange(n // 2)
    t, noise = draw_noise(fit_x, EVAL_NOISE_SEED + 1, 0, ids, run.config.t_power)
    device = next(model.parameters()).device
    xt = {r: v.to(device) for r, v in run.diffusion.q_sample(fit_x, t, noise).items()}
    fit = fit_halting(model, lambda: model(xt, t.to(device)), tol=tol)
    base = heldout_loss(run, model, test_x, draws=draws)["total"]
    out = {"tol": tol, "fit": fit, "loss_without": base, "thresholds": {}}
    for th in thresholds:
        r = compute_saved(model, lambda: heldout_loss(run, model, test_x, draws=draws),
                          threshold=th)
        out["thresholds"][str(th)] = {"saved": r["saved"], "loss": r["output"]["total"]}
    return out
