"""Seed 000's quick start: graft 3-loop attention onto a frozen CogVideoX and train a few steps.

    python examples/quickstart.py                   # a tiny random CogVideoX built from a config
    python examples/quickstart.py --pretrained DIR  # a local CogVideoX (save_pretrained folder,
                                                    # or a pipeline folder with transformer/)

One batch of random latents stands in for video, and its actions are a fixed function of them:
the loops and the action head fit it, so the loss falls. Needs diffusers (the `[video]` extra); nothing is downloaded.
"""

import argparse

import torch
import torch.nn.functional as F
from diffusers import CogVideoXTransformer3DModel

from canvas_engineering import CurriculumScheduler, graft_looped_blocks
from canvas_engineering.models.cogvideox_load import load_transformer

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--pretrained", default=None, help="local CogVideoX directory")
p.add_argument("--steps", type=int, default=60)
args = p.parse_args()

# Load pretrained video diffusion model (or build a tiny one from a config)
if args.pretrained:
    transformer = load_transformer(args.pretrained, dtype="bfloat16")
else:
    torch.manual_seed(0)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4,
        time_embed_dim=64, text_embed_dim=16, num_layers=2, sample_width=8, sample_height=8,
        sample_frames=9, patch_size=2, temporal_compression_ratio=4, max_text_seq_length=4)

# Graft 3-loop attention onto every frozen DiT block
looped_blocks, action_head = graft_looped_blocks(transformer, max_loops=3, freeze="full",
                                                 action_dim=7)
params = [p for b in looped_blocks for p in b.parameters() if p.requires_grad]
params += list(action_head.parameters())
print(f"trainable parameters: {sum(p.numel() for p in params):,} of "
      f"{sum(p.numel() for p in transformer.parameters()):,}")
optimizer = torch.optim.AdamW(params, lr=1e-3)
# Curriculum: gradually ramp from 1 to 3 loops during training
scheduler = CurriculumScheduler(max_loops=3, total_steps=args.steps)

cfg = transformer.config
dtype = next(transformer.parameters()).dtype
g = torch.Generator().manual_seed(0)
latents = torch.randn(4, 2, cfg.in_channels, 8, 8, generator=g)  # (B, F, C, H, W)
actions = latents.mean(dim=(3, 4)) * 8 @ torch.randn(cfg.in_channels, 7, generator=g)  # (B, F, 7)
text = torch.zeros(4, cfg.max_text_seq_length, cfg.text_embed_dim)
for step in range(args.steps):
    loops = scheduler.apply(looped_blocks, step)
    out = transformer(hidden_states=latents.to(dtype), encoder_hidden_states=text.to(dtype),
                      timestep=torch.full((4,), 500), return_dict=False)[0]
    loss = F.mse_loss(action_head(out), actions)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 10 == 0 or step == args.steps - 1:
        print(f"step {step:3d}  loops {loops}  action loss {loss.item():.4f}")
