"""RSI reversal, long only: buy when Wilder's RSI climbs back out of the oversold zone, sell when it leaves the
overbought zone.

The signals, precisely (RSI as TA-Lib computes it, :class:`~engine.market.wilder.RSI`, on closes):

* buy, when flat, on the candle where RSI crosses *up through* ``oversold``: the previous RSI was below it and this
  one is at or above it;
* sell the whole position, when holding one, on the candle where RSI crosses *down through* ``overbought``: the
  previous RSI was above it and this one is at or below it.

When it makes money: in a market that ranges, where sell-offs are overdone and bounce: it buys after the fall has
stopped (not into it) and sells once the rebound has run out of buyers. When it loses: in a downtrend, where RSI
leaves the oversold zone on a pause and the fall then resumes. Its own exit waits for an overbought RSI that may not
come for a long time, so pair it with ``stop_loss_pct`` or ``time_stop_candles`` (common parameters). In a strong
uptrend it seldom buys, because RSI rarely falls to ``oversold``.
"""

from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar

from engine.domain.market_data import Candle
from engine.domain.money import ZERO
from engine.market.wilder import RSI
from engine.strategies.base import Param, ParamError, ParamValue, Signal, Strategy, StrategyContext

__all__ = ["RsiReversal"]

_D = Decimal


class RsiReversal(Strategy):
    kind = "rsi_reversal"
    description = (
        "Long only: buy when Wilder's RSI crosses up through oversold; sell the whole position when it crosses down "
        "through overbought."
    )
    params: ClassVar[tuple[Param, ...]] = (
        Param("period", "int", 14, 2, 500, "RSI period (Wilder smoothing, as TA-Lib computes it), in candles."),
        Param(
            "oversold",
            "decimal",
            _D(30),
            _D(1),
            _D(99),
            "Buy when RSI rises from below this level to it or above; must be below overbought.",
        ),
        Param(
            "overbought",
            "decimal",
            _D(70),
            _D(1),
            _D(99),
            "Sell when RSI falls from above this level to it or below; must exceed oversold.",
        ),
    )

    _rsi: RSI
    _prev: Decimal | None
    _oversold: Decimal
    _overbought: Decimal
    _buy: Signal
    _sell: Signal

    @classmethod
    def check_combination(cls, values: Mapping[str, ParamValue]) -> None:
        if values["oversold"] >= values["overbought"]:
            raise ParamError(
                f"oversold ({values['oversold']}) must be smaller than overbought ({values['overbought']})"
            )

    @property
    def warmup(self) -> int:
        # RSI's first value comes at candle period + 1; a cross needs the one before it too.
        return int(self.values["period"]) + 2

    def reset(self) -> None:
        period = int(self.values["period"])
        self._rsi = RSI(period)
        self._prev = None
        self._oversold = _D(self.values["oversold"])
        self._overbought = _D(self.values["overbought"])
        self._buy = Signal("buy", f"RSI{period} crossed up through {self._oversold}")
        self._sell = Signal("sell", f"RSI{period} crossed down through {self._overbought}")

    def on_candle(self, candle: Candle, ctx: StrategyContext) -> Signal | None:
        rsi = self._rsi.update(candle.close)
        if rsi is None:
            return None
        prev = self._prev
        self._prev = rsi
        if prev is None:
            return None
        if ctx.position_qty == ZERO:
            return self._buy if prev < self._oversold <= rsi else None
        if ctx.position_qty > ZERO and prev > self._overbought >= rsi:
            return self._sell
        return None
