"""A finished run, shown: the held-out summary table printed, the run's pictures drawn."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from canvas_engineering.errors import bad
from canvas_engineering.training.batches import build_dataset, collate
from canvas_engineering.training.evaluation import rollout
from canvas_engineering.training.loop import load_run
from canvas_engineering.viz.run_plots import draw_all
from canvas_engineering.viz.tables import samples_table, summary_table


def print_summary(summary: dict, sample_steps: int) -> None:
    """Print the held-out errors of `summary` (as `training.report.finish` returns it)."""
    metrics = summary["eval"]
    if "episodes" in summary:
        print(f"\ndata: {summary['episodes']['train']} training episodes, "
              f"{summary['episodes']['held_out']} held out")
    print(f"\nheld-out evaluation ({metrics['episodes']} clips; mean squared error of the "
          "future, the model's point prediction against baselines and the floor):")
    print(summary_table(metrics))
    print(f"\nsamples ({sample_steps} DDIM steps):")
    print(samples_table(metrics))


def sample_examples(run, episodes: int, seed: int) -> dict:
    """The first `episodes` held-out episodes and the model's sampled futures for them."""
    eval_set = build_dataset(run.config, "eval", run.layout.T)
    if not 1 <= episodes <= len(eval_set):
        raise bad("episodes", episodes, f"1 to the run's {len(eval_set)} held-out episodes")
    clip = collate(eval_set, torch.arange(episodes))
    pred = rollout(run.model, run.diffusion, run.layout, run.codecs, run.config.regions, clip,
                   steps=run.config.sample_steps, seed=seed)
    return {"clip": clip, "pred": pred}


@torch.no_grad()
def heldout_points(run, batch_size: int = 32) -> dict:
    """Every held-out episode and the model's point prediction (one denoising step, seeded as
    `evaluate` seeds it, so these are the predictions the summary scores)."""
    eval_set = build_dataset(run.config, "eval", run.layout.T)
    clips, preds = [], []
    for start in range(0, len(eval_set), batch_size):
        clip = collate(eval_set, torch.arange(start, min(start + batch_size, len(eval_set))))
        clips.append(clip)
        preds.append(rollout(run.model, run.diffusion, run.layout, run.codecs,
                             run.config.regions, clip, steps=1, seed=run.config.seed + start))
    return {"clip": {k: torch.cat([c[k] for c in clips]) for k in clips[0]},
            "pred": {r: torch.cat([p[r] for p in preds]) for r in preds[0]}}


def latest_summary(run_dir: Path) -> dict | None:
    """The newer of the run's evaluation.json (written by `evaluate`) and summary.json."""
    files = [f for f in (run_dir / "summary.json", run_dir / "evaluation.json") if f.exists()]
    if not files:
        return None
    return json.loads(max(files, key=lambda f: f.stat().st_mtime_ns).read_text())


def draw_run(run_dir: str | Path, run=None, examples: dict | None = None) -> list[Path]:
    """Draw loss.png, filmstrip.png, actions.png (every held-out episode), horizon.png and
    rollout.gif in `run_dir`; returns the paths written.

    Without `run` / `examples`, the run is loaded from its newest checkpoint and four held-out
    episodes are sampled with the run's seed.
    """
    run_dir = Path(run_dir)
    if run is None:
        run, _ = load_run(run_dir)
    if examples is None:
        examples = sample_examples(run, episodes=min(4, run.config.eval_episodes),
                                   seed=run.config.seed)  # up to 4: as many as are held out
    return draw_all(run_dir, run, examples, points=heldout_points(run),
                    summary=latest_summary(run_dir))
