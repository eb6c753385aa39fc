"""AttentionDispatcher speed on CPU: one JSON line per case.

1. dense: a 4-region dense topology vs the same attention layer written as ONE
   `scaled_dot_product_attention` call with the topology's (N, N) additive mask (same
   projections), forward and forward+backward, N ≈ 1k-4k. Target: ratio ≤ 1.3.
2. sparse: 8 regions, each reading its r nearest regions (r = 8 … 1, density ≈ r/8, r = 1 is
   the isolated topology), at one N: time should fall with density.
3. mixed: the seed's 8-connection, 7-type canvas (N = 2048).
4. fleet: the seed's 50-vehicle `Fleet` compiled by `compile_schema` (~1,350 connections). The
   public package takes ~0.9 s forward and ~12 s forward+backward on its own layout of it
   (N = 13,345); the target is at least 10× faster.

Run: OMP_WAIT_POLICY=PASSIVE python benchmarks/dispatcher.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F

from canvas_engineering import AttentionDispatcher, CanvasLayout, CanvasTopology, Connection
from canvas_engineering.spec.layout import RegionSpec

D, HEADS, B = 64, 4, 1


def timed(fn, repeats: int) -> float:
    """Median seconds of `fn()` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def band_layout(T: int, n_regions: int, H: int = 16, W: int = 16) -> CanvasLayout:
    """n_regions horizontal bands of a T × H × W canvas, covering it."""
    rows = H // n_regions
    return CanvasLayout(T=T, H=H, W=W, d_model=D, regions={
        f"r{i}": RegionSpec((0, T, i * rows, (i + 1) * rows, 0, W)) for i in range(n_regions)})


def fwd_and_bwd(layer, x):
    def fwd():
        with torch.no_grad():
            layer(x)

    def fwd_bwd():
        layer(x).sum().backward()

    return fwd, fwd_bwd


def dense_case(T: int, repeats: int) -> dict:
    layout = band_layout(T, 4)
    topo = CanvasTopology.dense(layout)
    disp = AttentionDispatcher(topo, layout, D, HEADS)
    attn = disp.attn["cross_attention"]
    mask = topo.to_additive_mask(layout)  # (N, N), built once like the dispatcher's plan
    scale = 1 / math.sqrt(attn.d_head)

    def one_sdpa(x):  # the reference: same layer, one SDPA call with the equivalent mask
        q, k, v = attn.project(x, x)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
        return attn.out_proj(o.transpose(1, 2).reshape(x.shape))

    def one_sdpa_unmasked(x):  # for context: the dispatcher needs no mask when all is connected
        q, k, v = attn.project(x, x)
        o = F.scaled_dot_product_attention(q, k, v, scale=scale)
        return attn.out_proj(o.transpose(1, 2).reshape(x.shape))

    x = torch.randn(B, layout.num_positions, D, requires_grad=True)
    torch.testing.assert_close(disp(x), one_sdpa(x), atol=1e-4, rtol=1e-4)
    d_f, d_fb = fwd_and_bwd(disp, x)
    s_f, s_fb = fwd_and_bwd(one_sdpa, x)
    u_fb = fwd_and_bwd(one_sdpa_unmasked, x)[1]
    out = {"case": "dense_4_regions", "N": layout.num_positions, "d_model": D, "heads": HEADS,
           "dispatcher_fwd_s": timed(d_f, repeats), "sdpa_fwd_s": timed(s_f, repeats),
           "dispatcher_fwd_bwd_s": timed(d_fb, repeats), "sdpa_fwd_bwd_s": timed(s_fb, repeats)}
    out["sdpa_unmasked_fwd_bwd_s"] = timed(u_fb, repeats)
    out["ratio_fwd"] = out["dispatcher_fwd_s"] / out["sdpa_fwd_s"]
    out["ratio_fwd_bwd"] = out["dispatcher_fwd_bwd_s"] / out["sdpa_fwd_bwd_s"]
    out["target_ratio_fwd_bwd"] = 1.3
    return out


def sparse_case(T: int, reach: int, n_regions: int, repeats: int) -> dict:
    layout = band_layout(T, n_regions)
    names = layout.region_names
    topo = CanvasTopology([Connection(a, names[(i + j) % n_regions])
                           for i, a in enumerate(names) for j in range(reach)])
    disp = AttentionDispatcher(topo, layout, D, HEADS)
    x = torch.randn(B, layout.num_positions, D, requires_grad=True)
    f, fb = fwd_and_bwd(disp, x)
    return {"case": "sparse_reach", "N": layout.num_positions, "regions": n_regions,
            "reach": reach, "density": topo.density(layout),
            "dispatcher_fwd_s": timed(f, repeats), "dispatcher_fwd_bwd_s": timed(fb, repeats)}


def mixed_case(repeats: int) -> dict:
    """The seed's visual / proprio / thought / goal canvas with its 8 connections of 7 types."""
    layout = CanvasLayout(T=8, H=16, W=16, d_model=D, regions={
        "visual": RegionSpec((0, 8, 0, 12, 0, 12), default_attn="cross_attention"),
        "proprio": RegionSpec((0, 8, 12, 13, 0, 2), default_attn="linear_attention"),
        "thought": RegionSpec((0, 4, 13, 15, 0, 4), default_attn="mamba"),
        "goal": RegionSpec((0, 1, 15, 16, 0, 4), is_output=False)})
    topo = CanvasTopology([
        Connection("visual", "visual"), Connection("proprio", "proprio"),
        Connection("thought", "thought"), Connection("goal", "goal"),
        Connection("visual", "goal", fn="gated"), Connection("thought", "visual", fn="perceiver"),
        Connection("proprio", "visual", fn="pooling"),
        Connection("thought", "thought", fn="copy", t_src=0, t_dst=-1)])
    disp = AttentionDispatcher(topo, layout, D, HEADS)
    x = torch.randn(B, layout.num_positions, D, requires_grad=True)
    f, fb = fwd_and_bwd(disp, x)
    return {"case": "mixed_seed_topology", "N": layout.num_positions, "types": len(disp.attn),
            "dispatcher_fwd_s": timed(f, repeats), "dispatcher_fwd_bwd_s": timed(fb, repeats)}


def fleet_case(repeats: int) -> dict:
    """Seed 000's fleet of 50 vehicles, compiled from typed dataclasses."""
    from canvas_engineering import compile_schema
    from canvas_engineering.spec.canvases import fleet

    bound = compile_schema(fleet(50), d_model=D)
    start = time.perf_counter()
    disp = AttentionDispatcher(bound.topology, bound.layout, D, HEADS)
    built = time.perf_counter() - start
    x = torch.randn(B, bound.layout.num_positions, D, requires_grad=True)
    f, fb = fwd_and_bwd(disp, x)
    return {"case": "fleet_50_vehicles", "N": bound.layout.num_positions,
            "connections": len(bound.topology.connections), "build_s": built,
            "dispatcher_fwd_s": timed(f, repeats), "dispatcher_fwd_bwd_s": timed(fb, repeats),
            "public_package_fwd_s": 0.9, "public_package_fwd_bwd_s": 12.0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller N, fewer repeats")
    args = p.parse_args()
    torch.manual_seed(0)
    repeats = 3 if args.quick else 7
    for T in ((4, 8) if args.quick else (4, 8, 16)):  # N = T·256: 1k, 2k, 4k
        print(json.dumps(dense_case(T, repeats)), flush=True)
    T = 8 if args.quick else 16
    for reach in (8, 4, 2, 1):
        print(json.dumps(sparse_case(T, reach, 8, repeats)), flush=True)
    print(json.dumps(mixed_case(repeats)), flush=True)
    print(json.dumps(fleet_case(repeats)), flush=True)


if __name__ == "__main__":
    main()
