"""CanViT per-glimpse cost, side by side in one run (inference, batch 1, float32, CPU).

Cases, interleaved round by round, minimum over --reps rounds (a loaded machine inflates
absolute times; ratios from interleaved runs hold better):
- canvit_b16_step: one CanViT-B/16 glimpse step, 128 px glimpse, 32×32 canvas (init_state
  included, as the reference's latency protocol does);
- vit_b16_512px: a plain ViT-B/16 (the same blocks, no canvas) on the full 512 px scene;
- canvit_b16_qkvo_step: the qkvo ablation's step (canvas-side projections);
- reference_canvit_b16_step: canvit-pytorch 0.2.1's step, when it is importable.
Each case prints one JSON line; the last line gives the ratios. On a CPU shared with other
jobs, --threads 1 is far steadier than 2 (two threads oversubscribed swung times by 5x).

    python benchmarks/canvit.py [--reps 5] [--threads 2] [--grid 32]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from canvas_engineering.canvit import CanViT, Viewpoint, preset
from canvas_engineering.canvit.backbone import Backbone
from canvas_engineering.canvit.rope import rope_periods, rope_table
from canvas_engineering.canvit.viewpoint import grid_coords


def plain_vit(backbone: Backbone, image: torch.Tensor) -> torch.Tensor:
    """A ViT forward over the whole image: [CLS, patches] through the blocks."""
    x = backbone.patch_embed(image)  # (B, N, D)
    x = torch.cat([x[:, :1] * 0, x], dim=1)
    g = image.shape[-1] // backbone.spec.patch_size
    table = rope_table(grid_coords(g).flatten(0, 1), rope_periods(backbone.spec.head_dim))
    for block in backbone.blocks:
        x = block(x, table)
    return x


def cases(grid: int) -> dict:
    torch.manual_seed(0)
    ours = CanViT(preset("vitb16")).eval()
    qkvo = CanViT(preset("vitb16", canvas_projections="qkvo")).eval()
    glimpse, scene = torch.randn(1, 3, 128, 128), torch.randn(1, 3, 512, 512)
    vp = Viewpoint.full_scene(1)

    def step(model):
        return lambda: model(glimpse=glimpse, state=model.init_state(1, grid), viewpoint=vp)

    out = {"canvit_b16_step": step(ours), "vit_b16_512px": lambda: plain_vit(ours.backbone, scene),
           "canvit_b16_qkvo_step": step(qkvo)}
    try:
        import canvit_pytorch as ref
    except ImportError:
        return out
    theirs = ref.CanViT(ref.CanViTConfig()).eval()
    theirs.load_state_dict(ours.state_dict())
    ref_vp = ref.Viewpoint(centers=vp.centers, scales=vp.scales)
    out["reference_canvit_b16_step"] = lambda: theirs(
        glimpse=glimpse, state=theirs.init_state(batch_size=1, canvas_grid_size=grid),
        viewpoint=ref_vp)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--grid", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = cases(args.grid)
    best = dict.fromkeys(runs, float("inf"))
    with torch.inference_mode():
        for fn in runs.values():  # warm-up
            fn()
        for _ in range(args.reps):
            for name, fn in runs.items():
                t = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - t)
    for name, seconds in best.items():
        print(json.dumps({"case": name, "ms": round(seconds * 1e3, 1), "reps": args.reps,
                          "threads": args.threads, "grid": args.grid}))
    ratios = {"vit512_over_canvit_step": best["vit_b16_512px"] / best["canvit_b16_step"],
              "qkvo_over_asymmetric": best["canvit_b16_qkvo_step"] / best["canvit_b16_step"],
              "glimpses_per_s": 1 / best["canvit_b16_step"]}
    if "reference_canvit_b16_step" in best:
        ratios["ours_over_reference"] = best["canvit_b16_step"] / best["reference_canvit_b16_step"]
    print(json.dumps({"case": "ratios", **{k: round(v, 2) for k, v in ratios.items()}}))


if __name__ == "__main__":
    main()
