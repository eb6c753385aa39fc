"""`BACKBONES`: denoiser classes by name (seed 004's `backbone=` values), filled by a decorator.

A backbone class is built as `cls(layout, topology, codecs, config)` and called as
`model(x {region: (B, n_r, d_r)}, timestep (B,)) -> {region: (B, n_r, d_r)}`.
"""

from __future__ import annotations

from canvas_engineering.errors import bad

BACKBONES: dict[str, type] = {}


def register_backbone(name: str):
    """Class decorator: register a denoiser class under `name`."""

    def add(cls: type) -> type:
        if name in BACKBONES and BACKBONES[name] is not cls:
            raise bad("backbone name", name, f"a name not yet taken by {BACKBONES[name].__name__}")
        BACKBONES[name] = cls
        return cls

    return add


def get_backbone(name: str) -> type:
    """The denoiser class registered as `name`; an unknown name lists the registered ones."""
    if name not in BACKBONES:
        raise bad("backbone", name, f"one of {sorted(BACKBONES)}")
    return BACKBONES[name]
