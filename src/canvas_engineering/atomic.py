"""Atomic file writes: a file is either its old self, absent, or completely new.

Every file the library writes (schemas, run configs and metrics, checkpoints) goes through
`atomic_write`: the content goes to a temporary file in the same directory, is flushed to disk,
and is moved into place with `os.replace`; on any failure the temporary file is removed.
A process killed mid-write can leave only a `.*.tmp` file, never a truncated target.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call `write(tmp_path)` to produce the content, then move it to `path` atomically."""
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)

    atomic_write(path, write)
