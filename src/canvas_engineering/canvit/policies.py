"""Viewing policies: the sequence of viewpoints a rollout looks through.

Every policy is a function `(batch_size, num_glimpses, generator=None, device=None) ->
list[Viewpoint]` registered by name in `POLICIES`; `make_policy(name, ...)` builds one and lists
the valid names on a typo.

- random: i.i.d. viewpoints with scale density p(s) ∝ 1 − s on [min_scale, 1], the centre
  uniform among the crops that fit (the pretraining sampler).
- full_then_random: the full scene first, then random.
- coarse_to_fine: a quadtree: the full scene, its 4 quadrants, its 16 sixteenths …, each
  level in an independent random order per scene.
- fine_to_coarse: the same levels, finest first.
- repeated_full_scene: the full scene every time (recurrence without new input).
"""

from __future__ import annotations

import torch

from canvas_engineering.canvit.viewpoint import Viewpoint
from canvas_engineering.errors import bad, check_choice, check_int

MIN_SCALE = 0.05  # the pretraining sampler's smallest scale: 0.25 % of the scene's area


def random_viewpoints(batch_size: int, generator=None, device=None,
                      min_scale: float = MIN_SCALE) -> Viewpoint:
    """One random viewpoint per item. The free margin L = 1 − s has density ∝ L on
    [0, 1 − min_scale] (L = √U·(1 − min_scale)), so p(s) ∝ 1 − s; the centre is uniform in
    [−L, L]², so the crop stays inside the scene."""
    if not 0 < min_scale <= 1:
        raise bad("min_scale", min_scale, "a number in (0, 1]")
    u = torch.rand(batch_size, generator=generator).to(device)
    margin = torch.sqrt(u * (1 - min_scale) ** 2)  # (B,)
    centers = (torch.rand(batch_size, 2, generator=generator).to(device) * 2 - 1) \
        * margin.unsqueeze(1)
    return Viewpoint(centers, 1 - margin)


def quadtree_level(level: int) -> torch.Tensor:
    """(4**level, 3) tiles (row, col, scale) of a 2^level × 2^level tiling, row-major."""
    n = 2 ** level
    c = (torch.arange(n, dtype=torch.float32) * 2 + 1) / n - 1
    rows, cols = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([rows.flatten(), cols.flatten(), torch.full((n * n,), 1.0 / n)], dim=1)


def _levels(num_glimpses: int) -> list[int]:
    levels, total = [], 0
    while total < num_glimpses:
        total += 4 ** len(levels)
        levels.append(len(levels))
    return levels


def _tour(levels: list[int], batch_size: int, num_glimpses: int, generator, device) -> list:
    out = []
    for level in levels:
        tiles = quadtree_level(level)
        order = torch.stack([torch.randperm(len(tiles), generator=generator)
                             for _ in range(batch_size)])  # (B, n_tiles)
        for i in range(len(tiles)):
            if len(out) == num_glimpses:
                return out
            chosen = tiles[order[:, i]].to(device)  # (B, 3)
            out.append(Viewpoint(chosen[:, :2].contiguous(), chosen[:, 2].contiguous()))
    return out


def coarse_to_fine(batch_size, num_glimpses, generator=None, device=None):
    return _tour(_levels(num_glimpses), batch_size, num_glimpses, generator, device)


def fine_to_coarse(batch_size, num_glimpses, generator=None, device=None):
    return _tour(_levels(num_glimpses)[::-1], batch_size, num_glimpses, generator, device)


def random_policy(batch_size, num_glimpses, generator=None, device=None, min_scale=MIN_SCALE):
    return [random_viewpoints(batch_size, generator, device, min_scale)
            for _ in range(num_glimpses)]


def full_then_random(batch_size, num_glimpses, generator=None, device=None, min_scale=MIN_SCALE):
    return [Viewpoint.full_scene(batch_size, device),
            *random_policy(batch_size, num_glimpses - 1, generator, device, min_scale)]


def repeated_full_scene(batch_size, num_glimpses, generator=None, device=None):
    return [Viewpoint.full_scene(batch_size, device) for _ in range(num_glimpses)]


POLICIES = {
    "random": random_policy,
    "full_then_random": full_then_random,
    "coarse_to_fine": coarse_to_fine,
    "fine_to_coarse": fine_to_coarse,
    "repeated_full_scene": repeated_full_scene,
}


def make_policy(name: str, batch_size: int, num_glimpses: int, generator=None, device=None,
                **options) -> list[Viewpoint]:
    """The viewpoints (one Viewpoint of batch_size items per glimpse) of policy `name`."""
    check_choice("policy", name, POLICIES)
    check_int("batch_size", batch_size, 1)
    check_int("num_glimpses", num_glimpses, 1)
    return POLICIES[name](batch_size, num_glimpses, generator=generator, device=device, **options)
