"""Pictures of a CanViT run: probe scores against glimpse count, and a filmstrip of glimpses
with the canvas after each (its cells' first three principal components as RGB).
matplotlib (the `[train]` extra) comes from `integrations.plotting`."""

from __future__ import annotations

from pathlib import Path

import torch

from canvas_engineering.integrations.plotting import pyplot, save_figure


def probe_plot(report: dict, path) -> Path:
    """Foreground accuracy and mIoU per glimpse, per policy, trained vs untrained."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key in zip(axes, ("fg_accuracy", "miou")):
        for model, style in (("trained", "-"), ("untrained", ":")):
            for policy, curve in report.get(model, {}).items():
                ax.plot([r["t"] + 1 for r in curve], [r[key] for r in curve], style,
                        marker=".", label=f"{model} {policy}")
        ax.set_xlabel("glimpses")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return Path(path)


def _pca_rgb(cells: torch.Tensor, basis: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """(G, G, Dc) -> (G, G, 3) in [0, 1]."""
    x = (cells - mean) @ basis  # (G, G, 3)
    lo, hi = x.flatten(0, 1).min(0).values, x.flatten(0, 1).max(0).values
    return ((x - lo) / (hi - lo + 1e-6)).clamp(0, 1)


@torch.no_grad()
def filmstrip(model, scene: torch.Tensor, viewpoints: list, glimpse_px: int, grid: int,
              path) -> Path:
    """Row 1: the glimpses; row 2: the canvas after each (PCA fitted on the last canvas)."""
    from canvas_engineering.canvit.viewpoint import sample_at_viewpoint

    plt = pyplot()
    model.eval()
    state, glimpses, canvases = model.init_state(1, grid), [], []
    for vp in viewpoints:
        g = sample_at_viewpoint(scene[None], vp, glimpse_px)
        state = model(glimpse=g, state=state, viewpoint=vp).state
        glimpses.append(g[0])
        canvases.append(model.canvas_patch_grid(state.canvas)[0])
    last = canvases[-1].flatten(0, 1)
    mean = last.mean(0)
    basis = torch.linalg.svd(last - mean, full_matrices=False).Vh[:3].T  # (Dc, 3)
    n = len(viewpoints)
    fig, axes = plt.subplots(2, n + 1, figsize=(1.6 * (n + 1), 3.4))
    show = (scene - scene.min()) / (scene.max() - scene.min())
    axes[0, 0].imshow(show.permute(1, 2, 0).numpy())
    axes[0, 0].set_title("scene", fontsize=7)
    for t in range(n):
        g = glimpses[t]
        axes[0, t + 1].imshow(((g - scene.min()) / (scene.max() - scene.min())).clamp(0, 1)
                              .permute(1, 2, 0).numpy())
        axes[0, t + 1].set_title(f"t={t} s={viewpoints[t].scales[0].item():.2f}", fontsize=7)
        axes[1, t + 1].imshow(_pca_rgb(canvases[t], basis, mean).numpy())
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return Path(path)
