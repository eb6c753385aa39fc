"""The report's pictures: ratio bars with intervals, loop statistics vs loop index, benefit vs
step, held-out loss vs unrolled loops. matplotlib (the [train] extra); small PNGs."""

from __future__ import annotations

from pathlib import Path

from canvas_engineering.experiments.registry import Experiment
from canvas_engineering.integrations.plotting import pyplot, save_figure

PAPER_COSINE = [0.926, 0.973, 0.990, 0.996]  # seed 002 Exp 12, loops 1-4
PAPER_VELOCITY = [0.675, 0.133]  # loops 1 and 4


def draw_all(exp: Experiment, results: dict, out: Path) -> list[str]:
    """Every picture the results support; returns their file names (relative to `out`)."""
    names = []
    for name, fn in (("ratios.png", _ratios), ("loop_stats.png", _loop_stats),
                     ("benefit_vs_step.png", _curves), ("unroll.png", _unroll)):
        if fn(results, out / name):
            names.append(name)
    return names


def _ratios(results: dict, path: Path) -> bool:
    claims = results["analysis"]["claims"]
    if not claims:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 1.0 + 0.55 * len(claims)), dpi=90)
    for i, c in enumerate(claims):
        lo, hi = c["ci95"] or (c["gm"], c["gm"])
        ax.errorbar(c["gm"], i, xerr=[[c["gm"] - lo], [hi - c["gm"]]], fmt="o", capsize=4)
        ax.plot(c["ratios"], [i] * len(c["ratios"]), "k.", alpha=0.4)
        ax.plot([c["reproduced_at"]], [i], "r|", markersize=14)
    ax.axvline(1.0, color="grey", lw=1)
    ax.set_yticks(range(len(claims)), [f"{c['claim']}\n({c['verdict']})" for c in claims],
                  fontsize=7)
    ax.set_xlabel("loss ratio control / treatment: gm, 95% CI; dots: seeds; red: bar",
                  fontsize=8)
    ax.invert_yaxis()
    fig.tight_layout()
    save_figure(fig, path)
    return True


def _runs(results: dict, arm: dict) -> list[dict]:
    return [arm["runs"][str(s)] for s in results["seeds"]]


def _loop_stats(results: dict, path: Path) -> bool:
    arms = [(a["label"], _runs(results, a)) for a in results["arms"].values()
            if all("loop_stats" in r for r in _runs(results, a))]
    if not arms:
        return False
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(10, 3), dpi=90)
    for label, runs in arms:
        for key in ("loop_stats", "loop_stats_unrolled"):
            if not all(key in r for r in runs):
                continue
            for ax, stat in zip(axes, ("cosine", "velocity", "norm_ratio")):
                n = len(runs[0][key][stat])
                mean = [sum(r[key][stat][i] for r in runs) / len(runs) for i in range(n)]
                ax.plot(range(1, n + 1), mean, "o-" if key == "loop_stats" else "x:",
                        label=label + (" (unrolled)" if key != "loop_stats" else ""))
                ax.set_title(stat)
                ax.set_xlabel("loop (or block in group)")
    axes[0].plot([1, 2, 3, 4], PAPER_COSINE, "k--", label="paper, Exp 12")
    axes[1].plot([1, 4], PAPER_VELOCITY, "k--", label="paper, Exp 12 (end points)")
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def _curves(results: dict, path: Path) -> bool:
    curves = [c for c in results["analysis"]["claims"] if c.get("curve")]
    if not curves:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=90)
    for c in curves:
        steps = [r["step"] for r in c["curve"]]
        ax.plot(steps, [r["gm"] for r in c["curve"]], "o-", label=c["claim"])
        if all(r["ci95"] for r in c["curve"]):
            ax.fill_between(steps, [r["ci95"][0] for r in c["curve"]],
                            [r["ci95"][1] for r in c["curve"]], alpha=0.2)
    ax.axhline(1.0, color="grey", lw=1)
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out error ratio (gm, 95% CI)")
    ax.legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def _unroll(results: dict, path: Path) -> bool:
    arms = [(a, _runs(results, a)) for a in results["arms"].values()
            if all("unroll" in r for r in _runs(results, a))]
    if not arms:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3), dpi=90)
    for arm, runs in arms:
        keys = sorted(runs[0]["unroll"], key=int)
        for r in runs:
            ax.plot([int(k) for k in keys], [r["unroll"][k]["total"] for k in keys], "-",
                    alpha=0.3, color="C0")
        ax.plot([int(k) for k in keys], [sum(r["unroll"][k]["total"] for r in runs) / len(runs)
                                         for k in keys], "o-", color="C0", label=arm["label"])
        ax.axvline(arm["loops"], color="grey", ls=":", lw=1)
    ax.set_xlabel("loops at evaluation (dotted: trained)")
    ax.set_ylabel("held-out loss")
    ax.legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, path)
    return True
