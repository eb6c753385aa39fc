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


def finish(run, model: torch.nn.Module, run_dir: Path) -> tuple[dict, dict]:
    """Evaluate `model` on held-out episodes and write summary.json.

    Returns (summary, examples): the summary as written, and the first held-out episodes with
    the model's samples ({"clip": ..., "pred": ...}) for pictures.
    """
    config = run.config
    model.eval()
    eval_set = build_dataset(config, "eval", run.layout.T)
    result = evaluate(model.to("cpu"), run.diffusion, run.layout, run.codecs, config.regions,
                      eval_set, run.train_set, steps=config.sample_steps, seed=config.seed)
    overflow = [k for k, v in result["metrics"].items() if not math.isfinite(v)]
    if overflow:
        raise RunError(f"{run_dir}: held-out errors are not finite ({', '.join(overflow)}): "
                       "the model's outputs overflow, so the run diverged; try a lower lr")
    summary = {"eval": result["metrics"], "run": str(run_dir),
               "episodes": {"train": episode_count(run.train_set),
                            "held_out": episode_count(eval_set)}}
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2, allow_nan=False))
    return summary, result["examples"]
