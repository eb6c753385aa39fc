"""Per-step time and peak memory of the canvas CogVideoX backbone on the CogVideoX-2b
architecture (random weights, built from its config, frozen blocks in bf16), 1 vs 3 loops, with
and without per-loop checkpointing; plus the trainable parameter counts (seed 004's budget table).

    python benchmarks/cogvideox_backbone.py                  # N ≈ 256 positions, 2 blocks (CPU)
    python benchmarks/cogvideox_backbone.py --blocks 30 --positions 4096 --device cuda

Prints one JSON line per setting. On a CPU, time all 30 blocks only with patience: each block is
~56 M parameters, so `--blocks` (default 2 on CPU) keeps the first k blocks and the line says so;
parameter counts are always for the full model (counted on the meta device).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from canvas_engineering.data.codecs import make_codecs
from canvas_engineering.models.cogvideox import CanvasCogVideoX, CogVideoXConfig
from canvas_engineering.spec.layout import CanvasLayout, RegionSpec
from canvas_engineering.spec.topology import CanvasTopology


def canvas(positions: int, d_model: int):
    """A one-region canvas of ~`positions` positions: T frames of 16 × 16 (or 8 × 8)."""
    side = 16 if positions >= 256 else 8
    T = max(1, positions // (side * side))
    layout = CanvasLayout(T=T, H=side, W=side, d_model=d_model, t_current=max(1, T // 2),
                          regions={"x": RegionSpec((0, T, 0, side, 0, side))})
    codecs = make_codecs(layout, {"x": {"kind": "vector", "dim": side * side * 4}})
    return layout, codecs


def transformer_2b(blocks: int | None, device: str, dtype=torch.bfloat16):
    from diffusers import CogVideoXTransformer3DModel  # config defaults are exactly the 2B

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # build straight in bf16: fp32 first would need ~7 GB
    try:
        with torch.device(device):
            model = CogVideoXTransformer3DModel(num_layers=blocks or 30)
    finally:
        torch.set_default_dtype(previous)
    return model.requires_grad_(False).eval()


def budget(d_model: int, loops: int) -> dict:
    """Trainable parameter counts for the full 30-block 2B (meta device: no memory)."""
    from diffusers import CogVideoXTransformer3DModel

    with torch.device("meta"):  # the frozen 2B: shapes only
        frozen = CogVideoXTransformer3DModel()
    layout, codecs = canvas(256, d_model)  # the trainables are small: build them for real
    cfg = CogVideoXConfig("meta", d_model=d_model, loops=loops)
    model = CanvasCogVideoX(layout, CanvasTopology.dense(layout), codecs, cfg, transformer=frozen)
    parts = {}
    for name, p in model.named_parameters():
        key = name.split(".")[-1] if name.startswith("blocks.") else name.split(".")[0]
        parts[key] = parts.get(key, 0) + p.numel()
    return {"frozen": sum(p.numel() for p in frozen.parameters()),
            "trainable": sum(parts.values()), "parts": parts,
            "inner_dim": frozen.config.num_attention_heads * frozen.config.attention_head_dim}


def peak_mb(device: str) -> float:
    """Peak GPU memory allocated, or the process's peak RSS on a CPU (each setting runs in its
    own process, so the peak is that setting's)."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def time_step(frozen, layout, codecs, loops, ckpt, device, batch, repeats) -> dict:
    torch.manual_seed(0)
    cfg = CogVideoXConfig("2b-random", d_model=layout.d_model, loops=loops, checkpoint=ckpt)
    model = CanvasCogVideoX(layout, CanvasTopology.dense(layout), codecs, cfg,
                            transformer=frozen).to(device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    x = {r: torch.randn(batch, c.num_positions, c.position_dim, device=device)
         for r, c in codecs.items()}
    t = torch.rand(batch, device=device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats + 1):  # the first is a warm-up
        began = time.perf_counter()
        loss = sum((v - x[r]).pow(2).mean() for r, v in model(x, t).items())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - began)
    return {"step_s": round(min(times[1:]), 3), "peak_mb": round(peak_mb(device), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--positions", type=int, default=256)
    ap.add_argument("--blocks", type=int, default=None, help="first k blocks (default: 2 on "
                    "CPU, all 30 on GPU)")
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # "loops,ckpt": one setting
    args = ap.parse_args()
    blocks = args.blocks or (30 if args.device.startswith("cuda") else 2)
    if args.one is None:
        for loops in (1, 3):
            print(json.dumps({"budget": f"2B, 30 blocks, L={loops}, d_model={args.d_model}",
                              **budget(args.d_model, loops)}), flush=True)
        for one in ("1,0", "1,1", "3,0", "3,1"):  # each in its own process: its own peak
            subprocess.run([sys.executable, __file__, *sys.argv[1:], "--one", one], check=True)
        return
    loops, ckpt = int(args.one.split(",")[0]), args.one.endswith("1")
    frozen = transformer_2b(blocks, args.device)
    layout, codecs = canvas(args.positions, args.d_model)
    row = {"positions": layout.num_positions, "blocks": blocks, "loops": loops,
           "checkpoint": ckpt, "device": args.device, "batch": args.batch}
    row.update(time_step(frozen, layout, codecs, loops, ckpt, args.device, args.batch,
                         args.repeats))
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
