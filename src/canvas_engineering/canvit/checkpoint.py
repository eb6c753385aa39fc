"""Checkpoint directories in the reference's layout: `config.json` + `model.safetensors`.

config.json holds the constructor's keyword arguments: `{"canvit_config": {...}}` for a CanViT,
plus `"teacher_dim"` and `"teacher_patch_grid"` for a CanViTForPretraining (whose weights are
the CanViT's under `canvit.` plus the readouts and standardisers). A directory written by
canvit-pytorch 0.2.1's `save_pretrained` loads here unchanged, and ours loads there.
Loading is strict: a missing key, an unexpected key or a wrong shape raises CheckpointError
naming them; nothing loads silently. Writes are atomic.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from canvas_engineering.atomic import atomic_write, atomic_write_text
from canvas_engineering.canvit.config import CanViTConfig
from canvas_engineering.errors import CheckpointError

CONFIG, WEIGHTS = "config.json", "model.safetensors"
PRETRAINING_KEYS = {"teacher_dim", "teacher_patch_grid"}


def _safetensors():
    try:
        import safetensors.torch
    except ImportError:  # pragma: no cover - an environment without the extra
        raise ImportError("CanViT checkpoints need safetensors: pip install "
                          "'canvas-engineering[train]' (or safetensors)") from None
    return safetensors.torch


def save_pretrained(model, directory) -> Path:
    """Write `model` (CanViT or CanViTForPretraining) to `directory`; returns it."""
    from canvas_engineering.canvit.pretraining import CanViTForPretraining

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    record = {"canvit_config": model.config.to_dict()}
    if isinstance(model, CanViTForPretraining):
        record |= {"teacher_dim": model.teacher_dim,
                   "teacher_patch_grid": model.teacher_patch_grid}
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(directory / WEIGHTS, lambda tmp: _safetensors().save_file(state, tmp))
    atomic_write_text(directory / CONFIG, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return directory


def read_config(directory) -> dict:
    """The parsed config.json of a checkpoint directory, its keys checked."""
    path = Path(directory) / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file, expected a CanViT checkpoint directory "
                              f"({CONFIG} + {WEIGHTS})")
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    allowed = {"canvit_config"} | PRETRAINING_KEYS
    if not isinstance(record, dict) or "canvit_config" not in record or set(record) - allowed:
        got = sorted(record) if isinstance(record, dict) else type(record).__name__
        raise CheckpointError(f"{path}: got keys {got}, expected 'canvit_config' and optionally "
                              f"{sorted(PRETRAINING_KEYS)} (a canvit-pytorch 0.2 checkpoint)")
    try:
        record["canvit_config"] = CanViTConfig.from_dict(record["canvit_config"])
    except (TypeError, ValueError) as e:  # CanvasError is a ValueError
        raise CheckpointError(f"{path}: {e}") from None
    return record


def load_weights(model: torch.nn.Module, path, device=None) -> torch.nn.Module:
    """Load a safetensors file into `model` strictly; CheckpointError names every mismatch."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file, expected the checkpoint's weights")
    try:
        tensors = _safetensors().load_file(str(path), device=str(device or "cpu"))
    except Exception as e:  # noqa: BLE001 - safetensors raises its own, untyped errors
        raise CheckpointError(f"{path}: unreadable safetensors file ({e})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    shapes = [f"{k}: got {tuple(tensors[k].shape)}, expected {tuple(v.shape)}"
              for k, v in expected.items() if k in tensors and tensors[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = [f"missing keys {missing[:8]}{' …' if len(missing) > 8 else ''}" if missing else "",
                 f"unexpected keys {unexpected[:8]}{' …' if len(unexpected) > 8 else ''}"
                 if unexpected else "", "; ".join(shapes[:4])]
        raise CheckpointError(f"{path}: " + "; ".join(p for p in parts if p)
                              + f" ({len(missing)} missing, {len(unexpected)} unexpected)")
    model.load_state_dict(tensors, strict=True)
    return model.to(device) if device is not None else model


def load_pretraining(directory, device=None):
    from canvas_engineering.canvit.pretraining import CanViTForPretraining

    record = read_config(directory)
    if not PRETRAINING_KEYS <= set(record):
        raise CheckpointError(f"{Path(directory) / CONFIG}: no {sorted(PRETRAINING_KEYS)}, "
                              "expected a pretraining checkpoint (use CanViT.from_pretrained)")
    model = CanViTForPretraining(**record)
    return load_weights(model, Path(directory) / WEIGHTS, device)


def load_canvit(directory, device=None):
    """A CanViT from a CanViT checkpoint, or the CanViT inside a pretraining checkpoint."""
    from canvas_engineering.canvit.model import CanViT

    record = read_config(directory)
    if PRETRAINING_KEYS & set(record):
        return load_pretraining(directory, device).canvit
    return load_weights(CanViT(record["canvit_config"]), Path(directory) / WEIGHTS, device)
