"""The `canvas-engineering` command-line tool. Thin: it calls the library and prints.

    canvas-engineering                 # train the built-in robot canvas (the default job)
    canvas-engineering train [--config run.json] [--resume] [--key=value ...]
    canvas-engineering evaluate --run runs/robot
    canvas-engineering sample --run runs/robot
    canvas-engineering report [--out DIR] [--canvas robot]   # region maps, densities, pictures
    canvas-engineering inspect schema.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from canvas_engineering.lowering.masks import lower
from canvas_engineering.spec.canvases import PRESETS
from canvas_engineering.spec.schema import CanvasSchema
from canvas_engineering.spec.topology import CanvasTopology


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


def report(schema: CanvasSchema, name: str, out: Path | None) -> None:
    layout = schema.layout
    print(f"== {name}: T={layout.T} spatial={layout.spatial_shape} "
          f"N={layout.num_positions} d_model={layout.d_model} t_current={layout.t_current}")
    print(region_table(schema))
    print("topology mask densities (share of the N×N query-key pairs connected):")
    print(density_table(schema))
    if out is not None and len(layout.spatial_shape) == 2:
        from canvas_engineering.viz.canvas_3d import draw_layout

        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{name}.png"
        draw_layout(layout, path, title=f"{name}: {layout.num_positions} positions")
        print(f"picture: {path}")
    print()


def _train(args, overrides: list[str]) -> int:
    from canvas_engineering.training import TrainConfig, train

    config = TrainConfig.from_file(args.config) if args.config else TrainConfig()
    config = config.with_overrides(overrides)
    summary = train(config, resume=args.resume, progress=not args.no_progress)
    print(f"run: {config.out} ({summary['steps']} steps, {summary['train_seconds']} s)")
    return 0


def _evaluate(args) -> int:
    from canvas_engineering.training.loop import load_run
    from canvas_engineering.training.report import finish

    run, step = load_run(args.run)
    print(f"{args.run}: checkpoint at step {step}")
    finish(run, run.model, Path(args.run), plots=not args.no_plots)
    return 0


def _sample(args) -> int:
    from canvas_engineering.training.batches import build_dataset, collate
    from canvas_engineering.training.evaluation import rollout
    from canvas_engineering.training.loop import load_run
    from canvas_engineering.viz.run_plots import actions, filmstrip

    run, _ = load_run(args.run)
    eval_set = build_dataset(run.config, "eval", run.layout.T)
    clip = collate(eval_set, torch.arange(min(args.episodes, len(eval_set))))
    pred = rollout(run.model, run.diffusion, run.layout, run.codecs, run.config.regions, clip,
                   steps=run.config.sample_steps, seed=args.seed)
    for path in (filmstrip(Path(args.run), run, {"clip": clip, "pred": pred}),
                 actions(Path(args.run), run, {"clip": clip, "pred": pred})):
        if path is not None:
            print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="canvas-engineering", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    tr = sub.add_parser("train", help="train a canvas world model (the default command); "
                        "override any config key with --key=value")
    tr.add_argument("--config", type=Path, help="a JSON file of TrainConfig fields")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")
    ev = sub.add_parser("evaluate", help="held-out evaluation of a run against baselines")
    ev.add_argument("--run", required=True, help="run directory")
    ev.add_argument("--no-plots", action="store_true")
    sa = sub.add_parser("sample", help="roll out held-out episodes and draw them")
    sa.add_argument("--run", required=True, help="run directory")
    sa.add_argument("--episodes", type=int, default=3)
    sa.add_argument("--seed", type=int, default=0)
    rep = sub.add_parser("report", help="region maps, mask densities and pictures of the "
                                        "built-in canvases")
    rep.add_argument("--canvas", choices=sorted(PRESETS), action="append",
                     help="only this built-in canvas (repeatable; default: all)")
    rep.add_argument("--out", type=Path, default=Path("canvas_out"),
                     help="directory for the PNG pictures (default: canvas_out)")
    ins = sub.add_parser("inspect", help="report on a schema JSON file")
    ins.add_argument("path", type=Path)
    ins.add_argument("--out", type=Path, default=None, help="directory for a PNG picture")

    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("--") and argv[0] not in ("-h", "--help"):
        argv = ["train", *argv]  # the default job
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "train":
            return _train(args, extra)
        if args.command == "evaluate":
            return _evaluate(args)
        if args.command == "sample":
            return _sample(args)
        if args.command == "inspect":
            schema = CanvasSchema.from_json(args.path)
            report(schema, args.path.stem, args.out)
            return 0
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name in args.canvas or list(PRESETS):
        report(PRESETS[name](), name, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
