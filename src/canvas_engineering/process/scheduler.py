"""`RegionScheduler`: which regions fire at each step, from their clocks.

The rule, per region at step s (steps count from 0 after `reset`):

1. *wants* to fire: periodic — s >= phase and (s - phase) % period == 0; event — an event for
   the region is reported at s; boundary — s is an episode boundary (step 0 always is).
2. a wanted firing is suppressed while cooling down: the last firing was at step l and
   s - l <= cooldown.
3. it fires anyway when it has been silent too long: the number of consecutive steps without a
   firing just before s (counted from the start when it never fired) is >= max_silence.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from canvas_engineering.errors import bad
from canvas_engineering.process.program import CanvasProgram, Clock, ProgramError


class RegionScheduler:
    """Steps a set of region clocks.

    Args:
        clocks: a `CanvasProgram` (its regions' clocks) or a dict name -> `Clock`.
    """

    def __init__(self, clocks: CanvasProgram | dict[str, Clock]) -> None:
        if isinstance(clocks, CanvasProgram):
            clocks = {n: r.clock for n, r in clocks.regions.items()}
        if not isinstance(clocks, dict) or not all(isinstance(c, Clock) for c in clocks.values()):
            raise bad("clocks", clocks, "a CanvasProgram or a dict name -> Clock", ProgramError)
        self.clocks = dict(clocks)
        self.reset()

    def reset(self) -> None:
        """Back to step 0 (a boundary), with no region having fired."""
        self.step_index = 0
        self.last_fired: dict[str, int | None] = {n: None for n in self.clocks}

    def _wants(self, clock: Clock, name: str, s: int, events: set, boundary: bool) -> bool:
        if clock.mode == "periodic":
            return s >= clock.phase and (s - clock.phase) % clock.period == 0
        if clock.mode == "event":
            return name in events
        return boundary or s == 0

    def step(self, events: Iterable[str] = (), boundary: bool = False) -> frozenset[str]:
        """Advance one step; returns the regions that fire at it.

        Args:
            events: names of regions with an event at this step (read by event clocks).
            boundary: whether this step starts a new episode (read by boundary clocks).
        """
        events = set(events)
        unknown = events - set(self.clocks)
        if unknown:
            raise bad("events", sorted(unknown), f"region names, of {sorted(self.clocks)}",
                      ProgramError)
        s = self.step_index
        fired = set()
        for name, clock in self.clocks.items():
            last = self.last_fired[name]
            fire = self._wants(clock, name, s, events, boundary)
            if fire and last is not None and s - last <= clock.cooldown:
                fire = False
            silent = s if last is None else s - last - 1
            if clock.max_silence is not None and silent >= clock.max_silence:
                fire = True
            if fire:
                fired.add(name)
                self.last_fired[name] = s
        self.step_index += 1
        return frozenset(fired)

    def run(self, steps: int, events: dict[int, Iterable[str]] | None = None,
            boundaries: Iterable[int] = ()) -> list[frozenset[str]]:
        """`steps` calls of `step`, with events per step index and boundary step indices
        (both counted from the current step)."""
        events = events or {}
        boundaries = set(boundaries)
        start = self.step_index
        return [self.step(events.get(start + i, ()), start + i in boundaries)
                for i in range(steps)]

    def firing_table(self, steps: int, **kwargs) -> dict[str, list[bool]]:
        """Per region, whether it fires at each of the next `steps` steps."""
        seq = self.run(steps, **kwargs)
        return {n: [n in f for f in seq] for n in self.clocks}

    @staticmethod
    def position_mask(layout, fired: Iterable[str]) -> torch.Tensor:
        """Canvas positions of the fired regions. (N,) bool"""
        mask = torch.zeros(layout.num_positions, dtype=torch.bool)
        for name in fired:
            mask[layout.region_index_tensor(name)] = True
        return mask
