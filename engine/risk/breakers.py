"""Per-strategy circuit breakers: a run of losing trades, a burst of strategy errors, market data gone stale.

Pure and sans-I/O (no clock, no engine): :class:`Breakers` is fed what happened, each with its time in
nanoseconds on the caller's clock (market time in a replay, wall time live), and answers with a
:class:`BreakerTrip` when a breaker trips. The caller (the trader) acts on a trip, e.g. by disabling the strategy.

Definitions (what the tests recount independently):

- ``max_consecutive_losses``: a closed round trip with net PnL < 0 is a loss; a win or break-even (>= 0) sets
  the count back to 0. Trips when the count reaches the threshold.
- ``max_errors`` within ``error_window_s``: the strategy's errors at times ``t`` with ``now - t < window`` (an
  error exactly ``error_window_s`` before is out). Trips when an error brings the count to the threshold.
- ``stale_after_s``: no market data for the strategy's pair for this long: ``now - last >= stale_after_s``,
  ``last`` being the latest data time seen for the pair, or, before any, the first time :meth:`Breakers.check_stale`
  looked at that pair. Checked only when :meth:`Breakers.check_stale` is called.

A strategy trips at most once: from its first trip it stays tripped (and reports nothing more, though its counts go
on) until :meth:`Breakers.reset`, which clears the latch, the loss run and the errors. Staleness is a fact about the
pair's data, not the strategy: after a reset a pair still without data trips again at the next check.
"""

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MAX_CONSECUTIVE_LOSSES",
    "MAX_ERRORS",
    "STALE_AFTER",
    "BreakerRow",
    "BreakerSettings",
    "BreakerTrip",
    "Breakers",
]

MAX_CONSECUTIVE_LOSSES = "max_consecutive_losses"
MAX_ERRORS = "max_errors"
STALE_AFTER = "stale_after_s"
_NS = 1_000_000_000
Count = Annotated[int, Field(gt=0, le=1_000_000)]
Seconds = Annotated[int, Field(gt=0, le=366 * 86_400)]


class BreakerSettings(BaseModel):
    """One strategy's breakers; a breaker left out (None) is off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_consecutive_losses: Count | None = Field(None, description="Trip on this many losing round trips in a row.")
    max_errors: Count | None = Field(None, description="Trip on this many strategy errors within error_window_s.")
    error_window_s: Seconds = Field(300, description="The window max_errors counts errors in, in seconds.")
    stale_after_s: Seconds | None = Field(None, description="Trip when the pair has had no data for this long.")


@dataclass(frozen=True, slots=True)
class BreakerTrip:
    """A breaker that tripped: the strategy, the rule's name and a sentence with the figures."""

    strategy: str
    rule: str
    detail: str


@dataclass(frozen=True, slots=True)
class BreakerRow:
    """One breaker of one strategy, for display: ``headroom`` is ``threshold - value`` (0 or less: tripped)."""

    strategy: str
    rule: str
    threshold: Decimal
    value: Decimal | None
    headroom: Decimal | None
    unit: str
    tripped: bool


class Breakers:
    """The breakers of every strategy: ``default`` settings, or a strategy's own from ``per_strategy``."""

    def __init__(self, default: BreakerSettings, per_strategy: Mapping[str, BreakerSettings] | None = None) -> None:
        self.default = default
        self.per_strategy = dict(per_strategy or {})
        self._losses: dict[str, int] = {}
        self._errors: dict[str, deque[int]] = {}
        self._last_data: dict[str, int] = {}
        self._watched_since: dict[str, int] = {}
        self._tripped: dict[str, BreakerTrip] = {}

    def settings_for(self, strategy: str) -> BreakerSettings:
        return self.per_strategy.get(strategy, self.default)

    def tripped(self, strategy: str) -> BreakerTrip | None:
        """The trip that holds ``strategy`` stopped, or None."""
        return self._tripped.get(strategy)

    # -- what happened ----------------------------------------------------------------------------------------
    def on_trade_closed(self, strategy: str, net_pnl: Decimal, ts_ns: int) -> BreakerTrip | None:
        """Count a closed round trip of ``strategy`` (net of fees); the trip it causes, or None.

        Raises:
            ValueError: ``net_pnl`` is not a finite Decimal or ``ts_ns`` not an integer (nothing is counted).
        """
        if not isinstance(net_pnl, Decimal) or not net_pnl.is_finite():
            raise ValueError(f"net_pnl must be a finite Decimal, got {net_pnl!r}")
        _check_time(ts_ns)
        losses = self._losses.get(strategy, 0) + 1 if net_pnl < 0 else 0
        self._losses[strategy] = losses
        most = self.settings_for(strategy).max_consecutive_losses
        if most is None or losses < most:
            return None
        return self._trip(strategy, MAX_CONSECUTIVE_LOSSES, f"{losses} losing round trips in a row (limit {most})")

    def on_error(self, strategy: str, ts_ns: int) -> BreakerTrip | None:
        """Count an error (an exception) of ``strategy`` at ``ts_ns``; the trip it causes, or None.

        Raises:
            ValueError: ``ts_ns`` is not an integer (nothing is counted).
        """
        _check_time(ts_ns)
        settings = self.settings_for(strategy)
        errors = self._errors.setdefault(strategy, deque())
        horizon = ts_ns - settings.error_window_s * _NS
        while errors and errors[0] <= horizon:
            errors.popleft()
        errors.append(ts_ns)
        most = settings.max_errors
        if most is None or len(errors) < most:
            return None
        detail = f"{len(errors)} errors within {settings.error_window_s} s (limit {most})"
        return self._trip(strategy, MAX_ERRORS, detail)

    def on_data(self, pair: str, ts_ns: int) -> None:
        """Market data for ``pair`` at ``ts_ns`` (an earlier time than the latest seen changes nothing).

        Raises:
            ValueError: ``ts_ns`` is not an integer.
        """
        _check_time(ts_ns)
        if ts_ns > self._last_data.get(pair, ts_ns - 1):
            self._last_data[pair] = ts_ns

    def check_stale(self, now_ns: int, pairs_by_strategy: Mapping[str, str]) -> list[BreakerTrip]:
        """The trips of strategies (name -> pair) whose pair has had no data for ``stale_after_s`` at ``now_ns``.

        Raises:
            ValueError: ``now_ns`` is not an integer (nothing changes).
        """
        _check_time(now_ns)
        trips = []
        for strategy, pair in pairs_by_strategy.items():
            since = self._since(pair, now_ns)
            after = self.settings_for(strategy).stale_after_s
            if after is None or now_ns - since < after * _NS:
                continue
            age = format(_seconds(now_ns - since), "f")
            trip = self._trip(strategy, STALE_AFTER, f"no market data for {pair} for {age} s (limit {after} s)")
            if trip is not None:
                trips.append(trip)
        return trips

    def reset(self, strategy: str) -> None:
        """Re-arm ``strategy``'s breakers: the latch, the run of losses and the errors are cleared."""
        self._tripped.pop(strategy, None)
        self._losses.pop(strategy, None)
        self._errors.pop(strategy, None)

    # -- display ----------------------------------------------------------------------------------------------
    def snapshot(self, now_ns: int, pairs_by_strategy: Mapping[str, str]) -> list[BreakerRow]:
        """Each breaker that is on, per strategy (those of ``pairs_by_strategy``, then any other seen): its
        threshold, the value now, the headroom and whether the strategy is tripped by it. Read only."""
        _check_time(now_ns)
        rows = []
        names = [*pairs_by_strategy, *sorted(self._seen() - set(pairs_by_strategy))]
        for strategy in names:
            settings = self.settings_for(strategy)
            trip = self._tripped.get(strategy)
            cells: list[tuple[str, int | None, Decimal | None, str]] = [
                (
                    MAX_CONSECUTIVE_LOSSES,
                    settings.max_consecutive_losses,
                    Decimal(self._losses.get(strategy, 0)),
                    "losses",
                ),
                (MAX_ERRORS, settings.max_errors, Decimal(self._recent_errors(strategy, now_ns)), "errors"),
            ]
            pair = pairs_by_strategy.get(strategy)
            since = None if pair is None else self._last_data.get(pair, self._watched_since.get(pair))
            age = None if since is None else _seconds(now_ns - since)
            cells.append((STALE_AFTER, settings.stale_after_s, age, "s"))
            for rule, threshold, value, unit in cells:
                if threshold is None:
                    continue
                limit = Decimal(threshold)
                rows.append(
                    BreakerRow(
                        strategy=strategy,
                        rule=rule,
                        threshold=limit,
                        value=value,
                        headroom=None if value is None else limit - value,
                        unit=unit,
                        tripped=trip is not None and trip.rule == rule,
                    )
                )
        return rows

    # -- inside -----------------------------------------------------------------------------------------------
    def _trip(self, strategy: str, rule: str, detail: str) -> BreakerTrip | None:
        if strategy in self._tripped:
            return None
        trip = BreakerTrip(strategy, rule, detail)
        self._tripped[strategy] = trip
        return trip

    def _since(self, pair: str, now_ns: int) -> int:
        last = self._last_data.get(pair)
        if last is not None:
            return last
        return self._watched_since.setdefault(pair, now_ns)

    def _recent_errors(self, strategy: str, now_ns: int) -> int:
        horizon = now_ns - self.settings_for(strategy).error_window_s * _NS
        return sum(1 for t in self._errors.get(strategy, ()) if horizon < t <= now_ns)

    def _seen(self) -> set[str]:
        names: Iterable[str] = (*self._losses, *self._errors, *self._tripped)
        return set(names)


def _check_time(ts_ns: int) -> None:
    if isinstance(ts_ns, bool) or not isinstance(ts_ns, int):
        raise ValueError(f"a time must be an integer of nanoseconds, got {ts_ns!r}")


def _seconds(ns: int) -> Decimal:
    return Decimal(ns).scaleb(-9).normalize()
