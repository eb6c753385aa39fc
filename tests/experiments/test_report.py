"""The report's analysis on made-up results whose verdicts are known by construction."""

from __future__ import annotations

from canvas_engineering.experiments.registry import Arm, Claim, Experiment
from canvas_engineering.experiments.report import analyse, render

EXP = Experiment("demo", "Demo", "?", (Arm("a", "A", 3, 4), Arm("b", "B", 3, 1)),
                 (Claim("a beats b", "a", "b", "1.5x", 1.2),), curve=("a beats b",))


def results(curve_b):
    """Arm a's held-out error is 1.0 at every step; b's is curve_b[step] times a seed factor."""
    def run(loss, curve):
        return {"heldout": {"total": loss},
                "curve": [{"step": s, "heldout/x": v} for s, v in curve.items()]}

    seeds = [0, 1, 2]
    wobble = {0: 1.0, 1: 1.02, 2: 0.98}
    return {"seeds": seeds, "arms": {
        "a": {"label": "A", "params": 1, "runs": {str(s): run(1.0, {k: 1.0 for k in curve_b})
                                                  for s in seeds}},
        "b": {"label": "B", "params": 1, "runs": {
            str(s): run(1.3 * wobble[s], {k: v * wobble[s] for k, v in curve_b.items()})
            for s in seeds}}}}


def test_claim_and_curve_verdicts():
    early = analyse(EXP, results({100: 1.4, 200: 1.2, 300: 1.05, 400: 1.02}))["claims"][0]
    assert early["verdict"] == "reproduced"  # ratios 1.3, 1.326, 1.274: interval above 1.2
    assert early["curve_peak"]["step"] == 100
    assert early["curve_verdict"] == "peaks early and shrinks (the paper's shape)"
    late = analyse(EXP, results({100: 1.02, 200: 1.1, 300: 1.2, 400: 1.4}))["claims"][0]
    assert late["curve_verdict"] == "a benefit that does not peak early and shrink"
    none = analyse(EXP, results({100: 1.0, 200: 1.0}))["claims"][0]
    assert none["curve_verdict"] == "no step shows a benefit with its interval above 1"


def test_rules_come_before_the_numbers():
    r = {**results({100: 1.2}), "preset": "x", "device": "cpu", "eval": {"items": 1,
         "noise_draws": 1}, "train": {"steps": 1, "batch_size": 1, "lr": 1}}
    text = render(EXP, r, analyse(EXP, r), [])
    assert text.index("Verdict rules") < text.index("| a beats b |")
