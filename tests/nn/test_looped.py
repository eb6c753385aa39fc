"""LoopedBlockWrapper on small hand-written blocks, checked against plain-loop references."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from canvas_engineering import LoopedBlockWrapper, SharpeningSchedule

D, E = 8, 6


class Mlp(nn.Module):
    """A residual block returning a tensor `(B, N, D)`, with an extra keyword argument."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(D, D)

    def forward(self, hidden_states, scale: float = 1.0):
        return hidden_states + scale * torch.tanh(self.fc(hidden_states))


class Joint(nn.Module):
    """A block with an encoder stream of another width: returns `(hidden, encoder)`."""

    def __init__(self):
        super().__init__()
        self.h = nn.Linear(D + E, D)
        self.e = nn.Linear(E, E)

    def forward(self, hidden_states, encoder_hidden_states, temb):
        ctx = encoder_hidden_states.mean(1, keepdim=True).expand(-1, hidden_states.shape[1], -1)
        h = hidden_states + torch.tanh(self.h(torch.cat([hidden_states, ctx], -1))) * temb
        return h, encoder_hidden_states + torch.sin(self.e(encoder_hidden_states))


def randomise(wrapper: LoopedBlockWrapper, seed: int = 3) -> None:
    """Give every loop parameter a nonzero value, so the loops matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in wrapper.named_loop_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def rows_nonzero(t: torch.Tensor) -> bool:
    """Every loop's slice (first axis) of a gradient has a nonzero entry."""
    return bool(t.reshape(t.shape[0], -1).abs().sum(1).gt(0).all())


def data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 5, D, generator=g), torch.randn(2, 3, E, generator=g)


@pytest.mark.parametrize("loops", [1, 2, 3])
def test_identity_at_init_tensor_block(loops):
    torch.manual_seed(0)
    block = Mlp()
    wrapped = LoopedBlockWrapper(block, dim=D, max_loops=3)
    h, _ = data()
    assert torch.equal(wrapped(h, scale=0.7, loops=loops), block(h, scale=0.7))
    assert torch.equal(wrapped(h, 0.7, loops=loops), block(h, 0.7))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_identity_at_init_tuple_block(dtype):
    torch.manual_seed(0)
    block = Joint().to(dtype)
    wrapped = LoopedBlockWrapper(block, dim=D, max_loops=3, encoder_dim=E)
    h, enc = (t.to(dtype) for t in data())
    out, ref = wrapped(h, enc, temb=0.5), block(h, enc, temb=0.5)
    assert isinstance(out, tuple) and len(out) == 2
    assert torch.equal(out[0], ref[0]) and torch.equal(out[1], ref[1])
    assert out[0].dtype == dtype
    assert all(p.dtype == torch.float32 for _, p in wrapped.named_loop_parameters())


def test_zero_gate_matches_reference_loop():
    torch.manual_seed(0)
    block = Joint()
    wrapped = LoopedBlockWrapper(block, dim=D, max_loops=3, encoder_dim=E)
    randomise(wrapped)
    h, enc = data()
    e, ee, g = wrapped.loop_emb, wrapped.loop_emb_enc, wrapped.loop_gate
    rh, re = block(h + e[0], enc + ee[0], 0.5)
    for i in (1, 2):
        nh, ne = block(rh + e[i], re + ee[i], 0.5)
        rh, re = rh + g[i - 1] * (nh - rh), re + g[i - 1] * (ne - re)
    out = wrapped(h, enc, 0.5)
    torch.testing.assert_close(out[0], rh)
    torch.testing.assert_close(out[1], re)
    assert not torch.allclose(out[0], block(h, enc, 0.5)[0])


def test_sigmoid_gate_is_the_published_blend():
    torch.manual_seed(0)
    block = Mlp()
    wrapped = LoopedBlockWrapper(block, dim=D, max_loops=2, gate="sigmoid")
    h, _ = data()
    # At init σ(0) = 0.5 halves the update: not the identity (the public package's defect).
    torch.testing.assert_close(wrapped(h, loops=1), 0.5 * block(h) + 0.5 * h)
    randomise(wrapped)
    ref = h
    for i in range(2):
        g = torch.sigmoid(wrapped.loop_gate[i])
        ref = g * block(ref + wrapped.loop_emb[i]) + (1 - g) * ref
    torch.testing.assert_close(wrapped(h), ref)


def test_per_token_gate_reference():
    torch.manual_seed(0)
    block = Mlp()
    wrapped = LoopedBlockWrapper(block, dim=D, max_loops=2, per_token=True)
    h, _ = data()
    assert torch.equal(wrapped(h), block(h))
    randomise(wrapped)
    r = block(h + wrapped.loop_emb[0])
    g = (r @ wrapped.loop_gate_w[0]).unsqueeze(-1) + wrapped.loop_gate[0]  # (B, N, 1)
    r = r + g * (block(r + wrapped.loop_emb[1]) - r)
    torch.testing.assert_close(wrapped(h), r)


def test_loop_count_per_call_and_attribute():
    torch.manual_seed(0)
    wrapped = LoopedBlockWrapper(Mlp(), dim=D, max_loops=3)
    randomise(wrapped)
    h, _ = data()
    two = wrapped(h, loops=2)
    wrapped.loops = 2
    assert torch.equal(wrapped(h), two)
    wrapped.loops = 3
    assert not torch.allclose(wrapped(h), two)


def test_gradients_reach_every_loop_parameter():
    torch.manual_seed(0)
    wrapped = LoopedBlockWrapper(Joint(), dim=D, max_loops=3, encoder_dim=E, per_token=True)
    h, enc = data()
    out = wrapped(h, enc, 0.5)
    (out[0].square().sum() + out[1].square().sum()).backward()
    grads = {n: p.grad for n, p in wrapped.named_loop_parameters()}
    # At init the gates and loop 0's embeddings get gradient; e_ℓ (ℓ ≥ 1) sit behind g_ℓ = 0.
    assert rows_nonzero(grads["loop_gate"]) and rows_nonzero(grads["loop_gate_w"])
    assert grads["loop_emb"][0].abs().sum() > 0 and grads["loop_emb_enc"][0].abs().sum() > 0
    assert torch.equal(grads["loop_emb"][1:], torch.zeros_like(grads["loop_emb"][1:]))
    # One step moves the gates off zero, and then every embedding row gets gradient.
    with torch.no_grad():
        for _, p in wrapped.named_loop_parameters():
            p -= 0.1 * p.grad
            p.grad = None
    out = wrapped(h, enc, 0.5)
    (out[0].square().sum() + out[1].square().sum()).backward()
    for name, p in wrapped.named_loop_parameters():
        assert rows_nonzero(p.grad), name


def test_checkpointing_matches_plain_forward_and_backward():
    torch.manual_seed(0)
    plain = LoopedBlockWrapper(Joint(), dim=D, max_loops=3, encoder_dim=E)
    randomise(plain)
    ckpt = LoopedBlockWrapper(Joint(), dim=D, max_loops=3, encoder_dim=E, checkpoint=True)
    ckpt.load_state_dict(plain.state_dict())
    h, enc = data()
    grads = []
    for w in (plain, ckpt):
        hh = h.clone().requires_grad_()
        out = w(hh, enc, 0.5)
        out[0].sum().backward()
        grads.append([hh.grad] + [p.grad for p in w.parameters()])
    torch.testing.assert_close(plain(h, enc, 0.5), ckpt(h, enc, 0.5), rtol=0, atol=0)
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


def test_sharpening_passes_beta_per_loop():
    seen = []

    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(D, D)

        def forward(self, hidden_states, beta: float = 1.0):
            seen.append(beta)
            return hidden_states + beta * self.fc(hidden_states)

    sched = SharpeningSchedule(max_loops=3, beta_min=1.0, beta_max=4.0)
    wrapped = LoopedBlockWrapper(Attn(), dim=D, max_loops=3, sharpening=sched)
    h, _ = data()
    wrapped(h)
    assert seen == [1.0, 2.5, 4.0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"block": "not a module", "dim": D}, "block"),
        ({"dim": 0}, "dim"),
        ({"dim": D, "max_loops": 0}, "max_loops"),
        ({"dim": D, "max_loops": True}, "max_loops"),
        ({"dim": D, "gate": "relu"}, "gate"),
        ({"dim": D, "encoder_dim": 4}, "encoder_dim"),
        ({"dim": D, "hidden_arg": "x"}, "hidden_arg"),
        ({"dim": D, "sharpening": SharpeningSchedule(2)}, "sharpening.max_loops"),
    ],
)
def test_bad_construction_raises(kwargs, match):
    kwargs = {"block": Mlp(), **kwargs}
    with pytest.raises((TypeError, ValueError), match=match):
        LoopedBlockWrapper(**kwargs)


def test_bad_calls_raise():
    wrapped = LoopedBlockWrapper(Mlp(), dim=D, max_loops=2)
    h, _ = data()
    with pytest.raises(ValueError, match=r"loops: got 3, expected an int in \[1, 2\]"):
        wrapped(h, loops=3)
    with pytest.raises(ValueError, match="loops: got 0"):
        wrapped(h, loops=0)
    with pytest.raises(ValueError, match="hidden_states: got \\(2, 5, 4\\)"):
        wrapped(h[..., :4])
    with pytest.raises(TypeError, match="unwrapped"):
        LoopedBlockWrapper(wrapped, dim=D)
    with pytest.raises(TypeError, match="sharpening"):
        LoopedBlockWrapper(Mlp(), dim=D, max_loops=2, sharpening=SharpeningSchedule(2))
