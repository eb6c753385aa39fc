"""Runs under faults: a diverging loss, two writers, a full disk, a torn metrics line, a moved
run directory. Each test sets up the fault itself and checks what is left on disk."""

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers.train_args import TINY, overrides

from canvas_engineering.cli import main
from canvas_engineering.errors import RunError
from canvas_engineering.training import TrainConfig, train
from canvas_engineering.training.diffusion import CanvasDiffusion
from canvas_engineering.training.run_files import (
    latest_checkpoint,
    read_metrics,
    run_lock,
    save_checkpoint,
)

ROOT = Path(__file__).resolve().parents[2]


def tiny(tmp_path, **changes) -> TrainConfig:
    return TrainConfig(**{**TINY, "steps": 10, "keep_checkpoints": 1, **changes},
                       out=str(tmp_path / "run"))


def strict_rows(path: Path) -> list[dict]:
    """metrics.jsonl parsed as strict JSON: a NaN or Infinity token fails."""

    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    return [json.loads(line, parse_constant=refuse) for line in path.read_text().splitlines()]


@pytest.fixture
def loss_turns_nan_at(monkeypatch):
    """Make the diffusion loss NaN from the n-th call (= training step n, 1-based) on."""

    def arm(n: int) -> None:
        real, calls = CanvasDiffusion.loss, []

        def loss(self, *args, **kwargs):
            calls.append(1)
            value, parts = real(self, *args, **kwargs)
            if len(calls) >= n:
                value = value * float("nan")
                parts = {k: v * float("nan") for k, v in parts.items()}
            return value, parts

        monkeypatch.setattr(CanvasDiffusion, "loss", loss)

    return arm


# ---------------------------------------------------------------------------- 1. divergence


def test_a_nan_loss_stops_the_run_and_keeps_the_last_finite_checkpoint(tmp_path,
                                                                       loss_turns_nan_at):
    loss_turns_nan_at(8)
    config = tiny(tmp_path, checkpoint_every=5, log_every=1)
    with pytest.raises(RunError, match=r"step 8 \(parts: visual nan, action nan, reward nan\)"):
        train(config, progress=False)
    run = Path(config.out)
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-000005.safetensors"]
    rows = strict_rows(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6, 7]  # the NaN step is not logged
    from safetensors.torch import load_file

    assert all(v.isfinite().all() for v in load_file(run / "checkpoints" /
                                                     "step-000005.safetensors").values())


def test_a_nan_loss_exits_non_zero_from_the_cli(tmp_path, loss_turns_nan_at, capsys):
    loss_turns_nan_at(3)
    assert main(["train", "--no-progress", *overrides(steps=6, out=str(tmp_path / "r"))]) == 2
    err = capsys.readouterr().err
    assert "the loss is nan at step 3" in err and "Traceback" not in err


def test_a_non_finite_parameter_is_never_checkpointed_nor_are_good_ones_pruned(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    run = tmp_path / "run"
    good = save_checkpoint(run, 5, model, optimizer, "{}", keep=1)
    with torch.no_grad():
        model.weight[0, 0] = float("inf")
    with pytest.raises(RunError, match="step 10 1 tensors hold NaN or inf .first: model.weight"):
        save_checkpoint(run, 10, model, optimizer, "{}", keep=1)
    assert sorted((run / "checkpoints").iterdir()) == [good]


def test_an_exploding_model_fails_evaluation_instead_of_reporting_nan(tmp_path):
    config = tiny(tmp_path, lr=1e6, warmup=1, steps=6)  # clipped: huge, finite
    with pytest.raises(RunError, match="held-out scores are not finite .*the run diverged"):
        train(config, progress=False)
    assert not (Path(config.out) / "summary.json").exists()


# ---------------------------------------------------------------------------- 2. one writer


def test_a_second_writer_is_refused_until_the_first_exits_or_dies(tmp_path):
    run = tmp_path / "run"
    in_use = f"{run} is in use by another training process \\(pid {os.getpid()}\\)"
    with run_lock(run), pytest.raises(RunError, match=in_use):
        train(tiny(tmp_path), progress=False)
    with run_lock(run):  # released on exit
        pass
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path\n"
        "from canvas_engineering.training.run_files import run_lock\n"
        f"with run_lock(Path({str(run)!r})):\n"
        "    print('locked', flush=True); time.sleep(600)\n")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(RunError, match=f"pid {holder.pid}"), run_lock(run):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with run_lock(run):  # released when the holder was killed
        pass


# ---------------------------------------------------------------------------- 4. resume


def test_a_torn_last_metrics_line_is_dropped_with_a_notice(tmp_path, capsys):
    config = tiny(tmp_path, steps=5, log_every=1)
    train(config, progress=False, evaluate_at_end=False)
    metrics = Path(config.out) / "metrics.jsonl"
    with open(metrics, "a") as f:
        f.write('{"step": 6, "loss": 0.5')  # the process died mid-line
    resumed = config.replace(steps=10)
    with pytest.raises(RunError, match="steps: 5 → 10"):  # steps are part of the run
        train(resumed, resume=True, progress=False, evaluate_at_end=False)
    train(config, resume=True, progress=False, evaluate_at_end=False)
    assert "dropped a torn last line" in capsys.readouterr().err
    assert [r["step"] for r in strict_rows(metrics)] == [1, 2, 3, 4, 5]


def test_a_broken_metrics_line_in_the_middle_is_an_error(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1}\n{"step": \n{"step": 3}\n')
    with pytest.raises(RunError, match="metrics.jsonl: line 2 is not JSON"):
        read_metrics(run)


def test_a_moved_run_resumes_and_a_changed_one_is_refused_naming_the_keys(tmp_path):
    first = tiny(tmp_path, steps=5, checkpoint_every=5)
    train(first, progress=False, evaluate_at_end=False)
    moved = tmp_path / "elsewhere"
    Path(first.out).rename(moved)
    with pytest.raises(RunError, match=r"lr: 0.002 → 0.001, seed: 3 → 4"):
        train(first.replace(out=str(moved), lr=1e-3, seed=4, steps=5), resume=True,
              progress=False, evaluate_at_end=False)
    summary = train(first.replace(out=str(moved)), resume=True, progress=False,
                    evaluate_at_end=False)
    assert summary["steps"] == 5
    assert json.loads((moved / "config.json").read_text())["out"] == str(moved)


def test_the_newest_checkpoint_is_chosen_by_step_number(tmp_path):
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    run = tmp_path / "run"
    save_checkpoint(run, 999_999, model, optimizer, "{}", keep=1)
    newest = save_checkpoint(run, 1_000_000, model, optimizer, "{}", keep=1)
    assert newest.name == "step-1000000.safetensors"
    assert latest_checkpoint(run) == newest
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [newest.name]


def test_files_honour_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        config = tiny(tmp_path, steps=2, checkpoint_every=2, log_every=1)
        train(config, progress=False)
    finally:
        os.umask(old)
    run = Path(config.out)
    for path in (run / "config.json", run / "metrics.jsonl", run / "summary.json",
                 run / "checkpoints" / "step-000002.safetensors"):
        assert oct(path.stat().st_mode & 0o777) == oct(0o640), path


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, 64_000))


def test_a_failed_checkpoint_write_ends_the_run_with_one_line(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "canvas_engineering", "train", "--no-progress",
                           *overrides(steps=5, out=str(out))], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, preexec_fn=_limit_file_size, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error: [Errno 27] File too large (while writing): ")
    assert str(out / "checkpoints" / "step-000005.safetensors") in line
    assert list((out / "checkpoints").iterdir()) == []  # no partial or temporary file


def test_resume_after_a_kill_waits_for_nothing(tmp_path):
    """The lock of a killed run does not block its resume (released by the OS)."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "canvas_engineering", "train", "--no-progress",
           *overrides(steps=400, out=str(out))]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while latest_checkpoint(out) is None and time.time() < deadline:
        time.sleep(0.05)
    with pytest.raises(RunError, match="in use by another training process"):
        train(TrainConfig().with_overrides(overrides(steps=400, out=str(out))), resume=True,
              progress=False)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    config = TrainConfig().with_overrides(overrides(steps=10, out=str(out)))
    with pytest.raises(RunError, match="steps: 400 → 10"):  # got in: the lock was released
        train(config, resume=True, progress=False)
