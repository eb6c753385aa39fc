"""Two reference learners on the built-in push task, trained on the main job's data and sample
budget and scored like it: what the task asks of any model, not a speed benchmark.

- `cnn`: a small convolutional regressor from pixels. It sees what the world model sees (the
  two context frames and their actions) and predicts the three future frames (as change from
  the last context frame, at pixel resolution), the three future actions and the reward.
- `state_mlp`: an MLP given the simulator's true state instead of pixels (agent and object
  positions at the two context frames, the goal, the two context actions) that predicts the
  future actions and the reward: perfect perception, so what is left is learning the scripted
  policy and the dynamics from that many samples.

Both train with AdamW (one-cycle learning rate) on squared error, each output divided by its
baseline's error so the three weigh alike, for `steps` × `batch` samples drawn from
`episodes` training episodes; `--scale K` multiplies steps and episodes by K. Their errors on
the job's 128 held-out episodes are compared with the job's baselines (mean action and reward,
last frame copied) and floor (`PushDataset.future_mean`, 64 Monte Carlo futures), as
`canvas-engineering train` reports them (`gap`: the share of the baseline-to-floor gap closed).

Prints one JSON line per (learner, scale).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/push_references.py [--scale 1 4] [--learners cnn]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

from canvas_engineering.data import PushConfig, PushDataset
from canvas_engineering.data.push import make_episode
from canvas_engineering.training import scores
from canvas_engineering.training.batches import EVAL_SEED_OFFSET, STATS_CLIPS, collate
from canvas_engineering.training.evaluation import collate_floor

T_CURRENT = 2  # the robot canvas's: frames 0 and 1 are context, 2..4 the future


class FrameRegressor(nn.Module):
    """Context frames (B, 2, 3, S, S) and actions (B, 2, 2) → future frames (B, 3, 3, S, S),
    actions (B, 3, 2) and reward (B, 1). A two-scale convolutional net: actions enter as
    constant channels, a stride-2 trunk with residual convolutions, a transposed convolution
    back to pixels with a skip from the first layer, and pooled trunk features for the vectors."""

    def __init__(self, width: int = 32, image_size: int = 24):
        super().__init__()
        self.size = image_size
        self.stem = nn.Conv2d(2 * 3 + 2 * 2, width, 3, padding=1)
        self.down = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.trunk = nn.ModuleList(nn.Conv2d(2 * width, 2 * width, 3, padding=1)
                                   for _ in range(3))
        self.up = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.merge = nn.Conv2d(2 * width, width, 3, padding=1)
        self.frames = nn.Conv2d(width, 3 * 3, 3, padding=1)
        self.vectors = nn.Sequential(nn.Linear(4 * width + 4, 256), nn.SiLU(),
                                     nn.Linear(256, 3 * 2 + 1))

    def forward(self, video, action):
        B, S = video.shape[0], self.size
        acts = action.reshape(B, 4)  # (B, 4)
        x = torch.cat([video.reshape(B, 6, S, S), acts[:, :, None, None].expand(B, 4, S, S)], 1)
        skip = F.silu(self.stem(x))  # (B, w, S, S)
        h = F.silu(self.down(skip))  # (B, 2w, S/2, S/2)
        for conv in self.trunk:
            h = h + F.silu(conv(h))
        pooled = torch.cat([h.mean((2, 3)), h.amax((2, 3)), acts], 1)  # (B, 4w + 4)
        vec = self.vectors(pooled)  # (B, 7)
        pixels = F.silu(self.merge(torch.cat([F.silu(self.up(h)), skip], 1)))  # (B, w, S, S)
        change = self.frames(pixels).reshape(B, 3, 3, S, S)
        return video[:, 1:2] + change, vec[:, :6].reshape(B, 3, 2), vec[:, 6:]


class StateRegressor(nn.Module):
    """True state (B, 14): agent and object (x, y) at frames 0 and 1, goal (x, y), actions 0
    and 1 → future actions (B, 3, 2) and reward (B, 1). Inputs standardised on training data."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, width: int = 256):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.net = nn.Sequential(nn.Linear(14, width), nn.SiLU(), nn.Linear(width, width),
                                 nn.SiLU(), nn.Linear(width, width), nn.SiLU(),
                                 nn.Linear(width, 7))

    def forward(self, state):
        out = self.net((state - self.mean) / self.std)  # (B, 7)
        return None, out[:, :6].reshape(-1, 3, 2), out[:, 6:]


def true_state(episodes: dict[str, torch.Tensor]) -> torch.Tensor:
    """The simulator's state at the context frames, flattened. (B, 14)"""
    c = slice(0, T_CURRENT)
    return torch.cat([episodes["agent_xy"][:, c].flatten(1), episodes["object_xy"][:, c]
                      .flatten(1), episodes["goal_xy"][:, 0], episodes["action"][:, c]
                      .flatten(1)], 1)


def load(n: int, seed: int, config: PushConfig) -> dict[str, torch.Tensor]:
    """n episodes with their true state. key -> (n, T, ...)"""
    data = PushDataset(n, seed=seed, config=config)
    items = [make_episode(data.episode_seed(i), config, return_state=True) for i in range(n)]
    return {k: torch.stack([torch.from_numpy(it[k]) for it in items]) for k in items[0]}


def inputs(learner: str, episodes: dict[str, torch.Tensor]) -> tuple:
    if learner == "cnn":
        return episodes["video"][:, :T_CURRENT], episodes["action"][:, :T_CURRENT]
    return (true_state(episodes),)


def targets(episodes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {"visual": episodes["video"][:, T_CURRENT:], "action": episodes["action"][:, T_CURRENT:],
            "reward": episodes["reward"][:, T_CURRENT]}


def run(learner: str, scale: int, args, evaluation: dict) -> dict:
    torch.manual_seed(0)
    config = PushConfig(image_size=24)
    train = load(args.episodes * scale, 0, config)
    steps = args.steps * scale
    if learner == "cnn":
        model = FrameRegressor()
    else:
        state = true_state(train)
        model = StateRegressor(state.mean(0), state.std(0))
    baseline_mse = evaluation["baseline_mse"]
    opt = torch.optim.AdamW(model.parameters(), args.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=steps,
                                                   pct_start=0.1)
    truth, given = targets(train), inputs(learner, train)  # once, not per step
    start = time.perf_counter()
    for step in range(steps):
        idx = torch.randint(0, len(truth["action"]), (args.batch,))
        pred = dict(zip(("visual", "action", "reward"), model(*(x[idx] for x in given))))
        loss = sum(F.mse_loss(p, truth[r][idx]) / baseline_mse[r]
                   for r, p in pred.items() if p is not None)
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        pred = dict(zip(("visual", "action", "reward"),
                        model(*inputs(learner, evaluation["episodes"]))))
    row = {"learner": learner, "scale": scale, "steps": steps, "batch": args.batch,
           "episodes": args.episodes * scale, "train_s": round(seconds, 1)}
    for region, p in pred.items():
        if p is None:
            continue
        truth_r, base, floor = (evaluation[k][region] for k in ("truth", "baseline", "floor"))
        err = scores.mse(p, truth_r)
        gap = scores.gap_closed(scores.mse(base, truth_r), err, scores.mse(floor, truth_r))
        row[region] = {"mse": round(float(err.mean()), 5),
                       "gap": round(gap["share"], 3),
                       "gap_ci95": [round(x, 3) for x in gap["ci95"]]}
    return row


def held_out(n: int, args) -> dict:
    """The job's held-out episodes, baselines and floor. Baselines use the training mean."""
    config = PushConfig(image_size=24)
    held = PushDataset(n, seed=EVAL_SEED_OFFSET, config=config)
    episodes = load(n, EVAL_SEED_OFFSET, config)
    floor = collate_floor(held, torch.arange(n), T_CURRENT, samples=64)
    stats = collate(PushDataset(args.episodes, seed=0, config=config), torch.arange(STATS_CLIPS))
    truth = targets(episodes)
    baseline = {"visual": episodes["video"][:, T_CURRENT - 1:T_CURRENT].expand_as(truth["visual"]),
                "action": stats["action"].mean((0, 1)).expand_as(truth["action"]),
                "reward": stats["reward"].mean((0, 1)).expand_as(truth["reward"])}
    return {"episodes": episodes, "truth": truth, "baseline": baseline,
            "floor": targets(floor),
            "baseline_mse": {r: float(scores.mse(baseline[r], truth[r]).mean()) for r in truth}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", nargs="+", default=["cnn", "state_mlp"],
                        choices=["cnn", "state_mlp"])
    parser.add_argument("--scale", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--steps", type=int, default=1200)  # the main job's
    parser.add_argument("--batch", type=int, default=32)  # the main job's
    parser.add_argument("--episodes", type=int, default=4096)  # the main job's
    parser.add_argument("--lr", type=float, default=2e-3)
    args = parser.parse_args()
    evaluation = held_out(128, args)
    for scale in args.scale:
        for learner in args.learners:
            print(json.dumps(run(learner, scale, args, evaluation)), flush=True)


if __name__ == "__main__":
    main()
