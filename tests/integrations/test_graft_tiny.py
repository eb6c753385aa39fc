"""The tiny CogVideoX / Wan / Mochi transformers of `helpers.tiny_diffusers` run."""

from __future__ import annotations

import pytest
import torch
from helpers.tiny_diffusers import MODELS, build, inputs, run


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", MODELS)
def test_tiny_models_run(name):
    model = build(name)
    out = run(model, name)
    assert out.shape == inputs(name)["hidden_states"].shape
    assert torch.isfinite(out).all()
