"""The training loop: one flat loop over steps (nanoGPT-style), run under Hugging Face
Accelerate so `accelerate launch` spreads it over processes, GPUs or machines.

Shape glossary: B global batch, b = B / processes local batch, n_r positions of region r.

Determinism: batches and noise are pure functions of (seed, step, global sample index) and the
learning rate is a function of the step, so `resume=True` continues a killed run to the same
parameters as an uninterrupted one, and P processes with local batch B/P train the same model
as one process with batch B (up to floating-point reduction order).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from pathlib import Path

import torch

from canvas_engineering.atomic import atomic_write_text
from canvas_engineering.errors import bad
from canvas_engineering.models import BACKBONES, get_backbone
from canvas_engineering.models.cogvideox import CogVideoXConfig
from canvas_engineering.models.cogvideox_load import usable_backbone
from canvas_engineering.models.scratch import BACKBONE_PRESETS, BackboneConfig
from canvas_engineering.nn.loop_schedules import CurriculumScheduler
from canvas_engineering.spec.schema import CanvasSchema
from canvas_engineering.training.batches import (
    batch_indices,
    build_codecs,
    build_dataset,
    collate,
    draw_noise,
    to_positions,
)
from canvas_engineering.training.canvas_choice import resolve_canvas
from canvas_engineering.training.config import ConfigError, TrainConfig
from canvas_engineering.training.diffusion import CanvasDiffusion
from canvas_engineering.training.evaluation import heldout_errors
from canvas_engineering.training.run_files import (
    RunError,
    append_metrics,
    differences,
    identity,
    latest_checkpoint,
    load_latest,
    run_lock,
    save_checkpoint,
    truncate_metrics,
)
from canvas_engineering.training.tracking import Progress, ended, start_trackers, tracker_kwargs


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
    ema: torch.nn.Module | None = None  # AveragedModel of `model` when config.ema > 0


def moving_average(model: torch.nn.Module, config: TrainConfig) -> torch.nn.Module | None:
    """An exponential moving average of `model`'s parameters with decay `config.ema` (PyTorch's
    `AveragedModel`; its first update copies the model), or None when `config.ema` is 0."""
    if not config.ema:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema))


def evaluated(r: Run) -> torch.nn.Module:
    """The weights a run is evaluated and sampled with: the moving average when it keeps one."""
    return r.model if r.ema is None else r.ema.module


def build(config: TrainConfig) -> Run:
    if config.backbone not in BACKBONES:
        raise bad("backbone", config.backbone, f"one of {sorted(BACKBONES)}", ConfigError)
    if config.preset not in BACKBONE_PRESETS:
        raise bad("preset", config.preset, f"one of {sorted(BACKBONE_PRESETS)}", ConfigError)
    schema = resolve_canvas(config.canvas)
    for name in ("regions", "loss_weights"):
        unknown = set(getattr(config, name)) - set(schema.layout.regions)
        if unknown:
            raise bad(name, sorted(unknown), f"regions of the {config.canvas!r} canvas, "
                      f"some of {schema.layout.region_names}", ConfigError)
    schema = with_loss_weights(schema, config.loss_weights)
    train_set = build_dataset(config, "train", schema.layout.T)
    codecs = build_codecs(schema.layout, train_set, config)
    torch.manual_seed(config.seed)  # the same initial weights on every process
    sizes = {} if config.loops is None else {"loops": config.loops}
    preset = BACKBONE_PRESETS[config.preset].to_dict()
    try:
        backbone = BackboneConfig.from_dict({**preset, **config.backbone_options, **sizes})
    except ValueError as e:
        raise bad("backbone_options", config.backbone_options, f"BackboneConfig fields that "
                  f"make a valid config ({e})", ConfigError) from None
    name = usable_backbone(config.backbone)  # cogvideox without diffusers: scratch, warned
    if name == "cogvideox":  # the preset sizes the canvas side; the blocks are pretrained
        unused = sorted(set(config.backbone_options) - set(CogVideoXConfig.FROM_PRESET))
        if unused:  # scratch-only options (pixel_head, local_kernel, ...): refuse, not ignore
            raise bad("backbone_options", unused, f"options the cogvideox backbone takes: "
                      f"{list(CogVideoXConfig.FROM_PRESET)}", ConfigError)
        backbone = CogVideoXConfig.from_preset(backbone, config.pretrained_model_id,
                                               config.pretrained_dtype)
    model = get_backbone(name)(schema.layout, schema.topology, codecs, backbone)
    diffusion = CanvasDiffusion(schema.layout, schedule=config.schedule,
                                prediction=config.prediction)
    return Run(config, schema.layout, schema.topology, train_set, codecs, model, diffusion,
               moving_average(model, config))


def with_loss_weights(schema: CanvasSchema, weights: dict[str, float]) -> CanvasSchema:
    """The schema with these regions' declared `loss_weight` replaced (the objective weighs
    each position by its region's declared weight)."""
    if not weights:
        return schema
    regions = {name: dataclasses.replace(spec, loss_weight=float(weights[name]))
               if name in weights else spec for name, spec in schema.layout.regions.items()}
    layout = dataclasses.replace(schema.layout, regions=regions)
    return CanvasSchema(layout, schema.topology, schema.metadata)


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def train(config: TrainConfig, *, resume: bool = False, checkpoint: str | Path | None = None,
          progress: bool = True, evaluate_at_end: bool = True, return_model: bool = False):
    """Train (or resume) the run in `config.out`; returns the final summary (and the trained,
    unwrapped model of this process when `return_model`).

    `resume` continues from the newest checkpoint, `checkpoint` from the one given. One process
    (launch) at a time trains in a directory. A loss or parameter that stops being finite ends
    the run with a `RunError` naming the step; the checkpoints already written stay as they
    were.
    """
    try:
        from accelerate import Accelerator, DistributedDataParallelKwargs
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("training needs accelerate and tqdm: pip install "
                          "'canvas-engineering[train]'") from e

    # Loops beyond the curriculum's current count, and gates still at zero, leave parameters
    # without gradient in a step: DDP must expect that.
    run_dir = Path(config.out)
    acc = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=config.mixed_precision,
                      kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
                      **tracker_kwargs(config.log_with, run_dir))
    with run_lock(run_dir) if acc.is_main_process else contextlib.nullcontext(), ended(acc):
        r = build(config)
        optimizer = make_optimizer(r.model, config)
        start = _restore(run_dir, r, optimizer, resume or checkpoint is not None, checkpoint)
        if acc.is_main_process:
            atomic_write_text(run_dir / "config.json", config.to_json())
            truncate_metrics(run_dir, start, notice=_notice)
        start_trackers(acc, config.log_with, config.to_json(), run_dir)
        model, optimizer = acc.prepare(r.model, optimizer)
        if r.ema is not None:
            r.ema.to(acc.device)
        began = time.perf_counter()
        _steps(acc, r, model, optimizer, start, run_dir, progress)
        summary = {"steps": config.steps, "train_seconds": round(time.perf_counter() - began, 1)}
        if acc.is_main_process and evaluate_at_end:
            from canvas_engineering.training.report import finish

            summary.update(finish(r, evaluated(r), run_dir)[0])
        acc.wait_for_everyone()
    return (summary, acc.unwrap_model(model)) if return_model else summary


def _notice(message: str) -> None:
    print(f"notice: {message}", file=sys.stderr)


def _restore(run_dir: Path, r: Run, optimizer, resume: bool, checkpoint) -> int:
    """The step to start from: 0 for a new run, else the resumed checkpoint's step."""
    config = r.config
    if not resume:
        if latest_checkpoint(run_dir) is not None:
            raise RunError(f"{run_dir} already holds checkpoints: pass --resume to continue "
                           "it, or choose another --out")
        return 0
    if checkpoint is None and latest_checkpoint(run_dir) is None:
        return 0  # nothing to resume yet: start the run
    try:
        saved = identity((run_dir / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise RunError(f"{run_dir / 'config.json'}: cannot read the run's config ({e})") from None
    diff = differences(saved, identity(config.to_json()))
    if diff:
        raise RunError(f"{run_dir}: --resume with settings that differ from the run's "
                       f"config.json ({diff}); resume with the run's settings")
    start = load_latest(run_dir, r.model, config.to_json(), optimizer, checkpoint, r.ema)
    for orphan in (run_dir / "checkpoints").glob("*.tmp"):  # a write a kill interrupted
        orphan.unlink(missing_ok=True)
    return start


def _steps(acc, r: Run, model, optimizer, start: int, run_dir: Path, progress: bool) -> None:
    """The optimisation steps from `start` to `config.steps`, logging and checkpointing."""
    config = r.config
    world, rank = acc.num_processes, acc.process_index
    if config.batch_size % world:
        raise bad("batch_size", config.batch_size, f"a multiple of the {world} processes",
                  ConfigError)
    local = config.batch_size // world
    max_loops = r.model.config.loops  # the one place the loop count lives
    curriculum = CurriculumScheduler(max_loops=max_loops, total_steps=config.steps) \
        if config.curriculum and max_loops > 1 else None
    mine = torch.arange(rank * local, (rank + 1) * local)  # this process's share of a batch
    probe = None  # a fixed held-out batch for the held-out curve: only the main process logs
    if acc.is_main_process:
        held_out = build_dataset(config, "eval", r.layout.T)
        probe = {k: v.to(acc.device) for k, v in
                 collate(held_out, torch.arange(min(32, len(held_out)))).items()}

    bar = Progress(start, config.steps, enabled=progress and acc.is_main_process)
    began, running = time.perf_counter(), None
    # deep supervision of the video path's linear readout (`BackboneConfig.video_unet_aux`)
    auxiliary = bool(getattr(getattr(r.model, "config", None), "video_unet_aux", 0))
    for step in range(start, config.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        episodes = batch_indices(config, step, len(r.train_set))[mine]
        x0 = to_positions(collate(r.train_set, episodes), r.layout, r.codecs, config.regions)
        t, noise = draw_noise(x0, config.seed, step, mine, config.t_power, config.t_one)
        if config.objective == "regression":  # at t = 1 the v-target is ~ -x0: regression
            t = torch.ones_like(t)
        x0, t = {k: v.to(acc.device) for k, v in x0.items()}, t.to(acc.device)
        noise = {k: v.to(acc.device) for k, v in noise.items()}
        loops = curriculum.apply(r.model.blocks, step) if curriculum else max_loops
        with acc.autocast():
            loss, parts = r.diffusion.loss(model, x0, t, noise, auxiliary=auxiliary)
        optimizer.zero_grad(set_to_none=True)
        acc.backward(loss)
        if config.grad_clip > 0:
            acc.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        if r.ema is not None:
            r.ema.update_parameters(acc.unwrap_model(model))

        value = acc.reduce(loss.detach(), "mean").item()  # every process sees the same value
        done = step + 1
        if not math.isfinite(value):
            bar.close()
            raise _diverged(run_dir, done, value, parts)
        running = value if running is None else 0.9 * running + 0.1 * value
        checkpoint = done % config.checkpoint_every == 0 or done == config.steps
        bar.update(done, running, loops, log=done % config.log_every == 0 or checkpoint)
        if acc.is_main_process and (done % config.log_every == 0 or checkpoint):
            row = {"step": done, "loss": value, "lr": learning_rate(config, step), "loops": loops,
                   "seconds": round(time.perf_counter() - began, 2)}
            row.update({f"loss/{k}": float(v) for k, v in parts.items()})
            if checkpoint:  # the held-out curve, at every checkpoint
                row.update(heldout_errors(evaluated(r), r.diffusion, r.layout,
                                          r.codecs, config.regions, probe, seed=config.seed))
            append_metrics(run_dir, row)
            acc.log({k: v for k, v in row.items() if k != "step"}, step=done)  # trackers
        if checkpoint:
            acc.wait_for_everyone()
            if acc.is_main_process:
                save_checkpoint(run_dir, done, acc.unwrap_model(model), optimizer,
                                config.to_json(), config.keep_checkpoints, r.ema)
    bar.close()
    acc.wait_for_everyone()


def _diverged(run_dir: Path, step: int, value: float, parts: dict) -> RunError:
    shown = ", ".join(f"{k} {float(v):.4g}" for k, v in parts.items())
    last = latest_checkpoint(run_dir)
    kept = f"the last checkpoint, {last}, is kept" if last else "no checkpoint was written"
    return RunError(f"{run_dir}: the loss is {value} at step {step} (parts: {shown}); the run "
                    f"diverged and stopped, {kept}; try a lower lr or a grad_clip")


def load_run(run_dir: str | Path, checkpoint: str | Path | None = None) -> tuple[Run, int]:
    """Rebuild a run from its config.json and load its newest checkpoint (or `checkpoint`),
    checked against the run first."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise RunError(f"{run_dir}: no config.json; expected a run directory made by train")
    # The directory is where the run lives now, whatever `out` it was trained with.
    config = TrainConfig.from_file(run_dir / "config.json").replace(out=str(run_dir))
    if checkpoint is None and latest_checkpoint(run_dir) is None:
        raise RunError(f"{run_dir}: no checkpoints yet")
    r = build(config)
    # The optimizer state is checked too (and then dropped): a damaged file is refused whole.
    step = load_latest(run_dir, r.model, config.to_json(), make_optimizer(r.model, config),
                       checkpoint, r.ema)
    if r.ema is not None:  # evaluate and sample with the averaged weights, as training did
        r = dataclasses.replace(r, model=r.ema.module, ema=None)
    r.model.eval()
    return r, step
