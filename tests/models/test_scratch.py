"""CanvasWorldModel: presets, adaLN-Zero identity at init, loop independence, input checks."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from canvas_engineering.data.codecs import make_codecs
from canvas_engineering.models.scratch import (
    BACKBONE_PRESETS,
    BackboneConfig,
    CanvasWorldModel,
    backbone_config,
    count_parameters,
)
from canvas_engineering.spec.canvases import robot

SCHEMA = robot()
LAYOUT, TOPOLOGY = SCHEMA.layout, SCHEMA.topology
SPECS = {"visual": {"kind": "video", "channels": 3, "image_size": 24},
         "action": {"kind": "vector", "dim": 2},
         "reward": {"kind": "vector", "dim": 1}}
CODECS = make_codecs(LAYOUT, SPECS)


def inputs(B: int = 2, seed: int = 0, codecs=CODECS) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {r: torch.randn(B, c.num_positions, c.position_dim, generator=g)
            for r, c in codecs.items()}


def model(preset: str = "debug", **overrides) -> CanvasWorldModel:
    torch.manual_seed(0)
    return CanvasWorldModel(LAYOUT, TOPOLOGY, CODECS, backbone_config(preset, **overrides))


def test_debug_preset_runs_forward_and_backward():
    m = model()
    out = m(inputs(), torch.rand(2))
    assert {r: tuple(v.shape) for r, v in out.items()} == {
        "visual": (2, 180, 48), "action": (2, 5, 2), "reward": (2, 1, 1)}
    sum(v.sum() for v in out.values()).backward()
    assert all(p.grad is not None for p in m.decoders.parameters())


def test_paper_toy_has_about_one_and_a_half_million_parameters():
    # Seed 002 Table 1 / App. Table 4: v1 toy, d_model 128, 3 blocks, ~1.49 M parameters. Our
    # block differs in detail (dispatcher attention, SwiGLU width), so allow ±10 % around 1.49 M.
    n = count_parameters(model("paper-toy"))
    assert 1.34e6 <= n <= 1.64e6, n
    assert BACKBONE_PRESETS["paper-toy"].loops == 3
    assert count_parameters(model("debug")) < 3e5


def test_presets_registry_and_config_round_trip():
    assert list(BACKBONE_PRESETS) == ["debug", "cpu", "paper-toy", "small", "base"]
    with pytest.raises(ValueError, match=r"backbone preset.*'hugee'.*\['debug', 'cpu', 'paper-toy'"):
        backbone_config("hugee")
    for cfg in BACKBONE_PRESETS.values():
        assert BackboneConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert backbone_config("debug", loops=3).loops == 3
    with pytest.raises(ValueError, match="d_model.*multiple of n_heads=3"):
        BackboneConfig(d_model=64, n_heads=3)
    with pytest.raises(ValueError, match="gate"):
        BackboneConfig(gate="tanh")
    with pytest.raises(ValueError, match="keys.*'depth'"):
        BackboneConfig.from_dict({"depth": 3})


def test_every_block_is_the_identity_at_init():
    torch.manual_seed(1)
    m = model(local_kernel=3)  # its initialize_weights() holds every zero-init
    x, c = torch.randn(2, len(m.held), 64), torch.randn(2, 64)
    for wrapped in m.blocks:
        assert torch.equal(wrapped.block(x, c), x)
    for wrapped in m.blocks:
        for loops in (1, 2):
            assert torch.equal(wrapped(x, c, loops=loops), x)
    # The whole stack passes the canvas stream through unchanged: what reaches the final layer
    # is exactly the placed canvas, at the positions the blocks run on.
    seen = {}
    m.final.register_forward_pre_hook(lambda mod, args: seen.update(h=args[0]))
    x_in = inputs()
    m(x_in, torch.rand(2))
    h = m.canvas.create_empty(2)
    for r, enc in m.encoders.items():
        h = m.canvas.place(h, enc(x_in[r]), r)
    assert torch.equal(seen["h"], h[:, m.held])


def test_output_does_not_depend_on_loops_while_gates_are_zero():
    m = model(loops=3)
    with torch.no_grad():  # make every block and decoder do something; keep the loop gates 0
        for name, p in m.named_parameters():
            if "loop_gate" not in name:
                p.add_(0.05 * torch.randn_like(p))
    x, t = inputs(), torch.rand(2)
    outs = [m(x, t, loops=n) for n in (1, 2, 3)]
    assert outs[0]["visual"].abs().sum() > 0
    for o in outs[1:]:
        assert all(torch.equal(o[r], outs[0][r]) for r in o)
    with torch.no_grad():  # once the gates open, loops change the output
        for blk in m.blocks:
            blk.loop_gate.fill_(0.5)
    assert not torch.equal(m(x, t, loops=3)["visual"], outs[0]["visual"])
    assert torch.equal(m(x, t)["visual"], m(x, t, loops=3)["visual"])  # default: config.loops


def test_regions_without_a_codec_stay_empty():
    codecs = {"visual": CODECS["visual"]}
    m = CanvasWorldModel(LAYOUT, TOPOLOGY, codecs, backbone_config("debug"))
    out = m(inputs(codecs=codecs), torch.rand(2))
    assert list(out) == ["visual"]


def test_bad_inputs_give_clear_errors():
    m = model()
    x, t = inputs(), torch.rand(2)
    with pytest.raises(ValueError, match=r"got regions \['action', 'visual'\].*exactly"):
        m({r: x[r] for r in ("visual", "action")}, t)
    with pytest.raises(ValueError, match=r"x\['action'\].*\(2, 5, 2\)"):
        m({**x, "action": torch.zeros(2, 4, 2)}, t)
    with pytest.raises(ValueError, match=r"x\['reward'\]"):
        m({**x, "reward": torch.zeros(3, 1, 1)}, t)
    with pytest.raises(ValueError, match=r"timestep.*\(2,\)"):
        m(x, torch.rand(2, 1))
    with pytest.raises(ValueError, match=r"loops.*\[1, 2\]"):
        m(x, t, loops=3)
    with pytest.raises(ValueError, match="region.*'gripper'.*'visual'"):
        CanvasWorldModel(LAYOUT, TOPOLOGY, {"gripper": CODECS["action"]},
                         backbone_config("debug"))
    with pytest.raises(ValueError, match="RegionCodec of region 'reward'"):
        CanvasWorldModel(LAYOUT, TOPOLOGY, {"reward": CODECS["action"]},
                         backbone_config("debug"))


def test_backbones_registry_selects_the_scratch_model_and_names_the_valid_ones():
    from canvas_engineering.models import BACKBONES, get_backbone

    assert get_backbone("scratch") is CanvasWorldModel
    assert "scratch" in BACKBONES
    with pytest.raises(ValueError, match=r"backbone: got 'dit'.*\['cogvideox', 'scratch'\]"):
        get_backbone("dit")


def test_blocks_skip_positions_in_no_region_and_give_the_whole_canvas_result():
    # The robot canvas: 180 video + 5 action + 1 reward positions; the other 134 are in no
    # region, and no edge reads or writes them.
    m = model(local_kernel=3)
    assert m.held.tolist() == sorted(set().union(*(LAYOUT.region_indices(r)
                                                   for r in LAYOUT.region_names)))
    assert len(m.held) == 186
    torch.manual_seed(0)  # the same model run on every canvas position
    whole = CanvasWorldModel(LAYOUT, TOPOLOGY, CODECS, backbone_config("debug", local_kernel=3),
                             positions=torch.arange(320))
    with torch.no_grad():
        for p in m.parameters():  # make every part (gates, convs, decoders) do something
            p.add_(0.1 * torch.randn_like(p))
    whole.load_state_dict(m.state_dict())
    x, t = inputs(), torch.rand(2)
    got, expected = m(x, t), whole(x, t)
    assert got["visual"].abs().mean() > 0.1
    with pytest.raises(ValueError, match=r"positions.*300 positions.*every position of region"):
        CanvasWorldModel(LAYOUT, TOPOLOGY, CODECS, backbone_config("debug"),
                         positions=torch.arange(300))
    with pytest.raises(ValueError, match=r"positions: got \[0, 1\].*1-D integer tensor"):
        CanvasWorldModel(LAYOUT, TOPOLOGY, CODECS, backbone_config("debug"), positions=[0, 1])
    for r in expected:
        torch.testing.assert_close(got[r], expected[r], atol=1e-5, rtol=1e-5)


def test_region_conv_convolves_each_region_box_on_its_own():
    # Reference: cut each region's box out of the canvas grid (T, H, W) by its bounds and
    # convolve it with a full 3 × 3 × 3 depthwise kernel and zero padding, independently of the
    # module's index tables; on axes where the box is 1 wide only the kernel's centre can touch
    # data, which is all the module keeps there.
    from canvas_engineering.nn.local_mixing import RegionConv

    torch.manual_seed(0)
    C, N = 6, LAYOUT.num_positions
    conv = RegionConv(LAYOUT, torch.arange(N), C, kernel=3)
    x = torch.randn(2, N, C)
    assert torch.equal(conv(x), x)  # zero at init: the identity
    with torch.no_grad():
        for p in conv.parameters():
            p.normal_()
    grid = x.view(2, *LAYOUT.shape, C)  # (B, T, H, W, C)
    expected = grid.clone()
    for name in LAYOUT.region_names:
        t0, t1, h0, h1, w0, w1 = LAYOUT.regions[name].bounds
        box = grid[:, t0:t1, h0:h1, w0:w1].permute(0, 4, 1, 2, 3)  # (B, C, T_r, h_r, w_r)
        k = conv.convs[name]
        full = torch.zeros(C, 1, 3, 3, 3)
        kt, kh, kw = k.weight.shape[2:]
        full[:, :, 1 - kt // 2:2 + kt // 2, 1 - kh // 2:2 + kh // 2, 1 - kw // 2:2 + kw // 2] = \
            k.weight
        y = F.conv3d(box, full, k.bias, padding=1, groups=C)
        expected[:, t0:t1, h0:h1, w0:w1] += y.permute(0, 2, 3, 4, 1)
    assert tuple(conv.convs["visual"].weight.shape[2:]) == (3, 3, 3)
    torch.testing.assert_close(conv(x), expected.view(2, N, C), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="kernel.*odd int"):
        RegionConv(LAYOUT, torch.arange(N), C, kernel=2)
    with pytest.raises(ValueError, match="channels.*int >= 1"):
        RegionConv(LAYOUT, torch.arange(N), 0)
    with pytest.raises(ValueError, match="positions.*strictly increasing"):
        RegionConv(LAYOUT, torch.arange(N).flip(0), C)
    with pytest.raises(ValueError, match="positions.*all positions of region 'visual'"):
        RegionConv(LAYOUT, torch.arange(1, N), C)
    assert torch.equal(RegionConv(LAYOUT, None, C)._idx_visual, conv._idx_visual)
    with pytest.raises(ValueError, match="local_kernel.*odd int"):
        BackboneConfig(local_kernel=4)
