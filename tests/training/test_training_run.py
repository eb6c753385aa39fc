"""Training runs: the loss falls, a killed run resumes to the same parameters, checkpoints are
never half-written, and two processes under `accelerate launch` train the single-process model."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers.train_args import TINY, overrides
from safetensors.torch import load_file

from canvas_engineering.training import TrainConfig, train
from canvas_engineering.training.run_files import read_metrics
from canvas_engineering.viz.run_report import draw_run

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


def model_tensors(path: Path) -> dict:
    return {k: v for k, v in load_file(str(path)).items() if k.startswith("model.")}


def test_short_run_writes_metrics_checkpoints_summary_and_plots(tmp_path):
    config = TrainConfig(**{**TINY, "steps": 10}, out=str(tmp_path / "run"))
    summary = train(config, progress=False)
    run = Path(config.out)
    drawn = draw_run(run)  # pictures are the faces' job: train() writes numbers only
    assert sorted(p.name for p in drawn) == ["actions.png", "filmstrip.png", "horizon.png",
                                                "loss.png", "rollout.gif"]
    rows = read_metrics(run)
    assert [r["step"] for r in rows] == [5, 10]
    assert {"loss/visual", "loss/action", "loss/reward"} <= set(rows[0])
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step-000005.safetensors", "step-000010.safetensors"]
    for name in ("loss.png", "filmstrip.png", "actions.png", "summary.json", "config.json"):
        assert (run / name).stat().st_size > 0
    mse = summary["eval"]["mse"]
    assert set(mse["action"]) == {"model", "mean", "repeat_last", "floor"}
    assert set(mse["visual"]) == {"model", "copy_last_frame", "floor"}
    with pytest.raises(ValueError, match="already holds checkpoints"):
        train(config, progress=False)


def cli_train(out: Path, *extra: str) -> subprocess.Popen:
    """A training run in its own process (one thread, like every run it is compared with)."""
    cmd = [sys.executable, "-m", "canvas_engineering", "train", "--no-progress", *extra,
           *overrides(out=str(out))]
    return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def test_killed_run_resumes_to_the_same_parameters(tmp_path):
    straight = cli_train(tmp_path / "straight")
    out = tmp_path / "killed"
    proc = cli_train(out)
    first = out / "checkpoints" / "step-000010.safetensors"
    deadline = time.time() + 120
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = sorted((out / "checkpoints").glob("step-*.safetensors"))
    assert left and left[-1].name < "step-000040.safetensors", "the run was not interrupted"
    for ckpt in left:  # every checkpoint on disk is whole
        assert model_tensors(ckpt)

    resumed = cli_train(out, "--resume")
    assert resumed.wait() == 0, resumed.stderr.read().decode()[-2000:]
    assert straight.wait() == 0, straight.stderr.read().decode()[-2000:]
    a = model_tensors(tmp_path / "straight" / "checkpoints" / "step-000040.safetensors")
    b = model_tensors(out / "checkpoints" / "step-000040.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [r["step"] for r in read_metrics(out)] == list(range(5, 45, 5))


@pytest.mark.skipif(shutil.which("accelerate") is None and not (
    Path(sys.executable).parent / "accelerate").exists(), reason="accelerate not installed")
def test_two_processes_match_one(tmp_path):
    args = overrides(steps=4, checkpoint_every=4, log_every=4)
    single = TrainConfig().with_overrides([*args, f"--out={tmp_path / 'one'}"])
    _, model = train(single, progress=False, evaluate_at_end=False, return_model=True)
    launcher = Path(sys.executable).parent / "accelerate"
    # --multi_gpu selects accelerate's torchrun launcher; without a GPU the processes join a
    # gloo group on the CPU (plain --cpu would start a single process unless MPI is set up).
    cmd = [str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no",
           str(ROOT / "tests" / "helpers" / "dist_train.py"), *args, f"--out={tmp_path / 'two'}"]
    r = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300,
                       check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    rank0 = load_file(str(tmp_path / "two" / "rank0.safetensors"))
    rank1 = load_file(str(tmp_path / "two" / "rank1.safetensors"))
    for k, v in model.state_dict().items():
        assert torch.equal(rank0[k], rank1[k]), k
        torch.testing.assert_close(rank0[k], v, rtol=1e-4, atol=1e-5, msg=k)


def test_plots_of_a_run_with_fewer_held_out_episodes_than_pictures_show(tmp_path):
    """The pictures show up to 4 held-out episodes; with 2 held out they show those 2."""
    config = TrainConfig(**{**TINY, "steps": 2, "checkpoint_every": 2, "eval_episodes": 2},
                         out=str(tmp_path / "run"))
    train(config, progress=False, evaluate_at_end=False)
    assert all(p.stat().st_size > 0 for p in draw_run(Path(config.out)))
