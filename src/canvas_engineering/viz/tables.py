"""Text tables: a canvas's regions, its topology's mask densities, a run's held-out errors."""

from __future__ import annotations

from canvas_engineering.lowering.masks import lower
from canvas_engineering.spec.schema import CanvasSchema
from canvas_engineering.spec.topology import CanvasTopology
from canvas_engineering.training.evaluation import summary_rows


def region_table(schema: CanvasSchema) -> str:
    """One line per region: name, bounds, positions, period, loss weight, share of the canvas."""
    layout = schema.layout
    header = (f"{'region':<16} {'bounds (t0,t1,h0,h1,w0,w1)':<28} {'positions':>9} "
              f"{'period':>6} {'loss_w':>6} {'output':>6} {'share':>7}")
    rows = [header]
    for name, spec in layout.regions.items():
        share = spec.num_positions / layout.num_positions
        rows.append(f"{name:<16} {spec.bounds!s:<28} {spec.num_positions:>9} {spec.period:>6} "
                    f"{spec.loss_weight:>6g} {spec.is_output!s:>6} {share:>7.1%}")
    covered = sum(s.num_positions for s in layout.regions.values())
    rows.append(f"{'(unallocated)':<16} {'':<28} {layout.num_positions - covered:>9}")
    return "\n".join(rows)


def density_table(schema: CanvasSchema) -> str:
    """Mask density of the schema's topology and of the standard constructors on its regions."""
    layout = schema.layout
    topologies = {
        "declared": schema.topology,
        "dense": CanvasTopology.dense(layout),
        "isolated": CanvasTopology.isolated(layout),
        "causal_temporal": CanvasTopology.causal_temporal(layout),
    }
    lines = []
    for name, topo in topologies.items():
        lines.append(f"  {name:<16} {len(topo.connections):>4} connections   "
                     f"mask density {lower(topo, layout).density():7.2%}")
    return "\n".join(lines)


def summary_table(metrics: dict) -> str:
    """One line per (region, predictor): held-out mean squared error and a note (the verdict
    against the model, or the share of the gap to the floor the model closes)."""
    lines = [f"{'region':<10} {'predictor':<16} {'mse':>10}  note"]
    for region, name, value, note in summary_rows(metrics):
        lines.append(f"{region:<10} {name:<16} {value:>10.5f}  {note}")
    return "\n".join(lines)


def samples_table(metrics: dict) -> str:
    """One line per region: the samples' CRPS against a Gaussian around the point prediction,
    spread over skill (1 = calibrated), and the errors of one sample and of their mean."""
    header = (f"{'region':<10} {'k':>2} {'crps':>9} {'gaussian':>9} {'spread/skill':>12} "
              f"{'mse 1 sample':>12} {'mse mean-of-k':>13}")
    lines = [header]
    for region, s in metrics["samples"].items():
        ratio = "n/a" if s["spread_skill"] is None else f"{s['spread_skill']:.2f}"
        lines.append(f"{region:<10} {s['k']:>2} {s['crps']:>9.5f} {s['crps_gaussian']:>9.5f} "
                     f"{ratio:>12} {s['mse_one_sample']:>12.5f} {s['mse_mean_of_k']:>13.5f}")
    return "\n".join(lines)
