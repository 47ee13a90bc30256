"""Stage timings and the time-limit deadlines of one solve."""

from __future__ import annotations

import time


class Clock:
    """Wall-clock time per stage (``stages``) since the solve began, and deadlines as shares of the limit."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.last = self.t0
        self.stages: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.stages[name] = round(self.stages.get(name, 0.0) + now - self.last, 4)
        self.last = now

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def deadline(self, share: float, time_limit: float) -> float | None:
        """The ``time.perf_counter()`` value at ``share`` of ``time_limit`` (None without a limit)."""
        return self.t0 + share * time_limit if time_limit > 0 else None
