"""Mask compilation time and peak memory: dense (N, N) mask vs FlexAttention BlockMask.

One JSON line per (canvas, topology, form); time is the median of 3 builds. Peak memory is the
largest resident-set growth seen by a 1 ms sampler thread during a separate build, so it counts
temporaries, not just the result.
The public package takes ~390 s (dense) and ~49 s (causal_temporal) at N = 16,384 on these
machines and always builds a dense float mask; the target is < 1 s for every case at 16,384 and a
block-sparse form within N²/64 bytes.

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
    parser.add_argument("--quick", action="store_true", help="skip the 16,384 dense masks")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    canvases = {"robot_320": robot().layout, "mid_4096": mid_layout(),
                "computer_use_16384": computer_use().layout}
    warm = canvases["robot_320"]  # load FlexAttention's code once, outside the measurements
    lower(CanvasTopology.dense(warm.region_names), warm).block_mask()
    for cname, layout in canvases.items():
        N = layout.num_positions
        for tname, topo in topologies(layout).items():
            forms = {"block_sparse": lambda t=topo, lay=layout: lower(t, lay).block_mask()}
            if not (args.quick and N > 4096):
                forms["dense"] = lambda t=topo, lay=layout: t.to_attention_mask(lay)
            for form, build in forms.items():
                elapsed, peak = seconds(build), peak_growth(build)
                print(json.dumps({
                    "benchmark": "mask_compile", "canvas": cname, "N": N, "topology": tname,
                    "form": form, "seconds_median_of_3": round(elapsed, 4),
                    "peak_rss_growth_mib": round(peak / 2**20, 2),
                    "n2_over_64_mib": round(N * N / 64 / 2**20, 2),
                    "within_memory_target": form == "dense" or peak <= N * N / 64,
                    "under_1s": elapsed < 1.0}), flush=True)


if __name__ == "__main__":
    main()
