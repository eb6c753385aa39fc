"""The CanViT model: shapes, constant state, runtime glimpse/canvas sizes, preset sizes, the
reference's key names, checkpoint round trip and strict loading."""

import json

import pytest
import torch

from canvas_engineering.canvit import (
    CanViT,
    CanViTConfig,
    CanViTForPretraining,
    Viewpoint,
    preset,
)
from canvas_engineering.errors import CanvasError, CheckpointError

SMALL = CanViTConfig(backbone_name="tiny", canvas_num_heads=2, canvas_head_dim=16,
                     num_canvas_registers=3, num_backbone_registers=2, rw_stride=1)


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def on_meta(config, cls=CanViT, **kw):
    with torch.device("meta"):  # sizes and keys without allocating 95 M weights
        return cls(config, **kw) if cls is CanViT else cls(canvit_config=config, **kw)


@pytest.mark.parametrize("name, config, expected", [
    ("vitb16", preset("vitb16"), 95_157_248),
    ("vits16", preset("vits16"), 26_364_416),
    ("vitb16 qkvo", preset("vitb16", canvas_projections="qkvo"), 107_752_448),
    ("tiny", preset("tiny"), 887_488),
])
def test_preset_parameter_counts(name, config, expected):
    assert count(on_meta(config)) == expected


def test_pretraining_model_adds_readouts_only_as_parameters():
    m = on_meta(preset("vitb16"), CanViTForPretraining, teacher_dim=768, teacher_patch_grid=32)
    assert count(m) == 96_538_624
    assert len(m.state_dict()) == 239


def test_state_dict_keys_are_the_reference_names():
    sd = on_meta(preset("vitb16")).state_dict()
    assert len(sd) == 225
    shapes = {
        "backbone.patch_embed.proj.weight": (768, 3, 16, 16),
        "backbone.blocks.11.attn.qkv.weight": (2304, 768),
        "backbone.blocks.0.ls1.gamma": (768,),
        "backbone.blocks.0.mlp.fc1.weight": (3072, 768),
        "canvas_reads.2.ln_q.weight": (768,), "canvas_reads.2.ln_kv.weight": (1024,),
        "canvas_reads.0.q_map.weight": (1024, 768), "canvas_reads.0.o_map.weight": (768, 1024),
        "canvas_writes.2.ln_q.weight": (1024,), "canvas_writes.0.ln_kv.bias": (768,),
        "canvas_writes.1.k_map.weight": (1024, 768), "canvas_writes.1.v_map.bias": (1024,),
        "init_canvas_registers": (1, 16, 1024), "init_canvas_patch": (1, 1, 1024),
        "init_recurrent_cls": (1, 1, 768), "backbone_registers": (1, 5, 768),
        "vpe.frequencies": (384, 3), "vpe.norm.weight": (768,),
    }
    for key, shape in shapes.items():
        assert tuple(sd[key].shape) == shape, key
    assert not any("_bias_mask" in k or "canvas_reads.3" in k for k in sd)
    zero = CanViT(CanViTConfig(backbone_name="tiny", num_canvas_registers=0,
                               num_backbone_registers=0, canvas_num_heads=1, canvas_head_dim=16))
    assert zero.state_dict()["backbone_registers"].shape == (1, 0, 128)


def test_step_shapes_and_constant_state_over_many_glimpses():
    torch.manual_seed(0)
    m = CanViT(SMALL).eval()
    state = m.init_state(2, 6)
    assert state.canvas.shape == (2, 3 + 36, 32) and state.recurrent_cls.shape == (2, 1, 128)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for t in range(30):
            s = torch.rand(2, generator=g) * 0.9 + 0.1
            vp = Viewpoint((torch.rand(2, 2, generator=g) * 2 - 1) * (1 - s)[:, None], s)
            out = m(glimpse=torch.randn(2, 3, 16, 16), state=state, viewpoint=vp)
            assert out.state.canvas.shape == (2, 39, 32)
            assert out.state.recurrent_cls.shape == (2, 1, 128)
            state = out.state
    assert out.glimpse_patches.shape == (2, 4, 128) and out.vpe.shape == (2, 128)
    assert m.canvas_patches(state.canvas).shape == (2, 36, 32)
    grid = m.canvas_patch_grid(state.canvas)
    assert grid.shape == (2, 6, 6, 32)
    assert torch.equal(grid[:, 1, 2], state.canvas[:, 3 + 1 * 6 + 2])  # row-major cells
    assert torch.isfinite(state.canvas).all()


def test_glimpse_and_canvas_size_change_without_new_parameters():
    m = CanViT(SMALL).eval()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with torch.no_grad():
        for px, grid in ((16, 4), (40, 9), (8, 1)):
            out = m(glimpse=torch.randn(1, 3, px, px), state=m.init_state(1, grid),
                    viewpoint=Viewpoint.full_scene(1))
            assert out.glimpse_patches.shape == (1, (px // 8) ** 2, 128)
            assert out.state.canvas.shape == (1, 3 + grid * grid, 32)
    assert m.state_dict().keys() == before.keys()
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())


def test_the_step_reads_the_canvas_and_writes_it():
    torch.manual_seed(0)
    m = CanViT(SMALL).eval()
    state, vp, x = m.init_state(1, 4), Viewpoint.full_scene(1), torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        a = m(glimpse=x, state=state, viewpoint=vp)
        other = type(state)(state.canvas + torch.randn_like(state.canvas), state.recurrent_cls)
        b = m(glimpse=x, state=other, viewpoint=vp)
    assert not torch.equal(a.state.canvas, state.canvas)  # written
    assert (a.glimpse_patches - b.glimpse_patches).abs().max() > 0  # read
    # registers are not carried: the backbone registers in the state dict are all there is
    assert set(vars(a.state)) == {"canvas", "recurrent_cls"}


def test_bad_inputs_name_field_value_and_expectation():
    m = CanViT(SMALL)
    state = m.init_state(1, 4)
    with pytest.raises(CanvasError, match=r"glimpse: got \(1, 3, 12, 12\)"):
        m(glimpse=torch.randn(1, 3, 12, 12), state=state, viewpoint=Viewpoint.full_scene(1))
    with pytest.raises(CanvasError, match="canvas: got 5 cells"):
        bad_state = type(state)(state.canvas[:, :-11], state.recurrent_cls)
        m(glimpse=torch.randn(1, 3, 16, 16), state=bad_state, viewpoint=Viewpoint.full_scene(1))
    with pytest.raises(CanvasError, match="canvas_projections"):
        CanViTConfig(canvas_projections="full")
    with pytest.raises(CanvasError, match="backbone_name"):
        CanViTConfig(backbone_name="vitl16")
    with pytest.raises(CanvasError, match="n_canvas_registers"):
        CanViTConfig.from_dict({"n_canvas_registers": 4})


def test_checkpoint_round_trip_gives_the_same_rollout(tmp_path):
    torch.manual_seed(0)
    m = CanViTForPretraining(canvit_config=SMALL, teacher_dim=8, teacher_patch_grid=4).eval()
    m.save_pretrained(tmp_path)
    record = json.loads((tmp_path / "config.json").read_text())
    assert set(record) == {"canvit_config", "teacher_dim", "teacher_patch_grid"}
    assert CanViTConfig.from_dict(record["canvit_config"]) == SMALL
    back = CanViTForPretraining.from_pretrained(tmp_path).eval()
    x, vp = torch.randn(1, 3, 16, 16), Viewpoint(torch.tensor([[0.5, -0.5]]), torch.tensor([0.5]))
    with torch.no_grad():
        a = m(glimpse=x, state=m.init_state(1, 4), viewpoint=vp)
        b = back(glimpse=x, state=back.init_state(1, 4), viewpoint=vp)
    assert torch.equal(a.state.canvas, b.state.canvas)
    assert torch.equal(a.glimpse_patches, b.glimpse_patches)
    inner = CanViT.from_pretrained(tmp_path)  # the CanViT inside a pretraining checkpoint
    assert torch.equal(inner.init_canvas_patch, m.canvit.init_canvas_patch)
    CanViT(SMALL).save_pretrained(tmp_path / "plain")
    assert isinstance(CanViT.from_pretrained(tmp_path / "plain"), CanViT)


def test_missing_or_unexpected_keys_raise(tmp_path):
    from safetensors.torch import load_file, save_file

    CanViT(SMALL).save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    dropped = dict(weights)
    del dropped["canvas_reads.0.q_map.weight"]
    save_file(dropped, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"missing keys \['canvas_reads.0.q_map.weight'\]"):
        CanViT.from_pretrained(tmp_path)
    save_file({**weights, "canvas_reads.0.k_map.weight": torch.zeros(2, 2)},
              tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="unexpected keys"):
        CanViT.from_pretrained(tmp_path)
    save_file({**weights, "init_canvas_patch": torch.zeros(1, 1, 7)},
              tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="init_canvas_patch: got"):
        CanViT.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="config.json: no such file"):
        CanViT.from_pretrained(tmp_path / "nowhere")
