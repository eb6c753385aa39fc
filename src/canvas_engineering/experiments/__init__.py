"""Reproducing seed 002's looped-attention experiments with the library's own model, objective
and trainer (a leaf: nothing in the core imports it).

    canvas-engineering experiment exp6 --preset cpu --seeds 0,1,2

`registry` holds experiments as data, `definitions` the paper's, `runner` trains and measures
(resumable), `stats` the fixed-in-advance statistics, `report` and `plots` the output.
"""

from canvas_engineering.experiments import definitions as _definitions  # noqa: F401 (registers)
from canvas_engineering.experiments.registry import (
    EXPERIMENTS,
    PRESETS,
    Arm,
    Claim,
    Experiment,
    Preset,
    get_experiment,
    register_experiment,
)
from canvas_engineering.experiments.runner import run_experiment

__all__ = ["EXPERIMENTS", "PRESETS", "Arm", "Claim", "Experiment", "Preset", "get_experiment",
           "register_experiment", "run_experiment"]
