"""Atomic file writes: a file is either its old self, absent, or completely new.

Every file the library writes (schemas, run configs and metrics, checkpoints) goes through
`atomic_write`: the content goes to a temporary file in the same directory, is flushed to disk,
and is moved into place with `os.replace`; on any failure the temporary file is removed.
A process killed mid-write can leave only a `.*.tmp` file, never a truncated target.

The temporary file is created private (0600) so that no one reads it half-written; before it
is moved into place it gets the permissions an ordinary `open()` would give it under the
user's umask. A write that fails in the operating system (a full disk, a file size limit)
raises `OSError` naming the target path, so the message says what could not be written.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable


def current_umask() -> int:
    """The process's umask (read by setting and restoring it: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def failed_write(path: str | os.PathLike, error: OSError) -> OSError:
    """`error` re-raised as an OSError whose message names `path`."""
    return OSError(error.errno, f"{error.strerror or error} (while writing)", os.fspath(path))


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
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except OSError as e:
        _remove(tmp)
        raise failed_write(path, e) from None
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: str) -> None:
    if os.path.exists(tmp):
        os.remove(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)

    atomic_write(path, write)
