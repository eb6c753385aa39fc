"""Pictures of a run: loss curves per region, a filmstrip of predicted vs true future frames,
predicted vs true actions of every held-out episode, the held-out error per horizon (from
summary.json), and a rollout animation (GIF) of true vs sampled frames. Needs matplotlib (the
`[train]` extra).

Shape glossary: b episodes, T canvas frames, T_r frames of a region, F future frames, C S S an
image, d an action's size."""

from __future__ import annotations

from pathlib import Path

import torch

from canvas_engineering.data.codecs import VideoCodec
from canvas_engineering.integrations.plotting import pyplot, save_figure
from canvas_engineering.training.run_files import read_metrics


def loss_curves(run_dir: Path) -> Path:
    plt = pyplot()
    rows = read_metrics(run_dir)
    fig, ax = plt.subplots(figsize=(6, 4))
    keys = sorted({k for r in rows for k in r if k.startswith(("loss", "heldout/"))})
    for k in keys:
        style = "o--" if k.startswith("heldout/") else "-"  # held-out: point-prediction mse
        ax.plot([r["step"] for r in rows if k in r], [r[k] for r in rows if k in r], style,
                label=k)
    ax.set(xlabel="step", ylabel="training loss / held-out mse", yscale="log",
           title="training loss and held-out error")
    ax.legend(fontsize=8)
    path = run_dir / "loss.png"
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    return path


def _image(x: torch.Tensor):
    return ((x.clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()  # (C, S, S) → (S, S, C) in [0, 1]


def _video_region(run) -> str | None:
    """The run's first video region (the one its frame pictures show), or None."""
    return next((r for r, codec in run.codecs.items() if isinstance(codec, VideoCodec)), None)


def filmstrip(run_dir: Path, run, examples: dict) -> Path | None:
    region = _video_region(run)
    if region is None:
        return None
    plt = pyplot()
    key = run.config.regions[region]
    truth, pred = examples["clip"][key], examples["pred"][region]  # (b, T, C, S, S), (b, T_r, ...)
    t0 = run.layout.regions[region].bounds[0]
    T = truth.shape[1]
    n = min(3, truth.shape[0])
    fig, axes = plt.subplots(2 * n, T, figsize=(1.4 * T, 2.9 * n), squeeze=False)
    for i in range(n):
        for t in range(T):
            axes[2 * i, t].imshow(_image(truth[i, t]))
            p = pred[i, t - t0] if 0 <= t - t0 < pred.shape[1] else None
            axes[2 * i + 1, t].imshow(_image(p) if p is not None else _image(truth[i, t] * 0))
            axes[2 * i, t].set_title(("context" if t < run.layout.t_current else "future")
                                     + f" t={t}", fontsize=7)
        axes[2 * i, 0].set_ylabel(f"ep {i} true", fontsize=7)
        axes[2 * i + 1, 0].set_ylabel("predicted", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    path = run_dir / "filmstrip.png"
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    return path


def actions(run_dir: Path, run, examples: dict, what: str = "sampled") -> Path | None:
    """Predicted against true future actions of every episode in `examples`, a colour per
    action dimension; `what` names the prediction in the title."""
    if "action" not in run.codecs:
        return None
    plt = pyplot()
    key = run.config.regions["action"]
    t0, t1 = run.layout.regions["action"].bounds[:2]
    fut = slice(max(run.layout.t_current, t0) - t0, t1 - t0)
    truth = examples["clip"][key][:, t0:t1][:, fut]  # (b, F, d)
    pred = examples["pred"]["action"][:, fut]  # (b, F, d)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for dim in range(truth.shape[-1]):
        ax.scatter(truth[..., dim].reshape(-1).numpy(), pred[..., dim].reshape(-1).numpy(),
                   s=6, alpha=0.6, label=f"dim {dim}")
    lo, hi = float(truth.min()), float(truth.max())
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set(xlabel="true action", ylabel=f"predicted action ({what})",
           title=f"future actions, {len(truth)} held-out episodes")
    ax.legend(fontsize=7, markerscale=2)
    path = run_dir / "actions.png"
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    return path


def horizons(run_dir: Path, summary: dict | None) -> Path | None:
    """Held-out mean squared error at each future frame, per region and predictor (model,
    baselines, floor), from a summary's `eval.horizon`."""
    table = (summary or {}).get("eval", {}).get("horizon", {})
    table = {region: rows for region, rows in table.items() if rows}
    if not table:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(table), figsize=(3.6 * len(table), 3.4), squeeze=False)
    for ax, (region, rows) in zip(axes[0], sorted(table.items())):
        for name, errors in rows.items():
            style = {"model": "o-", "floor": "k:"}.get(name, "--")
            ax.plot(range(1, len(errors) + 1), errors, style, label=name, ms=3)
        ax.set(title=region, xlabel="frames ahead", ylabel="held-out mse", yscale="log")
        ax.legend(fontsize=7)
    path = run_dir / "horizon.png"
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    return path


def rollout_frames(run, examples: dict, episode: int = 0, scale: int = 4) -> list | None:
    """Side-by-side frames, true | predicted, of one episode's video region, the context
    frames shown true on both sides: T uint8 arrays (S·scale, 2·S·scale + scale, 3)."""
    region = _video_region(run)
    if region is None:
        return None
    truth = examples["clip"][run.config.regions[region]][episode]  # (T, C, S, S)
    pred = examples["pred"][region][episode]  # (T_r, C, S, S)
    t0 = run.layout.regions[region].bounds[0]
    frames = []
    for t in range(truth.shape[0]):
        right = pred[t - t0] if t >= run.layout.t_current and 0 <= t - t0 < len(pred)             else truth[t]
        gap = torch.ones_like(truth[t][..., :1])  # a white column between the two
        pair = torch.cat([truth[t], gap, right], dim=-1)  # (C, S, 2S + 1)
        img = (_image(pair) * 255).round().astype("uint8")  # (S, 2S + 1, C)
        if img.shape[-1] == 1:
            img = img.repeat(3, axis=-1)
        frames.append(img.repeat(scale, axis=0).repeat(scale, axis=1))
    return frames


def rollout_gif(run_dir: Path, run, examples: dict, ms_per_frame: int = 400) -> Path | None:
    """rollout.gif: the first example episode, true (left) and sampled (right), looping."""
    frames = rollout_frames(run, examples)
    if frames is None:
        return None
    from PIL import Image

    path = run_dir / "rollout.gif"
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=ms_per_frame,
                   loop=0)
    return path


def draw_all(run_dir: Path, run, examples: dict, points: dict | None = None,
             summary: dict | None = None) -> list[Path]:
    """Every picture of a run. `examples`: a few episodes with sampled futures; `points`: all
    held-out episodes with the point prediction (for the action plot; default `examples`);
    `summary`: the run's summary (for the horizon plot)."""
    paths = [loss_curves(run_dir), filmstrip(run_dir, run, examples),
             actions(run_dir, run, points, "point") if points else
             actions(run_dir, run, examples),
             horizons(run_dir, summary), rollout_gif(run_dir, run, examples)]
    return [p for p in paths if p is not None]
