"""Progressive sharpening on diffusers blocks: query scaling equals re-weighted query norms."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers.tiny_diffusers import MODELS, build, inputs, pair, run

from canvas_engineering import LoopedBlockWrapper, SharpeningSchedule, graft_looped_blocks
from canvas_engineering.nn.sharpen import attach_logit_scaling

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
BLOCKS = {"cogvideox": "transformer_blocks", "wan": "blocks", "mochi": "transformer_blocks"}


def block_args(name: str):
    """A first block of `name` and the positional arguments it is called with in the model."""
    model = build(name)
    captured = {}
    block = getattr(model, BLOCKS[name])[0]
    handle = block.register_forward_pre_hook(
        lambda m, args, kwargs: captured.update(args=args, kwargs=kwargs), with_kwargs=True)
    with torch.no_grad():
        run(model, name)
    handle.remove()
    return block, captured["args"], captured["kwargs"]


def scaled_norms(block, beta: float):
    """A copy of `block` whose final-query norms multiply their output by `beta` via weights."""
    twin = copy.deepcopy(block)
    with torch.no_grad():
        for m in twin.modules():
            for attr in ("norm_q", "norm_added_q"):
                norm = getattr(m, attr, None)
                if hasattr(m, "to_q") and norm is not None:
                    norm.weight.mul_(beta)
                    if getattr(norm, "bias", None) is not None:
                        norm.bias.mul_(beta)
    return twin


def first(out):
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("name", MODELS)
def test_logit_scaling_matches_scaled_query_norm_weights(name):
    block, args, kwargs = block_args(name)
    reference = scaled_norms(block, 2.0)
    beta = [1.0]
    handles = attach_logit_scaling(block, lambda: beta[0])
    with torch.no_grad():
        at_one = first(block(*args, **kwargs))
        beta[0] = 2.0
        sharp = first(block(*args, **kwargs))
        expected = first(reference(*args, **kwargs))
    for h in handles:
        h.remove()
    with torch.no_grad():
        assert torch.equal(at_one, first(block(*args, **kwargs)))  # β = 1 is exactly a no-op
    torch.testing.assert_close(sharp, expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(sharp, at_one, atol=1e-4)


def test_sharpened_loops_match_reference():
    block, args, kwargs = block_args("cogvideox")
    sharp = scaled_norms(block, 3.0)
    schedule = SharpeningSchedule(max_loops=2, beta_min=1.0, beta_max=3.0)
    wrapped = LoopedBlockWrapper(copy.deepcopy(block), dim=16, max_loops=2, encoder_dim=16,
                                 sharpening=schedule)
    with torch.no_grad():
        wrapped.loop_gate.fill_(0.7)
        wrapped.loop_emb.normal_()
        wrapped.loop_emb_enc.normal_()
        e, ee, g = wrapped.loop_emb, wrapped.loop_emb_enc, wrapped.loop_gate[0]
        assert not args  # CogVideoX calls its blocks with keywords
        rest = {k: v for k, v in kwargs.items() if k not in ("hidden_states",
                                                               "encoder_hidden_states")}
        h, enc = kwargs["hidden_states"], kwargs["encoder_hidden_states"]
        h0, enc0 = block(h + e[0], enc + ee[0], **rest)
        h1, enc1 = sharp(h0 + e[1], enc0 + ee[1], **rest)
        out = wrapped(**kwargs)
    torch.testing.assert_close(out[0], h0 + g * (h1 - h0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[1], enc0 + g * (enc1 - enc0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_sharpened_graft_is_still_identity_at_init(name):
    original, grafted = pair(name)
    schedule = SharpeningSchedule(max_loops=3, beta_min=1.0, beta_max=4.0)
    blocks, _ = graft_looped_blocks(grafted, max_loops=3, sharpening=schedule)
    with torch.no_grad():
        assert torch.equal(run(grafted, name), run(original, name))
        for b in blocks:
            b.loop_gate.fill_(0.5)
        sharpened = run(grafted, name)
    _, plain = pair(name)
    plain_blocks, _ = graft_looped_blocks(plain, max_loops=3)
    for a, b in zip(blocks, plain_blocks, strict=True):
        b.load_state_dict(a.state_dict())
    with torch.no_grad():
        assert not torch.allclose(run(plain, name), sharpened, atol=1e-5)
    assert inputs(name)["hidden_states"].shape == sharpened.shape
