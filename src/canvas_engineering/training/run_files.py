"""A run directory: config.json, metrics.jsonl, checkpoints/step-XXXXXX.safetensors, summary.

Training checkpoints hold the model's and optimizer's tensors in one safetensors file (never
pickle) with the step, config and optimizer hyper-parameters in its header; they are written
atomically, so a killed run leaves only whole checkpoints.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from canvas_engineering.atomic import atomic_write_text
from canvas_engineering.errors import RunError
from canvas_engineering.integrations.loop_checkpoint import _safetensors, write_safetensors

FORMAT = "canvas-engineering/train-checkpoint/1"


def checkpoint_path(run: Path, step: int) -> Path:
    return run / "checkpoints" / f"step-{step:06d}.safetensors"


def save_checkpoint(run: Path, step: int, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, config_json: str, keep: int) -> Path:
    """Write model + optimizer state at `step`; keep only the newest `keep` checkpoints."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for pid, state in opt["state"].items():
        for k, v in state.items():
            tensors[f"optim.{pid}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
    meta = {"format": FORMAT, "step": str(step), "config": config_json,
            "param_groups": json.dumps(opt["param_groups"])}
    path = checkpoint_path(run, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors(path, tensors, meta)
    for old in sorted(path.parent.glob("step-*.safetensors"))[:-keep]:
        old.unlink()
    return path


def latest_checkpoint(run: Path) -> Path | None:
    found = sorted((run / "checkpoints").glob("step-*.safetensors"))
    return found[-1] if found else None


def load_checkpoint(path: Path, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None = None) -> int:
    """Restore the model (and the optimizer, if given) from `path`; returns its step."""
    st = _safetensors()
    with st.safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise RunError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    tensors = st.load_file(str(path))
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    missing = set(model.state_dict()) ^ set(model_state)
    if missing:
        raise RunError(f"{path}: model keys differ from the run's model: {sorted(missing)[:8]}")
    model.load_state_dict(model_state)
    if optimizer is None:
        return int(meta["step"])
    state: dict = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    return int(meta["step"])


def read_metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate_metrics(run: Path, after_step: int) -> None:
    """Drop metric lines logged after `after_step` (a killed run logged past its checkpoint)."""
    rows = [r for r in read_metrics(run) if r.get("step", 0) <= after_step]
    atomic_write_text(run / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
