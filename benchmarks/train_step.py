"""Wall time of one training step of the main job (the robot canvas on the built-in task),
as `train()` runs it: batch assembly, noise, forward, backward, optimizer, the per-step checks
and logging. Checkpoints and evaluation are left out (they happen every few hundred steps).

The time per step is read from the run's own metrics.jsonl (`seconds` since the loop began),
from step `--skip` to the end, so start-up and the first slow steps do not count. To compare two
versions of the library, run this script once per version on the same machine, interleaved,
with PYTHONPATH pointing at each version's `src`, and compare the ratios.

Prints one JSON line per repeat and one summary line.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/train_step.py [--steps 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from canvas_engineering.training import TrainConfig, train


def step_seconds(steps: int, skip: int, batch_size: int) -> float:
    """Mean seconds per step from step `skip` to `steps` of one fresh run."""
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(steps=steps, batch_size=batch_size, log_every=skip,
                             checkpoint_every=steps, train_episodes=256, eval_episodes=8,
                             out=out)
        train(config, progress=False, evaluate_at_end=False)
        text = (Path(out) / "metrics.jsonl").read_text()
        rows = [json.loads(line) for line in text.splitlines()]
    first = next(r for r in rows if r["step"] == skip)
    return (rows[-1]["seconds"] - first["seconds"]) / (rows[-1]["step"] - skip)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--skip", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times = []
    for repeat in range(args.repeats):
        seconds = step_seconds(args.steps, args.skip, args.batch_size)
        times.append(seconds)
        print(json.dumps({"case": "train_step", "repeat": repeat, "batch_size": args.batch_size,
                          "ms_per_step": round(1000 * seconds, 1)}))
    print(json.dumps({"case": "summary", "median_ms_per_step":
                      round(1000 * statistics.median(times), 1)}))


if __name__ == "__main__":
    main()
