"""The execution order is invisible: the FlexAttention path runs positions permuted (so blocks
are mostly full or empty), and its outputs, in canvas order, equal an unpermuted reference
written here (one SDPA call with the brute-force mask)."""

import pytest
import torch
import torch.nn.functional as F
from helpers.reference_lowering import reference_mask

from canvas_engineering import AttentionDispatcher, CanvasLayout, CanvasTopology, Connection

D, H = 16, 2


def layout() -> CanvasLayout:
    # the hub is last on the canvas and the spokes are interleaved with leaves, so the execution
    # order (hub, spokes, leaves, uncovered) is far from the canvas order
    return CanvasLayout(T=3, H=4, W=5, d_model=D, regions={
        "spoke0": (0, 3, 0, 2, 0, 2), "leaf0": (0, 3, 0, 2, 2, 4),
        "spoke1": (0, 3, 2, 4, 0, 2), "leaf1": (0, 3, 2, 4, 2, 4),
        "hub": (0, 3, 0, 2, 4, 5)})


def topology() -> CanvasTopology:
    return CanvasTopology([
        Connection("hub", "spoke0"), Connection("hub", "spoke1"),
        Connection("spoke0", "spoke0", t_src=0, t_dst=-1), Connection("spoke1", "hub"),
        Connection("leaf0", "spoke0"), Connection("leaf1", "spoke1", t_src=0, t_dst=0),
        Connection("leaf1", "leaf1")])


def reference(disp: AttentionDispatcher, x: torch.Tensor) -> torch.Tensor:
    """Unpermuted: one SDPA over the canvas with the brute-force boolean mask (all weights 1,
    so each query's mixing weight is 1 where it has a key and 0 elsewhere)."""
    m = disp.attn["cross_attention"]
    mask = reference_mask(disp.topology, disp.layout) > 0  # (N, N)
    b, n, _ = x.shape
    k, v = m.kv_proj(x).chunk(2, dim=-1)
    q, k, v = (t.view(b, n, H, -1).transpose(1, 2) for t in (m.q_proj(x), k, v))
    rows = mask.any(1)  # queries with a key; the others attend anywhere and are zeroed below
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask | ~rows[:, None])
    y = m.out_proj(o.transpose(1, 2).reshape(b, n, D))
    return y * rows[:, None]


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
def test_flex_outputs_in_canvas_order_equal_the_unpermuted_reference():
    torch.manual_seed(0)
    disp = AttentionDispatcher(topology(), layout(), D, H, backend="flex")
    order = disp.plans["cross_attention"].order
    assert not torch.equal(order, torch.arange(len(order)))  # really permuted
    x = torch.randn(2, disp.num_positions, D)
    with torch.no_grad():
        got = disp(x)
        torch.testing.assert_close(got, reference(disp, x), atol=1e-5, rtol=1e-5)
        disp.backend = "sdpa"  # the gather path never permutes: the same numbers
        torch.testing.assert_close(got, disp(x), atol=1e-5, rtol=1e-5)


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
@pytest.mark.parametrize("lookup", ["dense", "searched"])
def test_flex_path_with_weights_and_fills_matches_the_sdpa_path(lookup, monkeypatch):
    """Pair lookups by table, and (above DENSE_LOOKUP_ATOMS atoms) by binary search of the
    pairs, in the mask and the log-weight score."""
    from canvas_engineering.lowering import sparse

    if lookup == "searched":
        monkeypatch.setattr(sparse, "DENSE_LOOKUP_ATOMS", 0)
    torch.manual_seed(1 if lookup == "dense" else 3)
    conns = [*topology().connections, Connection("leaf0", "hub", weight=0.5, t_src=0, t_dst=-1),
             Connection("hub", "leaf1", temporal_fill="interpolate", weight=2.0)]
    disp = AttentionDispatcher(CanvasTopology(conns), layout(), D, H)
    x = torch.randn(2, disp.num_positions, D)
    expected = disp(x)
    disp.backend = "flex"
    with torch.no_grad():
        torch.testing.assert_close(disp(x), expected, atol=1e-5, rtol=1e-5)


def test_masked_and_gathered_softmax_paths_agree_with_gradients(monkeypatch):
    """Small canvases run a dense softmax unit as one SDPA call with the (N, N) mask; the
    gathered groups (used at larger N) give the same outputs and gradients."""
    from canvas_engineering.nn import dispatcher

    torch.manual_seed(2)
    names = layout().region_names
    conns = [Connection(a, b, weight=0.5 if a < b else 1.0) for a in names for b in names
             if a != "leaf1"]  # leaf1 reads nothing
    conns.append(Connection("hub", "hub", weight=2.0, t_src=0, t_dst=-1))
    masked = AttentionDispatcher(CanvasTopology(conns), layout(), D, H)
    monkeypatch.setattr(dispatcher, "MASKED_MAX_N", 0)
    gathered = AttentionDispatcher(CanvasTopology(conns), layout(), D, H)
    gathered.load_state_dict(masked.state_dict())
    assert masked._masked == {"cross_attention"} and not gathered._masked
    x = torch.randn(2, masked.num_positions, D, requires_grad=True)
    y1 = masked(x, beta=1.3)
    (g1,) = torch.autograd.grad(y1.square().sum(), x)
    y2 = gathered(x, beta=1.3)
    (g2,) = torch.autograd.grad(y2.square().sum(), x)
    torch.testing.assert_close(y1, y2, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g1, g2, atol=1e-4, rtol=1e-4)
