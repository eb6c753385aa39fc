"""CanViT: active vision on a canvas (seed 003), a leaf system that core never imports.

A recurrent ViT looks at a scene through glimpses (viewpoints: centre + scale) and integrates
them into a persistent canvas through Canvas Attention (registered as the attention types
`canvas_read` and `canvas_write`), with scene-relative RoPE. Configs, state-dict keys and
checkpoint directories are those of the reference canvit-pytorch 0.2.1.
"""

from canvas_engineering.canvit.backbone import BACKBONES, ViTSpec
from canvas_engineering.canvit.canvas_attention import CanvasAttention, CanvasRead, CanvasWrite
from canvas_engineering.canvit.config import (
    PRESETS,
    CanViTConfig,
    canvas_attention_schedule,
    preset,
)
from canvas_engineering.canvit.model import CanViT, CanViTOutput, RecurrentState
from canvas_engineering.canvit.policies import POLICIES, make_policy, random_viewpoints
from canvas_engineering.canvit.pretraining import CanViTForPretraining
from canvas_engineering.canvit.rope import RopeTable, apply_rope, rope_periods, rope_table
from canvas_engineering.canvit.viewpoint import (
    Viewpoint,
    crop_box_px,
    grid_coords,
    sample_at_viewpoint,
    validate_viewpoint,
    viewpoint_grid_coords,
)

__all__ = [
    "BACKBONES", "POLICIES", "PRESETS", "CanViT", "CanViTConfig", "CanViTForPretraining",
    "CanViTOutput", "CanvasAttention", "CanvasRead", "CanvasWrite", "RecurrentState",
    "RopeTable", "ViTSpec", "Viewpoint", "apply_rope", "canvas_attention_schedule",
    "crop_box_px", "grid_coords", "make_policy", "preset", "random_viewpoints", "rope_periods",
    "rope_table", "sample_at_viewpoint", "validate_viewpoint", "viewpoint_grid_coords",
]
