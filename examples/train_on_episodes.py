"""Train the canvas world model on a directory of your own robot episodes (in the place of seed
000's train_bridge_v2.py: no download, your data).

    python examples/train_on_episodes.py DIR --arrays '{"video": "rgb", "action": "act"}'
    python examples/train_on_episodes.py demo_episodes --make-demo 24   # try it on the push task

DIR holds one episode per file (`.npz` or HDF5): frames (T, 3, S, S) in [-1, 1], actions
(T, A), optionally rewards (T, 1); `--arrays` maps the canvas's data keys (video, action,
reward) to your array names. `--eval-episodes` files (by name) are held out and never trained
on; the run directory gets metrics, checkpoints, summary.json and plots. Any other
`--key=value` is a `TrainConfig` field (e.g. --steps=2000 --preset=paper-toy). Needs the
`[train]` extra. Same as `canvas-engineering train --data=DIR --arrays=...`.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from canvas_engineering import PushConfig, PushDataset, TrainConfig, train
from canvas_engineering.viz.run_report import draw_run, print_summary

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("data", type=Path, help="directory of episode files")
p.add_argument("--arrays", type=json.loads, default={"video": "rgb", "action": "act",
                                                    "reward": "rew"},
               help="JSON: canvas data key -> array name in your files")
p.add_argument("--make-demo", type=int, default=0, metavar="N",
               help="first write N push-task episodes to DATA under the default array names")
p.add_argument("--out", default="runs/episodes")
args, overrides = p.parse_known_args()

if args.make_demo:  # stand-in for your recordings: 12 frames each, saved as plain .npz
    args.data.mkdir(parents=True, exist_ok=True)
    demo = PushDataset(args.make_demo, seed=1, config=PushConfig(n_frames=12, image_size=24))
    for i in range(args.make_demo):
        ep = demo[i]
        np.savez(args.data / f"episode_{i:03d}.npz", rgb=ep["video"].numpy(),
                 act=ep["action"].numpy(), rew=ep["reward"].numpy())
    print(f"wrote {args.make_demo} episodes to {args.data}")

config = TrainConfig(data=str(args.data), arrays=args.arrays, out=args.out,
                     eval_episodes=4).with_overrides(overrides)
summary = train(config)
print_summary(summary, config.sample_steps)
print("plots: " + ", ".join(str(p) for p in draw_run(config.out)))
print(f"run: {config.out} ({summary['steps']} steps; episodes {summary['episodes']})")
