"""One plot of every node's training loss in a DAG curriculum run (from `out/dag.json`)."""

from __future__ import annotations

import json
from pathlib import Path

from canvas_engineering.integrations.plotting import pyplot, save_figure


def draw_dag_losses(out: str | Path) -> Path:
    """Draw each node's loss per step, in training order, to `out/dag_loss.png`."""
    plt = pyplot()
    out = Path(out)
    dag = json.loads((out / "dag.json").read_text())
    fig, ax = plt.subplots(figsize=(7, 4))
    offset = 0
    for name in dag["order"]:
        node = dag["nodes"].get(name)
        if node is None:
            continue
        steps = [offset + s for s, _ in node["losses"]]
        ax.plot(steps, [v for _, v in node["losses"]], label=name)
        offset += node["steps"]  # nodes run one after another: one shared step axis
    ax.set_xlabel("step (nodes in training order)")
    ax.set_ylabel("diffusion loss")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title(f"DAG curriculum ({dag['backbone']} backbone)")
    path = out / "dag_loss.png"
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    return path
