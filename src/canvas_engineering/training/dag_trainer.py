"""`DAGCurriculumTrainer`: train the nodes of a DAG curriculum parents-first on one canvas.

Each node trains its own regions of the canvas with the canvas diffusion objective (noised
future positions, clean context; the target is never visible in the input). A join node starts
from the mean of its parents' trainable parameters (`dag_merge`). With `backbone="cogvideox"` the
frozen pretrained transformer is loaded once and shared by every node's model, so memory grows
only by the trainables per node.

Files in `out` per node: `<node>.safetensors` (trainable parameters only, plus the node's config,
step and merge report in the header), `<node>.json` (its losses and summary), and while it trains
`<node>.partial.safetensors` (parameters and optimizer state at the last checkpoint step); plus
`dag.json` (the order and every node's summary). Everything is written atomically. Batches and
noise are pure functions of (seed, node, step), so a killed run resumes at the node and step
where it stopped and ends with the parameters of an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import time
import types
import warnings
from pathlib import Path

import torch

from canvas_engineering.atomic import atomic_write_text
from canvas_engineering.data.codecs import make_codecs
from canvas_engineering.errors import ConfigError, RunError, bad, check_choice
from canvas_engineering.integrations.loop_checkpoint import write_safetensors
from canvas_engineering.models.cogvideox import CanvasCogVideoX, CogVideoXConfig
from canvas_engineering.models.cogvideox_load import load_transformer, usable_backbone
from canvas_engineering.models.scratch import BackboneConfig, CanvasWorldModel
from canvas_engineering.spec.canvases import PRESETS
from canvas_engineering.training.batches import codec_specs, collate, draw_noise, to_positions
from canvas_engineering.training.dag import TrainingNode, check_dag
from canvas_engineering.training.dag_merge import merge_parents, trainable_state
from canvas_engineering.training.diffusion import CanvasDiffusion

FORMAT = "canvas-engineering/dag-node/1"
DEFAULT_KEYS = {"visual": "video", "action": "action", "reward": "reward"}


class DAGCurriculumTrainer:
    """Train a DAG of `TrainingNode`s (seed 004's usage).

    Args:
        nodes: TrainingNodes (or their dicts). data_sources: name → dataset (`ds[i]` is an
            episode {data key: array (T, ...)}, T = the canvas's frames).
        backbone: "cogvideox" (frozen pretrained blocks) or "scratch".
        pretrained_model_id: a local directory or a hub id in the local cache (cogvideox).
        device: "cuda", "cpu", ...; None picks cuda when there is one.
        canvas: a built-in canvas name or a `CanvasSchema`. keys: region → data key.
        out: directory of checkpoints and summaries. on_step: called as
            on_step(node, step, loss) after every step (progress; tests stop runs with it).
    """

    def __init__(self, nodes, data_sources: dict, backbone: str = "cogvideox",
                 pretrained_model_id: str | None = "THUDM/CogVideoX-2b", device=None, *,
                 canvas="robot", keys: dict | None = None, out="runs/dag", seed: int = 0,
                 pretrained_dtype: str = "bfloat16", prediction: str = "v", on_step=None):
        schema = PRESETS[check_choice("canvas", canvas, sorted(PRESETS), ConfigError)]() \
            if isinstance(canvas, str) else canvas
        self.layout, self.topology = schema.layout, schema.topology
        if not isinstance(data_sources, dict):
            raise bad("data_sources", type(data_sources).__name__, "a dict of name -> "
                      "dataset", ConfigError)
        self.keys = dict(DEFAULT_KEYS if keys is None else keys)
        self.order = check_dag(nodes, self.layout.region_names, data_sources)
        self.nodes = {n.name: n for n in self.order}
        self.sources = data_sources
        self.specs = {n.name: self._check_data(n) for n in self.order}  # before any training
        self.backbone = usable_backbone(check_choice("backbone", backbone,
                                                     ("cogvideox", "scratch"), ConfigError))
        if self.backbone == "cogvideox" and not pretrained_model_id:
            raise bad("pretrained_model_id", pretrained_model_id, "a local directory or hub id "
                      "in the local cache, with backbone='cogvideox'", ConfigError)
        self.pretrained_model_id, self.pretrained_dtype = pretrained_model_id, pretrained_dtype
        self.device = torch.device(_device(device))
        self.out, self.seed, self.on_step = Path(out), seed, on_step
        self.diffusion = CanvasDiffusion(self.layout, prediction=prediction)
        self.frozen = None  # the shared pretrained transformer, loaded on first use
        self.trained: dict[str, dict[str, torch.Tensor]] = {}  # node → final trainables (CPU)

    # -- checks -------------------------------------------------------------------------------

    def _check_data(self, node: TrainingNode) -> dict:
        """Codec specs of a node's regions, the same from every one of its sources."""
        missing = [r for r in node.regions if r not in self.keys]
        if missing:
            raise bad(f"node {node.name!r}.regions", missing, f"regions with a data key in "
                      f"keys {self.keys}", ConfigError)
        need = types.SimpleNamespace(regions={r: self.keys[r] for r in node.regions})
        specs = None
        for s in node.data_sources:
            if len(self.sources[s]) < 1:
                raise bad(f"data source {s!r}", 0, "at least one episode", ConfigError)
            try:
                mine = codec_specs(self.sources[s][0], need)
            except ConfigError as e:
                raise ConfigError(f"node {node.name!r}, data source {s!r}: {e}") from None
            if specs is not None and mine != specs:
                raise bad(f"node {node.name!r}, data source {s!r}", mine, f"the shapes of its "
                          f"other sources, {specs}", ConfigError)
            specs = mine
        return specs

    # -- models -------------------------------------------------------------------------------

    def build_node(self, name: str):
        """A node's model on the device, started from its parents (which must have trained);
        returns (model, merge report)."""
        node, index = self.nodes[name], [n.name for n in self.order].index(name)
        for p in node.parents:
            if p not in self.trained:
                self.trained[p] = self._load_final(self.nodes[p])
        codecs = make_codecs(self.layout, self.specs[name])
        torch.manual_seed(self.seed * 1009 + index)  # the same init when resumed
        if self.backbone == "cogvideox":
            if self.frozen is None:  # once, shared by every node
                self.frozen = load_transformer(self.pretrained_model_id, self.pretrained_dtype,
                                               device=self.device)
            config = CogVideoXConfig(self.pretrained_model_id, d_model=node.d_model,
                                     loops=node.loops, dtype=self.pretrained_dtype)
            model = CanvasCogVideoX(self.layout, self.topology, codecs, config,
                                    transformer=self.frozen)
        else:
            config = BackboneConfig(d_model=node.d_model, loops=node.loops, n_blocks=2,
                                    mlp_ratio=2.0, freq_dim=64)
            model = CanvasWorldModel(self.layout, self.topology, codecs, config)
        report = merge_parents(model, {p: self.trained[p] for p in node.parents})
        return model.to(self.device), report

    # -- the run ------------------------------------------------------------------------------

    def run(self, nodes: list[str] | None = None) -> dict:
        """Train `nodes` (names; default all) and their ancestors, parents first, skipping the
        ones already trained in `out` and resuming one that was interrupted. Returns
        {node: summary}, also written to `out/dag.json`."""
        wanted = set(self.nodes if nodes is None else self._with_ancestors(nodes))
        self.out.mkdir(parents=True, exist_ok=True)
        summaries = {}
        for node in self.order:
            if node.name not in wanted:
                continue
            summary_path = self.out / f"{node.name}.json"
            if (self.out / f"{node.name}.safetensors").exists():
                self.trained[node.name] = self._load_final(node)  # done (checked) before
                summaries[node.name] = json.loads(summary_path.read_text())
            else:
                summaries[node.name] = self._train(node)
            atomic_write_text(self.out / "dag.json", json.dumps(
                {"order": [n.name for n in self.order], "backbone": self.backbone,
                 "nodes": summaries}, indent=2))
        return summaries

    def _with_ancestors(self, names: list[str]) -> set[str]:
        found, todo = set(), list(names)
        while todo:
            n = todo.pop()
            if n not in self.nodes:
                raise bad("nodes to run", n, f"one of {list(self.nodes)}", ConfigError)
            if n not in found:
                found.add(n)
                todo += self.nodes[n].parents
        return found

    def _train(self, node: TrainingNode) -> dict:
        model, report = self.build_node(node.name)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=node.lr, weight_decay=0.0)
        start, losses = self._resume(node, model, opt)
        index = [n.name for n in self.order].index(node.name)
        regions = {r: self.keys[r] for r in node.regions}
        sizes = [len(self.sources[s]) for s in node.data_sources]
        began = time.perf_counter()
        for step in range(start, node.steps):
            x0 = self._batch(node, index, step, sizes, model.codecs, regions)
            t, noise = draw_noise(x0, self.seed * 1009 + index, step,
                                  torch.arange(node.batch_size))
            x0 = {k: v.to(self.device) for k, v in x0.items()}
            noise = {k: v.to(self.device) for k, v in noise.items()}
            loss, _ = self.diffusion.loss(model, x0, t.to(self.device), noise)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            value = loss.item()
            if not math.isfinite(value):
                raise RunError(f"node {node.name!r}: the loss is {value} at step {step + 1}; "
                               "try a lower lr")
            losses.append([step + 1, value])
            if (step + 1) % node.checkpoint_every == 0 and step + 1 < node.steps:
                self._save_partial(node, model, opt, step + 1, losses)
            if self.on_step is not None:
                self.on_step(node.name, step + 1, value)
        return self._finish(node, model, report, losses, time.perf_counter() - began)

    def _batch(self, node, index, step, sizes, codecs, regions) -> dict:
        """The node's batch at `step`: episodes drawn uniformly over all its sources."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index * 10_007 + step)
        picks = torch.randint(0, sum(sizes), (node.batch_size,), generator=g).tolist()
        items = []
        for i in picks:
            for s, size in zip(node.data_sources, sizes):
                if i < size:
                    items.append(self.sources[s][i])
                    break
                i -= size
        clip = collate(items, torch.arange(len(items)))  # key → (B, T, ...)
        return to_positions(clip, self.layout, codecs, regions)

    # -- files --------------------------------------------------------------------------------

    def _meta(self, node: TrainingNode, step: int) -> dict[str, str]:
        setup = {"backbone": self.backbone, "pretrained_model_id": self.pretrained_model_id,
                 "seed": self.seed}
        return {"format": FORMAT, "node": json.dumps(node.to_dict(), sort_keys=True),
                "setup": json.dumps(setup, sort_keys=True), "step": str(step)}

    def _open(self, node: TrainingNode, path: Path) -> tuple[dict, dict]:
        """(metadata, tensors) of a node file, refused unless written for this very node."""
        from safetensors import safe_open
        from safetensors.torch import load_file

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            tensors = load_file(str(path))
        except (OSError, ValueError, RuntimeError) as e:  # a torn or foreign file
            raise RunError(f"{path}: not a readable node checkpoint ({e})") from None
        want = self._meta(node, 0)
        for key in ("format", "node", "setup"):
            if meta.get(key) != want[key]:
                raise RunError(f"{path}: written for {key} {meta.get(key)}, but this run has "
                               f"{want[key]}; use another out directory")
        return meta, tensors

    def _load_final(self, node: TrainingNode) -> dict[str, torch.Tensor]:
        path = self.out / f"{node.name}.safetensors"
        if not path.exists():
            raise RunError(f"node {node.name!r} has not trained yet (no {path})")
        return self._open(node, path)[1]

    def _save_partial(self, node, model, opt, step: int, losses: list) -> None:
        tensors = {f"model.{k}": v for k, v in trainable_state(model).items()}
        for i, state in opt.state_dict()["state"].items():
            for k, v in state.items():
                tensors[f"optim.{i}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
        meta = {**self._meta(node, step), "losses": json.dumps(losses)}
        write_safetensors(self.out / f"{node.name}.partial.safetensors", tensors, meta)

    def _resume(self, node, model, opt) -> tuple[int, list]:
        """Load the node's partial checkpoint, if any: (start step, losses so far)."""
        path = self.out / f"{node.name}.partial.safetensors"
        if not path.exists():
            return 0, []
        meta, tensors = self._open(node, path)
        state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        model.load_state_dict(state, strict=True)
        saved = opt.state_dict()
        saved["state"] = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, i, name = k.split(".", 2)
                saved["state"].setdefault(int(i), {})[name] = v
        opt.load_state_dict(saved)
        return int(meta["step"]), json.loads(meta["losses"])

    def _finish(self, node, model, report, losses, seconds) -> dict:
        state = trainable_state(model)
        meta = {**self._meta(node, node.steps), "merge": json.dumps(report)}
        write_safetensors(self.out / f"{node.name}.safetensors", state, meta)
        self.trained[node.name] = state
        k = max(1, len(losses) // 10)
        summary = {"node": node.to_dict(), "steps": node.steps, "seconds": round(seconds, 1),
                   "trainable_parameters": sum(v.numel() for v in state.values()),
                   "loss_first": sum(v for _, v in losses[:k]) / k,
                   "loss_last": sum(v for _, v in losses[-k:]) / k, "losses": losses,
                   "merge": {"averaged": len(report["averaged"]),
                             "copied": len(report["copied"]),
                             "unmatched": sorted(report["unmatched"])}}
        atomic_write_text(self.out / f"{node.name}.json", json.dumps(summary, indent=2))
        (self.out / f"{node.name}.partial.safetensors").unlink(missing_ok=True)
        return summary


def _device(device) -> str:
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(f"device {device!r}: CUDA is not available here; training on the CPU",
                      RuntimeWarning, stacklevel=3)
        return "cpu"
    return str(device)
