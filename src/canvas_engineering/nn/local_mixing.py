"""RegionConv: a depthwise convolution over each region's own (t, h, w) grid.

Shape glossary: B batch, M positions the stream holds, C channels, T_r × h_r × w_r region grid,
k kernel size.

Attention sees where a token is only through its positional embedding, so "the disc one patch to
the left, one frame back" is a relation it must learn from absolute positions. A depthwise
convolution over the region's grid knows its neighbours by construction, the same at every
place (translation equivariance, the prior convolutional video models start from); mixed into a
block's MLP input (as SegFormer's Mix-FFN mixes into its MLP), it gives every position its local
neighbourhood in space and time for a few thousand parameters. Each region has its own kernel, and positions of
different regions never mix here: that is the topology's job.
"""

from __future__ import annotations

import torch
from torch import nn

from canvas_engineering.errors import bad
from canvas_engineering.nn.dispatcher import position_ranks
from canvas_engineering.spec.layout import CanvasLayout


class RegionConv(nn.Module):
    """x + conv_r(x) on each region's (t, h, w) grid, zero at init (so the identity).

    conv_r is a depthwise k × k × k `Conv3d` with zero padding, one per region. On the robot
    canvas (issue 11, README "The world model") k = 3 costs 1.3–1.6× the training step on 2
    CPU cores and still won at equal time: 41 / 53 / 97% of the frames / actions / reward gaps
    closed in 1,400 steps against 33 / 51 / 95% in 1,770 without. A factorised (2+1)-D kernel
    or one on the MLP's hidden width did no better in 400-step runs.

    Args:
        layout: the canvas; regions on a 2-D canvas (t, h, w) are convolved.
        positions: (M,) canvas indices the stream holds, strictly increasing (every region's
            positions must be among them); None: all N.
        channels: C, the width of the stream; kernel: k, odd (axes of size 1 use only the
            kernel's centre).

    forward(x (B, M, C)) → (B, M, C).
    """

    def __init__(self, layout: CanvasLayout, positions: torch.Tensor | None, channels: int,
                 kernel: int = 3):
        super().__init__()
        if isinstance(kernel, bool) or not isinstance(kernel, int) or kernel < 1 or kernel % 2 == 0:
            raise bad("kernel", kernel, "an odd int >= 1")
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise bad("channels", channels, "an int >= 1")
        if not isinstance(layout, CanvasLayout):
            raise bad("layout", type(layout).__name__, "a CanvasLayout")
        N = layout.num_positions
        rank = position_ranks(torch.arange(N) if positions is None else positions, N)  # (N,)
        self.grids: dict[str, tuple[int, int, int]] = {}
        self.convs = nn.ModuleDict()
        for name in layout.region_names:
            shape = layout.region_spec(name).shape  # (T_r, h_r, w_r)
            if len(shape) != 3:
                continue  # only (t, h, w) canvases
            idx = rank[layout.region_index_tensor(name)]  # t-major, then h, then w
            if len(idx) != shape[0] * shape[1] * shape[2]:
                continue  # not a full box (a periodic region): no grid to convolve
            if bool((idx < 0).any()):
                raise bad("positions", f"{len(positions)} positions",
                          f"all positions of region {name!r}")
            self.register_buffer(f"_idx_{name}", idx, persistent=False)
            self.grids[name] = tuple(shape)
            # axes of size 1 would only ever use the kernel's centre: give them size 1
            size = tuple(kernel if n > 1 else 1 for n in shape)
            conv = nn.Conv3d(channels, channels, size, padding=tuple(k // 2 for k in size),
                             groups=channels)
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
            self.convs[name] = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        B, C = x.shape[0], x.shape[2]
        for name, conv in self.convs.items():
            idx = getattr(self, f"_idx_{name}")
            grid = x.index_select(1, idx).view(B, *self.grids[name], C)  # (B, T_r, h_r, w_r, C)
            # channels-last: the layout the stream already has, and the faster CPU kernel
            y = conv(grid.permute(0, 4, 1, 2, 3))  # (B, C, T_r, h_r, w_r)
            out = out.index_add(1, idx, y.permute(0, 2, 3, 4, 1).reshape(B, len(idx), C))
        return out
