"""`canvas-engineering canvit …`: pretrain a CanViT offline, probe it. Thin: argparse, then
calls into the package.

    canvas-engineering canvit pretrain [--out runs/canvit] [--steps 2500] [--minutes 30]
    canvas-engineering canvit probe --model runs/canvit/model [--policy coarse_to_fine ...]
"""

from __future__ import annotations

import json
from pathlib import Path

from canvas_engineering.canvit.policies import POLICIES
from canvas_engineering.errors import int_argument


def add_subcommands(sub, parents=()) -> None:
    """Add `canvit` with its own `pretrain` and `probe` subcommands to `sub`."""
    canvit = sub.add_parser("canvit", parents=list(parents),
                            help="CanViT: active vision on a canvas (pretrain, probe)")
    inner = canvit.add_subparsers(dest="canvit_command", required=True)
    pre = inner.add_parser("pretrain", parents=list(parents),
                           help="distil the analytic teacher into a tiny CanViT on built-in "
                                "texture scenes (no download)")
    pre.add_argument("--out", type=Path, default=Path("runs/canvit"))
    pre.add_argument("--steps", type=int_argument(1), default=2500)
    pre.add_argument("--scenes", type=int_argument(1), default=1500)
    pre.add_argument("--batch-size", type=int_argument(1), default=16)
    pre.add_argument("--minutes", type=float, default=0.0, help="stop and save after this long")
    pre.add_argument("--init", type=Path, help="continue from this checkpoint directory")
    pre.add_argument("--seed", type=int_argument(0), default=0)
    pre.add_argument("--threads", type=int_argument(1), default=1,
                     help="torch threads (1 is fastest for the tiny model on a shared CPU)")
    pre.add_argument("--no-progress", action="store_true")
    pr = inner.add_parser("probe", parents=list(parents),
                          help="linear probe of canvas cells per glimpse, with the untrained "
                               "control; writes probe.json and plots")
    pr.add_argument("--model", type=Path, required=True, help="a checkpoint directory")
    pr.add_argument("--policy", choices=sorted(POLICIES), action="append",
                    help="repeatable (default: coarse_to_fine and random)")
    pr.add_argument("--glimpses", type=int_argument(1), default=21)
    pr.add_argument("--train-scenes", type=int_argument(1), default=300)
    pr.add_argument("--test-scenes", type=int_argument(1), default=300)
    pr.add_argument("--grid", type=int_argument(1), default=16, help="canvas grid side G")
    pr.add_argument("--probe-iters", type=int_argument(1), default=400, help="probe optimiser steps")
    pr.add_argument("--out", type=Path, help="directory for probe.json and plots "
                    "(default: next to the model)")
    pr.add_argument("--no-control", action="store_true", help="skip the untrained model")
    pr.add_argument("--no-plots", action="store_true")
    pr.add_argument("--threads", type=int_argument(1), default=1)


def handle(args) -> int:
    import torch

    torch.set_num_threads(args.threads)
    if args.canvit_command == "pretrain":
        from canvas_engineering.canvit.pretrain import PretrainSettings, pretrain

        settings = PretrainSettings(steps=args.steps, scenes=args.scenes,
                                    batch_size=args.batch_size, seed=args.seed,
                                    max_minutes=args.minutes,
                                    warmup=20 if args.init else 200)
        _, history = pretrain(settings, out=args.out, progress=not args.no_progress,
                              init=args.init)
        print(f"run: {args.out} ({history[-1]['step']} steps, loss {history[-1]['loss']:.3f}, "
              f"model in {args.out / 'model'})")
        return 0
    return _probe(args)


def _probe(args) -> int:
    from canvas_engineering.canvit.model import CanViT
    from canvas_engineering.canvit.policies import make_policy
    from canvas_engineering.canvit.probe import probe_report
    from canvas_engineering.canvit.scenes import texture_scenes

    model = CanViT.from_pretrained(args.model)
    policies = args.policy or ["coarse_to_fine", "random"]
    report = probe_report(model, policies, args.glimpses, args.train_scenes, args.test_scenes,
                          grid=args.grid, control=not args.no_control,
                          probe_iters=args.probe_iters)
    out = args.out or args.model.parent
    out.mkdir(parents=True, exist_ok=True)
    (out / "probe.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"majority baseline accuracy {report['majority']:.3f}")
    for name in ("trained", "untrained"):
        for policy, curve in report.get(name, {}).items():
            first, last = curve[0], curve[-1]
            print(f"{name:9s} {policy:20s} fg acc {first['fg_accuracy']:.3f} -> "
                  f"{last['fg_accuracy']:.3f}, mIoU {first['miou']:.3f} -> {last['miou']:.3f}")
    if not args.no_plots:
        from canvas_engineering.canvit.plots import filmstrip, probe_plot

        scene = texture_scenes(1, 128, seed=3000)[0][0]
        vps = make_policy("coarse_to_fine", 1, min(args.glimpses, 9), _generator(0))
        paths = [probe_plot(report, out / "probe.png"),
                 filmstrip(model, scene, vps, 32, args.grid, out / "filmstrip.png")]
        print("plots: " + ", ".join(map(str, paths)))
    return 0


def _generator(seed: int):
    import torch

    return torch.Generator().manual_seed(seed)
