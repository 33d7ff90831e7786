"""EMA crossover, long only: buy when the fast EMA crosses above the slow one, sell everything on the cross below."""

from collections.abc import Mapping
from decimal import Decimal

from engine.domain.market_data import Candle
from engine.domain.money import ZERO
from engine.market.indicators import EMASpread
from engine.strategies.base import Param, ParamError, ParamValue, Signal, Strategy, StrategyContext

__all__ = ["EmaCross"]


class EmaCross(Strategy):
    kind = "ema_cross"
    description = "Long only: buy when EMA(fast) crosses above EMA(slow); sell the whole position on the cross below."
    params = (
        Param("fast", "int", 12, 2, 500, "Period of the fast EMA, in candles."),
        Param("slow", "int", 26, 3, 2000, "Period of the slow EMA, in candles; must exceed fast."),
    )

    _spread: EMASpread
    _prev_diff: Decimal | None
    _buy: Signal
    _sell: Signal

    @classmethod
    def check_combination(cls, values: Mapping[str, ParamValue]) -> None:
        if values["fast"] >= values["slow"]:
            raise ParamError(f"fast ({values['fast']}) must be smaller than slow ({values['slow']})")

    @property
    def warmup(self) -> int:
        return int(self.values["slow"]) + 1

    def reset(self) -> None:
        fast, slow = self.values["fast"], self.values["slow"]
        self._spread = EMASpread(int(fast), int(slow))
        self._prev_diff = None
        # Signals are immutable: made once, not at every cross.
        self._buy = Signal("buy", f"EMA{fast} crossed above EMA{slow}")
        self._sell = Signal("sell", f"EMA{fast} crossed below EMA{slow}")

    def on_candle(self, candle: Candle, ctx: StrategyContext) -> Signal | None:
        # Called for every candle of a backtest: one indicator call, and comparisons against the Decimal ZERO
        # (comparing a Decimal with the int 0 converts the int each time).
        diff = self._spread.update(candle.close)
        if diff is None:
            return None
        prev = self._prev_diff
        self._prev_diff = diff
        if prev is None:
            return None
        if prev <= ZERO < diff:
            return self._buy if ctx.position_qty == ZERO else None
        if prev >= ZERO > diff:
            return self._sell if ctx.position_qty > ZERO else None
        return None
