"""RegionConv: a depthwise convolution over each region's own (t, h, w) grid.

Shape glossary: B batch, M positions the stream holds, C channels, T_r × h_r × w_r region grid,
k kernel size.

Attention sees where a token is only through its positional embedding, so "the disc one patch to
the left, one frame back" is a relation it must learn from absolute positions. A depthwise
convolution over the region's grid knows its neighbours by construction, the same at every
place (translation equivariance, the prior convolutional video models start from); used inside a
block's MLP, as in SegFormer's Mix-FFN or CvT, it gives every position its local neighbourhood in
space and time for a few thousand parameters. Each region has its own kernel, and positions of
different regions never mix here: that is the topology's job.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from canvas_engineering.errors import bad
from canvas_engineering.spec.layout import CanvasLayout


class RegionConv(nn.Module):
    """x + conv_r(x) on each region's (t, h, w) grid, zero at init (so the identity).

    conv_r is a depthwise k × k convolution over each frame's h × w grid (skipped where the
    region is one position wide) followed by a depthwise convolution of k frames over t: a
    factorised k × k × k kernel ((2+1)-D, as in R(2+1)D), which on CPU costs a sixth of a
    depthwise `Conv3d`. The temporal kernel starts as the identity (centre tap 1) behind a
    zero spatial kernel, so both get gradient once the spatial one moves; a region one position
    wide has only the temporal kernel, which then starts at zero.

    Args:
        layout: the canvas; regions on a 2-D canvas (t, h, w) are convolved.
        positions: (M,) canvas indices the stream holds, increasing (every region's positions
            must be among them).
        channels: C, the width of the stream; kernel: k, odd (axes of size 1 use only the
            kernel's centre).

    forward(x (B, M, C)) → (B, M, C).
    """

    def __init__(self, layout: CanvasLayout, positions: torch.Tensor, channels: int,
                 kernel: int = 3):
        super().__init__()
        if isinstance(kernel, bool) or not isinstance(kernel, int) or kernel < 1 or kernel % 2 == 0:
            raise bad("kernel", kernel, "an odd int >= 1")
        self.kernel = kernel
        rank = torch.full((layout.num_positions,), -1, dtype=torch.long)
        rank[positions] = torch.arange(len(positions))
        self.grids: dict[str, tuple[int, int, int]] = {}
        self.spatial = nn.ModuleDict()  # region -> depthwise Conv2d over (h, w)
        self.temporal = nn.ParameterDict()  # region -> (k, C) taps over t
        for name in layout.region_names:
            shape = layout.region_spec(name).shape  # (T_r, h_r, w_r)
            if len(shape) != 3:
                continue  # only (t, h, w) canvases
            idx = rank[layout.region_index_tensor(name)]  # t-major, then h, then w
            if len(idx) != shape[0] * shape[1] * shape[2]:
                continue  # not a full box (a periodic region): no grid to convolve
            if bool((idx < 0).any()):
                raise bad("positions", len(positions), f"all positions of region {name!r}")
            self.register_buffer(f"_idx_{name}", idx, persistent=False)
            self.grids[name] = tuple(shape)
            taps = torch.zeros(kernel, channels)
            if shape[1] * shape[2] > 1:
                conv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2,
                                 groups=channels)
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
                self.spatial[name] = conv
                taps[kernel // 2] = 1.0  # identity over t behind the zero spatial kernel
            self.temporal[name] = nn.Parameter(taps)

    def _over_time(self, y: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
        """Depthwise convolution over t of y (B, T_r, h_r, w_r, C), zero-padded."""
        k, T = self.kernel, y.shape[1]
        padded = F.pad(y, (0, 0, 0, 0, 0, 0, k // 2, k // 2))  # (B, T_r + k - 1, h, w, C)
        return sum(padded[:, j:j + T] * taps[j] for j in range(k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        B, C = x.shape[0], x.shape[2]
        for name, (T, h, w) in self.grids.items():
            idx = getattr(self, f"_idx_{name}")
            y = x.index_select(1, idx).view(B, T, h, w, C)
            if name in self.spatial:
                frames = y.permute(0, 1, 4, 2, 3).reshape(B * T, C, h, w)
                y = self.spatial[name](frames).view(B, T, C, h, w).permute(0, 1, 3, 4, 2)
            y = self._over_time(y, self.temporal[name])  # (B, T_r, h_r, w_r, C)
            out = out.index_add(1, idx, y.reshape(B, len(idx), C))
        return out
