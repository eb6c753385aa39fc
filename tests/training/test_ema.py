"""The moving average of the weights: what it averages, that it resumes exactly, and that
evaluation reads it."""

import shutil
from pathlib import Path

import pytest
import torch
from helpers.train_args import TINY
from safetensors.torch import load_file

from canvas_engineering.training import TrainConfig, train
from canvas_engineering.training.loop import load_run


def tensors(path: Path, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in load_file(str(path)).items() if k.startswith(prefix)}


def test_ema_averages_each_step_resumes_exactly_and_is_what_evaluation_reads(tmp_path):
    decay = 0.75
    base = {**TINY, "steps": 3, "checkpoint_every": 1, "keep_checkpoints": 3, "ema": decay}
    out = tmp_path / "run"
    train(TrainConfig(**base, out=str(out)), progress=False, evaluate_at_end=False)
    ck = [out / "checkpoints" / f"step-00000{i}.safetensors" for i in (1, 2, 3)]
    w = [tensors(p, "model.") for p in ck]
    ema = [tensors(p, "ema.module.") for p in ck]
    # By hand: the first update copies the weights, then e_k = d · e_{k-1} + (1 − d) · w_k.
    expected = dict(w[0])
    for k in (1, 2):
        expected = {n: decay * expected[n] + (1 - decay) * w[k][n] for n in expected}
        for n in expected:
            torch.testing.assert_close(ema[k][n], expected[n], rtol=1e-6, atol=1e-7)
    moved = [n for n in w[0] if not torch.equal(w[2][n], ema[2][n])]
    assert moved, "the average should differ from the last weights"

    # Resumed from step 1, the run reaches the same averaged weights bit for bit.
    again = tmp_path / "again"
    shutil.copytree(out, again)
    for later in ck[1:]:
        (again / "checkpoints" / later.name).unlink()
    train(TrainConfig(**base, out=str(again)), resume=True, progress=False,
          evaluate_at_end=False)
    resumed = tensors(again / "checkpoints" / "step-000003.safetensors", "ema.")
    for n, v in tensors(ck[2], "ema.").items():
        assert torch.equal(resumed[n], v), n

    run, step = load_run(out)  # evaluation and sampling use the averaged weights
    assert step == 3
    for n, p in run.model.state_dict().items():
        if n in ema[2]:
            assert torch.equal(p, ema[2][n]), n


def test_ema_decay_is_validated():
    with pytest.raises(ValueError, match=r"ema: got 1\.0, expected a decay in \[0, 1\)"):
        TrainConfig(ema=1.0)
    with pytest.raises(ValueError, match="ema"):
        TrainConfig(ema=True)
