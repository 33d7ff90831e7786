"""Wall-clock pacing of a replay: how long to wait before emitting the next event at a given speed.

Pure arithmetic on simulated nanosecond timestamps; the async runtime does the sleeping. Floats are fine here:
they are durations, never money.
"""

import math

from engine.domain.market_data import NS_PER_SECOND
from engine.exchanges.replay.errors import ReplayConfigError

__all__ = ["Pacer"]


class Pacer:
    """Turns gaps in simulated time into wall-clock waits: ``speed`` simulated seconds per wall second.

    ``speed=None`` replays as fast as possible (every wait is 0). ``max_delay_s`` caps a single wait, so that
    a long hole in the data (an exchange outage, a weekend) does not stall a paced replay.
    """

    __slots__ = ("_max_delay_s", "_scale", "_speed")

    def __init__(self, speed: float | None, *, max_delay_s: float | None = None) -> None:
        """Raises ReplayConfigError for a speed or cap that is not a positive finite number."""
        if speed is not None and not (isinstance(speed, int | float) and math.isfinite(speed) and speed > 0):
            raise ReplayConfigError(f"speed must be a positive finite number or None, got {speed!r}")
        if max_delay_s is not None and not (math.isfinite(max_delay_s) and max_delay_s >= 0):
            raise ReplayConfigError(f"max_delay_s must be a finite number >= 0 or None, got {max_delay_s!r}")
        self._speed = speed
        self._scale = 0.0 if speed is None else 1.0 / (NS_PER_SECOND * speed)
        self._max_delay_s = max_delay_s

    @property
    def speed(self) -> float | None:
        return self._speed

    def delay(self, prev_ts_ns: int | None, ts_ns: int) -> float:
        """Seconds to wait after emitting the event at ``prev_ts_ns`` before emitting the one at ``ts_ns``.

        0 for the first event (``prev_ts_ns is None``), at maximum speed, or when time does not advance.
        """
        if prev_ts_ns is None or ts_ns <= prev_ts_ns:
            return 0.0
        wait = (ts_ns - prev_ts_ns) * self._scale
        cap = self._max_delay_s
        return wait if cap is None or wait < cap else cap

    def offset(self, start_ts_ns: int, ts_ns: int) -> float:
        """Seconds after the replay's wall-clock start at which the event at ``ts_ns`` is due.

        Sleeping until ``wall_start + offset(...)`` keeps a long paced replay from drifting the way summed
        per-event delays do. ``max_delay_s`` does not apply here.
        """
        return max(0, ts_ns - start_ts_ns) * self._scale
