"""What the trading core holds per strategy: its slot (the strategy, its pair, weight, guards and candle history),
the groups that vote on one pair, the feed of higher timeframes, and where refusals are recorded.

Kept apart from :mod:`engine.runtime.trader` (the per-candle path that uses them) so that each stays readable;
``engine.runtime.trader`` re-exports these names.
"""

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from engine.domain.market_data import Candle
from engine.domain.money import ZERO
from engine.market.higher_candles import HigherCandles, TimeframeError, check_timeframes
from engine.market.wilder import ATR
from engine.risk.position_guards import GuardState, PositionGuard
from engine.risk.sizing import EntryPolicy
from engine.strategies.base import ParamError, ParamValue, Signal, Strategy, StrategyContext

__all__ = ["HISTORY", "RefusalSink", "SlotGroup", "StrategySlot", "TimeframeFeed"]

HISTORY = 2500  # candles kept per slot, to re-warm a strategy after it is retuned


class RefusalSink(Protocol):
    """Where refused orders and triggered guards are recorded (the journal's event log)."""

    def order_refused(
        self, strategy: str, pair: str, side: str, qty: Decimal | None, rule: str, reason: str
    ) -> None: ...

    def guard_triggered(self, strategy: str, pair: str, rule: str, qty: Decimal, detail: str) -> None: ...


@dataclass(slots=True)
class StrategySlot:
    """One configured strategy instance and its run-time state."""

    name: str
    pair: str
    strategy: Strategy
    enabled: bool
    weight: Decimal
    order_quote_amount: Decimal
    version: int = 1
    signals: int = 0
    refusals: int = 0
    errors: int = 0
    last_error: str = ""
    last_refusal: str = ""
    exits_only: bool = False
    """Out of a scanner-chosen universe (engine.runtime.universe): sells still close the position, buys wait."""
    history: deque[Candle] = field(default_factory=lambda: deque(maxlen=HISTORY))
    context: StrategyContext = field(default_factory=lambda: StrategyContext(ZERO))
    key: tuple[str, str] = field(init=False, repr=False, default=("", ""))
    """``(name, pair)``: the slot's key into the portfolio's positions, made once."""
    guard: PositionGuard | None = field(init=False, repr=False, default=None)
    """The strategy's position guards (None when all are off: nothing is spent on them per candle)."""
    guard_state: GuardState = field(init=False, repr=False, default_factory=GuardState)
    atr: ATR | None = field(init=False, repr=False, default=None)
    """Kept only when the strategy sizes by volatility (risk_per_trade_pct)."""
    entry: EntryPolicy = field(init=False, repr=False, default=EntryPolicy(None, False, 3, 0))
    reprices_left: int = 0
    """Limit entries: how many more times an expired entry is sent again (see _retry_entry)."""
    last_entry: str = ""
    """Limit entries: the client id of the latest entry sent, while it may still need a reprice."""
    guard_exits: int = 0
    dust: Decimal = ZERO
    """The pair's order minimum: a position below it cannot be sold and counts as flat (set by the trader)."""
    breaker: str = ""
    """The circuit breaker that stopped the strategy (its new entries wait until it is enabled again)."""
    group: str = ""
    """The group whose vote this strategy's signals go to ("" for none: it acts on its own, see :class:`SlotGroup`)."""
    votes: int = 0
    """Grouped strategies: the signals counted in the group's vote (``signals`` counts the orders it acted for)."""
    pairs: tuple[str, ...] = ()
    """A strategy over several pairs (a PortfolioStrategy): all of them, ``pair`` first; it decides through a
    :class:`~engine.runtime.portfolio_runner.PortfolioRunner`. Empty for a strategy of one pair."""
    on_candle: Callable[[Candle, StrategyContext], Signal | None] = field(init=False, repr=False)
    """What a closed base candle is handed to: the strategy's own ``on_candle`` when it declares no timeframes
    (nothing more per candle), else a :class:`TimeframeFeed`'s, which builds the higher candles first."""

    def __post_init__(self) -> None:
        self.key = (self.name, self.pair)
        self.configure()

    def configure(self) -> None:
        """Build the guards, the ATR, the entry policy and the higher-candle feed the strategy's parameters ask
        for (a new feed starts from nothing: :meth:`retune` re-warms it with the strategy)."""
        values = self.strategy.values
        strategy = self.strategy
        timeframes = strategy.timeframes_for(values)
        self.on_candle = TimeframeFeed(strategy, self.pair, timeframes).on_candle if timeframes else strategy.on_candle
        self.guard = PositionGuard.from_values(values)
        self.guard_state.entry = None  # the levels follow the new thresholds
        self.entry = EntryPolicy.from_values(values)
        risk_pct = values.get("risk_per_trade_pct", ZERO)
        if isinstance(risk_pct, Decimal) and risk_pct > 0:
            self.atr = ATR(int(str(values.get("atr_period", 14))))
            for candle in self.history:
                self.atr.update_bar(candle.high, candle.low, candle.close)
        else:
            self.atr = None

    def check_timeframes(self, values: Mapping[str, ParamValue]) -> None:
        """Refuse parameter values whose timeframes the base candles seen so far cannot build.

        Raises:
            ParamError: naming the timeframe and the base interval.
        """
        if not self.history:
            return  # no base candle yet: the engine checked the configured base interval at start
        try:
            check_timeframes(self.history[-1].interval_s, self.strategy.timeframes_for(values), self.name)
        except TimeframeError as exc:
            raise ParamError(str(exc)) from None

    def retune(self, values: Mapping[str, object]) -> dict[str, ParamValue]:
        """Apply new parameters, then re-warm the strategy on recent candles so it can signal at once (its higher
        candles rebuilt from those, as they were built live).

        Raises:
            ParamError: a bad value, or a timeframe the base candles seen so far cannot build (nothing changes).
        """
        strategy = self.strategy
        self.check_timeframes(strategy.validate(values, base=strategy.values))
        applied = strategy.retune(values)
        self.configure()
        ctx = StrategyContext(Decimal(0))
        on_candle = self.on_candle
        for candle in self.history:
            on_candle(candle, ctx)
        return applied


@dataclass(slots=True)
class SlotGroup:
    """Strategies on one pair that decide together, by a weighted vote, with at most one order per candle.

    The rule, on each closed candle:

    * every member sees the candle, with the group's position in its context (the sum of the members' own
      positions: a member that did not open it still sees it held, and may vote to sell it);
    * a member's signal is a vote of its ``weight``: +weight for a buy, -weight for a sell. Disabled members do not
      vote; a member whose buys wait (a circuit breaker, out of a scanner-chosen universe) votes sells only;
    * the sum above 0 buys, below 0 sells, exactly 0 (a tie, or no vote) does nothing;
    * a buy is made by the member with the highest weight among those that voted buy (the first configured on a
      tie): sized, limited and attributed as that strategy's own entry, into its own position;
    * a sell is made by the enabled member holding the largest position (the first configured on a tie), and sells
      that member's whole position; several members holding at once (strategies that add to positions) are sold
      one per candle while the vote stays a sell;
    * a member's position guard (stop loss, ...) that triggers comes first and is the step's order, sent even
      while another member has an order open (another member's triggered guard waits for the next candle, latched);
    * otherwise no new order while any member has one open (a resting limit entry, an unfilled exit); an expired
      limit entry of a member is sent again only on a candle where the vote decided nothing.

    So a pair never gets two orders, or opposite ones, from a group in one step; each order, its fills and its
    profit stay attributed to the one strategy that made it (per-strategy reports are unchanged).
    """

    name: str
    pair: str
    members: list[StrategySlot] = field(repr=False)
    buys: int = 0
    """Candles on which the vote was a buy (whether or not an order could be sent)."""
    sells: int = 0
    ties: int = 0
    """Candles on which members voted and the votes cancelled out (nothing done)."""
    sell_signal: Signal = field(init=False, repr=False, default=Signal("sell"))

    def __post_init__(self) -> None:
        self.sell_signal = Signal("sell", f"group {self.name} voted sell")


class TimeframeFeed:
    """A strategy with higher timeframes: each closed base candle first rolls into the higher candles
    (:class:`~engine.market.higher_candles.HigherCandles`), every one of them it closes goes to the strategy's
    ``on_higher_candle``, then the base candle to its ``on_candle``."""

    __slots__ = ("candles", "strategy")

    def __init__(self, strategy: Strategy, pair: str, timeframes: Sequence[int]) -> None:
        self.strategy = strategy
        self.candles = HigherCandles(pair, timeframes)

    def on_candle(self, candle: Candle, ctx: StrategyContext) -> Signal | None:
        strategy = self.strategy
        for higher in self.candles.add(candle):
            strategy.on_higher_candle(higher, ctx)
        return strategy.on_candle(candle, ctx)
