"""The end of a run: held-out evaluation against baselines, written to summary.json.

Tables and pictures of the result are the faces' job (`viz/run_report.py`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from canvas_engineering.atomic import atomic_write_text
from canvas_engineering.errors import RunError
from canvas_engineering.training.batches import build_dataset, episode_count
from canvas_engineering.training.evaluation import evaluate


def finish(run, model: torch.nn.Module, run_dir: Path,
           name: str = "summary.json") -> tuple[dict, dict]:
    """Evaluate `model` on held-out episodes and write `run_dir / name` (the run's own
    summary.json at the end of training; `evaluate` writes evaluation.json).

    Returns (summary, examples): the summary as written, and the first held-out episodes with
    the model's samples ({"clip": ..., "pred": ...}) for pictures.
    """
    config = run.config
    model.eval()
    eval_set = build_dataset(config, "eval", run.layout.T)
    result = evaluate(model.to("cpu"), run.diffusion, run.layout, run.codecs, config.regions,
                      eval_set, run.train_set, steps=config.sample_steps, seed=config.seed,
                      samples=config.eval_samples)
    summary = {"eval": result["metrics"], "run": str(run_dir),
               "episodes": {"train": episode_count(run.train_set),
                            "held_out": episode_count(eval_set)}}
    overflow = _non_finite(summary["eval"])
    if overflow:  # strict JSON has no NaN, and a NaN score would hide a diverged run
        raise RunError(f"{run_dir}: held-out scores are not finite ({', '.join(overflow[:3])}"
                       "): the model's outputs overflow, so the run diverged; try a lower lr")
    atomic_write_text(run_dir / name, json.dumps(summary, indent=2, allow_nan=False))
    return summary, result["examples"]


def _non_finite(tree, path: str = "") -> list[str]:
    """Paths of the float values in a JSON-like tree that are NaN or infinite."""
    if isinstance(tree, dict):
        return [p for k, v in tree.items() for p in _non_finite(v, f"{path}/{k}".lstrip("/"))]
    if isinstance(tree, list):
        return [p for i, v in enumerate(tree) for p in _non_finite(v, f"{path}[{i}]")]
    return [path] if isinstance(tree, float) and not math.isfinite(tree) else []
