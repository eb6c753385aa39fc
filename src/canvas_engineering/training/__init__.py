"""Training a canvas world model: config, batches, the loop, checkpoints, evaluation, plots."""

from .config import ConfigError, TrainConfig
from .loop import build, train

__all__ = ["ConfigError", "TrainConfig", "build", "train"]
