"""PixelHead: pixel order as VideoCodec's, zero at init, a convolution written out in the test,
and a world model that starts as the one without it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers.world_pairs import with_and_without

from canvas_engineering.data.codecs import make_codecs
from canvas_engineering.models.scratch import backbone_config
from canvas_engineering.nn.pixel_head import PixelHead
from canvas_engineering.spec.canvases import robot

SCHEMA = robot()
CODECS = make_codecs(SCHEMA.layout, {"visual": {"kind": "video", "channels": 3, "image_size": 24},
                                     "action": {"kind": "vector", "dim": 2},
                                     "reward": {"kind": "vector", "dim": 1}})
VIDEO = CODECS["visual"]  # 5 frames of a 6 x 6 grid of 4 x 4 patches, 3 channels


def head(hidden: int = 4) -> PixelHead:
    return PixelHead(8, VIDEO.channels, VIDEO.frames, VIDEO.spatial, VIDEO.patch, hidden)


def test_images_are_the_codecs_frames():
    frames = torch.randn(2, *VIDEO.data_shape)  # (B, T_r, C, S, S)
    h = head()
    positions = VIDEO.encode(frames)  # unfit codec: a pure rearrangement
    assert torch.equal(h.images(positions), frames)
    assert torch.equal(h.patches(frames), positions)


def test_zero_at_init():
    h = head()
    tokens, patches = torch.randn(2, 180, 8), torch.randn(2, 180, 48)
    assert torch.equal(h(tokens, patches), patches)


def test_matches_a_convolution_written_frame_by_frame():
    torch.manual_seed(0)
    h = head(hidden=5)
    torch.nn.init.normal_(h.out.weight)
    tokens, patches = torch.randn(2, 180, 8), torch.randn(2, 180, 48)
    got = VIDEO.decode(h(tokens, patches))  # (B, T_r, C, S, S)
    base = VIDEO.decode(patches)
    up = h.up(tokens).reshape(2, 5, 6, 6, 5, 4, 4)  # (B, T, h, w, K, ph, pw)
    for b in range(2):
        for t in range(5):
            # token (i, j)'s K x 4 x 4 features cover pixels [4i, 4i+4) x [4j, 4j+4)
            feat = torch.zeros(5, 24, 24)
            for i in range(6):
                for j in range(6):
                    feat[:, 4 * i:4 * i + 4, 4 * j:4 * j + 4] = up[b, t, i, j]
            z = F.conv2d(F.silu(F.conv2d(feat[None], h.mix.weight, h.mix.bias, padding=1)),
                         h.out.weight, h.out.bias, padding=1)[0]
            torch.testing.assert_close(got[b, t], base[b, t] + z, rtol=1e-4, atol=1e-4)
    # a token's features reach the pixels of its neighbours' patches, not further
    moved = tokens.clone()
    moved[0, 2 * 36 + 3 * 6 + 3] += 1.0  # frame 2, patch (3, 3): pixels [12, 16) x [12, 16)
    diff = (VIDEO.decode(h(moved, patches)) - got).abs()[0]  # (T, C, S, S)
    assert diff[2, :, 10:18, 10:18].sum() > 0
    diff[2, :, 10:18, 10:18] = 0  # two 3x3 convolutions reach 2 pixels around the patch
    assert diff.sum() == 0


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"hidden.*0.*an int >= 1"):
        head(hidden=0)
    with pytest.raises(ValueError, match=r"pixel_head.*-1"):
        backbone_config("debug", pixel_head=-1)


def test_world_model_with_a_pixel_head_starts_as_the_one_without():
    _, refined, x, t, want = with_and_without(SCHEMA, CODECS, pixel_head=8)
    assert set(refined.pixel_heads) == {"visual"}  # video regions only
    got = refined(x, t)
    for r in CODECS:
        torch.testing.assert_close(got[r], want[r])
    # once its output convolution is not zero, the head changes only the video
    torch.nn.init.normal_(refined.pixel_heads["visual"].out.weight)
    got = refined(x, t)
    assert not torch.allclose(got["visual"], want["visual"])
    torch.testing.assert_close(got["action"], want["action"])
