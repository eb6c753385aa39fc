"""PNG plots of a run: loss curves per region, a filmstrip of predicted vs true future frames,
predicted vs true actions. Needs matplotlib (the `[train]` extra)."""

from __future__ import annotations

from pathlib import Path

import torch

from canvas_engineering.data.codecs import VideoCodec
from canvas_engineering.training.run_files import read_metrics


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'canvas-engineering[train]'") from e
    return plt


def loss_curves(run_dir: Path) -> Path:
    plt = _plt()
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
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _image(x: torch.Tensor):
    return ((x.clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()  # (C, S, S) → (S, S, C) in [0, 1]


def filmstrip(run_dir: Path, run, examples: dict) -> Path | None:
    video = [r for r, codec in run.codecs.items() if isinstance(codec, VideoCodec)]
    if not video:
        return None
    plt = _plt()
    region = video[0]
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
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def actions(run_dir: Path, run, examples: dict) -> Path | None:
    if "action" not in run.codecs:
        return None
    plt = _plt()
    key = run.config.regions["action"]
    t0, t1 = run.layout.regions["action"].bounds[:2]
    fut = slice(max(run.layout.t_current, t0) - t0, t1 - t0)
    truth = examples["clip"][key][:, t0:t1][:, fut].reshape(-1)
    pred = examples["pred"]["action"][:, fut].reshape(-1)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(truth.numpy(), pred.numpy(), s=10)
    ax.plot([-1, 1], [-1, 1], "k--", lw=0.8)
    ax.set(xlabel="true action", ylabel="predicted action", title="future actions (held out)")
    path = run_dir / "actions.png"
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def draw_all(run_dir: Path, run, examples: dict) -> list[Path]:
    paths = [loss_curves(run_dir), filmstrip(run_dir, run, examples),
             actions(run_dir, run, examples)]
    return [p for p in paths if p is not None]
