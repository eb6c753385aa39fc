"""matplotlib, the one plotting dependency (the `[train]` extra), on the file-only Agg backend.

Every picture in the package (canvases, runs, the DAG curriculum, CanViT, the experiments)
gets pyplot from here, so the backend and the missing-extra error are decided once.
"""

from __future__ import annotations


def pyplot():
    """matplotlib.pyplot on the Agg backend (PNG files, no display); an ImportError naming the
    extra when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("pictures need matplotlib: pip install "
                          "'canvas-engineering[train]'") from e
    return plt


def save_figure(fig, path, dpi: float | None = None):
    """Write `fig` to `path` (a PNG at `dpi`, default the figure's own) and close it; returns
    `path`."""
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path
