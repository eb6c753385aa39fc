"""The README's snippets that need no downloads run as written."""

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_first_code_block_is_the_two_commands():
    first = re.search(r"```\w*\n(.*?)```", README.read_text(), flags=re.DOTALL).group(1)
    assert first.strip().splitlines() == ["bash scripts/run.sh", "bash scripts/test.sh"]


def test_canvas_topology_and_schema_snippets_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks()
    ns: dict = {}
    exec(blocks[0], ns)
    assert ns["batch"].shape == (4, 320, 256) and ns["actions"].shape == (4, 5, 256)
    assert ns["weights"].sum() == 3 * 36 + 2.0 * 3 + 1
    exec(blocks[1], ns)
    N = ns["layout"].num_positions
    assert ns["mask"].shape == (N, N) and torch.equal(ns["allowed"], ns["mask"] > 0)
    assert [op[3] for op in ns["ops"]] == ["cross_attention", "cross_attention", "pooling"]
    ns["other_schema"] = None
    exec(blocks[2].replace("other_schema, threshold", "loaded, threshold"), ns)
    assert ns["loaded"] == ns["schema"]
    assert ns["pairs"] == []  # no region declares a semantic embedding


def test_semantic_snippet_runs_and_gives_the_distances_it_shows():
    import pytest

    pytest.importorskip("sentence_transformers")
    block = next(b for b in python_blocks() if "default_embedder()" in b)
    ns: dict = {}
    exec(block, ns)
    from canvas_engineering import transfer_distance

    assert 0.28 < transfer_distance(ns["cam"], ns["depth"]) < 0.31  # README: 0.295
    assert 0.61 < transfer_distance(ns["cam"], ns["joints"]) < 0.64  # README: 0.628
