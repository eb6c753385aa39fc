"""Viewpoints, glimpse sampling, validation and policies."""

import pytest
import torch

from canvas_engineering.canvit import (
    Viewpoint,
    crop_box_px,
    grid_coords,
    make_policy,
    random_viewpoints,
    sample_at_viewpoint,
    validate_viewpoint,
    viewpoint_grid_coords,
)
from canvas_engineering.errors import CanvasError


def vp(c, s):
    return Viewpoint(torch.tensor([c], dtype=torch.float32), torch.tensor([s]))


def test_grid_coords_are_row_col_cell_centres():
    g = grid_coords(2)
    assert torch.equal(g, torch.tensor([[[-0.5, -0.5], [-0.5, 0.5]], [[0.5, -0.5], [0.5, 0.5]]]))


def test_full_scene_glimpse_positions_are_canvas_cells_and_quadrants_align():
    assert torch.equal(viewpoint_grid_coords(Viewpoint.full_scene(1), 4)[0], grid_coords(4))
    quadrant = viewpoint_grid_coords(vp((-0.5, -0.5), 0.5), 2)[0]
    assert torch.equal(quadrant, grid_coords(4)[:2, :2])


def test_sampling_identities_and_zero_padding():
    scene = torch.randn(1, 3, 8, 8)
    assert torch.equal(sample_at_viewpoint(scene, Viewpoint.full_scene(1), 8), scene)
    assert torch.equal(sample_at_viewpoint(scene, vp((-0.5, -0.5), 0.5), 4), scene[..., :4, :4])
    latents = torch.randn(1, 7, 6, 6)  # any channel count
    assert sample_at_viewpoint(latents, Viewpoint.full_scene(1), 3).shape == (1, 7, 3, 3)
    outside = sample_at_viewpoint(torch.ones(1, 1, 8, 8), vp((3.0, 3.0), 0.5), 4)
    assert torch.equal(outside, torch.zeros(1, 1, 4, 4))
    half = sample_at_viewpoint(scene, Viewpoint.full_scene(1), 4)
    assert torch.allclose(half, torch.nn.functional.avg_pool2d(scene, 2), atol=1e-6)


def test_crop_box():
    assert crop_box_px(vp((-0.5, 0.5), 0.5), 8).tolist() == [[0.0, 4.0, 4.0, 8.0]]


def test_viewpoint_checks():
    with pytest.raises(CanvasError, match="centers"):
        Viewpoint(torch.zeros(2, 2, dtype=torch.float64), torch.ones(2))
    with pytest.raises(CanvasError, match="scales"):
        Viewpoint(torch.zeros(2, 2), torch.ones(3))
    validate_viewpoint(vp((0.5, -0.5), 0.5))
    with pytest.raises(CanvasError, match=r"centers\[0\]"):
        validate_viewpoint(vp((0.6, 0.0), 0.5))
    with pytest.raises(CanvasError, match=r"scales\[0\]"):
        validate_viewpoint(vp((0.0, 0.0), 0.01), min_scale=0.05)


def test_random_viewpoints_fit_and_follow_one_minus_s():
    v = random_viewpoints(20000, torch.Generator().manual_seed(0), min_scale=0.05)
    validate_viewpoint(v, min_scale=0.05)
    # CDF of p(s) ∝ 1 − s on [a, 1]: F(s) = 1 − ((1 − s) / (1 − a))²; KS distance
    s, _ = v.scales.sort()
    cdf = 1 - ((1 - s) / 0.95) ** 2
    empirical = torch.arange(1, len(s) + 1) / len(s)
    assert (cdf - empirical).abs().max() < 0.015  # KS 1 % critical value ≈ 1.63/√n = 0.0115
    uniform = (s - 0.05) / 0.95  # a uniform scale would be far off
    assert (uniform - empirical).abs().max() > 0.1


def test_quadtree_policies():
    steps = make_policy("coarse_to_fine", 3, 21, torch.Generator().manual_seed(0))
    assert [round(v.scales[0].item(), 3) for v in steps] == [1.0] + [0.5] * 4 + [0.25] * 16
    level = torch.stack([v.centers for v in steps[1:5]], 1)  # (B, 4, 2)
    for b in range(3):  # each level a permutation of its tiles
        assert sorted(map(tuple, level[b].tolist())) == [(-0.5, -0.5), (-0.5, 0.5), (0.5, -0.5),
                                                         (0.5, 0.5)]
    fine = make_policy("fine_to_coarse", 2, 21, torch.Generator().manual_seed(0))
    assert [round(v.scales[0].item(), 3) for v in fine] == [0.25] * 16 + [0.5] * 4 + [1.0]
    assert all(v.scales.eq(1).all() for v in make_policy("repeated_full_scene", 2, 3))
    first = make_policy("full_then_random", 2, 3, torch.Generator().manual_seed(0))
    assert first[0].scales.eq(1).all() and len(first) == 3
    with pytest.raises(CanvasError, match="policy"):
        make_policy("spiral", 1, 2)
