"""The built-in DAG curriculum on the built-in push task, and the `train-dag` subcommand.

    vision  (visual)  ─┐
                       ├─> robot (visual, action, reward)
    control (action,  ─┘
             reward)

`canvas-engineering train-dag --pretrained_model_id DIR` trains it; `--make-tiny` first saves a
tiny random CogVideoX to DIR (CPU-sized, for trying the pipeline without real weights).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from canvas_engineering.data import PushConfig, PushDataset
from canvas_engineering.training.dag import TrainingNode
from canvas_engineering.training.dag_trainer import DAGCurriculumTrainer


def builtin_dag(steps: int = 60, batch_size: int = 8, lr: float = 3e-3) -> list[TrainingNode]:
    """Vision and control roots joined into the full robot node."""
    kw = {"data_sources": ["push"], "steps": steps, "batch_size": batch_size, "lr": lr,
          "checkpoint_every": max(1, steps // 4)}
    return [
        TrainingNode("vision", regions=["visual"], description="frames alone", **kw),
        TrainingNode("control", regions=["action", "reward"], description="actions and reward",
                     **kw),
        TrainingNode("robot", regions=["visual", "action", "reward"],
                     parents=["vision", "control"], description="the full robot canvas", **kw),
    ]


def builtin_sources(episodes: int = 256, seed: int = 0) -> dict:
    """The push task's episodes at the robot canvas's clip length (5 frames of 24 × 24)."""
    return {"push": PushDataset(episodes, seed=seed, config=PushConfig(n_frames=5))}


def add_parser(sub, parents) -> None:
    p = sub.add_parser("train-dag", parents=parents, help="train the built-in DAG curriculum "
                       "(vision + control → robot) on the push task")
    p.add_argument("--pretrained_model_id", "--pretrained-model-id", default=None,
                   help="local CogVideoX directory or cached hub id (backbone cogvideox)")
    p.add_argument("--backbone", choices=["cogvideox", "scratch"], default="cogvideox")
    p.add_argument("--make-tiny", action="store_true", help="first save a tiny random "
                   "CogVideoX to --pretrained_model_id (when it holds no model yet)")
    p.add_argument("--out", type=Path, default=Path("runs/dag"))
    p.add_argument("--steps", type=int, default=60, help="steps per node")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--episodes", type=int, default=256)
    p.add_argument("--dtype", default="float32", choices=["bfloat16", "float16", "float32"],
                   help="of the frozen blocks (float32 is fastest on most CPUs)")
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=0)


def handle(args, draw=None) -> int:
    """Run the `train-dag` subcommand; `draw(out_dir)` (the faces' plot) returns a path."""
    if args.make_tiny:
        from canvas_engineering.models.cogvideox_load import save_tiny_cogvideox

        if not args.pretrained_model_id:
            raise ValueError("--make-tiny: got no --pretrained_model_id, expected the "
                             "directory to save the tiny model to")
        if not (Path(args.pretrained_model_id) / "config.json").exists():
            save_tiny_cogvideox(args.pretrained_model_id)
            print(f"saved a tiny random CogVideoX to {args.pretrained_model_id}")

    def progress(node: str, step: int, loss: float) -> None:
        if step % 10 == 0:
            print(f"{node:>8} step {step:4d} loss {loss:.4f}", flush=True)

    trainer = DAGCurriculumTrainer(
        builtin_dag(args.steps, args.batch_size), builtin_sources(args.episodes, args.seed),
        backbone=args.backbone, pretrained_model_id=args.pretrained_model_id,
        device=args.device, out=args.out, seed=args.seed, pretrained_dtype=args.dtype,
        on_step=progress)
    summaries = trainer.run()
    for name, s in summaries.items():
        print(f"{name:>8}: loss {s['loss_first']:.4f} -> {s['loss_last']:.4f}, "
              f"{s['trainable_parameters']:,} trainable, merge {s['merge']}")
    if draw is not None:
        print(f"plot: {draw(args.out)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"), [])
    raise SystemExit(handle(parser.parse_args()))
