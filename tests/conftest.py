"""Shared fixtures. pytest puts this file's folder (`tests/`) on `sys.path`, which makes the
`helpers` package importable from every test folder; tests never import one another."""

from __future__ import annotations

import pytest
from helpers.train_args import overrides


@pytest.fixture
def tiny_run_args(tmp_path):
    """`--key=value` overrides of a tiny, fast training run writing to a fresh directory."""

    def make(**changes) -> list[str]:
        return [*overrides(**changes), f"--out={tmp_path / 'run'}"]

    return make
