"""Graft looped attention onto a frozen CogVideoX and train it on the built-in push task: the
whole loop of seed 000 — curriculum (1 → 3 loops), progressive sharpening across loops, an
action head on the output latents, and loop checkpoints (safetensors) reloaded at the end.

    python examples/graft_cogvideox.py [--pretrained DIR] [--steps 300] [--out runs/graft]

Without --pretrained a tiny random CogVideoX is built from a config (CPU-sized). Frames of
24 × 24 are average-pooled to 8 × 8 "latents" (a stand-in for the VAE) padded to the model's
latent channels; the objective is noise prediction on the frames plus the actions' error.
Needs diffusers and safetensors (the `[video]` and `[train]` extras); nothing is downloaded.
"""

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import CogVideoXTransformer3DModel

from canvas_engineering import (
    CurriculumScheduler,
    PushConfig,
    PushDataset,
    SharpeningSchedule,
    graft_looped_blocks,
    load_loop_checkpoint,
    save_loop_checkpoint,
)
from canvas_engineering.models.cogvideox_load import load_transformer

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--pretrained", default=None, help="local CogVideoX directory")
p.add_argument("--steps", type=int, default=300)
p.add_argument("--batch-size", type=int, default=8)
p.add_argument("--loops", type=int, default=3)
p.add_argument("--beta-max", type=float, default=2.0, help="sharpening at the last loop")
p.add_argument("--checkpoint-every", type=int, default=100)
p.add_argument("--out", type=Path, default=Path("runs/graft"))
args = p.parse_args()


def backbone():
    """The frozen transformer: a local pretrained one, or a tiny random one (same seed each
    call, so a fresh copy can take the saved loop checkpoint)."""
    if args.pretrained:
        return load_transformer(args.pretrained, dtype="bfloat16")
    torch.manual_seed(0)
    return CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4,
        time_embed_dim=64, text_embed_dim=16, num_layers=2, sample_width=8, sample_height=8,
        sample_frames=9, patch_size=2, temporal_compression_ratio=4, max_text_seq_length=4)


def graft(transformer):
    return graft_looped_blocks(
        transformer, max_loops=args.loops, freeze="full", action_dim=2,
        sharpening=SharpeningSchedule(max_loops=args.loops, beta_min=1.0, beta_max=args.beta_max))


def to_latents(video, channels):
    """(B, F, 3, 24, 24) frames in [-1, 1] → (B, F, C, 8, 8), zero-padded channels."""
    B, Fr = video.shape[:2]
    x = F.avg_pool2d(video.flatten(0, 1), 3).unflatten(0, (B, Fr))
    return F.pad(x, (0, 0, 0, 0, 0, channels - 3))


# 1. backbone, graft, optimizer, schedules
transformer = backbone()
cfg, dtype = transformer.config, next(transformer.parameters()).dtype
looped_blocks, action_head = graft(transformer)
params = [p for b in looped_blocks for p in b.parameters() if p.requires_grad]
optimizer = torch.optim.AdamW(params + list(action_head.parameters()), lr=3e-3)
curriculum = CurriculumScheduler(max_loops=args.loops, total_steps=args.steps)
alphas = torch.cos(torch.linspace(0, 1, 1000) * torch.pi / 2) ** 2  # ᾱ(t), cosine schedule

# 2. data: the push task (a red agent pushes a blue object), 3 frames a clip
data = PushDataset(256, seed=0, config=PushConfig(n_frames=3, image_size=24))
text = torch.zeros(args.batch_size, cfg.max_text_seq_length, cfg.text_embed_dim, dtype=dtype)
g = torch.Generator().manual_seed(0)
args.out.mkdir(parents=True, exist_ok=True)

# 3. the flat training loop
for step in range(args.steps):
    loops = curriculum.apply(looped_blocks, step)
    idx = torch.randint(len(data), (args.batch_size,), generator=g)
    batch = [data[int(i)] for i in idx]
    x0 = to_latents(torch.stack([b["video"] for b in batch]), cfg.in_channels)
    actions = torch.stack([b["action"] for b in batch])  # (B, F, 2)
    t = torch.randint(0, 1000, (args.batch_size,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    a = alphas[t].view(-1, 1, 1, 1, 1)
    noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
    out = transformer(hidden_states=noisy.to(dtype), encoder_hidden_states=text, timestep=t,
                      return_dict=False)[0]
    diffusion = F.mse_loss(out.float(), noise)
    action = F.mse_loss(action_head(out), actions)
    loss = diffusion + action
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % 25 == 0 or step == args.steps - 1:
        print(f"step {step:4d}  loops {loops}  diffusion {diffusion.item():.4f}  "
              f"action {action.item():.4f}")
    if (step + 1) % args.checkpoint_every == 0 or step == args.steps - 1:
        path = args.out / f"loops-{step + 1:06d}.safetensors"
        save_loop_checkpoint(path, looped_blocks, action_head, metadata={"step": step + 1})

# 4. a fresh graft on a fresh backbone takes the checkpoint and gives the same outputs
fresh = backbone()
fresh_blocks, fresh_head = graft(fresh)
meta = load_loop_checkpoint(path, fresh_blocks, fresh_head)
with torch.no_grad():
    kw = {"hidden_states": noisy.to(dtype), "encoder_hidden_states": text, "timestep": t,
          "return_dict": False}
    same = torch.equal(fresh(**kw)[0], transformer(**kw)[0])
print(f"checkpoint {path} (step {meta['step']}): reloaded outputs identical = {same}")
