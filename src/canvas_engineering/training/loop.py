"""The training loop: one flat loop over steps (nanoGPT-style), run under Hugging Face
Accelerate so `accelerate launch` spreads it over processes, GPUs or machines.

Shape glossary: B global batch, b = B / processes local batch, n_r positions of region r.

Determinism: batches and noise are pure functions of (seed, step, global sample index) and the
learning rate is a function of the step, so `resume=True` continues a killed run to the same
parameters as an uninterrupted one, and P processes with local batch B/P train the same model
as one process with batch B (up to floating-point reduction order).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import torch

from canvas_engineering.atomic import atomic_write_text
from canvas_engineering.errors import bad
from canvas_engineering.models import BACKBONES, get_backbone
from canvas_engineering.models.scratch import BACKBONE_PRESETS
from canvas_engineering.nn.loop_schedules import CurriculumScheduler
from canvas_engineering.spec.canvases import PRESETS
from canvas_engineering.training.batches import (
    batch_indices,
    build_codecs,
    build_dataset,
    collate,
    draw_noise,
    to_positions,
)
from canvas_engineering.training.config import ConfigError, TrainConfig
from canvas_engineering.training.diffusion import CanvasDiffusion
from canvas_engineering.training.run_files import (
    RunError,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    truncate_metrics,
)


@dataclasses.dataclass
class Run:
    """Everything built from a config: canvas, data, codecs, model, diffusion."""

    config: TrainConfig
    layout: object
    topology: object
    train_set: object
    codecs: dict
    model: torch.nn.Module
    diffusion: CanvasDiffusion


def build(config: TrainConfig) -> Run:
    if config.canvas not in PRESETS:
        raise bad("canvas", config.canvas, f"one of {sorted(PRESETS)}", ConfigError)
    if config.backbone not in BACKBONES:
        raise bad("backbone", config.backbone, f"one of {sorted(BACKBONES)}", ConfigError)
    if config.preset not in BACKBONE_PRESETS:
        raise bad("preset", config.preset, f"one of {sorted(BACKBONE_PRESETS)}", ConfigError)
    schema = PRESETS[config.canvas]()
    unknown = set(config.regions) - set(schema.layout.regions)
    if unknown:
        raise bad("regions", sorted(unknown), f"regions of the {config.canvas!r} canvas, "
                  f"some of {schema.layout.region_names}", ConfigError)
    train_set = build_dataset(config, "train", schema.layout.T)
    codecs = build_codecs(schema.layout, train_set[0], config)
    torch.manual_seed(config.seed)  # the same initial weights on every process
    sizes = {} if config.loops is None else {"loops": config.loops}
    backbone = dataclasses.replace(BACKBONE_PRESETS[config.preset], **sizes)
    model = get_backbone(config.backbone)(schema.layout, schema.topology, codecs, backbone)
    diffusion = CanvasDiffusion(schema.layout, schedule=config.schedule,
                                prediction=config.prediction)
    return Run(config, schema.layout, schema.topology, train_set, codecs, model, diffusion)


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def train(config: TrainConfig, *, resume: bool = False, progress: bool = True,
          evaluate_at_end: bool = True, return_model: bool = False):
    """Train (or resume) the run in `config.out`; returns the final summary (and the trained,
    unwrapped model of this process when `return_model`)."""
    try:
        from accelerate import Accelerator, DistributedDataParallelKwargs
        from tqdm.auto import tqdm
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("training needs accelerate and tqdm: pip install "
                          "'canvas-engineering[train]'") from e

    # Loops beyond the curriculum's current count, and gates still at zero, leave parameters
    # without gradient in a step: DDP must expect that.
    acc = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=config.mixed_precision,
                      kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    run_dir = Path(config.out)
    r = build(config)
    optimizer = torch.optim.AdamW(r.model.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    start = 0
    ckpt = latest_checkpoint(run_dir)
    if resume and ckpt is not None:
        saved = json.loads((run_dir / "config.json").read_text())
        if saved != json.loads(config.to_json()):
            raise RunError(f"{run_dir}: --resume with a different config than the run's "
                           "config.json; resume with the same settings")
        start = load_checkpoint(ckpt, r.model, optimizer)
        for orphan in ckpt.parent.glob("*.tmp"):  # a write the kill interrupted; never loaded
            orphan.unlink(missing_ok=True)
    elif ckpt is not None:
        raise RunError(f"{run_dir} already holds checkpoints: pass --resume to continue it, "
                       "or choose another --out")
    world, rank = acc.num_processes, acc.process_index
    if config.batch_size % world:
        raise bad("batch_size", config.batch_size, f"a multiple of the {world} processes",
                  ConfigError)
    local = config.batch_size // world
    model, optimizer = acc.prepare(r.model, optimizer)
    max_loops = r.model.config.loops  # the one place the loop count lives
    curriculum = CurriculumScheduler(max_loops=max_loops, total_steps=config.steps) \
        if config.curriculum and max_loops > 1 else None
    if acc.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.json", config.to_json())
        truncate_metrics(run_dir, start)
    mine = torch.arange(rank * local, (rank + 1) * local)  # this process's share of a batch

    bar = tqdm(range(start, config.steps), initial=start, total=config.steps,
               disable=not (progress and acc.is_main_process), desc="train")
    began, running = time.perf_counter(), None
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        episodes = batch_indices(config, step, len(r.train_set))[mine]
        x0 = to_positions(collate(r.train_set, episodes), r.layout, r.codecs, config.regions)
        t, noise = draw_noise(x0, config.seed, step, mine, config.t_power)
        x0, t = {k: v.to(acc.device) for k, v in x0.items()}, t.to(acc.device)
        noise = {k: v.to(acc.device) for k, v in noise.items()}
        loops = curriculum.apply(r.model.blocks, step) if curriculum else max_loops
        with acc.autocast():
            loss, parts = r.diffusion.loss(model, x0, t, noise)
        optimizer.zero_grad(set_to_none=True)
        acc.backward(loss)
        if config.grad_clip > 0:
            acc.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()

        value = acc.reduce(loss.detach(), "mean").item()
        running = value if running is None else 0.9 * running + 0.1 * value
        bar.set_postfix(loss=f"{running:.4f}", loops=loops)
        done = step + 1
        if acc.is_main_process and (done % config.log_every == 0 or done == config.steps):
            row = {"step": done, "loss": value, "lr": learning_rate(config, step), "loops": loops,
                   "seconds": round(time.perf_counter() - began, 2)}
            row.update({f"loss/{k}": float(v) for k, v in parts.items()})
            with open(run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
        if done % config.checkpoint_every == 0 or done == config.steps:
            acc.wait_for_everyone()
            if acc.is_main_process:
                save_checkpoint(run_dir, done, acc.unwrap_model(model), optimizer,
                                config.to_json(), config.keep_checkpoints)
    bar.close()
    acc.wait_for_everyone()
    summary = {"steps": config.steps, "train_seconds": round(time.perf_counter() - began, 1)}
    if acc.is_main_process and evaluate_at_end:
        from canvas_engineering.training.report import finish

        summary.update(finish(r, acc.unwrap_model(model), run_dir)[0])
    acc.wait_for_everyone()
    return (summary, acc.unwrap_model(model)) if return_model else summary


def load_run(run_dir: str | Path) -> tuple[Run, int]:
    """Rebuild a run from its config.json and load its newest checkpoint."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise RunError(f"{run_dir}: no config.json; expected a run directory made by train")
    config = TrainConfig.from_file(run_dir / "config.json")
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise RunError(f"{run_dir}: no checkpoints yet")
    r = build(config)
    step = load_checkpoint(ckpt, r.model)
    r.model.eval()
    return r, step
