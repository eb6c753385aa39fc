"""graft_looped_blocks on tiny CogVideoX, Wan and Mochi: identity at init, freezing, training."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers.tiny_diffusers import MODELS, build, inputs, pair, run
from torch import nn

from canvas_engineering import (
    ActionHead,
    CurriculumScheduler,
    LoopedBlockWrapper,
    freeze_full,
    freeze_half,
    graft_looped_blocks,
)
from canvas_engineering.integrations.diffusers_graft import detect_convention, unfreeze

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

PATCH = {"cogvideox": "patch_embed", "wan": "patch_embedding", "mochi": "patch_embed"}


def loop_names(model) -> set[str]:
    return {n for n, _ in model.named_parameters() if ".block." not in n
            and any(k in n for k in ("loop_emb", "loop_gate"))}


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("max_loops", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_grafted_model_equals_original_at_init(name, max_loops, dtype):
    original, grafted = pair(name, dtype)
    blocks, _head = graft_looped_blocks(grafted, max_loops=max_loops, action_dim=7)
    assert all(isinstance(b, LoopedBlockWrapper) for b in blocks)
    assert len(blocks) == 2 and blocks[0].max_loops == max_loops
    with torch.no_grad():
        assert torch.equal(run(grafted, name, dtype), run(original, name, dtype))
    assert all(p.dtype == torch.float32 for b in blocks for _, p in b.named_loop_parameters())


@pytest.mark.parametrize("name", MODELS)
def test_loops_change_the_output_once_gates_open(name):
    original, grafted = pair(name)
    blocks, _ = graft_looped_blocks(grafted, max_loops=3)
    with torch.no_grad():
        for b in blocks:
            b.loop_gate.fill_(0.5)
        assert not torch.allclose(run(grafted, name), run(original, name))
        # With one loop the gates are unused: the plain model again.
        CurriculumScheduler(max_loops=3, total_steps=30).apply(blocks, step=0)
        assert torch.equal(run(grafted, name), run(original, name))


@pytest.mark.parametrize("name", MODELS)
def test_one_step_full_freeze_changes_only_loop_params_and_head(name):
    model = build(name)
    blocks, head = graft_looped_blocks(model, max_loops=3, freeze="full", action_dim=7)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    head_before = {n: p.detach().clone() for n, p in head.named_parameters()}
    params = [p for b in blocks for p in b.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params + list(head.parameters()), lr=1e-2)
    out = run(model, name)
    (out.square().mean() + head(out).square().mean()).backward()
    opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    loops = loop_names(model)
    assert changed <= loops and changed, changed - loops
    assert {n for n in loops if "loop_gate" in n} <= changed  # gates have gradient at init
    assert all(not torch.equal(p, head_before[n]) for n, p in head.named_parameters())


@pytest.mark.parametrize("name", MODELS)
def test_gradients_reach_every_loop_parameter(name):
    model = build(name)
    blocks, _ = graft_looped_blocks(model, max_loops=3, freeze="full", per_token=True)
    with torch.no_grad():  # one "step" away from init: open the gates a little
        for b in blocks:
            b.loop_gate.fill_(0.1)
    run(model, name).square().mean().backward()
    for i, b in enumerate(blocks):
        for n, p in b.named_loop_parameters():
            assert p.grad is not None, (i, n)
            per_loop = p.grad.reshape(p.shape[0], -1).abs().sum(1)
            assert per_loop.gt(0).all(), (i, n, per_loop)
    assert all(p.grad is None for n, p in model.named_parameters() if ".block." in n)


@pytest.mark.parametrize("name", MODELS)
def test_freeze_levels_leave_documented_groups_trainable(name):
    for freeze in ("full", "half", "none"):
        model = build(name)
        graft_looped_blocks(model, max_loops=2, freeze=freeze)
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        everything = {n for n, _ in model.named_parameters()}
        patch = {n for n in everything if n.startswith(PATCH[name] + ".")}
        assert patch, "the patch embedding has parameters"
        expected = {"full": loop_names(model), "half": everything - patch, "none": everything}
        assert trainable == expected[freeze], freeze
    # The helpers work on their own, too.
    model = build(name)
    graft_looped_blocks(model, max_loops=2, freeze="none")
    assert freeze_full(model) == sum(p.numel() for n, p in model.named_parameters()
                                     if n in loop_names(model))
    assert freeze_half(model) == sum(p.numel() for n, p in model.named_parameters()
                                     if not n.startswith(PATCH[name] + "."))
    assert unfreeze(model) == sum(p.numel() for p in model.parameters())


def test_block_conventions_detected():
    conv = {n: detect_convention(build(n)) for n in MODELS}
    assert conv["cogvideox"].channel_dim == 2 and conv["wan"].channel_dim == 1
    model = build("mochi")
    blocks, _ = graft_looped_blocks(model, max_loops=2)
    assert blocks[0].encoder_dim == 12 and blocks[0].dim == 16
    blocks, _ = graft_looped_blocks(wan := build("wan"), max_loops=2)
    assert blocks[0].encoder_dim is None and wan.blocks[0] is blocks[0]


@pytest.mark.parametrize("name", MODELS)
def test_action_head_reads_each_layout(name):
    model = build(name)
    _, head = graft_looped_blocks(model, max_loops=1, action_dim=7)
    latent = run(model, name)
    frames = latent.shape[1] if name == "cogvideox" else latent.shape[2]
    actions = head(latent.to(torch.bfloat16))
    assert actions.shape == (2, frames, 7) and actions.dtype == torch.float32
    # Reference: per-frame spatial mean of the channels, then the MLP.
    per_frame = latent if name == "cogvideox" else latent.transpose(1, 2)
    torch.testing.assert_close(head(latent), head.mlp(per_frame.mean(dim=(-2, -1))))


def test_action_head_paper_size_and_errors():
    head = ActionHead.paper(16, 7)
    assert sum(p.numel() for p in head.parameters()) == 16 * 8 + 8 + 8 * 7 + 7  # 199
    _, head = graft_looped_blocks(build("wan"), max_loops=1, action_dim=3, action_head="paper")
    assert [m.out_features for m in head.mlp if isinstance(m, nn.Linear)] == [8, 3]
    with pytest.raises(ValueError, match="latent: got \\(2, 5, 8, 8\\)"):
        ActionHead(4, 7)(torch.zeros(2, 5, 8, 8))
    with pytest.raises(ValueError, match="channel_dim"):
        ActionHead(4, 7, channel_dim=3)
    with pytest.raises(ValueError, match="action_dim: got 0"):
        ActionHead(4, 0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"freeze": "partial"}, ValueError, r"freeze: got 'partial', expected one of \['full'"),
        ({"max_loops": 0}, ValueError, "max_loops: got 0"),
        ({"max_loops": 2.5}, ValueError, "max_loops: got 2.5"),
        ({"action_dim": 0}, ValueError, "action_dim: got 0"),
        ({"action_head": "big"}, ValueError, "action_head: got 'big'"),
        ({"gate": "tanh"}, ValueError, "gate: got 'tanh'"),
    ],
)
def test_bad_graft_arguments_raise_and_leave_model_untouched(kwargs, error, match):
    model = build("cogvideox")
    reference = copy.deepcopy(model.state_dict())
    with pytest.raises(error, match=match):
        graft_looped_blocks(model, **kwargs)
    assert not any(isinstance(b, LoopedBlockWrapper) for b in model.transformer_blocks)
    assert model.state_dict().keys() == reference.keys()


def test_graft_rejects_unsupported_models_and_double_grafting():
    with pytest.raises(TypeError, match="transformer: got Linear, expected one of"):
        graft_looped_blocks(nn.Linear(4, 4))
    with pytest.raises(TypeError, match="transformer: got str"):
        graft_looped_blocks("CogVideoXTransformer3DModel")
    model = build("wan")
    graft_looped_blocks(model, max_loops=2)
    with pytest.raises(ValueError, match="already looped"):
        graft_looped_blocks(model, max_loops=2)


def test_quick_start_snippet_runs_on_tiny_cogvideox():
    # Seed 000 "Quick start", with the pretrained model replaced by a tiny one in bf16.
    from canvas_engineering import CurriculumScheduler, graft_looped_blocks

    transformer = build("cogvideox", torch.bfloat16)
    looped_blocks, action_head = graft_looped_blocks(
        transformer,
        max_loops=3,  # 3 is optimal (empirically validated)
        freeze="full",  # freeze backbone, train only loop params
        action_dim=7,  # 6DOF end-effector + gripper
    )
    optimizer = torch.optim.AdamW(
        [p for b in looped_blocks for p in b.parameters() if p.requires_grad]
        + list(action_head.parameters()),
        lr=1e-4,
    )
    scheduler = CurriculumScheduler(max_loops=3, total_steps=5000)

    assert scheduler.apply(looped_blocks, step=0) == 1
    out = transformer(**inputs("cogvideox", torch.bfloat16), return_dict=False)[0]
    action_head(out).square().mean().backward()
    optimizer.step()
    assert out.dtype == torch.bfloat16


@pytest.mark.parametrize("name", MODELS)
def test_per_loop_and_diffusers_checkpointing_keep_outputs_and_grads(name):
    # diffusers' own checkpointing calls blocks positionally; per-loop checkpointing recomputes.
    reference = build(name)
    ref_blocks, _ = graft_looped_blocks(reference, max_loops=2)
    models = [reference]
    for per_loop, diffusers_ckpt in ((True, False), (False, True)):
        model = build(name)
        blocks, _ = graft_looped_blocks(model, max_loops=2, checkpoint=per_loop)
        for a, b in zip(ref_blocks, blocks, strict=True):
            b.load_state_dict(a.state_dict())
        if diffusers_ckpt:
            model.enable_gradient_checkpointing()
        models.append(model)
    grads = []
    for model in models:
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "loop_gate" in n:
                    p.fill_(0.3)
        out = run(model, name)
        out.square().mean().backward()
        grads.append((out.detach(), [p.grad for n, p in model.named_parameters()
                                     if p.requires_grad]))
    for out, g in grads[1:]:
        torch.testing.assert_close(out, grads[0][0], rtol=0, atol=0)
        for a, b in zip(g, grads[0][1], strict=True):
            torch.testing.assert_close(a, b)
