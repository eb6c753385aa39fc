"""Peak activation memory and time of a looped block, loops 1–4, with and without per-loop
gradient checkpointing.

A frozen pre-norm transformer block (d=256, 4 heads, MLP 4×) at N=1,024 tokens is wrapped in
`LoopedBlockWrapper` (the graft's freeze="full" setting: only loop parameters train) and timed
over forward + backward. Memory is the peak of tensor bytes alive during forward + backward
beyond those alive before (parameters and the input), counted by a dispatch mode that sees
every tensor allocated, so it works on CPU where PyTorch keeps no allocator statistics.

Prints one JSON line per case, then a summary line with the ratios of the target
(PRODUCT.md §4: with checkpointing, peak at 3 loops ≤ 1.5 × peak at 1 loop). Compare ratios
within one run; absolute times depend on the machine.

    python benchmarks/looped.py [--tokens 1024] [--dim 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import weakref

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from canvas_engineering import LoopedBlockWrapper


class Block(nn.Module):
    """Pre-norm self-attention + MLP block on `(B, N, D)`."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, hidden_states):
        B, N, D = hidden_states.shape
        q, k, v = self.qkv(self.norm1(hidden_states)).view(B, N, 3, self.heads, -1).unbind(2)
        a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                           v.transpose(1, 2))  # (B, h, N, D/h)
        h = hidden_states + self.out(a.transpose(1, 2).reshape(B, N, D))
        return h + self.mlp(self.norm2(h))


class PeakBytes(TorchDispatchMode):
    """Track bytes of tensor storages created inside the mode that are still alive; keep peak."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self._seen: set[int] = set()

    def _free(self, key: int, nbytes: int) -> None:
        self._seen.discard(key)
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key, nbytes = id(storage), storage.nbytes()
            if key in self._seen or nbytes == 0:
                continue
            self._seen.add(key)
            self.live += nbytes
            self.peak = max(self.peak, self.live)
            weakref.finalize(storage, self._free, key, nbytes)
        return out


def fwd_bwd(wrapper: nn.Module, x: torch.Tensor, loops: int) -> None:
    wrapper(x, loops=loops).square().mean().backward()
    wrapper.zero_grad(set_to_none=True)


def measure(dim: int, tokens: int, loops: int, checkpoint: bool, repeats: int) -> dict:
    torch.manual_seed(0)
    block = Block(dim, heads=4).requires_grad_(False)
    wrapper = LoopedBlockWrapper(block, dim=dim, max_loops=4, checkpoint=checkpoint)
    with torch.no_grad():
        wrapper.loop_gate.fill_(0.5)  # as after some training: every loop contributes
    x = torch.randn(1, tokens, dim)
    fwd_bwd(wrapper, x, loops)  # warm-up
    with PeakBytes() as mem:
        fwd_bwd(wrapper, x, loops)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fwd_bwd(wrapper, x, loops)
        times.append(time.perf_counter() - t0)
    return {"benchmark": "looped_memory", "dim": dim, "tokens": tokens, "loops": loops,
            "checkpoint": checkpoint, "peak_activation_mib": round(mem.peak / 2**20, 2),
            "fwd_bwd_ms": round(1e3 * statistics.median(times), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = {}
    for checkpoint in (False, True):
        for loops in (1, 2, 3, 4):
            row = measure(args.dim, args.tokens, loops, checkpoint, args.repeats)
            rows[checkpoint, loops] = row
            print(json.dumps(row), flush=True)
    peak = {k: r["peak_activation_mib"] for k, r in rows.items()}
    ms = {k: r["fwd_bwd_ms"] for k, r in rows.items()}
    ratio = peak[True, 3] / peak[True, 1]
    print(json.dumps({
        "benchmark": "looped_memory_summary",
        "peak_ratio_ckpt_L3_over_ckpt_L1": round(ratio, 3),
        "peak_ratio_ckpt_L3_over_plain_L1": round(peak[True, 3] / peak[False, 1], 3),
        "peak_ratio_plain_L3_over_plain_L1": round(peak[False, 3] / peak[False, 1], 3),
        "time_ratio_ckpt_L3_over_plain_L3": round(ms[True, 3] / ms[False, 3], 3),
        "target_peak_ratio_le": 1.5, "meets_target": ratio <= 1.5,
    }))


if __name__ == "__main__":
    main()
