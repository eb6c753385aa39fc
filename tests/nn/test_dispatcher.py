"""AttentionDispatcher against references written here: one masked SDPA for dense topologies, a
per-query loop over `frame_edges` weights for random ones, direct module calls for other types."""

from __future__ import annotations

import math
import random

import pytest
import torch
import torch.nn.functional as F

from canvas_engineering import AttentionDispatcher
from canvas_engineering.lowering.frame_edges import frame_edges
from canvas_engineering.spec.connection import Connection, TemporalFill
from canvas_engineering.spec.layout import CanvasLayout, RegionSpec
from canvas_engineering.spec.topology import CanvasTopology

D, H = 16, 2


def small_layout(periods=(1, 1, 1)) -> CanvasLayout:
    """T=4, 4×4 canvas, three regions (a, b, c) that leave some positions empty."""
    return CanvasLayout(T=4, H=4, W=4, d_model=D, regions={
        "a": RegionSpec((0, 4, 0, 2, 0, 2), period=periods[0]),
        "b": RegionSpec((0, 4, 2, 3, 0, 4), period=periods[1]),
        "c": RegionSpec((1, 4, 3, 4, 0, 2), period=periods[2]),
    })


def reference_softmax(module, x, weight, beta=1.0):
    """Softmax attention of every query over keys with weight[i, j] > 0, bias log weight.

    weight (N, N); projections from `module`; rows without keys are zero."""
    q, k, v = module.project(x, x)  # (B, h, N, d)
    mask = torch.where(weight > 0, weight.log(), torch.tensor(-math.inf))
    has_key = (weight > 0).any(1)
    safe = torch.where(has_key[:, None], mask, torch.zeros(()))
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=safe,
                                       scale=beta / math.sqrt(module.d_head))
    o = module.out_proj(o.transpose(1, 2).reshape(x.shape))
    return o * has_key[None, :, None]


def positions(layout, name, frame=None):
    """Flat positions of a region (at one canvas frame) and their frames."""
    idx = layout.region_index_tensor(name)
    spec = layout.regions[name]
    frames = torch.arange(spec.frames.start, spec.frames.stop).repeat_interleave(
        spec.num_positions // len(spec.frames))
    return idx if frame is None else idx[frames == frame]


@pytest.mark.parametrize("beta", [1.0, 2.5])
@pytest.mark.parametrize("weighted", [False, True])
def test_dense_cross_attention_is_one_masked_sdpa(beta, weighted):
    torch.manual_seed(0)
    layout = small_layout()
    topo = CanvasTopology.dense(layout)
    if weighted:
        topo = CanvasTopology([Connection(c.src, c.dst, weight=0.5 + i)
                               for i, c in enumerate(topo.connections)])
    disp = AttentionDispatcher(topo, layout, D, H)
    x = torch.randn(2, layout.num_positions, D)
    ref = reference_softmax(disp.attn["cross_attention"], x, topo.to_attention_mask(layout), beta)
    # the reference reads the mask the issue names: additive log weights, -inf elsewhere
    add = topo.to_additive_mask(layout)
    assert torch.equal(torch.isfinite(add), topo.to_attention_mask(layout) > 0)
    torch.testing.assert_close(disp(x, beta=beta), ref, atol=1e-5, rtol=1e-5)
    if not weighted:  # a dense topology collapses to one SDPA call without a mask
        (bucket,) = disp.plans["cross_attention"]
        assert bucket.q_idx.shape[0] == 1 and bucket.key_bias is None


def random_topology(seed: int) -> tuple[CanvasLayout, CanvasTopology]:
    rng = random.Random(seed)
    layout = small_layout(periods=(rng.choice([1, 2]), rng.choice([2, 3]), rng.choice([1, 2])))
    conns = []
    for _ in range(rng.randint(3, 7)):
        fill = rng.choice(list(TemporalFill))
        conns.append(Connection(
            rng.choice("abc"), rng.choice("abc"), weight=rng.choice([0.5, 1.0, 2.0]),
            t_src=rng.choice([None, 0, 1]), t_dst=rng.choice([None, 0, -1, 1, -2]),
            temporal_fill=fill,
            interpolation_order=rng.choice([1, 2]) if fill is TemporalFill.INTERPOLATE else 1))
    return layout, CanvasTopology(conns)


def brute_force_weight(layout, topo) -> torch.Tensor:
    """(N, N) max connection weight × fill weight, looping over queries and frame edges."""
    N = layout.num_positions
    w = torch.zeros(N, N)
    for conn in topo.connections:
        fe = frame_edges(conn, layout)
        for s, d, fw in zip(fe.src_frame, fe.dst_frame, fe.weight):
            for i in positions(layout, conn.src, s).tolist():  # one query at a time
                keys = positions(layout, conn.dst, d)
                w[i, keys] = torch.maximum(w[i, keys], torch.tensor(conn.weight * fw))
    return w


def per_query_reference(module, x, weight):
    """Loop over queries: softmax over the keys with weight > 0, bias log weight."""
    q, k, v = module.project(x, x)  # (B, h, N, d)
    out = torch.zeros_like(x)
    for i in range(x.shape[1]):
        keys = torch.nonzero(weight[i] > 0).squeeze(1)
        if len(keys) == 0:
            continue
        logits = q[:, :, i:i + 1] @ k[:, :, keys].transpose(-1, -2) / math.sqrt(module.d_head)
        p = torch.softmax(logits + weight[i, keys].log(), dim=-1)  # (B, h, 1, n)
        out[:, i] = module.out_proj((p @ v[:, :, keys]).reshape(x.shape[0], -1))
    return out


SEEDS = range(8)


def test_random_topologies_cover_offsets_periods_and_fills():
    weights, fills, offsets = set(), set(), set()
    for seed in SEEDS:
        layout, topo = random_topology(seed)
        for c in topo.connections:
            weights |= set(frame_edges(c, layout).weight)
            fills.add(c.temporal_fill)
            offsets.add((c.t_src, c.t_dst))
    assert any(0 < w < 1 for w in weights) and fills == set(TemporalFill)
    assert len(offsets) > 5


@pytest.mark.parametrize("seed", SEEDS)
def test_random_topology_matches_per_query_reference(seed):
    torch.manual_seed(seed)
    layout, topo = random_topology(seed)
    disp = AttentionDispatcher(topo, layout, D, H)
    x = torch.randn(2, layout.num_positions, D)
    weight = brute_force_weight(layout, topo)
    ref = per_query_reference(disp.attn["cross_attention"], x, weight)
    torch.testing.assert_close(disp(x), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
@pytest.mark.parametrize("seed", [0, 3])
def test_flex_forward_matches_sdpa_path(seed):
    torch.manual_seed(seed)
    layout, topo = random_topology(seed)
    disp = AttentionDispatcher(topo, layout, D, H)
    x = torch.randn(2, layout.num_positions, D)
    expected = disp(x)
    disp.backend = "flex"  # eager FlexAttention forward runs on CPU
    with torch.no_grad():
        torch.testing.assert_close(disp(x), expected, atol=1e-5, rtol=1e-5)


def test_other_types_mix_per_call_by_normalised_weight():
    torch.manual_seed(0)
    layout = small_layout()
    topo = CanvasTopology([
        Connection("a", "b", weight=2.0, fn="pooling"),
        Connection("a", "c", weight=1.0, fn="pooling"),
        Connection("b", "a", t_src=0, t_dst=-1, fn="linear_attention"),
    ])
    disp = AttentionDispatcher(topo, layout, D, H)
    x = torch.randn(2, layout.num_positions, D)
    coords = disp.coords
    pool, lin = disp.attn["pooling"], disp.attn["linear_attention"]

    def call(m, q, k):
        return m(x[:, q], x[:, k], q_coords=coords[q], kv_coords=coords[k])

    ref = torch.zeros_like(x)
    a, b, c = (positions(layout, n) for n in "abc")
    ref[:, a] = (2.0 * call(pool, a, b) + 1.0 * call(pool, a, c)) / 3.0
    for t in range(1, 4):  # linear_attention: frame t of b reads frame t-1 of a
        q = positions(layout, "b", t)
        ref[:, q] = call(lin, q, positions(layout, "a", t - 1))
    torch.testing.assert_close(disp(x), ref, atol=1e-5, rtol=1e-5)


def test_interpolated_frames_are_separate_calls_blended_by_fill_weight():
    torch.manual_seed(0)
    layout = small_layout(periods=(1, 3, 1))  # b updates at real times 0 and 3
    topo = CanvasTopology([Connection("a", "b", t_src=0, t_dst=0, fn="pooling",
                                      temporal_fill="interpolate")])
    disp = AttentionDispatcher(topo, layout, D, H)
    x = torch.randn(1, layout.num_positions, D)
    pool = disp.attn["pooling"]
    fe = frame_edges(topo.connections[0], layout)
    ref = torch.zeros_like(x)
    for t in range(4):
        q = positions(layout, "a", t)
        pairs = [(d, w) for s, d, w in zip(fe.src_frame, fe.dst_frame, fe.weight) if s == t]
        total = sum(w for _, w in pairs)
        for d, w in pairs:
            ref[:, q] += w / total * pool(x[:, q], x[:, positions(layout, "b", d)])
    assert any(0 < w < 1 for w in fe.weight)  # the case actually interpolates
    torch.testing.assert_close(disp(x), ref, atol=1e-5, rtol=1e-5)


def test_per_edge_softmax_modules_mix_by_connection_weight():
    torch.manual_seed(0)
    layout = small_layout()
    topo = CanvasTopology([Connection("a", "a", weight=1.0), Connection("a", "b", weight=3.0)])
    disp = AttentionDispatcher(topo, layout, D, H, share_params=False)
    assert sorted(disp.attn) == ["e0_cross_attention", "e1_cross_attention"]
    assert disp.attn["e0_cross_attention"] is not disp.attn["e1_cross_attention"]
    x = torch.randn(2, layout.num_positions, D)
    a, b = positions(layout, "a"), positions(layout, "b")
    ref = torch.zeros_like(x)
    ref[:, a] = (disp.attn["e0_cross_attention"](x[:, a], x[:, a])
                 + 3.0 * disp.attn["e1_cross_attention"](x[:, a], x[:, b])) / 4.0
    torch.testing.assert_close(disp(x), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fn", ["cross_attention", "linear_attention", "rwkv"])
def test_causal_temporal_reads_previous_frame_and_never_the_future(fn):
    torch.manual_seed(0)
    layout = small_layout()
    topo = CanvasTopology([Connection(c.src, c.dst, t_src=c.t_src, t_dst=c.t_dst, fn=fn)
                           for c in CanvasTopology.causal_temporal(["a", "b"]).connections])
    disp = AttentionDispatcher(topo, layout, D, H)
    x = torch.randn(1, layout.num_positions, D, requires_grad=True)
    t = 2
    out = disp(x)
    q = positions(layout, "a", t)
    (grad,) = torch.autograd.grad(out[:, q].sum(), x)
    for name in "ab":
        assert grad[0, positions(layout, name, t - 1)].abs().sum() > 0  # previous-frame edge acts
        assert grad[0, positions(layout, name, t + 1)].abs().sum() == 0  # future: exactly zero
    assert grad[0, positions(layout, "a", t)].abs().sum() > 0  # same-frame edge acts
    assert grad[0, positions(layout, "b", t)].abs().sum() == 0  # no same-frame edge a → b
    # changing the previous frame changes the output; changing a future frame does not
    with torch.no_grad():
        base = disp(x)[:, q]
        for frame, changes in ((t - 1, True), (t + 1, False)):
            x2 = x.clone()
            x2[:, positions(layout, "a", frame)] += 1.0
            assert (not torch.equal(disp(x2)[:, q], base)) == changes


def test_positions_without_incoming_edges_get_zero_and_none_adds_nothing():
    torch.manual_seed(0)
    layout = small_layout()
    base = [Connection("a", "a")]
    disp = AttentionDispatcher(CanvasTopology(base), layout, D, H)
    with_none = AttentionDispatcher(CanvasTopology(base + [Connection("a", "b", fn="none")]),
                                    layout, D, H)
    with_none.load_state_dict(disp.state_dict())
    x = torch.randn(2, layout.num_positions, D)
    out = disp(x)
    outside = torch.ones(layout.num_positions, dtype=torch.bool)
    outside[positions(layout, "a")] = False
    assert torch.equal(out[:, outside], torch.zeros_like(out[:, outside]))
    assert torch.equal(with_none(x), out)


def test_fresh_gated_edge_leaves_output_unchanged():
    torch.manual_seed(0)
    layout = small_layout()
    base = [Connection("a", "a"), Connection("b", "a")]
    disp = AttentionDispatcher(CanvasTopology(base), layout, D, H)
    gated = AttentionDispatcher(CanvasTopology(base + [Connection("a", "c", fn="gated")]),
                                layout, D, H)
    gated.attn["cross_attention"].load_state_dict(disp.attn["cross_attention"].state_dict())
    x = torch.randn(2, layout.num_positions, D)
    assert torch.equal(gated(x), disp(x))


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
@pytest.mark.parametrize("fn", ["cosine_attention", "cogvideox", "self_attention"])
def test_fused_softmax_kinds_equal_the_module_called_directly(fn):
    torch.manual_seed(0)
    layout = small_layout()
    topo = CanvasTopology([Connection("a", "b", fn=fn), Connection("c", "a", fn=fn)])
    disp = AttentionDispatcher(topo, layout, D, H)
    m = disp.attn[fn]
    x = torch.randn(2, layout.num_positions, D)
    a, b, c = (positions(layout, n) for n in "abc")
    ref = torch.zeros_like(x)
    ref[:, a] = m(x[:, a], x[:, b], beta=1.7)
    ref[:, c] = m(x[:, c], x[:, a], beta=1.7)
    torch.testing.assert_close(disp(x, beta=1.7), ref, atol=1e-5, rtol=1e-5)
    disp.backend = "flex"
    with torch.no_grad():  # the FlexAttention path (eager forward on CPU) agrees
        torch.testing.assert_close(disp(x, beta=1.7), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
@pytest.mark.parametrize("seed", [0, 1, 5])
@pytest.mark.parametrize("backend", ["sdpa", "flex"])
def test_part_of_the_canvas_gives_the_whole_canvas_output_there(seed, backend):
    # Random topologies (pooling, copy and softmax units, offsets, periods): run on the region
    # positions only, the layer must give what it gives on the whole canvas at those positions.
    torch.manual_seed(seed)
    layout, topo = random_topology(seed)
    topo = CanvasTopology([*topo.connections, Connection("a", "b", fn="pooling"),
                           Connection("b", "b", t_src=0, t_dst=-1, fn="copy")])
    held = torch.zeros(layout.num_positions, dtype=torch.bool)
    for name in layout.region_names:
        held[layout.region_index_tensor(name)] = True
    held = held.nonzero().flatten()
    assert len(held) < layout.num_positions  # the layouts leave positions empty
    whole = AttentionDispatcher(topo, layout, D, H, backend=backend)
    part = AttentionDispatcher(topo, layout, D, H, backend=backend, positions=held)
    part.load_state_dict(whole.state_dict())
    x = torch.randn(2, layout.num_positions, D)
    with torch.no_grad():
        torch.testing.assert_close(part(x[:, held]), whole(x)[:, held], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match=rf"x.*\(B, {len(held)}, {D}\)"):
        part(x)


def test_part_of_the_canvas_must_hold_every_position_an_edge_touches():
    layout = small_layout()
    topo = CanvasTopology([Connection("a", "b")])
    only_a = layout.region_index_tensor("a").sort().values
    with pytest.raises(ValueError, match=r"positions.*every position the topology reads or "
                                         r"writes.*\[8, 9"):
        AttentionDispatcher(topo, layout, D, H, positions=only_a)
    for bad_positions in (torch.tensor([3, 2]), torch.tensor([0.0, 1.0]), torch.tensor([64])):
        with pytest.raises(ValueError, match="positions.*strictly increasing"):
            AttentionDispatcher(topo, layout, D, H, positions=bad_positions)
