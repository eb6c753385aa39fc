"""The sparse lowering at scale's building blocks against simple references written here: block
classes (full / partial / empty) read off the brute-force dense mask, in the canvas order and in
the execution order, through both lookup forms and both index-table widths."""

import pytest
import torch
from helpers.reference_lowering import reference_mask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canvas_engineering import CanvasLayout, CanvasTopology, Connection, RegionSpec, TemporalFill
from canvas_engineering.lowering import block_sparse, sparse
from canvas_engineering.lowering.masks import lower


@st.composite
def canvases(draw):
    T, H, W = draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    regions = {}
    for r in range(draw(st.integers(1, 4))):
        t0, h0, w0 = (draw(st.integers(0, n - 1)) for n in (T, H, W))
        bounds = (t0, draw(st.integers(t0 + 1, T)), h0, draw(st.integers(h0 + 1, H)),
                  w0, draw(st.integers(w0 + 1, W)))
        regions[f"r{r}"] = RegionSpec(bounds=bounds, period=draw(st.sampled_from([1, 1, 2])))
    try:
        layout = CanvasLayout(T=T, H=H, W=W, regions=regions)
    except ValueError:  # overlapping boxes: the opt-in overlap path
        layout = CanvasLayout(T=T, H=H, W=W, regions=regions, allow_overlap=True)
    names = list(regions)
    offsets = st.sampled_from([None, 0, -1, 1])
    conns = [Connection(src=draw(st.sampled_from(names)), dst=draw(st.sampled_from(names)),
                        weight=draw(st.sampled_from([0.5, 1.0])), t_src=draw(offsets),
                        t_dst=draw(offsets),
                        temporal_fill=draw(st.sampled_from(list(TemporalFill))))
             for _ in range(draw(st.integers(1, 5)))]
    return layout, CanvasTopology(connections=conns)


def expected_tables(mask: torch.Tensor, bs: int) -> tuple[list[set], list[set]]:
    """Per query block, the key blocks that are partial and those that are full (padding counts
    as unconnected)."""
    N = mask.shape[0]
    nb = -(-N // bs)
    padded = torch.zeros(nb * bs, nb * bs, dtype=torch.bool)
    padded[:N, :N] = mask
    blocks = padded.view(nb, bs, nb, bs).permute(0, 2, 1, 3).flatten(2)  # (nb, nb, bs²)
    full, any_ = blocks.all(-1), blocks.any(-1)
    return ([set(torch.nonzero(any_[i] & ~full[i]).flatten().tolist()) for i in range(nb)],
            [set(torch.nonzero(full[i]).flatten().tolist()) for i in range(nb)])


def rows(num: torch.Tensor, idx: torch.Tensor) -> list[set]:
    return [set(idx[0, 0, i, :n].tolist()) for i, n in enumerate(num[0, 0].tolist())]


def check(layout, topology, bs: int) -> None:
    ref = reference_mask(topology, layout) > 0
    low = lower(topology, layout)
    order = low.order
    assert torch.equal(torch.sort(order).values, torch.arange(layout.num_positions))
    for name, perm in (("canvas", torch.arange(layout.num_positions)), ("execution", order)):
        mask = ref[perm][:, perm]  # slot i holds canvas position perm[i]
        bm = low.block_mask(block_size=bs, order=name)
        partial, full = expected_tables(mask, bs)
        assert rows(bm.kv_num_blocks, bm.kv_indices) == partial
        assert rows(bm.full_kv_num_blocks, bm.full_kv_indices) == full
        partial_t, full_t = expected_tables(mask.T, bs)
        assert rows(bm.q_num_blocks, bm.q_indices) == partial_t
        assert rows(bm.full_q_num_blocks, bm.full_q_indices) == full_t
        n = layout.num_positions
        got = bm.mask_mod(0, 0, torch.arange(n)[:, None], torch.arange(n)[None, :])
        assert torch.equal(got, mask)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(canvases(), st.sampled_from([2, 3, 4]))
def test_block_classes_match_the_dense_mask_in_both_orders(case, bs):
    check(*case, bs)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(canvases(), st.sampled_from([2, 3]))
def test_searched_lookup_and_narrow_tables_agree(case, bs):
    """The forms used at scale: binary-searched pair lookups, tables as wide as the widest row."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sparse, "DENSE_LOOKUP_ATOMS", 0)
        mp.setattr(block_sparse, "FULL_WIDTH_BLOCKS", 0)
        check(*case, bs)


def test_execution_order_keeps_each_atom_contiguous_and_hub_neighbours_together():
    # a hub reads four spokes that are interleaved with four leaves in the canvas order
    names = [n for i in range(4) for n in (f"spoke{i}", f"leaf{i}")]
    layout = CanvasLayout(T=1, H=1, W=9, regions={
        "hub": (0, 1, 0, 1, 0, 1), **{n: (0, 1, 0, 1, i + 1, i + 2) for i, n in enumerate(names)}})
    topo = CanvasTopology([Connection("hub", f"spoke{i}") for i in range(4)]
                          + [Connection(f"leaf{i}", f"spoke{i}") for i in range(4)])
    low = lower(topo, layout)
    slots = [layout.region_names[int(a)] for a in low.label[low.order]]
    assert slots[:5] == ["hub", "spoke0", "spoke1", "spoke2", "spoke3"]
    assert sorted(slots[5:]) == [f"leaf{i}" for i in range(4)]


def full_fraction(low, order: str, bs: int) -> float:
    bm = low.block_mask(block_size=bs, order=order)
    full = int(bm.full_kv_num_blocks.sum())
    return full / (full + int(bm.kv_num_blocks.sum()))


@pytest.mark.parametrize("topology", ["dense", "isolated"])
def test_dense_and_isolated_blocks_are_mostly_full_in_execution_order(topology):
    # the computer-use canvas's shape at 1/4 scale: a screen, mouse, keyboard and a text band
    layout = CanvasLayout(T=4, H=16, W=16, regions={
        "screen": (0, 4, 0, 12, 0, 12), "mouse": (0, 4, 12, 13, 0, 4),
        "keys": (0, 4, 13, 14, 0, 4), "llm": (0, 4, 14, 16, 0, 8)})
    low = lower(getattr(CanvasTopology, topology)(layout.region_names), layout)
    assert full_fraction(low, "execution", 16) >= 0.9
    assert full_fraction(low, "execution", 16) > full_fraction(low, "canvas", 16)


def test_lowering_never_builds_an_atoms_by_atoms_matrix():
    """A star of 3,000 regions: (A, A) float32 would be 36 MB; the lowering and its block mask
    hold only pairs, labels and tables."""
    n = 3000
    layout = CanvasLayout(T=1, H=1, W=n + 1, regions={
        "hub": (0, 1, 0, 1, 0, 1), **{f"r{i}": (0, 1, 0, 1, i + 1, i + 2) for i in range(n)}})
    topo = CanvasTopology([Connection("hub", f"r{i}") for i in range(n)]
                          + [Connection(f"r{i}", "hub") for i in range(n)])
    low = lower(topo, layout)
    bm = low.block_mask(order="execution")
    assert "weight" not in vars(low)  # the dense matrix is built only when asked for
    assert low.density() == pytest.approx(2 * n / (n + 1) ** 2)
    q = torch.tensor([0, 0, 1, 1])
    k = torch.tensor([1, 0, 0, 2])
    assert bm.mask_mod(0, 0, q, k).tolist() == [True, False, True, False]  # execution slots
