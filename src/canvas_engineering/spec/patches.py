"""The pixel order of a video region on the canvas: one convention for every layer that reads it.

Shape glossary: B batch, T frames, h × w the region's patch grid, ph × pw pixels per patch, c
channels, S_h × S_w = h·ph × w·pw the image.

Patch (i, j) of frame t holds pixels [i·ph, (i+1)·ph) × [j·pw, (j+1)·pw) and sits at the
region's position (t, i, j), t-major as `CanvasLayout.region_index_tensor`; inside a position
the values are ordered (c, y, x). `VideoCodec` codes frames this way and `PixelHead` draws its
features back onto pixels this way, so both call these two functions.
"""

from __future__ import annotations

import torch

from canvas_engineering.errors import bad


def _shape(x: object) -> object:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__


def to_patches(frames: torch.Tensor, grid: tuple[int, int],
               patch: tuple[int, int]) -> torch.Tensor:
    """(B, T, c, S_h, S_w) frames → (B, T·h·w, c·ph·pw) positions, any c."""
    (h, w), (ph, pw) = grid, patch
    if not isinstance(frames, torch.Tensor) or frames.dim() != 5 \
            or tuple(frames.shape[3:]) != (h * ph, w * pw):
        raise bad("frames", _shape(frames), f"a tensor (B, T, c, {h * ph}, {w * pw}): a "
                  f"{h} × {w} grid of {ph} × {pw} patches")
    B, T, c = frames.shape[:3]
    x = frames.reshape(B, T, c, h, ph, w, pw).permute(0, 1, 3, 5, 2, 4, 6)  # (B,T,h,w,c,ph,pw)
    return x.reshape(B, T * h * w, c * ph * pw)


def from_patches(x: torch.Tensor, frames: int, grid: tuple[int, int],
                 patch: tuple[int, int]) -> torch.Tensor:
    """(B, T·h·w, c·ph·pw) positions → (B, T, c, S_h, S_w) frames, any c; the inverse of
    `to_patches`."""
    (h, w), (ph, pw) = grid, patch
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[1] != frames * h * w \
            or x.shape[2] % (ph * pw):
        raise bad("positions", _shape(x), f"a tensor (B, {frames * h * w}, c·{ph * pw}): "
                  f"{frames} frames of a {h} × {w} grid of {ph} × {pw} patches")
    B = x.shape[0]
    x = x.reshape(B, frames, h, w, -1, ph, pw).permute(0, 1, 4, 2, 5, 3, 6)  # (B,T,c,h,ph,w,pw)
    return x.reshape(B, frames, x.shape[2], h * ph, w * pw)
