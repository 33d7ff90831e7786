"""Clocks, injected everywhere: simulated in replay (it advances with the data), the wall clock live."""

import time
from typing import Protocol

__all__ = ["Clock", "SimClock", "WallClock"]


class Clock(Protocol):
    def now_ns(self) -> int: ...


class SimClock:
    """Time as the replayed data says it is; it never goes backwards."""

    __slots__ = ("_now",)

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def advance_to(self, ts_ns: int) -> None:
        if ts_ns > self._now:
            self._now = ts_ns


class WallClock:
    """UTC wall-clock time in nanoseconds."""

    __slots__ = ()

    def now_ns(self) -> int:
        return time.time_ns()

    def advance_to(self, ts_ns: int) -> None:
        """Live time advances by itself."""
