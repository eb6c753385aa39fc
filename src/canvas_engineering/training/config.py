"""TrainConfig: everything a training run needs, validated, JSON-serialisable, overridable from
the command line with `--key=value`."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from canvas_engineering.errors import ConfigError, bad, check_keys


def _default_regions() -> dict[str, str]:
    return {"visual": "video", "action": "action", "reward": "reward"}


@dataclass(frozen=True)
class TrainConfig:
    """A training run. Defaults train the README's robot canvas on the built-in pushing task.

    Args:
        canvas: a built-in canvas name (`spec.canvases.PRESETS`), a schema JSON file, or
            `module:attribute` (see `training.canvas_choice`).
        data: "push" (the built-in task) or a directory of episode files.
        regions: canvas region -> data key (the episode array that fills it).
        loss_weights: region -> loss weight, replacing the canvas's declared `loss_weight` (the
            objective weighs each position by its region's weight; a region's share of the
            loss is its weight times its future positions).
        arrays: data key -> array name inside the user's episode files (data directories only;
            each key must be a data key of `regions`).
        backbone: the denoiser (`models.BACKBONES`: "scratch", or "cogvideox", frozen
            pretrained CogVideoX blocks, which needs pretrained_model_id: a local directory or a
            hub id in the local cache; without diffusers it falls back to "scratch", warning).
            pretrained_dtype: dtype of the frozen pretrained blocks.
        preset: backbone size (`BACKBONE_PRESETS`). loops: loops per block, replacing the
            preset's (None keeps the preset's); after `build` the model's config is the only
            place the loop count is read from. curriculum: ramp loops 1 → loops.
        backbone_options: `BackboneConfig` fields replacing the preset's (d_model, n_blocks,
            gate, per_token, beta_min / beta_max, halting, ...), e.g. the arms of an experiment.
        prediction, schedule: diffusion target ("eps" / "v") and noise schedule.
        standardize: shift and scale each region's values to mean 0, std 1 over training
            clips (`RegionCodec.fit`), so every region meets the unit-scale noise alike.
        residual_video: video regions with context and future frames code each future frame
            as its change from the last context frame (`VideoCodec(residual=True)`).
        objective: "diffusion", or "regression": the same model and data trained only at t = 1,
            where the future is noise (α = 0.0067) and the v-target is -x0 (to 0.7%), so it
            learns the point prediction E[x0 | context] the evaluation reads directly — the deterministic supervised baseline with the
            diffusion model's budget (its samples mean nothing: it never saw t < 1).
        t_power: diffusion times are drawn as t = u ** t_power, u uniform; below 1 more steps
            land at high noise, where the future has to come from the context.
        t_one: the share of training samples drawn at t = 1 exactly, where the future is pure
            noise and the model learns the point prediction the evaluation reads (0: none).
        steps, batch_size, lr, warmup, weight_decay, grad_clip: optimisation (batch is global).
        ema: decay of an exponential moving average of the weights, updated every step and
            used for evaluation, sampling and the held-out curve (0: off, the trained weights).
        train_episodes, eval_episodes: the built-in task's episodes for training / held out for
            evaluation. With a data directory, `eval_episodes` of its files are held out
            (chosen by file name) and all the others train.
        sample_steps, eval_samples: DDIM steps per sample, and samples per held-out episode,
            when evaluating.
        log_every, checkpoint_every, keep_checkpoints: run outputs.
        log_with: an Accelerate tracker for the metrics, "tensorboard" or "wandb" (offline,
            under the run directory), or null for metrics.jsonl only.
        resize_video: a LeRobot dataset's video frames that are not image_size square are
            resized to it (bilinear) instead of refused.
        seed: everything random derives from it, per step and per sample.
        out: run directory. mixed_precision: "no" or "bf16" (GPU).
    """

    canvas: str = "robot"
    data: str = "push"
    regions: dict = field(default_factory=_default_regions)
    arrays: dict = field(default_factory=dict)
    loss_weights: dict = field(default_factory=dict)
    image_size: int = 24
    backbone: str = "scratch"
    pretrained_model_id: str | None = None
    pretrained_dtype: str = "bfloat16"
    preset: str = "cpu"
    loops: int | None = None
    curriculum: bool = True
    backbone_options: dict = field(default_factory=dict)
    prediction: str = "v"
    schedule: str = "cosine"
    t_power: float = 0.5
    t_one: float = 0.25
    objective: str = "diffusion"
    standardize: bool = True
    residual_video: bool = False
    steps: int = 1800
    batch_size: int = 32
    lr: float = 3e-3
    warmup: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema: float = 0.0
    train_episodes: int = 4096
    eval_episodes: int = 128
    sample_steps: int = 20
    eval_samples: int = 4
    log_every: int = 25
    checkpoint_every: int = 300
    keep_checkpoints: int = 2
    seed: int = 0
    out: str = "runs/robot"
    mixed_precision: str = "no"
    log_with: str | None = None
    resize_video: bool = False

    def __post_init__(self) -> None:
        positive = ("image_size", "steps", "batch_size", "train_episodes", "eval_episodes",
                    "sample_steps", "eval_samples", "log_every", "checkpoint_every",
                    "keep_checkpoints")
        for name in positive:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise bad(name, v, "an int >= 1", ConfigError)
        if self.loops is not None and (not isinstance(self.loops, int)
                                       or isinstance(self.loops, bool) or self.loops < 1):
            raise bad("loops", self.loops, "an int >= 1, or null for the preset's", ConfigError)
        for name in ("warmup", "seed"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise bad(name, v, "an int >= 0", ConfigError)
        for name in ("lr", "weight_decay", "grad_clip", "t_power"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) \
                    or v < 0 or (name in ("lr", "t_power") and v == 0):
                raise bad(name, v, "a finite number >= 0 (lr, t_power > 0)", ConfigError)
        if isinstance(self.t_one, bool) or not isinstance(self.t_one, (int, float)) \
                or not 0 <= self.t_one <= 1:
            raise bad("t_one", self.t_one, "a share in [0, 1]", ConfigError)
        if isinstance(self.ema, bool) or not isinstance(self.ema, (int, float)) \
                or not 0 <= self.ema < 1:
            raise bad("ema", self.ema, "a decay in [0, 1) (0: no moving average)", ConfigError)
        if self.objective == "regression" and (self.prediction, self.schedule) != ("v", "cosine"):
            raise bad("objective", self.objective, "'diffusion' unless prediction='v' and "
                      "schedule='cosine' (only there is the t = 1 target -x0)", ConfigError)
        choices = {"prediction": ("eps", "v"), "schedule": ("cosine", "linear"),
                   "objective": ("diffusion", "regression"),
                   "mixed_precision": ("no", "bf16", "fp16")}
        for name, options in choices.items():
            if getattr(self, name) not in options:
                raise bad(name, getattr(self, name), f"one of {list(options)}", ConfigError)
        if not isinstance(self.backbone_options, dict) or "loops" in self.backbone_options:
            raise bad("backbone_options", self.backbone_options, "a dict of BackboneConfig "
                      "fields other than loops (set loops with loops)", ConfigError)
        for name in ("regions", "arrays"):
            v = getattr(self, name)
            if not isinstance(v, dict) or not all(isinstance(k, str) and isinstance(x, str)
                                                  for k, x in v.items()):
                raise bad(name, v, "a dict of str -> str", ConfigError)
        if not self.regions:
            raise bad("regions", self.regions, "at least one region -> data key", ConfigError)
        if not isinstance(self.loss_weights, dict) or not all(
                isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
                and math.isfinite(v) and v >= 0 for k, v in self.loss_weights.items()):
            raise bad("loss_weights", self.loss_weights, "a dict of region -> finite number "
                      ">= 0", ConfigError)
        if self.arrays and self.data == "push":
            raise bad("arrays", self.arrays, "{} with data='push' (arrays name the arrays in "
                      "the files of a data directory)", ConfigError)
        unknown = sorted(set(self.arrays) - set(self.regions.values()))
        if unknown:
            raise bad("arrays", self.arrays, f"keys among the data keys of regions, "
                      f"{sorted(set(self.regions.values()))} ({unknown} are not)", ConfigError)
        for name in ("curriculum", "resize_video", "residual_video"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, getattr(self, name), "true or false", ConfigError)
        if self.log_with not in (None, "tensorboard", "wandb"):
            raise bad("log_with", self.log_with, "null, 'tensorboard' or 'wandb'", ConfigError)
        if self.pretrained_model_id is not None and (not isinstance(self.pretrained_model_id, str)
                                                     or not self.pretrained_model_id):
            raise bad("pretrained_model_id", self.pretrained_model_id, "null or a local "
                      "directory or hub id (a non-empty string)", ConfigError)
        if self.backbone == "cogvideox" and self.pretrained_model_id is None:
            raise bad("pretrained_model_id", None, "a local directory or a hub id in the local "
                      "cache, with backbone='cogvideox'", ConfigError)
        if self.pretrained_dtype not in ("bfloat16", "float16", "float32"):
            raise bad("pretrained_dtype", self.pretrained_dtype,
                      "one of ['bfloat16', 'float16', 'float32']", ConfigError)

    def replace(self, **changes) -> TrainConfig:
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(f"unknown config keys {sorted(unknown)}, expected some of "
                              f"{[f.name for f in fields(self)]}")
        return TrainConfig(**{**asdict(self), **changes})

    def with_overrides(self, args: list[str]) -> TrainConfig:
        """Apply `--key=value` strings; values parse as the field's declared type (dicts as
        JSON; `null` for the fields that may be None)."""
        types = {f.name: f.type for f in fields(self)}  # annotations, e.g. "int | None"
        changes = {}
        for arg in args:
            if not arg.startswith("--") or "=" not in arg:
                raise ConfigError(f"override: got {arg!r}, expected --key=value")
            key, value = arg[2:].split("=", 1)
            key = key.replace("-", "_")
            if key not in types:
                raise ConfigError(f"override --{key}: unknown key, expected one of {sorted(types)}")
            changes[key] = _parse(key, value, types[key])
        return self.replace(**changes)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict, where: str = "config") -> TrainConfig:
        names = {f.name for f in fields(cls)}
        check_keys(data, set(), names, where)
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        """A config file: JSON, or TOML when its name ends in .toml (TOML has no null: leave
        `loops` out to keep its default)."""
        decode = _toml(path).loads if str(path).endswith(".toml") else json.loads
        try:
            data = decode(Path(path).read_text())
        except (OSError, ValueError) as e:  # JSON and TOML decode errors are ValueErrors
            raise ConfigError(f"config {path}: {e}") from None
        return cls.from_dict(data, str(path))


def _toml(path):
    try:
        import tomllib  # Python >= 3.11
    except ImportError:  # pragma: no cover - Python 3.10
        raise ConfigError(f"config {path}: TOML needs Python >= 3.11 (tomllib); use JSON") \
            from None
    return tomllib


KINDS = {"int": int, "float": float, "str": str, "bool": bool, "dict": dict}


def _parse(key: str, value: str, annotation: str):
    """`value` as a field annotated `annotation` ("int", "str | None", ...) holds it."""
    parts = [part.strip() for part in annotation.split("|")]
    kind = KINDS[next(part for part in parts if part != "None")]
    try:
        if "None" in parts and value.lower() in ("null", "none"):
            return None  # e.g. loops: the preset's loop count
        if kind is bool:
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return value.lower() in ("true", "1")
        if kind is dict:
            return json.loads(value)
        return kind(value)
    except (ValueError, json.JSONDecodeError):
        raise ConfigError(f"override --{key}: got {value!r}, expected a {kind.__name__}") from None
