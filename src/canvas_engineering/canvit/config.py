"""CanViTConfig: the model's declaration, field for field the reference's (canvit-pytorch
0.2.1), so a checkpoint's config.json loads as written; and the read/write schedule."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from canvas_engineering.canvit.backbone import ViTSpec, get_backbone
from canvas_engineering.canvit.canvas_attention import PROJECTIONS
from canvas_engineering.errors import CanvasError, bad, check_choice, check_int


@dataclass(frozen=True)
class CanViTConfig:
    """backbone_name: key of `BACKBONES`; canvas width Dc = canvas_num_heads · canvas_head_dim;
    registers: unrotated tokens (canvas ones are carried, backbone ones re-inserted each step);
    rw_stride / enable_reads: the schedule (`canvas_attention_schedule`); enable_vpe: prepend
    the viewpoint token; canvas_projections: "asymmetric" or the "qkvo" ablation."""

    backbone_name: str = "vitb16"
    canvas_num_heads: int = 8
    canvas_head_dim: int = 128
    num_canvas_registers: int = 16
    num_backbone_registers: int = 5
    rw_stride: int = 2
    enable_reads: bool = True
    enable_vpe: bool = True
    canvas_projections: str = "asymmetric"

    def __post_init__(self) -> None:
        get_backbone(self.backbone_name)
        for name in ("canvas_num_heads", "canvas_head_dim", "rw_stride"):
            check_int(name, getattr(self, name), 1)
        for name in ("num_canvas_registers", "num_backbone_registers"):
            check_int(name, getattr(self, name), 0)
        if self.canvas_head_dim % 4:
            raise bad("canvas_head_dim", self.canvas_head_dim, "a multiple of 4 (2-D RoPE)")
        for name in ("enable_reads", "enable_vpe"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, getattr(self, name), "a bool")
        check_choice("canvas_projections", self.canvas_projections, PROJECTIONS)

    @property
    def backbone_spec(self) -> ViTSpec:
        return get_backbone(self.backbone_name)

    @property
    def canvas_dim(self) -> int:
        return self.canvas_num_heads * self.canvas_head_dim

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> CanViTConfig:
        if not isinstance(data, dict):
            raise bad("canvit_config", type(data).__name__, "a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise CanvasError(f"canvit_config: unknown keys {sorted(unknown)}, expected only "
                              f"{sorted(known)} (0.1 names such as n_canvas_registers were "
                              "renamed in 0.2)")
        return cls(**data)


PRESETS: dict[str, CanViTConfig] = {
    "vitb16": CanViTConfig(),
    "vits16": CanViTConfig(backbone_name="vits16"),
    "tiny": CanViTConfig(backbone_name="tiny", canvas_num_heads=1, canvas_head_dim=64,
                         num_canvas_registers=4, num_backbone_registers=2, rw_stride=1),
}


def preset(name: str, **overrides) -> CanViTConfig:
    """A preset config, e.g. `preset("vitb16", canvas_projections="qkvo")` for the ablation."""
    check_choice("preset", name, PRESETS)
    return CanViTConfig(**{**PRESETS[name].to_dict(), **overrides})


def canvas_attention_schedule(num_blocks: int, rw_stride: int,
                              enable_reads: bool = True) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(reads, writes): the blocks after which a read / a write runs. Every rw_stride-th block
    alternates read, write, read …; the last block always writes; no reads when disabled."""
    check_int("num_blocks", num_blocks, 1)
    check_int("rw_stride", rw_stride, 1)
    slots = tuple(range(rw_stride - 1, num_blocks, rw_stride))
    reads, writes = slots[::2], slots[1::2]
    if not writes or writes[-1] != num_blocks - 1:
        writes += (num_blocks - 1,)
    return (reads if enable_reads else ()), writes
