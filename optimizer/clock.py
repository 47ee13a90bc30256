"""Stage timings, the time-limit deadlines and the caller's stop request of one solve."""

from __future__ import annotations

import time
from collections.abc import Callable


class Cancelled(Exception):
    """The caller's ``should_stop`` asked the solve to stop; no plan is returned.

    Attributes
    ----------
    stage : str
        The stage that was running (or had just finished) when the request was seen.
    elapsed : float
        Seconds since the solve began.
    """

    def __init__(self, stage: str, elapsed: float) -> None:
        super().__init__(f"solve stopped by the caller during {stage} after {elapsed:.1f} s")
        self.stage, self.elapsed = stage, elapsed


class Clock:
    """Wall-clock time per stage (``stages``) since the solve began, deadlines as shares of the limit, the
    caller's stop request (``should_stop``, polled by :meth:`check`) and its stage callback (``on_stage``,
    told the name of each stage :meth:`check` sees start)."""

    def __init__(
        self,
        should_stop: Callable[[], bool] | None = None,
        on_stage: Callable[[str], None] | None = None,
    ) -> None:
        self.t0 = time.perf_counter()
        self.last = self.t0
        self.stages: dict[str, float] = {}
        self.should_stop = should_stop
        self.on_stage = on_stage
        self.stage = ""

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.stages[name] = round(self.stages.get(name, 0.0) + now - self.last, 4)
        self.last = now
        self._stop_if_asked(name)

    def check(self, stage: str) -> None:
        """Note that ``stage`` is running (the caller's ``on_stage`` hears of each change), then raise
        :class:`Cancelled` when the caller asked to stop (checked between stages, in long loops)."""
        if stage != self.stage:
            self.stage = stage
            if self.on_stage is not None:
                self.on_stage(stage)
        self._stop_if_asked(stage)

    def _stop_if_asked(self, stage: str) -> None:
        if self.should_stop is not None and self.should_stop():
            raise Cancelled(stage, self.elapsed())

    def seconds_left(self, until: float, stage: str) -> float:
        """Seconds from now to ``until`` seconds after the start, once :meth:`check` has passed (for the
        ``time_left`` callables of the repair windows)."""
        self.check(stage)
        return until - self.elapsed()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def deadline(self, share: float, time_limit: float) -> float | None:
        """The ``time.perf_counter()`` value at ``share`` of ``time_limit`` (None without a limit)."""
        return self.t0 + share * time_limit if time_limit > 0 else None
