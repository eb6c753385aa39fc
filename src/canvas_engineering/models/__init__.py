"""Whole denoisers, one file each, selected by name from `BACKBONES`: canvas region data at
diffusion time t → a prediction per region. `scratch` is the DiT-style world model."""

from canvas_engineering.models import scratch  # noqa: F401  (registers "scratch")
from canvas_engineering.models.registry import BACKBONES, get_backbone, register_backbone

__all__ = ["BACKBONES", "get_backbone", "register_backbone"]
