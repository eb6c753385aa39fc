"""Canvas Attention: projection placement, scene-relative invariance (with negative controls),
gradient paths, the registry entries and the schedule."""

import pytest
import torch

from canvas_engineering.attention import create_attention, get_attention_class
from canvas_engineering.canvit import CanvasRead, CanvasWrite, canvas_attention_schedule
from canvas_engineering.errors import CanvasError

D, DC, H = 32, 48, 3  # glimpse width, canvas width, heads (head size 16)


def learned(module) -> set[str]:
    return {name.split(".")[0] for name, _ in module.named_parameters()}


def test_projections_sit_on_the_glimpse_side_only():
    read, write = CanvasRead(D, H, kv_dim=DC), CanvasWrite(DC, H, kv_dim=D)
    assert learned(read) == {"ln_q", "ln_kv", "q_map", "o_map"}
    assert learned(write) == {"ln_q", "ln_kv", "k_map", "v_map"}
    assert read.q_map.weight.shape == (DC, D) and read.o_map.weight.shape == (D, DC)
    assert write.k_map.weight.shape == (DC, D) and write.v_map.weight.shape == (DC, D)
    assert read.ln_q.normalized_shape == (D,) and read.ln_kv.normalized_shape == (DC,)
    assert write.ln_q.normalized_shape == (DC,) and write.ln_kv.normalized_shape == (D,)


def test_qkvo_adds_exactly_four_canvas_maps_per_pair():
    def count(m):
        return sum(p.numel() for p in m.parameters())

    extra = (count(CanvasRead(D, H, kv_dim=DC, projections="qkvo"))
             + count(CanvasWrite(DC, H, kv_dim=D, projections="qkvo"))
             - count(CanvasRead(D, H, kv_dim=DC)) - count(CanvasWrite(DC, H, kv_dim=D)))
    assert extra == 4 * (DC * DC + DC)


def _positions(n, offset=(0.0, 0.0)):
    return torch.rand(n, 2, generator=torch.Generator().manual_seed(n)) * 2 - 1 \
        + torch.tensor(offset)


@pytest.mark.parametrize("kind", ["read", "write"])
def test_joint_shift_leaves_output_unchanged_and_negative_controls_differ(kind):
    torch.manual_seed(0)
    glimpse, canvas = torch.randn(2, 9, D), torch.randn(2, 16, DC)
    if kind == "read":
        attn, x_q, x_kv = CanvasRead(D, H, kv_dim=DC), glimpse, canvas
    else:
        attn, x_q, x_kv = CanvasWrite(DC, H, kv_dim=D), canvas, glimpse
    pq, pk = _positions(x_q.shape[1]), _positions(x_kv.shape[1])
    delta = torch.tensor([0.37, -1.3])
    with torch.no_grad():
        base = attn(x_q, x_kv, q_pos=pq, kv_pos=pk)
        shifted = attn(x_q, x_kv, q_pos=pq + delta, kv_pos=pk + delta)
        only_q = attn(x_q, x_kv, q_pos=pq + delta, kv_pos=pk)
        # a prefix token (unrotated) before the positioned ones sees absolute phase
        pre = torch.cat([torch.randn(2, 2, x_kv.shape[-1]), x_kv], dim=1)
        with_prefix = attn(x_q, pre, q_pos=pq, kv_pos=pk)
        with_prefix_shifted = attn(x_q, pre, q_pos=pq + delta, kv_pos=pk + delta)
    assert (base - shifted).abs().max() < 1e-5
    assert (base - only_q).abs().max() > 1e-2
    assert (with_prefix - with_prefix_shifted).abs().max() > 1e-4


def test_float64_inputs_are_invariant_to_float32_table_precision():
    # tables stay float32 by design (the reference's), so float64 inputs meet ~1e-7 angle error
    attn = CanvasRead(D, H, kv_dim=DC).double()
    x, c = torch.randn(1, 5, D, dtype=torch.float64), torch.randn(1, 7, DC, dtype=torch.float64)
    pq, pk = _positions(5).double(), _positions(7).double()
    a = attn(x, c, q_pos=pq, kv_pos=pk)
    b = attn(x, c, q_pos=pq + 3.1, kv_pos=pk + 3.1)
    assert (a - b).abs().max() < 1e-6


def test_gradient_reaches_the_canvas_only_through_norm_rope_softmax():
    write = CanvasWrite(DC, H, kv_dim=D)
    canvas = torch.randn(1, 4, DC, requires_grad=True)
    out = write(canvas, torch.randn(1, 6, D), q_pos=_positions(4), kv_pos=_positions(6))
    out.sum().backward()
    assert canvas.grad is not None and canvas.grad.abs().sum() > 0
    assert isinstance(write.q_map, torch.nn.Identity) and isinstance(write.o_map, torch.nn.Identity)


def test_registered_and_callable_through_the_calling_convention():
    assert get_attention_class("canvas_read") is CanvasRead
    assert get_attention_class("canvas_write") is CanvasWrite
    attn = create_attention("canvas_read", d_model=32, n_heads=2)  # one shared width
    x, coords = torch.randn(1, 6, 32), torch.stack(
        torch.meshgrid(torch.arange(2), torch.arange(3), indexing="ij"), -1).flatten(0, 1)
    out = attn(x, x, q_coords=coords, kv_coords=coords)
    assert out.shape == (1, 6, 32)
    mask = torch.tensor([[True, True, True, False, False, False]])
    masked = attn(x, x, kv_mask=mask)
    altered = attn(x, torch.cat([x[:, :3], torch.randn(1, 3, 32)], 1), kv_mask=mask)
    assert torch.allclose(masked, altered, atol=1e-6)  # padding never changes a real query


def test_bad_inputs_name_the_field():
    with pytest.raises(CanvasError, match="x_kv"):
        CanvasRead(D, H, kv_dim=DC)(torch.randn(1, 2, D), torch.randn(1, 3, D))
    with pytest.raises(CanvasError, match="projections"):
        CanvasRead(D, H, kv_dim=DC, projections="full")
    with pytest.raises(CanvasError, match="canvas width"):
        CanvasRead(D, 5, kv_dim=DC)


@pytest.mark.parametrize("blocks, stride, reads_on, reads, writes", [
    (12, 2, True, (1, 5, 9), (3, 7, 11)),
    (12, 6, True, (5,), (11,)),
    (12, 2, False, (), (3, 7, 11)),
    (12, 4, True, (3, 11), (7, 11)),
    (4, 1, True, (0, 2), (1, 3)),
    (4, 2, True, (1,), (3,)),
])
def test_schedule(blocks, stride, reads_on, reads, writes):
    assert canvas_attention_schedule(blocks, stride, reads_on) == (reads, writes)
    assert canvas_attention_schedule(blocks, stride, reads_on)[1][-1] == blocks - 1


def test_a_topology_can_declare_glimpse_tokens_reading_the_canvas():
    from canvas_engineering import AttentionDispatcher, CanvasLayout, CanvasTopology, Connection

    layout = CanvasLayout(T=1, H=4, W=4, d_model=32,
                          regions={"canvas": (0, 1, 0, 4, 0, 3), "glimpse": (0, 1, 0, 4, 3, 4)})
    topology = CanvasTopology(connections=[
        Connection(src="glimpse", dst="canvas", fn="canvas_read"),
        Connection(src="canvas", dst="glimpse", fn="canvas_write")])
    dispatcher = AttentionDispatcher(topology, layout, d_model=32, n_heads=2)
    x = torch.randn(2, 16, 32)
    out = dispatcher(x)
    assert out.shape == (2, 16, 32) and torch.isfinite(out).all()
    kinds = {type(m).__name__ for m in dispatcher.modules()}
    assert {"CanvasRead", "CanvasWrite"} <= kinds
