"""ProgramCompiler passes act on a model: freeze, constant folding, export, dead connections."""



from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from canvas_engineering import (
    Field,
    ProgramCompiler,
    ProgramError,
    RegionModel,
    compile_program,
)
from canvas_engineering.process.compiler import edge_key, module_key


@dataclass
class Robot:
    camera: Field = Field(3, 3, family="observation", carrier="diffusive")
    joints: Field = Field(1, 4, family="observation", carrier="deterministic")
    belief: Field = Field(2, 2, family="state", tags=("belief",))
    memory: Field = Field(1, 2, family="memory")
    action: Field = Field(1, 4, family="action", loss_weight=2.0)


def build(**modes):
    torch.manual_seed(0)
    bound, program = compile_program(Robot(), T=2, d_model=8, compile_modes=modes,
                                     values={k: 0.5 for k, m in modes.items() if m == "constant"})
    return bound, program, RegionModel(bound)


def test_freeze_region_does_not_train_while_others_do():
    bound, program, model = build(belief="freeze")
    compiled = ProgramCompiler(bound, program).compile(model)
    assert compiled.report["frozen"] == ["belief"]
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    canvas = torch.randn(2, bound.layout.num_positions, 8)
    target = torch.randn_like(canvas)
    loss = ((compiled(canvas) - target) ** 2).mean()
    loss.backward()
    opt.step()
    after = model.state_dict()
    belief = model.region_modules["belief"]
    assert all(p.grad is None and not p.requires_grad for p in belief.parameters())
    assert torch.equal(after["region_modules.belief.weight"], before["region_modules.belief.weight"])
    into_belief = [edge_key(c) for c in bound.topology.connections if c.src == "belief"]
    for k in into_belief:
        assert torch.equal(after[f"edge_modules.{k}.weight"], before[f"edge_modules.{k}.weight"])
    for name in ("camera", "joints", "memory", "action"):
        k = f"region_modules.{name}.weight"
        assert not torch.equal(after[k], before[k]), name
    # edges that merely read belief (action <- belief) belong to action and still train
    reads_belief = edge_key(next(c for c in bound.topology.connections
                                 if (c.src, c.dst) == ("action", "belief")))
    assert not torch.equal(after[f"edge_modules.{reads_belief}.weight"],
                           before[f"edge_modules.{reads_belief}.weight"])


def test_constant_region_folded_to_its_value():
    bound, program, model = build(memory="constant")
    compiled = ProgramCompiler(bound, program).compile(model)
    assert compiled.report["folded"] == ["memory"]
    assert list(model.region_modules["memory"].parameters()) == []
    for seed in (1, 2):
        torch.manual_seed(seed)
        out = compiled(torch.randn(3, bound.layout.num_positions, 8))
        mem = bound["memory"].extract(out)
        assert torch.equal(mem, torch.full_like(mem, 0.5))


def test_constant_value_tensor_override_and_shape_check():
    bound, program, model = build(memory="constant")
    n = bound["memory"].num_positions
    v = torch.arange(n * 8, dtype=torch.float32).view(n, 8)
    compiled = ProgramCompiler(bound, program).compile(model, values={"memory": v})
    out = compiled(torch.zeros(1, bound.layout.num_positions, 8))
    assert torch.equal(bound["memory"].extract(out)[0], v)
    _, _, model2 = build(memory="constant")
    with pytest.raises(ProgramError, match=r"values\['memory'\]"):
        ProgramCompiler(bound, program).compile(model2, values={"memory": torch.zeros(n + 1, 8)})


def test_dead_connections_eliminated_without_changing_outputs():
    bound, program, model = build(memory="constant")
    canvas = torch.randn(2, bound.layout.num_positions, 8)
    # fold by hand first, so the reference differs from the compiled model only by the pruning
    from canvas_engineering.process.compiler import fold_constants

    reference = RegionModel(bound)
    reference.load_state_dict(model.state_dict())
    fold_constants(reference, bound, program)
    compiled = ProgramCompiler(bound, program).compile(model)
    dead = {(c.src, c.dst) for c in bound.topology.connections if c.src == "memory"}
    assert dead and set(compiled.report["eliminated"]) == dead
    assert len(compiled.topology.connections) == len(bound.topology.connections) - len(dead)
    assert all(c.src != "memory" for c in compiled.topology.connections)
    compiled.program.check(compiled.topology)  # operators still annotate the pruned topology
    assert len(model.edge_modules) == len(compiled.topology.connections)
    torch.testing.assert_close(compiled(canvas), reference(canvas), rtol=0, atol=0)


def test_export_returns_only_exported_regions():
    bound, program, model = build(action="export", belief="export")
    compiled = ProgramCompiler(bound, program).compile(model)
    canvas = torch.randn(2, bound.layout.num_positions, 8)
    out = compiled.export(canvas)
    assert set(out) == {"belief", "action"}
    full = model(canvas)
    assert torch.equal(out["action"], bound["action"].extract(full))
    assert out["belief"].shape == (2, 2 * 4, 8)
    _, program2, model2 = build()
    with pytest.raises(ProgramError, match="export"):
        ProgramCompiler(bound, program2).compile(model2).export(canvas)


def test_scheduled_forward_holds_unfired_regions():
    bound, _, model = build()
    canvas = torch.randn(1, bound.layout.num_positions, 8)
    out = model(canvas, fired={"camera"})
    changed = out != canvas
    assert changed[:, bound["camera"].indices].any()
    for name in ("joints", "belief", "memory", "action"):
        assert not changed[:, bound[name].indices].any()


def test_model_interface_is_checked():
    bound, program, _ = build()
    with pytest.raises(ProgramError, match="region_modules"):
        ProgramCompiler(bound, program).compile(torch.nn.Linear(2, 2))
    model = RegionModel(bound)
    del model.region_modules[module_key("belief")]
    with pytest.raises(ProgramError, match="missing.*belief"):
        ProgramCompiler(bound, program).compile(model)
