"""Geometry beyond the seed snippets: index order, other spatial ranks, t_current, periods."""

import torch

from canvas_engineering import CanvasLayout, PeriodEmbedding, RegionSpec, SpatiotemporalCanvas


def test_indices_are_t_major_then_h_then_w():
    lay = CanvasLayout(T=3, H=4, W=5, regions={"r": (1, 3, 2, 4, 3, 5)})
    expected = [t * 20 + h * 5 + w for t in (1, 2) for h in (2, 3) for w in (3, 4)]
    assert lay.region_indices("r") == expected
    assert lay.region_frame_indices("r", 2) == expected[4:]


def test_any_spatial_rank():
    one = CanvasLayout(T=2, spatial_shape=(6,), regions={"seq": (0, 2, 1, 4)})
    assert one.region_indices("seq") == [1, 2, 3, 7, 8, 9]
    three = CanvasLayout(T=1, spatial_shape=(2, 2, 3), regions={"vox": (0, 1, 1, 2, 0, 2, 2, 3)})
    assert three.region_indices("vox") == [1 * 6 + 0 * 3 + 2, 1 * 6 + 1 * 3 + 2]
    assert three.H is None and three.num_positions == 12


def test_loss_weight_mask_counts_only_future_frames_of_output_regions():
    lay = CanvasLayout(T=5, H=8, W=8, t_current=2, regions={
        "visual": (0, 5, 0, 6, 0, 6), "action": RegionSpec((0, 5, 6, 7, 0, 1), loss_weight=2.0),
        "goal": RegionSpec((0, 1, 7, 8, 0, 1), is_output=False)})
    w = lay.loss_weight_mask()
    grid = w.view(5, 8, 8)
    assert grid[:2].sum() == 0  # context frames
    assert grid[2:, :6, :6].eq(1).all() and grid[2:, 6, 0].eq(2).all()
    assert w.sum() == 3 * 36 + 2 * 3
    assert torch.equal(lay.output_mask(), w > 0)


def test_real_and_canvas_frames_use_absolute_time():
    lay = CanvasLayout(T=8, H=1, W=2, regions={
        "reward": (2, 4, 0, 1, 0, 1), "slow": RegionSpec((1, 3, 0, 1, 1, 2), period=3)})
    assert lay.real_frame("reward", 2) == 2 and lay.canvas_frame("reward", 3) == 3
    assert lay.canvas_frame("reward", 0) is None  # before the region starts
    assert lay.real_frame("slow", 1) == 3 and lay.canvas_frame("slow", 6) == 2
    assert lay.canvas_frame("slow", 0) is None and lay.canvas_frame("slow", 9) is None


def test_period_embedding_buckets_by_log2():
    pe = PeriodEmbedding(d_model=4, num_buckets=4)
    assert pe.bucket(torch.tensor([1, 2, 3, 4, 7, 8, 100])).tolist() == [0, 1, 1, 2, 2, 3, 3]
    assert torch.equal(pe(torch.tensor(5)), pe.table[2])


def test_canvas_structure_distinguishes_regions_and_periods():
    lay = CanvasLayout(T=2, H=2, W=2, d_model=8, regions={
        "a": (0, 2, 0, 1, 0, 2), "b": RegionSpec((0, 2, 1, 2, 0, 2), period=4)})
    canvas = SpatiotemporalCanvas(lay)
    s = canvas.structure()
    pe = canvas.positional_encoding()
    a, b = lay.region_indices("a"), lay.region_indices("b")
    # compared as sums, not differences: s - pe cancels catastrophically when pe is large
    assert torch.allclose(s[a], pe[a] + canvas.modality[0] + canvas.period_embedding.table[0])
    assert torch.allclose(s[b], pe[b] + canvas.modality[1] + canvas.period_embedding.table[2])
    # positional encoding is the sum of the per-axis tables at (t, h, w)
    t, h, w = 1, 0, 1
    i = t * 4 + h * 2 + w
    ax = canvas.axis_embeddings
    assert torch.allclose(pe[i], ax[0][t] + ax[1][h] + ax[2][w])
    empty = canvas.create_empty(3)
    assert torch.allclose(empty[1], canvas.empty_token + s)
    empty.sum().backward()
    assert canvas.empty_token.grad is not None and canvas.modality.grad is not None
