"""Scores of predictions against the truth, per held-out episode, and their summaries.

Shape glossary: n episodes, k samples, ... the values of one episode's future (any shape).
Every per-episode score is a mean over that episode's values, so a summary over episodes can
carry a confidence interval by resampling episodes.
"""

from __future__ import annotations

import math

import torch


def per_episode(x: torch.Tensor) -> torch.Tensor:
    """Mean over everything but the first (episode) axis. (n, ...) -> (n,)"""
    return x.reshape(len(x), -1).mean(dim=1)


def mse(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Squared error per episode. (n, ...), (n, ...) -> (n,)"""
    return per_episode((pred - truth).pow(2))


def psnr(errors: torch.Tensor, value_range: float = 2.0) -> float:
    """Mean over episodes of 10 log10(range² / mse); values in [-1, 1] span 2. An exact
    prediction is capped at 1e-10 squared error (100 dB + 10 log10 range²)."""
    return float((10 * torch.log10(value_range**2 / errors.clamp_min(1e-10))).mean())


def crps_samples(samples: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Continuous ranked probability score of an ensemble, per scalar value, averaged per
    episode: E|X - y| - ½ E|X - X'| with the unbiased (fair) pair term. (k, n, ...), (n, ...)
    -> (n,). Lower is better; for one sample it is the absolute error."""
    k = len(samples)
    skill = (samples - truth).abs().mean(dim=0)  # (n, ...)
    if k == 1:
        return per_episode(skill)
    pairs = sum((samples[i] - samples[i + 1:]).abs().sum(dim=0) for i in range(k - 1))
    return per_episode(skill - pairs / (k * (k - 1)))


def crps_gaussian(mean: torch.Tensor, sigma: float, truth: torch.Tensor) -> torch.Tensor:
    """CRPS of N(mean, sigma²) per scalar value, averaged per episode (closed form).
    (n, ...), float, (n, ...) -> (n,)"""
    z = (truth - mean) / sigma
    cdf = 0.5 * (1 + torch.erf(z / math.sqrt(2)))
    pdf = torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return per_episode(sigma * (z * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi)))


def spread_skill(samples: torch.Tensor, truth: torch.Tensor) -> float:
    """Ensemble spread over the error of the ensemble mean, scaled so a calibrated ensemble of
    any size k scores 1: sqrt((k+1)/k · mean sample variance) / RMSE(mean). Below 1 the samples
    are over-confident, above 1 under-confident. (k, n, ...), (n, ...) -> float"""
    k = len(samples)
    if k < 2:
        return float("nan")
    spread = samples.var(dim=0, unbiased=True).mean()
    skill = (samples.mean(dim=0) - truth).pow(2).mean()
    return float(torch.sqrt((k + 1) / k * spread / skill.clamp_min(1e-20)))


def correlation(pred: torch.Tensor, truth: torch.Tensor) -> float:
    """Pearson correlation over every value. Nan when either side is constant."""
    p, t = pred.reshape(-1).double(), truth.reshape(-1).double()
    p, t = p - p.mean(), t - t.mean()
    denom = (p.pow(2).sum() * t.pow(2).sum()).sqrt()
    return float((p * t).sum() / denom) if denom > 0 else float("nan")


def gap_closed(baseline: torch.Tensor, model: torch.Tensor, floor: torch.Tensor, *,
               resamples: int = 1000, seed: int = 0) -> dict:
    """Share of the gap from a baseline's error to the floor's that the model closes:
    (baseline - model) / (baseline - floor) of the mean errors over episodes, with a 95%
    bootstrap interval over episodes. 1 = as good as the floor, 0 = no better than the
    baseline, < 0 worse. Per-episode errors (n,) each."""
    def share(idx):
        b, m, f = baseline[idx].mean(-1), model[idx].mean(-1), floor[idx].mean(-1)
        return (b - m) / (b - f)

    n = len(baseline)
    g = torch.Generator().manual_seed(seed)
    boot = share(torch.randint(0, n, (resamples, n), generator=g)).sort().values
    lo, hi = boot[int(0.025 * resamples)], boot[int(0.975 * resamples) - 1]
    return {"share": float(share(torch.arange(n))), "ci95": [float(lo), float(hi)]}
