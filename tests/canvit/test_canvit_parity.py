"""Parity with the reference canvit-pytorch 0.2.1, skipped where it is not importable (it never
is in the project's environment; run with the reference on PYTHONPATH, see the README).

One perturbed random state dict loads strictly into both; rollouts with identical glimpses and
viewpoints (full scene, a quadrant, scale 0.05, random ones; then another glimpse size and
canvas size) must agree to 1e-5 (+1e-5 relative) on canvas, recurrent CLS, glimpse patches
and the viewpoint token at every step. Checkpoint directories cross both ways.
"""

from __future__ import annotations

import pytest
import torch

ref = pytest.importorskip("canvit_pytorch")
from canvit_core.backbone import BACKBONES as REF_BACKBONES
from canvit_core.backbone import ViTSpec as RefViTSpec

from canvas_engineering.canvit import (
    BACKBONES,
    CanViT,
    CanViTConfig,
    CanViTForPretraining,
    Viewpoint,
    sample_at_viewpoint,
)

REF_BACKBONES["tiny"] = RefViTSpec(**vars(BACKBONES["tiny"]))  # same sizes on both sides

CONFIGS = {
    "tiny": {"backbone_name": "tiny", "canvas_num_heads": 2, "canvas_head_dim": 32,
                 "num_canvas_registers": 4, "num_backbone_registers": 2, "rw_stride": 1},
    "tiny_qkvo_novpe": {"backbone_name": "tiny", "canvas_num_heads": 1, "canvas_head_dim": 64,
                            "num_canvas_registers": 0, "num_backbone_registers": 0, "rw_stride": 2,
                            "enable_vpe": False, "canvas_projections": "qkvo"},
    "tiny_noreads": {"backbone_name": "tiny", "canvas_num_heads": 2, "canvas_head_dim": 16,
                         "rw_stride": 2, "enable_reads": False},
}


def perturbed_state(model: torch.nn.Module, seed: int = 0) -> dict:
    """The model's state with every weight moved off the init, so slips cannot hide."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in model.state_dict().items():
        v = v.clone()
        if k.endswith("gamma"):
            v = torch.rand(v.shape, generator=g) * 0.2 + 0.1
        elif k.endswith("bias"):
            v = v + 0.1 * torch.randn(v.shape, generator=g)
        elif "norm" in k or "ln_" in k:
            v = v * (1 + 0.2 * torch.randn(v.shape, generator=g))
        elif k.startswith("backbone.blocks") and v.dim() == 2:
            v = v * 5
        out[k] = v
    return out


def _viewpoints(batch: int, g: torch.Generator) -> list:
    fixed = [((0.0, 0.0), 1.0), ((-0.5, 0.5), 0.5), ((0.3, -0.6), 0.05), ((0.25, 0.25), 0.25)]
    vps = [Viewpoint(torch.tensor([c] * batch), torch.tensor([s] * batch)) for c, s in fixed]
    for _ in range(2):
        s = torch.rand(batch, generator=g) * 0.9 + 0.1
        c = (torch.rand(batch, 2, generator=g) * 2 - 1) * (1 - s)[:, None]
        vps.append(Viewpoint(c, s))
    return vps


def rollout_diffs(fields: dict, seed: int = 0) -> dict[str, float]:
    """Largest |ours − reference| per output over two rollouts (32 px glimpses, G=8; 48 px, G=5)."""
    torch.manual_seed(seed)
    ours = CanViT(CanViTConfig(**fields)).eval()
    theirs = ref.CanViT(ref.CanViTConfig(**fields)).eval()
    state = perturbed_state(ours, seed)
    ours.load_state_dict(state, strict=True)
    theirs.load_state_dict(state, strict=True)
    g = torch.Generator().manual_seed(seed)
    worst: dict[str, float] = {}
    for px, grid in ((32, 8), (48, 5)):
        scene = torch.randn(2, 3, 96, 96, generator=g)
        s_ours = ours.init_state(2, grid)
        s_ref = theirs.init_state(batch_size=2, canvas_grid_size=grid)
        for vp in _viewpoints(2, g):
            glimpse = sample_at_viewpoint(scene, vp, px)
            ref_glimpse = ref.sample_at_viewpoint(
                spatial=scene, viewpoint=ref.Viewpoint(centers=vp.centers, scales=vp.scales),
                glimpse_size_px=px)
            worst["sampler"] = max(worst.get("sampler", 0.0),
                                   (glimpse - ref_glimpse).abs().max().item())
            with torch.no_grad():
                a = ours(glimpse=glimpse, state=s_ours, viewpoint=vp)
                b = theirs(glimpse=glimpse, state=s_ref, viewpoint=ref.Viewpoint(
                    centers=vp.centers, scales=vp.scales))
            pairs = {"canvas": (a.state.canvas, b.state.canvas),
                     "recurrent_cls": (a.state.recurrent_cls, b.state.recurrent_cls),
                     "glimpse_patches": (a.glimpse_patches, b.glimpse_patches)}
            if b.vpe is not None:
                pairs["vpe"] = (a.vpe, b.vpe)
            for name, (x, y) in pairs.items():
                assert x.shape == y.shape, name
                tol = 1e-5 + 1e-5 * y.abs().max().item()
                d = (x - y).abs().max().item()
                assert d <= tol, f"{name}: max diff {d:.3g} > {tol:.3g} at {px} px, G={grid}"
                worst[name] = max(worst.get(name, 0.0), d)
            s_ours, s_ref = a.state, b.state
    return worst


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_rollouts_match_reference(name):
    worst = rollout_diffs(CONFIGS[name])
    print(f"\nparity {name}: " + ", ".join(f"{k} {v:.2e}" for k, v in sorted(worst.items())))
    assert worst["sampler"] == 0.0
    assert set(worst) >= {"canvas", "recurrent_cls", "glimpse_patches"}


def test_checkpoint_directories_cross_both_ways(tmp_path):
    fields = CONFIGS["tiny"]
    theirs = ref.CanViTForPretraining(canvit_config=ref.CanViTConfig(**fields), teacher_dim=16,
                                      teacher_patch_grid=8)
    theirs.save_pretrained(tmp_path / "ref")
    ours = CanViTForPretraining.from_pretrained(tmp_path / "ref")
    for k, v in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[k], v), k
    assert torch.equal(CanViT.from_pretrained(tmp_path / "ref").init_canvas_patch,
                       theirs.canvit.init_canvas_patch)
    ours.save_pretrained(tmp_path / "ours")
    back = ref.CanViTForPretraining.from_pretrained(str(tmp_path / "ours"))
    for k, v in back.state_dict().items():
        assert torch.equal(ours.state_dict()[k], v), k
