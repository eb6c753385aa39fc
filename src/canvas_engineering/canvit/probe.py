"""Linear probing of canvas cells per timestep: does the canvas know more after more glimpses?

The CanViT stays frozen. Each scene is rolled out under a policy; after every glimpse the canvas
cells (B, G², Dc) are kept. One probe (LayerNorm then Linear to the classes), shared across
timesteps, is fitted on training scenes' cells, then evaluated per timestep on held-out scenes:
accuracy, foreground accuracy (cells whose label is not background) and mean IoU over classes.
The same procedure on an untrained model is the control.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from canvas_engineering.canvit.model import CanViT
from canvas_engineering.canvit.policies import make_policy
from canvas_engineering.canvit.viewpoint import sample_at_viewpoint


@torch.no_grad()
def canvas_rollout(model: CanViT, images: torch.Tensor, policy: str, num_glimpses: int,
                   glimpse_px: int, grid: int, seed: int = 0, batch: int = 50,
                   **policy_options) -> torch.Tensor:
    """Canvas cells after every glimpse: (T, S, G², Dc)."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(images), batch):
        x = images[i:i + batch]
        state = model.init_state(len(x), grid)
        steps = []
        for vp in make_policy(policy, len(x), num_glimpses, g, **policy_options):
            state = model(glimpse=sample_at_viewpoint(x, vp, glimpse_px), state=state,
                          viewpoint=vp).state
            steps.append(model.canvas_patches(state.canvas))
        out.append(torch.stack(steps))
    return torch.cat(out, dim=1)


def fit_probe(features: torch.Tensor, labels: torch.Tensor, classes: int, iters: int = 400,
              lr: float = 1e-2, seed: int = 0) -> nn.Module:
    """features (M, Dc), labels (M,) -> a fitted LayerNorm → Linear probe (Adam, minibatches)."""
    torch.manual_seed(seed)
    probe = nn.Sequential(nn.LayerNorm(features.shape[-1]), nn.Linear(features.shape[-1], classes))
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    for _ in range(iters):
        idx = torch.randint(0, len(features), (4096,), generator=g)
        opt.zero_grad()
        F.cross_entropy(probe(features[idx]), labels[idx]).backward()
        opt.step()
    return probe.eval()


def scores(pred: torch.Tensor, labels: torch.Tensor, classes: int) -> dict[str, float]:
    """accuracy, fg_accuracy (labels != 0) and mIoU (classes present in labels or pred)."""
    fg = labels != 0
    ious = []
    for c in range(classes):
        union = ((pred == c) | (labels == c)).sum().item()
        if union:
            ious.append(((pred == c) & (labels == c)).sum().item() / union)
    return {"accuracy": (pred == labels).float().mean().item(),
            "fg_accuracy": (pred[fg] == labels[fg]).float().mean().item() if fg.any() else 0.0,
            "miou": sum(ious) / len(ious)}


def probe_curve(model: CanViT, train: tuple, test: tuple, policy: str, num_glimpses: int,
                glimpse_px: int, grid: int, classes: int, cells_per_step: int = 64,
                seed: int = 0, probe_iters: int = 400, **policy_options) -> list[dict]:
    """Per-timestep probe scores on `test`, the probe fitted on `train`.

    train / test: (images (S, 3, P, P), cell labels (S, G, G)). Returns one dict per t with
    t, accuracy, fg_accuracy, miou.
    """
    feats = canvas_rollout(model, train[0], policy, num_glimpses, glimpse_px, grid, seed,
                           **policy_options)  # (T, S, G², Dc)
    t, s, n, d = feats.shape
    g = torch.Generator().manual_seed(seed)
    pick = torch.rand(t, s, n, generator=g).argsort(-1)[..., :cells_per_step]  # (T, S, k)
    x = feats.gather(2, pick[..., None].expand(-1, -1, -1, d)).reshape(-1, d)
    y = train[1].flatten(1)[None].expand(t, -1, -1).gather(2, pick).reshape(-1)
    probe = fit_probe(x, y, classes, iters=probe_iters, seed=seed)
    del feats, x
    test_feats = canvas_rollout(model, test[0], policy, num_glimpses, glimpse_px, grid,
                                seed + 1, **policy_options)
    labels = test[1].flatten(1)  # (S, G²)
    with torch.no_grad():
        return [{"t": i, **scores(probe(test_feats[i]).argmax(-1), labels, classes)}
                for i in range(len(test_feats))]


def probe_report(model: CanViT, policies=("coarse_to_fine", "random"), num_glimpses: int = 21,
                 train_scenes: int = 300, test_scenes: int = 300, scene_px: int = 128,
                 glimpse_px: int = 32, grid: int = 16, seed: int = 0,
                 control: bool = True, probe_iters: int = 400) -> dict:
    """Probe curves on fresh texture scenes (never seen in pretraining: seeds 1000+ / 2000+)
    for each policy, for `model` and, with `control`, for an untrained model of its config.
    Returns {"trained": {policy: curve}, "untrained": {...}, "majority": accuracy of
    always-background on the test cells}."""
    from canvas_engineering.canvit.scenes import CLASSES, cell_labels, texture_scenes

    cell = scene_px // grid
    data = []
    for n, s in ((train_scenes, 1000 + seed), (test_scenes, 2000 + seed)):
        images, labels = texture_scenes(n, scene_px, seed=s)
        data.append((images, cell_labels(labels, cell)))
    models = {"trained": model}
    if control:
        torch.manual_seed(seed)
        models["untrained"] = CanViT(model.config)
    report = {"majority": (data[1][1] == 0).float().mean().item()}
    for name, m in models.items():
        report[name] = {p: probe_curve(m, data[0], data[1], p, num_glimpses, glimpse_px, grid,
                                       len(CLASSES), seed=seed, probe_iters=probe_iters)
                          for p in policies}
    return report
