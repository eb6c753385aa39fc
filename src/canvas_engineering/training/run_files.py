"""A run directory: config.json, metrics.jsonl, checkpoints/step-N.safetensors, summary.json,
and .lock while a process trains in it.

Training checkpoints hold the model's and optimizer's tensors in one safetensors file (never
pickle) with the step, config and optimizer hyper-parameters in its header. They are written
atomically and only when every tensor is finite, so a killed or diverged run leaves only whole,
usable checkpoints; they are checked against the run before anything is loaded from them, so a
corrupt, foreign or mismatched file is refused with one line naming it and never changed.

A run's identity is its config without `out` and `log_with`: the directory is where a run
lives (a run that was moved or copied resumes from its new place), and trackers only watch it.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

from canvas_engineering.atomic import atomic_write_text, failed_write
from canvas_engineering.errors import RunError
from canvas_engineering.integrations.loop_checkpoint import _safetensors, write_safetensors

FORMAT = "canvas-engineering/train-checkpoint/1"
STEP_FILE = re.compile(r"step-(\d+)\.safetensors")


# ---------------------------------------------------------------------------- identity


NOT_IDENTITY = ("out", "log_with")  # where a run lives and where it reports, not what it is


def identity(config_json: str) -> dict:
    """The settings that make a run: its config without the directory it lives in or the
    trackers it logs to."""
    config = json.loads(config_json)
    for key in NOT_IDENTITY:
        config.pop(key, None)
    # Settings added later, at their defaults: runs from before them lack the keys.
    for key, default in (("backbone_options", {}), ("residual_video", False), ("ema", 0.0),
                         ("t_one", 0.0)):
        if key in config and config[key] == default:
            config.pop(key)
    return config


def differences(saved: dict, given: dict) -> str:
    """'key: saved → given' for every key whose value differs, for error messages."""
    keys = sorted(set(saved) | set(given))
    return ", ".join(f"{k}: {saved.get(k, '(absent)')!r} → {given.get(k, '(absent)')!r}"
                     for k in keys if saved.get(k) != given.get(k))


# ---------------------------------------------------------------------------- lock


@contextlib.contextmanager
def run_lock(run: Path) -> Iterator[None]:
    """Hold `run/.lock` while a process writes the run; a second writer is refused.

    The lock is an advisory OS lock (flock), so it is released when the process exits or is
    killed; the file itself stays (removing a lock file races with the next writer).
    """
    run.mkdir(parents=True, exist_ok=True)
    fd = os.open(run / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        _lock(fd)
    except OSError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunError(f"{run} is in use by another training process (pid {holder}); wait "
                       "for it to end, or choose another --out") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    try:
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _lock(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


# ---------------------------------------------------------------------------- checkpoints


def checkpoint_path(run: Path, step: int) -> Path:
    return run / "checkpoints" / f"step-{step:06d}.safetensors"


def checkpoints(run: Path) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint file in the run, by step number (not by name: from
    step 1,000,000 on the names are longer)."""
    found = []
    for path in (run / "checkpoints").glob("step-*.safetensors"):
        match = STEP_FILE.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(run: Path) -> Path | None:
    found = checkpoints(run)
    return found[-1][1] if found else None


def save_checkpoint(run: Path, step: int, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, config_json: str, keep: int,
                    ema: torch.nn.Module | None = None) -> Path:
    """Write model + optimizer (+ `ema`, the averaged weights) state at `step`, then delete all
    but the newest `keep` checkpoints up to `step`. Refuses (RunError) to write a tensor that
    is not finite."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema.{k}": v.detach().cpu().contiguous()
                        for k, v in ema.state_dict().items()})
    opt = optimizer.state_dict()
    for pid, state in opt["state"].items():
        for k, v in state.items():
            tensors[f"optim.{pid}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not v.isfinite().all()]
    if bad:
        raise RunError(f"{run}: at step {step} {len(bad)} tensors hold NaN or inf (first: "
                       f"{bad[0]}); the run diverged and no checkpoint was written")
    meta = {"format": FORMAT, "step": str(step), "config": config_json,
            "param_groups": json.dumps(opt["param_groups"])}
    path = checkpoint_path(run, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors(path, tensors, meta)
    # Only checkpoints before this one are pruned: a later one (left by a run resumed from an
    # older checkpoint) is overwritten when the run reaches its step, never deleted unseen.
    older = [p for s, p in checkpoints(run) if s < step]
    for old in older[:max(0, len(older) - (keep - 1))]:
        old.unlink()
    return path


def read_checkpoint(path: Path, model: torch.nn.Module, config_json: str,
                    optimizer: torch.optim.Optimizer | None = None,
                    ema: torch.nn.Module | None = None):
    """Check `path` against the run (its config, model, optimizer and averaged weights)
    without changing anything; returns (step, {"model", "ema", "optimizer": state or None}).
    Every problem raises a one-line RunError naming the file."""
    header, tensors = _open(path)
    meta = header.get("__metadata__") or {}

    def fail(what: str) -> RunError:
        return RunError(f"checkpoint {path}: {what}")

    if meta.get("format") != FORMAT:
        raise fail(f"format {meta.get('format')!r}, expected {FORMAT!r}")
    step = meta.get("step", "")
    if not step.isdigit():
        raise fail(f"header step {step!r} is not a non-negative integer")
    match = STEP_FILE.fullmatch(path.name)
    if match is None or int(match.group(1)) != int(step):
        raise fail(f"header step {step} disagrees with the file name {path.name!r}")
    try:
        saved = identity(meta["config"])
    except (KeyError, json.JSONDecodeError, AttributeError):
        raise fail("header has no readable config") from None
    diff = differences(saved, identity(config_json))
    if diff:
        raise fail(f"written by a run with other settings ({diff}); it belongs to another run")

    states = {}
    for what, module in (("model", model), ("ema", ema)):
        saved = {k[len(what) + 1:]: v for k, v in tensors.items() if k.startswith(what + ".")}
        _check_tensors(fail, what, saved, {} if module is None else module.state_dict())
        states[what] = saved if module is not None else None
    states["optimizer"] = (None if optimizer is None
                           else _optimizer_state(fail, meta, tensors, optimizer))
    return int(step), states


def load_checkpoint(path: Path, model: torch.nn.Module, config_json: str,
                    optimizer: torch.optim.Optimizer | None = None,
                    ema: torch.nn.Module | None = None) -> int:
    """Check `path` (`read_checkpoint`), then restore the model (and optimizer, and averaged
    weights); returns the step."""
    step, states = read_checkpoint(path, model, config_json, optimizer, ema)
    model.load_state_dict(states["model"])
    if ema is not None:
        ema.load_state_dict(states["ema"])
    if optimizer is not None:
        optimizer.load_state_dict(states["optimizer"])
    return step


def load_latest(run: Path, model: torch.nn.Module, config_json: str,
                optimizer: torch.optim.Optimizer | None = None,
                checkpoint: Path | None = None, ema: torch.nn.Module | None = None) -> int | None:
    """Restore `checkpoint`, or the run's newest one (None when there is none). When the newest
    is unusable and an older one is good, the error names the older one and the option that
    uses it."""
    if checkpoint is not None:
        return load_checkpoint(Path(checkpoint), model, config_json, optimizer, ema)
    found = checkpoints(run)
    if not found:
        return None
    try:
        return load_checkpoint(found[-1][1], model, config_json, optimizer, ema)
    except RunError as e:
        for _, older in reversed(found[:-1]):
            try:
                read_checkpoint(older, model, config_json, optimizer, ema)
            except RunError:
                continue
            raise RunError(f"{e}. The older checkpoint {older} is good: pass "
                           f"--checkpoint={older} to use it") from None
        raise


def _open(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """The header and tensors of a safetensors file, or a RunError saying what it is instead."""
    if not path.is_file():
        raise RunError(f"checkpoint {path}: no such file")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(9)  # safetensors: the header's length (u64 little-endian), then "{...}"
        declared = int.from_bytes(head[:8], "little")
        f.seek(8)
        header_bytes = f.read(min(declared, size))
    if size == 0:
        raise RunError(f"checkpoint {path}: empty file (0 bytes), expected a safetensors file")
    if head.startswith(b"PK\x03\x04") or head[8:9] != b"{":
        kind = ("a zip archive (torch.save's format)" if head.startswith(b"PK\x03\x04") else
                "a pickle file" if head[:1] == b"\x80" else "an unknown format")
        raise RunError(f"checkpoint {path}: {kind}, expected safetensors (never unpickled)")
    if 8 + declared > size:
        raise RunError(f"checkpoint {path}: {size} bytes, shorter than its header says; the "
                       "file is truncated")
    try:
        header = json.loads(header_bytes)
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"),
                  default=0)
    except (ValueError, TypeError, KeyError, IndexError):
        raise RunError(f"checkpoint {path}: not a safetensors file (unreadable header)") from None
    if 8 + declared + end != size:
        raise RunError(f"checkpoint {path}: {size} bytes, its header describes "
                       f"{8 + declared + end}; the file is truncated or corrupt")
    from safetensors import SafetensorError  # present wherever _safetensors() succeeds

    try:
        tensors = _safetensors().load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:  # its own checks: dtypes, offsets
        raise RunError(f"checkpoint {path}: not a readable safetensors file ({e})") from None
    return header, tensors


# A preset that changed since a run trained builds another model from the run's config.json,
# and the checkpoint's settings pin that config: the version that trained it loads it.
_PRESET_HINT = ("; a run trained by an earlier version whose preset differed (README, 'The "
                "world model') loads with that version")


def _check_tensors(fail, what: str, saved: dict, expected: dict) -> None:
    hint = _PRESET_HINT if what == "model" else ""
    missing, extra = sorted(set(expected) - set(saved)), sorted(set(saved) - set(expected))
    if missing or extra:
        raise fail(f"{what} tensors differ from the run's: missing {missing[:4]}, "
                   f"unexpected {extra[:4]}{hint}")
    for k, v in saved.items():
        if v.shape != expected[k].shape:
            raise fail(f"{what} tensor {k!r} has shape {tuple(v.shape)}, the run's has "
                       f"{tuple(expected[k].shape)}{hint}")
        if v.is_floating_point() and not v.isfinite().all():
            raise fail(f"{what} tensor {k!r} holds NaN or inf")


def _optimizer_state(fail, meta: dict, tensors: dict, optimizer: torch.optim.Optimizer) -> dict:
    """The optimizer state dict stored in a checkpoint, checked against the live optimizer."""
    live = optimizer.state_dict()["param_groups"]
    try:
        groups = json.loads(meta.get("param_groups", ""))
        ok = [g["params"] for g in groups] == [g["params"] for g in live]
    except (json.JSONDecodeError, TypeError, KeyError):
        ok = False
    if not ok:
        raise fail("optimizer parameter groups are missing or differ from the run's")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    wanted = _state_names(optimizer)
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            parts = k.split(".", 2)
            if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) >= len(params):
                raise fail(f"optimizer state {k!r} names no parameter of the run's model")
            state.setdefault(int(parts[1]), {})[parts[2]] = v
    if int(meta["step"]) > 0 and not state:
        raise fail("no optimizer state, expected the state of a run that has trained")
    for pid, names in state.items():
        if set(names) != wanted:
            raise fail(f"optimizer state of parameter {pid} has {sorted(names)}, expected "
                       f"{sorted(wanted)}")
        for name, v in names.items():
            if v.dim() > 0 and v.shape != params[pid].shape:
                raise fail(f"optimizer state {name!r} of parameter {pid} has shape "
                           f"{tuple(v.shape)}, the parameter has {tuple(params[pid].shape)}")
    return {"state": state, "param_groups": groups}


def _state_names(optimizer: torch.optim.Optimizer) -> set[str]:
    """The per-parameter state names `optimizer` keeps, from one step on a probe parameter."""
    probe = torch.nn.Parameter(torch.zeros(1))
    probe.grad = torch.zeros(1)
    accepted = inspect.signature(type(optimizer)).parameters
    twin = type(optimizer)([probe], **{k: v for k, v in optimizer.defaults.items()
                                       if k in accepted})
    twin.step()
    return set(twin.state[probe])


# ---------------------------------------------------------------------------- metrics


def append_metrics(run: Path, row: dict) -> None:
    """Append one row to metrics.jsonl as strict JSON (a NaN is an error, not a token)."""
    line = json.dumps(row, allow_nan=False) + "\n"
    path = run / "metrics.jsonl"
    try:
        with open(path, "a") as f:
            f.write(line)
    except OSError as e:
        raise failed_write(path, e) from None


def read_metrics(run: Path, notice=None) -> list[dict]:
    """The rows of metrics.jsonl. A torn last line (a process died writing it) is dropped,
    with `notice(message)` when given; any other unreadable line is a RunError."""
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    text = path.read_text()
    lines = text.split("\n")
    rows = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) and not text.endswith("\n"):  # the unterminated last line
                if notice:
                    notice(f"{path}: dropped a torn last line ({line[:40]!r}...)")
                continue
            raise RunError(f"{path}: line {i} is not JSON ({line[:40]!r})") from None
    return rows


def truncate_metrics(run: Path, after_step: int, notice=None) -> None:
    """Drop metric lines logged after `after_step` (a killed run logged past its checkpoint)."""
    rows = [r for r in read_metrics(run, notice) if r.get("step", 0) <= after_step]
    atomic_write_text(run / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
