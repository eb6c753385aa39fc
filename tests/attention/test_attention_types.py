"""Every registered attention type: the calling convention, forward + backward, padding, the
registry, and clear errors on bad input."""

from __future__ import annotations

import itertools

import pytest
import torch

from canvas_engineering.attention import (
    AttentionModule,
    attention_names,
    create_attention,
    get_attention_class,
    register_attention,
)
from canvas_engineering.attention import registry as attn_registry
from canvas_engineering.errors import AttentionTypeError, CanvasError
from canvas_engineering.spec.attention_types import ATTENTION_TYPES, check_attention_type

NAMES = [
    "cross_attention", "linear_attention", "cosine_attention", "sigmoid_attention", "gated",
    "perceiver", "pooling", "copy", "mamba", "rwkv", "hyena", "sparse_attention",
    "local_attention", "none", "random_fixed", "mixture", "cogvideox", "self_attention",
]
# the 18 names with their defaults, plus the non-default modes of a few types
VARIANTS = [(n, {}) for n in NAMES] + [
    ("mamba", {"readout": "state"}), ("rwkv", {"causal": False}), ("hyena", {"causal": False}),
    ("local_attention", {"window": (0, 1, 2)}),
]
D, H = 16, 2


def grid(t: int, h: int, w: int, t0: int = 0, h0: int = 0, w0: int = 0) -> torch.Tensor:
    """(t·h·w, 3) coordinates in t-major order."""
    return torch.tensor(list(itertools.product(range(t0, t0 + t), range(h0, h0 + h),
                                               range(w0, w0 + w))))


def make(name: str, **options) -> torch.nn.Module:
    torch.manual_seed(0)
    small = {"mixture": {"block_size": 4}, "sparse_attention": {"top_k": 3},
             "random_fixed": {"k": 4, "seed": 7}, "perceiver": {"n_latents": 3},
             "mamba": {"d_state": 4, "chunk": 4}, "rwkv": {"chunk": 4}}
    m = create_attention(name, d_model=D, n_heads=H, **{**small.get(name, {}), **options})
    if name == "gated":  # open the gate so the padding test compares non-zero outputs
        with torch.no_grad():
            m.alpha.fill_(0.5)
    return m


def test_the_18_documented_names_are_registered_and_declared():
    assert set(NAMES) <= set(attention_names())
    assert len(set(NAMES)) == 18
    for name in NAMES:
        assert name in ATTENTION_TYPES
        assert isinstance(create_attention(name, d_model=D, n_heads=H), AttentionModule)
    assert get_attention_class("self_attention") is get_attention_class("cross_attention")


def test_unknown_name_lists_the_valid_names():
    with pytest.raises(AttentionTypeError, match="cross_attention") as e:
        create_attention("crosss_attention", d_model=D)
    assert "'crosss_attention'" in str(e.value) and "perceiver" in str(e.value)


def test_custom_type_registered_at_runtime_is_created():
    class Doubler(AttentionModule):
        def _attend(self, x_q, x_kv, *, q_coords, kv_coords, kv_mask, beta):
            return 2 * x_q

    try:
        register_attention("doubler_test", Doubler)
        m = create_attention("doubler_test", d_model=D, n_heads=H)
        assert type(m) is Doubler
        assert check_attention_type("doubler_test", "fn") == "doubler_test"  # declared too
        x = torch.randn(1, 3, D)
        assert torch.equal(m(x, x), 2 * x)

        @register_attention("doubler_deco_test")
        class Deco(Doubler):
            pass

        assert type(create_attention("doubler_deco_test", d_model=D)) is Deco
        with pytest.raises(AttentionTypeError, match="already registered"):
            register_attention("doubler_test", Deco)
        register_attention("doubler_test", Deco, replace=True)
        assert get_attention_class("doubler_test") is Deco
    finally:
        for n in ("doubler_test", "doubler_deco_test"):
            attn_registry._REGISTRY.pop(n, None)
            ATTENTION_TYPES.pop(n, None)


def test_register_rejects_bad_names_and_classes():
    with pytest.raises(AttentionTypeError, match="name"):
        register_attention("not an identifier", AttentionModule)
    with pytest.raises(AttentionTypeError, match="cls"):
        register_attention("fine_name_test", object)


@pytest.mark.parametrize("name, options", VARIANTS)
def test_forward_backward(name, options):
    m = make(name, **options)
    qc, kc = grid(2, 2, 3), grid(2, 3, 3)
    x_q = torch.randn(2, len(qc), D, requires_grad=True)
    x_kv = torch.randn(2, len(kc), D, requires_grad=True)
    out = m(x_q, x_kv, q_coords=qc, kv_coords=kc, beta=1.5)
    assert out.shape == (2, len(qc), D) and torch.isfinite(out).all()
    if name == "none":
        assert torch.equal(out, torch.zeros_like(out)) and not list(m.parameters())
        return
    out.square().sum().backward()
    assert x_kv.grad is not None and x_kv.grad.abs().sum() > 0
    assert torch.isfinite(x_kv.grad).all()
    grads = [p.grad for p in m.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name, options", VARIANTS)
def test_padded_keys_do_not_change_outputs(name, options):
    """A padded batch (padding anywhere, junk values and coordinates) equals the unpadded one
    row by row; a row with only padding outputs zeros."""
    m = make(name, **options)
    gen = torch.Generator().manual_seed(1)
    qc, kc = grid(2, 2, 2, h0=1), grid(2, 3, 3)
    nk, nq = len(kc), len(qc)
    x_q = torch.randn(3, nq, D, generator=gen)
    x_real = torch.randn(3, nk, D, generator=gen)
    n_pad = [4, 0, 7]
    total = nk + max(n_pad)
    x_pad = 100 * torch.randn(3, total, D, generator=gen)
    c_pad = torch.randint(0, 4, (3, total, 3), generator=gen)  # junk, may repeat real coords
    mask = torch.zeros(3, total, dtype=torch.bool)
    expected = []
    for b in range(3):
        slots = torch.sort(torch.randperm(nk + n_pad[b], generator=gen)[:nk]).values
        mask[b, slots] = True
        x_pad[b, slots] = x_real[b]
        c_pad[b, slots] = kc
        expected.append(m(x_q[b:b + 1], x_real[b:b + 1], q_coords=qc, kv_coords=kc))
    out = m(x_q, x_pad, q_coords=qc.expand(3, -1, -1), kv_coords=c_pad, kv_mask=mask)
    torch.testing.assert_close(out, torch.cat(expected), atol=2e-5, rtol=1e-4)
    empty = torch.zeros(3, total, dtype=torch.bool)
    out = m(x_q, x_pad, q_coords=qc.expand(3, -1, -1), kv_coords=c_pad, kv_mask=empty)
    assert torch.equal(out, torch.zeros_like(out))


@pytest.mark.parametrize("name", ["cross_attention", "cosine_attention", "sigmoid_attention",
                                  "sparse_attention", "local_attention", "random_fixed",
                                  "mixture", "perceiver", "mamba", "cogvideox"])
def test_beta_sharpens_logit_types(name):
    m = make(name)
    c = grid(2, 2, 2)
    x = torch.randn(1, len(c), D)
    assert not torch.allclose(m(x, x, q_coords=c, kv_coords=c),
                              m(x, x, q_coords=c, kv_coords=c, beta=3.0))


@pytest.mark.parametrize("name", ["linear_attention", "pooling", "copy", "rwkv", "hyena"])
def test_beta_is_ignored_without_logits(name):
    m = make(name)
    c = grid(2, 2, 2)
    x = torch.randn(1, len(c), D)
    assert torch.equal(m(x, x, q_coords=c, kv_coords=c), m(x, x, q_coords=c, kv_coords=c, beta=3.0))


@pytest.mark.parametrize("name, options, field", [
    ("cross_attention", {"d_model": 10, "n_heads": 3}, "d_model: got 10"),
    ("cross_attention", {"d_model": 0}, "d_model: got 0"),
    ("linear_attention", {"d_model": 8, "n_heads": -1}, "n_heads: got -1"),
    ("perceiver", {"d_model": 8, "n_latents": 0}, "n_latents: got 0"),
    ("sparse_attention", {"d_model": 8, "top_k": 1.5}, "top_k: got 1.5"),
    ("local_attention", {"d_model": 8, "window": (1, -2)}, "window: got"),
    ("mamba", {"d_model": 8, "readout": "sideways"}, "readout: got 'sideways'"),
    ("mamba", {"d_model": 8, "d_state": 0}, "d_state: got 0"),
    ("mixture", {"d_model": 8, "block_size": 0}, "block_size: got 0"),
    ("random_fixed", {"d_model": 8, "seed": -3}, "seed: got -3"),
    ("rwkv", {"d_model": 8, "eps": 0.0}, "eps: got 0.0"),
])
def test_bad_constructor_arguments_name_the_argument(name, options, field):
    with pytest.raises(CanvasError, match=field.replace("(", r"\(")):
        create_attention(name, **options)


def test_unknown_option_names_the_type():
    with pytest.raises(TypeError, match="create_attention\\('pooling'\\).*n_latents"):
        create_attention("pooling", d_model=8, n_latents=3)


def test_bad_forward_inputs_name_the_argument():
    m = create_attention("cross_attention", d_model=D, n_heads=H)
    x = torch.randn(2, 5, D)
    with pytest.raises(CanvasError, match=r"x_q: got \(2, 5, 7\)"):
        m(torch.randn(2, 5, 7), x)
    with pytest.raises(CanvasError, match="x_kv: got"):
        m(x, torch.randn(3, 5, D))
    with pytest.raises(CanvasError, match="kv_mask: got"):
        m(x, x, kv_mask=torch.ones(2, 5))  # float, not bool
    with pytest.raises(CanvasError, match="kv_mask: got"):
        m(x, x, kv_mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(CanvasError, match="q_coords: got"):
        m(x, x, q_coords=torch.zeros(4, 3, dtype=torch.long))
    with pytest.raises(CanvasError, match="kv_coords: got"):
        m(x, x, kv_coords=torch.zeros(5, 3))  # float coordinates
    with pytest.raises(CanvasError, match="beta: got nan"):
        m(x, x, beta=float("nan"))
    with pytest.raises(CanvasError, match="q_coords has 2 axes but kv_coords has 3"):
        m(x, x, q_coords=torch.zeros(5, 2, dtype=torch.long), kv_coords=grid(1, 1, 5))
    local = create_attention("local_attention", d_model=D, n_heads=H)
    with pytest.raises(CanvasError, match="q_coords or kv_coords None"):
        local(x, x)
    with pytest.raises(CanvasError, match="two real keys share a coordinate"):
        local(x, x, q_coords=grid(1, 1, 5), kv_coords=torch.zeros(5, 3, dtype=torch.long))
    with pytest.raises(CanvasError, match="window: got"):
        create_attention("local_attention", d_model=D, window=(1, 1))(
            x, x, q_coords=grid(1, 1, 5), kv_coords=grid(1, 1, 5))
    rwkv = create_attention("rwkv", d_model=D, n_heads=H)
    with pytest.raises(CanvasError, match="time \\(axis 0\\) decreases"):
        rwkv(x, x, q_coords=grid(5, 1, 1), kv_coords=grid(5, 1, 1).flip(0))
