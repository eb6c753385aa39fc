"""Curriculum and sharpening schedules: values computed by hand, and the model following them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from canvas_engineering import CurriculumScheduler, LoopedBlockWrapper, SharpeningSchedule


def test_curriculum_equal_stages_over_training():
    s = CurriculumScheduler(max_loops=3, total_steps=6000)
    got = {step: s.loops(step) for step in (0, 1999, 2000, 3999, 4000, 5999, 6000, 10**6)}
    assert got == {0: 1, 1999: 1, 2000: 2, 3999: 2, 4000: 3, 5999: 3, 6000: 3, 10**6: 3}
    assert s(2500) == 2


def test_curriculum_ramp_fraction_and_min_loops():
    s = CurriculumScheduler(max_loops=4, total_steps=1000, min_loops=2, ramp_fraction=0.6)
    # ramp of 600 steps in 3 stages of 200: 2, 3, 4 loops, then 4 to the end.
    got = [s(step) for step in (0, 199, 200, 399, 400, 599, 600, 999)]
    assert got == [2, 2, 3, 3, 4, 4, 4, 4]
    assert [CurriculumScheduler(1, 10)(k) for k in range(12)] == [1] * 12


def test_wrapped_blocks_follow_the_curriculum():
    torch.manual_seed(0)
    blocks = [LoopedBlockWrapper(nn.Linear(4, 4), dim=4, max_loops=3) for _ in range(2)]
    for b in blocks:
        with torch.no_grad():
            b.loop_gate.fill_(0.5)
    s = CurriculumScheduler(max_loops=3, total_steps=30)
    x = torch.randn(2, 4)
    for step, n in ((0, 1), (10, 2), (29, 3)):
        assert s.apply(blocks, step) == n
        assert all(b.loops == n for b in blocks)
        assert torch.equal(blocks[1](x), blocks[1](x, loops=n))
        assert not torch.equal(blocks[1](x), blocks[1](x, loops=1 + n % 3))


def test_sharpening_values_from_the_readme():
    s = SharpeningSchedule(max_loops=3, beta_min=1.0, beta_max=4.0)
    assert s.betas() == [1.0, 2.5, 4.0]
    assert [s(i) for i in range(3)] == [1.0, 2.5, 4.0]
    assert SharpeningSchedule(max_loops=5, beta_min=1.0, beta_max=2.0).betas() == [
        1.0, 1.25, 1.5, 1.75, 2.0]
    assert SharpeningSchedule(max_loops=1, beta_min=1.5, beta_max=8.0).betas() == [1.5]


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: CurriculumScheduler(max_loops=0, total_steps=10), "max_loops: got 0"),
        (lambda: CurriculumScheduler(max_loops=3, total_steps=0), "total_steps: got 0"),
        (lambda: CurriculumScheduler(3, 10, min_loops=4), "min_loops: got 4"),
        (lambda: CurriculumScheduler(3, 10, ramp_fraction=0), "ramp_fraction: got 0"),
        (lambda: CurriculumScheduler(3, 10).loops(-1), "step: got -1"),
        (lambda: CurriculumScheduler(3, 10).loops(1.5), "step: got 1.5"),
        (lambda: SharpeningSchedule(max_loops=0), "max_loops: got 0"),
        (lambda: SharpeningSchedule(3, beta_min=0.0), "beta_min: got 0.0"),
        (lambda: SharpeningSchedule(3, beta_max=-1), "beta_max: got -1"),
        (lambda: SharpeningSchedule(3).beta(3), r"loop: got 3, expected an int in \[0, 3\)"),
    ],
)
def test_bad_schedule_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()
