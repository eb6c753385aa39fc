"""Training schedules for looped blocks: a loop-count curriculum and progressive sharpening.

`CurriculumScheduler` ramps the number of loops from `min_loops` to `max_loops` in equal stages
over the first `ramp_fraction` of training, then holds `max_loops`. `SharpeningSchedule` gives the
loop-indexed inverse temperature of seed 002 Eq. 2:

    β(ℓ) = β_min + ℓ / (L − 1) · (β_max − β_min),    ℓ = 0 … L − 1

e.g. L = 3, β from 1.0 to 4.0 gives 1.0, 2.5, 4.0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from canvas_engineering.errors import bad, check_int


@dataclass(frozen=True)
class CurriculumScheduler:
    """Loop count as a function of the training step.

    The ramp (the first `ramp_fraction · total_steps` steps) is cut into
    `max_loops − min_loops + 1` equal stages; stage k uses `min_loops + k` loops. For example
    max_loops=3, total_steps=6000: steps 0–1999 → 1 loop, 2000–3999 → 2, 4000 onwards → 3.
    """

    max_loops: int
    total_steps: int
    min_loops: int = 1
    ramp_fraction: float = 1.0

    def __post_init__(self):
        check_int("max_loops", self.max_loops, 1)
        check_int("total_steps", self.total_steps, 1)
        check_int("min_loops", self.min_loops, 1)
        if self.min_loops > self.max_loops:
            raise bad("min_loops", self.min_loops, f"at most max_loops={self.max_loops}")
        if not 0.0 < self.ramp_fraction <= 1.0:
            raise bad("ramp_fraction", self.ramp_fraction, "a float in (0, 1]")

    def loops(self, step: int) -> int:
        """Number of loops to run at training step `step` (0-based; past the end holds max)."""
        check_int("step", step, 0)
        stages = self.max_loops - self.min_loops + 1
        ramp_steps = self.ramp_fraction * self.total_steps
        stage = math.floor(step * stages / ramp_steps)
        return min(self.min_loops + stage, self.max_loops)

    __call__ = loops

    def apply(self, looped_blocks: Iterable, step: int) -> int:
        """Set `.loops` of every looped block for `step`; returns the loop count."""
        n = self.loops(step)
        for block in looped_blocks:
            block.loops = n
        return n


@dataclass(frozen=True)
class SharpeningSchedule:
    """Inverse attention temperature per loop, linear from `beta_min` (loop 0) to `beta_max`."""

    max_loops: int
    beta_min: float = 1.0
    beta_max: float = 2.0

    def __post_init__(self):
        check_int("max_loops", self.max_loops, 1)
        for name in ("beta_min", "beta_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise bad(name, value, "a number > 0")

    def beta(self, loop: int) -> float:
        """β for loop index `loop` in [0, max_loops); a single loop uses beta_min."""
        check_int("loop", loop, 0)
        if loop >= self.max_loops:
            raise bad("loop", loop, f"an int in [0, {self.max_loops}) (max_loops)")
        if self.max_loops == 1:
            return float(self.beta_min)
        return self.beta_min + loop / (self.max_loops - 1) * (self.beta_max - self.beta_min)

    __call__ = beta

    def betas(self) -> list[float]:
        """β for every loop, in order."""
        return [self.beta(i) for i in range(self.max_loops)]
