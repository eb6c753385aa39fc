"""Look at a procedural scene through coarse-to-fine glimpses and watch the canvas fill in.

    python examples/canvit_active_vision.py                       # an untrained tiny CanViT
    python examples/canvit_active_vision.py --model runs/canvit/model --plot filmstrip.png

With a pretrained model (`canvas-engineering canvit pretrain`), the canvas cells' readout
approaches the teacher's full-resolution features of the whole scene as the glimpses zoom in.
"""

from __future__ import annotations

import argparse

import torch

from canvas_engineering.canvit import CanViT, make_policy, preset, sample_at_viewpoint
from canvas_engineering.canvit.scenes import texture_scenes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a CanViT checkpoint directory (default: untrained tiny)")
    parser.add_argument("--glimpses", type=int, default=9)
    parser.add_argument("--plot", help="write a filmstrip PNG here (needs matplotlib)")
    args = parser.parse_args()

    model = (CanViT.from_pretrained(args.model) if args.model else CanViT(preset("tiny"))).eval()
    scene = texture_scenes(1, 128, seed=7)[0]  # (1, 3, 128, 128)
    grid = 128 // model.patch_size  # one canvas cell per 8 px patch of the scene
    viewpoints = make_policy("coarse_to_fine", 1, args.glimpses, torch.Generator().manual_seed(0))
    state = model.init_state(1, grid)
    with torch.no_grad():
        for t, vp in enumerate(viewpoints):
            glimpse = sample_at_viewpoint(scene, vp, 32)  # (1, 3, 32, 32)
            out = model(glimpse=glimpse, state=state, viewpoint=vp)
            change = (out.state.canvas - state.canvas).norm() / state.canvas.norm()
            state = out.state
            print(f"t={t} centre={vp.centers[0].tolist()} scale={vp.scales[0].item():.2f} "
                  f"canvas change {change.item():.3f}")
    print("canvas", tuple(state.canvas.shape), "grid", tuple(model.canvas_patch_grid(
        state.canvas).shape), "cls", tuple(state.recurrent_cls.shape),
        "glimpse patches", tuple(out.glimpse_patches.shape))
    if args.plot:
        from canvas_engineering.canvit.plots import filmstrip

        print("wrote", filmstrip(model, scene[0], viewpoints, 32, grid, args.plot))


if __name__ == "__main__":
    main()
