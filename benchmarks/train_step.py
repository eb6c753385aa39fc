"""One training step of the canvas world model against a plain dense transformer of the same
size, measured interleaved in one run.

The world model is the main job's (the robot canvas, the `cpu` preset: D = 64, 4 heads, 3
blocks, the region convolution, the video path) at each loop count; the plain transformer has the same width, heads, SwiGLU width and
adaLN-Zero blocks, n_blocks × loops layers (the world model's effective depth), and dense
softmax attention over all N canvas positions. A step is forward, MSE loss, backward and an
AdamW step on random inputs (batch assembly and noise are left out: they are the same for
both). Target: world / plain ≤ 1.25 at 3 loops on CPU. `--checkpoint` adds the world model
with checkpointed loops and the looped blocks' forward alone: checkpointing recomputes each
loop's forward on backward, so its overhead over the unchecked step should stay within that
forward's share of the step (`checkpoint_overhead` ≤ `recompute_share`). Four more world
models show what the blocks' positions, `local_kernel`, `pixel_head` and `video_unet` cost:
`world_whole_canvas` runs its blocks on all N positions, as the model did before it skipped the
ones in no region (the robot canvas: 134 of 320), `world_no_local_kernel` leaves out the region
convolution of the `cpu` preset (`nn/local_mixing.py`), `world_pixel_head` adds
`pixel_head=8` (`nn/pixel_head.py`) and `world_no_video_unet` leaves out its video path
(`nn/video_unet.py`).

Prints one JSON line per (loops, model) and one ratio line per loop count.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/train_step.py [--loops 1 2 3] [--checkpoint]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from canvas_engineering.models.scratch import CanvasWorldModel, SwiGLU, TimestepEmbedder, modulate
from canvas_engineering.training import TrainConfig
from canvas_engineering.training.loop import build


class PlainBlock(nn.Module):
    """Pre-LN adaLN-Zero block with dense multi-head SDPA over every position."""

    def __init__(self, D: int, heads: int, hidden: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.qkv, self.out = nn.Linear(D, 3 * D), nn.Linear(D, D)
        self.norm2 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.mlp = SwiGLU(D, hidden)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(D, 6 * D))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        sa, ca, ga, sm, cm, gm = self.ada(c).chunk(6, dim=-1)
        B, N, D = x.shape
        q, k, v = self.qkv(modulate(self.norm1(x), sa, ca)).view(B, N, 3, self.heads, -1) \
            .permute(2, 0, 3, 1, 4)  # 3 × (B, h, N, d)
        o = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, D)
        x = x + ga.unsqueeze(1) * self.out(o)
        return x + gm.unsqueeze(1) * self.mlp(modulate(self.norm2(x), sm, cm))


class PlainTransformer(nn.Module):
    def __init__(self, d_in: int, D: int, heads: int, hidden: int, depth: int):
        super().__init__()
        self.enc, self.dec = nn.Linear(d_in, D), nn.Linear(D, d_in)
        self.t = TimestepEmbedder(D)
        self.blocks = nn.ModuleList(PlainBlock(D, heads, hidden) for _ in range(depth))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h, c = self.enc(x), self.t(t)
        for b in self.blocks:
            h = b(h, c)
        return self.dec(h)


def stepper(model: nn.Module, inputs: tuple, loss_fn):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        loss = loss_fn(model(*inputs))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def blocks_forward(model: CanvasWorldModel, t: torch.Tensor):
    """The looped blocks' forward alone, with autograd recording: what checkpointing reruns."""
    h = torch.randn(len(t), len(model.held), model.config.d_model)  # the positions it runs on

    def fwd():
        c, x = model.t_embedder(t), h
        for block in model.blocks:
            x = block(x, c)

    return fwd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--checkpoint", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    run = build(TrainConfig(train_episodes=8, eval_episodes=8, loops=max(args.loops)))
    layout, B = run.layout, args.batch_size
    cfg = run.model.config
    N, D = layout.num_positions, cfg.d_model
    hidden = max(1, round(cfg.mlp_ratio * D))
    torch.manual_seed(0)
    x = {r: torch.randn(B, c.num_positions, c.position_dim) for r, c in run.codecs.items()}
    t = torch.rand(B)

    def world(positions=None, **changes):
        """A world model of the run's config with `changes`, and its timed step."""
        model = CanvasWorldModel(layout, run.topology, run.codecs,
                                 dataclasses.replace(cfg, **changes), positions=positions)
        loss = lambda out: sum(F.mse_loss(v, x[r]) for r, v in out.items())
        return model, stepper(model, (x, t), loss)

    for loops in args.loops:
        steps = {}
        model, steps["world"] = world(loops=loops)
        if args.checkpoint:
            steps["world_blocks_forward"] = blocks_forward(model, t)
            steps["world_checkpointed"] = world(loops=loops, checkpoint=True)[1]
        steps["world_whole_canvas"] = world(torch.arange(N), loops=loops)[1]
        steps["world_no_local_kernel"] = world(loops=loops, local_kernel=0)[1]
        steps["world_pixel_head"] = world(loops=loops, pixel_head=8)[1]
        steps["world_no_video_unet"] = world(loops=loops, video_unet=0, video_unet_aux=0.0)[1]
        plain = PlainTransformer(8, D, cfg.n_heads, hidden, cfg.n_blocks * loops)
        xp = torch.randn(B, N, 8)
        steps["plain"] = stepper(plain, (xp, t), lambda out, xp=xp: F.mse_loss(out, xp))
        times: dict[str, list[float]] = {k: [] for k in steps}
        for fn in steps.values():  # warm-up
            fn()
        for _ in range(args.rounds):  # interleaved rounds: load changes hit every model alike
            for name, fn in steps.items():
                start = time.perf_counter()
                for _ in range(args.steps):
                    fn()
                times[name].append((time.perf_counter() - start) / args.steps)
        med = {k: statistics.median(v) for k, v in times.items()}
        for name, sec in med.items():
            print(json.dumps({"benchmark": "train_step", "loops": loops, "model": name, "N": N,
                              "d_model": D, "batch_size": B, "ms_per_step": round(1000 * sec, 2)}))
        row = {"benchmark": "train_step_ratio", "loops": loops,
               "world_over_plain": round(med["world"] / med["plain"], 3),
               "whole_canvas_over_world": round(med["world_whole_canvas"] / med["world"], 3),
               "world_over_no_local_kernel": round(med["world"] / med["world_no_local_kernel"], 3),
               "pixel_head_over_world": round(med["world_pixel_head"] / med["world"], 3),
               "world_over_no_video_unet": round(med["world"] / med["world_no_video_unet"], 3),
               "target_1_25_met": med["world"] / med["plain"] <= 1.25 if loops == 3 else None}
        if args.checkpoint:
            overhead = med["world_checkpointed"] / med["world"] - 1
            share = med["world_blocks_forward"] / med["world"]
            row |= {"checkpoint_overhead": round(overhead, 3), "recompute_share": round(share, 3),
                    "checkpoint_within_share": overhead <= share}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
