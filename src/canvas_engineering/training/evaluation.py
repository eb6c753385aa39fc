"""Held-out evaluation: the model's predictions of the future against trivial baselines and,
where the task knows it, the floor (the best any predictor can do).

Shape glossary: n held-out episodes (clips), k samples, T clip frames, F future frames of a
region (t >= t_current), C S S image, d a vector's dimension.

Predictors, all of the future of every output region given the context:
- "model": the model's one-step estimate of E[x0 | context], the point prediction that squared
  error rewards; "samples": k DDIM samples (`steps` steps each) from the model's distribution.
- baselines: vectors (actions, reward…) — the training-set mean ("mean") and, when the region
  shows context frames, its last context value repeated ("repeat_last"); frames — the last
  context frame copied ("copy_last_frame").
- "floor": the task's conditional mean of the future given its true state
  (`dataset.future_mean`, the built-in task only).

Scores per region: mean squared error of each predictor (per episode, so intervals can be drawn
over episodes), per future frame, PSNR for frames, per-dimension error and correlation for
vectors; for the samples, CRPS against a Gaussian around the point prediction (σ = its RMSE),
spread over skill, and the error of the mean of the k samples; and the share of the gap from the
best baseline to the floor the model closes, with a 95% bootstrap interval.
"""

from __future__ import annotations

import math

import torch

from canvas_engineering.data.codecs import VideoCodec
from canvas_engineering.spec.layout import CanvasLayout
from canvas_engineering.training import scores
from canvas_engineering.training.batches import collate, to_positions

SAMPLE_SEED_STRIDE = 1_000_003  # sample j of a batch draws from seed + start + j * stride


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
def predict(model, diffusion, layout, codecs, regions, eval_set, train_set, *, steps: int,
            seed: int, samples: int, batch_size: int = 32, loops: int | None = None,
            floor_samples: int = 64) -> dict:
    """Every predictor's future for every held-out episode. region -> {"truth": (n, F, ...),
    "model": (n, F, ...), "samples": (k, n, F, ...), "baselines": {name: (n, F, ...)},
    "floor": (n, F, ...) or absent}; plus "examples" (the first 4 episodes' clip and first
    sample, for pictures)."""
    stats = collate(train_set, torch.arange(min(len(train_set), 256)))
    parts: dict[str, dict[str, list]] = {}
    examples = None
    has_floor = hasattr(eval_set, "future_mean")
    for start in range(0, len(eval_set), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(eval_set)))
        clip = collate(eval_set, idx)
        args = (model, diffusion, layout, codecs, regions, clip)
        point = rollout(*args, steps=1, seed=seed + start, loops=loops)
        drawn = [rollout(*args, steps=steps, seed=seed + start + j * SAMPLE_SEED_STRIDE,
                         loops=loops) for j in range(samples)]
        floor = collate_floor(eval_set, idx, layout.t_current, floor_samples) if has_floor \
            else None
        if examples is None:
            examples = {"clip": {k: v[:4] for k, v in clip.items()},
                        "pred": {r: v[:4] for r, v in drawn[0].items()}}
        for region, codec in codecs.items():
            key, fut = regions[region], _future(layout, region)
            t0, t1 = layout.regions[region].bounds[:2]
            truth = clip[key][:, t0:t1][:, fut]  # (b, F, ...)
            if truth.shape[1] == 0:
                continue
            out = parts.setdefault(region, {})
            out.setdefault("truth", []).append(truth)
            out.setdefault("model", []).append(point[region][:, fut])
            out.setdefault("samples", []).append(torch.stack([d[region][:, fut] for d in drawn]))
            for name, value in _baselines(layout, region, codec, clip[key], stats[key],
                                          truth).items():
                out.setdefault(f"baseline/{name}", []).append(value)
            if floor is not None:
                out.setdefault("floor", []).append(floor[key][:, t0:t1][:, fut])
    result = {}
    for region, out in parts.items():
        joined = {name: torch.cat(v, dim=1 if name == "samples" else 0)
                  for name, v in out.items()}
        result[region] = {
            "truth": joined["truth"], "model": joined["model"], "samples": joined["samples"],
            "baselines": {n.split("/", 1)[1]: v for n, v in joined.items()
                          if n.startswith("baseline/")}}
        if "floor" in joined:
            result[region]["floor"] = joined["floor"]
    return {"regions": result, "examples": examples}


def collate_floor(eval_set, idx: torch.Tensor, t_current: int, samples: int) -> dict:
    """The task's floor for a batch of episodes. key -> (b, T, ...)"""
    means = [eval_set.future_mean(int(i), t_current, samples) for i in idx]
    return {k: torch.stack([m[k] for m in means]) for k in means[0]}


def _baselines(layout, region, codec, data, stats, truth) -> dict[str, torch.Tensor]:
    """Trivial predictions of the region's future. name -> (b, F, ...)"""
    t0 = layout.regions[region].bounds[0]
    last = data[:, layout.t_current - 1: layout.t_current] if t0 < layout.t_current else None
    out = {}
    if isinstance(codec, VideoCodec):
        if last is not None:
            out["copy_last_frame"] = last.expand_as(truth)
    else:
        out["mean"] = stats.mean(dim=(0, 1)).expand_as(truth)
        if last is not None:
            out["repeat_last"] = last.expand_as(truth)
    return out


def score(predictions: dict, *, seed: int = 0) -> dict:
    """Summaries of `predict`'s output (see the module docstring); plain JSON values."""
    metrics: dict = {"episodes": 0, "mse": {}, "horizon": {}, "gap_closed": {}, "samples": {},
                     "psnr": {}, "per_dim": {}, "correlation": {}}
    for region, p in predictions["regions"].items():
        truth, point, drawn = p["truth"], p["model"], p["samples"]
        metrics["episodes"] = len(truth)
        errors = {"model": scores.mse(point, truth)}
        errors.update({f"{name}": scores.mse(v, truth) for name, v in p["baselines"].items()})
        if "floor" in p:
            errors["floor"] = scores.mse(p["floor"], truth)
        metrics["mse"][region] = {n: float(e.mean()) for n, e in errors.items()}
        metrics["horizon"][region] = {
            n: [float(x) for x in (v - truth).pow(2).transpose(0, 1).reshape(truth.shape[1], -1)
                .mean(dim=1)]
            for n, v in [("model", point), *p["baselines"].items(),
                         *([("floor", p["floor"])] if "floor" in p else [])]}
        baselines = {n: errors[n] for n in p["baselines"]}
        if "floor" in p and baselines:
            best = min(baselines, key=lambda n: float(baselines[n].mean()))
            gap = float(baselines[best].mean() - errors["floor"].mean())
            metrics["gap_closed"][region] = {"baseline": best, **(
                scores.gap_closed(baselines[best], errors["model"], errors["floor"], seed=seed)
                if gap > 1e-12 else {"share": None, "ci95": None})}
        sigma = float(point.sub(truth).pow(2).mean().sqrt().clamp_min(1e-6))
        metrics["samples"][region] = {
            "k": len(drawn),
            "crps": float(scores.crps_samples(drawn, truth).mean()),
            "crps_gaussian": float(scores.crps_gaussian(point, sigma, truth).mean()),
            "spread_skill": _json_float(scores.spread_skill(drawn, truth)),
            "mse_mean_of_k": float(scores.mse(drawn.mean(dim=0), truth).mean()),
            "mse_one_sample": float(scores.mse(drawn[0], truth).mean())}
        if truth.dim() == 5:  # frames (n, F, C, S, S)
            metrics["psnr"][region] = {n: scores.psnr(e) for n, e in errors.items()}
        else:  # vectors (n, F, d)
            metrics["per_dim"][region] = [float(x) for x in
                                          (point - truth).pow(2).mean(dim=(0, 1))]
            metrics["correlation"][region] = _json_float(scores.correlation(point, truth))
    return metrics


def _json_float(x: float) -> float | None:
    return x if math.isfinite(x) else None  # strict JSON has no NaN


@torch.no_grad()
def evaluate(model, diffusion, layout, codecs, regions, eval_set, train_set, *, steps: int,
             seed: int, samples: int = 4, batch_size: int = 32,
             loops: int | None = None) -> dict:
    """`predict` then `score`: {"metrics": ..., "examples": ...}."""
    predictions = predict(model, diffusion, layout, codecs, regions, eval_set, train_set,
                          steps=steps, seed=seed, samples=samples, batch_size=batch_size,
                          loops=loops)
    return {"metrics": score(predictions, seed=seed), "examples": predictions["examples"]}


@torch.no_grad()
def heldout_errors(model, diffusion, layout, codecs, regions, clip, *, seed: int) -> dict:
    """Mean squared error of the model's point prediction of the future on a fixed held-out
    batch, per region: the held-out curve logged while training. {"heldout/region": float}"""
    was_training = model.training
    model.eval()
    point = rollout(model, diffusion, layout, codecs, regions, clip, steps=1, seed=seed)
    model.train(was_training)
    out = {}
    for region in codecs:
        t0, t1 = layout.regions[region].bounds[:2]
        fut = _future(layout, region)
        truth = clip[regions[region]][:, t0:t1][:, fut]
        if truth.shape[1]:
            out[f"heldout/{region}"] = float((point[region][:, fut] - truth).pow(2).mean())
    return out


def summary_rows(metrics: dict) -> list[tuple[str, str, float, str]]:
    """(region, predictor, mse, note) rows: each baseline and the floor against the model's
    point prediction; the model's row carries the share of the gap to the floor it closes."""
    rows = []
    for region, errors in metrics["mse"].items():
        model = errors["model"]
        gap = metrics.get("gap_closed", {}).get(region)
        for name, value in errors.items():
            if name == "model":
                note = "" if not gap or gap["share"] is None else (
                    f"closes {gap['share']:.0%} of the gap {gap['baseline']} → floor "
                    f"(95% CI {gap['ci95'][0]:.0%}–{gap['ci95'][1]:.0%})")
            elif name == "floor":
                note = "best possible (the task's conditional mean)"
            else:
                note = "model better" if model < value else "BASELINE BETTER"
            rows.append((region, name, value, note))
    return rows
