"""Experiments as data: arms (model configs), claims (paired comparisons with the paper's number)
and size presets, in a string-keyed registry.

An `Arm` is a change to the library's `TrainConfig`: the canvas world model's blocks, loops,
width, gates and sharpening (`backbone_options`), trained by the library's own `train` on the
built-in push task. An arm with `match_params_of` gets the width whose parameter count is
nearest the named arm's (seed 002 Exp 6's "12 × 1 at matched parameters").

    EXPERIMENTS["exp6"].resolve("cpu")  ->  {arm name: TrainConfig}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from canvas_engineering.errors import bad
from canvas_engineering.experiments.tasks import CANVAS, IMAGE_SIZE
from canvas_engineering.training.config import TrainConfig
from canvas_engineering.training.run_files import identity


@dataclass(frozen=True)
class Preset:
    """Sizes shared by every arm of an experiment: the width and the training budget."""

    backbone: dict  # BackboneConfig fields (d_model, n_heads, mlp_ratio, freq_dim)
    train: dict  # TrainConfig fields (steps, batch_size, lr, ...)
    seeds: tuple[int, ...]
    eval_items: int  # held-out clips every arm is scored on
    eval_noise: int  # noise draws (diffusion times) per held-out clip


PRESETS: dict[str, Preset] = {
    # ~2-5 min per experiment on one CPU core: a 32-wide model, 400 steps.
    "cpu": Preset(backbone={"d_model": 32, "n_heads": 4, "mlp_ratio": 4.0, "freq_dim": 64},
                  train={"steps": 400, "batch_size": 16, "lr": 2e-3, "warmup": 40,
                         "train_episodes": 1024, "checkpoint_every": 50},
                  seeds=(0, 1, 2), eval_items=64, eval_noise=8),
    # seed 002's toy size: d 128, N 120, ~1.5 M parameters at 3 x 4; for a GPU.
    "paper": Preset(backbone={"d_model": 128, "n_heads": 4, "mlp_ratio": 6.0,
                              "freq_dim": 256},
                    train={"steps": 3000, "batch_size": 32, "lr": 1e-3, "warmup": 200,
                           "train_episodes": 4096, "checkpoint_every": 200},
                    seeds=(0, 1, 2, 3, 4), eval_items=256, eval_noise=8),
    # for tests: seconds per run.
    "tiny": Preset(backbone={"d_model": 16, "n_heads": 2, "mlp_ratio": 2.0, "freq_dim": 16},
                   train={"steps": 6, "batch_size": 4, "lr": 2e-3, "warmup": 2,
                          "train_episodes": 16, "checkpoint_every": 3},
                   seeds=(0, 1), eval_items=4, eval_noise=2),
}


@dataclass(frozen=True)
class Arm:
    """One model of an experiment.

    Args:
        name: short key; label: what the report calls it.
        blocks, loops: distinct blocks and loops per block; curriculum: ramp loops 1 → loops.
        options: other `BackboneConfig` fields (gate, per_token, beta_min, beta_max, halting).
        match_params_of: another arm's name; this arm's width is chosen to match its
            parameter count (otherwise the preset's width).
        group: for a unique-weight arm, consecutive blocks taken as one "loop group" by the
            loop statistics (Exp 12's control); a looped arm's groups are its loops.
    """

    name: str
    label: str
    blocks: int
    loops: int
    curriculum: bool = True
    options: dict = field(default_factory=dict)
    match_params_of: str | None = None
    group: int = 1


@dataclass(frozen=True)
class Claim:
    """A paired comparison: `treatment` (the arm the paper says is better) against `control`.

    paper: the paper's ratio as text; reproduced_at: the bar of the "reproduced" verdict;
    metric: the held-out loss compared.
    """

    name: str
    treatment: str
    control: str
    paper: str
    reproduced_at: float
    metric: str = "total"  # "total" held-out diffusion loss, or one region's ("visual", ...)
    note: str = ""


@dataclass(frozen=True)
class Experiment:
    """Arms, claims and the extra measurements an experiment reports.

    loop_stats: arms whose loop states are measured (Exp 12); unroll: arms evaluated at 1 … 2L
    loops (past their training count); curve: plot benefit vs step for these claims (Exp 17);
    halting: arms whose halting head is fitted and whose compute saving is measured.
    """

    name: str
    title: str
    question: str
    arms: tuple[Arm, ...]
    claims: tuple[Claim, ...] = ()
    loop_stats: tuple[str, ...] = ()
    unroll: tuple[str, ...] = ()
    curve: tuple[str, ...] = ()
    halting: tuple[str, ...] = ()
    paper_notes: str = ""

    def arm(self, name: str) -> Arm:
        for a in self.arms:
            if a.name == name:
                return a
        raise bad("arm", name, f"one of {[a.name for a in self.arms]}")

    def resolve(self, preset: str | Preset, out: str = "runs/experiments") -> dict[str, TrainConfig]:
        """Each arm's `TrainConfig` at this preset (seed 0; `with_seed` for the others)."""
        p = PRESETS[preset] if isinstance(preset, str) else preset
        configs: dict[str, TrainConfig] = {}
        for arm in sorted(self.arms, key=lambda a: a.match_params_of is not None):
            configs[arm.name] = arm_config(arm, p, out, configs.get(arm.match_params_of))
        return {a.name: configs[a.name] for a in self.arms}


def base_config(preset: Preset, out: str) -> TrainConfig:
    # t_one 0: the paper's plain diffusion objective (and the runs' names from before t_one)
    return TrainConfig(canvas=CANVAS, image_size=IMAGE_SIZE, preset="debug", eval_episodes=8,
                       log_every=25, keep_checkpoints=1, out=out, t_one=0.0, **preset.train)


def arm_config(arm: Arm, preset: Preset, out: str, match: TrainConfig | None = None) -> TrainConfig:
    options = {**preset.backbone, "n_blocks": arm.blocks, **arm.options}
    config = base_config(preset, out).replace(loops=arm.loops, curriculum=arm.curriculum,
                                              backbone_options=options)
    if arm.match_params_of is not None:
        if match is None:
            raise bad("match_params_of", arm.match_params_of, "an arm of the same experiment "
                      "that does not itself match another")
        config = _matched_width(config, parameters(match))
    return config.replace(out=f"{out}/{run_key(config)}")


def run_key(config: TrainConfig) -> str:
    """A short name for a run's settings (without seed and directory): runs of equal settings
    are shared between experiments. Settings added to `TrainConfig` later, at their defaults,
    are left out (as `identity` leaves them out), so a new field does not rename old runs."""
    full = json.loads(config.to_json())
    kept = identity(config.to_json())
    settings = {k: v for k, v in full.items()
                if k not in ("out", "seed") and (k in kept or k == "log_with")}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    o = config.backbone_options
    return f"b{o.get('n_blocks')}x{config.loops}-d{o.get('d_model')}-{digest}"


def with_seed(config: TrainConfig, seed: int) -> TrainConfig:
    return config.replace(seed=seed, out=f"{config.out}-s{seed}")


def parameters(config: TrainConfig) -> int:
    """Trainable parameters of the model `config` builds."""
    from canvas_engineering.training.loop import build

    small = config.replace(train_episodes=2)  # the count does not depend on the data
    return sum(p.numel() for p in build(small).model.parameters() if p.requires_grad)


def _matched_width(config: TrainConfig, target: int) -> TrainConfig:
    """The config at the width (a multiple of n_heads) whose parameter count is nearest `target`."""
    heads = config.backbone_options.get("n_heads", 4)
    best = None
    for d in range(heads, 4 * config.backbone_options.get("d_model", 64) + 1, heads):
        c = config.replace(backbone_options={**config.backbone_options, "d_model": d})
        n = parameters(c)
        if best is None or abs(n - target) < best[0]:
            best = (abs(n - target), c)
        if n > target:
            break
    return best[1]


EXPERIMENTS: dict[str, Experiment] = {}


def register_experiment(factory):
    """Decorator: add the `Experiment` a zero-argument function returns to `EXPERIMENTS`."""
    exp = factory()
    EXPERIMENTS[exp.name] = exp
    return factory


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise bad("experiment", name, f"one of {sorted(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def replace_preset(name: str, **changes) -> Preset:
    """`PRESETS[name]` with fields replaced (e.g. fewer seeds)."""
    if name not in PRESETS:
        raise bad("preset", name, f"one of {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **changes)
