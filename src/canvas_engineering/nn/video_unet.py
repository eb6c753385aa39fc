"""VideoUNet: a convolutional path around the transformer for a video region, at pixel and half
resolution, U-Net style.

Shape glossary: B batch, T_r frames of the region, F future frames (after the reference), h × w
its patch grid, ph × pw pixels per patch, C image channels, S_h × S_w = h·ph × w·pw the image,
n_r = T_r·h·w positions, d_r = C·ph·pw values per position (`spec.patches` order), D the
model's width, W the path's channels at full resolution (2W at half).

A 4 × 4 patch embedded by one linear map leaves the transformer to work out, from 6 × 6 tokens,
where an edge moves by a pixel or two, and a linear decoder draws each patch alone. The path
gives the transformer convolutional features instead, where convolutions are cheap and good:

- encoder, on the context frames (up to the reference frame, the last context frame): a 3 × 3
  convolution at full resolution, a stride-2 one to half resolution, two residual 3 × 3
  convolutions there, and a (ph/2 × pw/2)-strided one down to the patch grid, added to the
  frames' tokens;
- decoder, on the future frames: the tokens up to half resolution, joined with the reference
  frame's half-resolution features, a residual convolution, up to full resolution, joined with
  its full-resolution features (skips across time: what the future is drawn from), and a 3 × 3
  convolution to C channels added to the linear decoder's patches.

The decoder can also read K given values (`conditions`; a world model passes the never-noised
values of the vector regions the video region reads, e.g. the context actions) as K constant
channels at both merges. The next frame is the last one with the agent moved by the last
action: without it, that action reaches the pixels only through the tokens, and the moving
pixels, 5% of the image, carried 78% of the frames' error (issue 11).

The encoder's last and decoder's last convolutions start at zero, so a model starts as the one
without the path. Context frames' decoded values and future frames' encoder inputs are left
alone: the future is noise during sampling, and the context is given.

Measured on the push task (issue 11, README "The world model"; two seeds, W = 16): a training
step costs 1.35×; at equal time (900 steps against 1,200) the path closes 59 / 59% of the
frames gap against 45 / 54% without, its frame samples beat the Gaussian around the point
prediction by 55% on CRPS (8 / 25% without), and the actions close 54 / 52% against 57 / 57%:
with the future drawn from the context frame by convolutions, the tokens no longer have to
track what moved, which the actions need (the decoder alone, without the encoder: 31%).
Fitting the linear decoder's own prediction as well (`BackboneConfig.video_unet_aux`, deep
supervision) gives that back: frames 55 / 59%, actions 57 / 56%. With the decoder reading the
context actions (`conditions`, 1.0× the step): frames 71 / 71%, actions 56 / 54%, frame samples
27 / 36% better than the Gaussian — the `cpu` preset's default; with it the main job trains
1,800 steps and closes 76 / 76% of the frames gap.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from canvas_engineering.errors import bad
from canvas_engineering.spec.patches import from_patches, to_patches


class VideoUNet(nn.Module):
    """Convolutional encoder (context frames → token additions) and decoder (future tokens →
    patch corrections) for one video region; zero at init.

    Args:
        width: D, the tokens' width; channels: C; frames: T_r; grid: (h, w); patch: (ph, pw),
        both even; reference: index of the last context frame in the region, 0 <= reference <
        T_r - 1 (the region has context and future); hidden: W, channels at full resolution;
        conditions: K, values the decoder is conditioned on (0: none), e.g. the context
        actions: they join the decoder's merges at half and full resolution as K constant
        channels next to the skip's, so a convolution reads them as it reads the image (and
        at its border, where the zero padding cuts them, with the border's own weights); the
        two merges' cost grows by K input channels (4 on the robot canvas: 1.00–1.01× the
        step).

    encode(x (B, n_r, d_r)) → (token additions (B, n_r, D), skips); decode(tokens (B, n_r, D),
    patches (B, n_r, d_r), skips, conditions (B, K) or None when K = 0) → (B, n_r, d_r), where
    `patches` is the linear decoder's output for the same tokens.
    """

    def __init__(self, width: int, channels: int, frames: int, grid: tuple[int, int],
                 patch: tuple[int, int], reference: int, hidden: int, conditions: int = 0):
        super().__init__()
        for name, v in (("width", width), ("channels", channels), ("frames", frames),
                        ("hidden", hidden), *zip(("grid[0]", "grid[1]"), grid)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise bad(name, v, "an int >= 1")
        if isinstance(conditions, bool) or not isinstance(conditions, int) or conditions < 0:
            raise bad("conditions", conditions, "an int >= 0 (0: none)")
        if any(isinstance(p, bool) or not isinstance(p, int) or p < 2 or p % 2 for p in patch):
            raise bad("patch", tuple(patch), "(ph, pw), even ints >= 2 (the path halves the "
                      "image, then strides by half a patch)")
        if isinstance(reference, bool) or not isinstance(reference, int) \
                or not 0 <= reference < frames - 1:
            raise bad("reference", reference, f"the last context frame, 0 <= reference < "
                      f"{frames - 1}: the region needs context and future frames")
        self.frames, self.grid, self.patch, self.reference = frames, tuple(grid), tuple(patch), \
            reference
        W, half = hidden, (patch[0] // 2, patch[1] // 2)
        self.stem = nn.Conv2d(channels, W, 3, padding=1)
        self.down = nn.Conv2d(W, 2 * W, 3, stride=2, padding=1)
        self.trunk = nn.ModuleList(nn.Conv2d(2 * W, 2 * W, 3, padding=1) for _ in range(2))
        self.to_tokens = nn.Conv2d(2 * W, width, half, stride=half)
        self.from_tokens = nn.ConvTranspose2d(width, 2 * W, half, stride=half)
        self.merge_half = nn.Conv2d(4 * W + conditions, 2 * W, 3, padding=1)
        self.refine = nn.Conv2d(2 * W, 2 * W, 3, padding=1)
        self.up = nn.ConvTranspose2d(2 * W, W, 2, stride=2)
        self.merge_full = nn.Conv2d(2 * W + conditions, W, 3, padding=1)
        self.out = nn.Conv2d(W, channels, 3, padding=1)
        for last in (self.to_tokens, self.out):  # the identity on the model at init
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.conditions = conditions

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        B, ctx = x.shape[0], self.reference + 1
        img = from_patches(x, self.frames, self.grid, self.patch)[:, :ctx]  # (B, ctx, C, S_h, S_w)
        full = F.silu(self.stem(img.flatten(0, 1)))  # (B·ctx, W, S_h, S_w)
        half = F.silu(self.down(full))  # (B·ctx, 2W, S_h/2, S_w/2)
        for conv in self.trunk:
            half = half + F.silu(conv(half))
        tokens = self.to_tokens(half).unflatten(0, (B, ctx))  # (B, ctx, D, h, w)
        add = torch.cat([tokens, tokens.new_zeros(B, self.frames - ctx, *tokens.shape[2:])], 1)
        add = add.permute(0, 1, 3, 4, 2).flatten(1, 3)  # (B, n_r, D), frame-major like the codec
        skips = (full.unflatten(0, (B, ctx))[:, -1], half.unflatten(0, (B, ctx))[:, -1])
        return add, skips  # skips: the reference frame's (B, W, S_h, S_w), (B, 2W, S_h/2, S_w/2)

    def decode(self, tokens: torch.Tensor, patches: torch.Tensor,
               skips: tuple[torch.Tensor, torch.Tensor],
               conditions: torch.Tensor | None = None) -> torch.Tensor:
        B, D = tokens.shape[0], tokens.shape[2]
        n_future = self.frames - self.reference - 1
        given = self._given(conditions, B, n_future)  # (B·F, K, 1, 1)
        grid = tokens.reshape(B, self.frames, *self.grid, D)[:, self.reference + 1:]
        grid = grid.permute(0, 1, 4, 2, 3).flatten(0, 1)  # (B·F, D, h, w)
        full_skip, half_skip = (s.repeat_interleave(n_future, 0) for s in skips)
        half = F.silu(self.from_tokens(grid))  # (B·F, 2W, S_h/2, S_w/2)
        half = F.silu(self.merge_half(torch.cat([half, half_skip, *_fill(given, half)], 1)))
        half = half + F.silu(self.refine(half))
        full = F.silu(self.up(half))  # (B·F, W, S_h, S_w)
        full = F.silu(self.merge_full(torch.cat([full, full_skip, *_fill(given, full)], 1)))
        change = self.out(full).unflatten(0, (B, n_future))  # (B, F, C, S_h, S_w)
        before = change.new_zeros(B, self.reference + 1, *change.shape[2:])
        return patches + to_patches(torch.cat([before, change], 1), self.grid, self.patch)

    def _given(self, conditions: torch.Tensor | None, B: int,
               n_future: int) -> torch.Tensor | None:
        """The conditions of each sample, once per future frame. (B·F, K, 1, 1), or None
        without conditions."""
        if not self.conditions:
            if conditions is not None:
                raise bad("conditions", tuple(getattr(conditions, "shape", ())), "None: the "
                          "path was built with conditions=0")
            return None
        if not isinstance(conditions, torch.Tensor) or tuple(conditions.shape) != \
                (B, self.conditions):
            got = tuple(conditions.shape) if isinstance(conditions, torch.Tensor) else conditions
            raise bad("conditions", got, f"a tensor (B={B}, K={self.conditions})")
        return conditions.repeat_interleave(n_future, 0)[:, :, None, None]


def _fill(given: torch.Tensor | None, like: torch.Tensor) -> list[torch.Tensor]:
    """`given` (N, K, 1, 1) as K constant channels the size of `like` (N, c, H, W); [] for
    None."""
    return [] if given is None else [given.to(like.dtype).expand(-1, -1, *like.shape[2:])]
