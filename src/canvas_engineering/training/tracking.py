"""Where a run's numbers go besides metrics.jsonl: Hugging Face Accelerate's trackers
(`log_with`: TensorBoard, or Weights & Biases offline, both under the run directory), and the
progress shown while training: a tqdm bar on a terminal, a plain line per log step otherwise,
so progress written to a file or a pipe stays readable (no carriage returns)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

TRACKER_MODULES = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",)}
TRACKER_EXTRAS = {"tensorboard": "'canvas-engineering[track]'", "wandb": "wandb"}
LOG_DIR = "logs"  # trackers write under run_dir / LOG_DIR


def tracker_kwargs(log_with: str | None, run_dir: Path) -> dict:
    """Keyword arguments for `Accelerator` that turn on the `log_with` tracker; {} for None.
    A tracker whose package is missing is an error saying what to install (Accelerate would
    only warn and log nowhere). Weights & Biases runs offline unless WANDB_MODE says otherwise:
    training never needs the network."""
    if log_with is None:
        return {}
    if not any(importlib.util.find_spec(m) for m in TRACKER_MODULES[log_with]):
        raise ImportError(f"log_with={log_with!r} needs {TRACKER_MODULES[log_with][0]}: "
                          f"pip install {TRACKER_EXTRAS[log_with]}")
    if log_with == "wandb":
        os.environ.setdefault("WANDB_MODE", "offline")
    return {"log_with": log_with, "project_dir": str(run_dir)}


def hyperparameters(config_json: str) -> dict:
    """A config as tracker hyperparameters: scalars kept, dicts as JSON text, null as "null"
    (TensorBoard's hparams take only numbers, strings and bools)."""
    out = {}
    for key, value in json.loads(config_json).items():
        if value is None or isinstance(value, (dict, list)):
            value = json.dumps(value, sort_keys=True)
        out[key] = value
    return out


def start_trackers(acc, log_with: str | None, config_json: str, run_dir: Path) -> None:
    """Start the run's trackers with its config as hyperparameters (main process only)."""
    if log_with is None:
        return
    init = {"wandb": {"dir": str(run_dir), "name": run_dir.name}} if log_with == "wandb" else {}
    acc.init_trackers(LOG_DIR, config=hyperparameters(config_json), init_kwargs=init)


class Progress:
    """Training progress on stderr: tqdm on a TTY; otherwise `step s/N loss L loops k Xs`, one
    line per log step. Nothing when `enabled` is false."""

    def __init__(self, start: int, total: int, *, enabled: bool, stream=None):
        self.stream = stream or sys.stderr
        self.total, self.began = total, time.perf_counter()
        self.enabled = enabled
        self.bar = None
        if enabled and self.stream.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(initial=start, total=total, desc="train", file=self.stream)

    def update(self, done: int, loss: float, loops: int, log: bool) -> None:
        """Step `done` finished with running loss `loss`; `log`: it is a log step."""
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", loops=loops)
        elif self.enabled and log:
            seconds = time.perf_counter() - self.began
            print(f"train step {done}/{self.total} loss {loss:.4f} loops {loops} "
                  f"{seconds:.1f}s", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextlib.contextmanager
def ended(acc):
    """Finish the trackers (flushing their files) when the block exits, by error too. Not
    `acc.end_training()`: that also destroys the process group, which a caller of `train`
    under `accelerate launch` may still use."""
    try:
        yield
    finally:
        for tracker in acc.trackers:
            tracker.finish()
