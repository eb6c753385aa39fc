"""spec.patches: the pixel order of a video region, against its formula, and bad input."""

from __future__ import annotations

import pytest
import torch

from canvas_engineering.spec.patches import from_patches, to_patches


def test_pixel_order_is_the_documented_one_and_round_trips():
    # 2 frames of a 2 x 3 grid of 2 x 4 patches, 3 channels
    frames = torch.randn(2, 2, 3, 4, 12)
    x = to_patches(frames, (2, 3), (2, 4))
    assert x.shape == (2, 2 * 2 * 3, 3 * 2 * 4)
    for t in range(2):
        for c in range(3):
            for yy in range(4):
                for xx in range(12):
                    i, j = yy // 2, xx // 4  # patch (i, j) at position (t, i, j)
                    value = c * 8 + (yy % 2) * 4 + xx % 4  # (c, y, x) inside the position
                    assert x[1, t * 6 + i * 3 + j, value] == frames[1, t, c, yy, xx]
    assert torch.equal(from_patches(x, 2, (2, 3), (2, 4)), frames)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"frames: got \(2, 2, 3, 4, 10\).*\(B, T, c, 4, 12\)"):
        to_patches(torch.zeros(2, 2, 3, 4, 10), (2, 3), (2, 4))
    with pytest.raises(ValueError, match=r"frames: got 'list'"):
        to_patches([1, 2], (2, 3), (2, 4))
    with pytest.raises(ValueError, match=r"positions: got \(2, 11, 24\).*\(B, 12, c·8\)"):
        from_patches(torch.zeros(2, 11, 24), 2, (2, 3), (2, 4))
    with pytest.raises(ValueError, match=r"positions: got \(2, 12, 20\)"):
        from_patches(torch.zeros(2, 12, 20), 2, (2, 3), (2, 4))
