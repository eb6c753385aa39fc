"""CanViTForPretraining: the CanViT plus what dense distillation fits to a frozen teacher.

Readouts (LayerNorm then Linear, token-wise) decode the canvas cells into the teacher's patch
features (B, G², Dt) and the recurrent CLS into its CLS feature (B, Dt), both in standardised
space; the standardisers' statistics are buffers in the state dict, so a user can map
predictions back. Keys and config are the reference's (base keys under `canvit.`).
"""

from __future__ import annotations

import torch
from torch import nn

from canvas_engineering.canvit.config import CanViTConfig
from canvas_engineering.canvit.model import CanViT, CanViTOutput, RecurrentState
from canvas_engineering.errors import CanvasError, check_int


class LinearReadout(nn.Module):
    """(…, in) -> (…, out): LayerNorm (weight 1/√in) then Linear."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.norm, self.proj = nn.LayerNorm(in_dim), nn.Linear(in_dim, out_dim)
        nn.init.constant_(self.norm.weight, in_dim ** -0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.norm(x))


class PositionAwareStandardizer(nn.Module):
    """z-scores (B, N, D) features per position and channel with fitted mean / var (N, D)."""

    def __init__(self, n_positions: int, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(n_positions, dim))
        self.register_buffer("var", torch.ones(n_positions, dim))
        self.register_buffer("fitted", torch.tensor(False))

    @torch.no_grad()
    def fit(self, samples: torch.Tensor) -> None:
        """Statistics from samples (S, N, D)."""
        if samples.shape[1:] != self.mean.shape:
            raise CanvasError(f"samples: got shape {tuple(samples.shape)}, expected "
                              f"(S, {', '.join(map(str, self.mean.shape))})")
        self.mean.copy_(samples.mean(0))
        self.var.copy_(samples.var(0, unbiased=False))
        self.fitted.fill_(True)

    @property
    def std(self) -> torch.Tensor:
        return (self.var + self.eps).sqrt()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not bool(self.fitted):
            raise CanvasError("standardizer: statistics were never fitted or loaded")
        return (x - self.mean) / self.std

    def destandardize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean


class CanViTForPretraining(nn.Module):
    """teacher_dim Dt: the teacher's feature width; teacher_patch_grid: the side of its patch
    grid, which the canvas grid must equal during pretraining."""

    def __init__(self, *, canvit_config: CanViTConfig | None = None, teacher_dim: int = 768,
                 teacher_patch_grid: int = 32) -> None:
        super().__init__()
        self.canvit = CanViT(canvit_config)
        self.teacher_dim = check_int("teacher_dim", teacher_dim, 1)
        self.teacher_patch_grid = check_int("teacher_patch_grid", teacher_patch_grid, 1)
        self.teacher_patch_readout = LinearReadout(self.canvit.canvas_dim, teacher_dim)
        self.teacher_cls_readout = LinearReadout(self.canvit.backbone_dim, teacher_dim)
        self.teacher_patch_standardizer = PositionAwareStandardizer(teacher_patch_grid ** 2,
                                                                    teacher_dim)
        self.teacher_cls_standardizer = PositionAwareStandardizer(1, teacher_dim)

    @property
    def config(self) -> CanViTConfig:
        return self.canvit.config

    def init_state(self, batch_size: int, canvas_grid_size: int) -> RecurrentState:
        return self.canvit.init_state(batch_size, canvas_grid_size)

    def forward(self, *, glimpse, state, viewpoint) -> CanViTOutput:
        return self.canvit(glimpse=glimpse, state=state, viewpoint=viewpoint)

    def predict_teacher_patches(self, canvas: torch.Tensor) -> torch.Tensor:
        """canvas (B, R + G², Dc) -> (B, G², Dt), standardised."""
        return self.teacher_patch_readout(self.canvit.canvas_patches(canvas))

    def predict_teacher_cls(self, recurrent_cls: torch.Tensor) -> torch.Tensor:
        """(B, 1, D) -> (B, Dt), standardised."""
        return self.teacher_cls_readout(recurrent_cls[:, 0])

    @classmethod
    def from_pretrained(cls, directory, **kwargs) -> CanViTForPretraining:
        from canvas_engineering.canvit.checkpoint import load_pretraining
        return load_pretraining(directory, **kwargs)

    def save_pretrained(self, directory) -> None:
        from canvas_engineering.canvit.checkpoint import save_pretrained
        save_pretrained(self, directory)
