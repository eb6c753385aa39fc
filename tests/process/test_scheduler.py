"""RegionScheduler firing sequences against hand-computed ones."""

from __future__ import annotations

import pytest

from canvas_engineering import Clock, ProgramError, RegionScheduler


def pattern(table, name):
    return "".join("x" if f else "." for f in table[name])


def test_periodic_with_phase():
    s = RegionScheduler({"every": Clock(), "third": Clock(period=3, phase=1),
                         "late": Clock(period=4, phase=5)})
    t = s.firing_table(12)
    assert pattern(t, "every") == "xxxxxxxxxxxx"
    assert pattern(t, "third") == ".x..x..x..x."
    assert pattern(t, "late") == ".....x...x.."


def test_event_clock_with_cooldown():
    s = RegionScheduler({"e": Clock("event", cooldown=2)})
    t = s.firing_table(10, events={0: ["e"], 1: ["e"], 2: ["e"], 3: ["e"], 7: ["e"], 9: ["e"]})
    # 0 fires; 1, 2 cool down (1, 2 steps since); 3 fires; 7 fires; 9 is 2 after 7: suppressed
    assert pattern(t, "e") == "x..x...x.."


def test_periodic_with_cooldown():
    s = RegionScheduler({"p": Clock(period=2, cooldown=2)})
    # wants 0, 2, 4, 6, ...; each is exactly 2 after the last firing, so every other one goes
    assert pattern(s.firing_table(9), "p") == "x...x...x"


def test_max_silence_forces_firing():
    s = RegionScheduler({"quiet": Clock("event", max_silence=3),
                         "slow": Clock(period=10, max_silence=4)})
    t = s.firing_table(12, events={1: ["quiet"]})
    # quiet: event at 1; silent 2,3,4 -> forced at 5; then 6,7,8 -> forced at 9
    assert pattern(t, "quiet") == ".x...x...x.."
    # slow: fires at 0 by period; silence 1..4 forces 5; silence 6..9, and 10 is on period
    assert pattern(t, "slow") == "x....x....x."
    # never fired: silence counts from the start
    assert pattern(RegionScheduler({"q": Clock("event", max_silence=2)}).firing_table(6),
                   "q") == "..x..x"


def test_boundary_clock_and_reset():
    s = RegionScheduler({"b": Clock("boundary"), "eb": Clock("boundary", cooldown=3)})
    t = s.firing_table(10, boundaries=[4, 6, 9])
    assert pattern(t, "b") == "x...x.x..x"
    assert pattern(t, "eb") == "x...x....x"  # 6 is 2 after 4: cooling down
    s.reset()
    assert s.step() == frozenset({"b", "eb"})  # step 0 after reset is a boundary


def test_run_counts_from_current_step_and_checks_event_names():
    s = RegionScheduler({"e": Clock("event")})
    s.run(3)
    assert s.run(2, events={3: ["e"]}) == [frozenset({"e"}), frozenset()]
    with pytest.raises(ProgramError, match="events.*'ee'"):
        s.step(events=["ee"])


def test_from_program_and_position_mask():
    from dataclasses import dataclass

    from canvas_engineering import Field, compile_program

    @dataclass
    class R:
        a: Field = Field(1, 2)
        b: Field = Field(2, 2)

    bound, program = compile_program(R(), T=2, clocks={"b": Clock(period=2)})
    s = RegionScheduler(program)
    assert s.run(3) == [frozenset({"a", "b"}), frozenset({"a"}), frozenset({"a", "b"})]
    m = RegionScheduler.position_mask(bound.layout, {"b"})
    assert m.sum() == 8 and m[bound["b"].indices].all()
