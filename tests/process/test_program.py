"""The process layer: seed 000's Robot snippet, operators in the topology, JSON, validation."""

from __future__ import annotations

import json

import pytest

from canvas_engineering import (
    CanvasProgram,
    Clock,
    Field,
    LearningSpec,
    ProgramError,
    RegionProgram,
    SchemaError,
    compile_program,
)
from canvas_engineering.process.program import OPERATORS, ProgramEdge

ROBOT = '''
from dataclasses import dataclass
from canvas_engineering import Field, compile_program

@dataclass
class Robot:
    camera: Field = Field(12, 12, family="observation", carrier="diffusive")
    joints: Field = Field(1, 8, family="observation", carrier="deterministic")
    belief: Field = Field(4, 4, family="state", tags=("belief",))
    memory: Field = Field(2, 4, family="memory")
    action: Field = Field(1, 8, family="action", loss_weight=2.0)

bound, program = compile_program(Robot(), T=8, d_model=256)
# program.regions["camera"].family == "observation"
# Connection operators auto-derived from family pairs:
# observation → state = "observe", state → action = "act", etc.
'''


def robot():
    ns = {"__name__": "seed_snippet"}
    exec(compile(ROBOT, "<seed 000>", "exec", dont_inherit=True), ns)
    return ns


def test_robot_snippet_families_and_carriers():
    ns = robot()
    bound, program = ns["bound"], ns["program"]
    assert program.regions["camera"].family == "observation"
    expect = {"camera": ("observation", "diffusive"), "joints": ("observation", "deterministic"),
              "belief": ("state", "diffusive"), "memory": ("memory", "memory"),
              "action": ("action", "diffusive")}
    assert {n: (r.family, r.carrier) for n, r in program.regions.items()} == expect
    assert program.regions["belief"].tags == ("belief",)
    assert program.regions["memory"].learning.objective == "none"
    assert program.regions["joints"].learning.objective == "regress"
    assert bound.layout.T == 8 and bound.layout.regions["action"].loss_weight == 2.0


def test_operators_annotate_the_compiled_topology():
    bound, program = robot()["bound"], robot()["program"]
    conns = bound.topology.connections
    assert len(program.edges) == len(conns)
    program.check(bound.topology)
    ops = {}
    for i, c in enumerate(conns):
        assert program.edges[i].matches(c)
        ops[(c.src, c.dst)] = program.operator(i)
    # Connection(src, dst): dst → src, so state querying observation is "observe"
    assert ops[("belief", "camera")] == "observe"
    assert ops[("action", "belief")] == "act"
    assert ops[("belief", "belief")] == "transition"
    assert ops[("belief", "memory")] == "recall" and ops[("memory", "belief")] == "write"
    assert ops[("camera", "belief")] == "predict"
    assert set(ops) == {(a, b) for a in program.regions for b in program.regions}  # dense root


def test_operator_table_is_total():
    fams = ("observation", "state", "memory", "residual", "action")
    assert set(OPERATORS) == {(a, b) for a in fams for b in fams}


def test_coarse_fields_default_to_state():
    from dataclasses import dataclass
    from dataclasses import field as dc_field

    @dataclass
    class Eye:
        pixels: Field = Field(2, 2, family="observation")

    @dataclass
    class Agent:
        eye: Eye = dc_field(default_factory=Eye)
        act: Field = Field(1, 2, family="action")

    _, program = compile_program(Agent())
    assert program.regions["eye"].family == "state"
    ops = {(e.src, e.dst): e.operator for e in program.edges}
    assert ops[("eye", "eye.pixels")] == "observe" and ops[("act", "eye")] == "act"


def test_program_json_round_trip():
    _, program = compile_program(
        robot()["Robot"](), T=4,
        clocks={"memory": Clock("event", cooldown=1, max_silence=5),
                "joints": Clock(period=2, phase=1)},
        compile_modes={"camera": "freeze", "memory": "constant", "action": "export"},
        learning={"belief": LearningSpec("regress", lr_scale=0.5)}, values={"memory": 0.25})
    text = program.to_json()
    back = CanvasProgram.from_json(text)
    assert back == program
    assert back.to_dict() == json.loads(text)
    assert back.regions["memory"].clock == Clock("event", cooldown=1, max_silence=5)
    assert back.regions["memory"].value == 0.25
    assert back.in_mode("export") == ["action"]


def test_program_json_rejects_unknown_keys_and_values():
    _, program = compile_program(robot()["Robot"]())
    d = program.to_dict()
    with pytest.raises(SchemaError, match="unknown keys.*'colour'"):
        CanvasProgram.from_dict({**d, "colour": 1})
    bad_region = json.loads(json.dumps(d))
    bad_region["regions"]["camera"]["clock"]["mood"] = "calm"
    with pytest.raises(SchemaError, match=r"regions\['camera'\]\.clock.*'mood'"):
        CanvasProgram.from_dict(bad_region)
    bad_op = json.loads(json.dumps(d))
    bad_op["edges"][0]["operator"] = "teleport"
    with pytest.raises(ProgramError, match="operator: got 'teleport'"):
        CanvasProgram.from_dict(bad_op)
    stale = json.loads(json.dumps(d))
    stale["regions"]["camera"]["family"] = "action"  # operators no longer match the families
    with pytest.raises(ProgramError, match="derived from the families"):
        CanvasProgram.from_dict(stale)
    with pytest.raises(ProgramError, match="version"):
        CanvasProgram.from_dict({**d, "version": 99})


@pytest.mark.parametrize("make, match", [
    (lambda: Clock("sometimes"), "Clock.mode: got 'sometimes'"),
    (lambda: Clock(period=0), "Clock.period"),
    (lambda: Clock(cooldown=3, max_silence=2), "Clock.max_silence"),
    (lambda: LearningSpec("maximise"), "LearningSpec.objective"),
    (lambda: RegionProgram("belief", "diffusive"), "RegionProgram.family: got 'belief'"),
    (lambda: RegionProgram("state", "gaussian"), "RegionProgram.carrier"),
    (lambda: RegionProgram("state", "memory", compile_mode="jit"), "compile_mode: got 'jit'"),
    (lambda: RegionProgram("state", "memory", compile_mode="constant"), "RegionProgram.value"),
    (lambda: ProgramEdge("a", "b", "teleport"), "a<-b: operator"),
])
def test_declaration_errors(make, match):
    with pytest.raises(ProgramError, match=match):
        make()


def test_event_triggered_alias():
    assert Clock("event-triggered").mode == "event"


def test_compile_program_errors_name_the_path():
    Robot = robot()["Robot"]
    with pytest.raises(ProgramError, match="compile_modes key: got 'camra'"):
        compile_program(Robot(), compile_modes={"camra": "freeze"})
    with pytest.raises(ProgramError, match="memory: .*compile_mode: got 'frozen'"):
        compile_program(Robot(), compile_modes={"memory": "frozen"})
    with pytest.raises(ProgramError, match="memory: .*value"):
        compile_program(Robot(), compile_modes={"memory": "constant"})
