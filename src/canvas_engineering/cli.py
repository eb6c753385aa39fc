"""The `canvas-engineering` command-line tool. Thin: it calls the library and prints.

    canvas-engineering                 # train the built-in robot canvas (the default job)
    canvas-engineering train [--config run.json] [--resume | --checkpoint FILE] [--key=value ...]
    canvas-engineering evaluate --run runs/robot [--checkpoint FILE]
    canvas-engineering sample --run runs/robot [--checkpoint FILE] [--episodes N]
    canvas-engineering report [--out DIR] [--canvas robot]   # region maps, densities, pictures
    canvas-engineering inspect schema.json
    canvas-engineering show [schema.json [other.json]] [--out DIR]   # regions, topology, mask
    canvas-engineering train-dag --pretrained_model_id DIR [--make-tiny]  # DAG curriculum
    canvas-engineering experiment exp6 [--preset cpu|paper] [--seeds 0,1,2]  # seed 002's claims

Bad input ends with one line on stderr, "error: ...", and exit status 2; --debug shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from canvas_engineering.errors import int_argument
from canvas_engineering.spec.canvases import PRESETS
from canvas_engineering.spec.schema import CanvasSchema
from canvas_engineering.viz.canvas_report import report


def _train(args, overrides: list[str]) -> int:
    from canvas_engineering.training import TrainConfig, train
    from canvas_engineering.viz.run_report import draw_run, print_summary

    config = TrainConfig.from_file(args.config) if args.config else TrainConfig()
    config = config.with_overrides(overrides)
    summary = train(config, resume=args.resume, checkpoint=args.checkpoint,
                    progress=not args.no_progress)
    if "eval" in summary:  # the main process evaluated the run
        print_summary(summary, config.sample_steps)
        print("plots: " + ", ".join(str(p) for p in draw_run(config.out)))
    print(f"run: {config.out} ({summary['steps']} steps, {summary['train_seconds']} s)")
    return 0


def _evaluate(args) -> int:
    from canvas_engineering.training.loop import load_run
    from canvas_engineering.training.report import finish
    from canvas_engineering.viz.run_report import draw_run, print_summary

    run, step = load_run(args.run, args.checkpoint)
    print(f"{args.run}: checkpoint at step {step}")
    # Its own file: the run's summary.json stays as training wrote it (and is reproduced).
    summary, examples = finish(run, run.model, Path(args.run), name="evaluation.json")
    print_summary(summary, run.config.sample_steps)
    if not args.no_plots:
        print("plots: " + ", ".join(str(p) for p in draw_run(args.run, run, examples)))
    return 0


def _sample(args) -> int:
    from canvas_engineering.training.loop import load_run
    from canvas_engineering.viz.run_plots import actions, filmstrip
    from canvas_engineering.viz.run_report import sample_examples

    run, _ = load_run(args.run, args.checkpoint)
    examples = sample_examples(run, args.episodes, args.seed)
    for path in (filmstrip(Path(args.run), run, examples), actions(Path(args.run), run, examples)):
        if path is not None:
            print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="canvas-engineering", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command")

    def add(name: str, **kw) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kw)

    tr = add("train", help="train a canvas world model (the default command); "
                        "override any config key with --key=value")
    tr.add_argument("--config", type=Path, help="a JSON file of TrainConfig fields")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out")
    tr.add_argument("--checkpoint", type=Path, help="continue the run from this checkpoint "
                    "(an older one, when the newest is damaged)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")
    ev = add("evaluate", help="held-out evaluation of a run against baselines")
    ev.add_argument("--run", required=True, type=Path, help="run directory")
    ev.add_argument("--checkpoint", type=Path, help="this checkpoint instead of the newest")
    ev.add_argument("--no-plots", action="store_true")
    sa = add("sample", help="roll out held-out episodes and draw them")
    sa.add_argument("--run", required=True, type=Path, help="run directory")
    sa.add_argument("--checkpoint", type=Path, help="this checkpoint instead of the newest")
    sa.add_argument("--episodes", type=int_argument(1), default=3, help="held-out episodes to draw")
    sa.add_argument("--seed", type=int_argument(0), default=0)
    rep = add("report", help="region maps, mask densities and pictures of the "
                                        "built-in canvases")
    rep.add_argument("--canvas", choices=sorted(PRESETS), action="append",
                     help="only this built-in canvas (repeatable; default: all)")
    rep.add_argument("--out", type=Path, default=Path("canvas_out"),
                     help="directory for the PNG pictures (default: canvas_out)")
    ins = add("inspect", help="report on a schema JSON file")
    ins.add_argument("path", type=Path)
    ins.add_argument("--out", type=Path, default=None, help="directory for a PNG picture")
    from canvas_engineering.training import dag_cli

    dag_cli.add_parser(sub, [common])
    from canvas_engineering.viz import show as show_cli

    show_cli.add_parser(sub, [common])
    from canvas_engineering.canvit import cli as canvit_cli

    canvit_cli.add_subcommands(sub, [common])
    from canvas_engineering.experiments import cli as experiment_cli

    experiment_cli.add_subcommands(sub, [common])

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
        if args.command == "train-dag":
            from canvas_engineering.viz.dag_plot import draw_dag_losses

            return dag_cli.handle(args, draw=draw_dag_losses)
        if args.command == "sample":
            return _sample(args)
        if args.command == "show":
            return show_cli.handle(args)
        if args.command == "canvit":
            return canvit_cli.handle(args)
        if args.command == "experiment":
            return experiment_cli.handle(args)
        if args.command == "inspect":
            schema = CanvasSchema.from_json(args.path)
            report(schema, args.path.stem, args.out)
            return 0
        for name in args.canvas or list(PRESETS):
            report(PRESETS[name](), name, args.out)
        return 0
    except (OSError, ValueError, ImportError) as e:  # every CanvasError is a ValueError
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
