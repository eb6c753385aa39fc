"""Held-out evaluation: roll the future out with the sampler and compare with trivial baselines.

Shape glossary: B batch, T clip frames, F future frames of a region (t >= t_current), A action
dim, C S S image.

The model predicts in two ways: "model" is a DDIM sample (`steps` steps) of the future, and
"model_mean" is its one-step estimate of the expected future, E[x0 | context], the right point
prediction for a squared error. Baselines: vectors (actions, reward…) — the training-set mean,
and the region's last context value repeated when the region has context frames; frames — the
last context frame copied.
"""

from __future__ import annotations

import torch

from canvas_engineering.data.codecs import VideoCodec
from canvas_engineering.spec.layout import CanvasLayout
from canvas_engineering.training.batches import collate, to_positions


def _future(layout: CanvasLayout, region: str) -> slice:
    """Frames of a region's data (indexed from the region's first frame) that are future."""
    t0, t1 = layout.regions[region].bounds[:2]
    return slice(max(layout.t_current, t0) - t0, t1 - t0)


@torch.no_grad()
def rollout(model, diffusion, layout, codecs, regions, clip, *, steps, seed, loops=None):
    """Sample the future given the context. Returns region -> predicted data (B, T_r, ...)."""
    x0 = to_positions(clip, layout, codecs, regions)
    g = torch.Generator().manual_seed(seed)
    kwargs = None if loops is None else {"loops": loops}
    pred = diffusion.sample(model, x0, steps=steps, generator=g, model_kwargs=kwargs)
    return {r: codecs[r].decode(pred[r]) for r in codecs}


@torch.no_grad()
def evaluate(model, diffusion, layout, codecs, regions, eval_set, train_set, *, steps: int,
             seed: int, batch_size: int = 32, loops: int | None = None) -> dict:
    """Mean squared errors of the model's future and of each baseline on held-out episodes."""
    n_stats = min(len(train_set), 256)
    stats = collate(train_set, torch.arange(n_stats))
    sums: dict[str, float] = {}
    count = 0
    first = None
    for start in range(0, len(eval_set), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(eval_set)))
        clip = collate(eval_set, idx)
        pred = rollout(model, diffusion, layout, codecs, regions, clip, steps=steps,
                       seed=seed + start, loops=loops)
        mean = rollout(model, diffusion, layout, codecs, regions, clip, steps=1,
                       seed=seed + start, loops=loops)
        if first is None:
            first = {"clip": {k: v[:4] for k, v in clip.items()},
                     "pred": {r: v[:4] for r, v in pred.items()}}
        for region, codec in codecs.items():
            key = regions[region]
            t0, t1 = layout.regions[region].bounds[:2]
            fut = _future(layout, region)
            truth = clip[key][:, t0:t1][:, fut]  # (B, F, ...)
            if truth.shape[1] == 0:
                continue
            errs = {"model": (pred[region][:, fut] - truth).pow(2),
                    "model_mean": (mean[region][:, fut] - truth).pow(2)}
            has_context = t0 < layout.t_current  # the canvas shows it a last value to reuse
            last = clip[key][:, layout.t_current - 1: layout.t_current]
            if isinstance(codec, VideoCodec):
                if has_context:
                    errs["copy_last_frame"] = (last - truth).pow(2)
            else:
                errs["mean"] = (stats[key].mean(dim=(0, 1)) - truth).pow(2)
                if has_context:
                    errs["repeat_last"] = (last - truth).pow(2)
            for name, e in errs.items():
                k = f"{region}/{name}"
                sums[k] = sums.get(k, 0.0) + e.mean(dim=tuple(range(1, e.dim()))).sum().item()
        count += len(idx)
    metrics = {k: v / count for k, v in sums.items()}
    metrics["episodes"] = count
    return {"metrics": metrics, "examples": first}


def summary_rows(metrics: dict) -> list[tuple[str, str, float, str]]:
    """(region, predictor, mse, verdict) rows: the model's better prediction against each
    baseline."""
    rows = []
    for key, value in sorted(metrics.items()):
        if "/" not in key:
            continue
        region, name = key.split("/", 1)
        verdict = ""
        best = min((metrics[k] for k in (f"{region}/model", f"{region}/model_mean")
                    if k in metrics), default=None)
        if not name.startswith("model") and best is not None:
            verdict = "model better" if best < value else "BASELINE BETTER"
        rows.append((region, name, value, verdict))
    return rows
