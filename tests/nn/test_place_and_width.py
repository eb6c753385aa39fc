"""The dispatcher refuses a width that is not the layout's."""

from __future__ import annotations

import pytest
import torch

from canvas_engineering import (
    AttentionDispatcher,
    CanvasError,
    CanvasLayout,
    CanvasTopology,
)


def test_dispatcher_refuses_a_d_model_other_than_the_layout_s():
    lay = CanvasLayout(T=2, H=2, W=2, d_model=16, regions={"a": (0, 2, 0, 2, 0, 2)})
    topo = CanvasTopology.dense(lay)
    with pytest.raises(CanvasError, match=r"d_model: got 32, expected the layout's d_model=16"):
        AttentionDispatcher(topo, lay, 32, 4)
    disp = AttentionDispatcher(topo, lay, 16, 4)
    assert disp(torch.randn(1, 8, 16)).shape == (1, 8, 16)
