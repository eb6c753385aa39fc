"""Region codecs: exact round trips, patch layout against a per-pixel reference, validation."""

from __future__ import annotations

import pytest
import torch

from canvas_engineering.data.codecs import VectorCodec, VideoCodec, make_codecs, region_frames
from canvas_engineering.spec.canvases import robot
from canvas_engineering.spec.layout import CanvasLayout, RegionSpec

# A small 2-D canvas: video on a 3 × 2 patch grid of frames 1–3, a vector on 1 × 2 positions.
LAYOUT = CanvasLayout(T=4, H=4, W=4, d_model=8, t_current=2, regions={
    "cam": RegionSpec((1, 4, 1, 4, 0, 2)),
    "act": RegionSpec((0, 4, 0, 1, 2, 4)),
})


def test_video_patch_layout_matches_per_pixel_reference():
    C, S = 2, 6  # patches of 2 × 3 pixels on the 3 × 2 grid
    codec = VideoCodec(LAYOUT, "cam", channels=C, image_size=S)
    assert (codec.patch, codec.position_dim, codec.data_shape) == ((2, 3), 12, (3, 2, 6, 6))
    data = torch.randn(2, 3, C, S, S)
    x = codec.encode(data)
    ref = torch.empty(2, codec.num_positions, codec.position_dim)
    ph, pw, h, w = 2, 3, 3, 2
    for t in range(3):
        for c in range(C):
            for y in range(S):
                for xx in range(S):
                    pos = t * h * w + (y // ph) * w + xx // pw
                    off = c * ph * pw + (y % ph) * pw + xx % pw
                    ref[:, pos, off] = data[:, t, c, y, xx]
    assert torch.equal(x, ref)
    assert torch.equal(codec.decode(x), data)


def test_video_positions_follow_region_index_tensor():
    """Position p of the encoding is the canvas cell (t0 + t, h0 + i, w0 + j) of patch (i, j)."""
    codec = VideoCodec(LAYOUT, "cam", channels=1, image_size=6)
    data = torch.arange(3 * 36, dtype=torch.float32).view(1, 3, 1, 6, 6)
    x = codec.encode(data)
    coords = torch.stack(torch.unravel_index(LAYOUT.region_index_tensor("cam"), LAYOUT.shape), -1)
    for p, (t, hh, ww) in enumerate(coords.tolist()):
        i, j = hh - 1, ww - 0
        assert torch.equal(x[0, p], data[0, t - 1, 0, 2 * i:2 * i + 2, 3 * j:3 * j + 3].reshape(-1))


def test_vector_codec_splits_each_frame_over_its_positions():
    codec = VectorCodec(LAYOUT, "act", dim=6)  # 2 positions per frame → 3 values each
    assert (codec.position_dim, codec.num_positions, codec.data_shape) == (3, 8, (4, 6))
    data = torch.randn(3, 4, 6)
    x = codec.encode(data)
    for t in range(4):
        for k in range(6):
            assert x[:, t * 2 + k // 3, k % 3].equal(data[:, t, k])
    assert torch.equal(codec.decode(x), data)


def test_make_codecs_on_the_robot_canvas_round_trips():
    layout = robot().layout
    codecs = make_codecs(layout, {"visual": {"kind": "video", "channels": 3, "image_size": 24},
                                  "action": {"kind": "vector", "dim": 2},
                                  "reward": {"kind": "vector", "dim": 1}})
    assert {r: (c.num_positions, c.position_dim) for r, c in codecs.items()} == {
        "visual": (180, 48), "action": (5, 2), "reward": (1, 1)}
    clip = torch.randn(2, 5, 3, 24, 24)
    visual = region_frames(layout, "visual", clip)
    assert torch.equal(codecs["visual"].decode(codecs["visual"].encode(visual)), clip)
    rewards = torch.randn(2, 5, 1)
    assert torch.equal(region_frames(layout, "reward", rewards), rewards[:, 2:3])


def test_codec_validation_errors():
    with pytest.raises(ValueError, match="image_size.*multiple"):
        VideoCodec(LAYOUT, "cam", image_size=7)
    with pytest.raises(ValueError, match="dim.*multiple of the 2 positions"):
        VectorCodec(LAYOUT, "act", dim=3)
    with pytest.raises(ValueError, match="region.*'cam', 'act'"):
        VectorCodec(LAYOUT, "camera", dim=2)
    line = CanvasLayout(T=2, spatial_shape=(8,), regions={"v": (0, 2, 0, 4)})
    with pytest.raises(ValueError, match="2-D canvas"):
        VideoCodec(line, "v", image_size=8)
    codec = VideoCodec(LAYOUT, "cam", channels=3, image_size=6)
    with pytest.raises(ValueError, match=r"\(B, 3, 3, 6, 6\)"):
        codec.encode(torch.zeros(1, 4, 3, 6, 6))
    with pytest.raises(ValueError, match=r"\(B, 18, 18\)"):
        codec.decode(torch.zeros(1, 18, 17))
    with pytest.raises(ValueError, match="T=4"):
        region_frames(LAYOUT, "cam", torch.zeros(1, 5, 3))
    with pytest.raises(ValueError, match="one of \\['video', 'vector'\\]"):
        make_codecs(LAYOUT, {"act": {"kind": "audio"}})
    with pytest.raises(ValueError, match="'kind' key"):
        make_codecs(LAYOUT, {"act": {"dim": 2}})
    with pytest.raises(ValueError, match="act.*unexpected keyword.*channels"):
        make_codecs(LAYOUT, {"act": {"kind": "vector", "dim": 2, "channels": 3}})


def test_fit_standardises_each_value_and_decode_inverts_it():
    layout = CanvasLayout(T=3, H=4, W=4, d_model=8, regions={
        "cam": (0, 3, 0, 2, 0, 2), "act": (0, 3, 2, 3, 0, 2)})
    g = torch.Generator().manual_seed(0)
    actions = torch.randn(64, 3, 4, generator=g) * torch.tensor([0.1, 2.0, 5.0, 0.5]) + 3.0
    act = VectorCodec(layout, "act", dim=4).fit(actions)
    z = act.encode(actions)  # (64, 6, 2): value k of a frame at position k // 2, offset k % 2
    raw = actions.reshape(64 * 3 * 2, 2)  # per offset: the values it holds
    torch.testing.assert_close(act.shift, raw.mean(0))
    torch.testing.assert_close(act.scale, raw.std(0))
    flat = z.reshape(-1, 2)
    torch.testing.assert_close(flat.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(flat.std(0), torch.ones(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(act.decode(z), actions, atol=1e-5, rtol=1e-5)

    video = torch.rand(8, 3, 3, 4, 4, generator=g) * 0.2 - 0.9  # dark frames
    cam = VideoCodec(layout, "cam", channels=3, image_size=4).fit(video, shared=True)
    torch.testing.assert_close(cam.shift, video.double().mean().float().expand(12))
    torch.testing.assert_close(cam.scale, video.double().std().float().expand(12))
    torch.testing.assert_close(cam.decode(cam.encode(video)), video, atol=1e-6, rtol=1e-6)

    still = torch.zeros(4, 3, 4)  # a value that never varies keeps scale 1
    assert torch.equal(VectorCodec(layout, "act", dim=4).fit(still).scale, torch.ones(2))


def test_fit_refuses_data_of_the_wrong_shape():
    codec = VectorCodec(LAYOUT, "act", dim=4)
    with pytest.raises(ValueError, match="vectors of region 'act': got \\(2, 3, 4\\)"):
        codec.fit(torch.zeros(2, 3, 4))  # the region spans 4 frames


def test_residual_video_codes_the_future_as_change_from_the_last_context_frame():
    # LAYOUT's "cam" covers canvas frames 1–3 with t_current = 2: region frame 0 (canvas 1) is
    # the last context frame, frames 1 and 2 (canvas 2, 3) are the future.
    g = torch.Generator().manual_seed(1)
    video = torch.rand(5, 3, 2, 6, 6, generator=g)
    plain = VideoCodec(LAYOUT, "cam", channels=2, image_size=6)
    codec = VideoCodec(LAYOUT, "cam", channels=2, image_size=6, residual=True)
    changed = video.clone()
    changed[:, 1:] = video[:, 1:] - video[:, :1]  # reference: each future frame minus frame 0
    assert torch.equal(codec.encode(video), plain.encode(changed))
    torch.testing.assert_close(codec.decode(codec.encode(video)), video, atol=1e-6, rtol=0)

    # Zero at the future positions decodes to the last context frame copied.
    x = codec.encode(video)
    x[:, codec.positions_per_frame:] = 0
    copied = codec.decode(x)
    assert torch.equal(copied[:, 1], video[:, 0]) and torch.equal(copied[:, 2], video[:, 0])


def test_residual_video_standardises_context_and_change_apart():
    g = torch.Generator().manual_seed(2)
    video = torch.rand(16, 3, 2, 6, 6, generator=g) * 2 - 1
    codec = VideoCodec(LAYOUT, "cam", channels=2, image_size=6, residual=True).fit(video,
                                                                                  shared=True)
    P = codec.positions_per_frame
    context, change = video[:, :1].double(), (video[:, 1:] - video[:, :1]).double()
    assert codec.shift.shape == codec.scale.shape == (codec.num_positions, codec.position_dim)
    torch.testing.assert_close(codec.shift[:P], context.mean().float().expand(P, 12))
    torch.testing.assert_close(codec.scale[:P], context.std().float().expand(P, 12))
    torch.testing.assert_close(codec.shift[P:], change.mean().float().expand(2 * P, 12))
    torch.testing.assert_close(codec.scale[P:], change.std().float().expand(2 * P, 12))
    torch.testing.assert_close(codec.decode(codec.encode(video)), video, atol=1e-5, rtol=0)


def test_residual_video_needs_context_and_future_frames():
    future_only = CanvasLayout(T=4, H=4, W=4, d_model=8, t_current=1,
                               regions={"cam": (1, 4, 0, 2, 0, 2)})
    with pytest.raises(ValueError, match="residual.*'cam'.*context frame before t_current=1"):
        VideoCodec(future_only, "cam", channels=1, image_size=4, residual=True)
    with pytest.raises(ValueError, match="residual.*expected a bool"):
        VideoCodec(LAYOUT, "cam", channels=1, image_size=6, residual=1)
