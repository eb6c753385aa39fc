"""Viewpoints and glimpses: where the model looks, and what it sees there.

The scene is the square [-1, 1]² in (row, col) order, like tensor indexing: (-1, -1) is the
top-left corner. A viewpoint is a square crop given by its centre and its scale, the crop's
half side in scene units, so scale 1 is the whole scene and scale s covers s² of its area.

Shape glossary: B batch, C channels, H W scene pixels, n glimpse side (pixels or patches).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from canvas_engineering.errors import CanvasError, bad, check_int


def grid_coords(n: int, device=None) -> torch.Tensor:
    """(n, n, 2) float32 cell centres of an n×n grid over [-1, 1]², last axis (row, col)."""
    centres = (torch.arange(n, device=device, dtype=torch.float32) + 0.5) / n * 2 - 1
    return torch.stack(torch.meshgrid(centres, centres, indexing="ij"), dim=-1)


@dataclass(frozen=True)
class Viewpoint:
    """centers (B, 2) float32 (row, col); scales (B,) float32 half sides. No bounds are enforced
    here (out-of-scene samples read zero); `validate_viewpoint` checks them when wanted."""

    centers: torch.Tensor
    scales: torch.Tensor

    def __post_init__(self) -> None:
        c, s = self.centers, self.scales
        if not isinstance(c, torch.Tensor) or c.dtype != torch.float32 or c.dim() != 2 \
                or c.shape[-1] != 2:
            raise bad("centers", _desc(c), "a float32 tensor of shape (B, 2)")
        if not isinstance(s, torch.Tensor) or s.dtype != torch.float32 or s.shape != c.shape[:1]:
            raise bad("scales", _desc(s), f"a float32 tensor of shape ({c.shape[0]},)")

    @property
    def batch_size(self) -> int:
        return self.centers.shape[0]

    @staticmethod
    def full_scene(batch_size: int, device=None) -> Viewpoint:
        """Centre (0, 0), scale 1: the whole scene, for every item."""
        check_int("batch_size", batch_size, 1)
        return Viewpoint(torch.zeros(batch_size, 2, device=device),
                         torch.ones(batch_size, device=device))


def _desc(x) -> object:
    return (tuple(x.shape), str(x.dtype)) if isinstance(x, torch.Tensor) else type(x).__name__


def validate_viewpoint(viewpoint: Viewpoint, min_scale: float = 0.0) -> Viewpoint:
    """Return `viewpoint` if every crop lies inside the scene (|centre| + scale ≤ 1 per axis)
    with scale in [min_scale, 1]; else raise naming the first offending item."""
    tol = 1e-6
    s = viewpoint.scales
    reach = viewpoint.centers.abs().max(dim=1).values + s  # (B,)
    for name, wrong, expected in (
            ("scales", (s < min_scale - tol) | (s > 1 + tol) | ~torch.isfinite(s),
             f"in [{min_scale}, 1]"),
            ("centers", (reach > 1 + tol) | ~torch.isfinite(reach),
             "|centre| + scale <= 1 on both axes (the crop inside the scene)")):
        if wrong.any():
            i = int(wrong.nonzero()[0, 0])
            value = s[i].item() if name == "scales" else viewpoint.centers[i].tolist()
            raise CanvasError(f"viewpoint.{name}[{i}]: got {value!r} (scale {s[i].item():.4g}), "
                              f"expected {expected}")
    return viewpoint


def viewpoint_grid_coords(viewpoint: Viewpoint, n: int) -> torch.Tensor:
    """(B, n, n, 2) scene positions of an n×n grid spanning each viewpoint's crop."""
    b = viewpoint.batch_size
    return viewpoint.centers.view(b, 1, 1, 2) + viewpoint.scales.view(b, 1, 1, 1) \
        * grid_coords(n, viewpoint.centers.device)


def crop_box_px(viewpoint: Viewpoint, size_px: int) -> torch.Tensor:
    """(B, 4) pixel box (top, left, bottom, right) of each crop in a size_px scene."""
    half = viewpoint.scales.unsqueeze(1)
    return (torch.cat([viewpoint.centers - half, viewpoint.centers + half], dim=1) + 1) \
        * (size_px / 2)


def sample_at_viewpoint(scene: torch.Tensor, viewpoint: Viewpoint, glimpse_px: int) -> torch.Tensor:
    """Glimpse (B, C, n, n) of scene (B, C, H, W) at `viewpoint`, n = glimpse_px.

    Bilinear, zero outside the scene, no anti-aliasing (a zoomed-out glimpse point-samples the
    scene, so fine textures vanish from it). Works on any channel count (images or feature
    maps); computed in float32 and returned in the scene's dtype.
    """
    check_int("glimpse_px", glimpse_px, 1)
    if not isinstance(scene, torch.Tensor) or scene.dim() != 4 \
            or scene.shape[0] != viewpoint.batch_size:
        raise bad("scene", _desc(scene), f"a tensor of shape ({viewpoint.batch_size}, C, H, W)")
    xy = viewpoint_grid_coords(viewpoint, glimpse_px).flip(-1)  # grid_sample wants (x, y)
    out = F.grid_sample(scene.float(), xy, mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    return out.to(scene.dtype)
