"""Whole denoisers, one file each, selected by name from `BACKBONES`: canvas region data at
diffusion time t → a prediction per region. `scratch` is the DiT-style world model; `cogvideox`
the canvas on frozen pretrained CogVideoX blocks (diffusers is imported only to load one)."""

from canvas_engineering.models import cogvideox, scratch  # noqa: F401  (register the backbones)
from canvas_engineering.models.registry import BACKBONES, get_backbone, register_backbone

__all__ = ["BACKBONES", "get_backbone", "register_backbone"]
