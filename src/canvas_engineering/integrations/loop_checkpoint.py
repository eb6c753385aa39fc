"""Save and load only the trainable loop parameters (and action head) of a grafted model.

The frozen backbone comes from its own pretrained weights; a loop checkpoint holds the few
parameters grafting added: `blocks.{i}.{name}` for each looped block's loop parameters and
`action_head.{name}` for the head. Files are safetensors (never pickle), written to a temporary
file in the same directory and moved into place with `os.replace`, so a crash mid-write never
leaves a truncated checkpoint. safetensors is imported only here (the `[train]` extra).
"""

from __future__ import annotations

import json
import os
import re

import torch
from torch import nn

from canvas_engineering.atomic import atomic_write
from canvas_engineering.errors import CheckpointError

FORMAT = "canvas-engineering/loop-checkpoint/1"


def _safetensors():
    try:
        import safetensors.torch as st
    except ImportError as e:
        raise ImportError("loop checkpoints need safetensors: pip install "
                          "'canvas-engineering[train]'") from e
    return st


def loop_state_dict(looped_blocks, action_head: nn.Module | None = None) -> dict:
    """Name → tensor of every loop parameter of `looped_blocks` and of `action_head`."""
    state = {}
    for i, block in enumerate(looped_blocks):
        if not hasattr(block, "named_loop_parameters"):
            raise TypeError(f"looped_blocks[{i}]: got {type(block).__name__}, "
                            "expected a LoopedBlockWrapper")
        for name, p in block.named_loop_parameters():
            state[f"blocks.{i}.{name}"] = p
    if action_head is not None:
        for name, p in action_head.named_parameters():
            state[f"action_head.{name}"] = p
    return state


def save_loop_checkpoint(path, looped_blocks, action_head: nn.Module | None = None, *,
                         metadata: dict | None = None) -> None:
    """Write the loop parameters (and action head) to `path` as safetensors, atomically.

    `metadata` (str → str) is stored in the file header next to the format tag.
    """
    tensors = {k: v.detach().contiguous().cpu()
               for k, v in loop_state_dict(looped_blocks, action_head).items()}
    meta = {"format": FORMAT, "n_blocks": str(len(looped_blocks))}
    meta.update({str(k): str(v) for k, v in (metadata or {}).items()})
    write_safetensors(path, tensors, meta)


def write_safetensors(path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write `tensors` to `path` as safetensors, atomically: a temporary file in the same
    directory, flushed to disk, then moved into place. A crash leaves the old file or none."""
    st = _safetensors()

    def write(tmp: str) -> None:
        try:
            st.save_file(tensors, tmp, metadata=metadata)
        except Exception as e:  # safetensors reports the OS's error as text: "(os error 28)"
            code = re.search(r"os error (\d+)", str(e))
            if code is None:
                raise
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1)))) from None

    atomic_write(path, write)


def load_loop_checkpoint(path, looped_blocks, action_head: nn.Module | None = None) -> dict:
    """Copy a loop checkpoint into freshly grafted `looped_blocks` (and `action_head`).

    Names and shapes must match exactly; otherwise raises `CheckpointError` listing the missing
    and unexpected keys and the shape mismatches, before anything is modified.
    Returns the checkpoint's metadata.
    """
    st = _safetensors()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"path: no loop checkpoint at {path!r}")
    with st.safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    saved = st.load_file(path)
    target = loop_state_dict(looped_blocks, action_head)
    problems = []
    missing, unexpected = sorted(set(target) - set(saved)), sorted(set(saved) - set(target))
    if missing:
        problems.append(f"missing keys {missing}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected}")
    shapes = {k: (tuple(saved[k].shape), tuple(target[k].shape))
              for k in set(saved) & set(target) if saved[k].shape != target[k].shape}
    if shapes:
        problems.append("shape mismatches (checkpoint, model) " + json.dumps(
            {k: [list(a), list(b)] for k, (a, b) in sorted(shapes.items())}))
    if problems:
        raise CheckpointError(f"{path} does not match the model: " + "; ".join(problems))
    with torch.no_grad():
        for k, p in target.items():
            p.copy_(saved[k])
    return meta
