"""Loop checkpoints: only loop parameters and the head, atomic writes, exact reloads."""

from __future__ import annotations

import os

import pytest
import torch
from helpers.tiny_diffusers import MODELS, build, run

from canvas_engineering import (
    CheckpointError,
    graft_looped_blocks,
    load_loop_checkpoint,
    save_loop_checkpoint,
)

pytest.importorskip("safetensors")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def trained_graft(name: str, max_loops: int = 3, seed: int = 7):
    """A grafted tiny model whose loop parameters and head look trained (random, nonzero)."""
    model = build(name)
    blocks, head = graft_looped_blocks(model, max_loops=max_loops, action_dim=5)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for b in blocks:
            for _, p in b.named_loop_parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        for p in head.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return model, blocks, head


@pytest.mark.parametrize("name", MODELS)
def test_save_then_load_into_fresh_graft_reproduces_outputs(name, tmp_path):
    model, blocks, head = trained_graft(name)
    path = tmp_path / "loops.safetensors"
    save_loop_checkpoint(path, blocks, head, metadata={"step": 12})
    fresh = build(name)
    fresh_blocks, fresh_head = graft_looped_blocks(fresh, max_loops=3, action_dim=5)
    with torch.no_grad():
        assert not torch.equal(run(fresh, name), run(model, name))
        meta = load_loop_checkpoint(path, fresh_blocks, fresh_head)
        out = run(model, name)
        assert torch.equal(run(fresh, name), out)
        assert torch.equal(fresh_head(out), head(out))
    assert meta["step"] == "12" and meta["n_blocks"] == "2"


def test_file_holds_only_loop_parameters_and_head(tmp_path):
    from safetensors.torch import load_file

    _model, blocks, head = trained_graft("mochi")
    path = tmp_path / "loops.safetensors"
    save_loop_checkpoint(str(path), blocks, head)
    saved = load_file(path)
    expected = {f"blocks.{i}.{n}" for i in range(2) for n in
                ("loop_emb", "loop_gate", "loop_emb_enc")}
    expected |= {f"action_head.{n}" for n, _ in head.named_parameters()}
    assert set(saved) == expected
    assert saved["blocks.1.loop_emb_enc"].shape == (3, 12)
    assert saved["blocks.0.loop_gate"].shape == (2,)
    assert os.listdir(tmp_path) == ["loops.safetensors"]  # no temporary file left behind


def test_overwrite_is_atomic_and_failed_write_keeps_old_file(tmp_path, monkeypatch):
    import safetensors.torch as st

    _, blocks, head = trained_graft("wan")
    path = tmp_path / "loops.safetensors"
    save_loop_checkpoint(path, blocks, head)
    good = path.read_bytes()

    def broken(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(st, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        save_loop_checkpoint(path, blocks, head)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["loops.safetensors"]


def test_mismatched_shapes_name_the_keys_and_leave_model_untouched(tmp_path):
    _, blocks, head = trained_graft("cogvideox", max_loops=3)
    path = tmp_path / "loops.safetensors"
    save_loop_checkpoint(path, blocks, head)
    other = build("cogvideox")
    other_blocks, other_head = graft_looped_blocks(other, max_loops=2, action_dim=5)
    before = [p.clone() for b in other_blocks for _, p in b.named_loop_parameters()]
    with pytest.raises(CheckpointError, match=r"blocks\.0\.loop_emb.*\[3, 16\], \[2, 16\]"):
        load_loop_checkpoint(path, other_blocks, other_head)
    after = [p for b in other_blocks for _, p in b.named_loop_parameters()]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_mismatched_names_are_listed(tmp_path):
    _, blocks, head = trained_graft("mochi")
    path = tmp_path / "loops.safetensors"
    save_loop_checkpoint(path, blocks, head)
    wan_blocks, _ = graft_looped_blocks(build("wan"), max_loops=3)
    with pytest.raises(CheckpointError, match=r"unexpected keys \['action_head\..*loop_emb_enc"):
        load_loop_checkpoint(path, wan_blocks)
    _, blocks_wan, head_wan = trained_graft("wan")
    save_loop_checkpoint(path, blocks_wan)
    with pytest.raises(CheckpointError, match=r"missing keys \['action_head\.mlp"):
        load_loop_checkpoint(path, blocks_wan, head_wan)


def test_bad_paths_and_arguments(tmp_path):
    _, blocks, _ = trained_graft("wan")
    with pytest.raises(FileNotFoundError, match="no loop checkpoint"):
        load_loop_checkpoint(tmp_path / "missing.safetensors", blocks)
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, tmp_path / "other.safetensors")
    with pytest.raises(CheckpointError, match="format None"):
        load_loop_checkpoint(tmp_path / "other.safetensors", blocks)
    with pytest.raises(TypeError, match=r"looped_blocks\[0\]: got Linear"):
        save_loop_checkpoint(tmp_path / "x.safetensors", [torch.nn.Linear(2, 2)])


def test_missing_safetensors_names_the_extra(tmp_path, monkeypatch):
    import sys

    _, blocks, _ = trained_graft("wan")
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)  # import now fails
    with pytest.raises(ImportError, match=r"canvas-engineering\[train\]"):
        save_loop_checkpoint(tmp_path / "x.safetensors", blocks)


def test_import_needs_neither_diffusers_nor_safetensors():
    import subprocess
    import sys

    code = ("import sys, canvas_engineering; "
            "print(sorted(m for m in ('diffusers', 'safetensors') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
