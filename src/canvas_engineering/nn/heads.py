"""Action heads: decode robot actions from a video diffusion transformer's output latents.

Shapes: B batch, F latent frames, C latent channels, H W latent rows/cols, A action dim.

The head averages each frame's latent over H × W and maps the C channels to A actions with an
MLP, one action vector per frame. The paper's head (seed 002 §3.4: Linear(16, 8) → GELU →
Linear(8, 7)) turned out to be the bottleneck of its graft (seed 002 §6), so the default is
wider; `ActionHead.paper()` builds the paper's size.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from canvas_engineering.errors import bad


class ActionHead(nn.Module):
    """MLP from latent channels to actions, per latent frame.

    Args:
        in_channels: C, channels of the latent the head reads.
        action_dim: A, size of one action vector.
        hidden_dims: widths of the hidden layers (GELU between layers).
        channel_dim: axis of C in the latent: 2 for CogVideoX `(B, F, C, H, W)`, 1 for Wan and
            Mochi `(B, C, F, H, W)`.
        norm: LayerNorm the pooled channels first (the paper's head has none).

    Forward: latent of that layout → `(B, F, A)`. Parameters stay float32; the input is cast
    to float32 at the boundary, so the head can read a bf16 backbone's output.
    """

    def __init__(self, in_channels: int, action_dim: int, *, hidden_dims=(256, 256),
                 channel_dim: int = 2, norm: bool = True):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("action_dim", action_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise bad(name, value, "an int >= 1")
        hidden_dims = tuple(hidden_dims)
        if any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden_dims):
            raise bad("hidden_dims", hidden_dims, "a sequence of ints >= 1")
        if channel_dim not in (1, 2):
            raise bad("channel_dim", channel_dim, "1 (B, C, F, H, W) or 2 (B, F, C, H, W)")
        self.in_channels, self.action_dim, self.channel_dim = in_channels, action_dim, channel_dim
        layers: list[nn.Module] = [nn.LayerNorm(in_channels)] if norm else []
        widths = (in_channels, *hidden_dims)
        for a, b in itertools.pairwise(widths):
            layers += [nn.Linear(a, b), nn.GELU()]
        layers.append(nn.Linear(widths[-1], action_dim))
        self.mlp = nn.Sequential(*layers)

    @classmethod
    def paper(cls, in_channels: int = 16, action_dim: int = 7, *, channel_dim: int = 2):
        """The paper's head: Linear(C, 8) → GELU → Linear(8, A), no norm (199 params at 16→7)."""
        return cls(in_channels, action_dim, hidden_dims=(8,), channel_dim=channel_dim, norm=False)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent `(B, F, C, H, W)` or `(B, C, F, H, W)` (see channel_dim) → actions `(B, F, A)`."""
        if latent.ndim != 5 or latent.shape[self.channel_dim] != self.in_channels:
            raise bad("latent", tuple(latent.shape),
                      f"a 5-D tensor with {self.in_channels} channels on dim {self.channel_dim}")
        if self.channel_dim == 1:
            latent = latent.transpose(1, 2)  # (B, F, C, H, W)
        pooled = latent.float().mean(dim=(-2, -1))  # (B, F, C)
        return self.mlp(pooled)  # (B, F, A)
