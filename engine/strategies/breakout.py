"""Donchian channel breakout, long only.

The signals, precisely:

* buy, when flat, when the close is above the highest high of the previous ``entry_period`` candles (the candle
  itself not included);
* sell the whole position, when holding one, when the close is below the lowest low of the previous ``exit_period``
  candles.

When it makes money: when prices trend. A break out of a range often starts a move that runs on; the strategy joins
it late and leaves late, but catches the body of long trends. When it loses: in a market that ranges, where most
breakouts fail (it buys at the top of the range and sells at its bottom, paying fees both ways), which on one-minute
candles is most of the time; longer periods or candles see fewer, more meaningful breaks.

An ATR stop: the engine's stops are common parameters in percent of price, so an "N ATRs below the entry" stop is
``stop_loss_pct`` ≈ N × ATR ÷ price × 100 (with an ATR of 0.4 % of price, 2 ATRs is ``stop_loss_pct = 0.8``), or
``trailing_stop_pct`` the same way for a stop that follows the highest high. Set ``risk_per_trade_pct`` with
``atr_multiple = N`` (and ``atr_period``) to size each entry so that such a move costs that share of equity.
"""

from collections import deque
from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar

from engine.domain.market_data import Candle
from engine.domain.money import ZERO
from engine.strategies.base import Param, ParamError, ParamValue, Signal, Strategy, StrategyContext

__all__ = ["Breakout", "RollingExtreme"]


class RollingExtreme:
    """The highest (or lowest) of the last ``period`` values pushed, in amortised O(1) per value.

    A monotonic queue of (index, value): a value that can no longer be the extreme of any later window (an older
    value not above a newer one, for the highest) is dropped as soon as the newer one arrives. ``value`` is
    ``None`` until ``period`` values have been pushed.
    """

    __slots__ = ("_count", "_highest", "_items", "_period")

    def __init__(self, period: int, *, highest: bool) -> None:
        if period < 1:
            raise ValueError(f"period must be at least 1, got {period}")
        self._period = period
        self._highest = highest
        self._items: deque[tuple[int, Decimal]] = deque()
        self._count = 0

    @property
    def value(self) -> Decimal | None:
        return self._items[0][1] if self._count >= self._period else None

    def push(self, value: Decimal) -> None:
        index = self._count
        self._count = index + 1
        items = self._items
        if self._highest:
            while items and items[-1][1] <= value:
                items.pop()
        else:
            while items and items[-1][1] >= value:
                items.pop()
        items.append((index, value))
        while items[0][0] <= index - self._period:
            items.popleft()


class Breakout(Strategy):
    kind = "breakout"
    description = (
        "Long only: buy when the close breaks above the highest high of the previous entry_period candles; sell "
        "the whole position when it breaks below the lowest low of the previous exit_period candles."
    )
    params: ClassVar[tuple[Param, ...]] = (
        Param("entry_period", "int", 20, 2, 1000, "Candles whose highest high the close must break to buy."),
        Param(
            "exit_period",
            "int",
            10,
            2,
            1000,
            "Candles whose lowest low the close must break to sell; at most entry_period (the exit channel is the "
            "shorter one, as in Donchian's 20/10 system).",
        ),
    )

    _highs: RollingExtreme
    _lows: RollingExtreme

    @classmethod
    def check_combination(cls, values: Mapping[str, ParamValue]) -> None:
        # As in Donchian's and the Turtles' systems (20/10, 55/20): an exit channel longer than the entry one would
        # give back more of a trend than the entry waited for to confirm it.
        if values["exit_period"] > values["entry_period"]:
            raise ParamError(
                f"exit_period ({values['exit_period']}) must not exceed entry_period ({values['entry_period']})"
            )

    @property
    def warmup(self) -> int:
        return int(self.values["entry_period"]) + 1

    def reset(self) -> None:
        self._highs = RollingExtreme(int(self.values["entry_period"]), highest=True)
        self._lows = RollingExtreme(int(self.values["exit_period"]), highest=False)

    def on_candle(self, candle: Candle, ctx: StrategyContext) -> Signal | None:
        # The channel of the previous candles is read before this candle joins it.
        upper = self._highs.value
        lower = self._lows.value
        self._highs.push(candle.high)
        self._lows.push(candle.low)
        close = candle.close
        if ctx.position_qty == ZERO:
            if upper is not None and close > upper:
                return Signal("buy", f"close {close} above the {self.values['entry_period']}-candle high {upper}")
            return None
        if ctx.position_qty > ZERO and lower is not None and close < lower:
            return Signal("sell", f"close {close} below the {self.values['exit_period']}-candle low {lower}")
        return None
