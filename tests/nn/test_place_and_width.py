"""The dispatcher refuses a width that is not the layout's; `BoundField.place` and
`SpatiotemporalCanvas.place` add the same thing."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from canvas_engineering import (
    AttentionDispatcher,
    CanvasError,
    CanvasLayout,
    CanvasTopology,
    Field,
    PlacementError,
    SpatiotemporalCanvas,
    compile_schema,
)


def test_dispatcher_refuses_a_d_model_other_than_the_layout_s():
    lay = CanvasLayout(T=2, H=2, W=2, d_model=16, regions={"a": (0, 2, 0, 2, 0, 2)})
    topo = CanvasTopology.dense(lay)
    with pytest.raises(CanvasError, match=r"d_model: got 32, expected the layout's d_model=16"):
        AttentionDispatcher(topo, lay, 32, 4)
    disp = AttentionDispatcher(topo, lay, 16, 4)
    assert disp(torch.randn(1, 8, 16)).shape == (1, 8, 16)


@dataclass
class R:
    cam: Field = Field(2, 3)
    arm: Field = Field(1, 4, period=2)


def test_bound_field_place_adds_what_the_canvas_place_adds():
    torch.manual_seed(0)
    bound = compile_schema(R(), T=3, d_model=8)
    module = SpatiotemporalCanvas(bound.layout)
    batch = module.create_empty(2)
    for path in ("cam", "arm"):
        vals = torch.randn(2, bound[path].num_positions, 8)
        via_module = module.place(batch, vals, path)
        via_field = bound[path].place(batch, vals, canvas_module=module)
        assert torch.equal(via_field, via_module)
        idx = bound[path].indices
        assert torch.equal(via_field[:, idx], vals + module.structure()[idx])  # content + structure
    # without a module there is no structure to add: the values are written as given
    raw = bound["cam"].place(batch, vals := torch.randn(2, 18, 8))
    assert torch.equal(bound["cam"].extract(raw), vals)


def test_bound_field_place_refuses_a_module_of_another_layout():
    bound = compile_schema(R(), T=3, d_model=8)
    other = SpatiotemporalCanvas(CanvasLayout(T=3, H=4, W=4, d_model=8, regions={"cam": (0, 3, 0, 2, 0, 3)}))
    batch = torch.zeros(1, bound.layout.num_positions, 8)
    with pytest.raises(PlacementError, match=r"cam: canvas_module.*expected a SpatiotemporalCanvas of this"):
        bound["cam"].place(batch, torch.zeros(1, 18, 8), canvas_module=other)
