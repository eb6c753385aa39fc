"""The `experiment` subcommand: run one of seed 002's experiments and write its report.

    canvas-engineering experiment exp6 [--seeds 0,1,2] [--preset cpu|paper] [--device cuda]
                                       [--out DIR] [--runs DIR]
    canvas-engineering experiment list
    canvas-engineering experiment summary --out DIR     (the verdict table of DIR's reports)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from canvas_engineering.experiments.registry import EXPERIMENTS, PRESETS


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"got {text!r}, expected seeds like 0,1,2") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"got {text!r}, expected distinct ints >= 0 like 0,1,2")
    return seeds


def add_subcommands(sub, parents) -> None:
    p = sub.add_parser("experiment", parents=parents, help="rerun one of the paper's "
                       "experiments (seed 002) and write a report with verdicts",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=[*sorted(EXPERIMENTS), "list", "summary"],
                   help="the experiment; 'list' describes them, 'summary' prints the verdict "
                        "table of every report under --out")
    p.add_argument("--preset", choices=sorted(PRESETS), default="cpu",
                   help="cpu: minutes on 2 cores; paper: seed 002's toy size (d 128, N 120, "
                        "3,000 steps, 5 seeds) for a GPU")
    p.add_argument("--seeds", type=_seeds, default=None, help="comma-separated (default: the "
                   "preset's)")
    p.add_argument("--device", default=None, help="evaluation device (training uses CUDA when "
                   "there is one)")
    p.add_argument("--out", type=Path, default=Path("runs/experiments"),
                   help="reports go to OUT/<experiment>/")
    p.add_argument("--runs", type=Path, default=None, help="run directories (default OUT/runs; "
                   "finished runs there are reused)")


def handle(args) -> int:
    if args.name == "list":
        for exp in EXPERIMENTS.values():
            print(f"{exp.name:6s} {exp.title}: {', '.join(a.label for a in exp.arms)}")
        return 0
    if args.name == "summary":
        from canvas_engineering.experiments.report import verdict_table

        print(verdict_table(args.out), end="")
        return 0
    from canvas_engineering.experiments.runner import run_experiment

    run_experiment(args.name, preset=args.preset, seeds=args.seeds, out=args.out, runs=args.runs,
                   device=args.device)
    return 0
