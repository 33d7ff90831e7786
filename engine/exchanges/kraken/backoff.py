"""Retry and reconnect decisions for the Kraken I/O glue, as pure functions (no clock, no sleep, no socket).

The REST client and the WebSocket clients ask these *whether* and *how long* to wait; they do the waiting.
Modelled on websockets' ``process_exception``: a failure goes in, a delay (or "give up") comes out.

* :class:`Backoff`: exponential delay with full jitter, capped (``initial * factor**attempt``, at most ``cap``).
* :func:`reconnect_delay`: the WebSocket reconnect policy: give up on errors no reconnect can fix, wait at least
  5 s after Kraken said it is in maintenance, back off exponentially otherwise.
* :class:`AttemptWindow`: Kraken (Cloudflare) bans an IP for 10 minutes after about 150 connection attempts in a
  rolling 10 minutes; the window keeps the client below a configurable share of that.
"""

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from engine.exchanges.kraken.protocol.errors import KrakenFatalError

__all__ = [
    "DEFAULT_RECONNECT",
    "DEFAULT_RETRY",
    "MAINTENANCE_RECONNECT_S",
    "AttemptWindow",
    "Backoff",
    "GiveUp",
    "reconnect_delay",
]

MAINTENANCE_RECONNECT_S = 5.0
"""Kraken: after maintenance, reconnect no faster than every 5 seconds."""


class GiveUp(Exception):
    """Raised by a client when its policy says no further attempt can help; ``__cause__`` is the last failure."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter.

    Attributes:
        initial: the ceiling of the first delay, in seconds.
        factor: how much the ceiling grows per attempt.
        cap: the largest ceiling.
        max_attempts: attempts after which to give up (None: never).
    """

    initial: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    max_attempts: int | None = None

    def ceiling(self, attempt: int) -> float:
        """The largest delay before retry number ``attempt`` (0 for the first retry)."""
        # min() before the power would overflow for large attempt counts.
        exponent = min(attempt, 64)
        return min(self.cap, self.initial * self.factor**exponent)

    def delay(self, attempt: int, rand: float) -> float | None:
        """The delay before retry ``attempt`` given ``rand`` in [0, 1), or None once attempts are exhausted.

        Full jitter (a uniform share of the ceiling) spreads reconnecting clients apart; half the ceiling is kept
        as a floor so a retry is never immediate.
        """
        if self.max_attempts is not None and attempt >= self.max_attempts:
            return None
        ceiling = self.ceiling(attempt)
        return ceiling / 2 + (ceiling / 2) * rand


DEFAULT_RETRY = Backoff(initial=0.5, factor=2.0, cap=8.0, max_attempts=5)
"""REST: five retries over at most about 15 seconds, then the caller is told."""

DEFAULT_RECONNECT = Backoff(initial=1.0, factor=2.0, cap=60.0, max_attempts=None)
"""WebSocket: reconnect forever, at most once a minute once things stay broken."""


def reconnect_delay(
    attempt: int,
    error: BaseException | None,
    *,
    policy: Backoff = DEFAULT_RECONNECT,
    rand: float = 0.5,
    maintenance: bool = False,
) -> float | None:
    """How long to wait before reconnect number ``attempt`` (0-based), or None to give up.

    Args:
        attempt: reconnects tried since the last connection that worked.
        error: why the connection ended (None for a clean close by the server).
        policy: the backoff.
        rand: a uniform random number in [0, 1) for the jitter.
        maintenance: whether Kraken last reported ``maintenance`` (reconnect no faster than every 5 s).
    """
    if isinstance(error, KrakenFatalError):
        return None
    delay = policy.delay(attempt, rand)
    if delay is None:
        return None
    if maintenance:
        delay = max(delay, MAINTENANCE_RECONNECT_S)
    return delay


class AttemptWindow:
    """Counts connection attempts in a rolling window and says how long to wait to stay under the limit.

    Args:
        limit: attempts allowed per window (Kraken bans at about 150 per 10 minutes; default leaves room).
        window_s: the window's length in seconds.
    """

    def __init__(self, limit: int = 100, window_s: float = 600.0) -> None:
        if limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        self.limit = limit
        self.window_s = window_s
        self._times: deque[float] = deque()

    def _expire(self, now_s: float) -> None:
        while self._times and self._times[0] <= now_s - self.window_s:
            self._times.popleft()

    def wait_time(self, now_s: float) -> float:
        """Seconds to wait before the next attempt stays within the limit (0.0 when it already does)."""
        self._expire(now_s)
        if len(self._times) < self.limit:
            return 0.0
        return self._times[0] + self.window_s - now_s

    def record(self, now_s: float) -> None:
        """Count an attempt made at ``now_s``."""
        self._expire(now_s)
        self._times.append(now_s)


def jitter_source(rng: random.Random | None = None) -> Callable[[], float]:
    """A function returning uniform numbers in [0, 1): ``rng.random`` (inject a seeded one in tests)."""
    return (rng or random.Random()).random
