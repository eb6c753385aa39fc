"""The DAG curriculum: bad DAGs refused before training, parents-first order, joins start from the
mean of their parents' trainables, one shared frozen backbone, resumable per-node checkpoints,
the seed-004 snippet and the built-in DAG command."""

import ctypes
import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("diffusers")
from safetensors.torch import load_file

from canvas_engineering.errors import ConfigError, RunError
from canvas_engineering.models.cogvideox_load import save_tiny_cogvideox
from canvas_engineering.training.dag import TrainingNode, check_dag
from canvas_engineering.training.dag_cli import builtin_sources
from canvas_engineering.training.dag_trainer import DAGCurriculumTrainer

ROOT = Path(__file__).resolve().parents[2]
REGIONS = ["visual", "action", "reward"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(save_tiny_cogvideox(tmp_path_factory.mktemp("dag") / "tiny", head_dim=8))


@pytest.fixture(scope="module")
def sources():
    return builtin_sources(episodes=16)


def node(name, regions=("visual",), parents=(), **kw):
    kw = {"data_sources": ["push"], "steps": 2, "batch_size": 2, "d_model": 16, **kw}
    return TrainingNode(name, regions=list(regions), parents=list(parents), **kw)


@pytest.mark.parametrize("nodes, match", [
    ([node("a"), node("a")], r"nodes: got \['a'\], expected unique node names"),
    ([node("a", parents=["zz"])], r"node 'a'.parents: got 'zz', expected one of the nodes"),
    ([node("a", parents=["c"]), node("b", parents=["a"]), node("c", parents=["b"])],
     r"nodes: got 'a -> c -> b -> a', expected a DAG"),
    ([node("a", regions=["vision"])],
     r"node 'a'.regions: got \['vision'\], expected one or more regions of the canvas"),
    ([node("a", data_sources=[])], r"node 'a'.data_sources: got \[\], expected at least one"),
    ([node("a", data_sources=["lerobot"])],
     r"node 'a'.data_sources: got 'lerobot', expected one of \['push'\]"),
    ([{"name": "a", "regions": ["visual"], "data_sources": ["push"], "stepz": 3}],
     r"unknown keys \['stepz'\]"),
])
def test_bad_dags_fail_before_any_training(nodes, match, sources, tmp_path):
    steps = []
    with pytest.raises(ConfigError, match=match):
        DAGCurriculumTrainer(nodes, sources, backbone="scratch", out=tmp_path,
                             on_step=lambda *a: steps.append(a))
    assert steps == [] and not any(tmp_path.iterdir())


def test_parents_come_first_in_declaration_order():
    dag = [node("join", parents=["b", "a"]), node("a"), node("b", parents=["c"]), node("c")]
    order = [n.name for n in check_dag(dag, REGIONS, {"push"})]
    assert order == ["c", "b", "a", "join"]
    assert TrainingNode.from_dict(dag[0].to_dict()) == dag[0]


def test_a_join_starts_from_the_mean_of_its_parents_trainables(tiny, sources, tmp_path):
    dag = [node("a", ["visual", "action"]), node("b", ["action", "reward"]),
           node("c", REGIONS, parents=["a", "b"], loops=3)]  # 3 loops: other loop shapes
    trainer = DAGCurriculumTrainer(dag, sources, pretrained_model_id=tiny, device="cpu",
                                   out=tmp_path, pretrained_dtype="float32")
    trainer.run(["a", "b"])
    a, b = (load_file(str(tmp_path / f"{n}.safetensors")) for n in "ab")
    model, report = trainer.build_node("c")
    got = {n: p.detach() for n, p in model.named_parameters()}
    assert set(a) == {n for n, p in trainer.build_node("a")[0].named_parameters()}
    both = set(a) & set(b) & set(got)
    averaged = {k for k in both if a[k].shape == b[k].shape == got[k].shape}
    assert averaged and set(report["averaged"]) == averaged
    for k in averaged:
        assert torch.equal(got[k], (a[k] + b[k]) / 2), k
    assert report["copied"] == {"encoders.visual.weight": "a", "encoders.visual.bias": "a",
                                "decoders.visual.weight": "a", "decoders.visual.bias": "a",
                                "encoders.reward.weight": "b", "encoders.reward.bias": "b",
                                "decoders.reward.weight": "b", "decoders.reward.bias": "b"}
    for k, parent in report["copied"].items():
        assert torch.equal(got[k], {"a": a, "b": b}[parent][k])
    unmatched = {f"blocks.{i}.{n}" for i in range(2)
                 for n in ("loop_emb", "loop_emb_enc", "loop_gate")}
    assert set(report["unmatched"]) == unmatched
    assert "shape a [2, 16], b [2, 16] vs [3, 16]" in report["unmatched"]["blocks.0.loop_emb"]
    # The frozen backbone is one set of tensors shared by every node's model.
    models = [trainer.build_node(n)[0] for n in "abc"]
    ptrs = [{k: p.data_ptr() for k, p in m.transformer.named_parameters()} for m in models]
    assert ptrs[0] == ptrs[1] == ptrs[2] and all(m.transformer is trainer.frozen for m in models)


class Stop(Exception):
    pass


def test_a_killed_run_resumes_at_the_node_and_step(tiny, sources, tmp_path):
    dag = [node("a", checkpoint_every=2, steps=3), node("b", ["action"], steps=3),
           node("c", REGIONS, parents=["a", "b"], steps=5, checkpoint_every=2)]
    kw = {"pretrained_model_id": tiny, "device": "cpu", "pretrained_dtype": "float32"}
    DAGCurriculumTrainer(dag, sources, out=tmp_path / "straight", **kw).run()

    def stop_at_c3(name, step, loss):
        if (name, step) == ("c", 3):
            raise Stop
    with pytest.raises(Stop):
        DAGCurriculumTrainer(dag, sources, out=tmp_path / "killed", on_step=stop_at_c3,
                             **kw).run()
    assert (tmp_path / "killed" / "c.partial.safetensors").exists()
    seen = []
    DAGCurriculumTrainer(dag, sources, out=tmp_path / "killed",
                         on_step=lambda *a: seen.append(a[:2]), **kw).run()
    assert seen == [("c", 3), ("c", 4), ("c", 5)]  # a and b not retrained; c from step 2
    assert not (tmp_path / "killed" / "c.partial.safetensors").exists()
    for name in "abc":
        want = load_file(str(tmp_path / "straight" / f"{name}.safetensors"))
        got = load_file(str(tmp_path / "killed" / f"{name}.safetensors"))
        assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
        w, g = (json.loads((tmp_path / d / f"{name}.json").read_text())
                for d in ("straight", "killed"))
        assert w["losses"] == g["losses"]
    changed = [node("a", checkpoint_every=2, steps=4), *dag[1:]]
    with pytest.raises(RunError, match="a.safetensors: written for node"):
        DAGCurriculumTrainer(changed, sources, out=tmp_path / "killed", **kw).run()


def test_the_seed_004_snippet_runs_as_written(tiny, sources, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dag = [node("vision"), node("control", ["action", "reward"]),
           node("robot", REGIONS, parents=["vision", "control"])]
    data_sources = sources
    with pytest.warns(RuntimeWarning, match="CUDA is not available") if \
            not torch.cuda.is_available() else _nothing():
        trainer = DAGCurriculumTrainer(
            nodes=dag,
            data_sources=data_sources,
            backbone="cogvideox",  # default
            pretrained_model_id=tiny,  # the seed's "THUDM/CogVideoX-2b", here a tiny local one
            device="cuda",
        )
    trainer.run()
    assert sorted(json.loads(Path("runs/dag/dag.json").read_text())["nodes"]) == [
        "control", "robot", "vision"]


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.slow
def test_the_builtin_dag_command_runs_and_every_nodes_loss_falls(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "canvas_engineering", "train-dag", "--make-tiny",
         "--pretrained_model_id", str(tmp_path / "tiny"), "--out", str(tmp_path / "dag"),
         "--steps", "40", "--episodes", "64"], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr
    dag = json.loads((tmp_path / "dag" / "dag.json").read_text())
    assert dag["order"] == ["vision", "control", "robot"]
    for name, s in dag["nodes"].items():
        assert s["loss_last"] < s["loss_first"], (name, s["loss_first"], s["loss_last"])
    assert (tmp_path / "dag" / "dag_loss.png").stat().st_size > 0


def rss_bytes() -> int:
    """Resident memory now, after returning freed heap pages to the OS (glibc keeps them
    otherwise, and the number would measure the allocator rather than what is alive)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc")
def test_memory_does_not_grow_with_the_number_of_nodes(tmp_path, sources):
    """A 41 MB frozen backbone, 4 nodes: resident memory after node 4 exceeds that after node 1
    by at most the trainables (per node) plus a small constant, not by more backbones."""
    big = save_tiny_cogvideox(tmp_path / "big", heads=4, head_dim=64, layers=6)
    dag = [node(f"n{i}", ["action"], parents=[f"n{i - 1}"] if i else [], steps=2)
           for i in range(4)]
    after = {}
    trainer = DAGCurriculumTrainer(
        dag, sources, pretrained_model_id=str(big), device="cpu", out=tmp_path / "dag",
        pretrained_dtype="float32",
        on_step=lambda n, s, _: after.__setitem__(n, rss_bytes()) if s == 2 else None)
    trainer.run()
    frozen = sum(p.numel() * p.element_size() for p in trainer.frozen.parameters())
    trainables = sum(v.numel() * v.element_size() for v in trainer.trained["n0"].values())
    assert frozen > 35e6
    growth = after["n3"] - after["n0"]
    assert growth <= 4 * 4 * trainables + 12e6, (after, frozen, trainables)
    print(f"rss growth n0 -> n3: {growth / 1e6:.1f} MB; frozen {frozen / 1e6:.1f} MB; "
          f"trainables {trainables / 1e6:.2f} MB per node")


def test_the_readme_dag_snippet_runs(tiny, tmp_path, monkeypatch):
    import re

    monkeypatch.chdir(tmp_path)
    readme = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
                 if "DAGCurriculumTrainer" in b)
    code = block.replace('"/path/to/CogVideoX-2b"', repr(tiny)).replace("steps=40", "steps=2")
    exec(code, {})
    assert json.loads(Path("runs/dag/dag.json").read_text())["order"] == [
        "vision", "control", "robot"]
