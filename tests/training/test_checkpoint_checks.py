"""Checkpoints are checked before anything is loaded from them: by resume, `evaluate` and
`sample`, each bad file gives one line naming it, and no checkpoint is changed."""

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from helpers.train_args import TINY
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from canvas_engineering.cli import main
from canvas_engineering.errors import RunError
from canvas_engineering.training import TrainConfig, train
from canvas_engineering.training.loop import load_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny run with checkpoints at steps 5 and 10."""
    out = tmp_path_factory.mktemp("trained") / "run"
    config = TrainConfig(**{**TINY, "steps": 10, "keep_checkpoints": 2}, out=str(out))
    train(config, progress=False, evaluate_at_end=False)
    return out


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A fresh copy of the trained run, to damage."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def newest(run: Path) -> Path:
    return run / "checkpoints" / "step-000010.safetensors"


def rewrite(path: Path, edit_tensors=None, edit_meta=None) -> None:
    """Rewrite a checkpoint with edited tensors and/or header metadata."""
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    tensors = load_file(str(path))
    if edit_tensors:
        edit_tensors(tensors)
    if edit_meta:
        edit_meta(meta)
    save_file(tensors, str(path), metadata=meta)


def other_lr(meta):
    config = json.loads(meta["config"])
    meta["config"] = json.dumps({**config, "lr": 0.5})


def drop_one_adam_moment(tensors):
    del tensors[next(k for k in tensors if k.endswith(".exp_avg_sq"))]


DAMAGE = {
    "zero-byte": (lambda p: p.write_bytes(b""), "empty file \\(0 bytes\\)"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
                  "\\d+ bytes, its header describes \\d+; the file is truncated"),
    "pickle": (lambda p: p.write_bytes(pickle.dumps({"w": [1.0]})),
               "a pickle file, expected safetensors \\(never unpickled\\)"),
    "torch.save": (lambda p: torch.save({"w": torch.zeros(2)}, p),
                   "a zip archive \\(torch.save's format\\)"),
    "wrong shape": (lambda p: rewrite(p, lambda t: t.update(
        {"model.final.adaLN_modulation.1.bias": torch.zeros(3)})),
        ("model tensor 'final.adaLN_modulation.1.bias' has shape \\(3,\\), the run's has "
         "\\(\\d+,\\); a run trained by an earlier version whose preset differed")),
    "missing optimizer state": (lambda p: rewrite(p, drop_one_adam_moment),
                                "optimizer state of parameter \\d+ has \\['exp_avg', 'step'\\]"),
    "extra optimizer state": (lambda p: rewrite(p, lambda t: t.update(
        {"optim.9999.exp_avg": torch.zeros(1)})), "optimizer state 'optim.9999.exp_avg' names no parameter"),
    "step disagrees": (lambda p: rewrite(p, edit_meta=lambda m: m.update(step="7")),
                       "header step 7 disagrees with the file name 'step-000010"),
    "step not an integer": (lambda p: rewrite(p, edit_meta=lambda m: m.update(step="ten")),
                            "header step 'ten' is not a non-negative integer"),
    "another run's": (lambda p: rewrite(p, edit_meta=other_lr),
                      "written by a run with other settings \\(lr: 0.5 → 0.002\\)"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_newest_checkpoint_is_refused_naming_the_good_older_one(run, damage, capsys):
    make, what = DAMAGE[damage]
    make(newest(run))
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
              for p in (run / "checkpoints").iterdir()}
    older = run / "checkpoints" / "step-000005.safetensors"
    expected = (f"checkpoint {newest(run)}: {what}.*The older checkpoint {older} is good: "
                f"pass --checkpoint={older} to use it")
    config = TrainConfig.from_file(run / "config.json").replace(out=str(run))
    with pytest.raises(RunError, match=expected):
        train(config, resume=True, progress=False)
    with pytest.raises(RunError, match=expected):
        load_run(run)  # what `evaluate` and `sample` load
    for command in ("evaluate", "sample"):
        assert main([command, "--run", str(run)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert err.startswith(f"error: checkpoint {newest(run)}: ")
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
             for p in (run / "checkpoints").iterdir()}
    assert after == before  # nothing modified, nothing deleted


def test_the_named_older_checkpoint_resumes_evaluates_and_samples(run, capsys):
    newest(run).write_bytes(b"")
    older = run / "checkpoints" / "step-000005.safetensors"
    r, step = load_run(run, checkpoint=older)
    assert step == 5
    assert torch.equal(r.model.final.adaLN_modulation[1].bias,
                       load_file(str(older))["model.final.adaLN_modulation.1.bias"])
    assert main(["sample", "--run", str(run), "--checkpoint", str(older), "--episodes", "1"]) == 0
    config = TrainConfig.from_file(run / "config.json").replace(out=str(run))
    summary = train(config, checkpoint=older, progress=False, evaluate_at_end=False)
    assert summary["steps"] == 10
    assert load_file(str(newest(run)))  # step 10 rewritten whole from the resumed run


def test_a_checkpoint_copied_from_another_run_is_refused(run, tmp_path):
    other = TrainConfig(**{**TINY, "steps": 10, "seed": 11}, out=str(tmp_path / "other"))
    train(other, progress=False, evaluate_at_end=False)
    for step in (5, 10):
        name = f"step-{step:06d}.safetensors"
        shutil.copy(tmp_path / "other" / "checkpoints" / name, run / "checkpoints" / name)
    with pytest.raises(RunError, match="written by a run with other settings \\(seed: 11 → 3\\)"):
        load_run(run)
