"""Run an experiment: train every arm × seed with the library's trainer (resumable: a finished
run is reused, an interrupted one continues from its checkpoint), measure it, and write the
report.

Layout on disk:

    RUNS/<settings key>-s<seed>/       a run directory of `train` + experiment_result.json
    OUT/<experiment>/results.json       every run's result, the analysis
    OUT/<experiment>/report.md, *.png   the report

A run's directory is named by its settings (`registry.run_key`), so experiments that share an
arm share its runs; a measurement one experiment needs and another did not take (loop
statistics, unrolling, halting) is added to the run's result without retraining.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from canvas_engineering.atomic import atomic_write_text
from canvas_engineering.errors import RunError, bad
from canvas_engineering.experiments import evaluate
from canvas_engineering.experiments.registry import (
    PRESETS,
    Arm,
    Experiment,
    Preset,
    get_experiment,
    with_seed,
)
from canvas_engineering.training.config import TrainConfig
from canvas_engineering.training.loop import load_run, train
from canvas_engineering.training.run_files import identity

RESULT = "experiment_result.json"
OPTIONAL = ("loop_stats", "loop_stats_unrolled", "unroll", "halting", "gates")  # taken when asked for


def needs(exp: Experiment, arm: Arm) -> set[str]:
    """The measurements `exp` takes of `arm`."""
    out = {"heldout"}
    for key, names in (("loop_stats", exp.loop_stats), ("unroll", exp.unroll),
                       ("halting", exp.halting)):
        if arm.name in names:
            out.add(key)
    if "loop_stats" in out:
        out.add("gates")
    return out


def heldout_curve(run_dir: Path) -> list[dict]:
    """The trainer's held-out rows (at every checkpoint): [{"step", "heldout/<region>"...}]."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [{k: v for k, v in r.items() if k == "step" or k.startswith("heldout/")}
            for r in rows if any(k.startswith("heldout/") for k in r)]


def run_one(config: TrainConfig, arm: Arm, wanted: set[str], preset: Preset, *,
            device: str | None = None, log=print) -> dict:
    """Train (or reuse) one run and take the measurements in `wanted`; returns its result."""
    run_dir = Path(config.out)
    path = run_dir / RESULT
    result = json.loads(path.read_text()) if path.exists() else None
    if result is not None and result.get("identity") != identity(config.to_json()):
        raise RunError(f"{path}: made with other settings than this arm's; remove the directory "
                       "or choose another --runs")
    missing = wanted - set(result or {})
    if not missing:
        log(f"  {run_dir.name}: reused")
        return result
    began = time.perf_counter()
    if result is None:
        log(f"  {run_dir.name}: training {arm.label}, seed {config.seed}, {config.steps} steps")
        summary = train(config, resume=True, progress=False, evaluate_at_end=False)
        result = {"identity": identity(config.to_json()), "arm": arm.name, "seed": config.seed,
                  "train": summary}
        missing = set(wanted)
    run, _ = load_run(run_dir)
    model = run.model.to(device) if device else run.model
    result["params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    result["curve"] = heldout_curve(run_dir)
    x0 = evaluate.heldout_positions(run, preset.eval_items)
    loops = run.model.config.loops
    if "heldout" in missing:
        result["heldout"] = evaluate.heldout_loss(run, model, x0, draws=preset.eval_noise)
    if "loop_stats" in missing:
        result["loop_stats"] = evaluate.loop_statistics(run, model, x0, group=arm.group)
    if "gates" in missing:  # the learned loop gates (0 at init with the default gate)
        result["gates"] = [b.loop_gate.detach().tolist() for b in model.blocks]
    if "unroll" in missing:
        result["unroll"] = {str(k): v for k, v in evaluate.unrolled(
            run, model, x0, draws=preset.eval_noise, up_to=2 * loops).items()}
        model.eval()
        for block in model.blocks:  # the loop statistics when unrolled to 2L loops
            block.unroll = True
        result["loop_stats_unrolled"] = evaluate.loop_statistics(run, model, x0, loops=2 * loops)
        for block in model.blocks:
            block.unroll = False
    if "halting" in missing:
        result["halting"] = evaluate.halting_measurement(run, model, x0,
                                                         draws=preset.eval_noise)
    result["eval_seconds"] = round(time.perf_counter() - began, 1)
    atomic_write_text(path, json.dumps(result, indent=1))
    log(f"  {run_dir.name}: held-out loss {result['heldout']['total']:.4f} "
        f"({result['eval_seconds']:.0f} s)")
    return result


def run_experiment(name: str, *, preset: str | Preset = "cpu", seeds=None,
                   out: str | Path = "runs/experiments", runs: str | Path | None = None,
                   device: str | None = None, log=print, report: bool = True) -> dict:
    """Run (or resume) experiment `name` and write its results and report under OUT/name."""
    exp = get_experiment(name)
    p = PRESETS[preset] if isinstance(preset, str) else preset
    preset_name = preset if isinstance(preset, str) else "custom"
    seeds = tuple(p.seeds if seeds is None else seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise bad("seeds", list(seeds), "distinct ints, at least one")
    out = Path(out)
    runs = Path(runs) if runs is not None else out / "runs"
    configs = exp.resolve(p, str(runs))
    log(f"{exp.title}: {len(exp.arms)} arms x {len(seeds)} seeds, preset {preset_name}")
    arms: dict = {a.name: {"label": a.label, "blocks": a.blocks, "loops": a.loops,
                           "backbone_options": configs[a.name].backbone_options, "runs": {}}
                  for a in exp.arms}
    for seed in seeds:
        for arm in exp.arms:
            wanted = needs(exp, arm)
            res = run_one(with_seed(configs[arm.name], seed), arm, wanted, p, device=device,
                          log=log)
            if "unroll" in wanted:
                wanted.add("loop_stats_unrolled")
            # only this experiment's measurements (a shared run may hold others')
            arms[arm.name]["runs"][str(seed)] = {k: v for k, v in res.items()
                                                 if k not in OPTIONAL or k in wanted}
            arms[arm.name]["params"] = res["params"]
    results = {"experiment": name, "title": exp.title, "preset": preset_name,
               "seeds": list(seeds), "train": {k: v for k, v in configs[exp.arms[0].name]
                                               .replace(out="").__dict__.items()
                                               if k in ("steps", "batch_size", "lr", "canvas",
                                                        "image_size", "t_power")},
               "eval": {"items": p.eval_items, "noise_draws": p.eval_noise},
               "device": device or ("cuda" if torch.cuda.is_available() else "cpu"),
               "arms": arms}
    if report:
        from canvas_engineering.experiments.report import write_report

        write_report(exp, results, out / name)
        log(f"wrote {out / name / 'report.md'}")
    return results
