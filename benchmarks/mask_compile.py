"""Mask compilation time and peak memory: dense (N, N) mask vs FlexAttention BlockMask, and how
many of the BlockMask's non-empty 128×128 blocks are full, in the canvas order and in the
execution order the dispatcher runs (`Lowering.order`).

One JSON line per (canvas, topology, form); time is the median of 3 builds (lowering included).
Peak memory is the largest resident-set growth seen by a 1 ms sampler thread during a separate
build, so it counts temporaries, not just the result. Block-sparse lines carry
`full_block_fraction` (full / non-empty blocks) for their order; a last line per topology gives
the build-time growth from N = 65,536 to 262,144 (4× N; target ≤ 6×).
The public package takes ~390 s (dense) and ~49 s (causal_temporal) at N = 16,384 on these
machines and always builds a dense float mask; the target is < 1 s for every case at 16,384, a
block-sparse form within N²/64 bytes, and ≥ 90% full blocks for dense and isolated topologies
in the execution order.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/mask_compile.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time

import torch

from canvas_engineering import CanvasLayout, CanvasTopology, Connection, RegionSpec
from canvas_engineering.lowering.masks import lower
from canvas_engineering.spec.canvases import computer_use, robot

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def peak_growth(fn) -> int:
    """Peak resident-set growth (bytes) while fn() runs, sampled every millisecond."""
    base, peak, done = rss(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss() - base)
            time.sleep(0.001)

    t = threading.Thread(target=sample)
    t.start()
    fn()
    peak[0] = max(peak[0], rss() - base)
    done.set()
    t.join()
    return peak[0]


def seconds(fn, repeats: int = 3) -> float:
    """Median wall time of fn(), measured without the memory sampler (reading /proc while the
    process page-faults a 1 GiB mask slows it several-fold)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def mid_layout() -> CanvasLayout:
    """N = 4,096: 16 frames of 16×16, a camera, proprioception, actions and a slow plan."""
    return CanvasLayout(T=16, H=16, W=16, d_model=256, regions={
        "camera": (0, 16, 0, 12, 0, 12), "proprio": (0, 16, 12, 13, 0, 8),
        "action": (0, 16, 13, 14, 0, 8), "plan": RegionSpec((0, 4, 14, 16, 0, 8), period=4)})


def multi_robot_dag(layout: CanvasLayout) -> CanvasTopology:
    """A DAG with temporal offsets and fills over the layout's regions (the first four; fewer
    regions are reused)."""
    names = layout.region_names
    a, b, c, d = (names[i % len(names)] for i in range(4))
    return CanvasTopology([
        Connection(a, a, t_src=0, t_dst=0), Connection(a, a, t_src=0, t_dst=-1),
        Connection(b, a, t_src=0, t_dst=0), Connection(c, b, t_src=0, t_dst=-1),
        Connection(c, a, t_src=0, t_dst=0, weight=0.5), Connection(d, c, t_src=0, t_dst=0,
                                                                    temporal_fill="interpolate"),
        Connection(a, d, t_src=0, t_dst=0), Connection(b, d, t_src=0, t_dst=-1,
                                                       temporal_fill="drop"),
        Connection(c, c), Connection(d, d)])


def scaled_computer_use(k: int) -> CanvasLayout:
    """The computer-use canvas (16 frames) with every spatial extent × k: N = 16,384 · k²."""
    regions = {n: (0, 16, *(k * b for b in r.bounds[2:]))
               for n, r in computer_use().layout.regions.items()}
    return CanvasLayout(T=16, H=32 * k, W=32 * k, d_model=256, regions=regions)


def full_fraction(bm) -> float:
    """Full blocks / non-empty blocks of a BlockMask."""
    full = int(bm.full_kv_num_blocks.sum())
    return full / max(full + int(bm.kv_num_blocks.sum()), 1)


def topologies(layout: CanvasLayout) -> dict[str, CanvasTopology]:
    names = layout.region_names
    return {
        "dense": CanvasTopology.dense(names),
        "isolated": CanvasTopology.isolated(names),
        "hub_spoke": CanvasTopology.hub_spoke(names[-1], names[:-1]),
        "causal_chain": CanvasTopology.causal_chain(names),
        "causal_temporal": CanvasTopology.causal_temporal(names),
        "multi_robot_dag": multi_robot_dag(layout),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true",
                        help="skip the 16,384 dense masks and the 262,144 canvas")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    canvases = {"robot_320": robot().layout, "mid_4096": mid_layout(),
                "computer_use_16384": computer_use().layout,
                "computer_use_65536": scaled_computer_use(2)}
    if not args.quick:
        canvases["computer_use_262144"] = scaled_computer_use(4)
    warm = canvases["robot_320"]  # load FlexAttention's code once, outside the measurements
    lower(CanvasTopology.dense(warm.region_names), warm).block_mask()
    build_s: dict[tuple[str, str, str], float] = {}
    for cname, layout in canvases.items():
        N = layout.num_positions
        for tname, topo in topologies(layout).items():
            forms = {f"block_sparse_{order}": lambda t=topo, lay=layout, o=order:
                     lower(t, lay).block_mask(order=o) for order in ("canvas", "execution")}
            if N <= 16384 and not (args.quick and N > 4096):
                forms["dense"] = lambda t=topo, lay=layout: t.to_attention_mask(lay)
            for form, build in forms.items():
                elapsed, peak = seconds(build), peak_growth(build)
                build_s[cname, tname, form] = elapsed
                row = {"benchmark": "mask_compile", "canvas": cname, "N": N, "topology": tname,
                       "form": form, "seconds_median_of_3": round(elapsed, 4),
                       "peak_rss_growth_mib": round(peak / 2**20, 2),
                       "n2_over_64_mib": round(N * N / 64 / 2**20, 2),
                       "within_memory_target": form == "dense" or peak <= N * N / 64,
                       "under_1s": elapsed < 1.0}
                if form != "dense":
                    row["full_block_fraction"] = round(full_fraction(build()), 4)
                print(json.dumps(row), flush=True)
    if "computer_use_262144" in canvases:
        for tname in topologies(canvases["robot_320"]):
            for form in ("block_sparse_canvas", "block_sparse_execution"):
                growth = build_s["computer_use_262144", tname, form] / \
                    build_s["computer_use_65536", tname, form]
                print(json.dumps({"benchmark": "mask_compile_growth", "topology": tname,
                                  "form": form, "N_from": 65536, "N_to": 262144,
                                  "time_ratio": round(growth, 2), "within_6x": growth <= 6}),
                      flush=True)


if __name__ == "__main__":
    main()
