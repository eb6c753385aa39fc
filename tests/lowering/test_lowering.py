"""The dense, boolean, additive, index-pair and block-sparse lowerings against a brute-force
reference that loops over position pairs (tests/_reference.py)."""

import math

import pytest
import torch
from helpers.reference_lowering import reference_mask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canvas_engineering import CanvasLayout, CanvasTopology, Connection, RegionSpec, TemporalFill
from canvas_engineering.lowering.frame_edges import frame_edges
from canvas_engineering.lowering.masks import lower


def block_mask_to_dense(bm, n):
    """Expand a BlockMask to (n, n) bool: full blocks True, partial blocks via mask_mod."""
    bs_q, bs_k = bm.BLOCK_SIZE
    out = torch.zeros(bm.kv_num_blocks.shape[-1] * bs_q, bm.kv_indices.shape[-1] * bs_k,
                      dtype=torch.bool)
    for nums, idx, full in ((bm.kv_num_blocks, bm.kv_indices, False),
                            (bm.full_kv_num_blocks, bm.full_kv_indices, True)):
        for qb in range(nums.shape[-1]):
            for kb in idx[0, 0, qb, : nums[0, 0, qb]].tolist():
                q = torch.arange(qb * bs_q, (qb + 1) * bs_q)
                k = torch.arange(kb * bs_k, (kb + 1) * bs_k)
                block = torch.ones(bs_q, bs_k, dtype=torch.bool) if full else \
                    bm.mask_mod(0, 0, q[:, None], k[None, :])
                out[q[0]: q[-1] + 1, k[0]: k[-1] + 1] = block
    return out[:n, :n]


@st.composite
def canvases(draw):
    T = draw(st.integers(1, 6))
    H = draw(st.integers(1, 2))
    W = draw(st.integers(1, 3))
    regions = {}
    for r in range(draw(st.integers(1, 3))):
        t0 = draw(st.integers(0, T - 1))
        h0 = draw(st.integers(0, H - 1))
        w0 = draw(st.integers(0, W - 1))
        bounds = (t0, draw(st.integers(t0 + 1, T)), h0, draw(st.integers(h0 + 1, H)),
                  w0, draw(st.integers(w0 + 1, W)))
        regions[f"r{r}"] = RegionSpec(bounds=bounds, period=draw(st.sampled_from([1, 2, 2, 3])))
    try:
        layout = CanvasLayout(T=T, H=H, W=W, regions=regions)
    except ValueError:  # overlapping boxes: exercise the opt-in overlap path as well
        layout = CanvasLayout(T=T, H=H, W=W, regions=regions, allow_overlap=True)
    names = list(regions)
    offsets = st.sampled_from([None, 0, 0, -1, -1, 1, -2])
    conns = []
    for _ in range(draw(st.integers(1, 6))):
        fill = draw(st.sampled_from(list(TemporalFill)))
        conns.append(Connection(
            src=draw(st.sampled_from(names)), dst=draw(st.sampled_from(names)),
            weight=draw(st.sampled_from([0.5, 1.0, 2.0])),
            t_src=draw(offsets), t_dst=draw(offsets), temporal_fill=fill,
            interpolation_order=draw(st.integers(1, 3)) if fill is TemporalFill.INTERPOLATE else 1))
    return layout, CanvasTopology(connections=conns)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(canvases())
def test_every_lowering_matches_brute_force(case):
    layout, topology = case
    N = layout.num_positions
    ref = reference_mask(topology, layout).float()
    low = lower(topology, layout)

    assert torch.allclose(low.dense_mask(), ref, atol=1e-6)
    assert torch.equal(low.bool_mask(), ref > 0)
    add = low.additive_mask()
    assert torch.equal(torch.isinf(add), ref == 0)
    assert torch.allclose(add[ref > 0], ref[ref > 0].log(), atol=1e-6)

    q, k, w = low.index_pairs()
    expected = torch.nonzero(ref > 0)  # row-major: sorted by (q, k)
    assert torch.equal(torch.stack([q, k], 1), expected)
    assert torch.allclose(w, ref[ref > 0], atol=1e-6)

    assert math.isclose(low.density(), float((ref > 0).double().mean()), abs_tol=1e-9)
    for block in (2, 3):
        bm = low.block_mask(block_size=block)
        assert torch.equal(block_mask_to_dense(bm, N), ref > 0)


@st.composite
def cross_frequency(draw):
    """Two regions at different periods and one connection with frame offsets: the cases where
    HOLD / DROP / INTERPOLATE matter."""
    T = draw(st.integers(3, 8))
    regions = {}
    for name, w in (("fast", 0), ("slow", 1)):
        t0 = draw(st.integers(0, 1))  # long-lived regions, so fills have frames to choose from
        regions[name] = RegionSpec(bounds=(t0, draw(st.integers(T - 1, T)), 0, 1, w, w + 1),
                                   period=draw(st.integers(1, 3)))
    layout = CanvasLayout(T=T, H=1, W=2, regions=regions)
    fill = draw(st.sampled_from(list(TemporalFill)))
    src, dst = draw(st.permutations(["fast", "slow"]))
    conn = Connection(src=src, dst=dst, t_src=draw(st.integers(-1, 1)),
                      t_dst=draw(st.one_of(st.none(), st.integers(-1, 1))), temporal_fill=fill,
                      interpolation_order=draw(st.integers(1, 3)) if fill.name == "INTERPOLATE"
                      else 1)
    return layout, CanvasTopology(connections=[conn])


@settings(max_examples=200, deadline=None)
@given(cross_frequency())
def test_cross_frequency_fill_matches_brute_force(case):
    layout, topology = case
    ref = reference_mask(topology, layout).float()
    assert torch.allclose(topology.to_attention_mask(layout), ref, atol=1e-6)


def small_robot():
    return CanvasLayout(T=5, H=8, W=8, d_model=32, regions={
        "visual": (0, 5, 0, 6, 0, 6), "action": (0, 5, 6, 7, 0, 1), "reward": (2, 3, 7, 8, 0, 1)})


def test_seed_multi_robot_topology_matches_reference():
    layout = CanvasLayout(T=2, H=4, W=4, regions={
        "robot1_cam": (0, 2, 0, 2, 0, 2), "robot1_action": (0, 2, 2, 3, 0, 1),
        "robot2_cam": (0, 2, 0, 2, 2, 4), "robot2_action": (0, 2, 2, 3, 2, 3),
        "shared_task": (0, 1, 3, 4, 0, 4)})
    conns = [Connection(src=n, dst=n) for n in layout.regions] + [
        Connection(src="robot1_action", dst="robot1_cam"),
        Connection(src="robot2_action", dst="robot2_cam"),
        Connection(src="robot1_cam", dst="robot2_cam", weight=0.5),
        Connection(src="robot2_cam", dst="robot1_cam", weight=0.5),
        Connection(src="shared_task", dst="robot1_cam"),
        Connection(src="robot1_action", dst="shared_task", t_src=0, t_dst=-1)]
    topology = CanvasTopology(connections=conns)
    assert torch.allclose(topology.to_attention_mask(layout), reference_mask(topology, layout).float())


def test_mask_value_is_connection_weight_and_orientation_is_src_queries_dst():
    layout = small_robot()
    topo = CanvasTopology([Connection(src="action", dst="visual", weight=0.5)])
    m = topo.to_attention_mask(layout)
    a, v = layout.region_indices("action"), layout.region_indices("visual")
    assert torch.all(m[a][:, v] == 0.5)  # action (query) rows read visual (key) columns
    assert m[v][:, a].abs().sum() == 0
    assert m.sum() == 0.5 * len(a) * len(v)


def test_previous_frame_edge_links_only_the_frame_before():
    layout = small_robot()
    topo = CanvasTopology([Connection(src="action", dst="visual", t_src=0, t_dst=-1)])
    m = topo.to_attention_mask(layout)
    for t in range(5):
        (a,) = layout.region_frame_indices("action", t)
        seen = {i // 64 for i in torch.nonzero(m[a]).flatten().tolist()}
        assert seen == ({t - 1} if t > 0 else set())


def test_slow_region_frame_edges_hold_drop_interpolate():
    # thought: period 4, canvas frames 0..3 = real times 0, 4, 8, 12; screen: period 1.
    layout = CanvasLayout(T=16, H=2, W=2, regions={
        "screen": (0, 16, 0, 1, 0, 2), "thought": RegionSpec(bounds=(0, 4, 1, 2, 0, 2), period=4)})
    hold = frame_edges(Connection("screen", "thought", t_src=0, t_dst=0), layout)
    assert dict(zip(hold.src_frame, hold.dst_frame)) == {t: t // 4 for t in range(16)}
    drop = frame_edges(Connection("screen", "thought", t_src=0, t_dst=0,
                                  temporal_fill=TemporalFill.DROP), layout)
    assert list(zip(drop.src_frame, drop.dst_frame)) == [(0, 0), (4, 1), (8, 2), (12, 3)]
    interp = frame_edges(Connection("screen", "thought", t_src=0, t_dst=0,
                                    temporal_fill="interpolate"), layout)
    got = {(s, d): w for s, d, w in zip(interp.src_frame, interp.dst_frame, interp.weight)}
    assert got[5, 1] == pytest.approx(0.75) and got[5, 2] == pytest.approx(0.25)  # lerp 4..8
    assert got[14, 3] == 1.0 and (14, 2) not in got  # after the last update: the one that exists
    # the slow region reading the fast one at its own real time: thought frame 2 is real time 8
    back = frame_edges(Connection("thought", "screen", t_src=0, t_dst=0), layout)
    assert list(zip(back.src_frame, back.dst_frame)) == [(0, 0), (1, 4), (2, 8), (3, 12)]


def test_offsets_past_the_canvas_are_skipped_not_clamped():
    layout = small_robot()
    fe = frame_edges(Connection("action", "visual", t_src=0, t_dst=1), layout)
    assert list(zip(fe.src_frame, fe.dst_frame)) == [(0, 1), (1, 2), (2, 3), (3, 4)]


def test_causal_temporal_keeps_same_and_previous_frame_self_edges_apart():
    layout = small_robot()
    m = CanvasTopology.causal_temporal(["visual"]).to_bool_mask(layout)
    v0 = layout.region_frame_indices("visual", 2)
    cols = {j // 64 for j in torch.nonzero(m[v0[0]]).flatten().tolist()}
    assert cols == {1, 2}


def test_block_mask_runs_in_flex_attention_and_matches_sdpa():
    from torch.nn.attention.flex_attention import flex_attention

    layout = small_robot()
    topo = CanvasTopology.causal_temporal(layout)
    bm = topo.to_block_mask(layout, block_size=32)
    mask = topo.to_bool_mask(layout)
    rows = mask.any(1)
    q, k, v = torch.randn(3, 1, 2, layout.num_positions, 8).unbind(0)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out = flex_attention(q, k, v, block_mask=bm)
    assert torch.allclose(out[..., rows, :], ref[..., rows, :], atol=1e-5)


def test_block_mask_memory_is_small_at_16k():
    layout = CanvasLayout(T=16, H=32, W=32, d_model=768, regions={
        "screen": (0, 16, 0, 24, 0, 24), "mouse": (0, 16, 24, 26, 0, 4),
        "keyboard": (0, 16, 26, 28, 0, 4), "llm": (0, 16, 28, 32, 0, 8)})
    bm = CanvasTopology.causal_temporal(layout).to_block_mask(layout)
    held = sum(t.numel() * t.element_size() for t in
               (bm.kv_num_blocks, bm.kv_indices, bm.full_kv_num_blocks, bm.full_kv_indices,
                bm.q_num_blocks, bm.q_indices, bm.full_q_num_blocks, bm.full_q_indices))
    assert held <= 16384 ** 2 / 64
