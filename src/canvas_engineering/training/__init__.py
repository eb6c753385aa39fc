"""Training a canvas world model: config, batches, the loop, checkpoints, evaluation, plots."""

from canvas_engineering.training.config import ConfigError, TrainConfig
from canvas_engineering.training.loop import build, train

__all__ = ["ConfigError", "TrainConfig", "build", "train"]
