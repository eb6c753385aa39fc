"""Fast paths of the attention types against simple references written here: explicit formulas,
per-step recurrences, dense masks and loops."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from canvas_engineering.attention import create_attention, selective_scan
from canvas_engineering.attention import mamba as mamba_mod
from canvas_engineering.attention._scan import linear_scan
from canvas_engineering.attention.hyena import fft_causal_conv

D, H = 16, 2
dh = D // H
gen = torch.Generator().manual_seed(0)


def rand(*shape):
    return torch.randn(*shape, generator=gen)


def grid(t, h, w, t0=0, h0=0, w0=0):
    return torch.tensor(list(itertools.product(range(t0, t0 + t), range(h0, h0 + h),
                                               range(w0, w0 + w))))


def heads(m, x_q, x_kv):
    """q, k, v (B, h, N, d) from a QKV module's projections."""
    q, k, v = m.project(x_q, x_kv)
    return q, k, v


def test_cross_attention_is_softmax_with_beta_and_mask():
    m = create_attention("cross_attention", d_model=D, n_heads=H)
    x_q, x_kv = rand(2, 5, D), rand(2, 7, D)
    mask = torch.rand(2, 7, generator=gen) > 0.3
    mask[:, 0] = True
    q, k, v = heads(m, x_q, x_kv)
    logits = 2.5 * q @ k.transpose(-1, -2) / math.sqrt(dh)
    logits = logits.masked_fill(~mask[:, None, None], -math.inf)
    ref = m.out_proj((logits.softmax(-1) @ v).transpose(1, 2).reshape(2, 5, D))
    torch.testing.assert_close(m(x_q, x_kv, kv_mask=mask, beta=2.5), ref)


def test_linear_attention_matches_quadratic_form():
    m = create_attention("linear_attention", d_model=D, n_heads=H)
    x_q, x_kv = rand(2, 5, D), rand(2, 9, D)
    q, k, v = heads(m, x_q, x_kv)
    fq, fk = F.elu(q) + 1, F.elu(k) + 1
    sim = fq @ fk.transpose(-1, -2)  # (B, h, Nq, Nk), explicit pairwise kernel
    o = (sim @ v) / (sim.sum(-1, keepdim=True) + m.eps)
    ref = m.out_proj(o.transpose(1, 2).reshape(2, 5, D))
    torch.testing.assert_close(m(x_q, x_kv), ref)


def test_cosine_and_sigmoid_attention_formulas():
    x_q, x_kv = rand(1, 4, D), rand(1, 6, D)
    m = create_attention("cosine_attention", d_model=D, n_heads=H)
    q, k, v = heads(m, x_q, x_kv)
    cos = F.cosine_similarity(q[..., :, None, :], k[..., None, :, :], dim=-1)
    o = (2.0 * m.scale * cos).softmax(-1) @ v
    torch.testing.assert_close(m(x_q, x_kv, beta=2.0),
                               m.out_proj(o.transpose(1, 2).reshape(1, 4, D)))
    m = create_attention("sigmoid_attention", d_model=D, n_heads=H)
    q, k, v = heads(m, x_q, x_kv)
    w = torch.sigmoid(q @ k.transpose(-1, -2) / math.sqrt(dh) - math.log(6))
    torch.testing.assert_close(m(x_q, x_kv), m.out_proj((w @ v).transpose(1, 2).reshape(1, 4, D)))


def test_gated_is_exactly_zero_at_init_and_learns_to_open():
    m = create_attention("gated", d_model=D, n_heads=H)
    x_q, x_kv = rand(2, 5, D), rand(2, 7, D)
    out = m(x_q, x_kv)
    assert torch.equal(out, torch.zeros_like(out))
    (out * rand(2, 5, D)).sum().backward()
    assert m.alpha.grad.abs().sum() > 0  # the gate gets gradient while closed


def test_sparse_attention_keeps_only_top_k_logits():
    m = create_attention("sparse_attention", d_model=D, n_heads=H, top_k=3)
    x_q, x_kv = rand(2, 5, D), rand(2, 8, D)
    q, k, v = heads(m, x_q, x_kv)
    logits = q @ k.transpose(-1, -2) / math.sqrt(dh)
    kth = logits.sort(-1, descending=True).values[..., 2:3]  # third largest per row
    kept = logits.masked_fill(logits < kth, -math.inf)
    ref = m.out_proj((kept.softmax(-1) @ v).transpose(1, 2).reshape(2, 5, D))
    torch.testing.assert_close(m(x_q, x_kv), ref)


@pytest.mark.parametrize("window", [1, (0, 1, 2), (2, 0, 1)])
def test_local_attention_matches_dense_masked_reference(window):
    m = create_attention("local_attention", d_model=D, n_heads=H, window=window)
    kc = grid(3, 4, 5)
    keep = torch.rand(len(kc), generator=gen) > 0.3  # keys: a non-box subset of the grid
    kc = kc[keep]
    qc = grid(2, 3, 4, t0=1, h0=1, w0=2)  # queries overlap the keys' box and stick out
    x_q, x_kv = rand(2, len(qc), D), rand(2, len(kc), D)
    w = torch.tensor(window if isinstance(window, tuple) else (window,) * 3)
    near = ((qc[:, None, :] - kc[None, :, :]).abs() <= w).all(-1)  # (Nq, Nk) dense mask
    q, k, v = heads(m, x_q, x_kv)
    logits = (q @ k.transpose(-1, -2) / math.sqrt(dh)).masked_fill(~near, -math.inf)
    o = torch.nan_to_num(logits.softmax(-1)) @ v  # no key in the window: zeros
    ref = m.out_proj(o.transpose(1, 2).reshape(2, len(qc), D))
    torch.testing.assert_close(m(x_q, x_kv, q_coords=qc, kv_coords=kc), ref)


def test_linear_scan_matches_loop():
    a, b = torch.rand(2, 29, 3, generator=gen), rand(2, 29, 3)
    h, ref = torch.zeros(2, 3), []
    for t in range(29):
        h = a[:, t] * h + b[:, t]
        ref.append(h)
    for chunk in (1, 4, 8, 64):
        torch.testing.assert_close(linear_scan(a, b, chunk), torch.stack(ref, 1))


def naive_selective_scan(u, delta, A, Bm, Cm, Dv):
    """The S6 recurrence one step at a time (Gu & Dao, 2023, Algorithm 2)."""
    b, length, e = u.shape
    h, ys = torch.zeros(b, e, A.shape[1]), []
    for t in range(length):
        h = torch.exp(delta[:, t, :, None] * A) * h \
            + (delta[:, t] * u[:, t])[..., None] * Bm[:, t, None, :]
        ys.append((h * Cm[:, t, None, :]).sum(-1) + Dv * u[:, t])
    return torch.stack(ys, 1), h


def test_mamba_chunked_scan_matches_per_step_recurrence():
    b, length, e, s = 2, 13, 6, 4
    u, Bm, Cm = rand(b, length, e), rand(b, length, s), rand(b, length, s)
    delta = F.softplus(rand(b, length, e))
    A, Dv = -torch.rand(e, s, generator=gen) * 3, rand(e)
    y_ref, h_ref = naive_selective_scan(u, delta, A, Bm, Cm, Dv)
    for chunk in (4, 5, 32):
        y, h = selective_scan(u, delta, A, Bm, Cm, Dv, chunk=chunk, backend="torch")
        torch.testing.assert_close(y, y_ref)
        torch.testing.assert_close(h, h_ref)


def test_mamba_closed_form_last_state_matches_recurrence():
    b, length, e, s = 2, 17, 5, 3
    u, Bm, Cm = rand(b, length, e), rand(b, length, s), rand(b, length, s)
    delta = F.softplus(rand(b, length, e))
    A = -torch.rand(e, s, generator=gen) * 3
    _, h_ref = naive_selective_scan(u, delta, A, Bm, Cm, torch.zeros(e))
    torch.testing.assert_close(mamba_mod.selective_last_state(u, delta, A, Bm), h_ref)


def test_mamba_module_chunk_size_does_not_change_output():
    x_q, x_kv = rand(2, 5, D), rand(2, 23, D)
    for readout in ("attention", "state"):
        torch.manual_seed(3)
        a = create_attention("mamba", d_model=D, n_heads=H, readout=readout, chunk=4)
        b = create_attention("mamba", d_model=D, n_heads=H, readout=readout, chunk=64)
        b.load_state_dict(a.state_dict())
        torch.testing.assert_close(a(x_q, x_kv), b(x_q, x_kv))


@pytest.mark.skipif(not (torch.cuda.is_available() and mamba_mod._cuda_scan is not None
                         and mamba_mod._cuda_conv is not None),
                    reason="mamba-ssm / causal-conv1d CUDA kernels not available")
def test_mamba_cuda_kernels_match_torch_path():  # pragma: no cover - needs CUDA kernels
    torch.manual_seed(0)
    a = create_attention("mamba", d_model=D, n_heads=H, backend="torch").cuda()
    b = create_attention("mamba", d_model=D, n_heads=H, backend="cuda").cuda()
    b.load_state_dict(a.state_dict())
    x_q, x_kv = rand(2, 5, D).cuda(), rand(2, 40, D).cuda()
    torch.testing.assert_close(a(x_q, x_kv), b(x_q, x_kv), atol=1e-4, rtol=1e-3)


def rwkv_reference(m, x_q, x_kv, p):
    """Step through the keys building S_t = exp(-w) ⊙ S_{t-1} + φ(k_t) [v_t, 1]ᵀ; query i reads
    the state after key p_i - 1 (zero state when p_i = 0)."""
    b, nq, _ = x_q.shape
    k, v = m.kv_proj(x_kv).chunk(2, -1)
    k = F.elu(k.view(b, -1, H, dh)) + 1
    v = torch.cat([v.view(b, -1, H, dh), torch.ones(b, v.shape[1], H, 1)], -1)
    r = F.elu(m.r_proj(x_q).view(b, nq, H, dh)) + 1
    lam = torch.exp(-torch.exp(m.w_log))  # (h, d)
    S = torch.zeros(b, H, dh, dh + 1)
    states = [S]
    for t in range(x_kv.shape[1]):
        S = lam[..., None] * S + k[:, t, :, :, None] * v[:, t, :, None, :]
        states.append(S)
    states = torch.stack(states, 1)  # (B, L+1, h, d, d+1); index = keys read
    read = states[torch.arange(b)[:, None], p]  # (B, Nq, h, d, d+1)
    o = torch.einsum("bqhd,bqhde->bqhe", r, read)
    o = o[..., :dh] / (o[..., dh:] + m.eps)
    return m.out_proj(torch.sigmoid(m.g_proj(x_q)) * o.reshape(b, nq, D))


def test_rwkv_chunked_matches_naive_recurrence():
    torch.manual_seed(1)
    m = create_attention("rwkv", d_model=D, n_heads=H, chunk=4)
    x = rand(2, 13, D)
    # causal, aligned (Nq == Nk, no coordinates): query i reads keys 0..i
    p = torch.arange(1, 14).expand(2, -1)
    torch.testing.assert_close(m(x, x), rwkv_reference(m, x, x, p))
    # not causal: every query reads all keys
    m.causal = False
    x_q = rand(2, 5, D)
    torch.testing.assert_close(m(x_q, x), rwkv_reference(m, x_q, x, torch.full((2, 5), 13)))
    # causal by time coordinate: query at time t reads keys with time <= t
    m.causal = True
    kc, qc = grid(3, 2, 3), grid(4, 1, 2, t0=-1)  # key times 0..2, query times -1..2
    x_kv, x_q = rand(2, len(kc), D), rand(2, len(qc), D)
    p = (kc[None, :, 0] <= qc[:, None, 0]).sum(1).expand(2, -1)
    torch.testing.assert_close(m(x_q, x_kv, q_coords=qc, kv_coords=kc),
                               rwkv_reference(m, x_q, x_kv, p))


@pytest.mark.parametrize("name", ["rwkv", "hyena"])
def test_causal_types_do_not_read_future_frames(name):
    """Gradient of a query at time t w.r.t. keys at later times is zero: exactly for rwkv; for
    hyena up to FFT round-off (the convolution is causal, the FFT mixes rounding errors)."""
    kc, qc = grid(3, 2, 2), grid(3, 1, 1)
    m = create_attention(name, d_model=D, n_heads=H)
    x_kv = rand(1, len(kc), D).requires_grad_()
    out = m(rand(1, len(qc), D), x_kv, q_coords=qc, kv_coords=kc)
    out[0, 1].sum().backward()  # the query at time 1
    g = x_kv.grad[0].abs().sum(-1)
    past, future = g[kc[:, 0] <= 1], g[kc[:, 0] == 2]
    assert (past > 0).all()
    if name == "rwkv":
        assert (future == 0).all()
    else:
        assert (future <= 1e-6 * past.max()).all()


def test_fft_causal_conv_matches_direct_sum():
    x, filt = rand(2, 11, 3), rand(11, 3)
    ref = torch.stack([sum(filt[t - s] * x[:, s] for s in range(t + 1)) for t in range(11)], 1)
    torch.testing.assert_close(fft_causal_conv(x, filt), ref, atol=1e-5, rtol=1e-4)


def test_copy_transfers_without_parameters():
    m = create_attention("copy", d_model=D, n_heads=H)
    assert not list(m.parameters())
    x = rand(2, 12, D)
    assert torch.equal(m(rand(2, 12, D), x), x)  # same size: position by position
    # same-shaped regions anywhere on the canvas (previous frame, other agent): aligned
    out = m(rand(2, 12, D), x, q_coords=grid(1, 3, 4, t0=5, h0=4), kv_coords=grid(1, 3, 4))
    assert torch.equal(out, x)
    # different sizes, no coordinates: query i copies key floor(i · Nk / Nq)
    out = m(rand(2, 5, D), x)
    assert torch.equal(out, x[:, [0, 2, 4, 7, 9]])


def test_copy_between_grids_is_nearest_resampling():
    m = create_attention("copy", d_model=D, n_heads=H)
    vol = rand(1, D, 2, 4, 6)  # keys: a (2, 4, 6) grid, channels first
    x_kv = vol.flatten(2).transpose(1, 2)  # (1, 48, D) t-major
    ref = F.interpolate(vol, size=(1, 2, 3), mode="nearest").flatten(2).transpose(1, 2)
    out = m(rand(1, 6, D), x_kv, q_coords=grid(1, 2, 3, t0=3, h0=7, w0=1),
            kv_coords=grid(2, 4, 6, h0=2))
    assert torch.equal(out, ref)


def test_pooling_is_projected_mean():
    m = create_attention("pooling", d_model=D, n_heads=H)
    x_kv = rand(2, 7, D)
    out = m(rand(2, 3, D), x_kv)
    torch.testing.assert_close(out, m.proj(x_kv.mean(1, keepdim=True)).expand(-1, 3, -1))


def test_random_fixed_pattern_is_frozen_and_matches_reference():
    m = create_attention("random_fixed", d_model=D, n_heads=H, k=3)
    x_q, x_kv = rand(2, 6, D), rand(2, 10, D)
    rank, valid = m.pattern(6, torch.tensor([10, 10]))
    assert valid.all() and (rank[..., 1:] > rank[..., :-1]).all()  # 3 distinct keys a query
    assert torch.equal(m.pattern(3, torch.tensor([10]))[0][0], rank[0, :3])  # row i is stable
    dense = torch.zeros(2, 6, 10, dtype=torch.bool).scatter(-1, rank, True)
    q, k, v = heads(m, x_q, x_kv)
    logits = (q @ k.transpose(-1, -2) / math.sqrt(dh)).masked_fill(~dense[:, None], -math.inf)
    ref = m.out_proj((logits.softmax(-1) @ v).transpose(1, 2).reshape(2, 6, D))
    torch.testing.assert_close(m(x_q, x_kv), ref)
    clone = create_attention("random_fixed", d_model=D, n_heads=H, k=3)
    clone.load_state_dict(m.state_dict())  # the pattern's seed travels in the state dict
    torch.testing.assert_close(clone(x_q, x_kv), m(x_q, x_kv))
    assert not any(p.requires_grad for p in m.buffers())


def test_mixture_matches_per_query_routing_loop():
    m = create_attention("mixture", d_model=D, n_heads=H, block_size=3, top_r=2)
    x_q, x_kv = rand(1, 4, D), rand(1, 10, D)  # blocks of 3, 3, 3, 1 keys
    q, k, v = heads(m, x_q, x_kv)
    blocks = [range(3), range(3, 6), range(6, 9), range(9, 10)]
    o = torch.zeros(1, H, 4, dh)
    for hh, i in itertools.product(range(H), range(4)):
        qi = q[0, hh, i] / math.sqrt(dh)
        score = torch.stack([qi @ k[0, hh, list(bl)].mean(0) for bl in blocks])
        top = score.topk(2)
        for g, bi in zip(top.values.softmax(0), top.indices.tolist()):
            keys = list(blocks[bi])
            o[0, hh, i] += g * ((k[0, hh, keys] @ qi).softmax(0) @ v[0, hh, keys])
    ref = m.out_proj(o.transpose(1, 2).reshape(1, 4, D))
    torch.testing.assert_close(m(x_q, x_kv), ref)
