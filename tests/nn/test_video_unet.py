"""VideoUNet: zero at init, what each half reads and writes (frames, pixels, tokens) by the
reach of its convolutions, the encoder and the conditioned decoder written out layer by layer,
named errors, the given values a world model conditions it on, and a world model that starts as
the one without it."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from helpers.world_pairs import with_and_without

from canvas_engineering.data.codecs import make_codecs
from canvas_engineering.models.scratch import CanvasWorldModel, backbone_config, given_values
from canvas_engineering.nn.video_unet import VideoUNet
from canvas_engineering.spec.canvases import robot
from canvas_engineering.spec.connection import Connection
from canvas_engineering.spec.layout import CanvasLayout, RegionSpec
from canvas_engineering.spec.topology import CanvasTopology

SCHEMA = robot()  # t_current = 2: frames 0, 1 are context, 2..4 the future
CODECS = make_codecs(SCHEMA.layout, {"visual": {"kind": "video", "channels": 3, "image_size": 24},
                                     "action": {"kind": "vector", "dim": 2},
                                     "reward": {"kind": "vector", "dim": 1}})
VIDEO = CODECS["visual"]  # 5 frames of a 6 x 6 grid of 4 x 4 patches, 3 channels


def unet(hidden: int = 4, live: bool = True, conditions: int = 0) -> VideoUNet:
    torch.manual_seed(0)
    u = VideoUNet(8, VIDEO.channels, VIDEO.frames, VIDEO.spatial, VIDEO.patch, VIDEO.reference,
                  hidden, conditions)
    if live:  # the zero-initialised last layers, made to pass something on
        for layer in (u.to_tokens, u.out):
            torch.nn.init.normal_(layer.weight, std=0.3)
    return u


def frames_of(x):  # (B, n_r, d_r) -> (B, T, C, S, S)
    return VIDEO.decode(x)  # unfit codec: a pure rearrangement


def test_the_reference_is_the_last_context_frame():
    assert VIDEO.reference == 1


def test_zero_at_init():
    u = unet(live=False)
    x, tokens, patches = torch.randn(2, 180, 48), torch.randn(2, 180, 8), torch.randn(2, 180, 48)
    add, skips = u.encode(x)
    assert torch.equal(add, torch.zeros(2, 180, 8))
    assert torch.equal(u.decode(tokens, patches, skips), patches)


def test_encoder_written_out_layer_by_layer():
    u = unet(hidden=3)
    g = torch.Generator().manual_seed(1)
    frames = torch.randn(2, 5, 3, 24, 24, generator=g)
    add, _ = u.encode(VIDEO.encode(frames))
    add = add.reshape(2, 5, 6, 6, 8)  # (B, T, h, w, D): the codec's frame-major token order
    for b in range(2):
        for t in range(5):
            if t > 1:  # future frames get nothing
                assert torch.equal(add[b, t], torch.zeros(6, 6, 8))
                continue
            h = F.silu(F.conv2d(frames[b, t][None], u.stem.weight, u.stem.bias, padding=1))
            h = F.silu(F.conv2d(h, u.down.weight, u.down.bias, stride=2, padding=1))
            for conv in u.trunk:
                h = h + F.silu(F.conv2d(h, conv.weight, conv.bias, padding=1))
            want = F.conv2d(h, u.to_tokens.weight, u.to_tokens.bias, stride=2)[0]  # (D, 6, 6)
            torch.testing.assert_close(add[b, t], want.permute(1, 2, 0), rtol=1e-4, atol=1e-4)


def test_encoder_reads_only_context_frames_and_nearby_pixels():
    u = unet()
    x = torch.randn(1, 180, 48)
    add, (full, half) = u.encode(x)
    frames = frames_of(x)
    future = frames.clone()
    future[:, 2:] += torch.randn_like(future[:, 2:])  # noise on the future: nothing changes
    add2, (full2, half2) = u.encode(VIDEO.encode(future))
    assert torch.equal(add2, add) and torch.equal(full2, full) and torch.equal(half2, half)
    corner = frames.clone()
    corner[0, 0, :, 0, 0] += 1.0  # frame 0's top-left pixel
    diff = (u.encode(VIDEO.encode(corner))[0] - add).abs().reshape(5, 6, 6, 8).sum(-1)
    # the stem reaches pixel 1, the stride-2 conv half pixel 1, the two trunk convs half pixel
    # 3, the token conv (2 half pixels a token) tokens 0 and 1; frame 1 is not read
    assert diff[0, 1, 1] > 0
    assert diff[0, 2:].sum() == 0 and diff[0, :, 2:].sum() == 0 and diff[1:].sum() == 0


def test_decoder_writes_only_future_frames_near_the_token():
    u = unet()
    x, tokens, patches = torch.randn(1, 180, 48), torch.randn(1, 180, 8), torch.randn(1, 180, 48)
    _, skips = u.encode(x)
    out = u.decode(tokens, patches, skips)
    assert torch.equal(frames_of(out)[:, :2], frames_of(patches)[:, :2])  # context untouched
    assert not torch.equal(frames_of(out)[:, 2:], frames_of(patches)[:, 2:])
    moved = tokens.clone()
    moved[0, 3 * 36 + 5 * 6 + 5] += 1.0  # frame 3, patch (5, 5): pixels [20, 24) x [20, 24)
    diff = (frames_of(u.decode(moved, patches, skips)) - frames_of(out)).abs()[0].sum(1)
    assert diff[3, 20:, 20:].sum() > 0
    # half resolution: two 3x3 convs reach 2 half px (4 px); full: one 3x3 conv + the output
    # conv 2 px: at most 6 px beyond the patch, so pixels left of 14 never move
    assert diff[3, :14].sum() == 0 and diff[3, :, :14].sum() == 0
    assert diff[[0, 1, 2, 4]].sum() == 0


def test_decoder_draws_from_the_reference_frame():
    u = unet()
    x, tokens, patches = torch.randn(1, 180, 48), torch.randn(1, 180, 8), torch.randn(1, 180, 48)
    out = u.decode(tokens, patches, u.encode(x)[1])
    frames = frames_of(x)
    older = frames.clone()
    older[:, 0] += 1.0  # an earlier context frame: reaches the decoder only through tokens
    assert torch.equal(u.decode(tokens, patches, u.encode(VIDEO.encode(older))[1]), out)
    last = frames.clone()
    last[:, 1] += 1.0  # the reference frame: through the skips
    assert not torch.equal(u.decode(tokens, patches, u.encode(VIDEO.encode(last))[1]), out)


def test_conditioned_decoder_written_out_layer_by_layer():
    u = unet(hidden=3, conditions=5)
    g = torch.Generator().manual_seed(2)
    x, tokens = torch.randn(2, 180, 48, generator=g), torch.randn(2, 180, 8, generator=g)
    patches, cond = torch.randn(2, 180, 48, generator=g), torch.randn(2, 5, generator=g)
    (full_ref, half_ref) = u.encode(x)[1]  # the reference frame's features (B, W | 2W, ...)
    out = frames_of(u.decode(tokens, patches, (full_ref, half_ref), cond))  # (B, T, C, S, S)
    grid = tokens.reshape(2, 5, 6, 6, 8)  # (B, T, h, w, D)
    for b in range(2):
        torch.testing.assert_close(out[b, :2], frames_of(patches)[b, :2])  # context untouched
        for t in range(2, 5):  # every future frame, each sample with its own conditions
            h = F.silu(F.conv_transpose2d(grid[b, t].permute(2, 0, 1)[None],
                                          u.from_tokens.weight, u.from_tokens.bias, stride=2))
            given = cond[b][None, :, None, None].expand(1, 5, 12, 12)  # constant channels
            h = torch.cat([h, half_ref[b][None], given], 1)
            h = F.silu(F.conv2d(h, u.merge_half.weight, u.merge_half.bias, padding=1))
            h = h + F.silu(F.conv2d(h, u.refine.weight, u.refine.bias, padding=1))
            f = F.silu(F.conv_transpose2d(h, u.up.weight, u.up.bias, stride=2))
            f = torch.cat([f, full_ref[b][None], given.repeat(1, 1, 2, 2)], 1)
            f = F.silu(F.conv2d(f, u.merge_full.weight, u.merge_full.bias, padding=1))
            change = F.conv2d(f, u.out.weight, u.out.bias, padding=1)[0]  # (C, S, S)
            torch.testing.assert_close(out[b, t], frames_of(patches)[b, t] + change,
                                       rtol=1e-4, atol=1e-4)


def test_conditions_are_checked():
    with pytest.raises(ValueError, match=r"conditions: got -1.*int >= 0"):
        VideoUNet(8, 3, 5, (6, 6), (4, 4), 1, 4, -1)
    x, tokens, patches = torch.randn(2, 180, 48), torch.randn(2, 180, 8), torch.randn(2, 180, 48)
    u = unet(conditions=4)
    skips = u.encode(x)[1]
    with pytest.raises(ValueError, match=r"conditions: got \(2, 3\).*\(B=2, K=4\)"):
        u.decode(tokens, patches, skips, torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"conditions: got None.*\(B=2, K=4\)"):
        u.decode(tokens, patches, skips)
    plain = unet()
    with pytest.raises(ValueError, match=r"conditions: got \(2, 4\).*conditions=0"):
        plain.decode(tokens, patches, plain.encode(x)[1], torch.randn(2, 4))


def test_given_values_are_the_never_noised_positions_of_the_vector_regions_read():
    # the robot canvas: the video reads the actions (frames 0-4, one position each) and not the
    # reward (the reward reads the video); frames 0 and 1 are context (t_current = 2)
    got = given_values(SCHEMA.layout, SCHEMA.topology, CODECS, "visual")
    assert list(got) == ["action"] and got["action"].tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"camera"):
        given_values(SCHEMA.layout, SCHEMA.topology, CODECS, "camera")
    layout = CanvasLayout(T=4, H=4, W=4, d_model=8, t_current=1, regions={
        "cam": (0, 4, 0, 2, 0, 2), "cam2": (0, 4, 2, 4, 0, 2),
        "goal": RegionSpec((0, 2, 0, 1, 2, 4), is_output=False),  # never noised: all given
        "late": (1, 4, 2, 3, 2, 3),  # starts at t_current: nothing given
        "arm": (0, 4, 3, 4, 2, 4),  # 2 positions a frame; frame 0 given
        "unread": (0, 4, 2, 3, 3, 4)})
    codecs = make_codecs(layout, {
        "cam": {"kind": "video", "channels": 3, "image_size": 8},
        "cam2": {"kind": "video", "channels": 3, "image_size": 8},
        **{r: {"kind": "vector", "dim": 2} for r in ("goal", "late", "arm", "unread")}})
    reads = ("cam", "cam2", "goal", "late", "arm")
    topology = CanvasTopology([Connection("cam", r) for r in reads]
                              + [Connection("unread", "cam")])
    got = given_values(layout, topology, codecs, "cam")
    assert list(got) == ["goal", "arm"]  # layout order; video, empty and unread regions out
    assert got["goal"].tolist() == [0, 1, 2, 3] and got["arm"].tolist() == [0, 1]
    model = CanvasWorldModel(layout, topology, codecs, backbone_config("debug", video_unet=4))
    # a 2-d vector over 2 positions a frame: 1 value a position, so K = 4 + 2
    assert [codecs[r].position_dim for r in ("goal", "arm")] == [1, 1]
    assert model.video_unets["cam"].conditions == 4 + 2
    x = {r: torch.randn(3, c.num_positions, c.position_dim) for r, c in codecs.items()}
    want = torch.cat([x["goal"].flatten(1), x["arm"][:, :2].flatten(1)], 1)
    torch.testing.assert_close(model._given_values(x, "cam"), want)
    off = CanvasWorldModel(layout, topology, codecs,
                           backbone_config("debug", video_unet=4, video_unet_condition=False))
    assert off.video_unets["cam"].conditions == 0 and off._given_values(x, "cam") is None


def test_bad_arguments_are_named():
    args = (8, 3, 5, (6, 6))
    with pytest.raises(ValueError, match=r"patch: got \(3, 4\).*even ints"):
        VideoUNet(*args, (3, 4), 1, 4)
    with pytest.raises(ValueError, match=r"reference: got 4.*context and future"):
        VideoUNet(*args, (4, 4), 4, 4)
    with pytest.raises(ValueError, match=r"hidden: got 0"):
        VideoUNet(*args, (4, 4), 1, 0)
    with pytest.raises(ValueError, match=r"video_unet: got -1"):
        backbone_config("debug", video_unet=-1)


def test_a_region_without_context_is_refused_by_name():
    layout = dataclasses.replace(SCHEMA.layout, t_current=0)  # every frame is future
    codecs = make_codecs(layout, {"visual": {"kind": "video", "channels": 3, "image_size": 24},
                                  "action": {"kind": "vector", "dim": 2},
                                  "reward": {"kind": "vector", "dim": 1}})
    with pytest.raises(ValueError, match=r"video_unet: got 4.*region 'visual'.*reference: got -1"
                       r".*Without the path: video_unet=0, video_unet_aux=0"):
        CanvasWorldModel(layout, SCHEMA.topology, codecs, backbone_config("debug", video_unet=4))


def test_world_model_with_the_path_starts_as_the_one_without():
    _, wrapped, x, t, want = with_and_without(SCHEMA, CODECS, video_unet=4)
    assert set(wrapped.video_unets) == {"visual"}  # video regions only
    got = wrapped(x, t)
    for r in CODECS:
        torch.testing.assert_close(got[r], want[r])
    # a live encoder reaches every region through the blocks; the decoder only the video
    torch.nn.init.normal_(wrapped.video_unets["visual"].out.weight)
    got = wrapped(x, t)
    assert not torch.allclose(got["visual"], want["visual"])
    torch.testing.assert_close(got["action"], want["action"])
    torch.nn.init.normal_(wrapped.video_unets["visual"].to_tokens.weight)
    assert not torch.allclose(wrapped(x, t)["action"], want["action"])


def test_auxiliary_loss_adds_the_weighted_fit_of_the_linear_decoder():
    from canvas_engineering.training.diffusion import CanvasDiffusion

    torch.manual_seed(0)
    model = CanvasWorldModel(SCHEMA.layout, SCHEMA.topology, CODECS,
                             backbone_config("debug", video_unet=4, video_unet_aux=0.5))
    for p in model.parameters():  # every path live, the zero-initialised layers included
        torch.nn.init.normal_(p, std=0.05)
    diffusion = CanvasDiffusion(SCHEMA.layout)
    g = torch.Generator().manual_seed(1)
    x0 = {r: torch.randn(2, c.num_positions, c.position_dim, generator=g)
          for r, c in CODECS.items()}
    noise = {r: torch.randn(v.shape, generator=g) for r, v in x0.items()}
    t = torch.tensor([0.3, 1.0])
    plain, parts = diffusion.loss(model, x0, t, noise)
    total, parts_aux = diffusion.loss(model, x0, t, noise, auxiliary=True)
    for r in parts:  # the per-region losses are the predictions' alone
        torch.testing.assert_close(parts_aux[r], parts[r])
    xt = diffusion.q_sample(x0, t, noise)
    _, aux = model(xt, t, auxiliary=True)
    assert set(aux) == {"visual"} and aux["visual"][1] == 0.5
    # by hand: weighted MSE of the auxiliary prediction, over the loss's own denominator
    w = {r: diffusion.loss_weights(r) for r in x0}
    den = sum(w[r].sum() * 2 for r in x0)
    err = (aux["visual"][0] - diffusion.target(x0["visual"], t, noise["visual"])).pow(2).mean(-1)
    torch.testing.assert_close(total, plain + 0.5 * (err * w["visual"]).sum() / den)
    # the auxiliary prediction is the model's without the path's correction
    unet = model.video_unets["visual"]
    torch.nn.init.zeros_(unet.out.weight)
    torch.nn.init.zeros_(unet.out.bias)
    torch.testing.assert_close(model(xt, t)["visual"], aux["visual"][0])
    off = CanvasWorldModel(SCHEMA.layout, SCHEMA.topology, CODECS,
                           backbone_config("debug", video_unet=4))
    assert off(xt, t, auxiliary=True)[1] == {}


def test_auxiliary_weight_is_validated():
    with pytest.raises(ValueError, match=r"video_unet_aux: got 1.0.*without video_unet"):
        backbone_config("debug", video_unet_aux=1.0)
    with pytest.raises(ValueError, match=r"video_unet_aux: got -1.*finite number >= 0"):
        backbone_config("debug", video_unet=4, video_unet_aux=-1)
