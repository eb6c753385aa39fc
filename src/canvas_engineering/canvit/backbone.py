"""The glimpse backbone: a DINOv3-style ViT whose self-attention uses scene-relative RoPE.

Shape glossary: B batch, N tokens (prefix + g² patches), D width, h heads, d = D / h.
Blocks are pre-LN with LayerScale; the key slice of the fused qkv bias is masked to zero at
forward (DINOv3 has no key bias), so the parameters stay those of one fused Linear.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from canvas_engineering.canvit.rope import RopeTable, apply_rope
from canvas_engineering.errors import CanvasError, bad, check_int


@dataclass(frozen=True)
class ViTSpec:
    """Backbone size: width, heads, blocks, patch side, MLP ratio, RoPE base, LayerScale init."""

    embed_dim: int
    num_heads: int
    num_blocks: int
    patch_size: int = 16
    ffn_ratio: float = 4.0
    rope_base: float = 100.0
    layerscale_init: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("embed_dim", "num_heads", "num_blocks", "patch_size"):
            check_int(name, getattr(self, name), 1)
        if self.embed_dim % self.num_heads or self.head_dim % 4:
            raise bad("embed_dim", self.embed_dim,
                      f"a multiple of num_heads={self.num_heads} with a head size divisible by 4")

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def mlp_dim(self) -> int:
        return int(self.embed_dim * self.ffn_ratio)


BACKBONES: dict[str, ViTSpec] = {
    "vits16": ViTSpec(384, 6, 12),
    "vitb16": ViTSpec(768, 12, 12),
    "tiny": ViTSpec(128, 4, 4, patch_size=8),  # a CPU-sized backbone for offline pretraining
}


def get_backbone(name: str) -> ViTSpec:
    if name not in BACKBONES:
        raise CanvasError(f"backbone_name: got {name!r}, expected one of {sorted(BACKBONES)}")
    return BACKBONES[name]


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, (H/p)(W/p), D), patches row-major."""
        return self.proj(x).flatten(2).transpose(1, 2)


class LayerScale(nn.Module):
    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        keep = torch.ones(3 * dim)
        keep[dim:2 * dim] = 0  # no key bias
        self.register_buffer("_bias_mask", keep, persistent=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, rope: RopeTable) -> torch.Tensor:
        b, n, dim = x.shape
        qkv = F.linear(x, self.qkv.weight, self.qkv.bias * self._bias_mask)  # (B, N, 3D)
        q, k, v = qkv.view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)  # 3 × (B, h, N, d)
        out = F.scaled_dot_product_attention(apply_rope(q, rope), apply_rope(k, rope), v)
        return self.proj(out.transpose(1, 2).reshape(b, n, dim))


class Block(nn.Module):
    def __init__(self, spec: ViTSpec) -> None:
        super().__init__()
        d = spec.embed_dim
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = SelfAttention(d, spec.num_heads)
        self.mlp = Mlp(d, spec.mlp_dim)
        self.ls1 = LayerScale(d, spec.layerscale_init)
        self.ls2 = LayerScale(d, spec.layerscale_init)

    def forward(self, x: torch.Tensor, rope: RopeTable) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), rope))
        return x + self.ls2(self.mlp(self.norm2(x)))


class Backbone(nn.Module):
    """Patch embedding and blocks; the CanViT runs the blocks itself, between canvas ops."""

    def __init__(self, spec: ViTSpec) -> None:
        super().__init__()
        self.spec = spec
        self.patch_embed = PatchEmbed(spec.patch_size, spec.embed_dim)
        self.blocks = nn.ModuleList(Block(spec) for _ in range(spec.num_blocks))
        self.init_weights()

    def init_weights(self) -> None:
        """Linear weights trunc-normal(0.02) with zero biases, LayerScale at its init; the patch
        Conv2d keeps PyTorch's default (uniform ±1/√fan_in for weight and bias)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, LayerScale):
                nn.init.constant_(m.gamma, self.spec.layerscale_init)
