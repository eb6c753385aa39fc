"""Offline pretraining: passive-to-active dense distillation on the built-in texture scenes.

A frozen teacher sees every full scene once at full resolution; the student sees glimpses.
After every glimpse the canvas cells are decoded into the teacher's standardised patch features
of the WHOLE scene and the recurrent CLS into its CLS feature (MSE each), so cells not yet seen
must still be predicted. Each step runs two rollouts of one random length n = chunk·(1 + k),
k ~ Geometric(stop_probability) failures: full-then-random and random viewpoints; gradients flow
within chunks of `chunk` glimpses (truncated backprop through time), the state is detached
between chunks. AdamW with linear warmup and gradient clipping.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from canvas_engineering.canvit.config import preset
from canvas_engineering.canvit.policies import make_policy
from canvas_engineering.canvit.pretraining import CanViTForPretraining
from canvas_engineering.canvit.scenes import texture_scenes
from canvas_engineering.canvit.teacher import FilterBankTeacher
from canvas_engineering.canvit.viewpoint import sample_at_viewpoint
from canvas_engineering.errors import check_int

BRANCHES = ("full_then_random", "random")


@dataclass(frozen=True)
class PretrainSettings:
    preset: str = "tiny"
    scenes: int = 1500
    scene_px: int = 128
    glimpse_px: int = 32
    steps: int = 2500
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    clip: float = 1.0
    warmup: int = 200
    min_scale: float = 0.1
    chunk: int = 2
    stop_probability: float = 0.5
    seed: int = 0
    max_minutes: float = 0.0  # > 0: stop (and save) after this long

    def __post_init__(self) -> None:
        for name in ("scenes", "scene_px", "glimpse_px", "steps", "batch_size", "chunk"):
            check_int(name, getattr(self, name), 1)


def teacher_targets(teacher, images: torch.Tensor, batch: int = 128):
    """Teacher features of every scene: patches (S, G², Dt), cls (S, Dt)."""
    parts = [teacher(images[i:i + batch]) for i in range(0, len(images), batch)]
    return torch.cat([p for p, _ in parts]), torch.cat([c for _, c in parts])


def rollout_length(chunk: int, stop_probability: float, generator) -> int:
    n = chunk
    while torch.rand(1, generator=generator).item() >= stop_probability:
        n += chunk
    return n


def train_step(model: CanViTForPretraining, images, patches, cls, settings: PretrainSettings,
               generator) -> float:
    """One step's backward passes (the caller steps the optimiser); returns the mean loss per
    glimpse over both branches. patches / cls: standardised targets (B, G², Dt) / (B, Dt)."""
    n = rollout_length(settings.chunk, settings.stop_probability, generator)
    b, grid = images.shape[0], model.teacher_patch_grid
    total = 0.0
    for branch in BRANCHES:
        viewpoints = make_policy(branch, b, n, generator, min_scale=settings.min_scale)
        state = model.init_state(b, grid)
        chunk_loss = 0.0
        for t, vp in enumerate(viewpoints):
            glimpse = sample_at_viewpoint(images, vp, settings.glimpse_px)  # (B, 3, n, n)
            state = model(glimpse=glimpse, state=state, viewpoint=vp).state
            loss = F.mse_loss(model.predict_teacher_patches(state.canvas), patches) \
                + F.mse_loss(model.predict_teacher_cls(state.recurrent_cls), cls)
            chunk_loss = chunk_loss + loss
            total += loss.item()
            if (t + 1) % settings.chunk == 0:
                (chunk_loss / n / len(BRANCHES)).backward()
                chunk_loss, state = 0.0, state.detach()
    return total / n / len(BRANCHES)


def pretrain(settings: PretrainSettings = PretrainSettings(), out=None, teacher=None,
             progress: bool = False, log=print, init=None) -> tuple[CanViTForPretraining, list]:
    """Train a CanViTForPretraining; returns it and the loss history. From scratch, or from the
    checkpoint directory `init` (a further leg: fresh AdamW state, its own warmup). With `out`,
    writes metrics.jsonl and the checkpoint directory `out/model` (safetensors + config)."""
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    teacher = teacher or FilterBankTeacher()
    images, _ = texture_scenes(settings.scenes, settings.scene_px, seed=settings.seed)
    raw_patches, raw_cls = teacher_targets(teacher, images)
    grid = round(raw_patches.shape[1] ** 0.5)
    if init is not None:
        model = CanViTForPretraining.from_pretrained(init)
    else:
        model = CanViTForPretraining(canvit_config=preset(settings.preset),
                                     teacher_dim=raw_patches.shape[-1], teacher_patch_grid=grid)
        model.teacher_patch_standardizer.fit(raw_patches)
        model.teacher_cls_standardizer.fit(raw_cls[:, None])
    patches = model.teacher_patch_standardizer(raw_patches)  # (S, G², Dt)
    cls = model.teacher_cls_standardizer(raw_cls[:, None])[:, 0]  # (S, Dt)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    warm = max(settings.warmup, 1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm))
    out = Path(out) if out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "settings.json").write_text(json.dumps(asdict(settings), indent=2) + "\n")
    bar = _progress(settings.steps) if progress else None
    history, start, recent = [], time.monotonic(), []
    for step in range(settings.steps):
        idx = torch.randint(0, settings.scenes, (settings.batch_size,), generator=generator)
        opt.zero_grad(set_to_none=True)
        recent.append(train_step(model, images[idx], patches[idx], cls[idx], settings, generator))
        torch.nn.utils.clip_grad_norm_(params, settings.clip)
        opt.step()
        sched.step()
        minutes = (time.monotonic() - start) / 60
        done = step + 1 == settings.steps or (settings.max_minutes and minutes > settings.max_minutes)
        if (step + 1) % 25 == 0 or done:
            row = {"step": step + 1, "loss": sum(recent) / len(recent), "minutes": round(minutes, 2)}
            history.append(row)
            recent = []
            if out:
                with open(out / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(row) + "\n")
            if bar is None and log:
                log(json.dumps(row))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{history[-1]['loss']:.3f}" if history else "…")
        if out and ((step + 1) % 500 == 0 or done):
            model.save_pretrained(out / "model")
        if done:
            break
    if bar is not None:
        bar.close()
    return model, history


def _progress(total: int):
    try:
        from tqdm import tqdm
    except ImportError:  # progress is optional; the loss lines still print
        return None
    return tqdm(total=total, desc="pretrain", unit="step")
