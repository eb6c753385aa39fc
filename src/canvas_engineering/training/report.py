"""The end of a run: held-out evaluation against baselines, a summary table, plots, summary.json."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from canvas_engineering.atomic import atomic_write_text
from canvas_engineering.training.batches import build_dataset
from canvas_engineering.training.evaluation import evaluate, summary_rows


def summary_table(metrics: dict) -> str:
    lines = [f"{'region':<10} {'predictor':<16} {'mse':>10}  verdict"]
    for region, name, value, verdict in summary_rows(metrics):
        lines.append(f"{region:<10} {name:<16} {value:>10.5f}  {verdict}")
    return "\n".join(lines)


def finish(run, model: torch.nn.Module, run_dir: Path, *, plots: bool = True) -> dict:
    """Evaluate `model` on held-out episodes, print the summary, write plots and summary.json."""
    config = run.config
    model.eval()
    eval_set = build_dataset(config, "eval", run.layout.T)
    result = evaluate(model.to("cpu"), run.diffusion, run.layout, run.codecs, config.regions,
                      eval_set, run.train_set, steps=config.sample_steps, seed=config.seed,
                      loops=config.loops)
    metrics = result["metrics"]
    print(f"\nheld-out evaluation ({metrics['episodes']} episodes, {config.sample_steps} DDIM "
          "steps; mean squared error on future frames):")
    print(summary_table(metrics))
    summary = {"eval": metrics, "run": str(run_dir)}
    if plots:
        from canvas_engineering.viz.run_plots import draw_all

        summary["plots"] = [str(p) for p in draw_all(run_dir, run, result["examples"])]
        print("plots: " + ", ".join(summary["plots"]))
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2))
    return summary
