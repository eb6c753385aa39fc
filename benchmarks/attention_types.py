"""How the attention types scale: forward + backward time at N and 4N positions, one run.

Target (PRODUCT.md §4): linear-time types take at most 5x the time at 4N (not 16x). Each line is
one JSON object per type; `cross_attention` (quadratic) is printed as a reference, as are mamba
with its default attention readout (O(N) scan, O(N·M) readout) and mixture (router O(N·M / bs)).

    python benchmarks/attention_types.py [--n 1024] [--d-model 64] [--reps 5]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time

import torch

from canvas_engineering.attention import create_attention

# (type, options, complexity, held to the 5x target)
CASES = [
    ("linear_attention", {}, "O(N+M)", True),
    ("pooling", {}, "O(N+M)", True),
    ("copy", {}, "O(N+M log M)", True),
    ("mamba", {"readout": "state"}, "O(N+M)", True),
    ("rwkv", {}, "O(N+M)", True),
    ("hyena", {}, "O(M log M+N)", True),
    ("local_attention", {"window": 1}, "O(N·W)", True),
    ("perceiver", {"n_latents": 16}, "O(K·(N+M))", True),
    ("random_fixed", {"k": 16}, "O(N·k)", True),
    ("mixture", {"block_size": 32, "top_r": 2}, "O(N·(M/bs+r·bs))", False),  # routing ∝ N·M/bs
    ("none", {}, "O(0)", True),
    ("mamba", {}, "O(M) scan + O(N·M) readout", False),
    ("cross_attention", {}, "O(N·M)", False),
]


def grid(t: int, h: int, w: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product(range(t), range(h), range(w))))


def time_fwd_bwd(m: torch.nn.Module, n: int, d_model: int, reps: int) -> float:
    """Median seconds of one forward + backward of a self-connection over n positions."""
    coords = grid(n // 256, 16, 16)  # T x 16 x 16 canvas, t-major
    x = torch.randn(1, n, d_model, requires_grad=True)
    times = []
    for i in range(reps + 1):
        t0 = time.perf_counter()
        out = m(x, x, q_coords=coords, kv_coords=coords)
        if out.requires_grad:
            out.square().mean().backward()
        if i:  # the first run is a warm-up
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1024, help="positions (a multiple of 256)")
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args()
    torch.manual_seed(0)
    for name, options, complexity, held in CASES:
        m = create_attention(name, d_model=args.d_model, n_heads=args.heads, **options)
        t1 = time_fwd_bwd(m, args.n, args.d_model, args.reps)
        t4 = time_fwd_bwd(m, 4 * args.n, args.d_model, args.reps)
        ratio = t4 / max(t1, 1e-9)
        print(json.dumps({
            "benchmark": "attention_scaling", "type": name, "options": options,
            "complexity": complexity, "n": args.n, "fwd_bwd_ms_n": round(1e3 * t1, 3),
            "fwd_bwd_ms_4n": round(1e3 * t4, 3), "ratio_4n": round(ratio, 2),
            "target": 5.0 if held else None, "meets_target": (ratio <= 5.0) if held else None,
            "threads": torch.get_num_threads(),
        }), flush=True)


if __name__ == "__main__":
    main()
