"""Position guards, the profit harvester: stop-loss, take-profit (whole or a one-time scale-out), trailing stop and
time stop for one strategy's long position in one pair.

Pure and sans-I/O: :class:`PositionGuard` holds the thresholds (a strategy's guard parameters, see
:mod:`engine.strategies.common_params`) and :class:`GuardState` what one position has seen; :meth:`PositionGuard.
check` is fed each closed candle while the position is held and answers with a :class:`GuardExit` (the rule, the
share of the position to sell, the figures) or ``None``.

Definitions (what the tests recompute independently; ``entry`` is the position's average entry price):

- the guards watch a candle's **high and low**, not only its close: a candle that dips through the stop and
  closes above it still triggers;
- stop-loss level ``entry × (1 − stop_loss_pct/100)``: triggers when ``low <= level``;
- trailing level ``peak × (1 − trailing_stop_pct/100)``, ``peak`` being the highest high of the candles before
  this one since entry (the entry price to begin with): triggers when ``low <= level``. The order of the high and
  the low inside a candle is unknown, so a candle's own high raises the peak only after its low was checked;
- take-profit level ``entry × (1 + take_profit_pct/100)``: triggers when ``high >= level``; it sells
  ``take_profit_share`` of the position, once per position (a share of 1 sells it all);
- time stop: triggers on the candle that makes the position ``time_stop_candles`` candles old (counting every
  candle seen while it is held, the one it opened on included);
- when a stop and the take-profit both trigger on one candle, the stop wins (the worse case for the account,
  as backtrader and Freqtrade assume);
- a triggered whole-position exit is latched (:attr:`GuardState.exit_rule`): it is asked for again at every
  later candle until the position is flat, even if the price recovers.

The engine acts on an exit by selling at market at once (in a replay: at the next candle's open, as the
simulated venue fills market orders), through the same risk checks as any exit: never refused by a size,
notional or tick limit, only for lacking the asset. The guards live in the engine, not at the venue: a guard acts
while the engine runs (after a crash, at the first candle after the restart, where the latch and the peak are
rebuilt from the replayed history and the fills).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "STOP_LOSS",
    "TAKE_PROFIT",
    "TIME_STOP",
    "TRAILING_STOP",
    "GuardExit",
    "GuardState",
    "PositionGuard",
]

STOP_LOSS = "stop_loss_pct"
TAKE_PROFIT = "take_profit_pct"
TRAILING_STOP = "trailing_stop_pct"
TIME_STOP = "time_stop_candles"
_ZERO = Decimal(0)
_ONE = Decimal(1)
_HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class GuardExit:
    """Sell ``share`` of the position (1 = all of it) because ``rule`` triggered; ``detail`` says with what."""

    rule: str
    share: Decimal
    level: Decimal | None
    detail: str
    repeat: bool = False
    """A latched exit asked for again (it triggered on an earlier candle)."""


@dataclass(slots=True)
class GuardState:
    """What a guard has seen of the position held now (cleared when it is flat)."""

    peak: Decimal | None = None
    """Highest high since entry (the entry price before the first candle)."""
    held: int = 0
    """Candles seen while the position was held."""
    scaled_out: bool = False
    """The take-profit has sold its share of this position."""
    exit_rule: str = ""
    """A whole-position exit that triggered and is asked for until the position is flat."""
    # The levels, kept until the entry price (or, for the trailing stop, the peak) they were computed from moves:
    # the per-candle check is then three comparisons.
    entry: Decimal | None = None
    stop_level: Decimal | None = None
    take_level: Decimal | None = None
    trail_level: Decimal | None = None

    def clear(self) -> None:
        self.peak = None
        self.held = 0
        self.scaled_out = False
        self.exit_rule = ""
        self.entry = None


class PositionGuard:
    """One strategy's guard thresholds (``None`` when it has none enabled: see :meth:`from_values`)."""

    __slots__ = ("stop_factor", "take_factor", "take_share", "time_stop", "trail_factor")

    def __init__(
        self,
        stop_loss_pct: Decimal = _ZERO,
        take_profit_pct: Decimal = _ZERO,
        take_profit_share: Decimal = _ONE,
        trailing_stop_pct: Decimal = _ZERO,
        time_stop_candles: int = 0,
    ) -> None:
        self.stop_factor = _ONE - stop_loss_pct / _HUNDRED if stop_loss_pct > 0 else None
        self.take_factor = _ONE + take_profit_pct / _HUNDRED if take_profit_pct > 0 else None
        self.take_share = take_profit_share
        self.trail_factor = _ONE - trailing_stop_pct / _HUNDRED if trailing_stop_pct > 0 else None
        self.time_stop = time_stop_candles if time_stop_candles > 0 else None

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> "PositionGuard | None":
        """The guard a strategy's parameter values declare, or ``None`` when every guard is off (the trader then
        spends nothing on guards per candle)."""

        def dec(name: str, default: Decimal) -> Decimal:
            value = values.get(name, default)
            return value if isinstance(value, Decimal) else Decimal(str(value))

        guard = cls(
            stop_loss_pct=dec(STOP_LOSS, _ZERO),
            take_profit_pct=dec(TAKE_PROFIT, _ZERO),
            take_profit_share=dec("take_profit_share", _ONE),
            trailing_stop_pct=dec(TRAILING_STOP, _ZERO),
            time_stop_candles=int(str(values.get(TIME_STOP, 0))),
        )
        enabled = (guard.stop_factor, guard.take_factor, guard.trail_factor, guard.time_stop)
        return guard if any(x is not None for x in enabled) else None

    def levels(self, entry: Decimal, state: GuardState) -> dict[str, Decimal | int]:
        """Each enabled guard's level now (prices; candles for the time stop), for display."""
        shown: dict[str, Decimal | int] = {}
        if self.stop_factor is not None:
            shown[STOP_LOSS] = entry * self.stop_factor
        if self.trail_factor is not None:
            shown[TRAILING_STOP] = (state.peak if state.peak is not None else entry) * self.trail_factor
        if self.take_factor is not None and not state.scaled_out:
            shown[TAKE_PROFIT] = entry * self.take_factor
        if self.time_stop is not None:
            shown[TIME_STOP] = self.time_stop - state.held
        return shown

    def observe(self, high: Decimal, state: GuardState, entry: Decimal) -> None:
        """Account for one candle of the position without acting (a latched exit waiting for the position to go)."""
        peak = state.peak if state.peak is not None else entry
        if high > peak:
            state.peak = high
            if self.trail_factor is not None:
                state.trail_level = high * self.trail_factor
        state.held += 1

    def _levels_for(self, entry: Decimal, state: GuardState) -> None:
        """Recompute the levels for a new entry price (the first candle, an added buy, a retune)."""
        state.entry = entry
        if state.peak is None:
            state.peak = entry
        state.stop_level = entry * self.stop_factor if self.stop_factor is not None else None
        state.take_level = entry * self.take_factor if self.take_factor is not None else None
        state.trail_level = state.peak * self.trail_factor if self.trail_factor is not None else None

    def check(self, high: Decimal, low: Decimal, entry: Decimal, state: GuardState) -> GuardExit | None:
        """One closed candle of the held position: the exit it triggers, or ``None``. Updates ``state``."""
        if state.exit_rule:
            self.observe(high, state, entry)
            return GuardExit(state.exit_rule, _ONE, None, "still held after the exit triggered", repeat=True)
        if state.entry is not entry and state.entry != entry:
            self._levels_for(entry, state)
        found: GuardExit | None = None
        level = state.stop_level
        if level is not None and low <= level:
            found = GuardExit(STOP_LOSS, _ONE, level, f"low {low} <= stop {level} (entry {entry})")
        level = state.trail_level
        if found is None and level is not None and low <= level:
            found = GuardExit(TRAILING_STOP, _ONE, level, f"low {low} <= trailing stop {level} (peak {state.peak})")
        level = state.take_level
        if found is None and level is not None and not state.scaled_out and high >= level:
            found = GuardExit(TAKE_PROFIT, self.take_share, level, f"high {high} >= take-profit {level}")
            state.scaled_out = True
        peak = state.peak
        if peak is None or high > peak:
            state.peak = high
            if self.trail_factor is not None:
                state.trail_level = high * self.trail_factor
        state.held += 1
        if found is None and self.time_stop is not None and state.held >= self.time_stop:
            found = GuardExit(TIME_STOP, _ONE, None, f"held {state.held} candles (time stop {self.time_stop})")
        if found is not None and found.share >= _ONE:
            state.exit_rule = found.rule
        return found
